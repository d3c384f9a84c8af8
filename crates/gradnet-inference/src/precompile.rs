//! The inference precompile at `0x…F4` and the registry at `0x…F5`, next
//! to Ethereum's own.
//!
//! Gas: `INFERENCE_BASE_GAS + INFERENCE_GAS_PER_NODE * quorum + 16 *
//! (calldata bytes + result bytes)`: what validators spend on a call (one
//! signature check per node, like `ecrecover`'s 3,000) and the per-byte
//! price of calldata applied to both directions. The model's own compute
//! is paid by the inference fee, not gas.
//!
//! Fee: `INFERENCE_FEE` per node of the call's quorum, taken from the
//! transaction's sender into the registry and credited to the agreeing
//! nodes (withdrawn with `IInferenceRegistry.withdraw`). A call that
//! reverts pays no fee. The sender must hold the fee or the call reverts.
//!
//! Modes (the request's `uint8 mode`): 0 VANILLA (one node), 1 ZKML (one
//! node proves its output; every validator checks the proof, see `zk`),
//! 2 TEE (one node whose signing key is an active, approved enclave in
//! the TEE registry at `0x…F8`), 3 QUORUM (three nodes must agree); `3 | n << 4` asks QUORUM of
//! `n` nodes (1..=15). A ZKML result also costs its proof's check
//! (`zk::verify_gas`).
//!
//! In `eth_call` / `eth_estimateGas` the node runs the model itself and the
//! output says `is_simulation_result = true`. Inside a block, results come
//! from inference nodes through the block's sidecar (PIPE).

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{address, Address, Bytes, Log, B256, U256};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolInterface, SolValue};
use gradnet_types::tensor::NamedTensors;
use gradnet_types::InferenceMode;
use revm::context::Cfg;
use revm::context_interface::{ContextTr, JournalTr, Transaction};
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, Gas, InstructionResult, InterpreterResult};
use revm::primitives::AddressSet;

use crate::abi::{
    input_json, model_output, InferencePrecompile::InferencePrecompileCalls as Call,
    LLMChatRequest, LLMChatResponse, LLMCompletionRequest, LLMCompletionResponse, ModelInput,
};
use crate::error::{StorageFault, SystemError};
use crate::mode::Mode;
use crate::model_registry;
use crate::registry::{self, IInferenceRegistry, Registry, INFERENCE_FEE};
use crate::revert;
use crate::scheduler;
use crate::sidecar::{self, Decision, RegistryView, ServedCall};
use crate::slots::JournalSlots;
use crate::tee_registry;
use crate::zk;

/// The inference precompile (OpenGradient's address).
pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F4");
/// Gas of any inference call.
pub const INFERENCE_BASE_GAS: u64 = 10_000;
/// Gas per node the call is served by.
pub const INFERENCE_GAS_PER_NODE: u64 = 3_000;
/// Gas per byte of input and output.
pub const GAS_PER_BYTE: u64 = 16;

/// Runs models for the precompile (the node's runtime and hub).
pub trait Inferencer: Send + Sync {
    /// Takes one place in the node's queue for a batch of calls (a PIPE
    /// request): the calls of the returned inferencer run under it, waiting
    /// for workers. A full queue refuses the whole batch with the reason.
    fn admit(self: Arc<Self>) -> Result<Arc<dyn Inferencer>, String>;
    /// Runs an ONNX model on inputs in gradnet's fixed-point JSON.
    fn run_model(&self, model: &str, inputs: &serde_json::Value) -> Result<NamedTensors, String>;
    /// An LLM completion.
    fn complete(&self, request: &LLMCompletionRequest) -> Result<LLMCompletionResponse, String>;
    /// An LLM chat answer.
    fn chat(&self, request: &LLMChatRequest) -> Result<LLMChatResponse, String>;
    /// ZKML: the circuit's output for the model's input and its proof
    /// (128 bytes), with the node's proving key for the model.
    fn zk_prove(&self, model: &str, input: &ModelInput) -> Result<(Vec<u8>, Vec<i64>), String> {
        let _ = input;
        Err(format!(
            "ZKML: this node holds no proving key for model {model}"
        ))
    }
}

