//! TEE attestation for TEE-mode inference.
//!
//! - [`nitro::verify`]: an AWS Nitro attestation document checked against
//!   pinned roots at an explicit time.
//! - [`Attestation::check_pcrs`] / [`Attestation::check_binding`]: the
//!   enclave image (PCRs) and the binding of the node's signing key and TLS
//!   certificate in the document's user data.
//! - [`dev::DevEnclave`]: documents in the same format signed by a local
//!   test root, for machines without an enclave; a verifier accepts them
//!   only when that root is pinned explicitly.

pub mod dev;
pub mod nitro;

use std::collections::BTreeMap;

pub use nitro::{aws_nitro_root, verify, Attestation};
use sha2::{Digest, Sha256};

/// What user data must hold: this tag, the node's ed25519 signing key, and
/// SHA-256 of its TLS certificate (DER).
pub const BINDING_TAG: &[u8] = b"gradnet-tee-v1";
/// Module id prefix of dev-enclave documents.
pub const DEV_MODULE_PREFIX: &str = "gradnet-dev-enclave";

/// Why a document is refused (or could not be built).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TeeError {
    /// Not a COSE_Sign1 attestation document, or a field is missing or of
    /// the wrong type.
    #[error("malformed attestation document: {0}")]
    Malformed(String),
    /// The certificate chain ends at a root nobody pinned.
    #[error("the document does not chain to a pinned root")]
    UntrustedRoot,
    /// A certificate in the chain is malformed or not signed by the next.
    #[error("certificate chain: {0}")]
    Chain(String),
    /// A certificate had expired at the time of the check.
    #[error("certificate {subject} expired at {until} (Unix seconds); checked at {now}")]
    Expired {
        /// The certificate's subject.
        subject: String,
        /// Its `notAfter`, Unix seconds.
        until: u64,
        /// The time of the check, Unix seconds.
        now: u64,
    },
    /// A certificate was not yet valid at the time of the check.
    #[error("certificate {subject} is valid from {from} (Unix seconds); checked at {now}")]
    NotYetValid {
        /// The certificate's subject.
        subject: String,
        /// Its `notBefore`, Unix seconds.
        from: u64,
        /// The time of the check, Unix seconds.
        now: u64,
    },
    /// The document's ES384 signature does not verify.
    #[error("the document's signature does not verify with its certificate's key")]
    Signature,
    /// A platform configuration register differs from the approved image's.
    #[error("PCR{index} is {got}, expected {want}")]
    Pcr {
        /// The register.
        index: u64,
        /// Its value in the document, hex.
        got: String,
        /// The approved value, hex.
        want: String,
    },
    /// The user data does not carry this node's binding ([`binding`]).
    #[error("the document's user data does not bind this node's signing key and TLS certificate")]
    NotBound,
    /// A dev-enclave document or certificate could not be built.
    #[error("building a document: {0}")]
    Build(String),
}

/// The user data a node's document must carry.
pub fn binding(signing_key: &[u8; 32], tls_cert: &[u8]) -> Vec<u8> {
    [BINDING_TAG, signing_key, &Sha256::digest(tls_cert)[..]].concat()
}

/// The enclave image's identity: SHA-256 of PCR0 ‖ PCR1 ‖ PCR2 (image,
/// kernel and boot, application), the hash the TEE registry approves.
pub fn measurement(pcrs: &BTreeMap<u64, Vec<u8>>) -> Result<[u8; 32], TeeError> {
    let mut h = Sha256::new();
    for i in 0..3 {
        h.update(
            pcrs.get(&i)
                .ok_or_else(|| TeeError::Malformed(format!("no PCR{i}")))?,
        );
    }
    Ok(h.finalize().into())
}

impl Attestation {
    /// Every expected PCR is present and equal.
    pub fn check_pcrs(&self, expected: &BTreeMap<u64, Vec<u8>>) -> Result<(), TeeError> {
        for (i, want) in expected {
            let got = self
                .pcrs
                .get(i)
                .map(hex::encode)
                .unwrap_or_else(|| "absent".into());
            if self.pcrs.get(i) != Some(want) {
                return Err(TeeError::Pcr {
                    index: *i,
                    got,
                    want: hex::encode(want),
                });
            }
        }
        Ok(())
    }

    /// The user data binds `signing_key` and the TLS certificate.
    pub fn check_binding(&self, signing_key: &[u8; 32], tls_cert: &[u8]) -> Result<(), TeeError> {
        if self.user_data.as_deref() == Some(&binding(signing_key, tls_cert)[..]) {
            Ok(())
        } else {
            Err(TeeError::NotBound)
        }
    }

    /// The enclave image's identity ([`measurement`] of its PCRs).
    pub fn measurement(&self) -> Result<[u8; 32], TeeError> {
        measurement(&self.pcrs)
    }

    /// Signed by a dev-enclave root, not by an enclave.
    pub fn is_dev(&self) -> bool {
        self.module_id.starts_with(DEV_MODULE_PREFIX)
    }
}
