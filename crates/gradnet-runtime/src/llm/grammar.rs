//! Structured outputs: a JSON Schema compiled into a grammar that the
//! generator checks each candidate token against, so the answer always
//! parses and validates. The reader is a small pushdown automaton run on
//! several threads at once (a schema's `anyOf`, optional properties and
//! enums are choices), fed text piece by piece.
//!
//! What is enforced: `type` (one or a list), `properties` in the order of
//! `propertyOrdering` (as Gemini's schemas spell it; the API records the
//! order a request wrote them in), else in key order, with `required` (others may be left out; no other keys are
//! written), `items`, `minItems`/`maxItems`, `minLength`/`maxLength`,
//! `enum`, `const`, `anyOf`/`oneOf`, a single `allOf`, `$ref` into
//! `$defs`/`definitions` (recursion allowed). Annotations (`title`,
//! `description`, `default`, `examples`) and `format`, `minimum`/`maximum`
//! are accepted and not enforced; `pattern`, `prefixItems`, `not`,
//! `if`/`then` and `patternProperties` are refused by name. Whitespace: one
//! optional space after `:` and `,`, none elsewhere (a model left free to
//! pad tends to pad forever); numbers have at most 16 digits before the
//! point and 8 after, for the same reason.

use std::collections::HashMap;
use std::sync::Arc as Rc;

use serde_json::Value;

use super::json::Prefix;

type NodeId = usize;

#[derive(Debug, Clone)]
enum Node {
    /// Any JSON value.
    Any,
    /// Any object.
    AnyObject,
    /// Exactly this text.
    Lit(Rc<str>),
    Str {
        min: usize,
        max: Option<usize>,
    },
    Num {
        integer: bool,
    },
    Array {
        items: NodeId,
        min: usize,
        max: Option<usize>,
    },
    /// Properties (key as JSON text, value, required), written in order.
    Object(Vec<(Rc<str>, NodeId, bool)>),
    Union(Vec<NodeId>),
    Seq(Vec<NodeId>),
    /// A `$ref` not yet resolved while compiling.
    Pending,
}

/// A compiled grammar; cheap to share between generations.
#[derive(Debug, Clone)]
pub struct Grammar {
    nodes: Vec<Node>,
    root: NodeId,
}

/// More threads than this and the rest are dropped (in a fixed order, so
/// the result stays deterministic); real schemas stay far below it.
const MAX_THREADS: usize = 64;
/// `$ref`s and unions nested deeper than this without reading a character
/// are refused.
const MAX_DEPTH: usize = 64;

impl Grammar {
    /// Compiles a JSON Schema; the error names the keyword it cannot take.
    pub fn from_schema(schema: &Value) -> Result<Grammar, String> {
        let mut c = Compiler {
            nodes: vec![Node::Any],
            root: schema,
            refs: HashMap::new(),
        };
        let root = c.compile(schema, 0)?;
        Ok(Grammar {
            nodes: c.nodes,
            root,
        })
    }

    /// `prefix`, then a value of `schema`, then `suffix`: a tool call in a
    /// template's own markers.
    fn wrapped(prefix: &str, schema: &Value, suffix: &str) -> Result<Grammar, String> {
        let mut g = Grammar::from_schema(schema)?;
        let p = g.push(Node::Lit(prefix.into()));
        let s = g.push(Node::Lit(suffix.into()));
        let root = g.push(Node::Seq(vec![p, g.root, s]));
        g.root = root;
        Ok(g)
    }

    /// From a request's constraint: `{"schema", "prefix"?, "suffix"?}`.
    pub fn from_constraint(c: &Value) -> Result<Grammar, String> {
        let schema = c.get("schema").ok_or("a constraint needs a schema")?;
        let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
        if text("prefix").is_empty() && text("suffix").is_empty() {
            Grammar::from_schema(schema)
        } else {
            Grammar::wrapped(text("prefix"), schema, text("suffix"))
        }
    }

    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    /// A reader at the start of the text.
    pub fn start(&self) -> GrammarState {
        GrammarState {
            threads: vec![vec![Frame::Value(self.root)]],
        }
    }
}

struct Compiler<'a> {
    nodes: Vec<Node>,
    root: &'a Value,
    refs: HashMap<String, NodeId>,
}

