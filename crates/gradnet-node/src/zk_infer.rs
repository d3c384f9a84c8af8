//! `POST /v1/zk/infer`: a ZKML answer off chain, `/v1/infer`'s request
//! shape (`{model, inputs}`, one number tensor). The node proves the
//! model's circuit on the input (quantized exactly as the chain quantizes a
//! ZKML call's calldata) with its proving key and answers the circuit's
//! output and the proof, with a receipt (`kind: zkml`) whose output hash
//! signs the outcome `0x02 ‖ proof ‖ output` as a ZKML result in a block
//! does. A node that charges holds its per-call price first. A gateway
//! checks the proof against the registry's key before it answers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gradnet_api::error::JsonBody;
use gradnet_api::payments::{put_headers, Need};
use gradnet_api::{ApiError, AppState};
use gradnet_inference::precompile::Inferencer;
use gradnet_inference::zk;
use gradnet_types::receipt::{RuntimeId, RECEIPT_VERSION};
use gradnet_types::request::request_hash;
use gradnet_types::{now_ms, ContentId, DType, InferenceMode, NamedTensors, ReceiptBody};
use serde_json::{json, Value};

/// Where the route is served.
pub const ZK_INFER_PATH: &str = "/v1/zk/infer";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ZkRequest {
    model: String,
    inputs: Value,
    /// Accepted as `/v1/infer` takes it; the circuit's output is integers.
    #[serde(default)]
    #[allow(dead_code)]
    output_format: Option<Value>,
}

type Shared = (AppState, Arc<dyn Inferencer>);

/// The route, proving with `inferencer` (the node's ZK keys).
pub fn router(state: AppState, inferencer: Arc<dyn Inferencer>) -> Router {
    Router::new()
        .route(ZK_INFER_PATH, post(infer))
        .with_state((state, inferencer))
}

async fn infer(
    State((s, inferencer)): State<Shared>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req: ZkRequest = body.parse()?;
    let cid = s.resolve(&req.model).await?;
    let bad = |code: &'static str, m: String| ApiError::bad_request(code, m);
    let parsed = gradnet_types::json::parse_inputs(&req.inputs)
        .map_err(|e| bad("invalid_tensor", e.to_string()))?;
    let input = zk::model_input(&parsed).map_err(|e| bad("invalid_request", e))?;
    let typed = parsed
        .iter()
        .map(|(n, t)| Ok((n.clone(), t.to_tensor(n, DType::F32)?)))
        .collect::<Result<NamedTensors, gradnet_types::TensorError>>()
        .map_err(|e| bad("invalid_tensor", e.to_string()))?;
    let hold = match s.payments() {
        Some(p) => {
            let price = p.rate(&cid.to_string(), None)?.per_call;
            match price.is_zero() {
                true => None,
                false => Some(p.hold(&headers, ZK_INFER_PATH, Need::Exact(price)).await?),
            }
        }
        None => None,
    };
    let admitted = inferencer.admit().map_err(|why| {
        ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "overloaded", why)
    })?;
    let model = cid.to_string();
    let (proof, mut y) = tokio::task::spawn_blocking(move || admitted.zk_prove(&model, &input))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|why| ApiError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, "zkml", why))?;
    if s.config.byzantine {
        // a faulty node (tests): an output its proof does not prove
        if let Some(v) = y.first_mut() {
            *v += 1;
        }
    }
    let outcome = zk::outcome(&proof, &y);
    let charge = hold.map(|h| {
        let amount = h.amount();
        h.settle(amount)
    });
    let receipt = ReceiptBody {
        version: RECEIPT_VERSION,
        kind: "zkml".into(),
        request_hash: request_hash(&cid, InferenceMode::Zkml, &typed),
        model: cid,
        output_hash: ContentId::of(&outcome),
        mode: InferenceMode::Zkml,
        runtime: RuntimeId {
            name: "gradnet-zk".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            profile: String::new(),
        },
        node: s.key.public_hex(),
        timestamp_ms: now_ms(),
        charge: charge
            .as_ref()
            .zip(s.payments())
            .map(|(c, p)| c.receipt(p.payee)),
    }
    .sign(&s.key);
    let mut r = Json(json!({
        "model": cid,
        "zk": {"output": y, "proof": hex::encode(&proof)},
        "receipt": receipt,
    }))
    .into_response();
    if let (Some(c), Some(p)) = (&charge, s.payments()) {
        put_headers(r.headers_mut(), c, p.chain_id());
    }
    Ok(r)
}
