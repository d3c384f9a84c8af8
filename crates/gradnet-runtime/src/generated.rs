//! Small ONNX models built in code (an MLP, CNNs, a two-input model), with
//! deterministic weights: see [`gradnet_onnx::generated`].

pub use gradnet_onnx::generated::*;
