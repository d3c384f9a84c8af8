//! State at recent blocks: each block's commit also records the values its
//! changes replaced (accounts and storage slots, keyed by what changed and
//! then the block), so the state at block `n` is, for every key, the value
//! replaced by its first change after `n`, or today's if it has not changed
//! since. One ordered lookup per read. The last 128 blocks are kept, as
//! geth keeps them; `GRADNET_STATE_HISTORY` sets another number (0: none,
//! nothing recorded), or `archive` keeps every block.

use alloy_primitives::{Address, U256};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use revm::state::AccountInfo;

use crate::state::{decode_account, storage_key, Diff, StateError};
use crate::store::{ACCOUNTS, STORAGE};

/// address ‖ block (big-endian) -> the account before that block (72 bytes),
/// or empty when it did not exist.
const ACCOUNT_HISTORY: TableDefinition<&[u8; 28], &[u8]> = TableDefinition::new("account_history");
/// address ‖ slot ‖ block -> the slot's value before that block.
const STORAGE_HISTORY: TableDefinition<&[u8; 60], [u8; 32]> =
    TableDefinition::new("storage_history");
/// block -> the keys it recorded (`a` + address, `s` + address ‖ slot), for pruning.
const HISTORY_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("history_keys");
/// `first` -> the first block whose replaced values were recorded (u64 BE).
const HISTORY_META: TableDefinition<&str, u64> = TableDefinition::new("history_meta");

/// How many blocks' state is kept behind the head (None: all of it).
pub fn retained() -> Option<u64> {
    match std::env::var("GRADNET_STATE_HISTORY") {
        Ok(v) if v.trim().eq_ignore_ascii_case("archive") => None,
        Ok(v) => Some(v.trim().parse().unwrap_or(128)),
        Err(_) => Some(128),
    }
}

fn account_key(a: &Address, block: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..20].copy_from_slice(a.as_slice());
    k[20..].copy_from_slice(&block.to_be_bytes());
    k
}

fn slot_key(a: &Address, slot: &U256, block: u64) -> [u8; 60] {
    let mut k = [0u8; 60];
    k[..52].copy_from_slice(&storage_key(a, slot));
    k[52..].copy_from_slice(&block.to_be_bytes());
    k
}

fn err<E: std::fmt::Display>(e: E) -> StateError {
    StateError(e.to_string())
}

/// Records what block `n`'s `diff` replaces; call before the diff is written.
pub(crate) fn record(w: &WriteTransaction, n: u64, d: &Diff) -> Result<(), StateError> {
    let mut keys: Vec<u8> = Vec::new();
    {
        let accounts = w.open_table(ACCOUNTS).map_err(err)?;
        let mut hist = w.open_table(ACCOUNT_HISTORY).map_err(err)?;
        for a in d.accounts.keys() {
            let before = accounts.get(&a.into_array()).map_err(err)?;
            let before = before.as_ref().map_or(&[][..], |v| v.value());
            hist.insert(&account_key(a, n), before).map_err(err)?;
            keys.push(b'a');
            keys.extend_from_slice(a.as_slice());
        }
    }
    let storage = w.open_table(STORAGE).map_err(err)?;
    let mut hist = w.open_table(STORAGE_HISTORY).map_err(err)?;
    let mut put = |a: &Address, slot: U256, before: [u8; 32]| -> Result<(), StateError> {
        let k = slot_key(a, &slot, n);
        if hist.get(&k).map_err(err)?.is_none() {
            hist.insert(&k, before).map_err(err)?;
            keys.push(b's');
            keys.extend_from_slice(&k[..52]);
        }
        Ok(())
    };
    // a wiped account loses every slot: each is recorded
    for a in &d.wiped {
        let from = storage_key(a, &U256::ZERO);
        let to = storage_key(a, &U256::MAX);
        for e in storage.range::<&[u8; 52]>(&from..=&to).map_err(err)? {
            let (k, v) = e.map_err(err)?;
            put(a, U256::from_be_slice(&k.value()[20..]), v.value())?;
        }
    }
    for (a, slots) in &d.storage {
        for slot in slots.keys() {
            let before = storage
                .get(&storage_key(a, slot))
                .map_err(err)?
                .map_or([0u8; 32], |v| v.value());
            put(a, *slot, before)?;
        }
    }
    drop(hist);
    w.open_table(HISTORY_KEYS)
        .map_err(err)?
        .insert(n, keys.as_slice())
        .map_err(err)?;
    let mut meta = w.open_table(HISTORY_META).map_err(err)?;
    if meta.get("first").map_err(err)?.is_none() {
        meta.insert("first", n).map_err(err)?;
    }
    Ok(())
}

