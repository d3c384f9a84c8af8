//! `POST /v1/infer`: resolve the model, check the inputs, run it on a bounded
//! worker pool, sign a receipt.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_runtime::Model;
use gradnet_types::json::{parse_inputs, Encoded};
use gradnet_types::receipt::RECEIPT_VERSION;
use gradnet_types::request::{output_hash, request_hash};
use gradnet_types::{
    now_ms, ContentId, DType, InferRequest, InferenceMode, ModelRef, Receipt, ReceiptBody,
};
use serde::Serialize;

use crate::error::{ApiError, ApiJson};
use crate::AppState;

#[derive(Serialize)]
struct TypeInfo<'a> {
    dtype: DType,
    shape: &'a [usize],
}

#[derive(Serialize)]
struct InferResponse<'a> {
    model: ContentId,
    outputs: Encoded<'a>,
    /// dtype and shape of each output, so the outputs can be re-encoded and
    /// their hash checked against the receipt.
    output_types: BTreeMap<&'a str, TypeInfo<'a>>,
    receipt: Receipt,
}

fn resolve(s: &AppState, model: &str) -> Result<ContentId, ApiError> {
    let r: ModelRef = model
        .parse()
        .map_err(|e: gradnet_types::request::ModelRefError| {
            ApiError::bad_request("invalid_model", e.to_string())
        })?;
    Ok(s.hub.resolve(&r)?)
}

/// The parsed model, from the cache or read (verified) from the hub.
async fn load(s: &AppState, cid: ContentId) -> Result<Arc<Model>, ApiError> {
    if let Some(m) = s.runtime.cached(&cid) {
        return Ok(m);
    }
    let bytes = s.hub.read_all(&cid).await?;
    let rt = s.runtime.clone();
    Ok(tokio::task::spawn_blocking(move || rt.load(cid, &bytes)).await??)
}

pub async fn infer(
    State(s): State<AppState>,
    ApiJson(req): ApiJson<InferRequest>,
) -> Result<Response, ApiError> {
    if req.mode != InferenceMode::Vanilla {
        return Err(ApiError::bad_request(
            "unsupported_mode",
            format!("mode {} is settled through the chain's inference precompile; a single node answers VANILLA requests", req.mode),
        ));
    }
    let inputs = parse_inputs(&req.inputs)?;
    let cid = resolve(&s, &req.model)?;
    // admission: running + queued is bounded; beyond it, refuse at once
    let _admitted = s
        .admission
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::overloaded())?;
    let model = load(&s, cid).await?;
    let typed = model.signature.check(&inputs)?;
    s.metrics.queued.inc();
    let worker = s.workers.clone().acquire_owned().await;
    s.metrics.queued.dec();
    let worker = worker.map_err(|_| ApiError::internal("worker pool closed"))?;
    let rt = s.runtime.clone();
    let m = model.clone();
    let running = s.metrics.inflight.clone();
    // the permit moves into the task: a client that disconnects does not free
    // a worker that is still computing
    let (typed, outputs) = tokio::task::spawn_blocking(move || {
        let _worker = worker;
        running.inc();
        let out = rt.run(&m, &typed);
        running.dec();
        out.map(|o| (typed, o))
    })
    .await??;
    s.metrics.inferences.inc();
    let receipt = ReceiptBody {
        version: RECEIPT_VERSION,
        kind: "onnx".into(),
        request_hash: request_hash(&cid, req.mode, &typed),
        model: cid,
        output_hash: output_hash(&outputs),
        mode: req.mode,
        runtime: s.runtime.runtime_id(),
        node: s.key.public_hex(),
        timestamp_ms: now_ms(),
    }
    .sign(&s.key);
    let body = InferResponse {
        model: cid,
        outputs: Encoded(&outputs, req.output_format),
        output_types: outputs
            .iter()
            .map(|(n, t)| {
                (
                    n.as_str(),
                    TypeInfo {
                        dtype: t.dtype(),
                        shape: t.shape(),
                    },
                )
            })
            .collect(),
        receipt,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// `GET /api/v0/signature/{model}`: a model's declared inputs and outputs.
pub async fn signature(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    let cid = resolve(&s, &model)?;
    let m = load(&s, cid).await?;
    Ok(Json(serde_json::json!({"model": cid, "signature": m.signature})).into_response())
}
