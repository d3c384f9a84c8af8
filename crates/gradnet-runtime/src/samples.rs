//! Small ONNX models built in code (an MLP, CNNs, a two-input model), with
//! deterministic weights: see [`gradnet_onnx::samples`].

pub use gradnet_onnx::samples::*;
