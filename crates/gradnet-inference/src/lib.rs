//! Inference on chain, with no I/O: OpenGradient's precompile ABI at
//! `0x…F4`, the inference node registry at `0x…F5`, the TEE registry, the
//! model registry (the hub's names, owners and versions), the
//! workflow scheduler, ZKML checks, and PIPE's protocol: the block sidecar
//! of signed node results that answers calls inside blocks, how nodes are
//! sampled, and how their answers are decided and settled.

pub mod abi;
pub mod demo_contract;
pub mod error;
pub mod escrow;
pub mod fault_report;
pub mod mode;
pub mod model_registry;
pub mod og_hub;
pub mod pipe;
pub mod precompile;
pub mod prices;
pub mod receipts;
pub mod registry;
pub mod scheduler;
pub mod sidecar;
pub mod slots;
pub mod system_call;
pub mod tee_registry;
pub mod zk;
