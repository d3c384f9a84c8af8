//! Pending transactions: bounded, per sender in nonce order, replaced only
//! by a 10% higher fee, the cheapest queued tail evicted when full. Block
//! builders take, sender by sender, the runnable prefix of each queue, best
//! tip first.

use std::collections::{BTreeMap, BinaryHeap, HashMap};

use alloy_primitives::{Address, B256, U256};
use parking_lot::Mutex;

use crate::error::ChainError;
use crate::tx::PooledTx;

/// Bounds of the mempool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Transactions held at most.
    pub capacity: usize,
    /// How far past an account's nonce a transaction may be queued.
    pub nonce_window: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            capacity: 20_000,
            nonce_window: 64,
        }
    }
}

/// The account state a new transaction is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Account {
    /// Its next nonce.
    pub nonce: u64,
    /// Its balance in wei.
    pub balance: U256,
}

#[derive(Default)]
struct Inner {
    by_sender: HashMap<Address, BTreeMap<u64, PooledTx>>,
    by_hash: HashMap<B256, (Address, u64)>,
}

/// Transactions waiting for a block, by sender and nonce.
pub struct Mempool {
    config: PoolConfig,
    inner: Mutex<Inner>,
}

fn rejected(s: &str) -> ChainError {
    ChainError::Rejected(s.into())
}

