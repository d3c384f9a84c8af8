//! Blocks, transactions, receipts and logs in the JSON shapes Ethereum
//! clients read (quantities as `0x` hex without leading zeros).

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope, Typed2718};
use alloy_primitives::{b256, Address, B256};
use serde_json::{json, Value};

use gradnet_ledger::block::{Block, StoredReceipt};

/// Hash of an empty uncle list (keccak of RLP `[]`).
const EMPTY_OMMERS: B256 =
    b256!("1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347");
/// Root of an empty trie.
const EMPTY_ROOT: B256 = b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// A quantity as Ethereum JSON-RPC writes it (`0x`-prefixed hex).
pub fn q(n: u64) -> String {
    format!("{n:#x}")
}

/// The same for a 128-bit quantity.
pub fn q128(n: u128) -> String {
    format!("{n:#x}")
}

/// A block in `eth_getBlockBy*`'s shape, its transactions in full or as hashes.
pub fn block(b: &Block, full: bool) -> Value {
    let h = &b.header;
    let hash = b.hash();
    let envs = b.envelopes().unwrap_or_default();
    let txs: Vec<Value> = envs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if full {
                transaction(t, Some((hash, h.number, i as u64)), Some(h.base_fee))
            } else {
                json!(t.tx_hash())
            }
        })
        .collect();
    let size: usize = b.encode().len();
    json!({
        "number": q(h.number),
        "hash": hash,
        "parentHash": h.parent_hash,
        "nonce": "0x0000000000000000",
        "sha3Uncles": EMPTY_OMMERS,
        "logsBloom": h.logs_bloom,
        "transactionsRoot": h.transactions_root,
        "stateRoot": h.state_root,
        "receiptsRoot": h.receipts_root,
        "miner": h.coinbase,
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "size": q(size as u64),
        "gasLimit": q(h.gas_limit),
        "gasUsed": q(h.gas_used),
        "timestamp": q(h.timestamp),
        "transactions": txs,
        "uncles": [],
        "baseFeePerGas": q(h.base_fee),
        "mixHash": h.parent_hash,
        "withdrawals": [],
        "withdrawalsRoot": EMPTY_ROOT,
        "blobGasUsed": "0x0",
        "excessBlobGas": "0x0",
        "parentBeaconBlockRoot": B256::ZERO,
        "proposer": h.proposer,
    })
}

/// A transaction; `at` is (block hash, number, index) once mined.
pub fn transaction(t: &TxEnvelope, at: Option<(B256, u64, u64)>, base_fee: Option<u64>) -> Value {
    let from = t.recover_signer().unwrap_or(Address::ZERO);
    let sig = t.signature();
    let mut v = json!({
        "hash": t.tx_hash(),
        "nonce": q(t.nonce()),
        "blockHash": at.map(|a| a.0),
        "blockNumber": at.map(|a| q(a.1)),
        "transactionIndex": at.map(|a| q(a.2)),
        "from": from,
        "to": t.to(),
        "value": t.value(),
        "gas": q(t.gas_limit()),
        "gasPrice": q128(match (base_fee, at) {
            (Some(b), Some(_)) => t.effective_gas_price(Some(b)),
            _ => t.max_fee_per_gas(),
        }),
        "input": t.input(),
        "type": q(t.ty() as u64),
        "chainId": t.chain_id().map(q),
        "r": sig.r(),
        "s": sig.s(),
    });
    let o = v.as_object_mut().expect("object");
    match t {
        TxEnvelope::Legacy(l) => {
            let chain = l.tx().chain_id.unwrap_or(0);
            let vv = if chain > 0 {
                chain * 2 + 35 + sig.v() as u64
            } else {
                27 + sig.v() as u64
            };
            o.insert("v".into(), json!(q(vv)));
        }
        _ => {
            o.insert("v".into(), json!(q(sig.v() as u64)));
            o.insert("yParity".into(), json!(q(sig.v() as u64)));
            o.insert(
                "accessList".into(),
                serde_json::to_value(t.access_list().cloned().unwrap_or_default())
                    .unwrap_or(Value::Null),
            );
            if t.is_dynamic_fee() {
                o.insert("maxFeePerGas".into(), json!(q128(t.max_fee_per_gas())));
                o.insert(
                    "maxPriorityFeePerGas".into(),
                    json!(q128(t.max_priority_fee_per_gas().unwrap_or(0))),
                );
            }
        }
    }
    v
}

/// A receipt at `index` in its block; `first_log` is the block-wide index
/// of its first log.
pub fn receipt(
    r: &StoredReceipt,
    block_hash: B256,
    number: u64,
    index: u64,
    first_log: u64,
) -> Value {
    let logs: Vec<Value> = r
        .logs
        .iter()
        .enumerate()
        .map(|(i, l)| {
            log(
                l,
                r.tx_hash,
                block_hash,
                number,
                index,
                first_log + i as u64,
            )
        })
        .collect();
    let mut v = json!({
        "transactionHash": r.tx_hash,
        "transactionIndex": q(index),
        "blockHash": block_hash,
        "blockNumber": q(number),
        "from": r.from,
        "to": r.to,
        "cumulativeGasUsed": q(r.cumulative_gas_used),
        "gasUsed": q(r.gas_used),
        "effectiveGasPrice": q128(r.effective_gas_price),
        "contractAddress": r.contract_address,
        "logs": logs,
        "logsBloom": r.bloom(),
        "status": if r.success { "0x1" } else { "0x0" },
        "type": q(r.tx_type as u64),
    });
    if !r.success {
        // as Besu reports it: the revert data, hex
        v["revertReason"] = json!(r.output);
    }
    v
}

/// A log in `eth_getLogs` / receipt shape.
pub fn log(
    l: &alloy_primitives::Log,
    tx: B256,
    block_hash: B256,
    number: u64,
    tx_index: u64,
    log_index: u64,
) -> Value {
    json!({
        "address": l.address,
        "topics": l.data.topics(),
        "data": l.data.data,
        "blockNumber": q(number),
        "blockHash": block_hash,
        "transactionHash": tx,
        "transactionIndex": q(tx_index),
        "logIndex": q(log_index),
        "removed": false,
    })
}
