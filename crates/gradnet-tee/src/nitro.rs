//! AWS Nitro attestation documents: a COSE_Sign1 (ES384) whose payload is
//! a CBOR map (module id, digest, timestamp, PCRs, the signing certificate,
//! the CA bundle, optional public key, user data and nonce).
//!
//! [`verify`] checks, at an explicit time (never the clock), that the
//! bundle starts at one of the pinned roots, that each certificate is
//! signed by the one before it (ECDSA P-384 / SHA-384) and valid at that
//! time, and that the leaf certificate's key signed the document.

use std::collections::BTreeMap;

use ciborium::Value;
use p384::ecdsa::signature::Verifier;
use p384::ecdsa::{Signature, VerifyingKey};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

use crate::TeeError;

/// COSE algorithm id of ES384.
const ES384: i64 = -35;
/// ecdsa-with-SHA384.
const ECDSA_SHA384: &str = "1.2.840.10045.4.3.3";

/// AWS's Nitro Enclaves root certificate (`aws.nitro-enclaves`, valid to
/// 2049), pinned: documents must chain to it (or to a root the genesis
/// lists for dev enclaves).
pub const AWS_NITRO_ROOT_B64: &str = "MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTELMAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYDVQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQLDANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEGBSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZEh8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkFR+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYCMQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPWrfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6NIwLz3/Y=";

/// [`AWS_NITRO_ROOT_B64`] as DER.
pub fn aws_nitro_root() -> Vec<u8> {
    data_encoding::BASE64
        .decode(AWS_NITRO_ROOT_B64.as_bytes())
        .expect("the pinned root is valid base64")
}

/// What a verified document says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    /// The enclave's module id (dev enclaves: [`crate::DEV_MODULE_PREFIX`]…).
    pub module_id: String,
    /// Milliseconds since the Unix epoch, as the document states.
    pub timestamp_ms: u64,
    /// Platform configuration registers by index.
    pub pcrs: BTreeMap<u64, Vec<u8>>,
    /// The public key the enclave put in the document, if any.
    pub public_key: Option<Vec<u8>>,
    /// The enclave's user data (gradnet: the node's [`crate::binding`]).
    pub user_data: Option<Vec<u8>>,
    /// The nonce the document answers, if any.
    pub nonce: Option<Vec<u8>>,
    /// The pinned root (DER) the document chains to.
    pub root: Vec<u8>,
}

fn bad(why: impl Into<String>) -> TeeError {
    TeeError::Malformed(why.into())
}

fn field<'a>(map: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn bytes(map: &[(Value, Value)], key: &str) -> Result<Option<Vec<u8>>, TeeError> {
    match field(map, key) {
        None => Ok(None),
        Some(Value::Bytes(b)) => Ok(Some(b.clone())),
        Some(_) => Err(bad(format!("`{key}` is not a byte string"))),
    }
}

/// The signed parts of a COSE_Sign1: protected header, payload, signature.
struct Cose {
    protected: Vec<u8>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

/// The parts of a COSE_Sign1 (tagged or not), its algorithm checked.
fn cose_parts(doc: &[u8]) -> Result<Cose, TeeError> {
    let v: Value = ciborium::from_reader(doc).map_err(|e| bad(format!("not CBOR: {e}")))?;
    let v = match v {
        Value::Tag(18, inner) => *inner,
        v => v,
    };
    let Value::Array(parts) = v else {
        return Err(bad("not a COSE_Sign1 array"));
    };
    let [Value::Bytes(protected), _, Value::Bytes(payload), Value::Bytes(signature)] = &parts[..]
    else {
        return Err(bad(
            "a COSE_Sign1 has four parts: protected, unprotected, payload, signature",
        ));
    };
    let header: Value =
        ciborium::from_reader(&protected[..]).map_err(|e| bad(format!("protected header: {e}")))?;
    let alg = header
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| k.as_integer() == Some(1.into())))
        .and_then(|(_, v)| v.as_integer())
        .map(i128::from);
    if alg != Some(ES384 as i128) {
        return Err(bad(format!(
            "signature algorithm {alg:?}, expected ES384 (-35)"
        )));
    }
    Ok(Cose {
        protected: protected.clone(),
        payload: payload.clone(),
        signature: signature.clone(),
    })
}

/// `Sig_structure` of RFC 9052 for a COSE_Sign1 without external data.
pub(crate) fn to_be_signed(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let s = Value::Array(vec![
        Value::Text("Signature1".into()),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(vec![]),
        Value::Bytes(payload.to_vec()),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&s, &mut out).expect("writing to a Vec");
    out
}

fn key_of(cert: &Certificate) -> Result<VerifyingKey, TeeError> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    VerifyingKey::from_sec1_bytes(spki.subject_public_key.raw_bytes())
        .map_err(|_| bad(format!("certificate {} has no P-384 key", subject(cert))))
}

