//! A byzantine proposer's PIPE leg (tests only, `--byzantine-validator`):
//! it serves its block's calls as an honest one does, then alters what it
//! puts in the sidecar by the plan's current strategy, so that the block
//! it builds on them is consistent with the lie. Honest validators must
//! see through each one (`gradnet_consensus::faults`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::{Address, Bytes, B256};
use gradnet_consensus::byzantine::{Byzantine, Strategy};
use gradnet_inference::precompile::Miss;
use gradnet_inference::sidecar::{self, Decision, NodeResult, RegistryView, ServedCall};
use gradnet_ledger::chain::MissServer;
use gradnet_ledger::store::Missed;

use super::Dispatcher;

/// An honest dispatcher whose answers are then tampered with.
pub struct Attacker {
    inner: Dispatcher,
    plan: Arc<Byzantine>,
    /// A signature each node gave for some call (to replay on another).
    seen: parking_lot::Mutex<HashMap<Address, (B256, Bytes)>>,
}

impl Attacker {
    /// Attacks by `plan` on top of `inner`.
    pub fn new(inner: Dispatcher, plan: Arc<Byzantine>) -> Self {
        Attacker {
            inner,
            plan,
            seen: Default::default(),
        }
    }

    /// Applies `s` to one of `calls`; false when none lends itself to it.
    async fn attack(
        &self,
        s: Strategy,
        view: &RegistryView,
        misses: &[Miss],
        calls: &mut [ServedCall],
        deadline: Instant,
    ) -> bool {
        let miss = |c: &ServedCall| {
            misses
                .iter()
                .find(|m| m.request_hash == c.request_hash)
                .cloned()
        };
        let agreed = |c: &ServedCall, q: usize| {
            c.unserved.is_empty() && matches!(sidecar::decide(c, q), Decision::Agreed { .. })
        };
        for c in calls.iter_mut() {
            let Some(m) = miss(c) else { continue };
            let q = m.mode.quorum;
            match s {
                Strategy::DropAnswer if agreed(c, q) && c.answers.len() > sidecar::needed(q) => {
                    // the last answer out: that node looks as if it missed
                    let mut kept = c.results();
                    kept.pop();
                    *c = rebuilt(c, c.asked.clone(), kept);
                    return true;
                }
                Strategy::Unsampled if agreed(c, q) => {
                    let ranked = view.ranked(&c.request_hash, m.mode.kind, &m.model);
                    let Some(other) = ranked.get(c.asked.len()).map(|n| n.operator) else {
                        continue;
                    };
                    let Ok(mut r) = self
                        .inner
                        .ask(view, other, vec![m.calldata.clone()], deadline)
                        .await
                    else {
                        continue;
                    };
                    let Some(r) = r.pop().flatten() else { continue };
                    // the first sampled node swapped for one that was not
                    let first = c.asked[0];
                    let mut asked = c.asked.clone();
                    asked[0] = other;
                    let mut results: Vec<NodeResult> = c
                        .results()
                        .into_iter()
                        .filter(|x| x.node != first)
                        .collect();
                    results.insert(0, r);
                    *c = rebuilt(c, asked, results);
                    return true;
                }
                Strategy::ForgeSignature if !c.answers.is_empty() => {
                    let mut sig = c.answers[0].signature.to_vec();
                    sig[0] ^= 0x01;
                    c.answers[0].signature = sig.into();
                    return true;
                }
                Strategy::ReplaySignature if !c.answers.is_empty() => {
                    let seen = self.seen.lock();
                    let Some((_, sig)) = seen
                        .get(&c.answers[0].node)
                        .filter(|(rh, _)| *rh != c.request_hash)
                    else {
                        continue;
                    };
                    c.answers[0].signature = sig.clone();
                    return true;
                }
                Strategy::WrongDecision if agreed(c, q) => {
                    c.unserved = Bytes::from_static(b"inference: the sampled nodes did not agree");
                    return true;
                }
                _ => {}
            }
        }
        false
    }
}

/// A served call with these nodes asked and these results.
fn rebuilt(c: &ServedCall, asked: Vec<Address>, results: Vec<NodeResult>) -> ServedCall {
    let mut out = ServedCall::new(c.request_hash);
    out.asked = asked;
    out.unserved = c.unserved.clone();
    for r in results {
        out.push(r);
    }
    out
}

impl MissServer for Attacker {
    fn serve(&self, view: &RegistryView, misses: Vec<Miss>, deadline: Instant) -> Vec<ServedCall> {
        let rt = tokio::runtime::Handle::current();
        let mut calls = rt.block_on(self.inner.serve_calls(view, misses.clone(), deadline));
        let s = self.plan.current();
        if s == Strategy::DropAnswer {
            // consistent with the block built on it: only the missing
            // answer gives it away
            if rt.block_on(self.attack(s, view, &misses, &mut calls, deadline)) {
                self.plan.applied(s, view.block);
            }
        } else if s.in_sidecar() {
            // the block is built on the honest calls, then carries these
            let mut tampered = calls.clone();
            if rt.block_on(self.attack(s, view, &misses, &mut tampered, deadline)) {
                for (t, c) in tampered.into_iter().zip(&calls) {
                    if t != *c {
                        self.plan.stash(t);
                    }
                }
            }
        }
        let mut seen = self.seen.lock();
        for c in &calls {
            for a in &c.answers {
                seen.insert(a.node, (c.request_hash, a.signature.clone()));
            }
        }
        calls
    }

    fn confirm_missed(
        &self,
        view: &RegistryView,
        missed: &[Missed],
        deadline: Instant,
    ) -> Result<(), String> {
        self.inner.confirm_missed(view, missed, deadline)
    }
}
