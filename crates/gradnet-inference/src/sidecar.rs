//! A block's inference sidecar: for every inference call its
//! transactions make, the nodes sampled for it and their signed answers
//! (PIPE). The header commits to it (`sidecar_root`); validators check it
//! before voting and execution answers calls from it.
//!
//! A node signs `gradnet-inference-result-v1` ‖ chain id ‖ request hash ‖
//! keccak(outcome) with its registered ed25519 key. The request hash is
//! keccak(calldata of the precompile call); the outcome is `0x00` ‖ the
//! ABI-encoded return data, or `0x01` ‖ a UTF-8 reason the call failed
//! (an unknown model, inputs that do not fit it).

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::{RlpDecodable, RlpEncodable};

use gradnet_types::InferenceMode;

use crate::mode::Mode;
use crate::registry::NodeRecord;

const DOMAIN: &[u8] = b"gradnet-inference-result-v1";
/// Nodes a QUORUM call asks unless it says otherwise.
pub const DEFAULT_QUORUM: usize = 3;
/// Stake taken from a node whose result disagrees with the majority (10%).
pub const SLASH_WRONG_BPS: u64 = 1_000;
/// Stake taken from a sampled node that did not answer in time (1%).
pub const SLASH_MISSED_BPS: u64 = 100;

/// One node's signed answer to one call.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct NodeResult {
    /// The node.
    pub node: Address,
    /// Its outcome.
    pub outcome: Bytes,
    /// Its signature over the outcome.
    pub signature: Bytes,
}

/// One node's answer inside a served call: its outcome by index.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct IndexedResult {
    /// The node.
    pub node: Address,
    /// Index of its outcome in the call's outcomes.
    pub outcome: u32,
    /// Its signature over the outcome.
    pub signature: Bytes,
}

/// What happened to one call. Outcomes are kept once each (nodes that
/// agree share one), so a QUORUM call costs one output in the block.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct ServedCall {
    /// The call.
    pub request_hash: B256,
    /// The sampled nodes asked, in sampling order.
    pub asked: Vec<Address>,
    /// The distinct outcomes, in order of first answer.
    pub outcomes: Vec<Bytes>,
    /// ResultSource that arrived in time.
    pub answers: Vec<IndexedResult>,
    /// Non-empty: the call could not be served (why); it reverts.
    pub unserved: Bytes,
}

impl ServedCall {
    /// A call nobody answered yet.
    pub fn new(request_hash: B256) -> Self {
        ServedCall {
            request_hash,
            asked: vec![],
            outcomes: vec![],
            answers: vec![],
            unserved: Bytes::new(),
        }
    }

    /// The answers with their outcomes (an index out of range: empty).
    pub fn results(&self) -> Vec<NodeResult> {
        self.answers
            .iter()
            .map(|a| NodeResult {
                node: a.node,
                outcome: self
                    .outcomes
                    .get(a.outcome as usize)
                    .cloned()
                    .unwrap_or_default(),
                signature: a.signature.clone(),
            })
            .collect()
    }

    /// Adds a node's answer (its outcome kept once).
    pub fn push(&mut self, r: NodeResult) {
        let i = match self.outcomes.iter().position(|o| *o == r.outcome) {
            Some(i) => i,
            None => {
                self.outcomes.push(r.outcome);
                self.outcomes.len() - 1
            }
        };
        self.answers.push(IndexedResult {
            node: r.node,
            outcome: i as u32,
            signature: r.signature,
        });
    }

    /// Whether `node` answered.
    pub fn answered(&self, node: &Address) -> bool {
        self.answers.iter().any(|a| a.node == *node)
    }
}

/// The signed node results a block's inference calls used.
#[derive(Debug, Clone, Default, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Sidecar {
    /// The calls, in the order execution used them.
    pub calls: Vec<ServedCall>,
}

impl Sidecar {
    /// Its hash, committed in the header.
    pub fn root(&self) -> B256 {
        if self.calls.is_empty() {
            return B256::ZERO;
        }
        keccak256(alloy_rlp::encode(self))
    }
}

/// Both results of a disagreement, stored with a slashing.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Evidence {
    /// The chain.
    pub chain_id: u64,
    /// The call.
    pub request_hash: B256,
    /// An agreeing node's result.
    pub majority: NodeResult,
    /// The dissenting node's result.
    pub dissent: NodeResult,
}

