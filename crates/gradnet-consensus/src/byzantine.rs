//! A validator that attacks its network, for tests only (the hidden
//! `--byzantine-validator` flag): when it proposes, it follows a plan of
//! strategies, one per proposal it can apply it to, round and round; and
//! it votes for every proposal without checking it. Honest validators
//! must refuse each attack (see `faults`) and the chain must go on.

use std::sync::atomic::{AtomicUsize, Ordering};

use gradnet_inference::sidecar::ServedCall;
use prometheus::{IntCounterVec, Opts, Registry};

/// One way to attack as a proposer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Leave an honest node's answer out of the sidecar (it is then
    /// slashed for missing the call).
    DropAnswer,
    /// Put in the answer of a node that was not sampled for the call.
    Unsampled,
    /// Corrupt a node's signature.
    ForgeSignature,
    /// Reuse a node's signature from another call.
    ReplaySignature,
    /// Mark a call the nodes agreed on as unserved (it reverts).
    WrongDecision,
    /// Repeat the parent block's sidecar calls in this one.
    ReplaySidecar,
    /// A header whose state and receipts do not match the execution.
    BadResults,
    /// Two different blocks for one round.
    Equivocate,
    /// Propose, but send no proposal parts.
    Withhold,
    /// Send proposal parts with a corrupted byte.
    Garble,
}

impl Strategy {
    /// Every strategy, in a plan's default order.
    pub const ALL: [Strategy; 10] = [
        Strategy::DropAnswer,
        Strategy::Unsampled,
        Strategy::ForgeSignature,
        Strategy::ReplaySignature,
        Strategy::WrongDecision,
        Strategy::ReplaySidecar,
        Strategy::BadResults,
        Strategy::Equivocate,
        Strategy::Withhold,
        Strategy::Garble,
    ];

    /// Its name on the command line and in metrics.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::DropAnswer => "drop-answer",
            Strategy::Unsampled => "unsampled",
            Strategy::ForgeSignature => "forge-signature",
            Strategy::ReplaySignature => "replay-signature",
            Strategy::WrongDecision => "wrong-decision",
            Strategy::ReplaySidecar => "replay-sidecar",
            Strategy::BadResults => "bad-results",
            Strategy::Equivocate => "equivocate",
            Strategy::Withhold => "withhold",
            Strategy::Garble => "garble",
        }
    }

    /// The strategy named `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.name() == s)
            .ok_or_else(|| {
                let all: Vec<_> = Self::ALL.iter().map(|x| x.name()).collect();
                format!("unknown strategy `{s}`; one of {}", all.join(", "))
            })
    }

    /// Whether it alters the served calls (applied while the sidecar is
    /// gathered) rather than the block or its stream.
    pub fn in_sidecar(self) -> bool {
        matches!(
            self,
            Strategy::DropAnswer
                | Strategy::Unsampled
                | Strategy::ForgeSignature
                | Strategy::ReplaySignature
                | Strategy::WrongDecision
        )
    }
}

/// A byzantine validator's plan and what it has done.
pub struct Byzantine {
    plan: Vec<Strategy>,
    next: AtomicUsize,
    applied: IntCounterVec,
    /// Tampered calls waiting to replace the honest ones in the block the
    /// proposer builds (its own checks would refuse to build on them).
    tampered: std::sync::Mutex<Vec<ServedCall>>,
}

impl Byzantine {
    /// Follows `plan` (all strategies when empty).
    pub fn new(plan: Vec<Strategy>) -> Self {
        Byzantine {
            plan: if plan.is_empty() {
                Strategy::ALL.to_vec()
            } else {
                plan
            },
            next: AtomicUsize::new(0),
            applied: IntCounterVec::new(
                Opts::new(
                    "byzantine_applied_total",
                    "Attacks this (test-only byzantine) validator made, by strategy",
                ),
                &["strategy"],
            )
            .expect("metric"),
            tampered: Default::default(),
        }
    }

    /// A tampered call for the block being built to carry instead.
    pub fn stash(&self, call: ServedCall) {
        self.tampered.lock().expect("unpoisoned").push(call);
    }

    /// The tampered calls stashed since the last block.
    pub fn take_stashed(&self) -> Vec<ServedCall> {
        std::mem::take(&mut *self.tampered.lock().expect("unpoisoned"))
    }

    /// Adds its counter to `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.applied.clone()))
    }

    /// The strategy for the next proposal.
    pub fn current(&self) -> Strategy {
        self.plan[self.next.load(Ordering::Relaxed) % self.plan.len()]
    }

    /// `s` was applied at `height`: counted, and the plan moves on.
    pub fn applied(&self, s: Strategy, height: u64) {
        tracing::warn!(height, strategy = s.name(), "byzantine: attacking");
        self.applied.with_label_values(&[s.name()]).inc();
        self.next.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cycle_and_names_round_trip() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.name()), Ok(s));
        }
        assert!(Strategy::parse("nice").unwrap_err().contains("drop-answer"));
        let b = Byzantine::new(vec![Strategy::Garble, Strategy::Withhold]);
        assert_eq!(b.current(), Strategy::Garble);
        b.applied(Strategy::Garble, 1);
        assert_eq!(b.current(), Strategy::Withhold);
        b.applied(Strategy::Withhold, 2);
        assert_eq!(b.current(), Strategy::Garble);
    }
}
