//! Storage of the system precompiles' accounts, read and written the same
//! way whether a transaction runs (revm's journal, reverted with the call),
//! a block applies its inference settlement (the block's overlay), a
//! proposer samples nodes (the committed state) or the genesis is written.
//! The ledger implements [`Slots`] for its committed state and overlays.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, U256};
use revm::context_interface::JournalTr;

use crate::error::StorageFault;

/// 32-byte storage slots of one system contract.
pub trait Slots {
    /// Reads a slot (zero when unset).
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault>;
    /// Writes a slot.
    fn set(&mut self, slot: U256, value: U256) -> Result<(), StorageFault>;

    /// Bytes stored as a length slot followed by 32-byte chunks.
    fn get_bytes(&mut self, slot: U256) -> Result<Vec<u8>, StorageFault> {
        let len = self.get(slot)?;
        let len =
            usize::try_from(len).map_err(|_| StorageFault("stored length overflows".into()))?;
        let mut out = Vec::with_capacity(len);
        for i in 0..len.div_ceil(32) {
            out.extend_from_slice(&self.get(slot + U256::from(1 + i))?.to_be_bytes::<32>());
        }
        out.truncate(len);
        Ok(out)
    }

    /// Writes bytes as [`Slots::get_bytes`] reads them.
    fn set_bytes(&mut self, slot: U256, bytes: &[u8]) -> Result<(), StorageFault> {
        self.set(slot, U256::from(bytes.len()))?;
        for (i, chunk) in bytes.chunks(32).enumerate() {
            let mut word = [0u8; 32];
            word[..chunk.len()].copy_from_slice(chunk);
            self.set(slot + U256::from(1 + i), U256::from_be_bytes(word))?;
        }
        Ok(())
    }
}

/// The slot of `key` under `tag`: keccak(tag ‖ key), so records of
/// different kinds never collide.
pub fn slot(tag: &str, key: &[u8]) -> U256 {
    U256::from_be_bytes(keccak256([tag.as_bytes(), b":", key].concat()).0)
}

/// Inside a transaction: through revm's journal.
pub struct JournalSlots<'a, J> {
    /// revm's journal.
    pub journal: &'a mut J,
    /// The system contract whose storage this is.
    pub account: Address,
}

impl<J: JournalTr> Slots for JournalSlots<'_, J> {
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault> {
        // revm reads storage only of accounts this transaction has loaded
        self.journal
            .load_account(self.account)
            .map_err(|e| StorageFault(e.to_string()))?;
        self.journal
            .sload(self.account, slot)
            .map(|s| s.data)
            .map_err(|e| StorageFault(e.to_string()))
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), StorageFault> {
        self.journal
            .load_account(self.account)
            .map_err(|e| StorageFault(e.to_string()))?;
        self.journal
            .sstore(self.account, slot, value)
            .map(|_| ())
            .map_err(|e| StorageFault(e.to_string()))
    }
}

impl<S: Slots> Slots for &mut S {
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault> {
        (**self).get(slot)
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), StorageFault> {
        (**self).set(slot, value)
    }
}

/// Slots being written (the genesis).
impl Slots for BTreeMap<U256, U256> {
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault> {
        Ok(BTreeMap::get(self, &slot).copied().unwrap_or_default())
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), StorageFault> {
        self.insert(slot, value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_across_chunks() {
        let mut m = BTreeMap::new();
        for len in [0usize, 1, 31, 32, 33, 100] {
            let b: Vec<u8> = (0..len as u8).collect();
            m.set_bytes(slot("t", &[len as u8]), &b).unwrap();
            assert_eq!(m.get_bytes(slot("t", &[len as u8])).unwrap(), b);
        }
        assert_ne!(slot("a", b"x"), slot("b", b"x"));
    }
}
