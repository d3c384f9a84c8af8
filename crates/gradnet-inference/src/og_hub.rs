//! OpenGradient's inference hub contract, predeployed by the devnet where
//! OpenGradient's SDK looks for it (`og.Alpha(...).infer(...)` runs
//! unchanged): `run(string modelId, uint8 inferenceMode, ModelInput)` calls
//! the precompile's `runModelInference` and emits
//! `InferenceResult(ModelOutput)`; `runLLMChat` / `runLLMCompletion` pass
//! their request on and emit `LLMChatResult` / `LLMCompletionResult`. Each
//! returns what the precompile returned and reverts with its reason.
//!
//! `run`'s arguments `(string, uint8, ModelInput)` and the precompile's
//! `((uint8, string, ModelInput))` have the same tails after a three-word
//! head, so the call is re-encoded by swapping the first two head words and
//! putting the tuple's offset in front; no ABI decoding runs on chain.

use alloy_primitives::{address, keccak256, Address, Bytes, B256};
use alloy_sol_types::SolCall;

use crate::abi::InferencePrecompile;

/// Where OpenGradient's SDK expects the hub by default
/// (`DEFAULT_INFERENCE_CONTRACT_ADDRESS`).
pub const ADDRESS: Address = address!("8383C9bD7462F12Eb996DD02F78234C0421A6FaE");

const MODEL_INPUT: &str = "((string,(int128,int128)[],uint32[])[],(string,string[])[])";
const MODEL_OUTPUT: &str =
    "((string,(int128,int128)[],uint32[])[],(string,string[])[],(string,string)[],bool)";
const CHAT_RESPONSE: &str = "(string,(string,string,string,string,(string,string,string)[]))";

fn selector(sig: &str) -> [u8; 4] {
    keccak256(sig.as_bytes())[..4].try_into().expect("4 bytes")
}

/// `run(string,uint8,ModelInput)`: 0xcbf09d80.
pub fn run_selector() -> [u8; 4] {
    selector(&format!("run(string,uint8,{MODEL_INPUT})"))
}

/// The topics of `InferenceResult`, `LLMChatResult` and `LLMCompletionResult`.
pub fn event_topics() -> [B256; 3] {
    [
        keccak256(format!("InferenceResult({MODEL_OUTPUT})")),
        keccak256(format!("LLMChatResult({CHAT_RESPONSE})")),
        keccak256("LLMCompletionResult((string))"),
    ]
}

