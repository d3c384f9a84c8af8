//! Blocks, receipts, the transaction index and the state, in redb. A block
//! and the state it leads to are written in one durable transaction, so a
//! node killed at any moment restarts on its last committed block.

use std::path::Path;

use alloy_primitives::{Address, Bloom, B256, U256};
use parking_lot::RwLock;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use revm::state::AccountInfo;

use crate::block::{Block, Header, StoredReceipt};
use crate::error::ChainError;
use crate::genesis::Genesis;
use crate::state::{encode_account, storage_key, Diff, StateReader};

/// number -> block hash (32 bytes) followed by the RLP block
pub(crate) const BLOCKS_BY_NUMBER: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const BLOCK_NUMBERS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_numbers");
/// tx hash -> (block number, index in block)
const TX_INDEX: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("tx_index");
/// number -> JSON list of receipts
const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// number -> the commit certificate that decided the block (encoded by
/// `consensus::codec`), served to nodes catching up
const CERTIFICATES: TableDefinition<u64, &[u8]> = TableDefinition::new("certificates");
pub(crate) const ACCOUNTS: TableDefinition<&[u8; 20], &[u8]> = TableDefinition::new("accounts");
pub(crate) const STORAGE: TableDefinition<&[u8; 52], [u8; 32]> = TableDefinition::new("storage");
pub(crate) const CODE: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("code");

/// A block with what executing it produced, ready to commit.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The block.
    pub block: Block,
    /// Its receipts, in order.
    pub receipts: Vec<StoredReceipt>,
    /// What it changes in the state.
    pub diff: Diff,
    /// Calls whose sidecar says sampled nodes did not answer (they are
    /// slashed): validators ask those nodes again before voting.
    pub missed: Vec<Missed>,
}

/// One call's nodes that a block says did not answer.
#[derive(Debug, Clone)]
pub struct Missed {
    /// The call.
    pub call: gradnet_inference::precompile::Miss,
    /// The nodes.
    pub nodes: Vec<alloy_primitives::Address>,
}

