//! The chain's integration tests, in one binary: the ledger, JSON-RPC,
//! the inference precompile and PIPE against real servers on loopback
//! ports, and bad input at every door.

mod common;

mod bad_input;
mod ledger;
mod pipe;
mod precompile;
mod rpc;
