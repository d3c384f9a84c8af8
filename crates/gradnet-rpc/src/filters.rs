//! Polled filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_getFilterChanges`, `eth_getFilterLogs`, `eth_uninstallFilter`), as
//! geth keeps them: in memory, each answering what arrived since its last
//! poll, dropped after 5 minutes without one. At most 1,000 at a time, so a
//! client cannot fill the node's memory with them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use parking_lot::Mutex;
use serde_json::{json, Value};

use super::eth::{block_number, get_logs, param};
use super::format::q;
use super::RpcError;
use gradnet_ledger::chain::Chain;

/// A filter not polled for this long is dropped (geth's deadline).
const IDLE: Duration = Duration::from_secs(300);
/// Filters installed at once.
const MAX_FILTERS: usize = 1_000;
/// Blocks one poll covers at most; the rest come with the next.
const MAX_POLL_BLOCKS: u64 = 1_000;

enum Kind {
    /// Logs matching the criteria (`fromBlock`, `toBlock`, `address`, `topics`).
    Logs(Value),
    /// New block hashes.
    Blocks,
}

struct Filter {
    kind: Kind,
    /// The last block whose changes this filter reported.
    seen: u64,
    polled: Instant,
}

/// The filters installed on this node.
#[derive(Default)]
pub(crate) struct Filters {
    all: Mutex<HashMap<U256, Filter>>,
    next: std::sync::atomic::AtomicU64,
}

impl Filters {
    fn install(&self, chain: &Chain, kind: Kind) -> Result<Value, RpcError> {
        let mut all = self.all.lock();
        all.retain(|_, f| f.polled.elapsed() < IDLE);
        if all.len() >= MAX_FILTERS {
            return Err(RpcError::server(format!(
                "too many filters installed ({MAX_FILTERS}): uninstall some, or let them expire (5 minutes without a poll)"
            )));
        }
        let next = 1 + self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // ids are not guessable from one another
        let id = U256::from_be_bytes(
            alloy_primitives::keccak256([next.to_be_bytes().as_slice(), &rand_salt()].concat()).0,
        ) >> 128;
        all.insert(
            id,
            Filter {
                kind,
                seen: chain.head().number,
                polled: Instant::now(),
            },
        );
        Ok(json!(format!("{id:#x}")))
    }
}

fn rand_salt() -> [u8; 16] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    t.to_be_bytes()
}

fn id(p: &[Value]) -> Result<U256, RpcError> {
    param(p, 0)
}

fn not_found() -> RpcError {
    RpcError::server("filter not found")
}

/// The filter methods (None: not one of them).
pub(super) fn call(
    filters: &Filters,
    chain: &Chain,
    method: &str,
    p: &[Value],
) -> Option<Result<Value, RpcError>> {
    Some(match method {
        "eth_newFilter" => (|| {
            let criteria: Value = param(p, 0)?;
            if !criteria.is_object() {
                return Err(RpcError::invalid_params("invalid argument 0: a filter object"));
            }
            if criteria.get("blockHash").is_some_and(|h| !h.is_null()) {
                return Err(RpcError::invalid_params(
                    "a polled filter cannot name a blockHash: use eth_getLogs",
                ));
            }
            // resolve the tags now, so that a bad one is refused at once
            block_number(chain, criteria.get("fromBlock"))?;
            block_number(chain, criteria.get("toBlock"))?;
            filters.install(chain, Kind::Logs(criteria))
        })(),
        "eth_newBlockFilter" => filters.install(chain, Kind::Blocks),
        "eth_newPendingTransactionFilter" => Err(RpcError::new(
            -32601,
            "pending transaction filters are not supported: transactions are final in the next block; use eth_newBlockFilter",
        )),
        "eth_uninstallFilter" => id(p).map(|id| json!(filters.all.lock().remove(&id).is_some())),
        "eth_getFilterChanges" => (|| {
            let id = id(p)?;
            let head = chain.head().number;
            let (kind, from, to) = {
                let mut all = filters.all.lock();
                let f = all.get_mut(&id).ok_or_else(not_found)?;
                f.polled = Instant::now();
                let from = f.seen + 1;
                let to = head.min(f.seen + MAX_POLL_BLOCKS);
                let kind = match &f.kind {
                    Kind::Logs(c) => Some(c.clone()),
                    Kind::Blocks => None,
                };
                f.seen = f.seen.max(to);
                (kind, from, to)
            };
            if from > to {
                return Ok(json!([]));
            }
            match kind {
                None => {
                    let mut hashes = vec![];
                    for n in from..=to {
                        if let Some(b) = chain.store.block(n)? {
                            hashes.push(json!(b.hash()));
                        }
                    }
                    Ok(json!(hashes))
                }
                Some(criteria) => {
                    // the new blocks, within the filter's own range when it
                    // names block numbers (a tag follows the head)
                    let lo = match criteria.get("fromBlock") {
                        Some(Value::String(t)) if t.starts_with("0x") => block_number(chain, Some(&json!(t)))?,
                        _ => 0,
                    };
                    let hi = match criteria.get("toBlock") {
                        Some(Value::String(t)) if t.starts_with("0x") => block_number(chain, Some(&json!(t)))?,
                        Some(Value::String(t)) if t == "earliest" => 0,
                        _ => u64::MAX,
                    };
                    let (a, b) = (from.max(lo), to.min(hi));
                    if a > b {
                        return Ok(json!([]));
                    }
                    let mut c = criteria;
                    c["fromBlock"] = json!(q(a));
                    c["toBlock"] = json!(q(b));
                    get_logs(chain, &[c])
                }
            }
        })(),
        "eth_getFilterLogs" => (|| {
            let id = id(p)?;
            let criteria = {
                let mut all = filters.all.lock();
                let f = all.get_mut(&id).ok_or_else(not_found)?;
                f.polled = Instant::now();
                match &f.kind {
                    Kind::Logs(c) => c.clone(),
                    Kind::Blocks => {
                        return Err(RpcError::server("filter not found: a block filter has no logs"))
                    }
                }
            };
            get_logs(chain, &[criteria])
        })(),
        _ => return None,
    })
}
