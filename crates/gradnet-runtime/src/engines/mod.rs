//! The engines a node can run ONNX models with. tract (pure Rust) is the
//! default; onnxruntime is the optional, faster one on convolutional models.
//! Which one ran is part of every receipt: their outputs differ in the last
//! bits, so the engine is part of a result's identity.

pub(crate) mod onnxruntime;
pub(crate) mod tract;
mod tract_convert;

use std::path::PathBuf;

/// The engine a runtime uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Tract,
    /// ONNX Runtime, loaded from this shared library.
    OnnxRuntime {
        library: PathBuf,
    },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Tract => "tract",
            Backend::OnnxRuntime { .. } => "onnxruntime",
        }
    }
}
