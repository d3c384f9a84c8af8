//! Inference on chain: OpenGradient's precompile ABI at `0x…F4`.

pub mod abi;
pub mod precompile;
