//! Inference on chain: OpenGradient's precompile ABI at `0x…F4`, the
//! inference node registry at `0x…F5`, and PIPE: the block sidecar of
//! signed node results that answers calls inside blocks.

pub mod abi;
pub mod demo_contract;
pub mod mode;
pub mod pipe;
pub mod precompile;
pub mod receipts;
pub mod registry;
pub mod scheduler;
pub mod serve;
pub mod sidecar;
pub mod slots;
pub mod system_call;
pub mod tee_registry;
pub mod zk;
