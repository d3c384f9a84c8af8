//! gradnet-onnx's integration tests, in one binary: the conformance corpus
//! against onnxruntime with hashes across CPU generations, and robustness
//! against mutated models.

mod conformance;
mod robustness;
