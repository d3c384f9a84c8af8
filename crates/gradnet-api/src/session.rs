//! Session tokens: an account signs in once with an EIP-712 signed request
//! (`POST /api/v0/sessions`) and gets a short-lived bearer token that stands
//! for its signature on later writes to this node, so a client (a browser
//! wallet above all) signs once instead of per request, and the node checks
//! a keyed hash instead of recovering a public key.
//!
//! A token is `gns1.<account>.<expires>.<id>.<mac>`: the MAC is a keyed
//! BLAKE3 over the chain id, account, expiry and a random id, keyed by a
//! secret derived from the node's key, so only this node issued it, it
//! survives the node's restarts, and nothing is stored per session. Signing
//! out (`DELETE /api/v0/sessions`) records the id until the token expires.
//! Like any bearer token it must travel over TLS beyond loopback.

use alloy_primitives::Address;

/// Prefix of this node's session tokens (and their format's version).
pub const PREFIX: &str = "gns1";
/// A session's lifetime when the client does not ask for one, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 3600;
/// The longest session a node grants, in seconds.
pub const MAX_TTL_SECS: u64 = 24 * 3600;

/// Issues and checks one node's session tokens.
pub struct Sessions {
    key: [u8; 32],
    chain_id: u64,
}

/// What a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account that signed in.
    pub account: Address,
    /// Unix seconds after which the token is refused.
    pub expires_at: u64,
    /// The token's random id (what signing out records).
    pub id: [u8; 16],
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a token of this format, or not issued by this node for this chain.
    #[error(
        "the session token is {0}: sign in again (POST /api/v0/sessions with a signed request)"
    )]
    Invalid(&'static str),
    /// Past its expiry.
    #[error("the session token expired at {expires_at} (now {now}): sign in again")]
    Expired {
        /// When it expired.
        expires_at: u64,
        /// The node's clock.
        now: u64,
    },
}

impl Sessions {
    /// The sessions of a node with this key seed on chain `chain_id`.
    pub fn new(node_seed: &[u8; 32], chain_id: u64) -> Self {
        Sessions {
            key: blake3::derive_key("gradnet session tokens v1", node_seed),
            chain_id,
        }
    }

    fn mac(&self, account: &Address, expires_at: u64, id: &[u8; 16]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&self.chain_id.to_be_bytes());
        h.update(account.as_slice());
        h.update(&expires_at.to_be_bytes());
        h.update(id);
        h.finalize()
    }

    /// A token for `account`, valid until `expires_at`.
    pub fn issue(&self, account: Address, expires_at: u64) -> (String, Session) {
        let mut id = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut id);
        let mac = self.mac(&account, expires_at, &id);
        let token = format!(
            "{PREFIX}.{}.{expires_at}.{}.{}",
            alloy_primitives::hex::encode(account),
            alloy_primitives::hex::encode(id),
            mac.to_hex()
        );
        (
            token,
            Session {
                account,
                expires_at,
                id,
            },
        )
    }

    /// The session `token` stands for, if this node issued it and it has not
    /// expired at `now` (revocation is the caller's to check).
    pub fn check(&self, token: &str, now: u64) -> Result<Session, SessionError> {
        let mut parts = token.trim().split('.');
        let mut next = || parts.next().ok_or(SessionError::Invalid("malformed"));
        if next()? != PREFIX {
            return Err(SessionError::Invalid("not a gradnet session token"));
        }
        let account: Address = next()?
            .parse()
            .map_err(|_| SessionError::Invalid("malformed (account)"))?;
        let expires_at: u64 = next()?
            .parse()
            .map_err(|_| SessionError::Invalid("malformed (expiry)"))?;
        let id: [u8; 16] = alloy_primitives::hex::decode(next()?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(SessionError::Invalid("malformed (id)"))?;
        let mac = blake3::Hash::from_hex(next()?)
            .map_err(|_| SessionError::Invalid("malformed (mac)"))?;
        if parts.next().is_some() {
            return Err(SessionError::Invalid("malformed"));
        }
        // blake3::Hash compares in constant time
        if mac != self.mac(&account, expires_at, &id) {
            return Err(SessionError::Invalid(
                "not one this node issued on this chain (or altered)",
            ));
        }
        if now >= expires_at {
            return Err(SessionError::Expired { expires_at, now });
        }
        Ok(Session {
            account,
            expires_at,
            id,
        })
    }
}

/// The session token of an `Authorization: Bearer gns1.…` header value, if
/// it carries one (other bearer tokens are not this node's business).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let v = authorization?.trim();
    let token = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?
        .trim();
    token.starts_with(&format!("{PREFIX}.")).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_only_on_its_node_chain_and_until_it_expires() {
        let node = Sessions::new(&[1; 32], 31337);
        let alice = Address::repeat_byte(0xa1);
        let (token, s) = node.issue(alice, 1_000);
        assert_eq!(node.check(&token, 999).unwrap(), s);
        assert_eq!(s.account, alice);
        assert!(matches!(
            node.check(&token, 1_000),
            Err(SessionError::Expired { .. })
        ));
        // another node, another chain
        for other in [Sessions::new(&[2; 32], 31337), Sessions::new(&[1; 32], 1)] {
            assert!(matches!(
                other.check(&token, 0),
                Err(SessionError::Invalid(_))
            ));
        }
        // altered account or expiry: the mac no longer holds
        let bob = alloy_primitives::hex::encode(Address::repeat_byte(0xb0));
        let parts: Vec<&str> = token.split('.').collect();
        for forged in [
            token.replace(parts[1], &bob),
            token.replace(".1000.", ".9999999999."),
        ] {
            let e = node.check(&forged, 0).unwrap_err();
            assert!(e.to_string().contains("not one this node issued"), "{e}");
        }
        for junk in [
            "",
            "gns1",
            "gns1.zz.1.00.00",
            &format!("{token}.x"),
            "jwt.a.b",
        ] {
            assert!(matches!(node.check(junk, 0), Err(SessionError::Invalid(_))));
        }
        // two tokens for one account differ
        assert_ne!(node.issue(alice, 1_000).0, token);
    }

    #[test]
    fn only_gradnet_bearer_tokens_are_read() {
        assert_eq!(bearer(Some("Bearer gns1.a.b")), Some("gns1.a.b"));
        assert_eq!(bearer(Some("Bearer sk-openai")), None);
        assert_eq!(bearer(Some("gns1.a.b")), None);
        assert_eq!(bearer(None), None);
    }
}
