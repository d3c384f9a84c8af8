//! A gateway that charges (a reseller): its clients pay it as they pay a
//! node (the escrow, a voucher to the gateway's account, HTTP 402 in x402's
//! shape: `gradnet_api::payments`), at the gateway's own prices, times the
//! nodes an answer takes (one; `k` for QUORUM); the gateway pays the nodes
//! from its own channels (`upstream`). An ONNX call is held at its price
//! and charged when answered; an LLM answer is held up to what its
//! `max_tokens` could cost and charged by the `usage` it reports (a
//! stream, by the usage in its last chunk).

use std::sync::Arc;

use alloy_primitives::U256;
use axum::http::HeaderMap;
use gradnet_api::payments::{put_headers, Charge, Hold, Need, Payments};
use gradnet_api::ApiError;
use gradnet_types::payments::Rate;
use parking_lot::Mutex;
use serde_json::Value;

use super::request::Shaped;

/// Tokens an answer is held for when the request names no `max_tokens`.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// What a request holds of its payer's authorization.
pub struct Held {
    hold: Hold,
    rate: Rate,
    /// Nodes the answer takes: the charge is theirs together.
    nodes: u64,
    chain_id: u64,
}

impl Held {
    /// Charges an ONNX call.
    pub fn call(self) -> (Charge, u64) {
        let amount = self.rate.per_call * U256::from(self.nodes);
        (self.hold.settle(amount), self.chain_id)
    }

    /// Charges an LLM answer its tokens.
    pub fn tokens(self, prompt: u64, generated: u64) -> (Charge, u64) {
        let amount = self.rate.tokens(prompt, generated) * U256::from(self.nodes);
        (self.hold.settle(amount), self.chain_id)
    }

    /// Charges a whole answer (ONNX, or an LLM's by its `usage`).
    pub fn answer(self, llm: bool, body: &[u8]) -> (Charge, u64) {
        if !llm {
            return self.call();
        }
        let v: Value = serde_json::from_slice(body).unwrap_or_default();
        let (p, g) = usage(&v["usage"]);
        self.tokens(p, g)
    }
}

fn usage(u: &Value) -> (u64, u64) {
    (
        u["prompt_tokens"].as_u64().unwrap_or(0),
        u["completion_tokens"].as_u64().unwrap_or(0),
    )
}

/// Holds what a request may cost, or answers 402 with the terms; `None`
/// when the gateway does not charge or the request is free.
pub async fn hold(
    payments: Option<&Arc<Payments>>,
    headers: &HeaderMap,
    s: &Shaped,
) -> Result<Option<Held>, ApiError> {
    let Some(p) = payments else { return Ok(None) };
    let rate = p.rate(&s.model, None)?;
    let nodes = match s.mode {
        gradnet_types::InferenceMode::Quorum => s.quorum as u64,
        _ => 1,
    };
    let need = if s.route.llm() {
        let max = s.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        // the prompt is at most a token per byte of the request
        let prompt = s.body.len() as u64;
        let n = U256::from(nodes);
        if rate.per_million_input.is_zero() && rate.per_million_output.is_zero() {
            return Ok(None);
        }
        Need::UpTo {
            least: rate.tokens(1, 1) * n,
            most: rate.tokens(prompt, max) * n,
        }
    } else {
        if rate.per_call.is_zero() {
            return Ok(None);
        }
        Need::Exact(rate.per_call * U256::from(nodes))
    };
    let hold = p.hold(headers, s.route.path(), need).await?;
    Ok(Some(Held {
        hold,
        rate,
        nodes,
        chain_id: p.chain_id(),
    }))
}

/// Puts a charge's headers on a response.
pub fn headers(h: &mut HeaderMap, charged: Option<(Charge, u64)>) {
    if let Some((c, chain_id)) = charged {
        put_headers(h, &c, chain_id);
    }
}

/// A streamed answer's charge: the usage its chunks report, charged when
/// the stream ends (or is dropped).
pub struct StreamCharge {
    held: Option<Held>,
    usage: Mutex<(u64, u64)>,
}

impl StreamCharge {
    /// A stream charged to `held` (none: free).
    pub fn new(held: Option<Held>) -> Self {
        StreamCharge {
            held,
            usage: Mutex::new((0, 0)),
        }
    }

    /// Reads the usage out of a chunk of server-sent events.
    pub fn scan(&self, chunk: &[u8]) {
        if self.held.is_none() || !chunk.windows(7).any(|w| w == b"\"usage\"") {
            return;
        }
        for line in chunk.split(|&b| b == b'\n') {
            if let Some(data) = line.strip_prefix(b"data: ") {
                if let Ok(v) = serde_json::from_slice::<Value>(data) {
                    if v["usage"].is_object() {
                        *self.usage.lock() = usage(&v["usage"]);
                    }
                }
            }
        }
    }
}

impl Drop for StreamCharge {
    fn drop(&mut self) {
        if let Some(h) = self.held.take() {
            let (p, g) = *self.usage.lock();
            h.tokens(p, g);
        }
    }
}
