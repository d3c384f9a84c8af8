//! The inference precompile at `0x…F4`, next to Ethereum's own.
//!
//! Gas: `INFERENCE_BASE_GAS + 16 * (calldata bytes + result bytes)`, the
//! per-byte price of calldata applied to both directions (the model's own
//! compute is paid by the inference fee, not gas).
//!
//! In `eth_call` / `eth_estimateGas` the node runs the model itself and the
//! output says `is_simulation_result = true`. Inside a block, results come
//! from the inference nodes through the block's sidecar (PIPE); a call
//! whose result is not there reverts with a reason.

use std::sync::Arc;

use alloy_primitives::{address, Address, Bytes};
use alloy_sol_types::{SolCall, SolError, SolInterface, SolValue};
use gradnet_types::tensor::NamedTensors;
use revm::context::Cfg;
use revm::context_interface::ContextTr;
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, Gas, InstructionResult, InterpreterResult};
use revm::primitives::AddressSet;

use super::abi::{
    input_json, model_output, InferencePrecompile::InferencePrecompileCalls, LLMChatRequest,
    LLMChatResponse, LLMCompletionRequest, LLMCompletionResponse,
};

pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F4");
pub const INFERENCE_BASE_GAS: u64 = 50_000;
pub const GAS_PER_BYTE: u64 = 16;

/// Runs models for the precompile (the node's runtime and hub).
pub trait Inferencer: Send + Sync {
    /// Runs an ONNX model on inputs in gradnet's fixed-point JSON.
    fn run_model(&self, model: &str, inputs: &serde_json::Value) -> Result<NamedTensors, String>;
    fn complete(&self, request: &LLMCompletionRequest) -> Result<LLMCompletionResponse, String>;
    fn chat(&self, request: &LLMChatRequest) -> Result<LLMChatResponse, String>;
}

/// Where answers to calls come from.
#[derive(Clone)]
pub enum Answers {
    /// `eth_call` / `eth_estimateGas`: the node runs the model.
    Simulate(Arc<dyn Inferencer>),
    /// Block execution without served results.
    Unserved,
}

/// Ethereum's precompiles plus the inference precompile.
#[derive(Clone)]
pub struct Precompiles {
    eth: EthPrecompiles,
    warm: AddressSet,
    answers: Answers,
}

impl Precompiles {
    pub fn new(spec: revm::primitives::hardfork::SpecId, answers: Answers) -> Self {
        let eth = EthPrecompiles::new(spec);
        let mut warm = eth.warm_addresses().clone();
        warm.insert(ADDRESS);
        Precompiles { eth, warm, answers }
    }

    /// The result bytes of a call, or the reason it reverts.
    fn answer(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let call = InferencePrecompileCalls::abi_decode(input)
            .map_err(|e| format!("inference precompile: malformed call: {e}"))?;
        let Answers::Simulate(inf) = &self.answers else {
            return Err(
                "inference precompile: no served result for this call in this block".into(),
            );
        };
        Ok(match call {
            InferencePrecompileCalls::runModelInference(c) => {
                let r = &c.request;
                let out = inf.run_model(&r.modelCID, &input_json(&r.input))?;
                let out = model_output(&out, true)?;
                super::abi::InferencePrecompile::runModelInferenceCall::abi_encode_returns(&out)
            }
            InferencePrecompileCalls::runLLMCompletion(c) => inf.complete(&c.request)?.abi_encode(),
            InferencePrecompileCalls::runLLMChat(c) => inf.chat(&c.request)?.abi_encode(),
        })
    }
}

fn revert_reason(reason: &str) -> Bytes {
    alloy_sol_types::Revert::from(reason).abi_encode().into()
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for Precompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = self.eth.warm_addresses().clone();
            self.warm.insert(ADDRESS);
        }
        changed
    }

    fn run(
        &mut self,
        ctx: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address != ADDRESS {
            return self.eth.run(ctx, inputs);
        }
        let input = inputs.input.as_bytes(ctx).to_vec();
        let mut gas = Gas::new(inputs.gas_limit);
        let (result, output) = match self.answer(&input) {
            Ok(out) => {
                let cost = INFERENCE_BASE_GAS + GAS_PER_BYTE * (input.len() + out.len()) as u64;
                if !gas.record_regular_cost(cost) {
                    gas.spend_all();
                    return Ok(Some(InterpreterResult::new(
                        InstructionResult::PrecompileOOG,
                        Bytes::new(),
                        gas,
                    )));
                }
                (InstructionResult::Return, Bytes::from(out))
            }
            Err(why) => {
                let cost = INFERENCE_BASE_GAS + GAS_PER_BYTE * input.len() as u64;
                if !gas.record_regular_cost(cost.min(inputs.gas_limit)) {
                    gas.spend_all();
                }
                (InstructionResult::Revert, revert_reason(&why))
            }
        };
        Ok(Some(InterpreterResult::new(result, output, gas)))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        *address == ADDRESS || self.eth.contains(address)
    }
}