/// The chain database's page cache. redb's default (1 GiB) grows with the
/// chain: a validator's memory would climb for days; state reads are hot on
/// a small set, so a bounded cache costs little. `GRADNET_CHAIN_CACHE_MB`
/// sets another size.
fn cache_bytes() -> usize {
    std::env::var("GRADNET_CHAIN_CACHE_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(64)
        << 20
}

/// Opens (or creates) the chain database at `path` with the bounded cache.
fn open_db(path: &Path) -> Result<redb::Database, redb::DatabaseError> {
    redb::Builder::new()
        .set_cache_size(cache_bytes())
        .create(path)
}

/// Blocks, receipts, certificates and state in redb.
pub struct Store {
    /// None only between a failed write and the reopening after it.
    db: RwLock<Option<redb::Database>>,
    path: std::path::PathBuf,
    genesis: Genesis,
    head: RwLock<Header>,
    /// Blocks of state kept behind the head (`u64::MAX`: all).
    history: std::sync::atomic::AtomicU64,
}

fn bad<E: std::fmt::Display>(e: E) -> ChainError {
    ChainError::State(e.to_string())
}

impl Store {
    /// Opens the chain in `dir`, writing the genesis state on first use.
    pub fn open(dir: &Path, genesis: Genesis) -> Result<Self, ChainError> {
        genesis.check()?;
        std::fs::create_dir_all(dir).map_err(bad)?;
        let db = open_db(&dir.join("chain.redb")).map_err(bad)?;
        let existing = {
            let r = db.begin_read().map_err(bad)?;
            match r.open_table(META) {
                Ok(t) => t.get("genesis").map_err(bad)?.map(|v| v.value().to_vec()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(bad(e)),
            }
        };
        let head = match existing {
            Some(hash) => {
                if hash != genesis.hash().as_slice() {
                    return Err(ChainError::Invalid(format!(
                        "{} holds another chain (genesis {}), not this genesis ({})",
                        dir.display(),
                        B256::from_slice(&hash),
                        genesis.hash()
                    )));
                }
                let r = db.begin_read().map_err(bad)?;
                let t = r.open_table(BLOCKS_BY_NUMBER).map_err(bad)?;
                let (_, last) = t.last().map_err(bad)?.ok_or_else(|| bad("no blocks"))?;
                Block::decode(&last.value()[32..])?.header
            }
            None => Self::write_genesis(&db, &genesis)?,
        };
        Ok(Store {
            db: RwLock::new(Some(db)),
            path: dir.join("chain.redb"),
            genesis,
            head: RwLock::new(head),
            history: std::sync::atomic::AtomicU64::new(
                crate::history::retained().unwrap_or(u64::MAX),
            ),
        })
    }

    /// A read transaction on the committed state.
    fn read(&self) -> Result<redb::ReadTransaction, ChainError> {
        self.with_db(|db| db.begin_read().map_err(bad))
    }

    /// `f` on the open database (an error while it is being reopened).
    fn with_db<T>(
        &self,
        f: impl FnOnce(&redb::Database) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let db = self.db.read();
        let db = db
            .as_ref()
            .ok_or_else(|| bad("the chain's database is being reopened after a write error"))?;
        f(db)
    }

    /// After a failed write (a full disk, an I/O error) redb takes nothing
    /// more until reopened: reopened here, so the next commit can succeed
    /// once the cause is gone. What failed was not committed.
    fn reopen(&self) {
        let mut db = self.db.write();
        drop(db.take());
        match open_db(&self.path) {
            Ok(d) => *db = Some(d),
            Err(e) => tracing::error!("reopening {}: {e}", self.path.display()),
        }
    }

    fn write_genesis(db: &redb::Database, g: &Genesis) -> Result<Header, ChainError> {
        let mut diff = Diff::default();
        for (a, balance) in &g.alloc {
            diff.accounts.insert(
                *a,
                Some(AccountInfo {
                    balance: *balance,
                    ..Default::default()
                }),
            );
        }
        for (a, code) in &g.code {
            let code_hash = alloy_primitives::keccak256(code);
            let balance = g.alloc.get(a).copied().unwrap_or_default();
            diff.accounts.insert(
                *a,
                Some(AccountInfo {
                    balance,
                    nonce: 1,
                    code_hash,
                    ..Default::default()
                }),
            );
            diff.codes.insert(code_hash, code.clone());
        }
        let (slots, staked) = g.registry_storage()?;
        if !slots.is_empty() {
            diff.accounts.insert(
                gradnet_inference::registry::ADDRESS,
                Some(AccountInfo {
                    nonce: 1,
                    balance: staked,
                    ..Default::default()
                }),
            );
            diff.storage
                .insert(gradnet_inference::registry::ADDRESS, slots);
        }
        let header = Header {
            parent_hash: g.hash(),
            number: 0,
            timestamp: g.timestamp,
            proposer: Address::ZERO,
            coinbase: Address::ZERO,
            state_root: diff.commitment(B256::ZERO),
            transactions_root: crate::block::transactions_root(&[]),
            receipts_root: crate::block::receipts_root(&[]),
            logs_bloom: Bloom::ZERO,
            gas_limit: g.gas_limit,
            gas_used: 0,
            base_fee: g.base_fee,
            sidecar_root: B256::ZERO,
        };
        let executed = Executed {
            block: Block {
                header: header.clone(),
                transactions: vec![],
                sidecar: Default::default(),
            },
            receipts: vec![],
            diff,
            missed: vec![],
        };
        let w = db.begin_write().map_err(bad)?;
        Self::write(&w, &executed, None)?;
        w.open_table(META)
            .map_err(bad)?
            .insert("genesis", g.hash().as_slice())
            .map_err(bad)?;
        w.commit().map_err(bad)?;
        Ok(header)
    }

    /// How many blocks of state to keep behind the head (None: all); the
    /// default is `GRADNET_STATE_HISTORY`, or 128.
    pub fn set_state_history(&self, keep: Option<u64>) {
        self.history.store(
            keep.unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    fn state_history(&self) -> Option<u64> {
        let k = self.history.load(std::sync::atomic::Ordering::Relaxed);
        (k != u64::MAX).then_some(k)
    }

    fn write(
        w: &redb::WriteTransaction,
        e: &Executed,
        keep: Option<u64>,
    ) -> Result<(), ChainError> {
        let hash = e.block.hash();
        let n = e.block.header.number;
        let mut bytes = hash.to_vec();
        bytes.extend_from_slice(&e.block.encode());
        w.open_table(BLOCKS_BY_NUMBER)
            .map_err(bad)?
            .insert(n, bytes.as_slice())
            .map_err(bad)?;
        w.open_table(BLOCK_NUMBERS)
            .map_err(bad)?
            .insert(&hash.0, n)
            .map_err(bad)?;
        {
            let mut t = w.open_table(TX_INDEX).map_err(bad)?;
            for (i, r) in e.receipts.iter().enumerate() {
                t.insert(&r.tx_hash.0, (n, i as u32)).map_err(bad)?;
            }
        }
        let receipts = serde_json::to_vec(&e.receipts).map_err(bad)?;
        w.open_table(RECEIPTS)
            .map_err(bad)?
            .insert(n, receipts.as_slice())
            .map_err(bad)?;
        let d = &e.diff;
        if n > 0 {
            // 0 blocks kept: nothing to record
            if keep != Some(0) {
                crate::history::record(w, n, d).map_err(|e| ChainError::State(e.0))?;
            }
            crate::history::prune(w, n, keep).map_err(|e| ChainError::State(e.0))?;
        }
        let mut storage = w.open_table(STORAGE).map_err(bad)?;
        for a in &d.wiped {
            let from = storage_key(a, &U256::ZERO);
            let to = storage_key(a, &U256::MAX);
            storage
                .retain_in::<&[u8; 52], _>(&from..=&to, |_, _| false)
                .map_err(bad)?;
        }
        for (a, slots) in &d.storage {
            for (k, v) in slots {
                let key = storage_key(a, k);
                if v.is_zero() {
                    storage.remove(&key).map_err(bad)?;
                } else {
                    storage.insert(&key, v.to_be_bytes::<32>()).map_err(bad)?;
                }
            }
        }
        let mut accounts = w.open_table(ACCOUNTS).map_err(bad)?;
        for (a, info) in &d.accounts {
            match info {
                Some(i) => accounts
                    .insert(&a.into_array(), encode_account(i).as_slice())
                    .map(|_| ()),
                None => accounts.remove(&a.into_array()).map(|_| ()),
            }
            .map_err(bad)?;
        }
        let mut code = w.open_table(CODE).map_err(bad)?;
        for (h, c) in &d.codes {
            code.insert(&h.0, c.as_ref()).map_err(bad)?;
        }
        Ok(())
    }

    /// Appends an executed block on the head, durably, with the certificate
    /// that decided it.
    pub fn commit(&self, e: &Executed, certificate: &[u8]) -> Result<(), ChainError> {
        let mut head = self.head.write();
        if e.block.header.number != head.number + 1 || e.block.header.parent_hash != head.hash() {
            return Err(ChainError::Invalid(format!(
                "block {} does not extend the head {}",
                e.block.header.number, head.number
            )));
        }
        if self.db.read().is_none() {
            self.reopen();
        }
        let written = (|| {
            let w = self.with_db(|db| db.begin_write().map_err(bad))?;
            Self::write(&w, e, self.state_history())?;
            w.open_table(CERTIFICATES)
                .map_err(bad)?
                .insert(e.block.header.number, certificate)
                .map_err(bad)?;
            gradnet_types::crash::point("store-commit");
            w.commit().map_err(bad)
        })();
        if let Err(err) = written {
            tracing::error!(
                block = e.block.header.number,
                "committing: {err}; reopening the database"
            );
            self.reopen();
            return Err(err);
        }
        *head = e.block.header.clone();
        Ok(())
    }

    /// The genesis it was opened with.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The latest committed header.
    pub fn head(&self) -> Header {
        self.head.read().clone()
    }

    /// A snapshot of the committed state.
    pub fn state(&self) -> Result<StateReader, ChainError> {
        self.with_db(|db| StateReader::new(db).map_err(|e| ChainError::State(e.0)))
    }

    /// A snapshot of the state at block `number`: the head's, or one of
    /// the last blocks' (128 by default, see [`crate::history`]).
    pub fn state_at(&self, number: u64) -> Result<StateReader, ChainError> {
        let mut state = self.state()?;
        let head = {
            let t = state.txn.open_table(BLOCKS_BY_NUMBER).map_err(bad)?;
            let last = t.last().map_err(bad)?.map(|(k, _)| k.value());
            last.unwrap_or(0)
        };
        if number > head {
            return Err(ChainError::NotFound(format!(
                "header for block {number} not found"
            )));
        }
        if number == head {
            return Ok(state);
        }
        let keep = self.state_history();
        let oldest =
            crate::history::oldest(&state.txn, head, keep).map_err(|e| ChainError::State(e.0))?;
        if number < oldest {
            return Err(ChainError::NotFound(format!(
                "historical state is not available for block {number}: this node keeps the state of blocks {oldest} to {head} ({}; GRADNET_STATE_HISTORY=archive keeps all)",
                keep.map_or("archive".to_string(), |k| format!("the last {k}"))
            )));
        }
        state.at = Some(number);
        Ok(state)
    }

    /// Block `number`, if committed.
    pub fn block(&self, number: u64) -> Result<Option<Block>, ChainError> {
        let r = self.read()?;
        let t = r.open_table(BLOCKS_BY_NUMBER).map_err(bad)?;
        let v = t.get(&number).map_err(bad)?;
        v.map(|v| Block::decode(&v.value()[32..])).transpose()
    }

    /// The number of the block with `hash`.
    pub fn block_number(&self, hash: &B256) -> Result<Option<u64>, ChainError> {
        let r = self.read()?;
        let t = r.open_table(BLOCK_NUMBERS).map_err(bad)?;
        Ok(t.get(&hash.0).map_err(bad)?.map(|v| v.value()))
    }

    /// The receipts of block `number`.
    pub fn receipts(&self, number: u64) -> Result<Vec<StoredReceipt>, ChainError> {
        let r = self.read()?;
        let t = r.open_table(RECEIPTS).map_err(bad)?;
        match t.get(&number).map_err(bad)? {
            Some(v) => serde_json::from_slice(v.value()).map_err(bad),
            None => Ok(vec![]),
        }
    }

    /// The commit certificate that decided block `number`.
    pub fn certificate(&self, number: u64) -> Result<Option<Vec<u8>>, ChainError> {
        let r = self.read()?;
        let t = match r.open_table(CERTIFICATES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(bad(e)),
        };
        Ok(t.get(&number).map_err(bad)?.map(|v| v.value().to_vec()))
    }

    /// Where a transaction landed: block number and index.
    pub fn tx_location(&self, hash: &B256) -> Result<Option<(u64, u32)>, ChainError> {
        let r = self.read()?;
        let t = r.open_table(TX_INDEX).map_err(bad)?;
        Ok(t.get(&hash.0).map_err(bad)?.map(|v| v.value()))
    }
}
