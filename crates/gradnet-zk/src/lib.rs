//! ZKML: ONNX models in a supported subset compiled to fixed-point
//! Groth16 circuits over BN254 (arkworks). A proof shows that the model
//! whose hash is its first public input maps the public (quantized) input
//! to the public (quantized) output.
//!
//! - [`onnx::compile`]: ONNX → [`QuantModel`] (or the list of operators
//!   that block it).
//! - [`QuantModel::forward`]: the circuit's arithmetic, run plainly.
//! - [`setup`] / [`prove`] / [`verify`], and the byte forms of keys and
//!   proofs ([`keys`]).
//! - [`accuracy`]: the quantized model against float inference.

pub mod accuracy;
mod bundle;
mod circuit;
pub mod keys;
pub mod model;
pub mod onnx;

pub use bundle::ProofBundle;
pub use circuit::public_inputs;
pub use keys::{prove, setup, verify, Keys, VerifyingKey};
pub use model::{Op, QuantModel, ACT_BITS};

/// Why a model could not be compiled, proved or verified.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The input's length is not the circuit's.
    #[error("input has {got} values, the model takes {want}")]
    InputLen {
        /// Values given.
        got: usize,
        /// Values the circuit takes.
        want: usize,
    },
    /// An input value that cannot be quantized.
    #[error("invalid input: {0}")]
    Input(String),
    /// An activation outside the circuit's range.
    #[error("value {0} leaves the circuit's {ACT_BITS}-bit activation range")]
    Range(i128),
    #[error("the ZK compiler does not support {}: {} (supported: {})", if .0.len() == 1 { "this operator" } else { "these operators" }, .0.join(", "), onnx::SUPPORTED.join(", "))]
    /// Operators the compiler does not lower, by name.
    Unsupported(Vec<String>),
    /// A model that is not a chain the compiler understands.
    #[error("model: {0}")]
    Model(String),
    /// Bytes that do not decode as `what`.
    #[error("malformed {what}: {why}")]
    Encoding {
        /// What was being decoded (proof, key, ...).
        what: &'static str,
        /// The decoder's reason.
        why: String,
    },
    /// A proof that does not verify.
    #[error("proof rejected: {0}")]
    Rejected(String),
    /// The proving system failed.
    #[error("proving system: {0}")]
    Snark(String),
}
