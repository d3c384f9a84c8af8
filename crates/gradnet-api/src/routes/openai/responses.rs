//! `POST /v1/responses`, OpenAI's Responses API for text in and text out:
//! `input` (a string or messages of text parts), `instructions`,
//! `max_output_tokens`, `text.format` (text, JSON object, JSON Schema). The
//! request is served as the chat completion it describes, so it is sampled,
//! paid, constrained and receipted the same way; the answer is reshaped
//! into a `response` object. Stored conversations (`previous_response_id`),
//! tools, images and streaming are refused by name.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::{ApiError, JsonBody};
use crate::AppState;

/// The fields served; anything else is refused by name.
#[derive(Debug, Deserialize)]
struct ResponsesRequest {
    model: String,
    input: Value,
    instructions: Option<String>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    /// gradnet's extension, as on chat: the sampler's seed.
    seed: Option<u64>,
    text: Option<Value>,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// Accepted and without effect (as on chat completions).
const IGNORED: &[&str] = &[
    "store",
    "metadata",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "service_tier",
    "reasoning",
    "include",
    "parallel_tool_calls",
];

fn bad(param: &'static str, m: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", m).with_param(param)
}

/// The other fields: the harmless accepted, the rest refused by name.
fn check_rest(rest: &Map<String, Value>) -> Result<(), ApiError> {
    for (k, v) in rest {
        let off = v.is_null() || *v == json!(false) || *v == json!([]);
        match k.as_str() {
            k if IGNORED.contains(&k) => {}
            "stream" | "background" | "previous_response_id" | "tools" | "conversation" if off => {}
            "tool_choice" if off || *v == json!("auto") || *v == json!("none") => {}
            "truncation" if off || *v == json!("disabled") => {}
            "stream" => {
                return Err(bad(
                    "stream",
                    "streamed responses are not served; stream with /v1/chat/completions",
                ))
            }
            "background" => return Err(bad("background", "background responses are not served")),
            "previous_response_id" | "conversation" => {
                return Err(bad(
                    "previous_response_id",
                    "responses are not stored: send the whole conversation in `input`",
                ))
            }
            "tools" | "tool_choice" => {
                return Err(bad(
                    "tools",
                    "tools are served on /v1/chat/completions, not on /v1/responses",
                ))
            }
            "truncation" => {
                return Err(bad(
                    "truncation",
                    "only \"disabled\": a prompt that does not fit is refused, never cut",
                ))
            }
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    format!("Unrecognized request argument supplied: {k}"),
                ))
            }
        }
    }
    Ok(())
}

/// `input` as chat messages: a string is one user message; a list holds
/// messages whose content is a string or text parts.
fn messages(instructions: Option<&str>, input: &Value) -> Result<Vec<Value>, ApiError> {
    let mut out = vec![];
    if let Some(i) = instructions {
        out.push(json!({"role": "system", "content": i}));
    }
    let items = match input {
        Value::String(s) => return Ok([out, vec![json!({"role": "user", "content": s})]].concat()),
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(bad(
                "input",
                "`input` must be a string or a non-empty list of messages",
            ))
        }
    };
    for (i, item) in items.iter().enumerate() {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        if kind != "message" {
            return Err(bad(
                "input",
                format!("input[{i}]: items of type `{kind}` are not served (text messages are)"),
            ));
        }
        let role = item.get("role").and_then(Value::as_str).unwrap_or("");
        if !["user", "assistant", "system", "developer"].contains(&role) {
            return Err(bad(
                "input",
                format!("input[{i}].role must be user, assistant, system or developer"),
            ));
        }
        let text = match item.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let mut text = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (p.get("type").and_then(Value::as_str), p.get("text")) {
                        (Some("input_text" | "output_text" | "text"), Some(Value::String(t))) => {
                            text.push_str(t)
                        }
                        (t, _) => {
                            return Err(bad(
                                "input",
                                format!(
                                    "input[{i}].content[{j}]: parts of type `{}` are not served (input_text and output_text are)",
                                    t.unwrap_or("?")
                                ),
                            ))
                        }
                    }
                }
                text
            }
            _ => {
                return Err(bad(
                    "input",
                    format!("input[{i}].content must be a string or a list of text parts"),
                ))
            }
        };
        out.push(json!({"role": role, "content": text}));
    }
    Ok(out)
}