/// A decoded call with what sampling needs to know about it.
pub struct Request {
    /// The decoded call.
    pub call: Call,
    /// Its mode.
    pub mode: Mode,
    /// The model it names.
    pub model: String,
}

/// Decodes a call to `0x…F4`; the error is its revert reason.
pub fn parse(calldata: &[u8]) -> Result<Request, String> {
    let call = Call::abi_decode(calldata)
        .map_err(|e| format!("inference precompile: malformed call: {e}"))?;
    let (raw, model) = match &call {
        Call::runModelInference(c) => (c.request.mode, c.request.modelCID.clone()),
        Call::runLLMCompletion(c) => (c.request.mode, c.request.modelCID.clone()),
        Call::runLLMChat(c) => (c.request.mode, c.request.modelCID.clone()),
    };
    let mode = match call {
        Call::runModelInference(_) => Mode::parse(raw),
        // LLM calls number their modes as OpenGradient's LLM enum does
        _ => Mode::parse_llm(raw),
    }
    .ok_or_else(|| match call {
        Call::runModelInference(_) => {
            format!("inference: unknown mode {raw} (models: 0 VANILLA, 1 ZKML, 2 TEE, 3 QUORUM)")
        }
        _ => format!("inference: unknown LLM mode {raw} (LLMs: 0 VANILLA, 1 TEE, 3 QUORUM)"),
    })?;
    Ok(Request { call, mode, model })
}

/// Runs a call on `inf`: its ABI-encoded return data or why it failed.
pub fn run_call(inf: &dyn Inferencer, call: &Call, simulation: bool) -> Result<Vec<u8>, String> {
    Ok(match call {
        Call::runModelInference(c) => {
            let r = &c.request;
            let out = inf.run_model(&r.modelCID, &input_json(&r.input))?;
            let out = model_output(&out, simulation)?;
            crate::abi::InferencePrecompile::runModelInferenceCall::abi_encode_returns(&out)
        }
        Call::runLLMCompletion(c) => inf.complete(&c.request)?.abi_encode(),
        Call::runLLMChat(c) => inf.chat(&c.request)?.abi_encode(),
    })
}

/// A call a proposer's pre-execution found without a served result.
#[derive(Debug, Clone)]
pub struct Miss {
    /// keccak of the calldata.
    pub request_hash: B256,
    /// The call as made.
    pub calldata: Bytes,
    /// Its mode.
    pub mode: Mode,
    /// The model it names.
    pub model: String,
}

/// What block execution records about inference calls.
#[derive(Debug, Default)]
pub struct Progress {
    /// Calls found without a result.
    pub misses: Vec<Miss>,
    /// Served calls execution used, with their quorum, in order.
    pub used: Vec<(B256, usize)>,
    /// ZKML results whose proof did not verify: their nodes are slashed.
    pub bad_proofs: Vec<(B256, sidecar::NodeResult)>,
    /// The calls behind served results used, by request hash: a validator
    /// asks the nodes a sidecar says missed them again before it votes.
    pub calls: HashMap<B256, Miss>,
}

/// ResultSource inside a block: from its sidecar.
pub struct BlockResults {
    /// The registry the sidecar is checked against.
    pub view: RegistryView,
    /// The sidecar's calls by request hash.
    pub served: HashMap<B256, ServedCall>,
    /// A proposer's pre-execution: a call without a result is recorded
    /// (and its transaction left out) rather than failing the block.
    pub record: bool,
    /// Recording only: a transaction whose call has no result yet is kept
    /// as if the call reverted, so that its sender's next transactions run
    /// and show their calls too (the block is built again once served).
    pub speculative: bool,
    /// Set while a scheduled task runs: a call without a result skips the
    /// task (in every mode) rather than failing the block.
    pub soft: std::sync::atomic::AtomicBool,
    /// What execution recorded.
    pub progress: parking_lot::Mutex<Progress>,
}

