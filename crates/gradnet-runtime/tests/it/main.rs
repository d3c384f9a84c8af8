//! gradnet-runtime's integration tests, in one binary: ONNX models on each
//! engine, and LLMs from GGUF.

mod decoders;
mod embed;
mod gemma;
mod llm;
mod runtime;
