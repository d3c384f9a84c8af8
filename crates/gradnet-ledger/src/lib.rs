//! gradnet's ledger: Ethereum transactions executed with revm (the
//! inference system contracts among its precompiles), blocks with their
//! inference sidecar, receipts and state in redb, the mempool, and block
//! building and verification. No network I/O: the node gives block building
//! its PIPE leg ([`chain::MissServer`]) and relays the [`outbox`].

pub mod block;
pub mod chain;
pub mod error;
pub mod exec;
pub mod genesis;
pub mod history;
pub mod mempool;
pub mod outbox;
pub mod replay;
pub mod slots;
pub mod state;
pub mod store;
pub mod tx;

pub use error::ChainError;
