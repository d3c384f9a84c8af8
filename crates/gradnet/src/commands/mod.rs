pub mod chat;
pub mod demo;
pub mod infer;
pub mod keys;
pub mod model;
pub mod node;
pub mod receipt;
