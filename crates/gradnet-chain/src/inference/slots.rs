//! Storage of the system precompiles' accounts, read and written the same
//! way whether a transaction runs (revm's journal, reverted with the call),
//! a block applies its inference settlement (the block's overlay), a
//! proposer samples nodes (the committed state) or the genesis is written.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, U256};
use revm::context_interface::JournalTr;

use crate::state::{Overlay, StateReader};

pub trait Slots {
    fn get(&mut self, slot: U256) -> Result<U256, String>;
    fn set(&mut self, slot: U256, value: U256) -> Result<(), String>;

    /// Bytes stored as a length slot followed by 32-byte chunks.
    fn get_bytes(&mut self, slot: U256) -> Result<Vec<u8>, String> {
        let len = self.get(slot)?;
        let len = usize::try_from(len).map_err(|_| "stored length overflows".to_string())?;
        let mut out = Vec::with_capacity(len);
        for i in 0..len.div_ceil(32) {
            out.extend_from_slice(&self.get(slot + U256::from(1 + i))?.to_be_bytes::<32>());
        }
        out.truncate(len);
        Ok(out)
    }

    fn set_bytes(&mut self, slot: U256, bytes: &[u8]) -> Result<(), String> {
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
    pub journal: &'a mut J,
    pub account: Address,
}

impl<J: JournalTr> Slots for JournalSlots<'_, J> {
    fn get(&mut self, slot: U256) -> Result<U256, String> {
        // revm reads storage only of accounts this transaction has loaded
        self.journal
            .load_account(self.account)
            .map_err(|e| e.to_string())?;
        self.journal
            .sload(self.account, slot)
            .map(|s| s.data)
            .map_err(|e| e.to_string())
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), String> {
        self.journal
            .load_account(self.account)
            .map_err(|e| e.to_string())?;
        self.journal
            .sstore(self.account, slot, value)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The committed state, read only.
pub struct ReaderSlots<'a> {
    pub state: &'a StateReader,
    pub account: Address,
}

impl Slots for ReaderSlots<'_> {
    fn get(&mut self, slot: U256) -> Result<U256, String> {
        self.state
            .storage(&self.account, &slot)
            .map_err(|e| e.to_string())
    }
    fn set(&mut self, _: U256, _: U256) -> Result<(), String> {
        Err("the committed state is read only".into())
    }
}

/// A block's overlay, after its transactions ran.
pub struct OverlaySlots<'a, 'b> {
    pub overlay: &'a mut Overlay<'b>,
    pub account: Address,
}

impl Slots for OverlaySlots<'_, '_> {
    fn get(&mut self, slot: U256) -> Result<U256, String> {
        use revm::database_interface::Database;
        self.overlay
            .storage(self.account, slot)
            .map_err(|e| e.to_string())
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), String> {
        self.overlay
            .diff
            .storage
            .entry(self.account)
            .or_default()
            .insert(slot, value);
        Ok(())
    }
}

impl<S: Slots> Slots for &mut S {
    fn get(&mut self, slot: U256) -> Result<U256, String> {
        (**self).get(slot)
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), String> {
        (**self).set(slot, value)
    }
}

/// Slots being written (the genesis).
impl Slots for BTreeMap<U256, U256> {
    fn get(&mut self, slot: U256) -> Result<U256, String> {
        Ok(BTreeMap::get(self, &slot).copied().unwrap_or_default())
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), String> {
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
