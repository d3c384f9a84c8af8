//! Certificates: the proof that comes with a verified answer served off
//! chain (QUORUM, TEE). A QUORUM certificate holds the signed receipt of
//! every node that answered, the nodes asked in the order the registry's
//! stake-weighted sampling ranks them, and the block whose hash seeded the
//! sampling; a TEE certificate holds one receipt and the enclave's
//! registration. Anyone can check one offline ([`Certificate::check`]):
//! the signatures, that every answer is to the same request, and that a
//! majority of the quorum agrees on the output hash. Checking who may be
//! sampled needs the registry (the chain does it when a dissent in a
//! certificate is reported as a fault).

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::cid::ContentId;
use crate::mode::InferenceMode;
use crate::receipt::{Receipt, ReceiptError};

pub const CERTIFICATE_VERSION: u32 = 1;
/// Largest quorum a certificate may name.
pub const MAX_QUORUM: u32 = 15;

/// The block whose hash seeded the sampling of the nodes asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seed {
    pub block: u64,
    pub hash: B256,
}

/// One node's answer: its operator account (as the registry lists it) and
/// its signed receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub operator: Address,
    pub receipt: Receipt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub version: u32,
    /// `QUORUM` or `TEE`.
    pub mode: InferenceMode,
    pub chain_id: u64,
    pub seed: Seed,
    /// Nodes whose identical answers make the result (QUORUM; 1 for TEE).
    pub quorum: u32,
    /// The operators asked, in sampling order (those that did not answer
    /// included).
    pub asked: Vec<Address>,
    /// Every answer received, agreeing or not.
    pub answers: Vec<Answer>,
    /// TEE: the id of the enclave's registration in the TEE registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enclave: Option<B256>,
    /// ZKML: the proof, what it proves, and the key it is checked with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zk: Option<ZkProof>,
}

/// A ZKML answer's proof. The receipt's output hash signs the outcome
/// `0x02 ‖ proof ‖ output` (each output an i64, big-endian), as the chain's
/// ZKML calls do; the proof is checked with `verifying_key` against the
/// request's input quantized at the key's scale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZkProof {
    /// The model's verifying key, as registered (`zkVerifyingKey`), hex.
    pub verifying_key: String,
    /// The quantized input the proof is for.
    pub input: Vec<i64>,
    /// The circuit's output, integers at the key's 2^frac_bits scale.
    pub output: Vec<i64>,
    /// The Groth16 proof (128 bytes), hex.
    pub proof: String,
}

/// What a certificate shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The output hash the majority signed.
    pub output_hash: ContentId,
    /// Indexes (in `answers`) of the nodes that signed it.
    pub agreeing: Vec<usize>,
    /// Indexes of the nodes that signed another output: each is evidence
    /// against that node.
    pub dissenting: Vec<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error(
        "unsupported certificate version {0} (this build knows version {CERTIFICATE_VERSION})"
    )]
    Version(u32),
    #[error("a certificate is for QUORUM, TEE or ZKML answers, not {0}")]
    Mode(InferenceMode),
    #[error("quorum {0} is outside 1..={MAX_QUORUM}")]
    Quorum(u32),
    #[error("the certificate holds no answer")]
    Empty,
    #[error("{0} nodes asked; a quorum of {1} asks at most {2}")]
    TooManyAsked(usize, u32, usize),
    #[error("operator {0} is listed twice among the nodes asked")]
    AskedTwice(Address),
    #[error("answer {0} is from {1}, who was not asked")]
    NotAsked(usize, Address),
    #[error("answers {0} and {1} come from the same node")]
    Twice(usize, usize),
    #[error("answer {0}: {1}")]
    Receipt(usize, ReceiptError),
    #[error("answer {0} is to another {1} than answer 0")]
    Differs(usize, &'static str),
    #[error("answer {0} comes from runtime profile `{1}`: QUORUM compares only `det-1` results")]
    Profile(usize, String),
    #[error("no {need} of the {got} answers agree (quorum {quorum})")]
    NoMajority {
        need: usize,
        got: usize,
        quorum: u32,
    },
    #[error("a TEE certificate holds one answer and its enclave's registration")]
    Tee,
    #[error("a ZKML certificate holds one answer and its proof")]
    Zkml,
}

