//! Signed requests: every state-changing HTTP request to a node carries an
//! EIP-712 signature by an Ethereum account over its method, path (with
//! query), body hash, the node's chain id, a timestamp and a random nonce.
//! Wallets sign it with `eth_signTypedData_v4`; nodes recover the account,
//! refuse stale or future timestamps and refuse a nonce seen before.

use alloy_primitives::{keccak256, Address, Signature, B256};
use alloy_sol_types::{eip712_domain, Eip712Domain, SolStruct};

alloy_sol_types::sol! {
    /// The typed data a request's signature covers.
    #[derive(Debug)]
    struct Request {
        string method;
        string path;
        bytes32 bodyHash;
        uint64 timestamp;
        bytes32 nonce;
    }
}

/// The signing account (`0x` + 40 hex digits).
pub const ACCOUNT_HEADER: &str = "x-gradnet-account";
/// The 65-byte signature, `0x` + 130 hex digits.
pub const SIGNATURE_HEADER: &str = "x-gradnet-signature";
/// Unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "x-gradnet-timestamp";
/// 32 random bytes, `0x` + 64 hex digits, never used twice.
pub const NONCE_HEADER: &str = "x-gradnet-nonce";

/// An upload's signed body hash: keccak256 of the file's bytes, which the
/// node checks as they stream in.
pub const BODY_HASH_HEADER: &str = "x-gradnet-body-hash";

/// How far a signature's timestamp may be from the node's clock, in seconds.
pub const MAX_SKEW_SECS: u64 = 300;

/// The EIP-712 domain of requests to nodes of chain `chain_id`.
pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "gradnet",
        version: "1",
        chain_id: chain_id,
    }
}

/// What a node needs to check a request's signature: the headers' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// The account that signed.
    pub account: Address,
    /// Its signature.
    pub signature: Signature,
    /// When (Unix seconds).
    pub timestamp: u64,
    /// The request's nonce.
    pub nonce: B256,
}