impl BlockResults {
    /// Results from `served`; `record`: a proposer's pre-execution.
    pub fn new(view: RegistryView, served: HashMap<B256, ServedCall>, record: bool) -> Arc<Self> {
        Arc::new(BlockResults {
            view,
            served,
            record,
            speculative: false,
            soft: Default::default(),
            progress: Default::default(),
        })
    }

    /// ResultSource for a pass that only discovers calls.
    pub fn speculative(view: RegistryView, served: HashMap<B256, ServedCall>) -> Arc<Self> {
        Arc::new(BlockResults {
            view,
            served,
            record: true,
            speculative: true,
            soft: Default::default(),
            progress: Default::default(),
        })
    }
}

/// Where answers to calls come from.
#[derive(Clone)]
pub enum ResultSource {
    /// `eth_call` / `eth_estimateGas`: the node runs the model.
    Simulate(Arc<dyn Inferencer>),
    /// Block execution: the sidecar's results.
    Block(Arc<BlockResults>),
    /// `eth_call` on a node that runs no models: calls revert.
    Unavailable,
}

/// Ethereum's precompiles plus the inference precompile and the registry.
#[derive(Clone)]
pub struct Precompiles {
    eth: EthPrecompiles,
    warm: AddressSet,
    results: ResultSource,
}

fn revert_reason(reason: &str) -> Bytes {
    alloy_sol_types::Revert::from(reason).abi_encode().into()
}

/// What a call to the inference precompile gives the EVM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResult {
    /// The call's return data.
    Return(Vec<u8>),
    /// The call reverts with this reason: the caller's problem (a fee it
    /// cannot pay, a model that does not exist, a call not yet served).
    Revert(String),
}

/// Why a block cannot be executed at all: its sidecar does not hold (a
/// result missing or forged, a node that was not sampled), or the state
/// could not be read. Distinct from a revert, which a valid block may hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BlockFault(pub String);

impl From<String> for BlockFault {
    fn from(why: String) -> Self {
        BlockFault(why)
    }
}

impl From<StorageFault> for BlockFault {
    fn from(f: StorageFault) -> Self {
        BlockFault(f.to_string())
    }
}

/// A system contract's error where the block expects none: a revert there
/// means the sidecar or the state does not hold.
impl From<SystemError> for BlockFault {
    fn from(e: SystemError) -> Self {
        BlockFault(e.to_string())
    }
}

impl Precompiles {
    /// Ethereum's precompiles for `spec` and gradnet's system contracts.
    pub fn new(spec: revm::primitives::hardfork::SpecId, results: ResultSource) -> Self {
        let eth = EthPrecompiles::new(spec);
        let mut warm = eth.warm_addresses().clone();
        warm.insert(ADDRESS);
        warm.insert(registry::ADDRESS);
        warm.insert(scheduler::ADDRESS);
        warm.insert(zk::VERIFIER_ADDRESS);
        warm.insert(tee_registry::ADDRESS);
        warm.insert(model_registry::ADDRESS);
        warm.insert(gradnet_types::payments::ESCROW);
        Precompiles { eth, warm, results }
    }

