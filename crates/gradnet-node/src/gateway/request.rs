//! A client's request as the gateway reads it: the model, the mode and
//! quorum it asks, whether it streams, and the body each node gets (the
//! same request in VANILLA: each node answers for itself, and the gateway
//! makes the verified answer out of their receipts). The body's tensors
//! and messages are not parsed, only carried.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use gradnet_api::error::{JsonBody, HEADER_LENGTH};
use gradnet_api::ApiError;
use gradnet_types::InferenceMode;
use serde_json::value::RawValue;

/// Which route a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /v1/infer`.
    Infer,
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
}

impl Route {
    /// Its path (the same on nodes).
    pub fn path(self) -> &'static str {
        match self {
            Route::Infer => "/v1/infer",
            Route::Chat => "/v1/chat/completions",
            Route::Completions => "/v1/completions",
        }
    }

    /// Whether it runs an LLM.
    pub fn llm(self) -> bool {
        self != Route::Infer
    }
}

/// Header naming the mode for OpenAI routes (whose bodies may also carry `mode`).
pub const MODE_HEADER: &str = "x-gradnet-mode";
/// Header naming the quorum size (bodies may also carry `quorum`).
pub const QUORUM_HEADER: &str = "x-gradnet-quorum";

/// A request ready to send on.
pub struct Shaped {
    /// The route it came to.
    pub route: Route,
    /// The model as the client named it.
    pub model: String,
    /// The mode asked.
    pub mode: InferenceMode,
    /// Nodes that must agree (QUORUM).
    pub quorum: usize,
    /// The client asked for a stream.
    pub stream: bool,
    /// Tokens an LLM answer may take, as asked.
    pub max_tokens: Option<u64>,
    /// What each node is sent.
    pub body: Bytes,
    /// Headers for the nodes.
    pub headers: HeaderMap,
    fields: BTreeMap<String, Box<RawValue>>,
    binary: Option<Bytes>,
}

impl Shaped {
    /// A field of the request as sent.
    pub fn field(&self, k: &str) -> Option<&RawValue> {
        self.fields.get(k).map(|v| &**v)
    }

    /// Asks nodes for a stream's token usage in its last chunk (a gateway
    /// that charges by it).
    pub fn include_usage(&mut self) {
        self.fields
            .insert("stream_options".into(), raw(r#"{"include_usage":true}"#));
        let (body, headers) = encode(&self.fields, self.binary.as_ref(), &self.headers);
        self.body = body;
        self.headers = headers;
    }

    /// Names the model by `cid` in what nodes are sent (so that every node
    /// asked runs the same bytes, whatever its names say).
    pub fn pin_model(&mut self, cid: &gradnet_types::ContentId) {
        let v = serde_json::to_string(&cid.to_string()).expect("a string");
        self.fields.insert("model".into(), raw(&v));
        let (body, headers) = encode(&self.fields, self.binary.as_ref(), &self.headers);
        self.body = body;
        self.headers = headers;
    }
}

fn encode(
    fields: &BTreeMap<String, Box<RawValue>>,
    binary: Option<&Bytes>,
    headers: &HeaderMap,
) -> (Bytes, HeaderMap) {
    let json = serde_json::to_vec(fields).expect("raw JSON values serialize");
    let mut out = headers.clone();
    let body = match binary {
        None => Bytes::from(json),
        Some(data) => {
            out.insert(HEADER_LENGTH, HeaderValue::from(json.len()));
            Bytes::from([&json[..], data].concat())
        }
    };
    (body, out)
}

fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", m)
}

/// Reads the request and makes the body nodes get: `mode` and `quorum`
/// taken out (each node answers as VANILLA), a QUORUM stream asked of
/// nodes whole (the gateway streams the agreed answer).
pub fn shape(route: Route, headers: &HeaderMap, body: &JsonBody) -> Result<Shaped, ApiError> {
    let mut fields: BTreeMap<String, Box<RawValue>> = body.parse()?;
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        fields
            .get(k)
            .map(|v| serde_json::from_str::<String>(v.get()))
            .transpose()
            .map_err(|_| invalid(format!("`{k}` must be a string")).with_param("model"))
    };
    let model = text("model")?.ok_or_else(|| invalid("the request names no `model`"))?;
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok());
    let mode = match (fields.get("mode"), header(MODE_HEADER)) {
        (Some(v), _) => serde_json::from_str::<InferenceMode>(v.get())
            .map_err(|e| invalid(format!("`mode`: {e}")))?,
        (None, Some(h)) => h
            .parse::<InferenceMode>()
            .map_err(|e| invalid(format!("{MODE_HEADER}: {e}")))?,
        (None, None) => InferenceMode::Vanilla,
    };
    let quorum = match (fields.get("quorum"), header(QUORUM_HEADER)) {
        (Some(v), _) => serde_json::from_str::<u32>(v.get()).ok(),
        (None, Some(h)) => h.trim().parse::<u32>().ok(),
        (None, None) => Some(gradnet_inference::sidecar::DEFAULT_QUORUM as u32),
    }
    .filter(|q| (1..=gradnet_types::certificate::MAX_QUORUM).contains(q))
    .ok_or_else(|| {
        invalid(format!(
            "`quorum` must be a whole number from 1 to {}",
            gradnet_types::certificate::MAX_QUORUM
        ))
    })? as usize;
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| fields.get(*k))
        .and_then(|v| v.get().trim().parse::<u64>().ok());
    let stream = fields
        .get("stream")
        .is_some_and(|v| v.get().trim() == "true");
    fields.remove("mode");
    fields.remove("quorum");
    if mode == InferenceMode::Quorum && stream {
        fields.insert("stream".into(), raw("false"));
        fields.remove("stream_options");
    }
    let binary = body.binary().map(Bytes::copy_from_slice);
    let (body, headers) = encode(
        &fields,
        binary.as_ref(),
        &crate::gateway::upstream::forwarded(headers),
    );
    Ok(Shaped {
        route,
        model,
        mode,
        quorum,
        stream,
        max_tokens,
        body,
        headers,
        fields,
        binary,
    })
}

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_string()).expect("valid JSON")
}
