//! QUORUM off chain: the model's content id and the head block's hash pick
//! nodes as PIPE does (`RegistryView::ranked`: stake-weighted, `det-1`
//! nodes only, none cooling down from a fault). The first `k` are asked at
//! once; a node that fails (or is known to be down) is replaced by the
//! next in the order, up to `2k` asked. Each answer's receipt is checked
//! against the node's registered key and its outputs. Once a majority of
//! `k` agrees, its answer goes back with a certificate of the answers in
//! hand; the answers still coming are awaited after that, and a dissent
//! among all of them is reported to the registry (`reportFault`) as evidence.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::stream::{FuturesUnordered, StreamExt};
use gradnet_api::ApiError;
use gradnet_inference::fault_report::sampling_key;
use gradnet_types::certificate::{needed, Answer, Certificate, CERTIFICATE_VERSION};
use gradnet_types::InferenceMode;
use serde_json::json;

use super::answer::{self, Checked};
use super::directory::{Node, Snapshot};
use super::request::Shaped;
use super::route::{respond, tried, unavailable};
use super::upstream::Failure;
use super::Gateway;

/// Longest wait for answers still coming once a majority agrees (they are
/// awaited after the client has its answer, for the dissent they may hold).
const STRAGGLERS: Duration = Duration::from_secs(60);

/// Serves a QUORUM request (see the module).
pub async fn serve(
    gw: &Arc<Gateway>,
    mut s: Shaped,
    held: Option<super::billing::Held>,
) -> Result<Response, ApiError> {
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
                    Ok(r) => answer::read(&n, r, answer::Check::Signer).await,
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
    while best_count(&answers) < needed(k as u32) {
        let Some((node, r)) = flying.next().await else {
            break;
        };
        match r {
            Ok(c) => answers.push((node, c)),
            // the request itself is at fault: every node will say so
            Err(Failure::Status(status, body))
                if !Failure::Status(status, body.clone()).retryable() =>
            {
                return Ok(super::route::passthrough(status, body));
            }
            // (the node's health learnt it in `Upstream::post`)
            Err(f) => {
                gw.failed(&node, &f);
                fails.push((node, f));
            }
        }
        // replace what failed or disagreed while there is anyone left to ask
        let want = needed(k as u32).saturating_sub(best_count(&answers));
        while flying.len() < want && asked.len() < max_asked {
            let n = ranked[asked.len()].clone();
            asked.push(n.clone());
            flying.push(ask(n));
        }
    }
    let asked: Vec<_> = asked.iter().map(|n| n.record.operator).collect();
    let cert = certificate(&snap, k, &asked, &answers);
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
    // the answers still coming are awaited after the client has its
    // answer: a dissent among them is reported with all the answers
    // the receipts are the majority's; the outputs sent must be theirs too
    // (an agreeing node that sent other bytes is passed over)
    let pick = verdict.agreeing.iter().copied().find(|&i| {
        let (n, c) = &answers[i];
        answer::outputs(c)
            .map_err(|f| n.health.fail(f.describe()))
            .is_ok()
    });
    let Some(pick) = pick else {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "bad_answer",
            format!(
                "QUORUM of {k} for model `{}`: the agreeing nodes sent outputs their receipts do not sign",
                s.model
            ),
        ));
    };
    let (node, mut chosen) = answers.swap_remove(pick);
    let charged = held.map(|h| h.answer(s.route.llm(), &chosen.body));
    let mut receipts: Vec<Answer> = cert.answers.clone();
    let (gw2, snap2) = (gw.clone(), snap.clone());
    tokio::spawn(async move {
        let drain = async {
            while let Some((n, r)) = flying.next().await {
                if let Ok(c) = r {
                    receipts.push(Answer {
                        operator: n.record.operator,
                        receipt: c.receipt,
                    });
                }
            }
        };
        let _ = tokio::time::timeout(STRAGGLERS, drain).await;
        // all agree: nothing to check again
        let first = receipts.first().map(|a| a.receipt.body.output_hash);
        if receipts
            .iter()
            .all(|a| Some(a.receipt.body.output_hash) == first)
        {
            return;
        }
        let all = Certificate {
            answers: receipts,
            ..certificate(&snap2, k, &asked, &[])
        };
        if all.check().is_ok_and(|v| !v.dissenting.is_empty()) {
            gw2.convicted(&all);
        }
    });
    let field = if s.route.llm() {
        "gradnet_certificate"
    } else {
        "certificate"
    };
    answer::with_field(&mut chosen, field, &json!(cert));
    let mut r = match s.stream {
        true => super::sse::from_whole(&chosen.body).into_response(),
        false => respond(&node, chosen),
    };
    super::billing::headers(r.headers_mut(), charged);
    Ok(r)
}

/// A QUORUM certificate of `answers`, seeded by the snapshot's head.
fn certificate(
    snap: &Snapshot,
    k: usize,
    asked: &[Address],
    answers: &[(Node, Checked)],
) -> Certificate {
    Certificate {
        version: CERTIFICATE_VERSION,
        mode: InferenceMode::Quorum,
        chain_id: snap.chain_id,
        seed: snap.seed(),
        quorum: k as u32,
        asked: asked.to_vec(),
        answers: answers
            .iter()
            .map(|(n, c)| Answer {
                operator: n.record.operator,
                receipt: c.receipt.clone(),
            })
            .collect(),
        enclave: None,
        zk: None,
    }
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
