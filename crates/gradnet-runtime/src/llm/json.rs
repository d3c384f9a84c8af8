//! JSON mode: which texts can still become one JSON object. The generator
//! asks this of each candidate token and samples only among those that keep
//! the answer a valid prefix, so the finished answer always parses.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prefix {
    /// No continuation makes this valid JSON.
    Invalid,
    /// Valid so far, not finished.
    Partial,
    /// A complete object (trailing whitespace allowed).
    Complete,
}

/// Runs of whitespace longer than this are refused: a model in JSON mode
/// otherwise tends to pad forever.
const MAX_SPACES: usize = 8;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Frame {
    /// In an object: expecting a key (or `}` if `first`).
    Key { first: bool },
    /// After a key: expecting `:`.
    Colon,
    /// Expecting a value (`first`: `]` may close an empty array).
    Value { in_array: bool, first: bool },
    /// After a value: expecting `,` or the closer.
    After { in_array: bool },
}

/// The token being read, if one is open.
#[derive(Clone, PartialEq, Debug)]
enum Lex {
    None,
    /// In a string; `escape`: 0 none, 1 after a backslash, 2..=5 hex digits of
    /// a `\u` escape still to come.
    Str {
        escape: u8,
    },
    Num(String),
    /// A literal (`true`, `false`, `null`) and how much of it has been read.
    Lit(&'static str, usize),
}

/// A resumable reader of a JSON object prefix: feed it text piece by piece
/// (cloning it to try a candidate costs only the candidate's length).
#[derive(Clone, Debug)]
pub(super) struct JsonState {
    stack: Vec<Frame>,
    started: bool,
    spaces: usize,
    lex: Lex,
    invalid: bool,
}

impl Default for JsonState {
    fn default() -> Self {
        JsonState {
            stack: vec![],
            started: false,
            spaces: 0,
            lex: Lex::None,
            invalid: false,
        }
    }
}

impl JsonState {
    pub(super) fn feed(&mut self, s: &str) -> Prefix {
        for c in s.chars() {
            if self.invalid {
                break;
            }
            self.invalid = !self.push(c);
        }
        self.status()
    }

    pub(super) fn status(&self) -> Prefix {
        if self.invalid {
            Prefix::Invalid
        } else if self.started && self.stack.is_empty() && self.lex == Lex::None {
            Prefix::Complete
        } else {
            Prefix::Partial
        }
    }

    /// Reads one character; false when no continuation can be valid.
    fn push(&mut self, c: char) -> bool {
        match &mut self.lex {
            Lex::Str { escape } => {
                match (*escape, c) {
                    (0, '"') => self.lex = Lex::None,
                    (0, '\\') => *escape = 1,
                    (0, c) if (c as u32) < 0x20 => return false,
                    (0, _) => {}
                    (1, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => *escape = 0,
                    (1, 'u') => *escape = 5,
                    (1, _) => return false,
                    (_, h) if h.is_ascii_hexdigit() => {
                        *escape = if *escape == 2 { 0 } else { *escape - 1 }
                    }
                    _ => return false,
                }
                return true;
            }
            Lex::Num(text) => {
                if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-') {
                    text.push(c);
                    return number_prefix(text);
                }
                if !valid_number(text) {
                    return false;
                }
                self.lex = Lex::None; // and read `c` below
            }
            Lex::Lit(word, n) => {
                if !word[*n..].starts_with(c) {
                    return false;
                }
                *n += c.len_utf8();
                if *n == word.len() {
                    self.lex = Lex::None;
                }
                return true;
            }
            Lex::None => {}
        }
        // JSON's whitespace (not form feed, which is_ascii_whitespace allows)
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            self.spaces += 1;
            return self.spaces <= MAX_SPACES;
        }
        self.spaces = 0;
        if !self.started {
            self.started = true;
            self.stack.push(Frame::Key { first: true });
            return c == '{';
        }
        let Some(top) = self.stack.last_mut() else {
            return false; // text after the finished object
        };
        match *top {
            Frame::Key { first } => match c {
                '}' if first => {
                    self.stack.pop();
                }
                '"' => {
                    *top = Frame::Colon;
                    self.lex = Lex::Str { escape: 0 };
                }
                _ => return false,
            },
            Frame::Colon => {
                if c != ':' {
                    return false;
                }
                *top = Frame::Value {
                    in_array: false,
                    first: false,
                };
            }
            Frame::Value { in_array, first } => {
                if c == ']' && in_array && first {
                    self.stack.pop();
                    return true;
                }
                *top = Frame::After { in_array };
                match c {
                    '{' => self.stack.push(Frame::Key { first: true }),
                    '[' => self.stack.push(Frame::Value {
                        in_array: true,
                        first: true,
                    }),
                    '"' => self.lex = Lex::Str { escape: 0 },
                    '-' | '0'..='9' => self.lex = Lex::Num(c.to_string()),
                    't' => self.lex = Lex::Lit("true", 1),
                    'f' => self.lex = Lex::Lit("false", 1),
                    'n' => self.lex = Lex::Lit("null", 1),
                    _ => return false,
                }
            }
            Frame::After { in_array } => match (c, in_array) {
                (',', false) => *top = Frame::Key { first: false },
                (',', true) => {
                    *top = Frame::Value {
                        in_array: true,
                        first: false,
                    }
                }
                ('}', false) | (']', true) => {
                    self.stack.pop();
                }
                _ => return false,
            },
        }
        true
    }
}

/// Classifies `s` as a prefix of a JSON object.
#[cfg(test)]
fn classify(s: &str) -> Prefix {
    JsonState::default().feed(s)
}

pub(super) fn valid_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - s
    };
    if b.get(i) == Some(&b'0') {
        i += 1;
    } else if digits(&mut i) == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

pub(super) fn number_prefix(t: &str) -> bool {
    // a prefix is valid if appending some digits makes it a number
    valid_number(t) || valid_number(&format!("{t}0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_objects() {
        use Prefix::*;
        for (s, want) in [
            ("", Partial),
            ("  {", Partial),
            ("x", Invalid),
            ("{}", Complete),
            ("{} ", Complete),
            ("{}x", Invalid),
            ("{\"a\"", Partial),
            ("{\"a\": 1", Partial),
            ("{\"a\": 1}", Complete),
            (
                "{\"a\": -1.5e+3, \"b\": [true, null, \"x\\u00e9\"]}",
                Complete,
            ),
            ("{\"a\": tr", Partial),
            ("{\"a\": tx", Invalid),
            ("{\"a\": 01", Invalid),
            ("{\"a\": 1.}", Invalid),
            ("{\"a\": [1,]", Invalid),
            ("{\"a\": []}", Complete),
            ("{\"a\" 1}", Invalid),
            ("{,}", Invalid),
            ("{\"a\": \"b\nc\"}", Invalid),
            ("{\"a\": \"\\q\"}", Invalid),
            ("{\"a\": {\"b\": {}}}", Complete),
            ("{          ", Invalid),
            ("{\u{c}}", Invalid),
        ] {
            assert_eq!(classify(s), want, "{s:?}");
            // fed in two pieces, split anywhere: the same answer
            for (i, _) in s.char_indices() {
                let mut st = JsonState::default();
                st.feed(&s[..i]);
                assert_eq!(st.feed(&s[i..]), want, "{s:?} split at {i}");
            }
        }
    }
}
