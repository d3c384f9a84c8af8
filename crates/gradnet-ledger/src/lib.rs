//! gradnet's ledger: Ethereum transactions executed with revm (the
//! inference system contracts among its precompiles), blocks with their
//! inference sidecar, receipts and state in redb, the mempool, and block
//! building and verification. No network I/O: the node gives block building
//! its PIPE leg ([`chain::MissServer`]) and relays the [`outbox`].

// The workspace lint `missing_docs` is off here until this crate's public
// items are documented (214 were not when the crate was split out).
#![allow(missing_docs)]

pub mod block;
pub mod chain;
pub mod error;
pub mod exec;
pub mod genesis;
pub mod mempool;
pub mod outbox;
pub mod slots;
pub mod state;
pub mod store;
pub mod tx;

pub use error::ChainError;
