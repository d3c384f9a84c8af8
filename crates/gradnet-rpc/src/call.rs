//! `eth_call`, `eth_estimateGas` and `eth_createAccessList`: a call on the
//! state at any kept block, with geth's state overrides (balance, nonce,
//! code, full `state` or `stateDiff`) and block overrides. An override this
//! node cannot apply is refused by name, never ignored.

use std::collections::BTreeMap;

use alloy_primitives::{Address, Bytes, TxKind, B256, U128, U256, U64};
use revm::context::result::{ExecutionResult, ResultAndState};
use revm::context::TxEnv;
use revm::inspector::NoOpInspector;
use revm::primitives::KECCAK_EMPTY;
use revm::state::AccountInfo;
use serde::Deserialize;
use serde_json::{json, Value};

use super::eth::{block_number, param};
use super::format::q;
use super::RpcError;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::replay::{self, BlockOverrides, Run};
use gradnet_ledger::state::{Diff, StateReader};

/// Gas one call may use, whatever it asks (as geth's `--rpc.gascap`): it
/// bounds the time a call can take.
pub(super) const RPC_GAS_CAP: u64 = 50_000_000;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct CallRequest {
    pub from: Option<Address>,
    pub to: Option<Address>,
    pub gas: Option<U64>,
    pub gas_price: Option<U128>,
    pub max_fee_per_gas: Option<U128>,
    pub max_priority_fee_per_gas: Option<U128>,
    pub value: Option<U256>,
    pub data: Option<Bytes>,
    pub input: Option<Bytes>,
    pub nonce: Option<U64>,
    pub chain_id: Option<U64>,
    #[serde(rename = "type")]
    pub tx_type: Option<U64>,
    pub access_list: Option<alloy_eip2930::AccessList>,
    /// Blob transactions are not accepted by this chain.
    pub blob_versioned_hashes: Option<Value>,
    pub max_fee_per_blob_gas: Option<Value>,
}

impl CallRequest {
    pub(super) fn env(&self, gas_limit: u64, chain_id: u64) -> Result<TxEnv, RpcError> {
        if self.blob_versioned_hashes.is_some() || self.max_fee_per_blob_gas.is_some() {
            return Err(RpcError::invalid_params(
                "blob transactions are not supported on this chain",
            ));
        }
        if let Some(c) = self.chain_id {
            if c.to::<u64>() != chain_id {
                return Err(RpcError::invalid_params(format!(
                    "invalid chain id {c} for signer: this chain is {chain_id}"
                )));
            }
        }
        let declared = match self.tx_type.map(|t| t.to::<u64>()) {
            None => None,
            Some(t @ 0..=2) => Some(t as u8),
            Some(3) => {
                return Err(RpcError::invalid_params(
                    "blob transactions are not supported on this chain",
                ))
            }
            Some(t) => {
                return Err(RpcError::invalid_params(format!(
                "transaction type {t} is not supported (this chain runs Cancun: types 0, 1 and 2)"
            )))
            }
        };
        let price = self
            .max_fee_per_gas
            .or(self.gas_price)
            .map_or(0, |p| p.to::<u128>());
        let mut env = TxEnv {
            tx_type: if let Some(t) = declared {
                t
            } else if self.max_fee_per_gas.is_some() {
                2
            } else if self.access_list.is_some() {
                1
            } else {
                0
            },
            caller: self.from.unwrap_or_default(),
            gas_limit: self
                .gas
                .map_or(gas_limit, |g| g.saturating_to::<u64>())
                .min(RPC_GAS_CAP),
            gas_price: price,
            gas_priority_fee: self.max_priority_fee_per_gas.map(|p| p.to::<u128>()),
            kind: self.to.map_or(TxKind::Create, TxKind::Call),
            value: self.value.unwrap_or_default(),
            data: self
                .input
                .clone()
                .or_else(|| self.data.clone())
                .unwrap_or_default(),
            nonce: self.nonce.map_or(0, |n| n.to::<u64>()),
            chain_id: Some(chain_id),
            ..Default::default()
        };
        if let Some(list) = &self.access_list {
            env.access_list = list.clone();
        }
        Ok(env)
    }
}

/// One account's override (geth's `OverrideAccount`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountOverride {
    balance: Option<U256>,
    nonce: Option<U64>,
    code: Option<Bytes>,
    /// The whole storage: every other slot reads zero.
    state: Option<BTreeMap<B256, B256>>,
    /// Slots changed, the rest as stored.
    state_diff: Option<BTreeMap<B256, B256>>,
    move_precompile_to_address: Option<Address>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BlockOverridesJson {
    number: Option<U64>,
    time: Option<U64>,
    gas_limit: Option<U64>,
    fee_recipient: Option<Address>,
    coinbase: Option<Address>,
    prev_randao: Option<B256>,
    random: Option<B256>,
    base_fee_per_gas: Option<U64>,
    base_fee: Option<U64>,
    difficulty: Option<Value>,
    blob_base_fee: Option<Value>,
}

