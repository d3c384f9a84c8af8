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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TeeError {
    #[error("malformed attestation document: {0}")]
    Malformed(String),
    #[error("the document does not chain to a pinned root")]
    UntrustedRoot,
    #[error("certificate chain: {0}")]
    Chain(String),
    #[error("certificate {subject} expired at {until} (Unix seconds); checked at {now}")]
    Expired {
        subject: String,
        until: u64,
        now: u64,
    },
    #[error("certificate {subject} is valid from {from} (Unix seconds); checked at {now}")]
    NotYetValid {
        subject: String,
        from: u64,
        now: u64,
    },
    #[error("the document's signature does not verify with its certificate's key")]
    Signature,
    #[error("PCR{index} is {got}, expected {want}")]
    Pcr {
        index: u64,
        got: String,
        want: String,
    },
    #[error("the document's user data does not bind this node's signing key and TLS certificate")]
    NotBound,
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

    pub fn measurement(&self) -> Result<[u8; 32], TeeError> {
        measurement(&self.pcrs)
    }

    /// Signed by a dev-enclave root, not by an enclave.
    pub fn is_dev(&self) -> bool {
        self.module_id.starts_with(DEV_MODULE_PREFIX)
    }
}
