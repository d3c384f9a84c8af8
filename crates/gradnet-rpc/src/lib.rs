//! Ethereum JSON-RPC over HTTP: single and batch requests, the standard
//! error codes (-32700 parse, -32600 invalid request, -32601 unknown
//! method, -32602 invalid params, -32000 server errors, 3 for reverts).

mod call;
mod eth;
mod filters;
pub mod format;
mod gradnet;
mod trace;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

use gradnet_ledger::chain::Chain;
use gradnet_ledger::error::ChainError;

/// Requests larger than this are refused (a raw transaction is at most 128 KiB).
pub const MAX_BODY_BYTES: usize = 5 << 20;
/// Requests in one batch at most.
pub const MAX_BATCH: usize = 1000;

/// A JSON-RPC error object.
#[derive(Debug)]
pub struct RpcError {
    /// The error code (JSON-RPC's, or 3 for a revert as geth answers it).
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
    /// Details for a program, such as a revert's ABI-encoded reason.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32602: the parameters do not fit the method.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    /// -32000: the request is well formed, the node refuses it.
    pub fn server(message: impl Into<String>) -> Self {
        Self::new(-32000, message)
    }
}

impl From<ChainError> for RpcError {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::Rejected(m) | ChainError::Invalid(m) | ChainError::NotFound(m) => {
                RpcError::server(m)
            }
            e => RpcError::new(-32603, e.to_string()),
        }
    }
}

/// What the JSON-RPC server answers from: the chain, and the filters its
/// clients installed.
struct Rpc {
    chain: Arc<Chain>,
    filters: filters::Filters,
}

/// The JSON-RPC endpoint over `chain`, at `/` of the router.
pub fn router(chain: Arc<Chain>) -> Router {
    let rpc = Arc::new(Rpc {
        chain,
        filters: Default::default(),
    });
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(rpc)
}

fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({"jsonrpc": "2.0", "id": id, "result": v}),
        Err(e) => {
            let mut err = json!({"code": e.code, "message": e.message});
            if let Some(d) = e.data {
                err["data"] = d;
            }
            json!({"jsonrpc": "2.0", "id": id, "error": err})
        }
    }
}

fn one(rpc: &Rpc, req: Value) -> Value {
    let chain = &*rpc.chain;
    let Some(obj) = req.as_object() else {
        return response(Value::Null, Err(RpcError::new(-32600, "invalid request")));
    };
    let id = obj.get("id").cloned().unwrap_or(Value::Null);
    let method = match obj.get("method").and_then(Value::as_str) {
        Some(m) => m,
        None => {
            return response(id, Err(RpcError::new(-32600, "invalid request: no method")));
        }
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return response(
            id,
            Err(RpcError::new(
                -32600,
                "invalid request: jsonrpc must be \"2.0\"",
            )),
        );
    }
    let params = match obj.get("params") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a.clone(),
        Some(_) => {
            return response(id, Err(RpcError::invalid_params("params must be an array")));
        }
    };
    let result = gradnet::call(chain, method, &params)
        .or_else(|| filters::call(&rpc.filters, chain, method, &params))
        .unwrap_or_else(|| eth::call(chain, method, &params));
    response(id, result)
}

async fn handle(State(rpc): State<Arc<Rpc>>, body: Bytes) -> impl IntoResponse {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            let r = response(
                Value::Null,
                Err(RpcError::new(-32700, format!("parse error: {e}"))),
            );
            return (json, r.to_string());
        }
    };
    let out = tokio::task::spawn_blocking(move || match parsed {
        Value::Array(reqs) => {
            if reqs.is_empty() {
                response(Value::Null, Err(RpcError::new(-32600, "empty batch")))
            } else if reqs.len() > MAX_BATCH {
                response(
                    Value::Null,
                    Err(RpcError::new(
                        -32600,
                        format!(
                            "batch of {} requests is over the limit of {MAX_BATCH}",
                            reqs.len()
                        ),
                    )),
                )
            } else {
                Value::Array(reqs.into_iter().map(|r| one(&rpc, r)).collect())
            }
        }
        r => one(&rpc, r),
    })
    .await
    .unwrap_or_else(|e| response(Value::Null, Err(RpcError::new(-32603, e.to_string()))));
    (json, out.to_string())
}
