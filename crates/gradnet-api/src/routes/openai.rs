//! OpenAI-compatible LLM serving: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/completions`, streaming as server-sent events. Every answer
//! carries a signed receipt: in the `gradnet_receipt` field, in the
//! `X-Gradnet-Receipt` header, and in the last chunk of a stream.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::header::HeaderName;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use gradnet_runtime::llm::{ChatMessage, FinishReason, Generated, LlmModel, SamplingParams};
use gradnet_types::openai::{
    check_messages, check_unknown, ChatRequest, CompletionRequest, Invalid, Normalized, Sampling,
};
use gradnet_types::receipt::RECEIPT_VERSION;
use gradnet_types::request::{llm_output_hash, llm_request_hash};
use gradnet_types::{now_ms, ContentId, InferenceMode, ModelRef, Receipt, ReceiptBody};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, JsonBody};
use crate::AppState;

pub const RECEIPT_HEADER: &str = "x-gradnet-receipt";

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_request("invalid_request", e.message).with_param(e.param)
    }
}

/// A model name as clients write it: a content id, `repo`, `repo@version`
/// (the version's `.gguf` file), or `repo@version/file`.
fn resolve(s: &AppState, name: &str) -> Result<ContentId, ApiError> {
    if ContentId::looks_like(name) || name.contains('/') {
        let r: ModelRef = name
            .parse()
            .map_err(|e: gradnet_types::request::ModelRefError| {
                ApiError::not_found(format!("The model `{name}` does not exist: {e}"))
            })?;
        return Ok(s.hub.resolve(&r)?);
    }
    let (repo, version) = match name.split_once('@') {
        Some((r, v)) => (r, Some(v).filter(|v| !v.is_empty() && *v != "latest")),
        None => (name, None),
    };
    s.hub
        .find_file(repo, version, ".gguf")
        .map(|f| f.cid)
        .map_err(|e| match e {
            gradnet_hub::HubError::NotFound(_) | gradnet_hub::HubError::Invalid(_) => {
                ApiError::not_found(format!("The model `{name}` does not exist ({e})"))
            }
            e => e.into(),
        })
}

async fn load(s: &AppState, cid: ContentId) -> Result<Arc<LlmModel>, ApiError> {
    if let Some(m) = s.llm.cached(&cid) {
        return Ok(m);
    }
    let bytes = s.hub.read_all(&cid).await?;
    let llm = s.llm.clone();
    Ok(tokio::task::spawn_blocking(move || llm.load(cid, &bytes)).await??)
}

/// `GET /v1/models`: repositories whose latest version holds a GGUF file.
pub async fn list_models(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut data = vec![];
    for r in s.hub.list_repos()? {
        if s.hub.find_file(&r.name, None, ".gguf").is_ok() {
            data.push(json!({
                "id": r.name,
                "object": "model",
                "created": r.created_at_ms / 1000,
                "owned_by": if r.owner.is_empty() { "gradnet" } else { r.owner.as_str() },
            }));
        }
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn chat(State(s): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let req: ChatRequest = body.parse()?;
    check_unknown(&req.unknown)?;
    check_messages(&req.messages)?;
    let json_mode = match &req.response_format {
        None => false,
        Some(f) if f.kind == "text" => false,
        Some(f) if f.kind == "json_object" => true,
        Some(f) => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "response_format type `{}` is not supported (text, json_object)",
                    f.kind
                ),
            )
            .with_param("response_format"))
        }
    };
    let cid = resolve(&s, &req.model)?;
    let model = load(&s, cid).await?;
    // tool_choice: "auto" (default) or "none"; forcing a call cannot be enforced
    let tools = match req.tool_choice.as_ref().and_then(Value::as_str) {
        None | Some("auto") if req.tool_choice.as_ref().is_none_or(Value::is_string) => {
            req.tools.clone()
        }
        Some("none") => None,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "tool_choice must be \"auto\" or \"none\"",
            )
            .with_param("tool_choice"))
        }
    };
    if tools.is_some() && !model.info.supports_tools {
        return Err(ApiError::bad_request(
            "invalid_request",
            format!(
                "the chat template of `{}` does not support tools",
                req.model
            ),
        )
        .with_param("tools"));
    }
    let messages: Vec<ChatMessage> = req
        .messages
        .iter()
        .map(|m| ChatMessage {
            role: if m.role == "developer" {
                "system".into()
            } else {
                m.role.clone()
            },
            content: m.text(),
            name: m.name.clone(),
            tool_calls: m.tool_calls.clone(),
            tool_call_id: m.tool_call_id.clone(),
        })
        .collect();
    let prompt = model.chat_prompt(&messages, tools.as_ref())?;
    let norm = req.sampling.normalize("chat", prompt, json_mode)?;
    serve(
        s,
        model,
        cid,
        req.model,
        norm,
        &req.sampling,
        tools.is_some(),
    )
    .await
}

