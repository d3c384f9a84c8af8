//! OpenAI's chat and completion request shapes, as clients send them, and
//! their normalized form: what a node runs and what a receipt's request hash
//! covers.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `stop`: one string or a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResponseFormat {
    #[serde(rename = "type")]
    pub kind: String,
    /// With `json_schema`: `{name, schema, strict, description}`.
    pub json_schema: Option<JsonSchemaFormat>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: Option<String>,
    pub schema: Option<Ordered>,
    #[serde(default)]
    pub strict: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

/// JSON as the client wrote it, with the key order of every `properties`
/// object recorded beside it as `propertyOrdering` (as Gemini's schemas
/// spell it): parsed JSON objects are sorted, and a schema's properties are
/// generated in the order the client gave.
#[derive(Debug, Clone, Default)]
pub struct Ordered(pub Value);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor).map(|(v, _)| Ordered(v))
    }
}

struct OrderedVisitor;
/// A value, and for an object its keys in the order written.
struct Keyed(Value, Vec<String>);

impl<'de> Deserialize<'de> for Keyed {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OrderedVisitor).map(|(v, k)| Keyed(v, k))
    }
}

impl<'de> serde::de::Visitor<'de> for OrderedVisitor {
    type Value = (Value, Vec<String>);
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok((Value::Bool(v), vec![]))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok((Value::from(v), vec![]))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok((Value::from(v), vec![]))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok((Value::from(v), vec![]))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok((Value::String(v.into()), vec![]))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok((Value::String(v), vec![]))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, vec![]))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, vec![]))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut v = vec![];
        while let Some(Keyed(x, _)) = a.next_element()? {
            v.push(x);
        }
        Ok((Value::Array(v), vec![]))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut m = serde_json::Map::new();
        let mut keys = vec![];
        let mut order = None;
        while let Some((k, Keyed(v, inner))) = a.next_entry::<String, Keyed>()? {
            if k == "properties" && v.is_object() {
                order = Some(inner);
            }
            keys.push(k.clone());
            m.insert(k, v);
        }
        if let Some(order) = order {
            m.entry("propertyOrdering").or_insert(json!(order));
        }
        Ok((Value::Object(m), keys))
    }
}

/// `v` without the `propertyOrdering` entries `Ordered` added (what a chat
/// template shows the model), keys sorted as in [`canonical`].
pub fn without_ordering(v: &Value) -> Value {
    canonical_where(v, &|k| k != "propertyOrdering")
}

/// `v` with every object's keys in sorted order, whichever way this build's
/// JSON maps keep them: what is hashed or shown to a model must not depend
/// on how the node was compiled.
pub fn canonical(v: &Value) -> Value {
    canonical_where(v, &|_| true)
}

fn canonical_where(v: &Value, keep: &dyn Fn(&str) -> bool) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: std::collections::BTreeMap<&String, Value> = m
                .iter()
                .filter(|(k, _)| keep(k))
                .map(|(k, v)| (k, canonical_where(v, keep)))
                .collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| canonical_where(x, keep)).collect()),
        x => x.clone(),
    }
}

/// A message's `content`: a string, or a list of parts of which text parts
/// are read.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Value>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    /// Some clients send it back with assistant messages; it is ignored.
    #[serde(default)]
    pub refusal: Option<Value>,
}

/// Sampling fields shared by both endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct Sampling {
    pub max_tokens: Option<i64>,
    pub max_completion_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub n: Option<i64>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub presence_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    /// Chat: a boolean; completions: how many alternatives (0-5).
    pub logprobs: Option<Value>,
    /// Chat: how many alternatives (0-20), with `logprobs: true`.
    pub top_logprobs: Option<i64>,
    /// Token id (as a string) to a bias in [-100, 100].
    pub logit_bias: Option<serde_json::Map<String, Value>>,
    pub user: Option<String>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<MessageIn>,
    #[serde(flatten)]
    pub sampling: Sampling,
    pub response_format: Option<ResponseFormat>,
    pub tools: Option<Ordered>,
    pub tool_choice: Option<Value>,
    pub parallel_tool_calls: Option<bool>,
    /// Anything else: refused by name, as OpenAI does.
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, Value>,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Value,
    #[serde(flatten)]
    pub sampling: Sampling,
    #[serde(flatten)]
    pub unknown: serde_json::Map<String, Value>,
}

