//! What can go wrong, split by whose fault it is: the file, the engine's
//! coverage, the caller's inputs, or the run itself.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid ONNX model.
    #[error("not a valid ONNX file: {0}")]
    Parse(String),
    /// The model uses operators (or variants of them) this engine cannot run.
    #[error("operators this engine cannot run: {}", .0.join(", "))]
    Unsupported(Vec<String>),
    /// The model is well-formed protobuf but breaks ONNX's rules.
    #[error("invalid model: {0}")]
    Invalid(String),
    /// The inputs given do not fit the model.
    #[error("{0}")]
    Input(String),
    /// A node failed on the values it was given.
    #[error("{0}")]
    Run(String),
    /// A tensor would exceed the engine's size limit.
    #[error("{0}")]
    Limit(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for a run-time failure with a formatted message.
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::error::Error::Run(format!($($t)*))) };
}
pub(crate) use bail;

/// Shorthand for an invalid-model error with a formatted message.
macro_rules! invalid {
    ($($t:tt)*) => { $crate::error::Error::Invalid(format!($($t)*)) };
}
pub(crate) use invalid;
