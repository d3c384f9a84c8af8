//! A gradnet node's network legs, assembled around the ledger: PIPE over
//! HTTP (the proposer's dispatcher and the inference node's answer route),
//! the relay that passes client transactions on to the other validators,
//! and the inferencer that runs the chain's model calls on the node's
//! inference service (its queue, limits and metrics).

pub mod inferencer;
pub mod pipe;
pub mod ports;
pub mod relay;