    /// Every address answered natively: Ethereum's precompiles and
    /// gradnet's system contracts (left out of access lists, as geth does).
    pub fn addresses(&self) -> impl Iterator<Item = Address> + '_ {
        self.warm.iter().copied()
    }

    /// A ZKML outcome checked against the model's key and the call's
    /// quantized input: the result's ABI encoding, or why the node's
    /// answer is refused (its fault).
    fn zk_result(
        vk: &gradnet_zk::VerifyingKey,
        x: &[i64],
        outcome: &[u8],
    ) -> Result<Vec<u8>, String> {
        let (proof, y) = zk::parse_outcome(outcome).ok_or("ZKML: malformed outcome")?;
        zk::check(vk, x, &y, proof)?;
        Ok(
            crate::abi::InferencePrecompile::runModelInferenceCall::abi_encode_returns(
                &zk::model_output(vk, &y),
            ),
        )
    }

    /// A call to `0x…F4`: decoded, its fee checked, its result taken from
    /// where this execution gets results (the node's runtime or the
    /// block's sidecar), and the fee settled.
    fn answer<CTX: ContextTr>(
        &self,
        ctx: &mut CTX,
        input: &[u8],
    ) -> Result<CallResult, BlockFault> {
        use CallResult::Revert;
        let req = match parse(input) {
            Ok(r) => r,
            Err(why) => return Ok(Revert(why)),
        };
        let origin = ctx.tx().caller();
        // a simulated call without a sender (eth_call with no `from`) pays nothing
        let free = matches!(self.results, ResultSource::Simulate(_)) && origin == Address::ZERO;
        if let Some(why) = check_fee(ctx, origin, &req, free)? {
            return Ok(Revert(why));
        }
        // a ZKML call needs a registered key and an input it can quantize,
        // before any node is asked
        let zk_input = match zk_input(ctx, &req) {
            Ok(v) => v,
            Err(SystemError::Revert(why)) => return Ok(Revert(why)),
            Err(SystemError::Storage(f)) => return Err(f.into()),
        };
        let (out, paid) = match &self.results {
            ResultSource::Simulate(inf) => match run_call(inf.as_ref(), &req.call, true) {
                Ok(out) => (out, vec![]),
                Err(why) => return Ok(Revert(why)),
            },
            ResultSource::Block(b) => match from_sidecar(ctx, b, input, &req, zk_input)? {
                Served::Result(out, paid) => (out, paid),
                Served::Revert(why) => return Ok(Revert(why)),
            },
            ResultSource::Unavailable => {
                return Ok(Revert("inference: this node does not run models".into()))
            }
        };
        Ok(match settle(ctx, origin, &req, free, paid, input)? {
            None => CallResult::Return(out),
            Some(why) => Revert(why),
        })
    }
}

/// A ZKML call's verifying key and quantized input.
type ZkInput = (Arc<gradnet_zk::VerifyingKey>, Vec<i64>);

/// What the sidecar gives a call: its output and the nodes to pay, or a
/// revert.
enum Served {
    Result(Vec<u8>, Vec<Address>),
    Revert(String),
}

/// Why the caller cannot pay the call's fee (its quorum's worth), if so.
fn check_fee<CTX: ContextTr>(
    ctx: &mut CTX,
    origin: Address,
    req: &Request,
    free: bool,
) -> Result<Option<String>, BlockFault> {
    let fee = INFERENCE_FEE * U256::from(req.mode.quorum);
    let balance = ctx
        .journal_mut()
        .load_account(origin)
        .map_err(|e| e.to_string())?
        .info
        .balance;
    Ok((balance < fee && !free).then(|| {
        format!(
            "inference fee: {origin} holds {balance} wei, the call needs {fee} wei ({} node(s) at {INFERENCE_FEE} wei)",
            req.mode.quorum
        )
    }))
}

/// A ZKML call's verifying key and quantized input (other calls: none);
/// the error is the call's revert reason.
fn zk_input<CTX: ContextTr>(ctx: &mut CTX, req: &Request) -> Result<Option<ZkInput>, SystemError> {
    let Call::runModelInference(c) = &req.call else {
        return Ok(None);
    };
    if req.mode.kind != InferenceMode::Zkml {
        return Ok(None);
    }
    let vk = zk_key(ctx, &req.model)?;
    let x = zk::quantize_input(&c.request.input, vk.frac_bits)?;
    if x.len() != vk.inputs {
        return Err(revert!(
            "ZKML: the input has {} values, model {} takes {}",
            x.len(),
            req.model,
            vk.inputs
        ));
    }
    Ok(Some((vk, x)))
}

