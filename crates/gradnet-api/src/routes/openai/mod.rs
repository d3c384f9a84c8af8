//! OpenAI-compatible LLM serving: `GET /v1/models`, `POST /v1/chat/completions`,
//! `POST /v1/completions`, `POST /v1/responses` (text), streaming as
//! server-sent events. Every answer
//! carries a signed receipt: in the `gradnet_receipt` field, in the
//! `X-Gradnet-Receipt` header, and in the last chunk of a stream.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::U256;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use gradnet_runtime::llm::grammar::Grammar;
use gradnet_runtime::llm::tools::{self, ToolStyle};
use gradnet_runtime::llm::{ChatMessage, Generated, LlmModel, SamplingParams, TokenLogprob};
use gradnet_types::openai::{
    canonical, check_messages, check_unknown, without_ordering, ChatRequest, CompletionRequest,
    Invalid, Normalized, Sampling,
};
use gradnet_types::request::llm_request_hash;
use gradnet_types::{now_ms, ContentId};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::{ApiError, JsonBody};
use crate::inference::Caller;
use crate::AppState;

mod completion;
pub(crate) mod embeddings;
pub(crate) mod responses;
mod stream;

use completion::Completion;

pub(crate) const RECEIPT_HEADER: &str = "x-gradnet-receipt";

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::bad_request("invalid_request", e.message).with_param(e.param)
    }
}

/// `GET /v1/models`: repositories whose latest version holds a GGUF file
/// (an LLM) or a safetensors file (an embedding model).
pub(crate) async fn list_models(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"object": "list", "data": models(&s)?})))
}

fn models(s: &AppState) -> Result<Vec<Value>, ApiError> {
    let mut data = vec![];
    for r in s.hub.list_repos()? {
        // LLMs and embedding models
        if s.hub.find_file(&r.name, None, ".gguf").is_ok()
            || s.hub.find_file(&r.name, None, ".safetensors").is_ok()
        {
            data.push(json!({
                "id": r.name,
                "object": "model",
                "created": r.created_at_ms / 1000,
                "owned_by": if r.owner.is_empty() { "gradnet" } else { r.owner.as_str() },
            }));
        }
    }
    Ok(data)
}

/// `GET /v1/models/{id}`: one of the listed models, or any name a request
/// may use for a model (a content id, `repo@version`).
pub(crate) async fn get_model(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<Value>, ApiError> {
    if let Some(m) = models(&s)?.into_iter().find(|m| m["id"] == id.as_str()) {
        return Ok(Json(m));
    }
    s.resolve_llm(&id).await?;
    Ok(Json(json!({
        "id": id, "object": "model", "created": 0, "owned_by": "gradnet",
    })))
}

pub(crate) async fn chat(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req: ChatRequest = body.parse()?;
    check_unknown(&req.unknown)?;
    check_messages(&req.messages)?;
    let (json_mode, mut constraint) = response_format(req.response_format.as_ref())?;
    let cid = s.resolve_llm(&req.model).await?;
    let model = s.llm_model(cid).await?;
    let choice = ToolChoice::parse(req.tool_choice.as_ref())?;
    let tools = match (&req.tools, choice) {
        (_, ToolChoice::None) => None,
        (Some(t), _) if t.0.as_array().is_some_and(|a| !a.is_empty()) => Some(t.0.clone()),
        (_, ToolChoice::Auto) => None,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "tool_choice asks for a tool call, and `tools` is empty",
            )
            .with_param("tool_choice"))
        }
    };
    let style = model.info.tool_style;
    let mut messages: Vec<ChatMessage> = req
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
    let mut parse = None;
    if let Some(t) = &tools {
        if json_mode || constraint.is_some() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "response_format json_object/json_schema cannot be combined with tools; describe the answer as a tool",
            )
            .with_param("response_format"));
        }
        let forced = !matches!(choice, ToolChoice::Auto);
        let only = match choice {
            ToolChoice::Named(n) => Some(n),
            _ => None,
        };
        let parallel = req.parallel_tool_calls.unwrap_or(true);
        if style == ToolStyle::Generic {
            teach_tools(&mut messages, t, forced);
        }
        if forced || style == ToolStyle::Generic {
            constraint = Some(
                tools::call_constraint(style, t, only, parallel, !forced)
                    .map_err(|e| ApiError::bad_request("invalid_request", e).with_param("tools"))?,
            );
        }
        parse = Some(style);
    }
    let template_tools = tools
        .as_ref()
        .filter(|_| style != ToolStyle::Generic)
        .map(without_ordering);
    let prompt = model.chat_prompt(&messages, template_tools.as_ref())?;
    let mut norm = req.sampling.normalize("chat", prompt, json_mode)?;
    norm.constraint = constraint.as_ref().map(canonical);
    serve(
        s,
        model,
        cid,
        req.model,
        norm,
        &req.sampling,
        parse,
        Paid(&headers, "/v1/chat/completions"),
    )
    .await
}

