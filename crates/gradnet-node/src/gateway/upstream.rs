//! The gateway's HTTP leg to inference nodes: one pooled client, a
//! deadline per request, and payment: a node that charges answers 402, and
//! a gateway with an account pays it with a voucher from that account's
//! escrow channel to the node (one `Payer` per node), then sends again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use gradnet_client::pay::Payer;
use gradnet_client::x402;
use parking_lot::Mutex;

use super::directory::Node;

/// How long a node may take to answer a whole request.
pub const DEADLINE: Duration = Duration::from_secs(120);
/// Vouchers the gateway signs last this long.
const VOUCHER_TTL_SECS: u64 = 3600;

/// Why a node's answer could not be used.
#[derive(Debug, Clone)]
pub enum Failure {
    /// No connection, or it broke before the answer.
    Unreachable(String),
    /// No answer before the deadline.
    Timeout,
    /// An HTTP error status, with the node's body.
    Status(u16, String),
    /// An answer that is not what was asked (malformed, or its receipt
    /// does not hold).
    Garbage(String),
}

impl Failure {
    /// Whether another node may be asked: the node failed, not the request.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Unreachable(_) | Failure::Timeout | Failure::Garbage(_) => true,
            // busy, down, or asking for a payment this gateway cannot make
            Failure::Status(s, _) => matches!(s, 402 | 408 | 429 | 500 | 502 | 503 | 504),
        }
    }

    /// Whether the node is to be taken as down (not just busy or refusing).
    pub fn is_down(&self) -> bool {
        matches!(
            self,
            Failure::Unreachable(_) | Failure::Timeout | Failure::Status(500 | 502 | 503 | 504, _)
        )
    }

    /// Its kind, for the metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Unreachable(_) => "unreachable",
            Failure::Timeout => "timeout",
            Failure::Status(..) => "status",
            Failure::Garbage(_) => "garbage",
        }
    }

    /// What went wrong, for the client and the logs.
    pub fn describe(&self) -> String {
        match self {
            Failure::Unreachable(e) => format!("unreachable: {e}"),
            Failure::Timeout => format!("no answer within {}s", DEADLINE.as_secs()),
            Failure::Status(s, body) => {
                let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                match v["error"]["message"].as_str() {
                    Some(m) => format!("HTTP {s}: {m}"),
                    None => format!("HTTP {s}"),
                }
            }
            Failure::Garbage(e) => format!("a bad answer: {e}"),
        }
    }
}

/// A node's answer: its status, headers and a body still streaming.
pub type Answer = reqwest::Response;

/// Sends requests to nodes, paying those that charge.
pub struct Upstream {
    /// The pooled client (also used for probes).
    pub client: reqwest::Client,
    key: Option<B256>,
    budget: U256,
    payers: Mutex<HashMap<Address, Arc<Payer>>>,
}

impl Upstream {
    /// With `key`, the gateway pays nodes from that account, authorizing
    /// `budget` wei beyond what each has charged at a time.
    pub fn new(key: Option<B256>, budget: U256) -> Self {
        Upstream {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(3))
                .build()
                .expect("HTTP client"),
            key,
            budget,
            payers: Default::default(),
        }
    }

    /// The paying account, if the gateway pays.
    pub fn account(&self) -> Option<Address> {
        self.key
            .and_then(|k| gradnet_client::wallet::address(&k).ok())
    }

    fn payer(&self, node: &Address) -> Option<Arc<Payer>> {
        let key = self.key?;
        let mut payers = self.payers.lock();
        if let Some(p) = payers.get(node) {
            return Some(p.clone());
        }
        let p = Arc::new(Payer::new(key, self.budget, VOUCHER_TTL_SECS).ok()?);
        payers.insert(*node, p.clone());
        Some(p)
    }

    /// POSTs `body` to `path` on `node` (with `headers`), paying a 402 when
    /// the gateway can; an answer with an error status is a `Failure`.
    /// The node's health learns the outcome.
    pub async fn post(
        &self,
        node: &Node,
        path: &str,
        headers: &HeaderMap,
        body: axum::body::Bytes,
    ) -> Result<Answer, Failure> {
        let _flight = node.health.start();
        let t = Instant::now();
        let r = self.post_paid(node, path, headers, body).await;
        match &r {
            Ok(_) => node.health.ok(t.elapsed()),
            Err(f) if f.is_down() => node.health.fail(f.describe()),
            Err(_) => {}
        }
        r
    }

    async fn post_paid(
        &self,
        node: &Node,
        path: &str,
        headers: &HeaderMap,
        body: axum::body::Bytes,
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", node.base());
        let payer = self.payer(&node.record.operator);
        let send = |voucher: Option<String>| {
            let mut rb = self
                .client
                .post(&url)
                .headers(headers.clone())
                .timeout(DEADLINE)
                .body(body.clone());
            if let Some(v) = voucher {
                rb = rb.header(x402::PAYMENT_SIGNATURE, v);
            }
            rb.send()
        };
        let mut r = send(payer.as_ref().and_then(|p| p.current()))
            .await
            .map_err(failure)?;
        // the first 402 tells the payer what the node has charged; a
        // second one, that its voucher fell behind: twice at most
        for _ in 0..2 {
            let (Some(p), 402) = (&payer, r.status().as_u16()) else {
                break;
            };
            let Some(required) = r
                .headers()
                .get(x402::PAYMENT_REQUIRED)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
            else {
                break;
            };
            let header = p
                .answer(&required)
                .map_err(|e| Failure::Garbage(format!("its payment terms: {e}")))?;
            r = send(Some(header)).await.map_err(failure)?;
        }
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status().as_u16();
        Err(Failure::Status(status, r.text().await.unwrap_or_default()))
    }
}

fn failure(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Unreachable(format!("{e}"))
    }
}

/// Request headers passed to nodes: the body's type and binary layout.
pub fn forwarded(from: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    for name in ["content-type", gradnet_api::error::HEADER_LENGTH] {
        if let Some(v) = from.get(name) {
            h.insert(HeaderName::from_static(name), v.clone());
        }
    }
    h
}

/// Response headers passed back to the client.
pub fn returned(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [
        "content-type",
        gradnet_api::error::HEADER_LENGTH,
        "x-gradnet-receipt",
        "cache-control",
    ] {
        if let Some(v) = from.get(name) {
            to.insert(HeaderName::from_static(name), v.clone());
        }
    }
}

/// A header value from a string the gateway made (never fails on ASCII).
pub fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}
