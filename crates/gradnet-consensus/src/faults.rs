//! What a validator sees of faulty peers: every proposal it refuses,
//! counted by the check that failed (`gradnet_consensus_refused_total`),
//! and a proposer's equivocation (two signed streams for one height and
//! round) kept as evidence anyone can check with the proposer's key.

use std::path::PathBuf;

use alloy_primitives::B256;
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use serde::Serialize;

use super::context::{round_code, Height, Signature, ValidatorId};

/// The checks a proposal must pass, by the name metrics and logs use, with
/// a fragment of the reason each failure gives (most specific first).
const CHECKS: &[(&str, &str)] = &[
    (
        "sidecar-missed",
        "did not answer, but it answers this validator",
    ),
    ("sidecar-sampling", "out of sampling order"),
    ("sidecar-sampling", "asked more than"),
    ("sidecar-signer", "that was not asked"),
    ("sidecar-signature", "bad signature"),
    ("sidecar-encoding", "outcomes other than once"),
    ("sidecar-decision", "marked unserved but its results agree"),
    ("sidecar-decision", "no agreeing results and no reason"),
    ("sidecar-completeness", "the sidecar holds"),
    ("sidecar-completeness", "sidecar lists call"),
    ("sidecar-completeness", "sidecar has no result"),
    ("sidecar-order", "not in the order its calls are made"),
    ("proposer", "is not a validator"),
    ("coinbase", "is not the proposer's fee recipient"),
    ("timestamp", "timestamp"),
    ("parent", "does not extend block"),
    ("execution", "does not match its execution"),
    ("transactions", "transaction"),
];

/// The name of the check a refusal's reason shows failed.
pub fn check_of(why: &str) -> &'static str {
    CHECKS
        .iter()
        .find(|(_, fragment)| why.contains(fragment))
        .map_or("other", |(name, _)| name)
}

/// One signed stream of an equivocating proposer.
#[derive(Debug, Clone, Serialize)]
pub struct SignedStream {
    /// keccak of the encoded block it carries (what the signature covers).
    pub block: B256,
    /// Its proof-of-lock round (`round_code`).
    pub pol_round: u64,
    /// The proposer's signature over the stream (`parts::stream_body`).
    pub signature: String,
}

/// Two different blocks signed by one proposer for one height and round.
#[derive(Debug, Clone, Serialize)]
pub struct Equivocation {
    /// The height.
    pub height: u64,
    /// The round (`round_code`).
    pub round: u64,
    /// The proposer.
    pub proposer: String,
    /// The two streams.
    pub streams: [SignedStream; 2],
}

impl Equivocation {
    /// The evidence of `proposer` signing both streams at `height`/`round`.
    pub fn new(
        height: Height,
        round: malachitebft_app_channel::app::types::core::Round,
        proposer: ValidatorId,
        first: (B256, u64, &Signature),
        second: (B256, u64, &Signature),
    ) -> Self {
        let s = |(block, pol_round, sig): (B256, u64, &Signature)| SignedStream {
            block,
            pol_round,
            signature: hex::encode(sig.to_bytes()),
        };
        Equivocation {
            height: height.0,
            round: round_code(round),
            proposer: proposer.0.to_string(),
            streams: [s(first), s(second)],
        }
    }
}

/// Counters of refusals and equivocations, and where evidence is kept.
#[derive(Clone)]
pub struct Faults {
    refused: IntCounterVec,
    equivocations: IntCounter,
    /// Where equivocation evidence is written (one JSON file each).
    pub evidence_dir: Option<PathBuf>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            refused: IntCounterVec::new(
                Opts::new(
                    "consensus_refused_total",
                    "Proposals this validator refused to vote for, by the check that failed",
                ),
                &["check"],
            )
            .expect("metric"),
            equivocations: IntCounter::new(
                "consensus_equivocations_total",
                "Proposers seen signing two different blocks for one height and round",
            )
            .expect("metric"),
            evidence_dir: None,
        }
    }
}

impl Faults {
    /// Adds the counters to `registry`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.refused.clone()))?;
        registry.register(Box::new(self.equivocations.clone()))
    }

    /// A proposal refused for `why`: logged and counted by its check.
    pub fn refused(&self, height: u64, block: &B256, why: &str) {
        let check = check_of(why);
        tracing::warn!(height, %block, check, "refusing a proposed block: {why}");
        self.refused.with_label_values(&[check]).inc();
    }

    /// A proposal stream dropped before its block could be checked.
    pub fn dropped(&self, check: &str) {
        self.refused.with_label_values(&[check]).inc();
    }

    /// Times `check` refused a proposal.
    pub fn refusals(&self, check: &str) -> u64 {
        self.refused.with_label_values(&[check]).get()
    }

    /// An equivocation: counted, logged, and written as evidence.
    pub fn equivocation(&self, e: &Equivocation) {
        self.equivocations.inc();
        self.refused.with_label_values(&["equivocation"]).inc();
        let json = serde_json::to_string_pretty(e).expect("serializable");
        tracing::warn!(
            height = e.height,
            round = e.round,
            proposer = %e.proposer,
            check = "equivocation",
            "the proposer signed two different blocks for one round; refusing both: {json}"
        );
        if let Some(dir) = &self.evidence_dir {
            let path = dir.join(format!("equivocation-{}-{}.json", e.height, e.round));
            if let Err(err) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, json))
            {
                tracing::error!(
                    "cannot keep equivocation evidence in {}: {err}",
                    path.display()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_reason_names_its_check() {
        for (why, check) in [
            (
                "sidecar: call 0x01 asked nodes out of sampling order",
                "sidecar-sampling",
            ),
            (
                "sidecar: call 0x01: bad signature from 0x02",
                "sidecar-signature",
            ),
            (
                "sidecar: call 0x01 is marked unserved but its results agree",
                "sidecar-decision",
            ),
            (
                "the sidecar holds 2 inference results, the block's calls use 1",
                "sidecar-completeness",
            ),
            (
                "sidecar: call 0x01 says node 0x02 did not answer, but it answers this validator",
                "sidecar-missed",
            ),
            (
                "block 7 does not match its execution: header says state",
                "execution",
            ),
            ("transaction 0x03: nonce too low", "transactions"),
            (
                "coinbase 0x04 is not the proposer's fee recipient",
                "coinbase",
            ),
        ] {
            assert_eq!(check_of(why), check, "{why}");
        }
    }
}