/// `response_format`: JSON mode, and a JSON Schema's constraint.
fn response_format(
    f: Option<&gradnet_types::openai::ResponseFormat>,
) -> Result<(bool, Option<Value>), ApiError> {
    let bad = |m: String| ApiError::bad_request("invalid_request", m).with_param("response_format");
    match f {
        None => Ok((false, None)),
        Some(f) if f.kind == "text" => Ok((false, None)),
        Some(f) if f.kind == "json_object" => Ok((true, None)),
        Some(f) if f.kind == "json_schema" => {
            let schema = f
                .json_schema
                .as_ref()
                .and_then(|j| j.schema.as_ref())
                .ok_or_else(|| bad("json_schema needs `json_schema.schema`".into()))?;
            Grammar::from_schema(&schema.0).map_err(|e| bad(format!("json_schema.schema: {e}")))?;
            Ok((false, Some(json!({"schema": schema.0}))))
        }
        Some(f) => Err(bad(format!(
            "response_format type `{}` is not supported (text, json_object, json_schema)",
            f.kind
        ))),
    }
}

/// OpenAI's `tool_choice`.
#[derive(Clone, Copy)]
enum ToolChoice<'a> {
    Auto,
    None,
    Required,
    Named(&'a str),
}

impl<'a> ToolChoice<'a> {
    fn parse(v: Option<&'a Value>) -> Result<Self, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(ToolChoice::Auto),
            Some(Value::String(s)) if s == "auto" => Ok(ToolChoice::Auto),
            Some(Value::String(s)) if s == "none" => Ok(ToolChoice::None),
            Some(Value::String(s)) if s == "required" => Ok(ToolChoice::Required),
            Some(v) => match (v["type"].as_str(), v["function"]["name"].as_str()) {
                (Some("function"), Some(n)) => Ok(ToolChoice::Named(n)),
                _ => Err(ApiError::bad_request(
                    "invalid_request",
                    "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}",
                )
                .with_param("tool_choice")),
            },
        }
    }
}

/// For a template without tools: the tools described in the system
/// message, and earlier calls written back in the convention taught.
fn teach_tools(messages: &mut Vec<ChatMessage>, tools: &Value, required: bool) {
    let lesson = tools::generic_prompt(&without_ordering(tools), required);
    match messages.first_mut() {
        Some(m) if m.role == "system" => m.content = format!("{}\n\n{lesson}", m.content),
        _ => messages.insert(
            0,
            ChatMessage {
                role: "system".into(),
                content: lesson,
                name: None,
                tool_calls: None,
                tool_call_id: None,
            },
        ),
    }
    for m in messages.iter_mut() {
        if let Some(calls) = m.tool_calls.take() {
            let calls: Vec<Value> = calls
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let args = c["function"]["arguments"].as_str().unwrap_or("{}");
                    json!({"name": c["function"]["name"],
                        "arguments": serde_json::from_str::<Value>(args).unwrap_or(json!({}))})
                })
                .collect();
            m.content = json!({ "tool_calls": calls }).to_string();
        }
    }
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
        None,
        Paid(&headers, "/v1/completions"),
    )
    .await
}

/// A request's payment headers and the route it pays for.
struct Paid<'a>(&'a axum::http::HeaderMap, &'static str);

/// What the generator thread sends the handler.
pub(super) enum Gen {
    /// A piece of choice `.0`'s text, and its tokens' log-probabilities.
    Text(usize, String, Vec<TokenLogprob>),
    /// Choice `.0` is finished.
    Done(usize, Result<Generated, gradnet_runtime::RuntimeError>),
    /// Every choice is finished; the charge on a paid node.
    End(Option<Charged>),
}

