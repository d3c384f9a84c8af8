//! A call's `uint8 mode`, parsed once: the kind (VANILLA, ZKML, TEE,
//! QUORUM) in the low four bits, and for QUORUM the nodes that must agree
//! in the high four (0: [`DEFAULT_QUORUM`]).

use std::fmt;

use gradnet_types::InferenceMode;

use crate::sidecar::DEFAULT_QUORUM;

/// What a call asks for: how its result is verified, and of how many nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// How the result is verified.
    pub kind: InferenceMode,
    /// Nodes asked: 1 for VANILLA, ZKML (one prover) and TEE.
    pub quorum: usize,
}

impl Mode {
    /// The mode a raw byte names; `None` for a kind that does not exist or
    /// a quorum size on a mode that has none.
    pub fn parse(raw: u8) -> Option<Mode> {
        let kind = InferenceMode::from_abi_code(raw & 0x0f)?;
        let quorum = match (kind, (raw >> 4) as usize) {
            (InferenceMode::Quorum, 0) => DEFAULT_QUORUM,
            (InferenceMode::Quorum, n) => n,
            (_, 0) => 1,
            _ => return None,
        };
        Some(Mode { kind, quorum })
    }

    /// An LLM call's mode: OpenGradient's LLM numbers (0 VANILLA, 1 TEE),
    /// gradnet's 2 for TEE as for models, and QUORUM as for models; there
    /// is no ZKML for LLMs.
    pub fn parse_llm(raw: u8) -> Option<Mode> {
        match raw {
            1 => Some(Mode {
                kind: InferenceMode::Tee,
                quorum: 1,
            }),
            _ => Self::parse(raw).filter(|m| m.kind != InferenceMode::Zkml),
        }
    }

    /// The kind's code in the ABI and the registry (0 VANILLA, 1 ZKML,
    /// 2 TEE, 3 QUORUM).
    pub fn code(self) -> u8 {
        self.kind.abi_code()
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            InferenceMode::Quorum => write!(f, "QUORUM of {}", self.quorum),
            k => write!(f, "{k}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_parse_as_the_precompile_documents() {
        let m = |raw| Mode::parse(raw).map(|m| (m.kind, m.quorum));
        assert_eq!(m(0), Some((InferenceMode::Vanilla, 1)));
        assert_eq!(m(1), Some((InferenceMode::Zkml, 1)));
        assert_eq!(m(2), Some((InferenceMode::Tee, 1)));
        assert_eq!(m(3), Some((InferenceMode::Quorum, DEFAULT_QUORUM)));
        assert_eq!(m(3 | 5 << 4), Some((InferenceMode::Quorum, 5)));
        assert_eq!(m(3 | 15 << 4), Some((InferenceMode::Quorum, 15)));
        for bad in [4, 15, 1 << 4, 1 | 1 << 4, 2 | 3 << 4] {
            assert_eq!(m(bad), None, "{bad}");
        }
        assert_eq!(Mode::parse(3 | 5 << 4).unwrap().to_string(), "QUORUM of 5");
    }

    /// OpenGradient's LLM enum numbers TEE 1; gradnet's TEE code 2 works too.
    #[test]
    fn llm_modes_follow_opengradients_llm_numbers() {
        let m = |raw| Mode::parse_llm(raw).map(|m| (m.kind, m.quorum));
        assert_eq!(m(0), Some((InferenceMode::Vanilla, 1)));
        assert_eq!(m(1), Some((InferenceMode::Tee, 1)));
        assert_eq!(m(2), Some((InferenceMode::Tee, 1)));
        assert_eq!(m(3 | 4 << 4), Some((InferenceMode::Quorum, 4)));
        assert_eq!(m(4), None);
    }
}