/// Identical answers a quorum of `k` needs: a majority.
pub fn needed(k: u32) -> usize {
    k as usize / 2 + 1
}

impl Certificate {
    /// Checks everything that needs no chain: version, mode and quorum,
    /// every receipt's signature, one answer per asked node, every answer
    /// to the same request of the same model, and (QUORUM) a majority of
    /// `det-1` answers on one output hash.
    pub fn check(&self) -> Result<Verdict, CertificateError> {
        if self.version != CERTIFICATE_VERSION {
            return Err(CertificateError::Version(self.version));
        }
        if !(1..=MAX_QUORUM).contains(&self.quorum) {
            return Err(CertificateError::Quorum(self.quorum));
        }
        let first = &self.answers.first().ok_or(CertificateError::Empty)?.receipt;
        let max = 2 * self.quorum as usize;
        if self.asked.len() > max {
            return Err(CertificateError::TooManyAsked(
                self.asked.len(),
                self.quorum,
                max,
            ));
        }
        for (i, a) in self.asked.iter().enumerate() {
            if self.asked[..i].contains(a) {
                return Err(CertificateError::AskedTwice(*a));
            }
        }
        for (i, a) in self.answers.iter().enumerate() {
            if !self.asked.contains(&a.operator) {
                return Err(CertificateError::NotAsked(i, a.operator));
            }
            if let Some(j) = self.answers[..i].iter().position(|b| {
                b.operator == a.operator
                    || b.receipt
                        .body
                        .node
                        .eq_ignore_ascii_case(&a.receipt.body.node)
            }) {
                return Err(CertificateError::Twice(j, i));
            }
            a.receipt
                .verify()
                .map_err(|e| CertificateError::Receipt(i, e))?;
            let b = &a.receipt.body;
            if b.request_hash != first.body.request_hash {
                return Err(CertificateError::Differs(i, "request"));
            }
            if b.model != first.body.model {
                return Err(CertificateError::Differs(i, "model"));
            }
            if b.kind != first.body.kind {
                return Err(CertificateError::Differs(i, "kind of run"));
            }
        }
        match self.mode {
            InferenceMode::Quorum => self.majority(),
            InferenceMode::Tee => match (self.answers.len(), self.enclave, self.quorum) {
                (1, Some(_), 1) => Ok(Verdict {
                    output_hash: first.body.output_hash,
                    agreeing: vec![0],
                    dissenting: vec![],
                }),
                _ => Err(CertificateError::Tee),
            },
            InferenceMode::Zkml => match (self.answers.len(), &self.zk, self.quorum) {
                (1, Some(_), 1) => Ok(Verdict {
                    output_hash: first.body.output_hash,
                    agreeing: vec![0],
                    dissenting: vec![],
                }),
                _ => Err(CertificateError::Zkml),
            },
            m => Err(CertificateError::Mode(m)),
        }
    }

    fn majority(&self) -> Result<Verdict, CertificateError> {
        for (i, a) in self.answers.iter().enumerate() {
            if !a.receipt.body.runtime.deterministic() {
                return Err(CertificateError::Profile(
                    i,
                    a.receipt.body.runtime.profile.clone(),
                ));
            }
        }
        let hashes: Vec<ContentId> = self
            .answers
            .iter()
            .map(|a| a.receipt.body.output_hash)
            .collect();
        // the most common hash; ties go to the first answered
        let (best, n) = hashes
            .iter()
            .map(|h| (*h, hashes.iter().filter(|x| *x == h).count()))
            .fold(None::<(ContentId, usize)>, |acc, (h, n)| match acc {
                Some((_, m)) if m >= n => acc,
                _ => Some((h, n)),
            })
            .expect("answers are not empty");
        let need = needed(self.quorum);
        if n < need {
            return Err(CertificateError::NoMajority {
                need,
                got: hashes.len(),
                quorum: self.quorum,
            });
        }
        let (agreeing, dissenting) = (0..hashes.len()).partition(|&i| hashes[i] == best);
        Ok(Verdict {
            output_hash: best,
            agreeing,
            dissenting,
        })
    }