/// A paid answer's charge, and whether the payment cut it short.
#[derive(Clone)]
pub(super) struct Charged {
    pub(super) charge: crate::payments::Charge,
    pub(super) payee: alloy_primitives::Address,
    pub(super) chain_id: u64,
    /// The most tokens the authorization paid for (per choice), when it
    /// capped the answer.
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

/// Generates the request's choices, one after another: choice `i` is the
/// same request with seed `seed + i`, and has its own receipt.
#[allow(clippy::too_many_arguments)]
async fn serve(
    s: AppState,
    model: Arc<LlmModel>,
    cid: ContentId,
    name: String,
    norm: Normalized,
    sampling: &Sampling,
    tools: Option<ToolStyle>,
    paid: Paid<'_>,
) -> Result<Response, ApiError> {
    let ids = model.encode(&norm.prompt)?;
    if ids.is_empty() {
        return Err(
            ApiError::bad_request("invalid_request", "the prompt is empty").with_param("prompt"),
        );
    }
    let n = sampling.choices();
    let ctx = model.info.context_length;
    let mut max_tokens = match norm.max_tokens {
        Some(m) => m as usize,
        None => ctx.saturating_sub(ids.len()).max(1),
    };
    model.check_fits(ids.len(), max_tokens)?;
    let grammar = match &norm.constraint {
        None => None,
        Some(c) => Some(Arc::new(Grammar::from_constraint(c).map_err(|e| {
            ApiError::bad_request("invalid_request", e).with_param("response_format")
        })?)),
    };
    for &(t, _) in &norm.logit_bias {
        if t as usize >= model.info.vocab_size {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "logit_bias names token {t}; the vocabulary has {} tokens",
                    model.info.vocab_size
                ),
            )
            .with_param("logit_bias"));
        }
    }
    // a paid node holds what the payer's voucher allows (at least the prompt
    // and one token per choice), generates no more tokens than it pays for,
    // and charges the tokens it generated
    let mut pay = None;
    if let Some(p) = s.payments() {
        let rate = p.rate(&cid.to_string(), Some(&name))?;
        if !rate.is_free() {
            let (n_in, n64) = (ids.len() as u64, n as u64);
            let need = crate::payments::Need::UpTo {
                least: rate.tokens(n_in * n64, n64),
                most: rate.tokens(n_in * n64, max_tokens as u64 * n64),
            };
            let hold = p.hold(paid.0, paid.1, need).await?;
            let mut cap = None;
            if !rate.per_million_output.is_zero() {
                let budget = hold.amount() * alloy_primitives::U256::from(1_000_000u64);
                let left = budget.saturating_sub(
                    rate.per_million_input * alloy_primitives::U256::from(n_in * n64),
                );
                let affordable = usize::try_from(left / rate.per_million_output / U256::from(n64))
                    .unwrap_or(usize::MAX);
                if affordable < max_tokens {
                    max_tokens = affordable.max(1);
                    cap = Some(max_tokens);
                }
            }
            pay = Some((hold, rate, cap, p.payee, p.chain_id()));
        }
    }
    let runtime = model.runtime_id();
    let mut request_hashes = vec![];
    let mut seeds = vec![];
    for i in 0..n {
        let mut one = norm.clone();
        one.seed = norm.seed.wrapping_add(i as u64);
        seeds.push(one.seed);
        request_hashes.push(llm_request_hash(
            &cid,
            &serde_json::to_vec(&one).map_err(|e| ApiError::internal(e.to_string()))?,
        ));
    }
    let admitted = s.admit_llm(Caller::OpenAi)?;
    let slot = admitted.llm_slot().await?;
    let params = SamplingParams {
        max_tokens,
        temperature: norm.temperature,
        top_p: norm.top_p,
        seed: norm.seed,
        stop: norm.stop.clone(),
        json: norm.json_mode,
        grammar,
        logit_bias: norm.logit_bias.clone(),
        logprobs: norm.logprobs.map(usize::from),
    };
    let cancelled = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    {
        let cancelled = cancelled.clone();
        tokio::task::spawn_blocking(move || {
            // the slot is held until generation ends, whoever is listening
            let _admitted = admitted;
            let (mut n_in, mut n_out) = (0u64, 0u64);
            for (i, seed) in seeds.into_iter().enumerate() {
                if cancelled.load(Ordering::Relaxed) {
                    break;
                }
                let params = SamplingParams {
                    seed,
                    ..params.clone()
                };
                let out = slot.generate(&model, &ids, &params, |piece| {
                    !cancelled.load(Ordering::Relaxed)
                        && tx
                            .send(Gen::Text(
                                i,
                                piece.text.to_string(),
                                piece.logprobs.to_vec(),
                            ))
                            .is_ok()
                });
                if let Ok(g) = &out {
                    n_in += g.prompt_tokens as u64;
                    n_out += g.completion_tokens as u64;
                }
                let _ = tx.send(Gen::Done(i, out));
            }
            // charged here, so a client that went away pays what was generated for it
            let charged = pay.map(|(hold, rate, cap, payee, chain_id)| Charged {
                charge: hold.settle(rate.tokens(n_in, n_out)),
                payee,
                chain_id,
                cap,
            });
            let _ = tx.send(Gen::End(charged));
        });
    }
    let ctx = Completion {
        s,
        cid,
        name,
        kind: norm.kind,
        id: format!(
            "{}-{}",
            if norm.kind == "chat" {
                "chatcmpl"
            } else {
                "cmpl"
            },
            &request_hashes[0].to_string()[2..26]
        ),
        request_hashes,
        created: now_ms() / 1000,
        started,
        tools,
        logprobs: norm.logprobs.is_some(),
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