/// A call's request hash: keccak of its calldata.
pub fn request_hash(calldata: &[u8]) -> B256 {
    keccak256(calldata)
}

/// What a node signs for one call: domain, chain id, request hash, keccak of the outcome.
pub fn signing_bytes(chain_id: u64, request_hash: &B256, outcome: &[u8]) -> Vec<u8> {
    let mut m = DOMAIN.to_vec();
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(request_hash.as_slice());
    m.extend_from_slice(keccak256(outcome).as_slice());
    m
}

/// The outcome of a call that returned `abi`.
pub fn ok_outcome(abi: &[u8]) -> Bytes {
    [&[0u8][..], abi].concat().into()
}

/// The outcome of a call that failed with `reason`.
pub fn err_outcome(reason: &str) -> Bytes {
    [&[1u8][..], reason.as_bytes()].concat().into()
}

/// An outcome as the call's result: its return data, or its revert reason.
pub fn outcome_result(outcome: &[u8]) -> Result<Vec<u8>, String> {
    match outcome.split_first() {
        Some((0, abi)) => Ok(abi.to_vec()),
        Some((1, why)) => Err(String::from_utf8_lossy(why).into_owned()),
        _ => Err("inference: malformed outcome".into()),
    }
}

/// Whether `signature` is `key`'s ed25519 signature of `message`.
pub fn verify_signature(key: &B256, message: &[u8], signature: &[u8]) -> bool {
    let Ok(vk) = ed25519_consensus::VerificationKey::try_from(key.0) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    vk.verify(&ed25519_consensus::Signature::from(sig), message)
        .is_ok()
}

/// The registry as of the parent block: who may serve calls in this one.
#[derive(Debug, Clone, Default)]
pub struct RegistryView {
    /// The chain.
    pub chain_id: u64,
    /// The parent block (sampling is seeded with it).
    pub parent_hash: B256,
    /// The number of the block being built.
    pub block: u64,
    /// The registered nodes.
    pub nodes: Vec<NodeRecord>,
    /// Signing keys of the enclaves active in the TEE registry: the only
    /// nodes that serve TEE calls.
    pub tee_keys: Vec<B256>,
}

impl RegistryView {
    /// Eligible nodes for a call in the order they are asked: weighted
    /// sampling by stake without replacement, seeded by the parent hash
    /// and the request, so every validator derives the same order.
    pub fn ranked(
        &self,
        request_hash: &B256,
        mode: InferenceMode,
        model: &str,
    ) -> Vec<&NodeRecord> {
        let mut pool: Vec<&NodeRecord> = self
            .nodes
            .iter()
            .filter(|n| n.eligible(mode, model, self.block))
            .filter(|n| mode != InferenceMode::Tee || self.tee_keys.contains(&n.signing_key))
            // QUORUM compares bytes: only nodes whose results are the same
            // bits on any CPU take part
            .filter(|n| mode != InferenceMode::Quorum || n.deterministic())
            .collect();
        let seed = keccak256([self.parent_hash.as_slice(), request_hash.as_slice()].concat());
        let mut out = Vec::with_capacity(pool.len());
        let mut i = 0u64;
        while !pool.is_empty() {
            let total: U256 = pool.iter().map(|n| n.stake).sum();
            let draw =
                U256::from_be_bytes(keccak256([seed.as_slice(), &i.to_be_bytes()].concat()).0)
                    % total;
            let mut acc = U256::ZERO;
            let pick = pool
                .iter()
                .position(|n| {
                    acc += n.stake;
                    draw < acc
                })
                .expect("draw below the total");
            out.push(pool.remove(pick));
            i += 1;
        }
        out
    }

    /// The node of operator `a`.
    pub fn node(&self, a: &Address) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.operator == *a)
    }
}

/// What a served call decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `need` or more identical outcomes: the call gets `outcome`; the
    /// first `quorum` agreeing nodes are paid.
    Agreed {
        /// The agreed outcome.
        outcome: Bytes,
        /// The nodes that gave it.
        agreeing: Vec<Address>,
        /// One of their signed results.
        majority: NodeResult,
        /// Nodes that gave another outcome.
        dissenting: Vec<NodeResult>,
        /// Nodes asked that did not answer.
        missed: Vec<Address>,
    },
    /// No majority: the call reverts with this reason.
    Unserved(String),
}