/// The call's result from the block's sidecar: checked against the
/// registry (a sidecar that does not hold is a [`BlockFault`]), decided
/// (majority, proof or attestation), and recorded as used. A call the
/// sidecar lacks is a miss while the proposer builds, a fault otherwise.
fn from_sidecar<CTX: ContextTr>(
    ctx: &mut CTX,
    b: &BlockResults,
    input: &[u8],
    req: &Request,
    zk_input: Option<ZkInput>,
) -> Result<Served, BlockFault> {
    let rh = sidecar::request_hash(input);
    let Some(served) = b.served.get(&rh) else {
        if !b.record {
            return Err(BlockFault(format!(
                "the block's sidecar has no result for inference call {rh}"
            )));
        }
        b.progress.lock().misses.push(Miss {
            request_hash: rh,
            calldata: Bytes::copy_from_slice(input),
            mode: req.mode,
            model: req.model.clone(),
        });
        return Ok(Served::Revert("inference: pending".into()));
    };
    sidecar::check(served, &b.view, req.mode, &req.model)?;
    {
        let mut p = b.progress.lock();
        p.used.push((rh, req.mode.quorum));
        p.calls.entry(rh).or_insert_with(|| Miss {
            request_hash: rh,
            calldata: Bytes::copy_from_slice(input),
            mode: req.mode,
            model: req.model.clone(),
        });
    }
    Ok(match sidecar::decide(served, req.mode.quorum) {
        Decision::Agreed {
            outcome,
            agreeing,
            majority,
            ..
        } if zk_input.is_some() && !outcome.starts_with(&[1]) => {
            // only a proof (or a signed refusal) answers a ZKML call
            let (vk, x) = zk_input.as_ref().expect("checked");
            match Precompiles::zk_result(vk, x, &outcome) {
                Ok(out) => Served::Result(out, agreeing),
                Err(why) => {
                    b.progress.lock().bad_proofs.push((rh, majority));
                    Served::Revert(format!("{why} (node {})", agreeing[0]))
                }
            }
        }
        Decision::Agreed {
            outcome, agreeing, ..
        } => match sidecar::outcome_result(&outcome) {
            Ok(out) if req.mode.kind == InferenceMode::Tee => {
                let out = mark_dev_enclave(ctx, &b.view, &agreeing[0], out)?;
                Served::Result(out, agreeing)
            }
            Ok(out) => Served::Result(out, agreeing.into_iter().take(req.mode.quorum).collect()),
            Err(why) => Served::Revert(why),
        },
        Decision::Unserved(why) => Served::Revert(why),
    })
}

/// Takes the fee from the caller to the registry (the quorum's worth when
/// simulating, the agreeing nodes' in a block), credits the nodes paid and
/// logs the settlement; a transfer that fails reverts the call (the
/// reason returned).
fn settle<CTX: ContextTr>(
    ctx: &mut CTX,
    origin: Address,
    req: &Request,
    free: bool,
    paid: Vec<Address>,
    input: &[u8],
) -> Result<Option<String>, BlockFault> {
    let charged = if free {
        U256::ZERO
    } else if paid.is_empty() {
        INFERENCE_FEE * U256::from(req.mode.quorum)
    } else {
        INFERENCE_FEE * U256::from(paid.len())
    };
    let j = ctx.journal_mut();
    if let Some(e) = j
        .transfer(origin, registry::ADDRESS, charged)
        .map_err(|e| e.to_string())?
    {
        return Ok(Some(format!("inference fee: transfer failed: {e:?}")));
    }
    let mut reg = Registry(JournalSlots {
        journal: &mut *j,
        account: registry::ADDRESS,
    });
    for node in &paid {
        reg.credit(node, INFERENCE_FEE)?;
    }
    if !paid.is_empty() {
        j.log(Log {
            address: registry::ADDRESS,
            data: IInferenceRegistry::InferenceSettled {
                requestHash: sidecar::request_hash(input),
                mode: req.mode.code(),
                nodes: paid,
                fee: charged,
            }
            .encode_log_data(),
        });
    }
    Ok(None)
}