/// What a request asks the model to do, with defaults applied: hashed
/// (as compact JSON, fields in this order) into the receipt's request hash.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Normalized {
    /// `chat` or `completion`.
    pub kind: &'static str,
    /// The prompt exactly as the model reads it (chat template applied).
    pub prompt: String,
    pub max_tokens: Option<u64>,
    pub temperature: f64,
    pub top_p: Option<f64>,
    pub seed: u64,
    pub stop: Vec<String>,
    pub json_mode: bool,
    /// What the answer is constrained to: `{"schema": …}` (a JSON Schema),
    /// with `prefix`/`suffix` text around it for a tool call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Value>,
    /// Biases by token id, in id order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logit_bias: Vec<(u32, f32)>,
    /// How many alternatives each token's log-probability comes with
    /// (`None`: no log-probabilities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
}

/// A request the node cannot take, with the field it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub param: &'static str,
    pub message: String,
}

fn invalid(param: &'static str, message: impl Into<String>) -> Invalid {
    Invalid {
        param,
        message: message.into(),
    }
}

/// Roles a chat message may have (`developer` is read as `system`).
pub const ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

impl MessageIn {
    pub fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(Content::Text(t)) => t.clone(),
            Some(Content::Parts(parts)) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.clone())
                .collect::<Vec<_>>()
                .join(""),
        }
    }
}

