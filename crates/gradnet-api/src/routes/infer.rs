//! `POST /v1/infer`: parse the request, run it through the inference
//! service, sign a receipt, encode the answer.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_types::json::{Encoded, OutputFormat};
use gradnet_types::receipt::RECEIPT_VERSION;
use gradnet_types::request::{output_hash, request_hash, InferRequestRef};
use gradnet_types::{now_ms, ContentId, DType, InferenceMode, Receipt, ReceiptBody};
use serde::Serialize;

use crate::error::{ApiError, JsonBody, HEADER_LENGTH};
use crate::inference::Caller;
use crate::AppState;

#[derive(Serialize)]
struct TypeInfo<'a> {
    dtype: DType,
    shape: &'a [usize],
}

/// The response: `{model, outputs, output_types, receipt}`. `output_types`
/// gives each output's dtype and shape, so the outputs can be re-encoded and
/// their hash checked against the receipt. Written piece by piece so that
/// base64 outputs go straight into the body (see [`Encoded::write_json`]);
/// binary outputs' bytes go into `data`, to follow the JSON.
fn response_json(
    model: ContentId,
    outputs: Encoded<'_>,
    output_types: &BTreeMap<&str, TypeInfo<'_>>,
    receipt: &Receipt,
    data: &mut Vec<u8>,
) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"{\"model\":");
    serde_json::to_writer(&mut out, &model)?;
    out.extend_from_slice(b",\"outputs\":");
    match outputs.1 {
        OutputFormat::Binary => outputs.write_binary(&mut out, data)?,
        _ => outputs.write_json(&mut out)?,
    }
    out.extend_from_slice(b",\"output_types\":");
    serde_json::to_writer(&mut out, output_types)?;
    out.extend_from_slice(b",\"receipt\":");
    serde_json::to_writer(&mut out, receipt)?;
    out.push(b'}');
    Ok(out)
}

/// The repository a model reference names, if it names one (a price may
/// be set per repository).
pub(crate) fn repo_of(model: &str) -> Option<&str> {
    if model.parse::<ContentId>().is_ok() {
        return None;
    }
    model.split(['@', '/']).next().filter(|r| !r.is_empty())
}

pub(crate) async fn infer(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let req: InferRequestRef<'_> = body.parse()?;
    if req.mode != InferenceMode::Vanilla {
        return Err(ApiError::bad_request(
            "unsupported_mode",
            format!("mode {} is settled through the chain's inference precompile; a single node answers VANILLA requests", req.mode),
        ));
    }
    let inputs = req.inputs.parse_with(body.binary())?;
    let cid = s.resolve(&req.model).await?;
    // a paid node holds the call's price first, and charges it once answered
    let hold = match s.payments() {
        Some(p) => {
            let price = p.rate(&cid.to_string(), repo_of(&req.model))?.per_call;
            match price.is_zero() {
                true => None,
                false => Some(
                    p.hold(&headers, "/v1/infer", crate::payments::Need::Exact(price))
                        .await?,
                ),
            }
        }
        None => None,
    };
    let admitted = s.admit(Caller::Infer)?;
    let model = s.onnx_model(cid).await?;
    let typed = Arc::new(model.signature.check_owned(inputs)?);
    let run = admitted.run_onnx(model, typed.clone());
    // hashed while the model runs (the run is polled first, so it has
    // started): the request hash needs only the inputs
    let (outputs, request_hash) = tokio::join!(run, async { request_hash(&cid, req.mode, &typed) });
    let mut outputs = outputs?;
    if s.config.byzantine {
        perturb(&mut outputs);
    }
    let charge = hold.map(|h| {
        let amount = h.amount();
        h.settle(amount)
    });
    let receipt = ReceiptBody {
        version: RECEIPT_VERSION,
        kind: "onnx".into(),
        request_hash,
        model: cid,
        output_hash: output_hash(&outputs),
        mode: req.mode,
        runtime: s.runtime.runtime_id(),
        node: s.key.public_hex(),
        timestamp_ms: now_ms(),
        charge: charge
            .as_ref()
            .zip(s.payments())
            .map(|(c, p)| c.receipt(p.payee)),
    }
    .sign(&s.key);
    let output_types: BTreeMap<&str, TypeInfo<'_>> = outputs
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
        .collect();
    let mut data = Vec::new();
    let mut bytes = response_json(
        cid,
        Encoded(&outputs, req.output_format),
        &output_types,
        &receipt,
        &mut data,
    )
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = if req.output_format != OutputFormat::Binary {
        ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    } else {
        let json_len = bytes.len();
        bytes.extend_from_slice(&data);
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                (
                    header::HeaderName::from_static(HEADER_LENGTH),
                    json_len.to_string(),
                ),
            ],
            bytes,
        )
            .into_response()
    };
    if let (Some(c), Some(p)) = (&charge, s.payments()) {
        crate::payments::put_headers(r.headers_mut(), c, p.chain_id());
    }
    Ok(r)
}

/// `GET /api/v0/signature/{model}`: a model's declared inputs and outputs,
/// and whether this node runs it: under which profiles, and per engine the
/// operators that stop it.
pub(crate) async fn signature(
    State(s): State<AppState>,
    Path(model): Path<String>,
) -> Result<Response, ApiError> {
    let cid = s.resolve(&model).await?;
    let bytes = s.hub.read_all(&cid).await?;
    let rt = s.runtime.clone();
    let (sig, report) = tokio::task::spawn_blocking(move || rt.inspect(cid, &bytes)).await??;
    Ok(
        Json(serde_json::json!({"model": cid, "signature": sig, "runtime": report}))
            .into_response(),
    )
}

/// `GET /api/v0/resolve/{model}[?kind=llm]`: the content id a model
/// reference names on this node (a gateway samples QUORUM nodes by it).
pub(crate) async fn resolve(
    State(s): State<AppState>,
    Path(model): Path<String>,
    axum::extract::Query(q): axum::extract::Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let cid = match q.get("kind").map(String::as_str) {
        Some("llm") => s.resolve_llm(&model).await?,
        _ => s.resolve(&model).await?,
    };
    Ok(Json(serde_json::json!({"reference": model, "model": cid})).into_response())
}

/// A faulty node's answer (`--byzantine`): the first output's first value moved.
fn perturb(outputs: &mut gradnet_types::NamedTensors) {
    use gradnet_types::{Tensor, TensorData};
    let Some((name, t)) = outputs.pop_first() else {
        return;
    };
    let shape = t.shape().to_vec();
    let mut data = t.into_data();
    match &mut data {
        TensorData::F32(v) if !v.is_empty() => v[0] += 1.0,
        TensorData::F64(v) if !v.is_empty() => v[0] += 1.0,
        TensorData::I32(v) if !v.is_empty() => v[0] = v[0].wrapping_add(1),
        TensorData::I64(v) if !v.is_empty() => v[0] = v[0].wrapping_add(1),
        TensorData::Bool(v) if !v.is_empty() => v[0] = !v[0],
        _ => {}
    }
    if let Ok(t) = Tensor::new(shape, data) {
        outputs.insert(name, t);
    }
}
