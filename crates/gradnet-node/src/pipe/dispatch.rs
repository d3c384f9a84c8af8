//! PIPE on the proposer's side: the inference calls its block building
//! found without results are sent, all at once, to the nodes sampled for
//! them (one HTTP request per node carrying all its calls); answers are
//! checked as validators will check them, and a QUORUM call whose nodes
//! failed or disagreed asks the next nodes in its sampling order.
//!
//! A call that cannot be decided in time waits for a later block; after
//! `MAX_TRIES` blocks it goes into the sidecar as unserved, and reverts
//! with the reason.

use std::collections::HashMap;
use std::time::Instant;

use alloy_primitives::{Address, B256};
use gradnet_inference::pipe::{AnswerRequest, AnswerResponse, ANSWER_PATH, MAX_TRIES};
use gradnet_inference::precompile::Miss;
use gradnet_inference::sidecar::{self, Decision, NodeResult, RegistryView, ServedCall};
use gradnet_ledger::chain::MissServer;
use gradnet_ledger::store::Missed;

/// Sends a proposer's unanswered calls to the sampled nodes over HTTP.
pub struct Dispatcher {
    client: reqwest::Client,
    /// Per call: blocks tried in, and the last one.
    tries: parking_lot::Mutex<HashMap<B256, (u32, u64)>>,
}

impl Default for Dispatcher {
    fn default() -> Self {
        Dispatcher {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(8)
                .build()
                .expect("HTTP client"),
            tries: Default::default(),
        }
    }
}

struct Pending {
    miss: Miss,
    ranked: Vec<Address>,
    call: ServedCall,
}

impl Pending {
    fn decided(&self) -> bool {
        matches!(
            sidecar::decide(&self.call, self.miss.mode.quorum),
            Decision::Agreed { .. }
        )
    }

    /// Nodes to ask next: the quorum at first, then enough to replace
    /// those that failed or disagreed, within `max_asked`.
    fn next_asks(&self) -> Vec<Address> {
        let q = self.miss.mode.quorum;
        let want = if self.call.asked.is_empty() {
            q
        } else {
            let best = (0..self.call.outcomes.len() as u32)
                .map(|i| self.call.answers.iter().filter(|a| a.outcome == i).count())
                .max()
                .unwrap_or(0);
            sidecar::needed(q).saturating_sub(best)
        };
        let room = sidecar::max_asked(q) - self.call.asked.len();
        self.ranked
            .iter()
            .skip(self.call.asked.len())
            .take(want.min(room))
            .copied()
            .collect()
    }
}

