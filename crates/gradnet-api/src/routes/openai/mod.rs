//! OpenAI-compatible LLM serving: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/completions`, streaming as server-sent events. Every answer
//! carries a signed receipt: in the `gradnet_receipt` field, in the
//! `X-Gradnet-Receipt` header, and in the last chunk of a stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use gradnet_runtime::llm::{ChatMessage, Generated, LlmModel, SamplingParams};
use gradnet_types::openai::{
    check_messages, check_unknown, ChatRequest, CompletionRequest, Invalid, Normalized, Sampling,
};
use gradnet_types::request::llm_request_hash;
use gradnet_types::{now_ms, ContentId};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, JsonBody};
use crate::inference::Caller;
use crate::AppState;

mod completion;
mod stream;

use completion::Completion;

pub(crate) const RECEIPT_HEADER: &str = "x-gradnet-receipt";

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_request("invalid_request", e.message).with_param(e.param)
    }
}

/// `GET /v1/models`: repositories whose latest version holds a GGUF file.
pub(crate) async fn list_models(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
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

pub(crate) async fn chat(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
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
    let cid = s.resolve_llm(&req.model).await?;
    let model = s.llm_model(cid).await?;
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
        Paid(&headers, "/v1/chat/completions"),
    )
    .await
}

pub(crate) async fn completions(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
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
    let cid = s.resolve_llm(&req.model).await?;
    let model = s.llm_model(cid).await?;
    let norm = req.sampling.normalize("completion", prompt, false)?;
    serve(
        s,
        model,
        cid,
        req.model,
        norm,
        &req.sampling,
        false,
        Paid(&headers, "/v1/completions"),
    )
    .await
}

/// A request's payment headers and the route it pays for.
struct Paid<'a>(&'a axum::http::HeaderMap, &'static str);

/// What the generator thread sends the handler.
pub(super) enum Gen {
    Text(String),
    /// The answer, and its charge on a paid node.
    Done(
        Result<Generated, gradnet_runtime::RuntimeError>,
        Option<Charged>,
    ),
}

/// A paid answer's charge, and whether the payment cut it short.
#[derive(Clone)]
pub(super) struct Charged {
    pub(super) charge: crate::payments::Charge,
    pub(super) payee: alloy_primitives::Address,
    pub(super) chain_id: u64,
    /// The most tokens the authorization paid for, when it capped the answer.
    pub(super) cap: Option<usize>,
}

impl Charged {
    /// What answers say of it.
    pub(super) fn json(&self, completion_tokens: usize) -> Value {
        let mut v = self.charge.json();
        if self.cap.is_some_and(|c| completion_tokens >= c) {
            v["stopped"] = json!(format!(
                "the payment authorization covered {} generated tokens; sign a voucher for more to continue",
                self.cap.unwrap_or_default()
            ));
        }
        v
    }
}

/// Set when the handler (or its stream) is dropped: the client went away,
/// and the generator stops at its next token.
pub(super) struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    s: AppState,
    model: Arc<LlmModel>,
    cid: ContentId,
    name: String,
    norm: Normalized,
    sampling: &Sampling,
    tools: bool,
    paid: Paid<'_>,
) -> Result<Response, ApiError> {
    let ids = model.encode(&norm.prompt)?;
    if ids.is_empty() {
        return Err(
            ApiError::bad_request("invalid_request", "the prompt is empty").with_param("prompt"),
        );
    }
    let ctx = model.info.context_length;
    let mut max_tokens = match norm.max_tokens {
        Some(m) => m as usize,
        None => ctx.saturating_sub(ids.len()).max(1),
    };
    model.check_fits(ids.len(), max_tokens)?;
    // a paid node holds what the payer's voucher allows (at least the prompt
    // and one token), generates no more tokens than it pays for, and charges
    // the tokens it generated
    let mut pay = None;
    if let Some(p) = s.payments() {
        let rate = p.rate(&cid.to_string(), Some(&name))?;
        if !rate.is_free() {
            let n_in = ids.len() as u64;
            let need = crate::payments::Need::UpTo {
                least: rate.tokens(n_in, 1),
                most: rate.tokens(n_in, max_tokens as u64),
            };
            let hold = p.hold(paid.0, paid.1, need).await?;
            let mut cap = None;
            if !rate.per_million_output.is_zero() {
                let budget = hold.amount() * alloy_primitives::U256::from(1_000_000u64);
                let left = budget
                    .saturating_sub(rate.per_million_input * alloy_primitives::U256::from(n_in));
                let affordable =
                    usize::try_from(left / rate.per_million_output).unwrap_or(usize::MAX);
                if affordable < max_tokens {
                    max_tokens = affordable.max(1);
                    cap = Some(max_tokens);
                }
            }
            pay = Some((hold, rate, cap, p.payee, p.chain_id()));
        }
    }
    let runtime = model.runtime_id();
    let request_hash = llm_request_hash(
        &cid,
        &serde_json::to_vec(&norm).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let admitted = s.admit_llm(Caller::OpenAi)?;
    let slot = admitted.llm_slot().await?;
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
        tokio::task::spawn_blocking(move || {
            // the slot is held until generation ends, whoever is listening
            let _admitted = admitted;
            let out = slot.generate(&model, &ids, &params, |piece| {
                !cancelled.load(Ordering::Relaxed) && tx.send(Gen::Text(piece.to_string())).is_ok()
            });
            // charged here, so a client that went away pays what was generated for it
            let charged = pay.map(|(hold, rate, cap, payee, chain_id)| {
                let cost = match &out {
                    Ok(g) => rate.tokens(g.prompt_tokens as u64, g.completion_tokens as u64),
                    Err(_) => alloy_primitives::U256::ZERO,
                };
                Charged {
                    charge: hold.settle(cost),
                    payee,
                    chain_id,
                    cap,
                }
            });
            let _ = tx.send(Gen::Done(out, charged));
        });
    }
    let ctx = Completion {
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
        runtime,
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

pub(super) fn system_fingerprint() -> String {
    format!(
        "gradnet-{}-candle-{}",
        env!("CARGO_PKG_VERSION"),
        gradnet_runtime::llm::CANDLE_VERSION
    )
}
