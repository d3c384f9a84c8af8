//! Content ids: the BLAKE3 hash of a blob, printed as `b3` + lowercase
//! unpadded base32 (52 characters). There is exactly one printable form, and
//! parsing accepts nothing else.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const CID_PREFIX: &str = "b3";
const ENCODED_LEN: usize = 52;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidError {
    #[error("content id must start with `b3`")]
    Prefix,
    #[error("content id must be `b3` followed by 52 base32 characters, got {0} characters")]
    Length(usize),
    #[error("content id contains a character outside lowercase base32 (a-z, 2-7)")]
    Alphabet,
}

impl ContentId {
    /// Hash of `data` in one go.
    pub fn of(data: &[u8]) -> Self {
        ContentId(*blake3::hash(data).as_bytes())
    }

    pub fn from_hash(h: blake3::Hash) -> Self {
        ContentId(*h.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether a string looks like a content id (used to tell ids from repo names).
    pub fn looks_like(s: &str) -> bool {
        s.len() == CID_PREFIX.len() + ENCODED_LEN && s.starts_with(CID_PREFIX)
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let enc = BASE32_NOPAD.encode(&self.0).to_ascii_lowercase();
        write!(f, "{CID_PREFIX}{enc}")
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = CidError;
    fn from_str(s: &str) -> Result<Self, CidError> {
        let body = s.strip_prefix(CID_PREFIX).ok_or(CidError::Prefix)?;
        if body.len() != ENCODED_LEN {
            return Err(CidError::Length(s.len()));
        }
        if !body
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(CidError::Alphabet);
        }
        let bytes = BASE32_NOPAD
            .decode(body.to_ascii_uppercase().as_bytes())
            .map_err(|_| CidError::Alphabet)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CidError::Length(s.len()))?;
        let id = ContentId(arr);
        // 52 base32 characters carry 260 bits; the 4 spare bits must be zero so
        // that every id has exactly one spelling.
        if id.to_string() != s {
            return Err(CidError::Alphabet);
        }
        Ok(id)
    }
}

impl Serialize for ContentId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_strict() {
        let id = ContentId::of(b"hello");
        let s = id.to_string();
        assert_eq!(s.len(), 54);
        assert!(s.starts_with("b3"));
        assert_eq!(s.parse::<ContentId>().unwrap(), id);
        assert_eq!(
            s.to_uppercase().parse::<ContentId>().unwrap_err(),
            CidError::Prefix
        );
        let upper_body = format!("b3{}", s[2..].to_uppercase());
        assert_eq!(
            upper_body.parse::<ContentId>().unwrap_err(),
            CidError::Alphabet
        );
        assert_eq!(
            s[..53].parse::<ContentId>().unwrap_err(),
            CidError::Length(53)
        );
        assert!(matches!(
            format!("{s}a").parse::<ContentId>(),
            Err(CidError::Length(55))
        ));
        // a different final character that only changes the spare bits
        let mut alt = s.clone();
        let last = alt.pop().unwrap();
        let idx = "abcdefghijklmnopqrstuvwxyz234567".find(last).unwrap();
        let other = "abcdefghijklmnopqrstuvwxyz234567".as_bytes()[idx ^ 1] as char;
        alt.push(other);
        assert!(alt.parse::<ContentId>().is_err());
    }

    #[test]
    fn serde_uses_the_printable_form() {
        let id = ContentId::of(b"x");
        let j = serde_json::to_string(&id).unwrap();
        assert_eq!(j, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ContentId>(&j).unwrap(), id);
        assert!(serde_json::from_str::<ContentId>("\"b3zz\"").is_err());
    }
}
