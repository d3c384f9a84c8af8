//! A gradnet node assembled around the ledger: the ledger started with its
//! JSON-RPC listener, consensus and relay ([`ledger`]); PIPE over HTTP (the
//! proposer's dispatcher and the inference node's answer route); the relay
//! that passes client transactions on to the other validators; the
//! inferencer that runs the chain's model calls on the node's inference
//! service (its queue, limits and metrics); and the dev-enclave service
//! ([`dev_enclave`]).

pub mod consensus;
pub mod dev_enclave;
pub mod gateway;
pub mod inferencer;
pub mod ledger;
pub mod names;
pub mod pipe;
pub mod ports;
pub mod relay;
pub mod tls;
pub mod zk_infer;