pub async fn completions(State(s): State<AppState>, body: JsonBody) -> Result<Response, ApiError> {
    let req: CompletionRequest = body.parse()?;
    check_unknown(&req.unknown)?;
    let prompt = match &req.prompt {
        Value::String(p) => p.clone(),
        Value::Array(a) if a.len() == 1 && a[0].is_string() => a[0].as_str().unwrap().to_string(),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`prompt` must be a string (or a list of one string)",
            )
            .with_param("prompt"))
        }
    };
    let cid = resolve(&s, &req.model)?;
    let model = load(&s, cid).await?;
    let norm = req.sampling.normalize("completion", prompt, false)?;
    serve(s, model, cid, req.model, norm, &req.sampling, false).await
}

/// What the generator thread sends the handler.
enum Gen {
    Text(String),
    Done(Result<Generated, gradnet_runtime::RuntimeError>),
}

/// Set when the handler (or its stream) is dropped: the client went away,
/// and the generator stops at its next token.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

async fn serve(
    s: AppState,
    model: Arc<LlmModel>,
    cid: ContentId,
    name: String,
    norm: Normalized,
    sampling: &Sampling,
    tools: bool,
) -> Result<Response, ApiError> {
    let ids = model.encode(&norm.prompt)?;
    if ids.is_empty() {
        return Err(
            ApiError::bad_request("invalid_request", "the prompt is empty").with_param("prompt"),
        );
    }
    let ctx = model.info.context_length;
    let max_tokens = match norm.max_tokens {
        Some(m) => m as usize,
        None => ctx.saturating_sub(ids.len()).max(1),
    };
    model.check_fits(ids.len(), max_tokens)?;
    let request_hash = llm_request_hash(
        &cid,
        &serde_json::to_vec(&norm).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    // admission: running + queued LLM requests are bounded
    let admitted = s
        .llm_admission
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    let slot = s
        .llm_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("LLM slots closed"))?;
    let params = SamplingParams {
        max_tokens,
        temperature: norm.temperature,
        top_p: norm.top_p,
        seed: norm.seed,
        stop: norm.stop.clone(),
        json: norm.json_mode,
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    {
        let cancelled = cancelled.clone();
        let running = s.metrics.llm_running.clone();
        tokio::task::spawn_blocking(move || {
            // the slot is held until generation ends, whoever is listening
            let _slot = (slot, admitted);
            running.inc();
            let out = model.generate(&ids, &params, |piece| {
                !cancelled.load(Ordering::Relaxed) && tx.send(Gen::Text(piece.to_string())).is_ok()
            });
            running.dec();
            let _ = tx.send(Gen::Done(out));
        });
    }
    let ctx = Answer {
        s,
        cid,
        name,
        kind: norm.kind,
        request_hash,
        id: format!(
            "{}-{}",
            if norm.kind == "chat" {
                "chatcmpl"
            } else {
                "cmpl"
            },
            &request_hash.to_string()[2..26]
        ),
        created: now_ms() / 1000,
        started,
        tools,
    };
    if sampling.stream {
        let usage = sampling
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        return Ok(ctx.stream(rx, usage, CancelOnDrop(cancelled)));
    }
    let _guard = CancelOnDrop(cancelled);
    ctx.whole(rx).await
}

/// Builds the response objects of one request.
struct Answer {
    s: AppState,
    cid: ContentId,
    name: String,
    kind: &'static str,
    request_hash: ContentId,
    id: String,
    created: u64,
    started: Instant,
    /// Tools were offered: tool calls in the answer are parsed out, and
    /// streamed text is held to the end to do so.
    tools: bool,
}

/// An answer as the client sees it: the finish reason, and for tool calls
/// the assistant message that carries them.
struct Settled {
    finish: &'static str,
    tool_message: Option<Value>,
}

impl Answer {
    fn settle(&self, g: &Generated) -> Settled {
        let calls = self
            .tools
            .then(|| gradnet_runtime::llm::tools::parse_tool_calls(&g.text))
            .flatten();
        match calls {
            None => Settled {
                finish: finish(g.finish_reason),
                tool_message: None,
            },
            Some((before, calls)) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({
                            "index": i,
                            "id": format!("call_{}_{i}", &self.request_hash.to_string()[2..14]),
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments.to_string()},
                        })
                    })
                    .collect();
                let content = if before.is_empty() {
                    Value::Null
                } else {
                    json!(before)
                };
                Settled {
                    finish: "tool_calls",
                    tool_message: Some(
                        json!({"role": "assistant", "content": content, "tool_calls": calls}),
                    ),
                }
            }
        }
    }

    /// Signs the raw generated text and the finish reason the client sees.
    fn receipt(&self, g: &Generated, finish: &str) -> Receipt {
        ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "llm".into(),
            request_hash: self.request_hash,
            model: self.cid,
            output_hash: llm_output_hash(&g.text, finish),
            mode: InferenceMode::Vanilla,
            runtime: gradnet_runtime::llm::runtime_id(),
            node: self.s.key.public_hex(),
            timestamp_ms: now_ms(),
        }
        .sign(&self.s.key)
    }

    fn usage(g: &Generated) -> Value {
        json!({
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "total_tokens": g.prompt_tokens + g.completion_tokens,
        })
    }

    fn record(&self, g: &Generated) {
        let m = &self.s.metrics;
        m.llm_tokens
            .with_label_values(&["prompt"])
            .inc_by(g.prompt_tokens as u64);
        m.llm_tokens
            .with_label_values(&["completion"])
            .inc_by(g.completion_tokens as u64);
    }

    fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            ("chat", false) => "chat.completion",
            ("chat", true) => "chat.completion.chunk",
            _ => "text_completion",
        }
    }

    async fn whole(self, mut rx: mpsc::UnboundedReceiver<Gen>) -> Result<Response, ApiError> {
        let g = loop {
            match rx.recv().await {
                Some(Gen::Text(_)) => {}
                Some(Gen::Done(r)) => break r?,
                None => return Err(ApiError::internal("generation ended without a result")),
            }
        };
        self.record(&g);
        let settled = self.settle(&g);
        let receipt = self.receipt(&g, settled.finish);
        let choice = if self.kind == "chat" {
            let message = settled
                .tool_message
                .clone()
                .unwrap_or_else(|| json!({"role": "assistant", "content": g.text}));
            json!({"index": 0, "message": message, "logprobs": null, "finish_reason": settled.finish})
        } else {
            json!({"index": 0, "text": g.text, "logprobs": null, "finish_reason": settled.finish})
        };
        let mut body = json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.name,
            "system_fingerprint": system_fingerprint(),
            "choices": [choice],
            "usage": Self::usage(&g),
            "gradnet_receipt": receipt,
        });
        if settled.tool_message.is_some() {
            // what the receipt's output hash covers
            body["gradnet_output"] = json!(g.text);
        }
        let mut r = (StatusCode::OK, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&serde_json::to_string(&receipt).unwrap_or_default()) {
            r.headers_mut()
                .insert(HeaderName::from_static(RECEIPT_HEADER), v);
        }
        Ok(r)
    }

    fn chunk(&self, delta_or_text: Value, finish_reason: Option<&str>) -> Value {
        let choice = if self.kind == "chat" {
            json!({"index": 0, "delta": delta_or_text, "logprobs": null, "finish_reason": finish_reason})
        } else {
            json!({"index": 0, "text": delta_or_text, "logprobs": null, "finish_reason": finish_reason})
        };
        json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.name,
            "system_fingerprint": system_fingerprint(),
            "choices": [choice],
        })
    }

    fn stream(
        self,
        rx: mpsc::UnboundedReceiver<Gen>,
        include_usage: bool,
        guard: CancelOnDrop,
    ) -> Response {
        let events = stream_events(self, rx, include_usage, guard);
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response()
    }
}

