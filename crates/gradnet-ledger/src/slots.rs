//! The ledger's state seen as system-contract storage ([`Slots`]): the
//! committed state (read only) and a block's overlay after its
//! transactions ran.

use alloy_primitives::{Address, U256};
use gradnet_inference::error::StorageFault;
use gradnet_inference::slots::Slots;

use crate::state::{Overlay, StateReader};

/// The committed state, read only.
pub struct ReaderSlots<'a> {
    /// The committed state.
    pub state: &'a StateReader,
    /// The system contract whose storage this is.
    pub account: Address,
}

impl Slots for ReaderSlots<'_> {
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault> {
        self.state
            .storage(&self.account, &slot)
            .map_err(|e| StorageFault(e.to_string()))
    }
    fn set(&mut self, _: U256, _: U256) -> Result<(), StorageFault> {
        Err(StorageFault("the committed state is read only".into()))
    }
}

/// A block's overlay, after its transactions ran.
pub struct OverlaySlots<'a, 'b> {
    /// The block's state so far.
    pub overlay: &'a mut Overlay<'b>,
    /// The system contract whose storage this is.
    pub account: Address,
}

impl Slots for OverlaySlots<'_, '_> {
    fn get(&mut self, slot: U256) -> Result<U256, StorageFault> {
        use revm::database_interface::Database;
        self.overlay
            .storage(self.account, slot)
            .map_err(|e| StorageFault(e.to_string()))
    }
    fn set(&mut self, slot: U256, value: U256) -> Result<(), StorageFault> {
        self.overlay
            .diff
            .storage
            .entry(self.account)
            .or_default()
            .insert(slot, value);
        Ok(())
    }
}