fn subject(cert: &Certificate) -> String {
    cert.tbs_certificate.subject.to_string()
}

/// `cert` is valid at `now` and signed by `issuer`'s key.
fn check_cert(cert: &Certificate, issuer: &Certificate, now: u64) -> Result<(), TeeError> {
    let v = &cert.tbs_certificate.validity;
    let (from, to) = (
        v.not_before.to_unix_duration().as_secs(),
        v.not_after.to_unix_duration().as_secs(),
    );
    if now < from {
        return Err(TeeError::NotYetValid {
            subject: subject(cert),
            from,
            now,
        });
    }
    if now > to {
        return Err(TeeError::Expired {
            subject: subject(cert),
            until: to,
            now,
        });
    }
    if cert.signature_algorithm.oid.to_string() != ECDSA_SHA384 {
        return Err(bad(format!(
            "certificate {} is not signed with ECDSA/SHA-384",
            subject(cert)
        )));
    }
    if cert.tbs_certificate.issuer != issuer.tbs_certificate.subject {
        return Err(TeeError::Chain(format!(
            "{} names issuer {}, the bundle's previous certificate is {}",
            subject(cert),
            cert.tbs_certificate.issuer,
            subject(issuer)
        )));
    }
    let sig = cert
        .signature
        .as_bytes()
        .and_then(|b| Signature::from_der(b).ok())
        .ok_or_else(|| {
            bad(format!(
                "certificate {}: malformed signature",
                subject(cert)
            ))
        })?;
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|e| bad(e.to_string()))?;
    key_of(issuer)?.verify(&tbs, &sig).map_err(|_| {
        TeeError::Chain(format!(
            "{} is not signed by {}",
            subject(cert),
            subject(issuer)
        ))
    })
}

/// Verifies `doc` against the pinned `roots` (DER) at `now` (Unix seconds).
pub fn verify(doc: &[u8], roots: &[Vec<u8>], now: u64) -> Result<Attestation, TeeError> {
    let Cose {
        protected,
        payload,
        signature,
    } = cose_parts(doc)?;
    let body: Value =
        ciborium::from_reader(&payload[..]).map_err(|e| bad(format!("payload: {e}")))?;
    let map = body.as_map().ok_or_else(|| bad("payload is not a map"))?;
    let module_id = field(map, "module_id")
        .and_then(Value::as_text)
        .ok_or_else(|| bad("no module_id"))?
        .to_string();
    if field(map, "digest").and_then(Value::as_text) != Some("SHA384") {
        return Err(bad("digest must be SHA384"));
    }
    let timestamp_ms = field(map, "timestamp")
        .and_then(Value::as_integer)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| bad("no timestamp"))?;
    let mut pcrs = BTreeMap::new();
    for (k, v) in field(map, "pcrs")
        .and_then(Value::as_map)
        .ok_or_else(|| bad("no pcrs"))?
    {
        let (Some(i), Some(b)) = (
            k.as_integer().and_then(|i| u64::try_from(i).ok()),
            v.as_bytes(),
        ) else {
            return Err(bad("pcrs: index → bytes expected"));
        };
        pcrs.insert(i, b.clone());
    }
    let leaf = bytes(map, "certificate")?.ok_or_else(|| bad("no certificate"))?;
    let bundle: Vec<Vec<u8>> = field(map, "cabundle")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no cabundle"))?
        .iter()
        .map(|c| {
            c.as_bytes()
                .cloned()
                .ok_or_else(|| bad("cabundle holds a non-bytes entry"))
        })
        .collect::<Result<_, _>>()?;
    let root = bundle.first().ok_or_else(|| bad("empty cabundle"))?;
    if !roots.contains(root) {
        return Err(TeeError::UntrustedRoot);
    }
    let chain: Vec<Certificate> = bundle
        .iter()
        .chain(std::iter::once(&leaf))
        .map(|der| Certificate::from_der(der).map_err(|e| bad(format!("certificate: {e}"))))
        .collect::<Result<_, _>>()?;
    // the root's own validity at `now`, then each link
    check_cert(&chain[0], &chain[0], now)?;
    for pair in chain.windows(2) {
        check_cert(&pair[1], &pair[0], now)?;
    }
    let sig = Signature::from_slice(&signature).map_err(|_| {
        bad(format!(
            "an ES384 signature has 96 bytes, got {}",
            signature.len()
        ))
    })?;
    key_of(chain.last().expect("leaf"))?
        .verify(&to_be_signed(&protected, &payload), &sig)
        .map_err(|_| TeeError::Signature)?;
    Ok(Attestation {
        module_id,
        timestamp_ms,
        pcrs,
        public_key: bytes(map, "public_key")?,
        user_data: bytes(map, "user_data")?,
        nonce: bytes(map, "nonce")?,
        root: root.clone(),
    })
}