/// A replacement must raise both fee cap and tip by 10% (geth's default).
fn bumped(new: u128, old: u128) -> bool {
    new * 100 >= old * 110
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Mempool {
            config,
            inner: Mutex::default(),
        }
    }

    /// Transactions held.
    pub fn len(&self) -> usize {
        self.inner.lock().by_hash.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A held transaction by hash.
    pub fn get(&self, hash: &B256) -> Option<PooledTx> {
        let inner = self.inner.lock();
        let (s, n) = inner.by_hash.get(hash)?;
        inner.by_sender.get(s)?.get(n).cloned()
    }

    /// Transactions of `sender` queued here (`eth_getTransactionCount` pending).
    pub fn queued_nonces(&self, sender: &Address) -> Vec<u64> {
        let inner = self.inner.lock();
        inner
            .by_sender
            .get(sender)
            .map(|q| q.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Admits `tx` given its sender's committed account, the next block's
    /// base fee and gas limit.
    pub fn add(
        &self,
        tx: PooledTx,
        account: Account,
        base_fee: u64,
        gas_limit: u64,
    ) -> Result<B256, ChainError> {
        let nonce = tx.nonce();
        if tx.gas_limit() > gas_limit {
            return Err(rejected("exceeds block gas limit"));
        }
        if nonce < account.nonce {
            return Err(rejected("nonce too low"));
        }
        if nonce >= account.nonce + self.config.nonce_window {
            return Err(rejected("nonce too high"));
        }
        if tx.max_fee() < base_fee as u128 {
            return Err(rejected("max fee per gas less than block base fee"));
        }
        if account.balance < tx.max_cost() {
            return Err(rejected("insufficient funds for gas * price + value"));
        }
        let mut inner = self.inner.lock();
        if inner.by_hash.contains_key(&tx.hash) {
            return Err(rejected("already known"));
        }
        let sender = tx.sender;
        let hash = tx.hash;
        // the sender's queued transactions before this one must be paid for too
        let queued_cost: U256 = inner
            .by_sender
            .get(&sender)
            .map(|q| q.range(..nonce).map(|(_, t)| t.max_cost()).sum())
            .unwrap_or_default();
        if account.balance < queued_cost + tx.max_cost() {
            return Err(rejected("insufficient funds for gas * price + value"));
        }
        if let Some(old) = inner.by_sender.get(&sender).and_then(|q| q.get(&nonce)) {
            let tip = |t: &PooledTx| t.envelope_tip();
            if !bumped(tx.max_fee(), old.max_fee()) || !bumped(tip(&tx), tip(old)) {
                return Err(rejected("replacement transaction underpriced"));
            }
            let old_hash = old.hash;
            inner.by_hash.remove(&old_hash);
        } else if inner.by_hash.len() >= self.config.capacity {
            // evict the cheapest tail (the highest nonce of some sender)
            let worst = inner
                .by_sender
                .iter()
                .filter_map(|(s, q)| q.iter().next_back().map(|(n, t)| (t.tip(base_fee), *s, *n)))
                .min_by_key(|(tip, _, _)| *tip);
            match worst {
                Some((tip, s, n)) if tip < tx.tip(base_fee) && s != sender => {
                    let gone = inner.by_sender.get_mut(&s).and_then(|q| q.remove(&n));
                    if let Some(g) = gone {
                        inner.by_hash.remove(&g.hash);
                    }
                    if inner.by_sender.get(&s).is_some_and(|q| q.is_empty()) {
                        inner.by_sender.remove(&s);
                    }
                }
                _ => return Err(rejected("txpool is full")),
            }
        }
        inner.by_hash.insert(hash, (sender, nonce));
        inner.by_sender.entry(sender).or_default().insert(nonce, tx);
        Ok(hash)
    }

    /// Up to `max` runnable transactions in the order a block should take
    /// them: each sender's queue from its committed nonce without gaps, the
    /// best tip at `base_fee` first across senders.
    pub fn pending(
        &self,
        nonce_of: impl Fn(&Address) -> u64,
        base_fee: u64,
        max: usize,
    ) -> Vec<PooledTx> {
        let inner = self.inner.lock();
        let mut runs: HashMap<Address, Vec<&PooledTx>> = HashMap::new();
        for (s, q) in &inner.by_sender {
            let mut next = nonce_of(s);
            let run: Vec<&PooledTx> = q
                .range(next..)
                .take_while(|(n, t)| {
                    let ok = **n == next && t.max_fee() >= base_fee as u128;
                    next += 1;
                    ok
                })
                .map(|(_, t)| t)
                .collect();
            if !run.is_empty() {
                runs.insert(*s, run);
            }
        }
        // (tip, sender order for ties, sender, index)
        let mut heap: BinaryHeap<(u128, std::cmp::Reverse<Address>, usize)> = runs
            .iter()
            .map(|(s, r)| (r[0].tip(base_fee), std::cmp::Reverse(*s), 0))
            .collect();
        let mut out = Vec::new();
        while let Some((_, std::cmp::Reverse(s), i)) = heap.pop() {
            if out.len() == max {
                break;
            }
            let run = &runs[&s];
            out.push(run[i].clone());
            if let Some(t) = run.get(i + 1) {
                heap.push((t.tip(base_fee), std::cmp::Reverse(s), i + 1));
            }
        }
        out
    }

    /// Drops transactions a committed block made stale: every queued
    /// transaction whose nonce is now below its sender's account nonce.
    pub fn prune(&self, nonce_of: impl Fn(&Address) -> u64, senders: &[Address]) {
        let mut inner = self.inner.lock();
        for s in senders {
            let next = nonce_of(s);
            let stale: Vec<B256> = match inner.by_sender.get_mut(s) {
                Some(q) => {
                    let keep = q.split_off(&next);
                    let gone = std::mem::replace(q, keep);
                    gone.values().map(|t| t.hash).collect()
                }
                None => continue,
            };
            for h in stale {
                inner.by_hash.remove(&h);
            }
            if inner.by_sender.get(s).is_some_and(|q| q.is_empty()) {
                inner.by_sender.remove(s);
            }
        }
    }

    /// Removes one transaction (the EVM refused it when building a block).
    pub fn remove(&self, hash: &B256) {
        let mut inner = self.inner.lock();
        if let Some((s, n)) = inner.by_hash.remove(hash) {
            if let Some(q) = inner.by_sender.get_mut(&s) {
                q.remove(&n);
                if q.is_empty() {
                    inner.by_sender.remove(&s);
                }
            }
        }
    }
}
