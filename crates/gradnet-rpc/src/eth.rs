//! The `eth_`, `net_` and `web3_` methods.

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, Bytes, TxKind, B256, U128, U256, U64};
use revm::context::result::ExecutionResult;
use revm::context::TxEnv;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::format::{self, q, q128};
use super::RpcError;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::exec;

/// Tip suggested to wallets, in wei (1 gwei, as anvil and geth's dev mode).
const SUGGESTED_TIP: u128 = 1_000_000_000;
/// Blocks one `eth_getLogs` may scan.
const MAX_LOG_RANGE: u64 = 10_000;
/// Logs one `eth_getLogs` may return.
const MAX_LOGS: usize = 10_000;
/// Gas one `eth_call` / `eth_estimateGas` may use, whatever it asks (as
/// geth's `--rpc.gascap`): it bounds the time a call can take.
const RPC_GAS_CAP: u64 = 50_000_000;

pub(super) fn param<T: DeserializeOwned>(params: &[Value], i: usize) -> Result<T, RpcError> {
    let v = params.get(i).cloned().unwrap_or(Value::Null);
    serde_json::from_value(v)
        .map_err(|e| RpcError::invalid_params(format!("invalid argument {i}: {e}")))
}

pub(super) fn opt_param<T: DeserializeOwned>(
    params: &[Value],
    i: usize,
) -> Result<Option<T>, RpcError> {
    match params.get(i) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => param(params, i).map(Some),
    }
}

/// A block named by tag or number; resolves to a committed number.
pub(super) fn block_number(chain: &Chain, tag: Option<&Value>) -> Result<u64, RpcError> {
    let head = chain.head().number;
    match tag {
        None | Some(Value::Null) => Ok(head),
        Some(Value::String(s)) => match s.as_str() {
            "latest" | "pending" | "safe" | "finalized" => Ok(head),
            "earliest" => Ok(0),
            hex => {
                let n = hex
                    .strip_prefix("0x")
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!("invalid block number or tag `{hex}`"))
                    })?;
                Ok(n)
            }
        },
        Some(Value::Object(o)) => {
            if let Some(h) = o.get("blockHash") {
                let h: B256 = serde_json::from_value(h.clone())
                    .map_err(|e| RpcError::invalid_params(format!("invalid blockHash: {e}")))?;
                return chain
                    .store
                    .block_number(&h)?
                    .ok_or_else(|| RpcError::server(format!("header for hash {h} not found")));
            }
            block_number(chain, o.get("blockNumber"))
        }
        Some(v) => Err(RpcError::invalid_params(format!(
            "invalid block number or tag {v}"
        ))),
    }
}