/// Identical outcomes a call needs: a majority of its quorum.
pub fn needed(quorum: usize) -> usize {
    quorum / 2 + 1
}

/// The decision a served call's results make.
pub fn decide(call: &ServedCall, quorum: usize) -> Decision {
    let results = call.results();
    let mut best: Option<(&Bytes, usize)> = None;
    for r in &results {
        let n = results.iter().filter(|x| x.outcome == r.outcome).count();
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((&r.outcome, n));
        }
    }
    match best {
        Some((outcome, n)) if n >= needed(quorum) => {
            let majority = results
                .iter()
                .find(|r| &r.outcome == outcome)
                .expect("present")
                .clone();
            Decision::Agreed {
                outcome: outcome.clone(),
                agreeing: results
                    .iter()
                    .filter(|r| &r.outcome == outcome)
                    .map(|r| r.node)
                    .collect(),
                dissenting: results
                    .iter()
                    .filter(|r| &r.outcome != outcome)
                    .cloned()
                    .collect(),
                missed: call
                    .asked
                    .iter()
                    .filter(|a| !call.answered(a))
                    .copied()
                    .collect(),
                majority,
            }
        }
        _ => Decision::Unserved(if call.unserved.is_empty() {
            "inference: the sampled nodes did not agree".into()
        } else {
            String::from_utf8_lossy(&call.unserved).into_owned()
        }),
    }
}

/// Checks a served call against the registry view and the call it
/// answers: the nodes asked are the head of the sampling order, every
/// result is signed by an asked node (once), and an unserved call has no
/// majority. Errors make the whole block invalid.
pub fn check(
    call: &ServedCall,
    view: &RegistryView,
    mode: Mode,
    model: &str,
) -> Result<(), String> {
    let quorum = mode.quorum;
    let ranked = view.ranked(&call.request_hash, mode.kind, model);
    if call.asked.len() > ranked.len()
        || call
            .asked
            .iter()
            .zip(&ranked)
            .any(|(a, n)| *a != n.operator)
    {
        return Err(format!(
            "sidecar: call {} asked nodes out of sampling order",
            call.request_hash
        ));
    }
    if call.asked.len() > max_asked(quorum) {
        return Err(format!(
            "sidecar: call {} asked more than {} nodes",
            call.request_hash,
            max_asked(quorum)
        ));
    }
    // one encoding per sidecar: distinct outcomes, each answered
    let canonical = call
        .answers
        .iter()
        .all(|a| (a.outcome as usize) < call.outcomes.len())
        && (0..call.outcomes.len()).all(|i| {
            call.answers.iter().any(|a| a.outcome as usize == i)
                && !call.outcomes[..i].contains(&call.outcomes[i])
        });
    if !canonical {
        return Err(format!(
            "sidecar: call {} lists its outcomes other than once each",
            call.request_hash
        ));
    }
    let results = call.results();
    let msg = |outcome: &[u8]| signing_bytes(view.chain_id, &call.request_hash, outcome);
    for (i, r) in results.iter().enumerate() {
        if !call.asked.contains(&r.node) || results[..i].iter().any(|x| x.node == r.node) {
            return Err(format!(
                "sidecar: call {} has a result from {} that was not asked (or twice)",
                call.request_hash, r.node
            ));
        }
        let n = view.node(&r.node).expect("asked nodes are registered");
        if !verify_signature(&n.signing_key, &msg(&r.outcome), &r.signature) {
            return Err(format!(
                "sidecar: call {}: bad signature from {}",
                call.request_hash, r.node
            ));
        }
    }
    match decide(call, quorum) {
        Decision::Agreed { .. } if !call.unserved.is_empty() => Err(format!(
            "sidecar: call {} is marked unserved but its results agree",
            call.request_hash
        )),
        Decision::Unserved(_) if call.unserved.is_empty() => Err(format!(
            "sidecar: call {} has no agreeing results and no reason",
            call.request_hash
        )),
        _ => Ok(()),
    }
}

/// Nodes asked for one call at most: the quorum, then as many again to
/// replace nodes that failed.
pub fn max_asked(quorum: usize) -> usize {
    2 * quorum
}
