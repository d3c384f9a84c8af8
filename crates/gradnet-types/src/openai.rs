//! OpenAI's chat and completion request shapes, as clients send them, and
//! their normalized form: what a node runs and what a receipt's request hash
//! covers.

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    pub logprobs: Option<bool>,
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
    pub tools: Option<Value>,
    pub tool_choice: Option<Value>,
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
            if n != 1 {
                return Err(invalid(
                    "n",
                    format!("n must be 1 (one choice per request), got {n}"),
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
        if self.logprobs == Some(true) {
            return Err(invalid("logprobs", "logprobs are not supported"));
        }
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
        })
    }
}

/// Refuses fields the node does not know, naming them.
pub fn check_unknown(unknown: &serde_json::Map<String, Value>) -> Result<(), Invalid> {
    match unknown.keys().next() {
        None => Ok(()),
        Some(k) => Err(invalid(
            "request",
            format!("Unrecognized request argument supplied: {k}"),
        )),
    }
}
