//! Errors shared by every layer that handles tensors.

use crate::tensor::DType;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} needs {} values but {len} were given", shape.iter().product::<usize>())]
    ShapeMismatch { shape: Vec<usize>, len: usize },
    #[error("tensor `{name}`: {msg}")]
    Malformed { name: String, msg: String },
    #[error("tensor `{name}`: value {value} cannot be represented as {dtype}")]
    NotRepresentable {
        name: String,
        value: String,
        dtype: DType,
    },
    #[error("inputs must be a JSON object of named tensors (`{{\"x\": [[0.1, 0.2]]}}`) or the fixed-point form (`{{\"numbers\": [...], \"strings\": [...]}}`)")]
    NotAnObject,
    /// The binary section after a request's JSON header does not fit the inputs.
    #[error("binary body: {0}")]
    BinarySection(String),
}

impl TensorError {
    pub fn malformed(name: &str, msg: impl Into<String>) -> Self {
        TensorError::Malformed {
            name: name.to_string(),
            msg: msg.into(),
        }
    }
}