/// geth's state overrides as the changes a call starts from.
fn state_overrides(state: &StateReader, v: Option<&Value>) -> Result<Diff, RpcError> {
    let mut diff = Diff::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(diff);
    };
    let all: BTreeMap<Address, AccountOverride> = serde_json::from_value(v.clone())
        .map_err(|e| RpcError::invalid_params(format!("invalid state override: {e}")))?;
    for (addr, o) in all {
        if o.move_precompile_to_address.is_some() {
            return Err(RpcError::invalid_params(format!(
                "state override for {addr}: movePrecompileToAddress is not supported"
            )));
        }
        if o.state.is_some() && o.state_diff.is_some() {
            return Err(RpcError::invalid_params(format!(
                "state override for {addr}: has both 'state' and 'stateDiff'"
            )));
        }
        let mut info: AccountInfo = state
            .account(&addr)
            .map_err(|e| RpcError::server(e.0))?
            .unwrap_or_default();
        if let Some(b) = o.balance {
            info.balance = b;
        }
        if let Some(n) = o.nonce {
            info.nonce = n.to::<u64>();
        }
        if let Some(code) = o.code {
            info.code_hash = if code.is_empty() {
                KECCAK_EMPTY
            } else {
                alloy_primitives::keccak256(&code)
            };
            diff.codes.insert(info.code_hash, code);
        }
        info.code = (info.code_hash == KECCAK_EMPTY).then(revm::bytecode::Bytecode::default);
        diff.accounts.insert(addr, Some(info));
        let slots = |m: BTreeMap<B256, B256>| -> BTreeMap<U256, U256> {
            m.into_iter()
                .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
                .collect()
        };
        if let Some(s) = o.state {
            diff.wiped.insert(addr);
            diff.storage.insert(addr, slots(s));
        } else if let Some(s) = o.state_diff {
            diff.storage.insert(addr, slots(s));
        }
    }
    Ok(diff)
}

fn block_overrides(v: Option<&Value>) -> Result<BlockOverrides, RpcError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(BlockOverrides::default());
    };
    let o: BlockOverridesJson = serde_json::from_value(v.clone())
        .map_err(|e| RpcError::invalid_params(format!("invalid block override: {e}")))?;
    if o.difficulty.is_some() {
        return Err(RpcError::invalid_params(
            "block override `difficulty` is not supported: blocks have no difficulty (use prevRandao)",
        ));
    }
    if o.blob_base_fee.is_some() {
        return Err(RpcError::invalid_params(
            "block override `blobBaseFee` is not supported: this chain carries no blobs",
        ));
    }
    Ok(BlockOverrides {
        number: o.number.map(|n| n.to()),
        timestamp: o.time.map(|n| n.to()),
        gas_limit: o.gas_limit.map(|n| n.to()),
        coinbase: o.fee_recipient.or(o.coinbase),
        prevrandao: o.prev_randao.or(o.random),
        base_fee: o.base_fee_per_gas.or(o.base_fee).map(|n| n.to()),
    })
}

/// What a call runs on: the state at a block, the state overrides on top,
/// the block it runs in.
pub(super) struct Prepared {
    pub state: StateReader,
    pub pre: Diff,
    pub block: revm::context::BlockEnv,
}

/// The state at the block `tag` names with the state and block overrides.
pub(super) fn prepare(
    chain: &Chain,
    tag: Option<&Value>,
    state_ov: Option<&Value>,
    block_ov: Option<&Value>,
    req: &CallRequest,
) -> Result<Prepared, RpcError> {
    let n = block_number(chain, tag)?;
    let state = chain.store.state_at(n)?;
    let header = chain
        .store
        .block(n)?
        .ok_or_else(|| RpcError::server(format!("header for block {n} not found")))?
        .header;
    let pre = state_overrides(&state, state_ov)?;
    let mut overrides = block_overrides(block_ov)?;
    if zero_price(req) && overrides.base_fee.is_none() {
        // a call that names no price pays none: run it at a zero base fee
        overrides.base_fee = Some(0);
    }
    let block = replay::call_block(&header, &overrides);
    Ok(Prepared { state, pre, block })
}

/// `[request, block, state overrides, block overrides]`, as `eth_call`,
/// `eth_estimateGas` and `eth_createAccessList` take them.
fn call_params(chain: &Chain, params: &[Value]) -> Result<(CallRequest, Prepared), RpcError> {
    let req: CallRequest = param(params, 0)?;
    let p = prepare(chain, params.get(1), params.get(2), params.get(3), &req)?;
    Ok((req, p))
}

