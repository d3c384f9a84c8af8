//! QUORUM off chain: the model's content id and the head block's hash pick
//! nodes as PIPE does (`RegistryView::ranked`: stake-weighted, `det-1`
//! nodes only, none cooling down from a fault). The first `k` are asked at
//! once; a node that fails (or is known to be down) is replaced by the
//! next in the order, up to `2k` asked. Each answer's receipt is checked
//! against the node's registered key and its outputs. Once a majority of
//! `k` agrees, the answers still coming get a short grace, and the
//! majority's answer goes back with a certificate of every answer; a
//! dissent in it is reported to the registry (`reportFault`) as evidence.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::stream::{FuturesUnordered, StreamExt};
use gradnet_api::ApiError;
use gradnet_inference::fault_report::sampling_key;
use gradnet_types::certificate::{needed, Answer, Certificate, Seed, CERTIFICATE_VERSION};
use gradnet_types::InferenceMode;
use serde_json::json;

use super::answer::{self, Checked};
use super::directory::Node;
use super::request::Shaped;
use super::route::{respond, tried, unavailable};
use super::upstream::Failure;
use super::Gateway;

/// Longest wait for answers still coming once a majority agrees.
const GRACE: Duration = Duration::from_millis(250);

/// Serves a QUORUM request (see the module).
pub async fn serve(gw: &Arc<Gateway>, mut s: Shaped) -> Result<Response, ApiError> {
    let snap = gw.ready()?;
    let cid = gw.resolve(&snap, &s).await?;
    s.pin_model(&cid);
    let view = snap.view();
    let model = cid.to_string();
    let ranked: Vec<Node> = view
        .ranked(&sampling_key(&cid), InferenceMode::Quorum, &model)
        .into_iter()
        .filter_map(|r| snap.node(&r.operator).cloned())
        .collect();
    let k = s.quorum;
    if ranked.len() < needed(k as u32) {
        return Err(unavailable(
            &s.model,
            InferenceMode::Quorum,
            format!(
                "a quorum of {k} needs {} agreeing det-1 nodes and the registry has {} eligible for it",
                needed(k as u32),
                ranked.len()
            ),
        ));
    }
    let max_asked = (2 * k).min(ranked.len());
    let mut asked: Vec<Node> = vec![];
    let mut answers: Vec<(Node, Checked)> = vec![];
    let mut fails: Vec<(Node, Failure)> = vec![];
    let mut flying = FuturesUnordered::new();
    let ask = |n: Node| {
        let gw = gw.clone();
        let (path, headers, body) = (s.route.path(), s.headers.clone(), s.body.clone());
        async move {
            // a node known to be down is asked for the record and counts as failed
            let r = match n.health.up() {
                false => Err(Failure::Unreachable("down at its last probe".into())),
                true => match gw.upstream.post(&n, path, &headers, body).await {
                    Ok(r) => answer::read(&n, r).await,
                    Err(f) => Err(f),
                },
            };
            (n, r)
        }
    };
    for n in ranked.iter().take(k) {
        asked.push(n.clone());
        flying.push(ask(n.clone()));
    }
    let started = Instant::now();
    let mut agreed_at: Option<Instant> = None;
    loop {
        let next = match agreed_at {
            None => flying.next().await,
            Some(t) => {
                let grace = GRACE
                    .min(t.duration_since(started))
                    .max(Duration::from_millis(5));
                tokio::time::timeout_at((t + grace).into(), flying.next())
                    .await
                    .unwrap_or_default()
            }
        };
        let Some((node, r)) = next else { break };
        match r {
            Ok(c) => answers.push((node, c)),
            // the request itself is at fault: every node will say so
            Err(Failure::Status(status, body))
                if !Failure::Status(status, body.clone()).retryable() =>
            {
                return Ok(super::route::passthrough(status, body));
            }
            Err(f) => {
                if f.is_down() {
                    node.health.fail(f.describe());
                }
                fails.push((node, f));
            }
        }
        let best = best_count(&answers);
        if agreed_at.is_none() && best >= needed(k as u32) {
            agreed_at = Some(Instant::now());
        }
        if agreed_at.is_none() {
            // replace what failed or disagreed while there is anyone left to ask
            let want = needed(k as u32).saturating_sub(best);
            while flying.len() < want && asked.len() < max_asked {
                let n = ranked[asked.len()].clone();
                asked.push(n.clone());
                flying.push(ask(n));
            }
            if flying.is_empty() {
                break;
            }
        }
    }
    let cert = Certificate {
        version: CERTIFICATE_VERSION,
        mode: InferenceMode::Quorum,
        chain_id: snap.chain_id,
        seed: Seed {
            block: snap.head,
            hash: snap.head_hash,
        },
        quorum: k as u32,
        asked: asked.iter().map(|n| n.record.operator).collect(),
        answers: answers
            .iter()
            .map(|(n, c)| Answer {
                operator: n.record.operator,
                receipt: c.receipt.clone(),
            })
            .collect(),
        enclave: None,
    };
    let verdict = match cert.check() {
        Ok(v) => v,
        Err(e) => {
            let detail = if fails.is_empty() {
                String::new()
            } else {
                format!("; failed: {}", tried(&fails))
            };
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "no_quorum",
                format!(
                    "QUORUM of {k} for model `{}`: {e} ({} asked, {} answered){detail}",
                    s.model,
                    asked.len(),
                    answers.len()
                ),
            ));
        }
    };
    if !verdict.dissenting.is_empty() {
        gw.convicted(&cert);
    }
    let (node, mut chosen) = answers.swap_remove(verdict.agreeing[0]);
    let field = if s.route.llm() {
        "gradnet_certificate"
    } else {
        "certificate"
    };
    answer::with_field(&mut chosen, field, &json!(cert));
    if s.stream {
        return Ok(super::sse::from_whole(&chosen.body).into_response());
    }
    Ok(respond(&node, chosen))
}

/// The size of the largest group of answers with one output hash.
fn best_count(answers: &[(Node, Checked)]) -> usize {
    answers
        .iter()
        .map(|(_, a)| {
            answers
                .iter()
                .filter(|(_, b)| b.receipt.body.output_hash == a.receipt.body.output_hash)
                .count()
        })
        .max()
        .unwrap_or(0)
}
