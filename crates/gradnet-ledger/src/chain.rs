//! One node's ledger: the store, the mempool, and the operations the
//! JSON-RPC API and block production need.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::{Address, B256, U256};
use tokio::sync::watch;

use crate::block::Header;
use crate::error::ChainError;
use crate::exec::{self, BlockParams, Built};
use crate::genesis::Genesis;
use crate::mempool::{Account, Mempool, PoolConfig};
use crate::store::{Executed, Missed, Store};
use crate::tx;
use gradnet_inference::pipe;
use gradnet_inference::precompile::{BlockResults, Inferencer, Miss, ResultSource};
use gradnet_inference::sidecar::{RegistryView, ServedCall};

/// One node's ledger.
pub struct Chain {
    /// Blocks, receipts and state.
    pub store: Store,
    /// Transactions waiting for a block.
    pub pool: Mempool,
    chain_id: u64,
    /// The head's number, for whoever waits for new blocks.
    heads: watch::Sender<u64>,
    /// Transactions clients sent to this node, for the relay to pass on to
    /// the other validators (filled only while a relay runs).
    pub outbox: crate::outbox::Outbox,
    /// Runs models for `eth_call` / `eth_estimateGas` through the inference
    /// precompile (the node's runtime; none: such calls revert).
    inferencer: parking_lot::RwLock<Option<Arc<dyn Inferencer>>>,
    /// The other validators whose signatures decided the last block this
    /// node committed (`net_peerCount`); 0 on a node that does not vote.
    pub peers: std::sync::atomic::AtomicU64,
}

/// How a proposer gets results for the inference calls its block building
/// found unanswered: the calls, the registry as the block sees it, and a
/// deadline in; the served calls (possibly none) out. The node passes
/// PIPE's dispatcher, which asks the sampled inference nodes over HTTP;
/// block building itself does no I/O.
pub trait MissServer: Send + Sync {
    /// Serves what it can of `misses` before `deadline`.
    fn serve(&self, view: &RegistryView, misses: Vec<Miss>, deadline: Instant) -> Vec<ServedCall>;

    /// Before a validator votes for a block that says sampled nodes did
    /// not answer (and slashes them): asks them itself, until `deadline`.
    /// An error names a node that answers with a validly signed outcome:
    /// the proposer left its answer out.
    fn confirm_missed(
        &self,
        _view: &RegistryView,
        _missed: &[Missed],
        _deadline: Instant,
    ) -> Result<(), String> {
        Ok(())
    }
}

impl<F> MissServer for F
where
    F: Fn(&RegistryView, Vec<Miss>, Instant) -> Vec<ServedCall> + Send + Sync,
{
    fn serve(&self, view: &RegistryView, misses: Vec<Miss>, deadline: Instant) -> Vec<ServedCall> {
        self(view, misses, deadline)
    }
}

impl Chain {
    /// Opens the chain in `dir`, writing `genesis` if it is new.
    pub fn open(dir: &Path, genesis: Genesis, pool: PoolConfig) -> Result<Arc<Self>, ChainError> {
        let chain_id = genesis.chain_id;
        let store = Store::open(dir, genesis)?;
        let (heads, _) = watch::channel(store.head().number);
        Ok(Arc::new(Chain {
            store,
            pool: Mempool::new(pool),
            chain_id,
            heads,
            outbox: Default::default(),
            inferencer: Default::default(),
            peers: Default::default(),
        }))
    }

    /// Who runs models for `eth_call` / `eth_estimateGas` (the node's runtimes).
    pub fn set_inferencer(&self, i: Arc<dyn Inferencer>) {
        *self.inferencer.write() = Some(i);
    }

    /// How `eth_call` answers calls to the inference precompile.
    pub fn simulation_answers(&self) -> ResultSource {
        match &*self.inferencer.read() {
            Some(i) => ResultSource::Simulate(i.clone()),
            None => ResultSource::Unavailable,
        }
    }

    /// The chain id (EIP-155).
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The latest committed header.
    pub fn head(&self) -> Header {
        self.store.head()
    }

