//! A dev-enclave signer: attestation documents in the Nitro format (the
//! same COSE_Sign1 / ES384 and certificate chain), signed by a local test
//! root instead of AWS's. Nothing trusts that root unless it is pinned
//! explicitly (a genesis that lists it); its documents say what they are
//! in their module id.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use ciborium::Value;
use p384::ecdsa::signature::Signer;
use p384::ecdsa::{DerSignature, Signature, SigningKey};
use sha2::{Digest, Sha384};
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::der::asn1::UtcTime;
use x509_cert::der::Encode;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::time::{Time, Validity};

use crate::{TeeError, DEV_MODULE_PREFIX};

/// The dev root's validity: 2025-01-01 to 2049-12-31 (fixed, so a seed
/// always gives the same root certificate).
const ROOT_FROM: u64 = 1_735_689_600;
const ROOT_TO: u64 = 2_524_521_600;
/// A leaf certificate's life, as AWS's (about three hours).
pub const LEAF_SECS: u64 = 3 * 3600;

fn build_err(e: impl std::fmt::Display) -> TeeError {
    TeeError::Build(e.to_string())
}

fn time(secs: u64) -> Result<Time, TeeError> {
    Ok(Time::UtcTime(
        UtcTime::from_unix_duration(Duration::from_secs(secs)).map_err(build_err)?,
    ))
}

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("writing to a Vec");
    out
}

/// The PCRs a dev enclave reports: fixed values standing for gradnet's
/// node image (PCR0 image, PCR1 kernel, PCR2 application).
pub fn dev_pcrs() -> BTreeMap<u64, Vec<u8>> {
    (0..3u64)
        .map(|i| {
            (
                i,
                Sha384::digest(format!("gradnet dev-enclave PCR{i}")).to_vec(),
            )
        })
        .collect()
}

/// A local stand-in for an enclave: a root certificate derived from a seed,
/// and documents in Nitro's format signed under it, for machines without
/// an enclave. Verifiers accept them only with this root pinned.
pub struct DevEnclave {
    root_key: SigningKey,
    root_name: Name,
    root_der: Vec<u8>,
}

impl DevEnclave {
    /// The dev root of `seed` (the same seed, the same root certificate).
    pub fn from_seed(seed: &[u8]) -> Result<Self, TeeError> {
        let scalar = Sha384::digest([b"gradnet-dev-enclave-root".as_slice(), seed].concat());
        let root_key = SigningKey::from_slice(&scalar).map_err(build_err)?;
        let root_name = Name::from_str("CN=gradnet dev-enclave root (not an enclave),O=gradnet")
            .map_err(build_err)?;
        let spki =
            SubjectPublicKeyInfoOwned::from_key(*root_key.verifying_key()).map_err(build_err)?;
        let cert = CertificateBuilder::new(
            Profile::Root,
            SerialNumber::from(1u32),
            Validity {
                not_before: time(ROOT_FROM)?,
                not_after: time(ROOT_TO)?,
            },
            root_name.clone(),
            spki,
            &root_key,
        )
        .map_err(build_err)?
        .build::<DerSignature>()
        .map_err(build_err)?;
        Ok(DevEnclave {
            root_der: cert.to_der().map_err(build_err)?,
            root_key,
            root_name,
        })
    }

    /// The root certificate (DER) a genesis lists to accept these documents.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// A document for an enclave with `pcrs` carrying `user_data`, made at
    /// `now` (Unix seconds), its leaf certificate valid for [`LEAF_SECS`].
    pub fn attest(
        &self,
        pcrs: &BTreeMap<u64, Vec<u8>>,
        user_data: &[u8],
        nonce: Option<&[u8]>,
        now: u64,
    ) -> Result<Vec<u8>, TeeError> {
        let leaf_key = SigningKey::random(&mut rand::rngs::OsRng);
        let spki =
            SubjectPublicKeyInfoOwned::from_key(*leaf_key.verifying_key()).map_err(build_err)?;
        let serial = SerialNumber::new(&now.to_be_bytes()).map_err(build_err)?;
        let leaf = CertificateBuilder::new(
            Profile::Leaf {
                issuer: self.root_name.clone(),
                enable_key_agreement: false,
                enable_key_encipherment: false,
            },
            serial,
            Validity {
                not_before: time(now.saturating_sub(60))?,
                not_after: time(now + LEAF_SECS)?,
            },
            Name::from_str("CN=gradnet dev-enclave,O=gradnet").map_err(build_err)?,
            spki,
            &self.root_key,
        )
        .map_err(build_err)?
        .build::<DerSignature>()
        .map_err(build_err)?;
        let opt = |b: Option<&[u8]>| b.map_or(Value::Null, |b| Value::Bytes(b.to_vec()));
        let payload = Value::Map(vec![
            (
                Value::Text("module_id".into()),
                Value::Text(format!("{DEV_MODULE_PREFIX}-{now}")),
            ),
            (Value::Text("digest".into()), Value::Text("SHA384".into())),
            (
                Value::Text("timestamp".into()),
                Value::Integer((now * 1000).into()),
            ),
            (
                Value::Text("pcrs".into()),
                Value::Map(
                    pcrs.iter()
                        .map(|(i, v)| (Value::Integer((*i).into()), Value::Bytes(v.clone())))
                        .collect(),
                ),
            ),
            (
                Value::Text("certificate".into()),
                Value::Bytes(leaf.to_der().map_err(build_err)?),
            ),
            (
                Value::Text("cabundle".into()),
                Value::Array(vec![Value::Bytes(self.root_der.clone())]),
            ),
            (Value::Text("public_key".into()), Value::Null),
            (
                Value::Text("user_data".into()),
                Value::Bytes(user_data.to_vec()),
            ),
            (Value::Text("nonce".into()), opt(nonce)),
        ]);
        let payload = cbor(&payload);
        let protected = cbor(&Value::Map(vec![(
            Value::Integer(1.into()),
            Value::Integer((-35).into()),
        )]));
        let sig: Signature = leaf_key.sign(&super::nitro::to_be_signed(&protected, &payload));
        Ok(cbor(&Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(vec![]),
            Value::Bytes(payload),
            Value::Bytes(sig.to_bytes().to_vec()),
        ])))
    }
}
