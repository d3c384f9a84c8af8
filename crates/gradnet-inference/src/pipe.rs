//! PIPE's wire protocol: a proposer sends the inference calls its block
//! building found without results to the nodes sampled for them (one
//! request per node carrying all its calls, to [`ANSWER_PATH`]); each node
//! answers every call with a signed outcome. The HTTP legs live in the
//! node library; this module is what both sides agree on.

use std::time::Duration;

use alloy_primitives::Bytes;
use serde::{Deserialize, Serialize};

/// The inference node's route that answers precompile calls.
pub const ANSWER_PATH: &str = "/v1/pipe/answer";
/// Time a proposer gives the nodes for one block's calls.
pub const BUDGET: Duration = Duration::from_secs(2);
/// Time a validator gives the nodes a proposal says missed their calls
/// to answer it instead, before it votes.
pub const CONFIRM_BUDGET: Duration = Duration::from_secs(1);
/// Blocks a call is tried in before it is given up (and reverts).
pub const MAX_TRIES: u32 = 3;

/// A proposer's request to one node: every call it was sampled for.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnswerRequest {
    /// The chain the outcomes are signed for.
    pub chain_id: u64,
    /// Calldata of each call to `0x…F4`.
    pub calls: Vec<Bytes>,
}

/// One call's outcome, signed by the node.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignedOutcome {
    /// The outcome ([`crate::sidecar::ok_outcome`] or [`crate::sidecar::err_outcome`]).
    pub outcome: Bytes,
    /// ed25519 over [`crate::sidecar::signing_bytes`].
    pub signature: Bytes,
}

/// A node's answer: one signed outcome per call, in order.
#[derive(Debug, Serialize, Deserialize)]
pub struct AnswerResponse {
    /// The outcomes.
    pub results: Vec<SignedOutcome>,
}