    /// The head's number, as new blocks are committed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.heads.subscribe()
    }

    /// The committed account of `a` (zero when it does not exist).
    pub fn account(&self, a: &Address) -> Result<Account, ChainError> {
        let info = self
            .store
            .state()?
            .account(a)
            .map_err(|e| ChainError::State(e.0))?;
        Ok(info.map_or(
            Account {
                nonce: 0,
                balance: U256::ZERO,
            },
            |i| Account {
                nonce: i.nonce,
                balance: i.balance,
            },
        ))
    }

    /// `eth_sendRawTransaction`: decode, check against the committed state,
    /// queue. Returns the transaction hash.
    pub fn submit(&self, raw: &[u8]) -> Result<B256, ChainError> {
        let t = tx::decode(raw, self.chain_id)?;
        if self.store.tx_location(&t.hash)?.is_some() {
            return Err(ChainError::Rejected("already known".into()));
        }
        let account = self.account(&t.sender)?;
        let head = self.head();
        self.pool
            .add(t, account, exec::next_base_fee(&head), head.gas_limit)
    }

    /// A transaction from a client: queued here and passed on to the other
    /// validators, so that whoever proposes next can include it.
    pub fn submit_and_relay(&self, raw: &[u8]) -> Result<B256, ChainError> {
        let hash = self.submit(raw)?;
        self.outbox.push(raw);
        Ok(hash)
    }

    /// Builds the next block from the pool (not committed). Inference
    /// calls found without results are handed to `serve` and the block
    /// built again with what it returns, a few passes within
    /// `pipe::BUDGET`; transactions whose calls are still unanswered wait
    /// in the pool.
    pub fn propose(
        &self,
        params: &BlockParams,
        max_txs: usize,
        serve: &dyn MissServer,
    ) -> Result<Built, ChainError> {
        let head = self.head();
        let state = self.store.state()?;
        let nonce = |a: &Address| state.account(a).ok().flatten().map_or(0, |i| i.nonce);
        let txs = self
            .pool
            .pending(nonce, exec::next_base_fee(&head), max_txs);
        let view = exec::registry_view(&state, self.chain_id, &head)?;
        let deadline = std::time::Instant::now() + pipe::BUDGET;
        let mut served = std::collections::HashMap::new();
        let mut pass = 0;
        let mut attempted = std::collections::HashSet::new();
        // discover every call (a sender's later transactions too), serve
        // them, again for calls that only show once earlier ones are served
        let built = loop {
            let answers = BlockResults::speculative(view.clone(), served.clone());
            let built = exec::build(&state, self.chain_id, &head, params, &txs, answers.clone())?;
            let mut misses = std::mem::take(&mut answers.progress.lock().misses);
            if misses.is_empty() {
                // nothing was pending: the same as a real build
                break built;
            }
            // calls tried in this block already wait for the next one
            misses.retain(|m| attempted.insert(m.request_hash));
            pass += 1;
            let new = if misses.is_empty() || pass > 3 || std::time::Instant::now() >= deadline {
                vec![]
            } else {
                serve.serve(&view, misses, deadline)
            };
            if new.is_empty() {
                // what is still unanswered waits for a later block
                let answers = BlockResults::new(view.clone(), served.clone(), true);
                break exec::build(&state, self.chain_id, &head, params, &txs, answers)?;
            }
            served.extend(new.into_iter().map(|c| (c.request_hash, c)));
        };
        for (h, why) in &built.dropped {
            tracing::warn!(tx = %h, "dropped from the pool: {why}");
            self.pool.remove(h);
        }
        Ok(built)
    }

    /// The registry as the next block sees it (who serves its calls).
    pub fn registry_view(&self) -> Result<RegistryView, ChainError> {
        let state = self.store.state()?;
        exec::registry_view(&state, self.chain_id, &self.head())
    }

    /// Re-executes a block proposed on top of the head (see `exec::verify`).
    pub fn verify(&self, block: &crate::block::Block) -> Result<Executed, ChainError> {
        let head = self.head();
        let state = self.store.state()?;
        exec::verify_known(&state, self.chain_id, &head, block, |h| self.pool.get(h))
    }

    /// Commits an executed block (with the certificate that decided it) and
    /// clears what it made stale from the pool.
    pub fn commit(&self, e: &Executed, certificate: &[u8]) -> Result<(), ChainError> {
        self.store.commit(e, certificate)?;
        let state = self.store.state()?;
        let senders: Vec<Address> = e.receipts.iter().map(|r| r.from).collect();
        self.pool.prune(
            |a| state.account(a).ok().flatten().map_or(0, |i| i.nonce),
            &senders,
        );
        self.heads.send_replace(e.block.header.number);
        Ok(())
    }
}