fn data(v: &Value) -> Result<Event, Infallible> {
    Ok(Event::default().data(v.to_string()))
}

/// The SSE events of a streamed answer: a role chunk (chat), text chunks, a
/// final chunk with `finish_reason` and the receipt, a usage chunk when
/// asked for, then `[DONE]`. An error mid-stream ends it with an error event.
fn stream_events(
    a: Answer,
    rx: mpsc::UnboundedReceiver<Gen>,
    include_usage: bool,
    guard: CancelOnDrop,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct St {
        a: Answer,
        rx: mpsc::UnboundedReceiver<Gen>,
        pending: std::collections::VecDeque<Event>,
        first: bool,
        done: bool,
        include_usage: bool,
        _guard: CancelOnDrop,
    }
    let st = St {
        a,
        rx,
        pending: Default::default(),
        first: true,
        done: false,
        include_usage,
        _guard: guard,
    };
    futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if st.done {
                return None;
            }
            let delta = |t: &str| {
                if st.a.kind == "chat" {
                    json!({"content": t})
                } else {
                    json!(t)
                }
            };
            if st.first && st.a.kind == "chat" {
                st.first = false;
                let v =
                    st.a.chunk(json!({"role": "assistant", "content": ""}), None);
                st.pending.push_back(data(&v).unwrap());
                continue;
            }
            match st.rx.recv().await {
                Some(Gen::Text(_)) if st.a.tools => {}
                Some(Gen::Text(t)) => {
                    if st.first {
                        st.first = false;
                        let ttft = st.a.started.elapsed().as_secs_f64();
                        st.a.s.metrics.llm_ttft.observe(ttft);
                    }
                    let v = st.a.chunk(delta(&t), None);
                    st.pending.push_back(data(&v).unwrap());
                }
                Some(Gen::Done(Ok(g))) => {
                    st.a.record(&g);
                    let settled = st.a.settle(&g);
                    let receipt = st.a.receipt(&g, settled.finish);
                    if st.a.tools {
                        // held back to find tool calls: sent now in one piece
                        let held = match &settled.tool_message {
                            Some(m) => {
                                json!({"content": m["content"], "tool_calls": m["tool_calls"]})
                            }
                            None => json!({"content": g.text}),
                        };
                        st.pending.push_back(data(&st.a.chunk(held, None)).unwrap());
                    }
                    let mut last = st.a.chunk(delta(""), Some(settled.finish));
                    last["gradnet_receipt"] = serde_json::to_value(&receipt).unwrap_or_default();
                    if settled.tool_message.is_some() {
                        last["gradnet_output"] = json!(g.text);
                    }
                    st.pending.push_back(data(&last).unwrap());
                    if st.include_usage {
                        let mut u = st.a.chunk(Value::Null, None);
                        u["choices"] = json!([]);
                        u["usage"] = Answer::usage(&g);
                        st.pending.push_back(data(&u).unwrap());
                    }
                    st.pending.push_back(Event::default().data("[DONE]"));
                    st.done = true;
                }
                Some(Gen::Done(Err(e))) => {
                    let e = ApiError::from(e);
                    let v =
                        json!({"error": {"code": e.code, "message": e.message, "type": e.kind()}});
                    st.pending.push_back(data(&v).unwrap());
                    st.done = true;
                }
                None => return None,
            }
        }
    })
}

fn finish(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        // nobody reads this answer; recorded for the receipt all the same
        FinishReason::Cancelled => "cancelled",
    }
}

fn system_fingerprint() -> String {
    format!(
        "gradnet-{}-candle-{}",
        env!("CARGO_PKG_VERSION"),
        gradnet_runtime::llm::CANDLE_VERSION
    )
}