/// Drops what blocks up to `head - keep` recorded (nothing in archive mode).
pub(crate) fn prune(w: &WriteTransaction, head: u64, keep: Option<u64>) -> Result<(), StateError> {
    let Some(keep) = keep else { return Ok(()) };
    let Some(last) = head.checked_sub(keep) else {
        return Ok(());
    };
    let mut keys_t = w.open_table(HISTORY_KEYS).map_err(err)?;
    let mut accounts = w.open_table(ACCOUNT_HISTORY).map_err(err)?;
    let mut slots = w.open_table(STORAGE_HISTORY).map_err(err)?;
    loop {
        let Some((n, keys)) = keys_t
            .first()
            .map_err(err)?
            .map(|(n, k)| (n.value(), k.value().to_vec()))
        else {
            break;
        };
        if n > last {
            break;
        }
        let mut rest = &keys[..];
        while let Some((&tag, tail)) = rest.split_first() {
            let len = if tag == b'a' { 20 } else { 52 };
            let (key, tail) = tail.split_at(len.min(tail.len()));
            if tag == b'a' {
                accounts
                    .remove(&account_key(&Address::from_slice(key), n))
                    .map_err(err)?;
            } else {
                let mut k = [0u8; 60];
                k[..52].copy_from_slice(key);
                k[52..].copy_from_slice(&n.to_be_bytes());
                slots.remove(&k).map_err(err)?;
            }
            rest = tail;
        }
        keys_t.remove(n).map_err(err)?;
    }
    Ok(())
}

/// The oldest block whose state can be read at head `head`.
pub(crate) fn oldest(r: &ReadTransaction, head: u64, keep: Option<u64>) -> Result<u64, StateError> {
    let first = match r.open_table(HISTORY_META) {
        Ok(t) => t.get("first").map_err(err)?.map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(err(e)),
    };
    // history starts at block `first`: the state before it is the state at `first - 1`
    let from = first.map_or(head, |f| f.saturating_sub(1));
    Ok(match keep {
        Some(k) => from.max(head.saturating_sub(k)),
        None => from,
    })
}

/// The account at block `n` if a later block changed it (outer None: no
/// change since `n`, read today's; inner None: it did not exist).
pub(crate) fn account_at(
    r: &ReadTransaction,
    a: &Address,
    n: u64,
) -> Result<Option<Option<AccountInfo>>, StateError> {
    let t = match r.open_table(ACCOUNT_HISTORY) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let from = account_key(a, n + 1);
    let to = account_key(a, u64::MAX);
    let first = t.range::<&[u8; 28]>(&from..=&to).map_err(err)?.next();
    Ok(match first {
        Some(e) => {
            let (_, v) = e.map_err(err)?;
            let v = v.value();
            Some((!v.is_empty()).then(|| decode_account(v)))
        }
        None => None,
    })
}

/// A slot at block `n` if a later block changed it (None: read today's).
pub(crate) fn storage_at(
    r: &ReadTransaction,
    a: &Address,
    slot: &U256,
    n: u64,
) -> Result<Option<U256>, StateError> {
    let t = match r.open_table(STORAGE_HISTORY) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let from = slot_key(a, slot, n + 1);
    let to = slot_key(a, slot, u64::MAX);
    let first = t.range::<&[u8; 60]>(&from..=&to).map_err(err)?.next();
    Ok(match first {
        Some(e) => Some(U256::from_be_bytes(e.map_err(err)?.1.value())),
        None => None,
    })
}
