//! World state for execution: a snapshot of the committed state in redb
//! with a block's changes layered on top (revm reads through it and
//! commits into it), the change set the block writes back, and the state
//! commitment every validator recomputes before it votes.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use redb::{ReadTransaction, ReadableDatabase};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, Database, DatabaseCommit, DatabaseRef};
use revm::primitives::{AddressMap, KECCAK_EMPTY};
use revm::state::{Account, AccountInfo};

use crate::store::{ACCOUNTS, BLOCKS_BY_NUMBER, CODE, STORAGE};

/// A state read that failed (revm's database error).
#[derive(Debug, thiserror::Error)]
#[error("state: {0}")]
pub struct StateError(pub String);

impl DBErrorMarker for StateError {}

impl From<redb::Error> for StateError {
    fn from(e: redb::Error) -> Self {
        StateError(e.to_string())
    }
}

/// Balance, nonce, code hash of one account as stored (72 bytes).
pub fn encode_account(a: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..8].copy_from_slice(&a.nonce.to_be_bytes());
    out[8..40].copy_from_slice(&a.balance.to_be_bytes::<32>());
    out[40..].copy_from_slice(a.code_hash.as_slice());
    out
}

/// The stored account; its code is loaded by hash when revm needs it
/// (`code: None`), except for accounts without code.
pub fn decode_account(b: &[u8]) -> AccountInfo {
    let code_hash = B256::from_slice(&b[40..72]);
    AccountInfo {
        nonce: u64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
        balance: U256::from_be_slice(&b[8..40]),
        code_hash,
        code: (code_hash == KECCAK_EMPTY).then(Bytecode::default),
        ..Default::default()
    }
}

/// The storage table's key: address then slot.
pub fn storage_key(a: &Address, slot: &U256) -> [u8; 52] {
    let mut k = [0u8; 52];
    k[..20].copy_from_slice(a.as_slice());
    k[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    k
}

/// The committed state at one moment (a redb read snapshot): the head's,
/// or an earlier block's (see [`crate::history`]).
pub struct StateReader {
    pub(crate) txn: ReadTransaction,
    /// The block whose state this reads (None: the snapshot's head).
    pub(crate) at: Option<u64>,
}

impl StateReader {
    /// A snapshot of the committed state.
    pub fn new(db: &redb::Database) -> Result<Self, StateError> {
        Ok(StateReader {
            txn: db.begin_read().map_err(|e| StateError(e.to_string()))?,
            at: None,
        })
    }

    /// The block whose state this reads (None: the head's).
    pub fn block(&self) -> Option<u64> {
        self.at
    }

    /// An account (none: it does not exist).
    pub fn account(&self, a: &Address) -> Result<Option<AccountInfo>, StateError> {
        if let Some(n) = self.at {
            if let Some(then) = crate::history::account_at(&self.txn, a, n)? {
                return Ok(then);
            }
        }
        let t = self.txn.open_table(ACCOUNTS).map_err(redb::Error::from)?;
        let v = t.get(&a.into_array()).map_err(redb::Error::from)?;
        Ok(v.map(|v| decode_account(v.value())))
    }

    /// A storage slot (zero when unset).
    pub fn storage(&self, a: &Address, slot: &U256) -> Result<U256, StateError> {
        if let Some(n) = self.at {
            if let Some(then) = crate::history::storage_at(&self.txn, a, slot, n)? {
                return Ok(then);
            }
        }
        let t = self.txn.open_table(STORAGE).map_err(redb::Error::from)?;
        let v = t.get(&storage_key(a, slot)).map_err(redb::Error::from)?;
        Ok(v.map_or(U256::ZERO, |v| U256::from_be_bytes(v.value())))
    }

    /// Contract code by its hash.
    pub fn code(&self, hash: &B256) -> Result<Option<Bytes>, StateError> {
        if *hash == KECCAK_EMPTY {
            return Ok(Some(Bytes::new()));
        }
        let t = self.txn.open_table(CODE).map_err(redb::Error::from)?;
        let v = t.get(&hash.0).map_err(redb::Error::from)?;
        Ok(v.map(|v| Bytes::copy_from_slice(v.value())))
    }

    /// The hash of block `number` (zero if there is none).
    pub fn block_hash(&self, number: u64) -> Result<B256, StateError> {
        let t = self
            .txn
            .open_table(BLOCKS_BY_NUMBER)
            .map_err(redb::Error::from)?;
        let v = t.get(&number).map_err(redb::Error::from)?;
        Ok(v.map_or(B256::ZERO, |v| B256::from_slice(&v.value()[..32])))
    }
}

/// What a block changed: accounts (None: deleted), storage slots, code,
/// and accounts whose storage was wiped (self-destructed or re-created).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Diff {
    /// Accounts changed (none: deleted).
    pub accounts: BTreeMap<Address, Option<AccountInfo>>,
    /// Storage slots written.
    pub storage: BTreeMap<Address, BTreeMap<U256, U256>>,
    /// Accounts whose storage was wiped.
    pub wiped: BTreeSet<Address>,
    /// Code deployed, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}

impl Diff {
    /// The state commitment after this diff: a hash chain over each block's
    /// canonical change set, so two validators agree on it exactly when
    /// they executed the same changes from the same state.
    pub fn commitment(&self, parent: B256) -> B256 {
        let mut buf = Vec::with_capacity(64 + self.accounts.len() * 100);
        buf.extend_from_slice(parent.as_slice());
        for a in &self.wiped {
            buf.push(0xff);
            buf.extend_from_slice(a.as_slice());
        }
        for (a, info) in &self.accounts {
            buf.extend_from_slice(a.as_slice());
            match info {
                None => buf.push(0),
                Some(i) => {
                    buf.push(1);
                    buf.extend_from_slice(&encode_account(i));
                }
            }
        }
        for (a, slots) in &self.storage {
            for (k, v) in slots {
                buf.extend_from_slice(a.as_slice());
                buf.extend_from_slice(&k.to_be_bytes::<32>());
                buf.extend_from_slice(&v.to_be_bytes::<32>());
            }
        }
        keccak256(&buf)
    }
}

/// The snapshot with a block's changes on top; revm's database.
#[derive(Clone)]
pub struct Overlay<'a> {
    /// The committed state below.
    pub base: &'a StateReader,
    /// The block's changes so far.
    pub diff: Diff,
}