    /// The request all answers are to.
    pub fn request_hash(&self) -> Option<ContentId> {
        self.answers.first().map(|a| a.receipt.body.request_hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{ReceiptBody, RuntimeId, RECEIPT_VERSION};
    use crate::NodeKey;

    fn receipt(key: &NodeKey, output: &[u8], profile: &str) -> Receipt {
        ReceiptBody {
            version: RECEIPT_VERSION,
            kind: "onnx".into(),
            request_hash: ContentId::of(b"request"),
            model: ContentId::of(b"model"),
            output_hash: ContentId::of(output),
            mode: InferenceMode::Vanilla,
            runtime: RuntimeId {
                name: "gradnet-onnx".into(),
                version: "1".into(),
                profile: profile.into(),
            },
            node: key.public_hex(),
            timestamp_ms: 1,
            charge: None,
        }
        .sign(key)
    }

    fn quorum(outputs: &[&[u8]]) -> Certificate {
        let answers: Vec<Answer> = outputs
            .iter()
            .enumerate()
            .map(|(i, o)| Answer {
                operator: Address::with_last_byte(i as u8 + 1),
                receipt: receipt(&NodeKey::generate(), o, "det-1"),
            })
            .collect();
        Certificate {
            version: CERTIFICATE_VERSION,
            mode: InferenceMode::Quorum,
            chain_id: 1,
            seed: Seed {
                block: 7,
                hash: B256::repeat_byte(7),
            },
            quorum: 3,
            asked: answers.iter().map(|a| a.operator).collect(),
            answers,
            enclave: None,
            zk: None,
        }
    }

    #[test]
    fn a_majority_verifies_and_names_the_dissent() {
        let c = quorum(&[b"a", b"b", b"a"]);
        let v = c.check().unwrap();
        assert_eq!(v.output_hash, ContentId::of(b"a"));
        assert_eq!((v.agreeing, v.dissenting), (vec![0, 2], vec![1]));
        // it survives JSON
        let back: Certificate = serde_json::from_slice(&serde_json::to_vec(&c).unwrap()).unwrap();
        assert_eq!(back.check().unwrap().dissenting, vec![1]);
    }

    #[test]
    fn forged_or_inconsistent_certificates_are_refused() {
        let no = |c: &Certificate, want: &str| {
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains(want), "{e} does not say {want}");
        };
        no(&quorum(&[b"a", b"b", b"c"]), "no 2 of the 3 answers agree");
        // a receipt's output hash changed after signing
        let mut c = quorum(&[b"a", b"a", b"b"]);
        c.answers[2].receipt.body.output_hash = ContentId::of(b"a");
        no(&c, "answer 2: receipt signature");
        // the same node twice
        let mut c = quorum(&[b"a", b"a", b"b"]);
        c.answers[1].receipt = c.answers[0].receipt.clone();
        no(&c, "same node");
        // an answer from a node that was not asked
        let mut c = quorum(&[b"a", b"a", b"b"]);
        c.asked.pop();
        no(&c, "was not asked");
        // a native result
        let mut c = quorum(&[b"a", b"a"]);
        let k = NodeKey::generate();
        c.answers[1].receipt = receipt(&k, b"a", "native");
        no(&c, "profile `native`");
        let mut c = quorum(&[b"a", b"a"]);
        c.quorum = 0;
        no(&c, "quorum 0");
        let mut c = quorum(&[b"a", b"a"]);
        c.asked.extend((10..20).map(Address::with_last_byte));
        no(&c, "asks at most 6");
        let mut c = quorum(&[b"a"]);
        c.mode = InferenceMode::Tee;
        c.quorum = 1;
        no(&c, "TEE certificate");
        c.enclave = Some(B256::repeat_byte(1));
        assert!(c.check().is_ok());
        c.mode = InferenceMode::Zkml;
        no(&c, "ZKML certificate holds one answer and its proof");
        c.zk = Some(ZkProof {
            verifying_key: "00".into(),
            input: vec![1],
            output: vec![2],
            proof: "00".into(),
        });
        assert!(
            c.check().is_ok(),
            "its structure; the proof is checked with gradnet-zk"
        );
    }
}
