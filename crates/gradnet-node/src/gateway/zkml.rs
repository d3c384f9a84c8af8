//! ZKML off chain: one node that serves ZKML for the model proves its
//! answer (`POST /v1/zk/infer` on the node, paid like any answer); the
//! gateway checks, before it answers, that the receipt is the node's, that
//! it signs this proof and output, and that the proof verifies under the
//! verifying key the registry holds for the model (`zkVerifyingKey`) for
//! the request's own input, quantized as the chain quantizes it. A node
//! whose proof does not hold is passed over. The answer's outputs are the
//! circuit's, exact (`y / 2^frac_bits`); the certificate carries the proof,
//! the input and output it is for, and the key.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gradnet_api::ApiError;
use gradnet_inference::zk;
use gradnet_types::certificate::{Certificate, ZkProof};
use gradnet_types::{ContentId, InferenceMode, Receipt};
use serde_json::{json, Value};

use super::directory::Node;
use super::request::Shaped;
use super::route::{candidates, passthrough, tried, unavailable, ATTEMPTS};
use super::upstream::Failure;
use super::Gateway;

/// The node route that proves.
const PATH: &str = "/v1/zk/infer";

/// Serves a ZKML request (see the module).
pub async fn serve(
    gw: &Arc<Gateway>,
    mut s: Shaped,
    held: Option<super::billing::Held>,
) -> Result<Response, ApiError> {
    if s.route.llm() {
        return Err(ApiError::bad_request(
            "unsupported_mode",
            "ZKML proves ONNX models (/v1/infer); LLM answers are served in VANILLA, QUORUM and TEE",
        ));
    }
    let snap = gw.ready()?;
    let cid = gw.resolve(&snap, &s).await?;
    s.pin_model(&cid);
    let key_bytes = gw.zk_key(&cid).await?;
    let vk = zk::key(&key_bytes).map_err(ApiError::internal)?;
    let inputs: Value = s
        .field("inputs")
        .and_then(|v| serde_json::from_str(v.get()).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_request", "the request has no `inputs`"))?;
    let parsed = gradnet_types::json::parse_inputs(&inputs)
        .map_err(|e| ApiError::bad_request("invalid_tensor", e.to_string()))?;
    let x = zk::model_input(&parsed)
        .and_then(|mi| zk::quantize_input(&mi, vk.frac_bits))
        .map_err(|e| ApiError::bad_request("invalid_request", e))?;
    if x.len() != vk.inputs {
        return Err(ApiError::bad_request(
            "invalid_tensor",
            format!(
                "ZKML: {} input values, the model's circuit takes {}",
                x.len(),
                vk.inputs
            ),
        ));
    }
    let model = cid.to_string();
    let nodes = candidates(&snap.nodes, |n| {
        n.record.serves(InferenceMode::Zkml, &model)
    });
    if nodes.is_empty() {
        return Err(unavailable(
            &s.model,
            InferenceMode::Zkml,
            "no node in the registry serves it in ZKML".into(),
        ));
    }
    let mut fails: Vec<(Node, Failure)> = vec![];
    for node in nodes.into_iter().take(ATTEMPTS) {
        let r = match gw
            .upstream
            .post(&node, PATH, &s.headers, s.body.clone())
            .await
        {
            Ok(r) => r,
            Err(f) if f.retryable() => {
                gw.failed(&node, &f);
                fails.push((node, f));
                continue;
            }
            Err(Failure::Status(status, body)) => return Ok(passthrough(status, body)),
            Err(f) => return Err(ApiError::internal(f.describe())),
        };
        let body: Value = match r.json().await {
            Ok(v) => v,
            Err(e) => {
                let f = Failure::Garbage(format!("not JSON: {e}"));
                gw.failed(&node, &f);
                fails.push((node, f));
                continue;
            }
        };
        match check(&node, &vk, &x, &body) {
            Ok((receipt, y, proof)) => {
                let charged = held.map(|h| h.call());
                let cert = Certificate {
                    zk: Some(ZkProof {
                        verifying_key: hex::encode(&key_bytes),
                        input: x.clone(),
                        output: y.clone(),
                        proof,
                    }),
                    ..super::one_node(&snap, InferenceMode::Zkml, &node, receipt)
                };
                let scale = (1u64 << vk.frac_bits) as f64;
                let values: Vec<f64> = y.iter().map(|&v| v as f64 / scale).collect();
                let mut resp = Json(json!({
                    "model": cid,
                    "outputs": {vk.output_name.clone(): nest(&values, &vk.output_shape)},
                    "output_types": {vk.output_name.clone(): {"dtype": "f64", "shape": vk.output_shape}},
                    "certificate": cert,
                }))
                .into_response();
                resp.headers_mut().insert(
                    super::route::NODE_HEADER,
                    super::upstream::value(&node.record.operator.to_string()),
                );
                super::billing::headers(resp.headers_mut(), charged);
                return Ok(resp);
            }
            Err(f) => {
                node.health.fail(f.describe());
                gw.failed(&node, &f);
                fails.push((node, f));
            }
        }
    }
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "no_proof",
        format!(
            "ZKML for model `{}`: no node gave a proof that verifies: {}",
            s.model,
            tried(&fails)
        ),
    ))
}

/// The node's receipt, output and proof (hex), if they hold.
fn check(
    node: &Node,
    vk: &gradnet_zk::VerifyingKey,
    x: &[i64],
    body: &Value,
) -> Result<(Receipt, Vec<i64>, String), Failure> {
    let bad = |m: String| Failure::Garbage(m);
    let receipt: Receipt = serde_json::from_value(body["receipt"].clone())
        .map_err(|e| bad(format!("no receipt: {e}")))?;
    receipt
        .verify_from(&hex::encode(node.record.signing_key))
        .map_err(|e| bad(e.to_string()))?;
    let y: Vec<i64> = serde_json::from_value(body["zk"]["output"].clone())
        .map_err(|e| bad(format!("no output: {e}")))?;
    let proof_hex = body["zk"]["proof"].as_str().unwrap_or_default().to_string();
    let proof = hex::decode(&proof_hex).map_err(|e| bad(format!("proof: {e}")))?;
    let signed = ContentId::of(&zk::outcome(&proof, &y));
    if signed != receipt.body.output_hash {
        return Err(bad("its receipt does not sign this proof and output".into()));
    }
    zk::check(vk, x, &y, &proof).map_err(bad)?;
    Ok((receipt, y, proof_hex))
}

/// `values` as nested JSON arrays of `shape`.
fn nest(values: &[f64], shape: &[usize]) -> Value {
    match shape.split_first() {
        None => json!(values.first()),
        Some((_, [])) => json!(values),
        Some((&n, rest)) => {
            let step = rest.iter().product::<usize>().max(1);
            Value::Array(
                (0..n)
                    .map(|i| {
                        nest(
                            values.get(i * step..(i + 1) * step).unwrap_or_default(),
                            rest,
                        )
                    })
                    .collect(),
            )
        }
    }
}