pub fn check_messages(messages: &[MessageIn]) -> Result<(), Invalid> {
    if messages.is_empty() {
        return Err(invalid(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(invalid(
                "messages",
                format!(
                    "messages[{i}].role `{}` is not one of system, developer, user, assistant, tool",
                    m.role
                ),
            ));
        }
        if let Some(Content::Parts(parts)) = &m.content {
            if let Some(p) = parts.iter().find(|p| p.kind != "text") {
                return Err(invalid(
                    "messages",
                    format!(
                        "messages[{i}] has a `{}` part; this model reads text only",
                        p.kind
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl Sampling {
    /// Checks the fields and applies defaults.
    pub fn normalize(
        &self,
        kind: &'static str,
        prompt: String,
        json_mode: bool,
    ) -> Result<Normalized, Invalid> {
        let max = match (self.max_completion_tokens, self.max_tokens) {
            (Some(m), _) | (None, Some(m)) if m < 1 => {
                return Err(invalid(
                    "max_tokens",
                    format!("max_tokens must be at least 1, got {m}"),
                ))
            }
            (Some(m), _) | (None, Some(m)) => Some(m as u64),
            (None, None) => None,
        };
        let temperature = self.temperature.unwrap_or(1.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(invalid(
                "temperature",
                format!("temperature must be between 0 and 2, got {temperature}"),
            ));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(invalid(
                    "top_p",
                    format!("top_p must be in (0, 1], got {p}"),
                ));
            }
        }
        if let Some(n) = self.n {
            if !(1..=MAX_CHOICES as i64).contains(&n) {
                return Err(invalid(
                    "n",
                    format!("n must be between 1 and {MAX_CHOICES}, got {n}"),
                ));
            }
        }
        for (param, v) in [
            ("presence_penalty", self.presence_penalty),
            ("frequency_penalty", self.frequency_penalty),
        ] {
            if v.is_some_and(|v| v != 0.0) {
                return Err(invalid(param, format!("{param} is not supported (only 0)")));
            }
        }
        let logprobs = self.logprobs(kind)?;
        let mut logit_bias = vec![];
        for (k, v) in self.logit_bias.iter().flatten() {
            let id: u32 = k.parse().map_err(|_| {
                invalid(
                    "logit_bias",
                    format!("logit_bias keys are token ids, got `{k}`"),
                )
            })?;
            let b = v
                .as_f64()
                .filter(|b| (-100.0..=100.0).contains(b))
                .ok_or_else(|| {
                    invalid(
                        "logit_bias",
                        format!("logit_bias[{k}] must be a number in [-100, 100], got {v}"),
                    )
                })?;
            logit_bias.push((id, b as f32));
        }
        logit_bias.sort_by_key(|x| x.0);
        let stop = match &self.stop {
            None => vec![],
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 4 {
            return Err(invalid("stop", "at most 4 stop sequences"));
        }
        let seed = match self.seed {
            None => 0,
            Some(s) => s as u64,
        };
        Ok(Normalized {
            kind,
            prompt,
            max_tokens: max,
            temperature,
            top_p: self.top_p,
            seed,
            stop,
            json_mode,
            constraint: None,
            logit_bias,
            logprobs,
        })
    }

    /// How many choices (`n`).
    pub fn choices(&self) -> usize {
        self.n.unwrap_or(1).max(1) as usize
    }

    fn logprobs(&self, kind: &str) -> Result<Option<u8>, Invalid> {
        if kind == "chat" {
            let on = match &self.logprobs {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::Bool(true)) => true,
                Some(v) => {
                    return Err(invalid(
                        "logprobs",
                        format!("logprobs must be a boolean, got {v}"),
                    ))
                }
            };
            return match self.top_logprobs {
                None if on => Ok(Some(0)),
                None => Ok(None),
                Some(k) if !(0..=20).contains(&k) => Err(invalid(
                    "top_logprobs",
                    format!("top_logprobs must be between 0 and 20, got {k}"),
                )),
                Some(_) if !on => Err(invalid("top_logprobs", "top_logprobs needs logprobs: true")),
                Some(k) => Ok(Some(k as u8)),
            };
        }
        match &self.logprobs {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_i64() {
                Some(k) if (0..=5).contains(&k) => Ok(Some(k as u8)),
                _ => Err(invalid(
                    "logprobs",
                    format!("logprobs must be an integer between 0 and 5, got {v}"),
                )),
            },
        }
    }
}

/// The most choices (`n`) one request may ask for.
pub const MAX_CHOICES: usize = 8;

/// Documented OpenAI fields that change nothing here: accepted and
/// ignored, as OpenAI's own API does for models they do not apply to.
const IGNORED: [&str; 9] = [
    "store",
    "metadata",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "verbosity",
    "prediction",
];

/// Refuses fields the node does not know or cannot honour, naming them;
/// documented fields that change nothing are accepted.
pub fn check_unknown(unknown: &serde_json::Map<String, Value>) -> Result<(), Invalid> {
    for (k, v) in unknown {
        let refuse = |why: &str| Err(invalid("request", format!("`{k}`: {why}")));
        match k.as_str() {
            k if IGNORED.contains(&k) => {}
            "modalities" if *v == json!(["text"]) || v.is_null() => {}
            "modalities" => return refuse("only [\"text\"] is served"),
            "audio" | "web_search_options" if v.is_null() => {}
            "audio" => return refuse("audio output is not served"),
            "web_search_options" => return refuse("web search is not served"),
            "functions" | "function_call" => {
                return refuse("deprecated by OpenAI; send `tools` and `tool_choice`")
            }
            "echo" if *v == json!(false) => {}
            "echo" => return refuse("echoing the prompt is not supported"),
            "suffix" if v.is_null() => {}
            "suffix" => return refuse("insertion (suffix) is not supported"),
            "best_of" if v.is_null() || *v == json!(1) => {}
            "best_of" => return refuse("only 1 is supported; ask for `n` choices instead"),
            _ => {
                return Err(invalid(
                    "request",
                    format!("Unrecognized request argument supplied: {k}"),
                ))
            }
        }
    }
    Ok(())
}