/// State is kept for the head only: older blocks' state is refused plainly.
fn at_head(chain: &Chain, tag: Option<&Value>) -> Result<(), RpcError> {
    let n = block_number(chain, tag)?;
    let head = chain.head().number;
    if n > head {
        return Err(RpcError::server(format!("header for block {n} not found")));
    }
    if n != head {
        return Err(RpcError::server(format!(
            "historical state is not available (block {n}; this node keeps the state at its head, {head})"
        )));
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CallRequest {
    from: Option<Address>,
    to: Option<Address>,
    gas: Option<U64>,
    gas_price: Option<U128>,
    max_fee_per_gas: Option<U128>,
    max_priority_fee_per_gas: Option<U128>,
    value: Option<U256>,
    data: Option<Bytes>,
    input: Option<Bytes>,
    nonce: Option<U64>,
}

impl CallRequest {
    fn env(&self, gas_limit: u64) -> TxEnv {
        let price = self
            .max_fee_per_gas
            .or(self.gas_price)
            .map_or(0, |p| p.to::<u128>());
        TxEnv {
            tx_type: if self.max_fee_per_gas.is_some() { 2 } else { 0 },
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
            ..Default::default()
        }
    }
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

fn reverted(out: &Bytes) -> RpcError {
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

fn simulate(chain: &Chain, req: &CallRequest) -> Result<ExecutionResult, RpcError> {
    let head = chain.head();
    let mut env = req.env(head.gas_limit);
    env.chain_id = Some(chain.chain_id());
    let mut parent = head.clone();
    if env.gas_price == 0 {
        // a call that names no price pays none: run it at a zero base fee
        parent.base_fee = 0;
        parent.gas_used = parent.gas_limit / 2;
    }
    let state = chain.store.state()?;
    Ok(exec::simulate(
        &state,
        chain.chain_id(),
        &parent,
        env,
        chain.simulation_answers(),
    )?)
}

fn eth_call(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let req: CallRequest = param(params, 0)?;
    at_head(chain, params.get(1))?;
    match simulate(chain, &req)? {
        ExecutionResult::Success { output, .. } => Ok(json!(output.into_data())),
        ExecutionResult::Revert { output, .. } => Err(reverted(&output)),
        ExecutionResult::Halt { reason, .. } => {
            Err(RpcError::server(format!("execution halted: {reason:?}")))
        }
    }
}

fn estimate_gas(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let mut req: CallRequest = param(params, 0)?;
    let cap = req
        .gas
        .map_or(chain.head().gas_limit, |g| g.saturating_to::<u64>())
        .min(RPC_GAS_CAP);
    req.gas = Some(U64::from(cap));
    let used = match simulate(chain, &req)? {
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
        match simulate(chain, &req) {
            Ok(ExecutionResult::Success { .. }) => hi = mid,
            _ => lo = mid,
        }
    }
    Ok(json!(q(hi)))
}

fn fee_history(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let count: Value = param(params, 0)?;
    let count = match &count {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok()),
        _ => None,
    }
    .ok_or_else(|| RpcError::invalid_params("invalid argument 0: block count"))?
    .clamp(1, 1024);
    let newest = block_number(chain, params.get(1))?.min(chain.head().number);
    let percentiles: Vec<f64> = opt_param(params, 2)?.unwrap_or_default();
    let oldest = newest.saturating_sub(count - 1);
    let (mut base, mut ratio, mut rewards) = (vec![], vec![], vec![]);
    for n in oldest..=newest {
        let b = chain
            .store
            .block(n)?
            .ok_or_else(|| RpcError::server("missing block"))?;
        let h = &b.header;
        base.push(q(h.base_fee));
        ratio.push(h.gas_used as f64 / h.gas_limit as f64);
        if !percentiles.is_empty() {
            let mut tips: Vec<(u128, u64)> = chain
                .store
                .receipts(n)?
                .iter()
                .map(|r| {
                    (
                        r.effective_gas_price.saturating_sub(h.base_fee as u128),
                        r.gas_used,
                    )
                })
                .collect();
            tips.sort();
            let total: u64 = tips.iter().map(|t| t.1).sum();
            let row: Vec<String> = percentiles
                .iter()
                .map(|p| {
                    let target = (total as f64 * p / 100.0) as u64;
                    let mut acc = 0;
                    let tip = tips
                        .iter()
                        .find(|(_, g)| {
                            acc += g;
                            acc >= target
                        })
                        .or(tips.last())
                        .map_or(0, |t| t.0);
                    q128(tip)
                })
                .collect();
            rewards.push(row);
        }
    }
    let last = chain
        .store
        .block(newest)?
        .ok_or_else(|| RpcError::server("missing block"))?;
    base.push(q(exec::next_base_fee(&last.header)));
    let mut out = json!({"oldestBlock": q(oldest), "baseFeePerGas": base, "gasUsedRatio": ratio});
    if !percentiles.is_empty() {
        out["reward"] = json!(rewards);
    }
    Ok(out)
}

fn tx_by_hash(chain: &Chain, hash: B256) -> Result<Value, RpcError> {
    if let Some((n, i)) = chain.store.tx_location(&hash)? {
        let b = chain
            .store
            .block(n)?
            .ok_or_else(|| RpcError::server("missing block"))?;
        let envs = b.envelopes()?;
        let t: &TxEnvelope = envs
            .get(i as usize)
            .ok_or_else(|| RpcError::server("missing transaction"))?;
        return Ok(format::transaction(
            t,
            Some((b.hash(), n, i as u64)),
            Some(b.header.base_fee),
        ));
    }
    Ok(chain.pool.get(&hash).map_or(Value::Null, |t| {
        format::transaction(&t.envelope, None, None)
    }))
}

fn receipt(chain: &Chain, hash: B256) -> Result<Value, RpcError> {
    let Some((n, i)) = chain.store.tx_location(&hash)? else {
        return Ok(Value::Null);
    };
    let b = chain
        .store
        .block(n)?
        .ok_or_else(|| RpcError::server("missing block"))?;
    let receipts = chain.store.receipts(n)?;
    let first_log: usize = receipts[..i as usize].iter().map(|r| r.logs.len()).sum();
    let r = receipts
        .get(i as usize)
        .ok_or_else(|| RpcError::server("missing receipt"))?;
    Ok(format::receipt(r, b.hash(), n, i as u64, first_log as u64))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogFilter {
    from_block: Option<Value>,
    to_block: Option<Value>,
    block_hash: Option<B256>,
    address: Option<Value>,
    topics: Option<Vec<Value>>,
}

/// A topic position: any, one value, or one of several.
fn topic_set(v: &Value) -> Result<Option<Vec<B256>>, RpcError> {
    let bad = |e: serde_json::Error| RpcError::invalid_params(format!("invalid topic: {e}"));
    match v {
        Value::Null => Ok(None),
        Value::Array(a) => a
            .iter()
            .map(|t| serde_json::from_value(t.clone()).map_err(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        t => Ok(Some(vec![serde_json::from_value(t.clone()).map_err(bad)?])),
    }
}

fn get_logs(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
    let f: LogFilter = param(params, 0)?;
    let (from, to) = match f.block_hash {
        Some(h) => {
            let n = chain
                .store
                .block_number(&h)?
                .ok_or_else(|| RpcError::server(format!("unknown block {h}")))?;
            (n, n)
        }
        None => (
            block_number(chain, f.from_block.as_ref())?,
            block_number(chain, f.to_block.as_ref())?.min(chain.head().number),
        ),
    };
    if from > to {
        return Ok(json!([]));
    }
    if to - from >= MAX_LOG_RANGE {
        return Err(RpcError::new(
            -32005,
            format!("query exceeds max block range {MAX_LOG_RANGE}"),
        ));
    }
    let addresses: Option<Vec<Address>> = match &f.address {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|x| serde_json::from_value(x.clone()))
                .collect::<Result<_, _>>()
                .map_err(|e| RpcError::invalid_params(format!("invalid address: {e}")))?,
        ),
        Some(x) => Some(vec![serde_json::from_value(x.clone()).map_err(|e| {
            RpcError::invalid_params(format!("invalid address: {e}"))
        })?]),
    };
    let topics: Vec<Option<Vec<B256>>> = f
        .topics
        .unwrap_or_default()
        .iter()
        .map(topic_set)
        .collect::<Result<_, _>>()?;
    let mut out = vec![];
    for n in from..=to {
        let Some(b) = chain.store.block(n)? else {
            break;
        };
        let bloom = b.header.logs_bloom;
        if let Some(a) = &addresses {
            if !a
                .iter()
                .any(|x| bloom.contains_input(alloy_primitives::BloomInput::Raw(x.as_slice())))
            {
                continue;
            }
        }
        let hash = b.hash();
        let mut log_index = 0u64;
        for (i, r) in chain.store.receipts(n)?.iter().enumerate() {
            for l in &r.logs {
                let addr_ok = addresses.as_ref().is_none_or(|a| a.contains(&l.address));
                let topics_ok = topics.iter().enumerate().all(|(k, want)| match want {
                    None => true,
                    Some(set) => l.data.topics().get(k).is_some_and(|t| set.contains(t)),
                });
                if addr_ok && topics_ok {
                    if out.len() == MAX_LOGS {
                        return Err(RpcError::new(
                            -32005,
                            format!("query returned more than {MAX_LOGS} results; ask for a smaller block range (the limit was reached at block {n})"),
                        ));
                    }
                    out.push(format::log(l, r.tx_hash, hash, n, i as u64, log_index));
                }
                log_index += 1;
            }
        }
    }
    Ok(json!(out))
}

pub(super) fn call(chain: &Chain, method: &str, p: &[Value]) -> Result<Value, RpcError> {
    match method {
        "web3_clientVersion" => Ok(json!(format!("gradnet/v{}", env!("CARGO_PKG_VERSION")))),
        "net_version" => Ok(json!(chain.chain_id().to_string())),
        "net_listening" => Ok(json!(true)),
        "eth_chainId" => Ok(json!(q(chain.chain_id()))),
        "eth_syncing" => Ok(json!(false)),
        "eth_accounts" => Ok(json!([])),
        "eth_blockNumber" => Ok(json!(q(chain.head().number))),
        "eth_gasPrice" => Ok(json!(q128(
            exec::next_base_fee(&chain.head()) as u128 + SUGGESTED_TIP
        ))),
        "eth_maxPriorityFeePerGas" => Ok(json!(q128(SUGGESTED_TIP))),
        "eth_feeHistory" => fee_history(chain, p),
        "eth_getBalance" => {
            let a: Address = param(p, 0)?;
            at_head(chain, p.get(1))?;
            Ok(json!(chain.account(&a)?.balance))
        }
        "eth_getTransactionCount" => {
            let a: Address = param(p, 0)?;
            let pending = p.get(1).and_then(Value::as_str) == Some("pending");
            if !pending {
                at_head(chain, p.get(1))?;
            }
            let mut n = chain.account(&a)?.nonce;
            if pending {
                for queued in chain.pool.queued_nonces(&a) {
                    if queued == n {
                        n += 1;
                    }
                }
            }
            Ok(json!(q(n)))
        }
        "eth_getCode" => {
            let a: Address = param(p, 0)?;
            at_head(chain, p.get(1))?;
            let state = chain.store.state()?;
            let info = state.account(&a).map_err(|e| RpcError::server(e.0))?;
            let code = match info {
                Some(i) => state
                    .code(&i.code_hash)
                    .map_err(|e| RpcError::server(e.0))?
                    .unwrap_or_default(),
                None => Bytes::new(),
            };
            Ok(json!(code))
        }
        "eth_getStorageAt" => {
            let a: Address = param(p, 0)?;
            let slot: U256 = param(p, 1)?;
            at_head(chain, p.get(2))?;
            let v = chain
                .store
                .state()?
                .storage(&a, &slot)
                .map_err(|e| RpcError::server(e.0))?;
            Ok(json!(B256::from(v.to_be_bytes::<32>())))
        }
        "eth_call" => eth_call(chain, p),
        "eth_estimateGas" => estimate_gas(chain, p),
        "eth_sendRawTransaction" => {
            let raw: Bytes = param(p, 0)?;
            Ok(json!(chain.submit_and_relay(&raw)?))
        }
        // validators passing on what their clients sent (not relayed again)
        "gradnet_relayTransactions" => {
            let raws: Vec<Bytes> = param(p, 0)?;
            let mut accepted = 0u64;
            for raw in raws.iter().take(gradnet_ledger::outbox::MAX_BATCH) {
                match chain.submit(raw) {
                    Ok(_) => accepted += 1,
                    Err(e) => tracing::debug!("relayed transaction refused: {e}"),
                }
            }
            Ok(json!(q(accepted)))
        }
        "eth_getTransactionByHash" => tx_by_hash(chain, param(p, 0)?),
        "eth_getTransactionReceipt" => receipt(chain, param(p, 0)?),
        "eth_getBlockByNumber" | "eth_getBlockByHash" => {
            let n = if method == "eth_getBlockByHash" {
                let h: B256 = param(p, 0)?;
                match chain.store.block_number(&h)? {
                    Some(n) => n,
                    None => return Ok(Value::Null),
                }
            } else {
                block_number(chain, p.first())?
            };
            let full: bool = opt_param(p, 1)?.unwrap_or(false);
            Ok(chain
                .store
                .block(n)?
                .map_or(Value::Null, |b| format::block(&b, full)))
        }
        "eth_getLogs" => get_logs(chain, p),
        m => Err(RpcError::new(
            -32601,
            format!("the method {m} does not exist/is not available"),
        )),
    }
}
