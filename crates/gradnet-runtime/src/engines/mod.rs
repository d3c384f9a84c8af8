//! The engines a node can run ONNX models with. gradnet's deterministic
//! engine is the default: its results are the same bits on every CPU, so
//! they can be compared across nodes (QUORUM) and re-run by anyone from a
//! receipt. onnxruntime is the optional, faster one on convolutional models,
//! exact to its CPU only. Which one ran is part of every receipt.

pub(crate) mod deterministic;
pub(crate) mod onnxruntime;

use std::path::PathBuf;

/// The engine a runtime uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// gradnet-onnx, the deterministic profile.
    Deterministic,
    /// ONNX Runtime, loaded from this shared library.
    OnnxRuntime {
        /// `libonnxruntime.so`.
        library: PathBuf,
    },
}

impl Backend {
    /// The engine's name in receipts and the registry.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Deterministic => gradnet_onnx::ENGINE,
            Backend::OnnxRuntime { .. } => "onnxruntime",
        }
    }
}
