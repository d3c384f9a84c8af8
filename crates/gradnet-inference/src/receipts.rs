//! Off-chain receipts settled on chain in batches. A node posts the Merkle
//! root of a batch of its signed receipts (`/v1/infer` results and LLM
//! chats; the batch file itself goes to the hub, named by its content id),
//! then sends the receipts in chunks in a compact form; the registry
//! rebuilds each receipt's signed body, checks its signature against the
//! node's registered key, and once all are in, that they hash to the root.
//! One bad signature reverts its chunk, so the batch never settles.
//!
//! Leaf: keccak(signing bytes of the body ‖ 64-byte signature). Tree: pairs
//! hashed as keccak(left ‖ right) level by level, an odd last node carried
//! up unchanged. A proof is the list of siblings from the leaf up.

use alloy_primitives::{keccak256, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use gradnet_types::cid::ContentId;
use gradnet_types::mode::InferenceMode;
use gradnet_types::receipt::{Receipt, ReceiptBody, RuntimeId};

/// A receipt without what the batch says once (the node's key), content
/// ids as their 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
#[rlp(trailing)]
pub struct CompactReceipt {
    /// The receipt format version.
    pub version: u32,
    /// `onnx` or `llm`.
    pub kind: String,
    /// The request's hash.
    pub request_hash: B256,
    /// The model's content id.
    pub model: B256,
    /// The output's hash.
    pub output_hash: B256,
    /// The inference mode's code.
    pub mode: u8,
    /// The engine.
    pub runtime_name: String,
    /// Its version.
    pub runtime_version: String,
    /// Its determinism profile.
    pub runtime_profile: String,
    /// When the node signed it.
    pub timestamp_ms: u64,
    /// The node's ed25519 signature.
    pub signature: alloy_primitives::Bytes,
    /// A paid answer's charge, as the JSON its receipt signed.
    pub charge: Option<String>,
}

impl CompactReceipt {
    /// The compact form of a node's receipt.
    pub fn of(r: &Receipt) -> Result<Self, String> {
        let b = &r.body;
        Ok(CompactReceipt {
            version: b.version,
            kind: b.kind.clone(),
            request_hash: B256::from(*b.request_hash.as_bytes()),
            model: B256::from(*b.model.as_bytes()),
            output_hash: B256::from(*b.output_hash.as_bytes()),
            mode: b.mode.abi_code(),
            runtime_name: b.runtime.name.clone(),
            runtime_version: b.runtime.version.clone(),
            runtime_profile: b.runtime.profile.clone(),
            timestamp_ms: b.timestamp_ms,
            signature: hex::decode(&r.signature)
                .map_err(|e| format!("receipt signature: {e}"))?
                .into(),
            charge: b
                .charge
                .as_ref()
                .map(|c| serde_json::to_string(c).expect("a charge serializes")),
        })
    }

    /// The receipt, signed by `node` (hex public key).
    pub fn receipt(&self, node: &str) -> Result<Receipt, String> {
        Ok(Receipt {
            body: ReceiptBody {
                version: self.version,
                kind: self.kind.clone(),
                request_hash: ContentId(self.request_hash.0),
                model: ContentId(self.model.0),
                output_hash: ContentId(self.output_hash.0),
                mode: InferenceMode::from_abi_code(self.mode)
                    .ok_or_else(|| format!("mode {} is unknown", self.mode))?,
                runtime: RuntimeId {
                    name: self.runtime_name.clone(),
                    version: self.runtime_version.clone(),
                    profile: self.runtime_profile.clone(),
                },
                node: node.to_string(),
                timestamp_ms: self.timestamp_ms,
                charge: self
                    .charge
                    .as_deref()
                    .map(serde_json::from_str)
                    .transpose()
                    .map_err(|e| format!("receipt charge: {e}"))?,
            },
            signature: hex::encode(&self.signature),
        })
    }
}

/// A receipt's leaf in its batch's tree.
pub fn leaf(r: &Receipt) -> Result<B256, String> {
    let sig = hex::decode(&r.signature).map_err(|e| format!("receipt signature: {e}"))?;
    Ok(keccak256([r.body.signing_bytes(), sig].concat()))
}

fn parent(l: &B256, r: &B256) -> B256 {
    keccak256([l.as_slice(), r.as_slice()].concat())
}

/// The level above: pairs hashed, an odd last node carried up.
fn next_level(level: &[B256]) -> Vec<B256> {
    level
        .chunks(2)
        .map(|p| {
            if p.len() == 2 {
                parent(&p[0], &p[1])
            } else {
                p[0]
            }
        })
        .collect()
}

/// The Merkle root of a batch's leaves.
pub fn root(leaves: &[B256]) -> B256 {
    if leaves.is_empty() {
        return B256::ZERO;
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// Siblings of leaf `i` from the bottom up (levels where it has none are
/// skipped).
pub fn proof(leaves: &[B256], mut i: usize) -> Vec<B256> {
    let mut out = vec![];
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let sib = i ^ 1;
        if sib < level.len() {
            out.push(level[sib]);
        }
        level = next_level(&level);
        i /= 2;
    }
    out
}

/// Whether `leaf` at `i` of a batch of `count` hashes to `root` by `proof`.
pub fn verify_proof(
    leaf: B256,
    mut i: usize,
    mut count: usize,
    proof: &[B256],
    root: B256,
) -> bool {
    let mut h = leaf;
    let mut p = proof.iter();
    while count > 1 {
        let sib = i ^ 1;
        if sib < count {
            let Some(s) = p.next() else { return false };
            h = if i.is_multiple_of(2) {
                parent(&h, s)
            } else {
                parent(s, &h)
            };
        }
        i /= 2;
        count = count.div_ceil(2);
    }
    p.next().is_none() && h == root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_against_the_root_and_nothing_else_does() {
        for n in [1usize, 2, 3, 5, 8, 13] {
            let leaves: Vec<B256> = (0..n as u8).map(|i| keccak256([i])).collect();
            let r = root(&leaves);
            for i in 0..n {
                let p = proof(&leaves, i);
                assert!(verify_proof(leaves[i], i, n, &p, r), "{n} {i}");
                assert!(!verify_proof(keccak256(b"x"), i, n, &p, r));
                if n > 1 {
                    assert!(!verify_proof(leaves[i], (i + 1) % n, n, &p, r));
                }
            }
        }
    }

    #[test]
    fn compact_receipts_rebuild_the_signed_receipt() {
        let key = gradnet_types::NodeKey::from_seed([7; 32]);
        let r = ReceiptBody {
            version: 1,
            kind: "llm".into(),
            request_hash: ContentId::of(b"q"),
            model: ContentId::of(b"m"),
            output_hash: ContentId::of(b"o"),
            mode: InferenceMode::Quorum,
            runtime: RuntimeId {
                name: "gradnet-llm".into(),
                version: "0.1.0".into(),
                profile: gradnet_types::DETERMINISTIC_PROFILE.into(),
            },
            node: key.public_hex(),
            timestamp_ms: 42,
            charge: None,
        }
        .sign(&key);
        let c = CompactReceipt::of(&r).unwrap();
        let back = c.receipt(&key.public_hex()).unwrap();
        assert_eq!(back, r);
        back.verify().unwrap();
        // a paid answer's receipt keeps its signed charge through the compact form
        let mut body = r.body.clone();
        body.charge = Some(gradnet_types::receipt::ReceiptCharge {
            payer: "0x00000000000000000000000000000000000000a1".into(),
            payee: "0x00000000000000000000000000000000000000ee".into(),
            amount: "1000".into(),
            total: "5000".into(),
        });
        let paid = body.sign(&key);
        let c = CompactReceipt::of(&paid).unwrap();
        let rlp = alloy_rlp::encode(&c);
        let decoded: CompactReceipt = alloy_rlp::Decodable::decode(&mut rlp.as_slice()).unwrap();
        let back = decoded.receipt(&key.public_hex()).unwrap();
        assert_eq!(back, paid);
        back.verify().unwrap();
        // and a free one's compact form is as before (no trailing field)
        let free = alloy_rlp::encode(CompactReceipt::of(&r).unwrap());
        let decoded: CompactReceipt = alloy_rlp::Decodable::decode(&mut free.as_slice()).unwrap();
        assert_eq!(decoded.charge, None);
    }
}
