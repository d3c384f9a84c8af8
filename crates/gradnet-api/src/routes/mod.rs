pub mod hub;
pub mod infer;
pub mod node;
pub mod openai;