impl<'a> Compiler<'a> {
    fn push(&mut self, n: Node) -> NodeId {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn compile(&mut self, s: &'a Value, depth: usize) -> Result<NodeId, String> {
        if depth > MAX_DEPTH {
            return Err("the schema nests too deeply".into());
        }
        let obj = match s {
            Value::Bool(true) => return Ok(ANY),
            Value::Object(o) => o,
            _ => return Err(format!("a schema must be an object, got {s}")),
        };
        for k in [
            "pattern",
            "prefixItems",
            "not",
            "if",
            "then",
            "else",
            "patternProperties",
            "dependentSchemas",
            "contains",
            "uniqueItems",
        ] {
            if obj.contains_key(k) {
                return Err(format!("the schema keyword `{k}` is not supported"));
            }
        }
        if let Some(r) = obj.get("$ref") {
            let r = r.as_str().ok_or("`$ref` must be a string")?;
            return self.reference(r, depth);
        }
        if let Some(c) = obj.get("const") {
            return Ok(self.push(Node::Lit(c.to_string().into())));
        }
        if let Some(e) = obj.get("enum") {
            let e = e.as_array().ok_or("`enum` must be a list")?;
            if e.is_empty() {
                return Err("`enum` is empty".into());
            }
            let alts = e
                .iter()
                .map(|v| self.push(Node::Lit(v.to_string().into())))
                .collect();
            return Ok(self.push(Node::Union(alts)));
        }
        for k in ["anyOf", "oneOf"] {
            if let Some(a) = obj.get(k) {
                let a = a.as_array().ok_or(format!("`{k}` must be a list"))?;
                if a.is_empty() {
                    return Err(format!("`{k}` is empty"));
                }
                let alts = a
                    .iter()
                    .map(|s| self.compile(s, depth + 1))
                    .collect::<Result<_, _>>()?;
                return Ok(self.push(Node::Union(alts)));
            }
        }
        if let Some(a) = obj.get("allOf") {
            match a.as_array().map(Vec::as_slice) {
                Some([one]) => return self.compile(one, depth + 1),
                _ => return Err("`allOf` is supported with one schema only".into()),
            }
        }
        match obj.get("type") {
            None if obj.contains_key("properties") => self.typed("object", obj, depth),
            None if obj.contains_key("items") => self.typed("array", obj, depth),
            None => Ok(ANY),
            Some(Value::String(t)) => self.typed(t, obj, depth),
            Some(Value::Array(ts)) => {
                let alts = ts
                    .iter()
                    .map(|t| {
                        let t = t.as_str().ok_or("`type` lists strings")?;
                        self.typed(t, obj, depth)
                    })
                    .collect::<Result<_, String>>()?;
                Ok(self.push(Node::Union(alts)))
            }
            Some(t) => Err(format!("`type` must be a string or a list, got {t}")),
        }
    }

    fn reference(&mut self, r: &str, depth: usize) -> Result<NodeId, String> {
        if let Some(&id) = self.refs.get(r) {
            return Ok(id);
        }
        let target = if r == "#" {
            self.root
        } else {
            let path = r
                .strip_prefix("#/")
                .ok_or_else(|| format!("`$ref` `{r}` must point into this schema (#/$defs/…)"))?;
            path.split('/')
                .try_fold(self.root, |v, p| {
                    v.get(p.replace("~1", "/").replace("~0", "~"))
                })
                .ok_or_else(|| format!("`$ref` `{r}` points at nothing"))?
        };
        // a placeholder first, so a schema that refers to itself terminates
        let id = self.push(Node::Pending);
        self.refs.insert(r.to_string(), id);
        let inner = self.compile(target, depth + 1)?;
        self.nodes[id] = Node::Seq(vec![inner]);
        Ok(id)
    }

    fn typed(
        &mut self,
        t: &str,
        o: &'a serde_json::Map<String, Value>,
        depth: usize,
    ) -> Result<NodeId, String> {
        let usize_of = |k: &str| o.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let node = match t {
            "string" => Node::Str {
                min: usize_of("minLength").unwrap_or(0),
                max: usize_of("maxLength"),
            },
            "number" => Node::Num { integer: false },
            "integer" => Node::Num { integer: true },
            "boolean" => {
                let t = self.push(Node::Lit("true".into()));
                let f = self.push(Node::Lit("false".into()));
                Node::Union(vec![t, f])
            }
            "null" => Node::Lit("null".into()),
            "array" => {
                let items = match o.get("items") {
                    Some(s) => self.compile(s, depth + 1)?,
                    None => ANY,
                };
                let (min, max) = (usize_of("minItems").unwrap_or(0), usize_of("maxItems"));
                if max.is_some_and(|m| m < min) {
                    return Err("`maxItems` is below `minItems`".into());
                }
                Node::Array { items, min, max }
            }
            "object" => {
                let Some(props) = o.get("properties").and_then(Value::as_object) else {
                    // no declared properties: any object
                    return Ok(self.push(Node::AnyObject));
                };
                let required: Vec<&str> = o
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if let Some(missing) = required.iter().find(|r| !props.contains_key(**r)) {
                    return Err(format!(
                        "`required` names `{missing}`, which is not among the properties"
                    ));
                }
                // the order the schema gave (Gemini's `propertyOrdering`,
                // which the API layer records from the request), else key order
                let mut keys: Vec<&String> = vec![];
                if let Some(order) = o.get("propertyOrdering").and_then(Value::as_array) {
                    for k in order.iter().filter_map(Value::as_str) {
                        if let Some((k, _)) = props.get_key_value(k) {
                            if !keys.contains(&k) {
                                keys.push(k);
                            }
                        }
                    }
                }
                // sorted here: how a build's JSON maps order keys varies
                let mut rest: Vec<&String> = props.keys().filter(|k| !keys.contains(k)).collect();
                rest.sort();
                keys.extend(rest);
                let mut list = vec![];
                for k in keys {
                    let v = &props[k];
                    let id = self.compile(v, depth + 1)?;
                    let key: Rc<str> = Value::String(k.clone()).to_string().into();
                    list.push((key, id, required.contains(&k.as_str())));
                }
                Node::Object(list)
            }
            other => return Err(format!("`type` `{other}` is not a JSON Schema type")),
        };
        Ok(self.push(node))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    /// After the opener.
    Open,
    /// After a comma.
    Next,
    /// After a member.
    After,
    /// After a free object's key.
    Colon,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Frame {
    /// A value of this node, not started.
    Value(NodeId),
    /// The rest of a literal.
    Lit(Rc<str>, usize),
    /// Inside a string: escape state (0 none, 1 after `\`, 2..=5 hex digits
    /// to come), characters so far, bounds.
    Str {
        escape: u8,
        len: usize,
        min: usize,
        max: Option<usize>,
    },
    Num {
        text: String,
        integer: bool,
    },
    Array {
        node: NodeId,
        count: usize,
        at: Place,
    },
    /// An object of declared properties; `next`: the first not yet passed.
    Object {
        node: NodeId,
        next: usize,
        at: Place,
    },
    /// Any object or array (`Value(Any)` once started).
    AnyObject(Place),
    AnyArray(Place),
    /// One optional space.
    Space,
}

/// A reader partway through a text.
#[derive(Debug, Clone)]
pub struct GrammarState {
    threads: Vec<Vec<Frame>>,
}

impl GrammarState {
    /// Reads `s`; what the text so far is.
    pub(super) fn feed(&mut self, g: &Grammar, s: &str) -> Prefix {
        for c in s.chars() {
            if self.threads.is_empty() {
                break;
            }
            let mut next = Vec::with_capacity(self.threads.len());
            for t in std::mem::take(&mut self.threads) {
                step(g, t, c, &mut next, 0);
            }
            next.dedup();
            let mut seen = std::collections::HashSet::new();
            next.retain(|t| seen.insert(t.clone()));
            next.truncate(MAX_THREADS);
            self.threads = next;
        }
        self.status()
    }

    pub(super) fn status(&self) -> Prefix {
        if self.threads.is_empty() {
            Prefix::Invalid
        } else if self.threads.iter().any(Vec::is_empty) {
            Prefix::Complete
        } else {
            Prefix::Partial
        }
    }
}

/// Numbers are cut at 16 digits before the point and 8 after (and 3 of
/// exponent): a model otherwise writes digits until it runs out of tokens.
fn short_number(t: &str) -> bool {
    let (mantissa, exp) = t.split_once(['e', 'E']).unwrap_or((t, ""));
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).count();
    digits(int) <= 16 && digits(frac) <= 8 && digits(exp) <= 3
}

fn number_char(c: char, integer: bool) -> bool {
    c.is_ascii_digit() || c == '-' || (!integer && matches!(c, '.' | 'e' | 'E' | '+'))
}

/// Advances one thread by `c`, pushing every thread that results.
fn step(g: &Grammar, mut t: Vec<Frame>, c: char, out: &mut Vec<Vec<Frame>>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Some(top) = t.pop() else {
        return; // the value is complete: nothing may follow
    };
    let mut go = |mut t: Vec<Frame>, push: &[Frame]| {
        t.extend_from_slice(push);
        out.push(t);
    };
    match top {
        Frame::Value(n) => match &g.nodes[n] {
            Node::Any => match c {
                '{' => go(t, &[Frame::AnyObject(Place::Open)]),
                '[' => go(t, &[Frame::AnyArray(Place::Open)]),
                '"' => go(t, &[str_frame(0, None)]),
                '-' | '0'..='9' => go(
                    t,
                    &[Frame::Num {
                        text: c.to_string(),
                        integer: false,
                    }],
                ),
                't' => go(t, &[Frame::Lit("true".into(), 1)]),
                'f' => go(t, &[Frame::Lit("false".into(), 1)]),
                'n' => go(t, &[Frame::Lit("null".into(), 1)]),
                _ => {}
            },
            Node::AnyObject => {
                if c == '{' {
                    go(t, &[Frame::AnyObject(Place::Open)]);
                }
            }
            Node::Lit(text) => {
                t.push(Frame::Lit(text.clone(), 0));
                step(g, t, c, out, depth + 1);
            }
            &Node::Str { min, max } => {
                if c == '"' {
                    go(t, &[str_frame(min, max)]);
                }
            }
            &Node::Num { integer } => {
                if c == '-' || c.is_ascii_digit() {
                    go(
                        t,
                        &[Frame::Num {
                            text: c.to_string(),
                            integer,
                        }],
                    );
                }
            }
            Node::Array { .. } => {
                if c == '[' {
                    go(
                        t,
                        &[Frame::Array {
                            node: n,
                            count: 0,
                            at: Place::Open,
                        }],
                    );
                }
            }
            Node::Object(_) => {
                if c == '{' {
                    go(
                        t,
                        &[Frame::Object {
                            node: n,
                            next: 0,
                            at: Place::Open,
                        }],
                    );
                }
            }
            Node::Union(alts) => {
                for &a in alts {
                    let mut t = t.clone();
                    t.push(Frame::Value(a));
                    step(g, t, c, out, depth + 1);
                }
            }
            Node::Seq(items) => {
                t.extend(items.iter().rev().map(|&i| Frame::Value(i)));
                step(g, t, c, out, depth + 1);
            }
            Node::Pending => {}
        },
        Frame::Lit(text, pos) => {
            if text[pos..].starts_with(c) {
                let pos = pos + c.len_utf8();
                if pos < text.len() {
                    t.push(Frame::Lit(text, pos));
                }
                out.push(t);
            }
        }
        Frame::Str {
            escape,
            len,
            min,
            max,
        } => {
            let esc = match (escape, c) {
                (0, '"') if len >= min => return out.push(t),
                (0, '"') => return,
                (0, '\\') => 1,
                (0, c) if (c as u32) < 0x20 => return,
                (0, _) => 0,
                (1, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => 0,
                (1, 'u') => 5,
                (1, _) => return,
                (e, h) if h.is_ascii_hexdigit() => {
                    if e == 2 {
                        0
                    } else {
                        e - 1
                    }
                }
                _ => return,
            };
            // a character counts once its escape (if any) is complete
            let len = if esc == 0 { len + 1 } else { len };
            if max.is_some_and(|m| len > m) {
                return;
            }
            go(
                t,
                &[Frame::Str {
                    escape: esc,
                    len,
                    min,
                    max,
                }],
            );
        }
        Frame::Num { mut text, integer } => {
            if number_char(c, integer) {
                text.push(c);
                if super::json::number_prefix(&text) && short_number(&text) {
                    go(t, &[Frame::Num { text, integer }]);
                }
            } else if super::json::valid_number(&text) {
                // the number ends here; the character belongs to what follows
                step(g, t, c, out, depth + 1);
            }
        }
        Frame::Space => {
            if c == ' ' {
                out.push(t);
            } else {
                step(g, t, c, out, depth + 1);
            }
        }
        Frame::Array { node, count, at } => {
            let Node::Array { items, min, max } = g.nodes[node] else {
                return;
            };
            let more = max.is_none_or(|m| count < m);
            match (at, c) {
                (Place::Open | Place::After, ']') if count >= min => out.push(t),
                (Place::After, ',') if more => go(
                    t,
                    &[
                        Frame::Array {
                            node,
                            count,
                            at: Place::Next,
                        },
                        Frame::Space,
                    ],
                ),
                (Place::Open | Place::Next, _) if more => {
                    t.push(Frame::Array {
                        node,
                        count: count + 1,
                        at: Place::After,
                    });
                    t.push(Frame::Value(items));
                    step(g, t, c, out, depth + 1);
                }
                _ => {}
            }
        }
        Frame::Object { node, next, at } => {
            let Node::Object(props) = &g.nodes[node] else {
                return;
            };
            let rest = &props[next..];
            let required_left = rest.iter().any(|p| p.2);
            match (at, c) {
                (Place::Open | Place::After, '}') if !required_left => out.push(t),
                (Place::After, ',') if !rest.is_empty() => go(
                    t,
                    &[
                        Frame::Object {
                            node,
                            next,
                            at: Place::Next,
                        },
                        Frame::Space,
                    ],
                ),
                (Place::Open | Place::Next, '"') => {
                    // any property up to and including the next required one
                    for (i, (key, value, required)) in rest.iter().enumerate() {
                        let mut t = t.clone();
                        t.extend([
                            Frame::Object {
                                node,
                                next: next + i + 1,
                                at: Place::After,
                            },
                            Frame::Value(*value),
                            Frame::Space,
                            Frame::Lit(":".into(), 0),
                            Frame::Lit(key.clone(), 1),
                        ]);
                        out.push(t);
                        if *required {
                            break;
                        }
                    }
                }
                _ => {}
            }
        }
        Frame::AnyObject(at) => match (at, c) {
            (Place::Open | Place::After, '}') => out.push(t),
            (Place::Open | Place::Next, '"') => {
                go(t, &[Frame::AnyObject(Place::Colon), str_frame(0, None)])
            }
            (Place::Colon, ':') => go(
                t,
                &[
                    Frame::AnyObject(Place::After),
                    Frame::Value(ANY),
                    Frame::Space,
                ],
            ),
            (Place::After, ',') => go(t, &[Frame::AnyObject(Place::Next), Frame::Space]),
            _ => {}
        },
        Frame::AnyArray(at) => match (at, c) {
            (Place::Open | Place::After, ']') => out.push(t),
            (Place::After, ',') => go(t, &[Frame::AnyArray(Place::Next), Frame::Space]),
            (Place::Open | Place::Next, _) => {
                t.extend([Frame::AnyArray(Place::After), Frame::Value(ANY)]);
                step(g, t, c, out, depth + 1);
            }
            _ => {}
        },
    }
}

/// Every grammar's node 0 is `Any` (`Grammar::from_schema` puts it there).
const ANY: NodeId = 0;

fn str_frame(min: usize, max: Option<usize>) -> Frame {
    Frame::Str {
        escape: 0,
        len: 0,
        min,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: &Value, cases: &[(&str, Prefix)]) {
        let g = Grammar::from_schema(schema).unwrap();
        for (s, want) in cases {
            assert_eq!(g.start().feed(&g, s), *want, "{s:?}");
            // fed in two pieces, split anywhere: the same answer
            for (i, _) in s.char_indices() {
                let mut st = g.start();
                st.feed(&g, &s[..i]);
                assert_eq!(st.feed(&g, &s[i..]), *want, "{s:?} split at {i}");
            }
        }
    }

    #[test]
    fn objects_follow_their_properties() {
        use Prefix::*;
        let person = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 5},
                "age": {"type": "integer"},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "maxItems": 2},
                "pet": {"type": ["string", "null"]},
            },
            "required": ["name", "age"],
        });
        // without `propertyOrdering`, properties come in key order
        check(
            &person,
            &[
                ("{\"age\": 31, \"name\": \"Ann\"}", Complete),
                (
                    "{\"age\":-3,\"name\":\"Ann\",\"pet\":null,\"tags\":[\"a\", \"b\"]}",
                    Complete,
                ),
                (
                    "{\"age\": 31, \"name\": \"Ann\", \"pet\": \"cat\"}",
                    Complete,
                ),
                ("{\"name\": \"Ann\"", Invalid),
                ("{\"age\": 31}", Invalid),
                ("{\"age\": 3.5", Invalid),
                ("{\"age\": 12345678901234567", Invalid),
                ("{\"age\": 1, \"name\": \"Annabel\"", Invalid),
                ("{\"age\": 1, \"name\": \"A\\u00e9\"}", Complete),
                ("{\"age\": 1, \"name\": \"A\", \"tags\": [\"c\"", Invalid),
                (
                    "{\"age\": 1, \"name\": \"A\", \"tags\": [\"a\", \"a\", \"a\"",
                    Invalid,
                ),
                ("{\"age\": 1, \"name\": \"A\", \"x\": 1", Invalid),
                ("{\"age\": 1, \"name\": \"A\", \"pet\": 1", Invalid),
                ("{\"age\":  1", Invalid),
                ("{ \"age\"", Invalid),
                ("{\"age\": 1, \"name\": \"A\"}}", Invalid),
                ("{\"age\": 1, \"name\": \"A\",", Partial),
                ("{\"age\": 1, \"name\": \"A\", \"pet\": nu", Partial),
            ],
        );
    }

    #[test]
    fn property_ordering_is_followed() {
        let s = json!({"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
            "required": ["a", "b"], "propertyOrdering": ["b", "a"]});
        check(
            &s,
            &[
                ("{\"b\": 1, \"a\": 2}", Prefix::Complete),
                ("{\"a\"", Prefix::Invalid),
            ],
        );
    }

    #[test]
    fn refs_unions_and_free_values() {
        use Prefix::*;
        let tree = json!({
            "$defs": {"node": {"type": "object", "properties": {
                "v": {"type": "number"},
                "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            }, "required": ["v", "kids"]}},
            "$ref": "#/$defs/node",
        });
        check(
            &tree,
            &[
                (
                    "{\"kids\": [{\"kids\": [], \"v\": 2.5e3}], \"v\": 1}",
                    Complete,
                ),
                ("{\"kids\": [{\"kids\": [1]", Invalid),
            ],
        );
        let any = json!({"type": "object", "properties": {
            "data": {},
            "meta": {"type": "object"},
            "kind": {"anyOf": [{"const": 1}, {"type": "boolean"}]},
        }, "required": ["data", "meta", "kind"]});
        check(
            &any,
            &[
                (
                    "{\"data\": [1, {\"x\": null}], \"kind\": 1, \"meta\": {\"a\": [true]}}",
                    Complete,
                ),
                ("{\"data\": 0, \"kind\": false, \"meta\": {}}", Complete),
                ("{\"data\": 0, \"kind\": 1, \"meta\": []}", Invalid),
                ("{\"data\": 0, \"kind\": 2}", Invalid),
            ],
        );
    }

    #[test]
    fn what_cannot_be_enforced_is_refused_by_name() {
        for (schema, word) in [
            (json!({"type": "string", "pattern": "^a"}), "pattern"),
            (json!({"type": "date"}), "date"),
            (json!({"$ref": "#/$defs/none"}), "points at nothing"),
            (json!({"$ref": "http://x/y"}), "into this schema"),
            (
                json!({"type": "object", "properties": {}, "required": ["a"]}),
                "`a`",
            ),
            (json!({"enum": []}), "empty"),
        ] {
            let e = Grammar::from_schema(&schema).unwrap_err();
            assert!(e.contains(word), "{schema}: {e}");
        }
    }

    #[test]
    fn a_wrapped_call_needs_its_markers() {
        let g = Grammar::from_constraint(&json!({
            "prefix": "<tool_call>\n",
            "schema": {"type": "object", "properties": {"name": {"const": "f"}}, "required": ["name"]},
            "suffix": "\n</tool_call>",
        }))
        .unwrap();
        assert_eq!(
            g.start()
                .feed(&g, "<tool_call>\n{\"name\": \"f\"}\n</tool_call>"),
            Prefix::Complete
        );
        assert_eq!(g.start().feed(&g, "{\"name\""), Prefix::Invalid);
    }
}