/// Runs a call with `inspector` watching; `finish` reads the outcome.
pub(super) fn run_call<I, T>(
    chain: &Chain,
    p: &Prepared,
    req: &CallRequest,
    inspector: I,
    finish: impl FnOnce(
        &mut I,
        &ResultAndState,
        &TxEnv,
        &revm::context::BlockEnv,
        &gradnet_ledger::state::Overlay<'_>,
    ) -> T,
) -> Result<T, RpcError>
where
    I: for<'a> revm::Inspector<
        revm::context::Context<
            revm::context::BlockEnv,
            TxEnv,
            revm::context::CfgEnv,
            gradnet_ledger::state::Overlay<'a>,
            revm::Journal<gradnet_ledger::state::Overlay<'a>>,
        >,
    >,
{
    let env = req.env(p.block.gas_limit, chain.chain_id())?;
    let run = Run {
        state: &p.state,
        pre: p.pre.clone(),
        chain_id: chain.chain_id(),
        block: p.block.clone(),
        answers: chain.simulation_answers(),
        call: true,
    };
    Ok(replay::inspect(run, env, inspector, finish)?)
}

fn outcome(chain: &Chain, p: &Prepared, req: &CallRequest) -> Result<ExecutionResult, RpcError> {
    run_call(chain, p, req, NoOpInspector, |_, r, _, _, _| {
        r.result.clone()
    })
}

/// An `Error(string)` revert reason, when the data is one.
fn revert_reason(out: &[u8]) -> Option<String> {
    if out.len() < 68 || out[..4] != [0x08, 0xc3, 0x79, 0xa0] {
        return None;
    }
    let len = U256::from_be_slice(&out[36..68]).to::<usize>();
    let s = out.get(68..68 + len)?;
    String::from_utf8(s.to_vec()).ok()
}

pub(super) fn reverted(out: &Bytes) -> RpcError {
    let message = match revert_reason(out) {
        Some(r) => format!("execution reverted: {r}"),
        None => "execution reverted".into(),
    };
    RpcError {
        code: 3,
        message,
        data: Some(json!(out)),
    }
}

fn zero_price(req: &CallRequest) -> bool {
    req.gas_price.is_none() && req.max_fee_per_gas.is_none()
}

pub(super) fn eth_call(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let (req, p) = call_params(chain, params)?;
    match outcome(chain, &p, &req)? {
        ExecutionResult::Success { output, .. } => Ok(json!(output.into_data())),
        ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            Err(RpcError::server(format!("execution halted: {reason:?}")))
        }
    }
}

pub(super) fn estimate_gas(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let (mut req, p) = call_params(chain, params)?;
    let cap = req
        .gas
        .map_or(p.block.gas_limit, |g| g.saturating_to::<u64>())
        .min(RPC_GAS_CAP);
    req.gas = Some(U64::from(cap));
    let used = match outcome(chain, &p, &req)? {
        ExecutionResult::Success { gas, .. } => gas.tx_gas_used(),
        ExecutionResult::Revert { output, .. } => return Err(reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            return Err(RpcError::server(format!(
                "gas required exceeds allowance ({cap}): {reason:?}"
            )))
        }
    };
    // the least gas limit that still succeeds (refunds and the 63/64 rule
    // make it more than the gas used)
    let (mut lo, mut hi) = (used.saturating_sub(1), cap);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        req.gas = Some(U64::from(mid));
        match outcome(chain, &p, &req) {
            Ok(ExecutionResult::Success { .. }) => hi = mid,
            _ => lo = mid,
        }
    }
    Ok(json!(q(hi)))
}

/// `eth_createAccessList`: the addresses and slots the call touches (the
/// sender, the recipient and precompiles left out, as geth does), and the
/// gas the call uses with that list; run again until the list is stable.
pub(super) fn create_access_list(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    use revm_inspectors::access_list::AccessListInspector;
    let (mut req, p) = call_params(chain, params)?;
    let from = req.from.unwrap_or_default();
    let to = req.to.unwrap_or_else(|| {
        let nonce = p.state.account(&from).ok().flatten().map_or(0, |a| a.nonce);
        from.create(nonce)
    });
    let precompiles = gradnet_inference::precompile::Precompiles::new(
        gradnet_ledger::exec::SPEC,
        gradnet_inference::precompile::ResultSource::Unavailable,
    );
    let excluded: Vec<Address> = [from, to]
        .into_iter()
        .chain(precompiles.addresses())
        .collect();
    let mut list = req.access_list.clone().unwrap_or_default();
    for _ in 0..3 {
        req.access_list = Some(list.clone());
        let inspector = AccessListInspector::new(list.clone());
        let (next, result) = run_call(chain, &p, &req, inspector, |i, r, _, _, _| {
            (std::mem::take(i).into_access_list(), r.result.clone())
        })?;
        let next = alloy_eip2930::AccessList(
            next.0
                .into_iter()
                .filter(|item| !excluded.contains(&item.address))
                .collect(),
        );
        let gas = result.tx_gas_used();
        let error = match &result {
            ExecutionResult::Success { .. } => None,
            ExecutionResult::Revert { output, .. } => Some(reverted(output).message),
            ExecutionResult::Halt { reason, .. } => Some(format!("execution halted: {reason:?}")),
        };
        if next == list {
            let mut out = json!({"accessList": next, "gasUsed": q(gas)});
            if let Some(e) = error {
                out["error"] = json!(e);
            }
            return Ok(out);
        }
        list = next;
    }
    Ok(json!({"accessList": list, "gasUsed": q(0)}))
}
