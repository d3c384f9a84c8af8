//! gradnet's client library, what the CLI, the benchmarks, the node's relay
//! and the tests use to talk to a network:
//!
//! - [`NodeClient`]: a node's HTTP API (hub, `/v1/infer`, the OpenAI
//!   routes and their server-sent events, uploads and verified downloads
//!   with progress bars);
//! - [`Rpc`]: Ethereum JSON-RPC through alloy's provider, with gradnet's
//!   own `gradnet_*` methods as raw requests;
//! - [`Sender`]: signs transactions with a local key ([`wallet`]), keeps
//!   its nonce, sends, waits for the receipt and decodes a revert's reason;
//! - [`auth`]: signed requests (EIP-712) for a node's writes;
//! - [`verify`]: a node's answer checked offline against its signed
//!   receipt.

pub mod auth;
mod error;
mod node;
pub mod pay;
mod revert;
mod rpc;
mod sender;
pub mod verify;
pub mod wallet;
pub mod x402;

pub use error::ClientError;
pub use node::NodeClient;
pub use revert::decode_revert;
pub use rpc::{Receipt, Rpc};
pub use sender::Sender;
