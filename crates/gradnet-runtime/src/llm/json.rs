//! JSON mode: which texts can still become one JSON object. The generator
//! asks this of each candidate token and samples only among those that keep
//! the answer a valid prefix, so the finished answer always parses.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
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

#[derive(Clone, Copy, PartialEq)]
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

/// Classifies `s` as a prefix of a JSON object.
pub fn classify(s: &str) -> Prefix {
    let mut stack: Vec<Frame> = vec![];
    let mut started = false;
    let mut chars = s.chars().peekable();
    let mut spaces = 0;
    while let Some(c) = chars.next() {
        // JSON's whitespace (not form feed, which is_ascii_whitespace allows)
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            spaces += 1;
            if spaces > MAX_SPACES {
                return Prefix::Invalid;
            }
            continue;
        }
        spaces = 0;
        if !started {
            if c != '{' {
                return Prefix::Invalid;
            }
            started = true;
            stack.push(Frame::Key { first: true });
            continue;
        }
        let Some(top) = stack.last().copied() else {
            return Prefix::Invalid; // text after the finished object
        };
        match top {
            Frame::Key { first } => match c {
                '}' if first => close(&mut stack),
                '"' => {
                    match string(&mut chars) {
                        Some(true) => {}
                        Some(false) => return Prefix::Partial,
                        None => return Prefix::Invalid,
                    }
                    *stack.last_mut().unwrap() = Frame::Colon;
                }
                _ => return Prefix::Invalid,
            },
            Frame::Colon => {
                if c != ':' {
                    return Prefix::Invalid;
                }
                *stack.last_mut().unwrap() = Frame::Value {
                    in_array: false,
                    first: false,
                };
            }
            Frame::Value { in_array, first } => {
                if c == ']' && in_array && first {
                    close(&mut stack);
                    continue;
                }
                *stack.last_mut().unwrap() = Frame::After { in_array };
                match c {
                    '{' => stack.push(Frame::Key { first: true }),
                    '[' => stack.push(Frame::Value {
                        in_array: true,
                        first: true,
                    }),
                    '"' => match string(&mut chars) {
                        Some(true) => {}
                        Some(false) => return Prefix::Partial,
                        None => return Prefix::Invalid,
                    },
                    '-' | '0'..='9' => match number(c, &mut chars) {
                        Some(true) => {}
                        Some(false) => return Prefix::Partial,
                        None => return Prefix::Invalid,
                    },
                    't' | 'f' | 'n' => {
                        let word = match c {
                            't' => "true",
                            'f' => "false",
                            _ => "null",
                        };
                        for w in word.chars().skip(1) {
                            match chars.next() {
                                None => return Prefix::Partial,
                                Some(x) if x == w => {}
                                Some(_) => return Prefix::Invalid,
                            }
                        }
                    }
                    _ => return Prefix::Invalid,
                }
            }
            Frame::After { in_array } => match (c, in_array) {
                (',', false) => *stack.last_mut().unwrap() = Frame::Key { first: false },
                (',', true) => {
                    *stack.last_mut().unwrap() = Frame::Value {
                        in_array: true,
                        first: false,
                    }
                }
                ('}', false) | (']', true) => close(&mut stack),
                _ => return Prefix::Invalid,
            },
        }
    }
    if started && stack.is_empty() {
        Prefix::Complete
    } else {
        Prefix::Partial
    }
}

/// Pops a finished container; its parent now has a value.
fn close(stack: &mut Vec<Frame>) {
    stack.pop();
}

/// After an opening quote: `Some(true)` closed, `Some(false)` still open at
/// the end of the text, `None` invalid (a control character or bad escape).
fn string(chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<bool> {
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(true),
            '\\' => match chars.next() {
                None => return Some(false),
                Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => {}
                Some('u') => {
                    for _ in 0..4 {
                        match chars.next() {
                            None => return Some(false),
                            Some(h) if h.is_ascii_hexdigit() => {}
                            Some(_) => return None,
                        }
                    }
                }
                Some(_) => return None,
            },
            c if (c as u32) < 0x20 => return None,
            _ => {}
        }
    }
    Some(false)
}

/// A number starting with `first`: `Some(true)` when it ended (the next
/// character is not part of it), `Some(false)` when the text ends inside it.
fn number(first: char, chars: &mut std::iter::Peekable<std::str::Chars>) -> Option<bool> {
    let mut text = String::from(first);
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-') {
            text.push(c);
            chars.next();
        } else {
            // complete only if the literal is a full number
            return text
                .parse::<f64>()
                .is_ok()
                .then_some(true)
                .filter(|_| valid_number(&text));
        }
    }
    // at the end: it must be a prefix of some number
    number_prefix(&text).then_some(false)
}

fn valid_number(t: &str) -> bool {
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

fn number_prefix(t: &str) -> bool {
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
        }
    }
}