/// A TEE result served by a dev enclave says so: the output's `jsons`
/// gain `{"name": "tee", "value": "dev-enclave"}` (set here, by every
/// validator, from the registry: not the node's choice).
fn mark_dev_enclave<CTX: ContextTr>(
    ctx: &mut CTX,
    view: &RegistryView,
    node: &Address,
    out: Vec<u8>,
) -> Result<Vec<u8>, SystemError> {
    let Some(n) = view.node(node) else {
        return Ok(out);
    };
    let dev = tee_registry::TeeRegistry(JournalSlots {
        journal: ctx.journal_mut(),
        account: registry::ADDRESS,
    })
    .get(&tee_registry::tee_id(n.signing_key.as_slice()))?
    .is_some_and(|t| t.dev);
    if !dev {
        return Ok(out);
    }
    let Ok(mut o) =
        crate::abi::InferencePrecompile::runModelInferenceCall::abi_decode_returns(&out)
    else {
        return Ok(out);
    };
    // every `jsons` value is JSON (OpenGradient's SDK parses each one)
    o.jsons.push(crate::abi::JsonScalar {
        name: "tee".into(),
        value: DEV_ENCLAVE_JSON.into(),
    });
    Ok(crate::abi::InferencePrecompile::runModelInferenceCall::abi_encode_returns(&o))
}

/// OpenGradient's price-feed call at `0x…F5`,
/// `runInferenceOnPriceFeed(string,string,(string,string,uint32,uint32,uint8,uint8[]))`,
/// which its workflow contracts make: gradnet has no market data source.
pub const PRICE_FEED_SELECTOR: [u8; 4] = [0xa1, 0x92, 0xa0, 0xf9];
/// Why it is refused.
pub const PRICE_FEED_REFUSAL: &str = "price feeds are not served on gradnet: 0x…F5 is the inference node registry and no market data source exists on chain; a workflow reads its inputs from its own state (see the scheduler at 0x…f6)";

/// What a TEE answer from a dev enclave (not a real one) carries in `jsons`.
pub const DEV_ENCLAVE_JSON: &str =
    r#"{"enclave":"dev","attested_by":"a dev root this genesis pins (not a real enclave)"}"#;

/// The verifying key the registry holds for `model`.
fn zk_key<CTX: ContextTr>(
    ctx: &mut CTX,
    model: &str,
) -> Result<Arc<gradnet_zk::VerifyingKey>, SystemError> {
    let mut reg = Registry(JournalSlots {
        journal: ctx.journal_mut(),
        account: registry::ADDRESS,
    });
    let (bytes, _) = reg
        .zk_model(model)?
        .ok_or_else(|| revert!("ZKML: no verifying key registered for model {model}"))?;
    Ok(zk::key(&bytes)?)
}

fn result(
    ok: Result<(Vec<u8>, u64), SystemError>,
    input_len: usize,
    gas_limit: u64,
    cost_of: impl Fn(usize, usize) -> u64,
) -> Result<InterpreterResult, StorageFault> {
    let mut gas = Gas::new(gas_limit);
    let (r, out) = match ok {
        Ok((out, cost)) => {
            if !gas.record_regular_cost(cost.max(cost_of(input_len, out.len()))) {
                gas.spend_all();
                return Ok(InterpreterResult::new(
                    InstructionResult::PrecompileOOG,
                    Bytes::new(),
                    gas,
                ));
            }
            (InstructionResult::Return, Bytes::from(out))
        }
        Err(e) => {
            let why = e.revert_reason()?;
            if !gas.record_regular_cost(cost_of(input_len, 0).min(gas_limit)) {
                gas.spend_all();
            }
            (InstructionResult::Revert, revert_reason(&why))
        }
    };
    Ok(InterpreterResult::new(r, out, gas))
}

/// A storage fault stops the transaction's execution (revm's fatal
/// error), so that it is never written into a block as a revert.
fn fatal(r: Result<InterpreterResult, StorageFault>) -> Result<Option<InterpreterResult>, String> {
    r.map(Some).map_err(|f| f.to_string())
}

