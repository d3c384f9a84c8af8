//! The objects of one answer: the whole response, stream chunks, receipts.

use std::time::Instant;

use axum::http::header::HeaderName;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_runtime::llm::Generated;
use gradnet_types::receipt::RECEIPT_VERSION;
use gradnet_types::request::llm_output_hash;
use gradnet_types::{now_ms, ContentId, InferenceMode, Receipt, ReceiptBody};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{
    stream::stream_events, system_fingerprint, CancelOnDrop, Charged, Gen, RECEIPT_HEADER,
};
use crate::error::ApiError;
use crate::inference::finish_reason;
use crate::AppState;

/// Builds the response objects of one request.
pub(super) struct Completion {
    pub(super) s: AppState,
    pub(super) cid: ContentId,
    pub(super) name: String,
    pub(super) kind: &'static str,
    pub(super) request_hash: ContentId,
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) started: Instant,
    /// Tools were offered: tool calls in the answer are parsed out, and
    /// streamed text is held to the end to do so.
    pub(super) tools: bool,
    /// What computed the answer (the receipt names it).
    pub(super) runtime: gradnet_types::RuntimeId,
}

/// An answer as the client sees it: the finish reason, and for tool calls
/// the assistant message that carries them.
pub(super) struct Settled {
    pub(super) finish: &'static str,
    pub(super) tool_message: Option<Value>,
}

impl Completion {
    pub(super) fn settle(&self, g: &Generated) -> Settled {
        let calls = self
            .tools
            .then(|| gradnet_runtime::llm::tools::parse_tool_calls(&g.text))
            .flatten();
        match calls {
            None => Settled {
                finish: finish_reason(g.finish_reason),
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

    /// Signs the raw generated text and the finish reason the client sees
    /// (and on a paid node, the charge).
    pub(super) fn receipt(
        &self,
        g: &Generated,
        finish: &str,
        charged: Option<&Charged>,
    ) -> Receipt {
        ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "llm".into(),
            request_hash: self.request_hash,
            model: self.cid,
            output_hash: llm_output_hash(&g.text, finish),
            mode: InferenceMode::Vanilla,
            runtime: self.runtime.clone(),
            node: self.s.key.public_hex(),
            timestamp_ms: now_ms(),
            charge: charged.map(|c| c.charge.receipt(c.payee)),
        }
        .sign(&self.s.key)
    }

    pub(super) fn usage(g: &Generated) -> Value {
        json!({
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": g.completion_tokens,
            "total_tokens": g.prompt_tokens + g.completion_tokens,
        })
    }

    pub(super) fn object(&self, chunk: bool) -> &'static str {
        match (self.kind, chunk) {
            ("chat", false) => "chat.completion",
            ("chat", true) => "chat.completion.chunk",
            _ => "text_completion",
        }
    }

    pub(super) async fn whole(
        self,
        mut rx: mpsc::UnboundedReceiver<Gen>,
    ) -> Result<Response, ApiError> {
        let (g, charged) = loop {
            match rx.recv().await {
                Some(Gen::Text(_)) => {}
                Some(Gen::Done(r, c)) => break (r?, c),
                None => return Err(ApiError::internal("generation ended without a result")),
            }
        };
        let settled = self.settle(&g);
        let receipt = self.receipt(&g, settled.finish, charged.as_ref());
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
        if self.kind != "chat" {
            // OpenGradient's SDK reads a completion's text at the top level
            body["completion"] = json!(g.text);
        }
        if let Some(c) = &charged {
            body["gradnet_charge"] = c.json(g.completion_tokens);
        }
        let mut r = (StatusCode::OK, Json(body)).into_response();
        if let Some(c) = &charged {
            crate::payments::put_headers(r.headers_mut(), &c.charge, c.chain_id);
        }
        if let Ok(v) = HeaderValue::from_str(&serde_json::to_string(&receipt).unwrap_or_default()) {
            r.headers_mut()
                .insert(HeaderName::from_static(RECEIPT_HEADER), v);
        }
        Ok(r)
    }

    pub(super) fn chunk(&self, delta_or_text: Value, finish_reason: Option<&str>) -> Value {
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

    pub(super) fn stream(
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
