//! BFT consensus with Malachite (Tendermint): gradnet's context types,
//! message encodings, proposal streaming, and the app that ties decisions
//! to the ledger. No network I/O: the app exchanges messages with
//! Malachite's engine over channels, and the node starts the engine with
//! its p2p (`gradnet_node::consensus`).

pub mod app;
pub mod byzantine;
pub mod codec;
pub mod context;
pub mod faults;
pub mod parts;
