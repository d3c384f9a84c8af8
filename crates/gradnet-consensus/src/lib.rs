//! BFT consensus with Malachite (Tendermint): gradnet's context types,
//! message encodings, proposal streaming, and the app that ties decisions
//! to the chain.

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented.
#![allow(missing_docs)]

pub mod app;
pub mod codec;
pub mod context;
pub mod node;
pub mod parts;

pub use node::{ConsensusOptions, Running, Validator};