impl Dispatcher {
    /// Asks `node` for its signed outcomes of `calls` before `deadline`:
    /// one per call, None where its signature does not hold.
    pub async fn ask(
        &self,
        view: &RegistryView,
        node: Address,
        calls: Vec<alloy_primitives::Bytes>,
        deadline: Instant,
    ) -> Result<Vec<Option<NodeResult>>, String> {
        let n = calls.len();
        let hashes: Vec<B256> = calls.iter().map(|c| sidecar::request_hash(c)).collect();
        let body = AnswerRequest {
            chain_id: view.chain_id,
            calls,
        };
        let endpoint = view
            .node(&node)
            .map(|n| n.endpoint.clone())
            .unwrap_or_default();
        let req = self
            .client
            .post(format!("{}{ANSWER_PATH}", endpoint.trim_end_matches('/')))
            .json(&body);
        let left = deadline.saturating_duration_since(Instant::now());
        let answer = tokio::time::timeout(left, async {
            let r = req.send().await.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("HTTP {}", r.status()));
            }
            r.json::<AnswerResponse>().await.map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|_| Err("no answer before the deadline".into()))?;
        if answer.results.len() != n {
            return Err(format!("answered {} calls of {n}", answer.results.len()));
        }
        let key = view.node(&node).map(|n| n.signing_key).unwrap_or_default();
        Ok(hashes
            .iter()
            .zip(answer.results)
            .map(|(rh, r)| {
                let msg = sidecar::signing_bytes(view.chain_id, rh, &r.outcome);
                if !sidecar::verify_signature(&key, &msg, &r.signature) {
                    tracing::warn!(%node, "inference node sent a result with a bad signature");
                    return None;
                }
                Some(NodeResult {
                    node,
                    outcome: r.outcome,
                    signature: r.signature,
                })
            })
            .collect())
    }

    /// Asks the nodes a proposal says missed calls whether they answer
    /// now; the first that does (with a valid signature) is named.
    pub async fn confirm(
        &self,
        view: &RegistryView,
        missed: &[Missed],
        deadline: Instant,
    ) -> Result<(), String> {
        let mut per_node: HashMap<Address, Vec<&Missed>> = HashMap::new();
        for m in missed {
            for n in &m.nodes {
                per_node.entry(*n).or_default().push(m);
            }
        }
        let asks = per_node.into_iter().map(|(node, ms)| async move {
            let calls = ms.iter().map(|m| m.call.calldata.clone()).collect();
            (node, ms, self.ask(view, node, calls, deadline).await)
        });
        for (node, ms, answer) in futures::future::join_all(asks).await {
            if let Ok(results) = answer {
                if let Some((m, _)) = ms.iter().zip(results).find(|(_, r)| r.is_some()) {
                    return Err(format!(
                        "sidecar: call {} says node {node} did not answer, but it answers this validator",
                        m.call.request_hash
                    ));
                }
            }
        }
        Ok(())
    }

    /// Serves what it can of `misses` for the block `view` describes.
    pub async fn serve_calls(
        &self,
        view: &RegistryView,
        misses: Vec<Miss>,
        deadline: Instant,
    ) -> Vec<ServedCall> {
        let mut calls: Vec<Pending> = vec![];
        for m in misses {
            if calls.iter().any(|p| p.miss.request_hash == m.request_hash) {
                continue;
            }
            let ranked: Vec<Address> = view
                .ranked(&m.request_hash, m.mode.kind, &m.model)
                .iter()
                .map(|n| n.operator)
                .collect();
            calls.push(Pending {
                call: ServedCall::new(m.request_hash),
                miss: m,
                ranked,
            });
        }
        // rounds: ask, collect, ask replacements for what is undecided
        loop {
            let mut per_node: HashMap<Address, Vec<usize>> = HashMap::new();
            for (i, p) in calls.iter_mut().enumerate() {
                if p.decided() {
                    continue;
                }
                for a in p.next_asks() {
                    p.call.asked.push(a);
                    per_node.entry(a).or_default().push(i);
                }
            }
            if per_node.is_empty() || Instant::now() >= deadline {
                break;
            }
            let asks = per_node.into_iter().map(|(node, idx)| {
                let calls: Vec<_> = idx
                    .iter()
                    .map(|&i| calls[i].miss.calldata.clone())
                    .collect();
                async move { (node, idx, self.ask(view, node, calls, deadline).await) }
            });
            for (node, idx, answer) in futures::future::join_all(asks).await {
                let results = match answer {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(%node, "inference node failed: {e}");
                        continue;
                    }
                };
                for (i, r) in idx.into_iter().zip(results) {
                    if let Some(r) = r {
                        calls[i].call.push(r);
                    }
                }
            }
        }
        let mut out = vec![];
        let mut tries = self.tries.lock();
        for mut p in calls {
            if p.decided() {
                tries.remove(&p.call.request_hash);
                out.push(p.call);
                continue;
            }
            let t = tries.entry(p.call.request_hash).or_insert((0, 0));
            if t.1 != view.block {
                *t = (t.0 + 1, view.block);
            }
            let eligible = p.ranked.len();
            let exhausted = eligible < sidecar::needed(p.miss.mode.quorum);
            if t.0 >= MAX_TRIES || exhausted {
                let why = if exhausted {
                    format!(
                        "inference: {eligible} eligible node(s) serve mode {} for `{}`; the call needs {}",
                        p.miss.mode.code(),
                        p.miss.model,
                        sidecar::needed(p.miss.mode.quorum)
                    )
                } else {
                    format!(
                        "inference: not served after {MAX_TRIES} blocks ({} answer(s) from {} node(s) asked, no majority)",
                        p.call.answers.len(),
                        p.call.asked.len()
                    )
                };
                tries.remove(&p.call.request_hash);
                p.call.unserved = why.into_bytes().into();
                out.push(p.call);
            }
        }
        out
    }
}

impl MissServer for Dispatcher {
    fn serve(&self, view: &RegistryView, misses: Vec<Miss>, deadline: Instant) -> Vec<ServedCall> {
        // block building runs on a blocking thread of the node's runtime
        tokio::runtime::Handle::current().block_on(self.serve_calls(view, misses, deadline))
    }

    fn confirm_missed(
        &self,
        view: &RegistryView,
        missed: &[Missed],
        deadline: Instant,
    ) -> Result<(), String> {
        tokio::runtime::Handle::current().block_on(self.confirm(view, missed, deadline))
    }
}