/// The gas of a call with `quorum` nodes.
pub fn inference_gas(quorum: usize, input: usize, output: usize) -> u64 {
    INFERENCE_BASE_GAS
        + INFERENCE_GAS_PER_NODE * quorum as u64
        + GAS_PER_BYTE * (input + output) as u64
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for Precompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = self.eth.warm_addresses().clone();
            self.warm.insert(ADDRESS);
            self.warm.insert(registry::ADDRESS);
            self.warm.insert(scheduler::ADDRESS);
            self.warm.insert(zk::VERIFIER_ADDRESS);
            self.warm.insert(tee_registry::ADDRESS);
            self.warm.insert(model_registry::ADDRESS);
            self.warm.insert(gradnet_types::payments::ESCROW);
        }
        changed
    }

    fn run(
        &mut self,
        ctx: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address == registry::ADDRESS {
            let len = inputs.input.len();
            if inputs.input.as_bytes(ctx).starts_with(&PRICE_FEED_SELECTOR) {
                return fatal(result(
                    Err(revert!("{PRICE_FEED_REFUSAL}")),
                    len,
                    inputs.gas_limit,
                    |_, _| registry::REGISTRY_READ_GAS,
                ));
            }
            let r = if crate::prices::is_prices_call(&inputs.input.as_bytes(ctx)) {
                crate::prices::call(ctx, inputs)
            } else {
                registry::call(ctx, inputs)
            };
            return fatal(result(r, len, inputs.gas_limit, |_, _| {
                registry::REGISTRY_READ_GAS
            }));
        }
        if inputs.bytecode_address == scheduler::ADDRESS {
            let len = inputs.input.len();
            let r = scheduler::call(ctx, inputs);
            return fatal(result(r, len, inputs.gas_limit, |_, _| {
                scheduler::SCHEDULER_GAS
            }));
        }
        if inputs.bytecode_address == tee_registry::ADDRESS {
            let len = inputs.input.len();
            let r = tee_registry::call(ctx, inputs);
            return fatal(result(r, len, inputs.gas_limit, |_, _| {
                registry::REGISTRY_READ_GAS
            }));
        }
        if inputs.bytecode_address == model_registry::ADDRESS {
            let len = inputs.input.len();
            let r = model_registry::call(ctx, inputs);
            return fatal(result(r, len, inputs.gas_limit, |_, _| {
                registry::REGISTRY_READ_GAS
            }));
        }
        if inputs.bytecode_address == gradnet_types::payments::ESCROW {
            let len = inputs.input.len();
            let r = crate::escrow::call(ctx, inputs);
            return fatal(result(r, len, inputs.gas_limit, |_, _| {
                registry::REGISTRY_READ_GAS
            }));
        }
        if inputs.bytecode_address == zk::VERIFIER_ADDRESS {
            let input = inputs.input.as_bytes(ctx).to_vec();
            let r = zk::verifier_call(&input, |model| {
                let mut reg = Registry(JournalSlots {
                    journal: ctx.journal_mut(),
                    account: registry::ADDRESS,
                });
                Ok(reg.zk_model(model)?.map(|(bytes, _)| bytes))
            });
            return fatal(result(r, input.len(), inputs.gas_limit, |_, _| {
                zk::VERIFY_BASE_GAS
            }));
        }
        if inputs.bytecode_address != ADDRESS {
            return self.eth.run(ctx, inputs);
        }
        let input = inputs.input.as_bytes(ctx).to_vec();
        let mode = parse(&input).ok().map(|r| r.mode);
        let quorum = mode.map_or(1, |m| m.quorum);
        let answer = self.answer(ctx, &input).map_err(|f| f.0)?;
        // a ZKML result costs its proof's check
        let extra = match (&answer, mode) {
            (CallResult::Return(_), Some(m)) if m.kind == InferenceMode::Zkml => {
                let model = parse(&input).map(|r| r.model).unwrap_or_default();
                zk_key(ctx, &model).map_or(0, |vk| zk::verify_gas(&vk))
            }
            _ => 0,
        };
        let answer = match answer {
            CallResult::Return(out) => Ok((out, 0)),
            CallResult::Revert(why) => Err(SystemError::Revert(why)),
        };
        fatal(result(answer, input.len(), inputs.gas_limit, |i, o| {
            inference_gas(quorum, i, o) + extra
        }))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        *address == ADDRESS
            || *address == registry::ADDRESS
            || *address == scheduler::ADDRESS
            || *address == zk::VERIFIER_ADDRESS
            || *address == tee_registry::ADDRESS
            || *address == model_registry::ADDRESS
            || *address == gradnet_types::payments::ESCROW
            || self.eth.contains(address)
    }
}
