//! Inference modes: how a result is made trustworthy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum InferenceMode {
    /// One staked node's signed result.
    #[default]
    Vanilla,
    /// N sampled nodes must agree bit for bit.
    Quorum,
    /// A zero-knowledge proof of the inference.
    Zkml,
    /// An attested enclave ran it.
    Tee,
}

impl InferenceMode {
    pub const ALL: [InferenceMode; 4] = [Self::Vanilla, Self::Quorum, Self::Zkml, Self::Tee];

    pub fn name(self) -> &'static str {
        match self {
            Self::Vanilla => "VANILLA",
            Self::Quorum => "QUORUM",
            Self::Zkml => "ZKML",
            Self::Tee => "TEE",
        }
    }

    /// The number used in OpenGradient's precompile ABI (`uint8 mode`):
    /// 0 VANILLA, 1 ZKML, 2 TEE; QUORUM is gradnet's own, 3.
    pub fn abi_code(self) -> u8 {
        match self {
            Self::Vanilla => 0,
            Self::Zkml => 1,
            Self::Tee => 2,
            Self::Quorum => 3,
        }
    }

    pub fn from_abi_code(c: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.abi_code() == c)
    }
}

impl fmt::Display for InferenceMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown inference mode `{0}`; expected one of VANILLA, QUORUM, ZKML, TEE")]
pub struct UnknownMode(pub String);

impl FromStr for InferenceMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, UnknownMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

impl Serialize for InferenceMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for InferenceMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        for m in InferenceMode::ALL {
            assert_eq!(m.name().parse::<InferenceMode>().unwrap(), m);
            assert_eq!(InferenceMode::from_abi_code(m.abi_code()), Some(m));
        }
        assert_eq!(
            "zkml".parse::<InferenceMode>().unwrap(),
            InferenceMode::Zkml
        );
        assert!("FAST".parse::<InferenceMode>().is_err());
        assert_eq!(InferenceMode::from_abi_code(9), None);
    }
}
