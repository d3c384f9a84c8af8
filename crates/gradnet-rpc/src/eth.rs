//! The `eth_`, `net_` and `web3_` methods.

use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, Bytes, B256, U256, U64};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::format::{self, q, q128};
use super::{call, RpcError};
use gradnet_ledger::chain::Chain;
use gradnet_ledger::exec;
use gradnet_ledger::state::StateReader;

/// Tip suggested to wallets, in wei (1 gwei, as anvil and geth's dev mode).
const SUGGESTED_TIP: u128 = 1_000_000_000;
/// Blocks one `eth_getLogs` may scan.
const MAX_LOG_RANGE: u64 = 10_000;
/// Logs one `eth_getLogs` may return.
const MAX_LOGS: usize = 10_000;

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

/// The state at a block named by tag, number or hash: the head's, or one
/// of the recent blocks' the store keeps (an error names the range).
pub(super) fn state_at(chain: &Chain, tag: Option<&Value>) -> Result<StateReader, RpcError> {
    let n = block_number(chain, tag)?;
    Ok(chain.store.state_at(n)?)
}

fn state_err(e: gradnet_ledger::state::StateError) -> RpcError {
    RpcError::server(e.0)
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

/// The block a by-hash (`by_hash`) or by-number request names; None for
/// an unknown hash.
fn block_of(chain: &Chain, by_hash: bool, p: &[Value]) -> Result<Option<u64>, RpcError> {
    if by_hash {
        let h: B256 = param(p, 0)?;
        return Ok(chain.store.block_number(&h)?);
    }
    let n = block_number(chain, p.first())?;
    Ok((n <= chain.head().number).then_some(n))
}

fn tx_in_block(chain: &Chain, n: u64, i: u64) -> Result<Value, RpcError> {
    let Some(b) = chain.store.block(n)? else {
        return Ok(Value::Null);
    };
    let envs = b.envelopes()?;
    Ok(envs.get(i as usize).map_or(Value::Null, |t| {
        format::transaction(t, Some((b.hash(), n, i)), Some(b.header.base_fee))
    }))
}

/// `eth_getBlockReceipts`: every receipt of a block, by tag, number or hash.
fn block_receipts(chain: &Chain, p: &[Value]) -> Result<Value, RpcError> {
    let n = match p.first() {
        Some(Value::String(s)) if s.len() == 66 => {
            let h: B256 = param(p, 0)?;
            match chain.store.block_number(&h)? {
                Some(n) => n,
                None => return Ok(Value::Null),
            }
        }
        tag => block_number(chain, tag)?,
    };
    let Some(b) = chain.store.block(n)? else {
        return Ok(Value::Null);
    };
    let hash = b.hash();
    let mut first_log = 0u64;
    let mut out = vec![];
    for (i, r) in chain.store.receipts(n)?.iter().enumerate() {
        out.push(format::receipt(r, hash, n, i as u64, first_log));
        first_log += r.logs.len() as u64;
    }
    Ok(json!(out))
}

pub(super) fn get_logs(chain: &Chain, params: &[Value]) -> Result<Value, RpcError> {
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
            let state = state_at(chain, p.get(1))?;
            let info = state.account(&a).map_err(state_err)?;
            Ok(json!(info.map(|i| i.balance).unwrap_or_default()))
        }
        "eth_getTransactionCount" => {
            let a: Address = param(p, 0)?;
            let pending = p.get(1).and_then(Value::as_str) == Some("pending");
            let state = if pending {
                chain.store.state()?
            } else {
                state_at(chain, p.get(1))?
            };
            let mut n = state.account(&a).map_err(state_err)?.map_or(0, |i| i.nonce);
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
            let state = state_at(chain, p.get(1))?;
            let info = state.account(&a).map_err(state_err)?;
            let code = match info {
                Some(i) => state
                    .code(&i.code_hash)
                    .map_err(state_err)?
                    .unwrap_or_default(),
                None => Bytes::new(),
            };
            Ok(json!(code))
        }
        "eth_getStorageAt" => {
            let a: Address = param(p, 0)?;
            let slot: U256 = param(p, 1)?;
            let v = state_at(chain, p.get(2))?
                .storage(&a, &slot)
                .map_err(state_err)?;
            Ok(json!(B256::from(v.to_be_bytes::<32>())))
        }
        "eth_call" => call::eth_call(chain, p),
        "eth_estimateGas" => call::estimate_gas(chain, p),
        "eth_createAccessList" => call::create_access_list(chain, p),
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
        "eth_getBlockReceipts" => block_receipts(chain, p),
        "eth_getTransactionByBlockNumberAndIndex" | "eth_getTransactionByBlockHashAndIndex" => {
            let Some(n) = block_of(chain, method.ends_with("HashAndIndex"), p)? else {
                return Ok(Value::Null);
            };
            let i: U64 = param(p, 1)?;
            tx_in_block(chain, n, i.to::<u64>())
        }
        "eth_getBlockTransactionCountByNumber" | "eth_getBlockTransactionCountByHash" => {
            let Some(n) = block_of(chain, method.ends_with("ByHash"), p)? else {
                return Ok(Value::Null);
            };
            Ok(chain
                .store
                .block(n)?
                .map_or(Value::Null, |b| json!(q(b.transactions.len() as u64))))
        }
        "eth_getUncleCountByBlockNumber" | "eth_getUncleCountByBlockHash" => {
            let Some(n) = block_of(chain, method.ends_with("ByBlockHash"), p)? else {
                return Ok(Value::Null);
            };
            Ok(chain.store.block(n)?.map_or(Value::Null, |_| json!(q(0))))
        }
        "eth_getUncleByBlockNumberAndIndex" | "eth_getUncleByBlockHashAndIndex" => Ok(Value::Null),
        // the minimum blob base fee under Cancun: this chain carries no blobs
        "eth_blobBaseFee" => Ok(json!(q(1))),
        "net_peerCount" => Ok(json!(q(chain
            .peers
            .load(std::sync::atomic::Ordering::Relaxed)))),
        "debug_traceTransaction" => super::trace::trace_transaction(chain, p),
        "debug_traceCall" => super::trace::trace_call(chain, p),
        "debug_traceBlockByNumber" | "debug_traceBlockByHash" => {
            super::trace::trace_block(chain, method, p)
        }
        m => Err(RpcError::new(
            -32601,
            format!("the method {m} does not exist/is not available"),
        )),
    }
}
