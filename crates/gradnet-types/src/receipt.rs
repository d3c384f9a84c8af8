//! Receipts: a node's signed statement of which model it ran on which input and
//! what came out. Anyone can check one offline with the node's public key.
//!
//! The signed message is `gradnet-receipt-v1\n` followed by the compact JSON of
//! [`ReceiptBody`] with its fields in declaration order.

use serde::{Deserialize, Serialize};

use crate::cid::ContentId;
use crate::keys::{verify_hex, KeyError, NodeKey};
use crate::mode::InferenceMode;

pub const RECEIPT_VERSION: u32 = 1;
const DOMAIN: &[u8] = b"gradnet-receipt-v1\n";

/// The execution profile of engines whose results are the same bits on any
/// CPU, thread count and batch size: a node that declares it can be compared
/// bit for bit with any other (QUORUM samples only such nodes). It changes
/// whenever any result could change.
pub const DETERMINISTIC_PROFILE: &str = "det-1";
/// The profile of engines whose last bits depend on the CPU (onnxruntime,
/// candle): right within tolerance, but not comparable bit for bit.
pub const NATIVE_PROFILE: &str = "native";

/// The runtime that produced a result; part of a result's identity, since two
/// engines may differ in the last bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeId {
    pub name: String,
    pub version: String,
    /// [`DETERMINISTIC_PROFILE`] or [`NATIVE_PROFILE`] (empty in receipts
    /// made before profiles existed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
}

impl RuntimeId {
    /// Whether results of this runtime compare bit for bit across nodes.
    pub fn deterministic(&self) -> bool {
        self.profile == DETERMINISTIC_PROFILE
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptBody {
    pub version: u32,
    /// What was run: `onnx` for tensor inference.
    pub kind: String,
    pub request_hash: ContentId,
    pub model: ContentId,
    pub output_hash: ContentId,
    pub mode: InferenceMode,
    pub runtime: RuntimeId,
    /// Hex ed25519 public key of the signing node.
    pub node: String,
    pub timestamp_ms: u64,
    /// What the answer was charged, on a node that charges (absent on
    /// free answers, so older receipts sign the same bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<ReceiptCharge>,
}

/// A paid answer's charge, as its receipt signs it (wei as decimal strings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCharge {
    /// Who paid.
    pub payer: String,
    /// Who is paid: the node's operator.
    pub payee: String,
    /// This answer's price.
    pub amount: String,
    /// Everything the node has charged the payer so far, this included.
    pub total: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(flatten)]
    pub body: ReceiptBody,
    /// Hex ed25519 signature over the body.
    pub signature: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error("unsupported receipt version {0} (this build knows version {RECEIPT_VERSION})")]
    Version(u32),
    #[error("receipt signature: {0}")]
    Signature(#[from] KeyError),
    #[error("receipt was signed by {got}, expected {want}")]
    WrongNode { got: String, want: String },
    #[error("output hash mismatch: receipt says {receipt}, outputs hash to {actual}")]
    OutputHash {
        receipt: ContentId,
        actual: ContentId,
    },
}

impl ReceiptBody {
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut msg = DOMAIN.to_vec();
        msg.extend(serde_json::to_vec(self).expect("receipt body serializes"));
        msg
    }

    pub fn sign(self, key: &NodeKey) -> Receipt {
        let signature = key.sign_hex(&self.signing_bytes());
        Receipt {
            body: self,
            signature,
        }
    }
}

impl Receipt {
    /// Checks the version and the signature against the key the receipt names.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        if self.body.version != RECEIPT_VERSION {
            return Err(ReceiptError::Version(self.body.version));
        }
        verify_hex(&self.body.node, &self.body.signing_bytes(), &self.signature)?;
        Ok(())
    }

    /// As [`Receipt::verify`], and the signer must be `node`.
    pub fn verify_from(&self, node: &str) -> Result<(), ReceiptError> {
        if !self.body.node.eq_ignore_ascii_case(node) {
            return Err(ReceiptError::WrongNode {
                got: self.body.node.clone(),
                want: node.to_string(),
            });
        }
        self.verify()
    }

    /// Checks that `actual` (the hash of outputs in hand) is what was signed.
    pub fn check_output(&self, actual: ContentId) -> Result<(), ReceiptError> {
        if actual != self.body.output_hash {
            return Err(ReceiptError::OutputHash {
                receipt: self.body.output_hash,
                actual,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &NodeKey) -> ReceiptBody {
        ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "onnx".into(),
            request_hash: ContentId::of(b"req"),
            model: ContentId::of(b"model"),
            output_hash: ContentId::of(b"out"),
            mode: InferenceMode::Vanilla,
            runtime: RuntimeId {
                name: "gradnet-onnx".into(),
                version: "0.1.0".into(),
                profile: DETERMINISTIC_PROFILE.into(),
            },
            node: key.public_hex(),
            timestamp_ms: 1_700_000_000_000,
            charge: None,
        }
    }

    /// A receipt signed before the profile field existed still verifies.
    #[test]
    fn receipts_without_a_profile_still_verify() {
        let key = NodeKey::generate();
        let mut b = body(&key);
        b.runtime.profile = String::new();
        let r = b.sign(&key);
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("profile"));
        let back: Receipt = serde_json::from_str(&json).unwrap();
        back.verify().unwrap();
        let mut t = r.clone();
        t.body.runtime.profile = DETERMINISTIC_PROFILE.into();
        assert!(t.verify().is_err(), "the profile is signed");
    }

    #[test]
    fn signed_receipts_verify_and_tampering_is_caught() {
        let key = NodeKey::generate();
        let r = body(&key).sign(&key);
        r.verify().unwrap();
        r.verify_from(&key.public_hex()).unwrap();
        let json = serde_json::to_string(&r).unwrap();
        let back: Receipt = serde_json::from_str(&json).unwrap();
        back.verify().unwrap();

        let mut t = r.clone();
        t.body.output_hash = ContentId::of(b"other");
        assert!(matches!(
            t.verify(),
            Err(ReceiptError::Signature(KeyError::BadSignature))
        ));
        let mut t = r.clone();
        t.body.timestamp_ms += 1;
        assert!(t.verify().is_err());
        let other = NodeKey::generate();
        assert!(matches!(
            r.verify_from(&other.public_hex()),
            Err(ReceiptError::WrongNode { .. })
        ));
        let mut t = r.clone();
        t.body.node = other.public_hex();
        assert!(t.verify().is_err());
        assert!(r.check_output(ContentId::of(b"out")).is_ok());
        assert!(matches!(
            r.check_output(ContentId::of(b"x")),
            Err(ReceiptError::OutputHash { .. })
        ));
    }
}
