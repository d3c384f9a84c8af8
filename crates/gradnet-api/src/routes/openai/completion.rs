//! The objects of one answer: the whole response, stream chunks, receipts.

use std::time::Instant;

use axum::http::header::HeaderName;
use axum::http::{HeaderValue, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_runtime::llm::tools::{self, ToolStyle};
use gradnet_runtime::llm::{Generated, TokenLogprob};
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
    /// Each choice's request hash (its seed differs).
    pub(super) request_hashes: Vec<ContentId>,
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) started: Instant,
    /// Tools were offered, in this convention: tool calls in the answer are
    /// parsed out, and streamed text is held to the end to do so.
    pub(super) tools: Option<ToolStyle>,
    /// Log-probabilities were asked for.
    pub(super) logprobs: bool,
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
    pub(super) fn settle(&self, g: &Generated, choice: usize) -> Settled {
        let calls = match self.tools {
            None => None,
            Some(ToolStyle::Generic) => tools::parse_generic(&g.text),
            Some(_) => tools::parse_tool_calls(&g.text),
        };
        match calls {
            None => Settled {
                finish: finish_reason(g.finish_reason),
                tool_message: None,
            },
            // a generic-style plain answer
            Some((text, calls)) if calls.is_empty() => Settled {
                finish: finish_reason(g.finish_reason),
                tool_message: Some(json!({"role": "assistant", "content": text})),
            },
            Some((before, calls)) => {
                let calls: Vec<Value> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        json!({
                            "index": i,
                            "id": format!("call_{}_{i}", &self.request_hashes[choice].to_string()[2..14]),
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
        choice: usize,
        finish: &str,
        charged: Option<&Charged>,
    ) -> Receipt {
        ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "llm".into(),
            request_hash: self.request_hashes[choice],
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

    /// Usage of all choices: the prompt once, every generated token.
    pub(super) fn usage(gs: &[Generated]) -> Value {
        let prompt = gs.first().map_or(0, |g| g.prompt_tokens);
        let completion: usize = gs.iter().map(|g| g.completion_tokens).sum();
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        })
    }

    /// Log-probabilities in OpenAI's shape for this endpoint (`null` when
    /// not asked for). `offset`: characters of the choice's text before them.
    pub(super) fn logprobs_json(&self, lps: &[TokenLogprob], offset: usize) -> Value {
        if !self.logprobs {
            return Value::Null;
        }
        let entry =
            |text: &str, lp: f32| json!({"token": text, "logprob": lp, "bytes": text.as_bytes()});
        if self.kind == "chat" {
            let content: Vec<Value> = lps
                .iter()
                .map(|t| {
                    let mut e = entry(&t.text, t.logprob);
                    e["top_logprobs"] = t.top.iter().map(|(_, s, lp)| entry(s, *lp)).collect();
                    e
                })
                .collect();
            return json!({"content": content, "refusal": null});
        }
        let mut at = offset;
        let mut offsets = vec![];
        for t in lps {
            offsets.push(at);
            at += t.text.chars().count();
        }
        json!({
            "tokens": lps.iter().map(|t| t.text.as_str()).collect::<Vec<_>>(),
            "token_logprobs": lps.iter().map(|t| t.logprob).collect::<Vec<_>>(),
            "top_logprobs": lps.iter().map(|t| {
                t.top.iter().map(|(_, s, lp)| (s.clone(), json!(lp))).collect::<serde_json::Map<_, _>>()
            }).collect::<Vec<_>>(),
            "text_offset": offsets,
        })
    }

    /// One finished choice as the whole response lists it, with its receipt.
    fn choice(&self, i: usize, g: &Generated, charged: Option<&Charged>) -> (Value, Receipt) {
        let settled = self.settle(g, i);
        // the charge is the whole request's; the first choice's receipt signs it
        let receipt = self.receipt(g, i, settled.finish, charged.filter(|_| i == 0));
        let lp = self.logprobs_json(&g.logprobs, 0);
        let mut choice = if self.kind == "chat" {
            let message = settled
                .tool_message
                .clone()
                .unwrap_or_else(|| json!({"role": "assistant", "content": g.text}));
            json!({"index": i, "message": message, "logprobs": lp, "finish_reason": settled.finish})
        } else {
            json!({"index": i, "text": g.text, "logprobs": lp, "finish_reason": settled.finish})
        };
        choice["gradnet_receipt"] = json!(receipt);
        if settled.tool_message.is_some() {
            // what the receipt's output hash covers
            choice["gradnet_output"] = json!(g.text);
        }
        (choice, receipt)
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
        let mut done = vec![];
        let charged = loop {
            match rx.recv().await {
                Some(Gen::Text(..)) => {}
                Some(Gen::Done(_, r)) => done.push(r?),
                Some(Gen::End(c)) => break c,
                None => return Err(ApiError::internal("generation ended without a result")),
            }
        };
        let mut choices = vec![];
        let mut receipts = vec![];
        for (i, g) in done.iter().enumerate() {
            let (c, r) = self.choice(i, g, charged.as_ref());
            choices.push(c);
            receipts.push(r);
        }
        let (Some(receipt), Some(c0)) = (receipts.into_iter().next(), choices.first()) else {
            return Err(ApiError::internal("no choice was generated"));
        };
        let g0 = &done[0];
        let mut body = json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.name,
            "system_fingerprint": system_fingerprint(),
            "choices": choices,
            "usage": Self::usage(&done),
            "gradnet_receipt": receipt,
        });
        if let Some(o) = c0.get("gradnet_output") {
            body["gradnet_output"] = o.clone();
        }
        if self.kind != "chat" {
            // OpenGradient's SDK reads a completion's text at the top level
            body["completion"] = json!(g0.text);
        }
        if let Some(c) = &charged {
            body["gradnet_charge"] =
                c.json(done.iter().map(|g| g.completion_tokens).max().unwrap_or(0));
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

    pub(super) fn chunk(
        &self,
        index: usize,
        delta_or_text: Value,
        logprobs: Value,
        finish_reason: Option<&str>,
    ) -> Value {
        let choice = if self.kind == "chat" {
            json!({"index": index, "delta": delta_or_text, "logprobs": logprobs, "finish_reason": finish_reason})
        } else {
            json!({"index": index, "text": delta_or_text, "logprobs": logprobs, "finish_reason": finish_reason})
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
