//! One node per request (VANILLA, TEE): the nodes that serve the model in
//! that mode, healthy ones first and the least loaded (latency × requests
//! in flight) of two random picks first among them; a request whose node
//! fails before answering goes to the next (`ATTEMPTS` nodes at most). A
//! stream is passed through as it comes; if its node dies mid-stream, the
//! stream ends with an error event (the node charges what it generated).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use gradnet_api::ApiError;
use gradnet_types::InferenceMode;
use serde_json::json;

use super::answer::{self, Checked};
use super::directory::Node;
use super::request::Shaped;
use super::upstream::{returned, value, Failure};
use super::Gateway;

/// Nodes a request is tried on before the gateway gives up.
pub const ATTEMPTS: usize = 3;
/// Response header naming the operator of the node that answered.
pub const NODE_HEADER: &str = "x-gradnet-node";

/// Candidates in the order to try them.
pub fn candidates(nodes: &[Node], pick: impl Fn(&Node) -> bool) -> Vec<Node> {
    let mut c: Vec<Node> = nodes.iter().filter(|n| pick(n)).cloned().collect();
    // power of two choices: a random pair, the less loaded first, then the rest by load
    let r = rand_index(c.len());
    c.sort_by_key(|n| (!n.health.up(), n.health.score()));
    if c.len() >= 2 && c[0].health.up() && c[1].health.up() {
        let j = 1 + r % (c.len() - 1);
        if c[j].health.up() && c[j].health.score() <= c[0].health.score() * 2 {
            c.swap(0, j);
        }
    }
    c
}

fn rand_index(n: usize) -> usize {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(n);
    h.finish() as usize
}

/// The 503 for a model nobody can serve, naming the model and why.
pub fn unavailable(model: &str, mode: InferenceMode, why: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_node_available",
        format!("no inference node can serve model `{model}` in {mode} now: {why}"),
    )
}

/// Why each tried node failed, for the client.
pub fn tried(fails: &[(Node, Failure)]) -> String {
    fails
        .iter()
        .map(|(n, f)| format!("{} ({}): {}", n.record.operator, n.base(), f.describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Serves a request on one node: VANILLA on any that serves the model,
/// TEE only on active enclaves (with a certificate naming the enclave).
pub async fn one(
    gw: &Arc<Gateway>,
    s: Shaped,
    held: Option<super::billing::Held>,
) -> Result<Response, ApiError> {
    let snap = gw.ready()?;
    let mode = s.mode;
    let nodes = candidates(&snap.nodes, |n| {
        n.record.serves(mode, &s.model) && (mode != InferenceMode::Tee || n.enclave.is_some())
    });
    if nodes.is_empty() {
        let why = match mode {
            InferenceMode::Tee => "no active enclave in the TEE registry serves it".to_string(),
            _ => format!(
                "none of the {} active nodes in the registry serves it",
                snap.nodes.len()
            ),
        };
        return Err(unavailable(&s.model, mode, why));
    }
    let mut fails: Vec<(Node, Failure)> = vec![];
    for node in nodes.into_iter().take(ATTEMPTS) {
        let sent = gw
            .upstream
            .post(&node, s.route.path(), &s.headers, s.body.clone())
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(f) if f.retryable() => {
                gw.failed(&node, &f);
                fails.push((node, f));
                continue;
            }
            // the request's own fault: the node's answer is the client's
            Err(Failure::Status(status, body)) => return Ok(passthrough(status, body)),
            Err(f) => return Err(ApiError::internal(f.describe())),
        };
        if s.stream {
            return Ok(stream(&node, r, super::billing::StreamCharge::new(held)));
        }
        match answer::read(&node, r, answer::Check::Full).await {
            Ok(mut c) => {
                let charged = held.map(|h| h.answer(s.route.llm(), &c.body));
                if mode == InferenceMode::Tee {
                    let cert = gw.tee_certificate(&snap, &node, &c);
                    let field = if s.route.llm() {
                        "gradnet_certificate"
                    } else {
                        "certificate"
                    };
                    answer::with_field(&mut c, field, &json!(cert));
                }
                let mut r = respond(&node, c);
                super::billing::headers(r.headers_mut(), charged);
                return Ok(r);
            }
            Err(f) => {
                node.health.fail(f.describe());
                gw.failed(&node, &f);
                fails.push((node, f));
            }
        }
    }
    Err(unavailable(
        &s.model,
        mode,
        format!("every node tried failed: {}", tried(&fails)),
    ))
}

/// A node's refusal of the request itself, as it sent it.
pub fn passthrough(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, [("content-type", "application/json")], body).into_response()
}

/// A checked answer to the client, naming the node.
pub fn respond(node: &Node, c: Checked) -> Response {
    let mut r = Response::new(Body::from(c.body));
    *r.status_mut() = StatusCode::from_u16(c.status).unwrap_or(StatusCode::OK);
    returned(&c.headers, r.headers_mut());
    r.headers_mut().insert(
        HeaderName::from_static(NODE_HEADER),
        value(&node.record.operator.to_string()),
    );
    r
}

/// A stream passed through; a break ends it with an error event.
fn stream(node: &Node, r: reqwest::Response, charge: super::billing::StreamCharge) -> Response {
    let mut headers = axum::http::HeaderMap::new();
    returned(r.headers(), &mut headers);
    let operator = node.record.operator;
    let health = node.health.clone();
    let body = r.bytes_stream().map(move |chunk| match chunk {
        Ok(b) => {
            charge.scan(&b);
            Ok::<_, std::io::Error>(b)
        }
        Err(e) => {
            health.fail(format!("stream broke: {e}"));
            let ev = json!({"error": {
                "code": "node_failed",
                "message": format!("inference node {operator} stopped mid-stream ({e}); the text above is what it generated, and it charges only that"),
            }});
            Ok(axum::body::Bytes::from(format!("data: {ev}\n\n")))
        }
    });
    let mut resp = Response::new(Body::from_stream(body));
    *resp.headers_mut() = headers;
    resp.headers_mut().insert(
        HeaderName::from_static(NODE_HEADER),
        value(&operator.to_string()),
    );
    resp
}