impl<'a> Overlay<'a> {
    /// No changes yet on top of `base`.
    pub fn new(base: &'a StateReader) -> Self {
        Overlay {
            base,
            diff: Diff::default(),
        }
    }
}

impl DatabaseRef for Overlay<'_> {
    type Error = StateError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        if let Some(a) = self.diff.accounts.get(&address) {
            return Ok(a.clone());
        }
        self.base.account(&address)
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, StateError> {
        if let Some(c) = self.diff.codes.get(&code_hash) {
            return Ok(Bytecode::new_raw(c.clone()));
        }
        match self.base.code(&code_hash)? {
            Some(c) => Ok(Bytecode::new_raw(c)),
            None => Err(StateError(format!("code {code_hash} is missing"))),
        }
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, StateError> {
        if let Some(v) = self.diff.storage.get(&address).and_then(|s| s.get(&index)) {
            return Ok(*v);
        }
        if self.diff.wiped.contains(&address) {
            return Ok(U256::ZERO);
        }
        self.base.storage(&address, &index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, StateError> {
        self.base.block_hash(number)
    }
}

impl Database for Overlay<'_> {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        self.basic_ref(address)
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StateError> {
        self.code_by_hash_ref(code_hash)
    }

    fn storage(&mut self, address: Address, index: U256) -> Result<U256, StateError> {
        self.storage_ref(address, index)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StateError> {
        self.block_hash_ref(number)
    }
}

impl DatabaseCommit for Overlay<'_> {
    fn commit(&mut self, changes: AddressMap<Account>) {
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            if account.is_selfdestructed() {
                self.diff.accounts.insert(address, None);
                self.diff.storage.remove(&address);
                self.diff.wiped.insert(address);
                continue;
            }
            if account.is_created() {
                self.diff.storage.remove(&address);
                self.diff.wiped.insert(address);
            }
            if let Some(code) = &account.info.code {
                if account.info.code_hash != KECCAK_EMPTY {
                    self.diff
                        .codes
                        .insert(account.info.code_hash, code.original_bytes());
                }
            }
            let slots = self.diff.storage.entry(address).or_default();
            for (k, v) in account.changed_storage_slots() {
                slots.insert(*k, v.present_value);
            }
            if slots.is_empty() {
                self.diff.storage.remove(&address);
            }
            let mut info = account.info.clone();
            info.code = (info.code_hash == KECCAK_EMPTY).then(Bytecode::default);
            self.diff.accounts.insert(address, Some(info));
        }
    }
}
