//! gradnet's ledger: Ethereum transactions executed with revm, blocks,
//! receipts and state in redb, a mempool, and the Ethereum JSON-RPC API.

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented (339 were not when the lint came in).
#![allow(missing_docs)]

pub mod block;
pub mod chain;
pub mod consensus;
pub mod error;
pub mod exec;
pub mod genesis;
pub mod inference;
pub mod mempool;
pub mod relay;
pub mod rpc;

pub use error::ChainError;
pub mod state;
pub mod store;
pub mod tx;
pub mod wallet;