/// A tiny assembler: opcodes, pushes, and jump labels (2-byte pushes).
enum Asm {
    Op(u8),
    Push(Vec<u8>),
    Label(&'static str),
    PushLabel(&'static str),
}

fn assemble(code: &[Asm]) -> Vec<u8> {
    let size = |a: &Asm| match a {
        Asm::Op(_) => 1,
        Asm::Push(b) => 1 + b.len(),
        Asm::Label(_) => 1,
        Asm::PushLabel(_) => 3,
    };
    let mut at = std::collections::HashMap::new();
    let mut pc = 0usize;
    for a in code {
        if let Asm::Label(l) = a {
            at.insert(*l, pc);
        }
        pc += size(a);
    }
    let mut out = Vec::with_capacity(pc);
    for a in code {
        match a {
            Asm::Op(o) => out.push(*o),
            Asm::Push(b) => {
                out.push(0x5f + b.len() as u8);
                out.extend_from_slice(b);
            }
            Asm::Label(_) => out.push(0x5b),
            Asm::PushLabel(l) => {
                out.push(0x61);
                out.extend_from_slice(&(at[l] as u16).to_be_bytes());
            }
        }
    }
    out
}

// opcodes used
const SHR: u8 = 0x1c;
const LT: u8 = 0x10;
const EQ: u8 = 0x14;
const JUMPI: u8 = 0x57;
const JUMP: u8 = 0x56;
const CALLDATALOAD: u8 = 0x35;
const CALLDATASIZE: u8 = 0x36;
const CALLDATACOPY: u8 = 0x37;
const MSTORE: u8 = 0x52;
const SUB: u8 = 0x03;
const ADD: u8 = 0x01;
const GAS: u8 = 0x5a;
const CALL: u8 = 0xf1;
const ISZERO: u8 = 0x15;
const RETURNDATASIZE: u8 = 0x3d;
const RETURNDATACOPY: u8 = 0x3e;
const LOG1: u8 = 0xa1;
const RETURN: u8 = 0xf3;
const REVERT: u8 = 0xfd;
const DUP1: u8 = 0x80;
const SWAP1: u8 = 0x90;
const DUP3: u8 = 0x82;
const POP: u8 = 0x50;
const CALLVALUE: u8 = 0x34;

fn push(b: &[u8]) -> Asm {
    Asm::Push(b.to_vec())
}

/// The contract's deployed code.
pub fn runtime_code() -> Bytes {
    use Asm::*;
    // the hub's LLM functions have the precompile's signatures
    let run = run_selector();
    let chat = InferencePrecompile::runLLMChatCall::SELECTOR;
    let completion = InferencePrecompile::runLLMCompletionCall::SELECTOR;
    let inference = InferencePrecompile::runModelInferenceCall::SELECTOR;
    let [result_topic, chat_topic, completion_topic] = event_topics();
    let mut code = vec![
        // nothing here takes value
        Op(CALLVALUE),
        PushLabel("fail"),
        Op(JUMPI),
        push(&[0]),
        Op(CALLDATALOAD),
        push(&[224]),
        Op(SHR),
        // selector on the stack
        Op(DUP1),
        push(&run),
        Op(EQ),
        PushLabel("run"),
        Op(JUMPI),
        Op(DUP1),
        push(&chat),
        Op(EQ),
        PushLabel("chat"),
        Op(JUMPI),
        push(&completion),
        Op(EQ),
        PushLabel("completion"),
        Op(JUMPI),
        Label("fail"),
        push(&[0]),
        push(&[0]),
        Op(REVERT),
        // run: mem = runModelInference(0x20 ‖ mode ‖ off_s ‖ off_i ‖ tails)
        Label("run"),
        Op(POP),
        // shorter than a head: malformed
        push(&[100]),
        Op(CALLDATASIZE),
        Op(LT),
        PushLabel("fail"),
        Op(JUMPI),
    ];
    let mut sel = inference.to_vec();
    sel.extend_from_slice(&[0u8; 28]);
    code.extend([
        Push(sel),
        push(&[0]),
        Op(MSTORE),
        push(&[0x20]),
        push(&[4]),
        Op(MSTORE),
        push(&[36]),
        Op(CALLDATALOAD),
        push(&[36]),
        Op(MSTORE),
        push(&[4]),
        Op(CALLDATALOAD),
        push(&[68]),
        Op(MSTORE),
        push(&[68]),
        Op(CALLDATALOAD),
        push(&[100]),
        Op(MSTORE),
        // tails: calldata[100..] → mem[132..]
        push(&[100]),
        Op(CALLDATASIZE),
        Op(SUB),
        push(&[100]),
        push(&[132]),
        Op(CALLDATACOPY),
        // call 0xF4 with CALLDATASIZE + 32 bytes
        push(&[32]),
        Op(CALLDATASIZE),
        Op(ADD),
        Push(result_topic.to_vec()),
        PushLabel("forward"),
        Op(JUMP),
        // chat and completion: the calldata as it came
        Label("chat"),
        Op(POP),
        Op(CALLDATASIZE),
        push(&[0]),
        push(&[0]),
        Op(CALLDATACOPY),
        Op(CALLDATASIZE),
        Push(chat_topic.to_vec()),
        PushLabel("forward"),
        Op(JUMP),
        Label("completion"),
        Op(CALLDATASIZE),
        push(&[0]),
        push(&[0]),
        Op(CALLDATACOPY),
        Op(CALLDATASIZE),
        Push(completion_topic.to_vec()),
    ]);
    code.extend([
        // forward: stack [len, topic]: CALL(gas, 0xF4, 0, 0, len, 0, 0)
        Label("forward"),
        Op(SWAP1),  // [topic, len]
        push(&[0]), // retLen
        push(&[0]), // retOff
        Op(DUP3),   // len (argsLen)
        push(&[0]), // argsOff
        push(&[0]), // value
        push(&[0xf4]),
        Op(GAS),
        Op(CALL),
        // stack: [topic, len, ok]
        Op(ISZERO),
        PushLabel("reverted"),
        Op(JUMPI),
        Op(POP), // [topic]
        Op(RETURNDATASIZE),
        push(&[0]),
        push(&[0]),
        Op(RETURNDATACOPY),
        // LOG1(0, rds, topic)
        Op(RETURNDATASIZE),
        push(&[0]),
        Op(LOG1),
        Op(RETURNDATASIZE),
        push(&[0]),
        Op(RETURN),
        Label("reverted"),
        Op(RETURNDATASIZE),
        push(&[0]),
        push(&[0]),
        Op(RETURNDATACOPY),
        Op(RETURNDATASIZE),
        push(&[0]),
        Op(REVERT),
    ]);
    assemble(&code).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_opengradients() {
        assert_eq!(run_selector(), [0xcb, 0xf0, 0x9d, 0x80]);
        let code = runtime_code();
        assert!(code.len() < 400, "{}", code.len());
    }
}
