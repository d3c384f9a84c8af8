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

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented (43 were not when the lint came in).
#![allow(missing_docs)]

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

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("input has {got} values, the model takes {want}")]
    InputLen { got: usize, want: usize },
    #[error("invalid input: {0}")]
    Input(String),
    #[error("value {0} leaves the circuit's {ACT_BITS}-bit activation range")]
    Range(i128),
    #[error("the ZK compiler does not support {}: {} (supported: {})", if .0.len() == 1 { "this operator" } else { "these operators" }, .0.join(", "), onnx::SUPPORTED.join(", "))]
    Unsupported(Vec<String>),
    #[error("model: {0}")]
    Model(String),
    #[error("malformed {what}: {why}")]
    Encoding { what: &'static str, why: String },
    #[error("proof rejected: {0}")]
    Rejected(String),
    #[error("proving system: {0}")]
    Snark(String),
}
