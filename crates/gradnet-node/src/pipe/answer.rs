//! PIPE on an inference node's side: `POST /v1/pipe/answer` runs each
//! precompile call it is sent on the node's runtimes (exactly as `eth_call`
//! would, but as a real result) and signs the outcome with the node's key.
//! A call that fails (unknown model, inputs that do not fit) gets a signed
//! failure with the reason, so that the chain reverts it with that reason.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gradnet_types::NodeKey;
use serde_json::json;

use gradnet_inference::abi::InferencePrecompile::InferencePrecompileCalls as Call;
use gradnet_inference::mode::Mode;
use gradnet_inference::pipe::{AnswerRequest, AnswerResponse, SignedOutcome, ANSWER_PATH};
use gradnet_inference::precompile::{parse, run_call, Inferencer, Request};
use gradnet_inference::sidecar::{err_outcome, ok_outcome, request_hash, signing_bytes};
use gradnet_inference::zk;

/// Calls one request may carry.
pub const MAX_CALLS: usize = 4096;
const MAX_BODY: usize = 64 << 20;

/// Runs the calls PIPE sends this node and signs each outcome.
pub struct OutcomeSigner {
    /// The node's runtimes (through its inference service).
    pub inferencer: Arc<dyn Inferencer>,
    /// The key the registry knows this node by.
    pub key: Arc<NodeKey>,
    /// A faulty node for tests: every successful output is altered (a
    /// ZKML output no longer matches its proof).
    pub perturb: bool,
}

impl OutcomeSigner {
    /// The signed outcome of one call.
    pub fn outcome(&self, chain_id: u64, calldata: &[u8]) -> SignedOutcome {
        let rh = request_hash(calldata);
        let outcome = match parse(calldata) {
            Ok(Request {
                mode:
                    Mode {
                        kind: gradnet_types::InferenceMode::Zkml,
                        ..
                    },
                call: Call::runModelInference(c),
                model,
                ..
            }) => match self.inferencer.zk_prove(&model, &c.request.input) {
                Ok((proof, mut y)) => {
                    if self.perturb {
                        y[0] += 1;
                    }
                    zk::outcome(&proof, &y)
                }
                Err(why) => err_outcome(&why),
            },
            Ok(r) => match run_call(self.inferencer.as_ref(), &r.call, false) {
                Ok(mut out) => {
                    if self.perturb {
                        perturb(&mut out);
                    }
                    ok_outcome(&out)
                }
                Err(why) => err_outcome(&why),
            },
            Err(why) => err_outcome(&why),
        };
        let sig = self.key.sign(&signing_bytes(chain_id, &rh, &outcome));
        SignedOutcome {
            outcome,
            signature: sig.to_vec().into(),
        }
    }
}

/// Flips a bit of the last byte of the output (a wrong result that still
/// decodes).
fn perturb(out: &mut [u8]) {
    if let Some(b) = out.iter_mut().rev().find(|b| **b != 0) {
        *b ^= 1;
    }
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "invalid_request", "message": message}})),
    )
        .into_response()
}

async fn answer(State(a): State<Arc<OutcomeSigner>>, body: axum::body::Bytes) -> Response {
    let req: AnswerRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("body: {e}")),
    };
    if req.calls.len() > MAX_CALLS {
        return bad_request(format!(
            "{} calls in one request; at most {MAX_CALLS}",
            req.calls.len()
        ));
    }
    // one place in the node's queue for the whole request; a full queue
    // refuses it (429), and the validator asks another node or retries
    let inferencer = match a.inferencer.clone().admit() {
        Ok(i) => i,
        Err(why) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, "1")],
                Json(json!({"error": {"code": "overloaded", "message": why}})),
            )
                .into_response()
        }
    };
    let admitted = OutcomeSigner {
        inferencer,
        key: a.key.clone(),
        perturb: a.perturb,
    };
    // one blocking task for the whole request: the calls are usually small
    // models, where a thread per call would cost more than the call
    let chain_id = req.chain_id;
    let job = tokio::task::spawn_blocking(move || {
        req.calls
            .iter()
            .map(|c| admitted.outcome(chain_id, c))
            .collect::<Vec<_>>()
    });
    let results = match job.await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": {"code": "internal", "message": e.to_string()}})),
            )
                .into_response()
        }
    };
    Json(AnswerResponse { results }).into_response()
}

/// The route an inference node serves PIPE calls on.
pub fn router(a: Arc<OutcomeSigner>) -> Router {
    Router::new()
        .route(ANSWER_PATH, post(answer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(a)
}