/// `text.format` as chat's `response_format`.
fn response_format(text: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(format) = text.and_then(|t| t.get("format")).filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for k in ["name", "schema", "strict", "description"] {
                if let Some(v) = format.get(k) {
                    schema.insert(k.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(bad(
            "text",
            "`text.format.type` must be text, json_object or json_schema",
        )),
    }
}

pub(crate) async fn responses(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req: ResponsesRequest = body.parse()?;
    check_rest(&req.rest)?;
    let mut chat = json!({
        "model": req.model,
        "messages": messages(req.instructions.as_deref(), &req.input)?,
    });
    for (k, v) in [
        (
            "max_completion_tokens",
            req.max_output_tokens.map(Value::from),
        ),
        ("temperature", req.temperature.map(Value::from)),
        ("top_p", req.top_p.map(Value::from)),
        ("seed", req.seed.map(Value::from)),
        ("response_format", response_format(req.text.as_ref())?),
    ] {
        if let Some(v) = v {
            chat[k] = v;
        }
    }
    let bytes = serde_json::to_vec(&chat).map_err(|e| ApiError::internal(e.to_string()))?;
    let answer = super::chat(State(s), headers, JsonBody::json(bytes.into()))
        .await
        .map_err(|mut e| {
            // chat's errors name chat's fields; name the Responses API's
            e.param = e.param.map(|p| match p {
                "max_completion_tokens" | "max_tokens" => "max_output_tokens",
                "messages" => "input",
                "response_format" => "text",
                other => other,
            });
            e
        })?;
    let (parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let c = match serde_json::from_slice::<Value>(&bytes) {
        Ok(c) if parts.status == StatusCode::OK => c,
        _ => return Ok(Response::from_parts(parts, Body::from(bytes))),
    };
    let r = response_object(&c, &req.instructions, req.max_output_tokens, req.text);
    Ok((parts.status, parts.headers, Json(r)).into_response())
}

/// A chat completion as a `response` object.
fn response_object(
    c: &Value,
    instructions: &Option<String>,
    max_output_tokens: Option<u64>,
    text: Option<Value>,
) -> Value {
    let choice = &c["choices"][0];
    let id = c["id"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("chatcmpl-");
    let complete = choice["finish_reason"] != "length";
    let u = &c["usage"];
    let mut r = json!({
        "id": format!("resp_{id}"),
        "object": "response",
        "created_at": c["created"],
        "status": if complete { "completed" } else { "incomplete" },
        "incomplete_details": if complete { Value::Null } else { json!({"reason": "max_output_tokens"}) },
        "error": null,
        "model": c["model"],
        "instructions": instructions,
        "max_output_tokens": max_output_tokens,
        "output": [{
            "type": "message",
            "id": format!("msg_{id}"),
            "status": if complete { "completed" } else { "incomplete" },
            "role": "assistant",
            "content": [{"type": "output_text", "text": choice["message"]["content"], "annotations": []}],
        }],
        "parallel_tool_calls": false,
        "tool_choice": "none",
        "tools": [],
        "text": text.unwrap_or_else(|| json!({"format": {"type": "text"}})),
        "truncation": "disabled",
        "store": false,
        "metadata": {},
        "usage": {
            "input_tokens": u["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": u["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": u["total_tokens"],
        },
        "system_fingerprint": c["system_fingerprint"],
    });
    for k in ["gradnet_receipt", "gradnet_charge"] {
        if let Some(v) = c.get(k) {
            r[k] = v.clone();
        }
    }
    r
}