impl SignedHeaders {
    /// The four headers, as (name, value) pairs.
    pub fn pairs(&self) -> [(&'static str, String); 4] {
        [
            (ACCOUNT_HEADER, self.account.to_checksum(None)),
            (
                SIGNATURE_HEADER,
                format!(
                    "0x{}",
                    alloy_primitives::hex::encode(self.signature.as_bytes())
                ),
            ),
            (TIMESTAMP_HEADER, self.timestamp.to_string()),
            (NONCE_HEADER, self.nonce.to_string()),
        ]
    }
}

/// Why a request's signature was refused; each names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or malformed.
    #[error("header `{header}`: {problem}")]
    Header {
        /// Which header.
        header: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The signature recovers to another account (forged, or signed over a
    /// different method, path, body, chain id, timestamp or nonce).
    #[error("the signature is not {claimed}'s over this request (it recovers to {recovered}); sign method, path with query, keccak256 of the body, chain id {chain_id}, timestamp and nonce as EIP-712 `Request`")]
    Mismatch {
        /// The account the headers claim.
        claimed: Address,
        /// The account the signature is from.
        recovered: Address,
        /// The chain id the node checked against.
        chain_id: u64,
    },
    /// The timestamp is too old or too far ahead.
    #[error("the signature's timestamp {timestamp} is {age} s from the node's clock ({now}); at most {MAX_SKEW_SECS} s is accepted: sign again")]
    Stale {
        /// The signed timestamp.
        timestamp: u64,
        /// The node's time.
        now: u64,
        /// The difference, in seconds.
        age: u64,
    },
    /// The nonce was used before by this account.
    #[error("nonce {nonce} was already used by {account}: a replayed request is refused; sign again with a fresh nonce")]
    Replayed {
        /// The account.
        account: Address,
        /// The nonce.
        nonce: B256,
    },
    /// The body does not hash to what was signed.
    #[error("the body's keccak256 {actual} is not the signed {signed}")]
    BodyHash {
        /// The hash in the signature.
        signed: B256,
        /// The hash of the bytes received.
        actual: B256,
    },
}

fn request(method: &str, path: &str, body_hash: B256, timestamp: u64, nonce: B256) -> Request {
    Request {
        method: method.to_ascii_uppercase(),
        path: path.to_string(),
        bodyHash: body_hash,
        timestamp,
        nonce,
    }
}

/// The EIP-712 hash a request's signature signs.
pub fn signing_hash(
    chain_id: u64,
    method: &str,
    path: &str,
    body_hash: B256,
    timestamp: u64,
    nonce: B256,
) -> B256 {
    request(method, path, body_hash, timestamp, nonce).eip712_signing_hash(&domain(chain_id))
}

/// The hash a request's body is signed by (keccak256; for an upload, of the
/// file's bytes).
pub fn body_hash(body: &[u8]) -> B256 {
    keccak256(body)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Signs a request with `key` now, with a fresh random nonce.
pub fn sign(
    key: &B256,
    chain_id: u64,
    method: &str,
    path: &str,
    body_hash: B256,
) -> Result<SignedHeaders, crate::ClientError> {
    let timestamp = now_secs();
    let nonce = B256::from(rand_bytes());
    let hash = signing_hash(chain_id, method, path, body_hash, timestamp, nonce);
    Ok(SignedHeaders {
        account: crate::wallet::address(key)?,
        signature: crate::wallet::sign_hash(key, &hash)?,
        timestamp,
        nonce,
    })
}

fn rand_bytes() -> [u8; 32] {
    use rand::RngCore;
    let mut out = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

/// Reads the four headers (`get` returns a header's value by name); `None`
/// when the request carries no signature at all.
pub fn parse_headers<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
) -> Result<Option<SignedHeaders>, AuthError> {
    let names = [
        ACCOUNT_HEADER,
        SIGNATURE_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
    ];
    if names.iter().all(|n| get(n).is_none()) {
        return Ok(None);
    }
    let value = |header: &'static str| {
        get(header).map(str::trim).ok_or(AuthError::Header {
            header,
            problem: "missing (a signed request carries all four x-gradnet-* headers)".into(),
        })
    };
    let bad = |header: &'static str, problem: &str| AuthError::Header {
        header,
        problem: problem.into(),
    };
    let account: Address = value(ACCOUNT_HEADER)?
        .parse()
        .map_err(|_| bad(ACCOUNT_HEADER, "not an address (0x and 40 hex digits)"))?;
    let sig_hex = value(SIGNATURE_HEADER)?;
    let sig_bytes =
        alloy_primitives::hex::decode(sig_hex).map_err(|_| bad(SIGNATURE_HEADER, "not hex"))?;
    let signature = Signature::try_from(sig_bytes.as_slice())
        .map_err(|_| bad(SIGNATURE_HEADER, "not a 65-byte signature (r, s, v)"))?;
    let timestamp = value(TIMESTAMP_HEADER)?
        .parse()
        .map_err(|_| bad(TIMESTAMP_HEADER, "not Unix seconds"))?;
    let nonce = value(NONCE_HEADER)?
        .parse()
        .map_err(|_| bad(NONCE_HEADER, "not 32 bytes (0x and 64 hex digits)"))?;
    Ok(Some(SignedHeaders {
        account,
        signature,
        timestamp,
        nonce,
    }))
}

/// Checks a signature against the request and the node's clock; the nonce's
/// freshness is the caller's to check (it keeps the nonces it has seen).
pub fn verify(
    h: &SignedHeaders,
    chain_id: u64,
    method: &str,
    path: &str,
    body_hash: B256,
    now: u64,
) -> Result<(), AuthError> {
    let age = now.abs_diff(h.timestamp);
    if age > MAX_SKEW_SECS {
        return Err(AuthError::Stale {
            timestamp: h.timestamp,
            now,
            age,
        });
    }
    let hash = signing_hash(chain_id, method, path, body_hash, h.timestamp, h.nonce);
    let recovered = h
        .signature
        .recover_address_from_prehash(&hash)
        .map_err(|e| AuthError::Header {
            header: SIGNATURE_HEADER,
            problem: format!("recovers no key: {e}"),
        })?;
    if recovered != h.account {
        return Err(AuthError::Mismatch {
            claimed: h.account,
            recovered,
            chain_id,
        });
    }
    Ok(())
}

/// The node's clock in Unix seconds, as [`verify`] takes it.
pub fn now() -> u64 {
    now_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: B256 = B256::repeat_byte(7);

    fn signed(chain: u64) -> SignedHeaders {
        sign(&KEY, chain, "post", "/api/v0/models", body_hash(b"{}")).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_for_what_it_signed() {
        let h = signed(31337);
        let now = h.timestamp;
        let ok = |chain, method, path, body: &[u8]| {
            verify(&h, chain, method, path, body_hash(body), now)
        };
        ok(31337, "POST", "/api/v0/models", b"{}").unwrap();
        for bad in [
            ok(1, "POST", "/api/v0/models", b"{}"),
            ok(31337, "PUT", "/api/v0/models", b"{}"),
            ok(31337, "POST", "/api/v0/models/x", b"{}"),
            ok(31337, "POST", "/api/v0/models", b"{ }"),
        ] {
            assert!(matches!(bad, Err(AuthError::Mismatch { .. })), "{bad:?}");
        }
        // another account's address in the header
        let mut forged = h.clone();
        forged.account = Address::repeat_byte(1);
        assert!(matches!(
            verify(
                &forged,
                31337,
                "POST",
                "/api/v0/models",
                body_hash(b"{}"),
                now
            ),
            Err(AuthError::Mismatch { .. })
        ));
        // stale and future
        for t in [now - MAX_SKEW_SECS - 1, now + MAX_SKEW_SECS + 1] {
            assert!(matches!(
                verify(&h, 31337, "POST", "/api/v0/models", body_hash(b"{}"), t),
                Err(AuthError::Stale { .. })
            ));
        }
    }

    /// The Python SDK pins the same hash (python/tests/test_offline.py):
    /// both sign the same typed data.
    #[test]
    fn the_signing_hash_is_pinned() {
        let h = signing_hash(
            31337,
            "post",
            "/api/v0/models",
            body_hash(b"{}"),
            1_700_000_000,
            B256::repeat_byte(1),
        );
        assert_eq!(
            h.to_string(),
            "0x1cf3751369cea92a593ad8214c06c3d2453e2541a0b9523f017bfd90ede7cb2b"
        );
    }

    #[test]
    fn headers_round_trip_and_name_what_is_wrong() {
        let h = signed(5);
        let pairs = h.pairs();
        let get = |n: &str| pairs.iter().find(|p| p.0 == n).map(|p| p.1.as_str());
        assert_eq!(parse_headers(get).unwrap(), Some(h.clone()));
        assert_eq!(parse_headers(|_| None).unwrap(), None);
        let only_account = |n: &str| (n == ACCOUNT_HEADER).then_some("0x12");
        let e = parse_headers(only_account).unwrap_err().to_string();
        assert!(e.contains(ACCOUNT_HEADER), "{e}");
        let short_sig = |n: &str| match n {
            SIGNATURE_HEADER => Some("0xabcd"),
            _ => get(n),
        };
        let e = parse_headers(short_sig).unwrap_err().to_string();
        assert!(e.contains("65-byte"), "{e}");
        // two signatures never share a nonce
        assert_ne!(signed(5).nonce, signed(5).nonce);
    }
}
