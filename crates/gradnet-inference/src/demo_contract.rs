//! The devnet's demo contract: forwards its calldata to the inference
//! precompile and logs the result (LOG0, the ABI-encoded return data), or
//! reverts with the precompile's revert data. Any `runModelInference` /
//! `runLLMCompletion` / `runLLMChat` call sent to it runs in a block and
//! leaves its verified result in the receipt.
//!
//! ```text
//! 00 CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY        ; mem = calldata
//! 06 PUSH1 0 PUSH1 0 CALLDATASIZE PUSH1 0 PUSH1 0     ; ret 0/0, args 0/size, value 0
//! 0f PUSH1 0xF4 GAS CALL ISZERO PUSH1 0x22 JUMPI      ; call 0xF4, failed: to 0x22
//! 17 RETURNDATASIZE PUSH1 0 PUSH1 0 RETURNDATACOPY    ; mem = return data
//! 1d RETURNDATASIZE PUSH1 0 LOG0 STOP                 ; log it
//! 22 JUMPDEST RETURNDATASIZE PUSH1 0 PUSH1 0 RETURNDATACOPY
//! 29 RETURNDATASIZE PUSH1 0 REVERT                    ; pass the reason on
//! ```

use alloy_primitives::{address, Address, Bytes};

/// Where the devnet's genesis puts it.
pub const ADDRESS: Address = address!("0000000000000000000000000000000000000de0");

const RUNTIME: &str =
    "36600060003760006000366000600060f45af1156022573d600060003e3d6000a0005b3d600060003e3d6000fd";

/// The contract's deployed code.
pub fn runtime_code() -> Bytes {
    hex::decode(RUNTIME).expect("hex").into()
}

/// Creation code that deploys it (for chains without it at genesis).
pub fn initcode() -> Bytes {
    let runtime = runtime_code();
    let mut code = vec![
        0x60,
        runtime.len() as u8,
        0x80,
        0x60,
        0x0b,
        0x60,
        0x00,
        0x39,
        0x60,
        0x00,
        0xf3,
    ];
    code.extend_from_slice(&runtime);
    code.into()
}
