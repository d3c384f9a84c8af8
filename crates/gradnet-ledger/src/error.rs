//! The ledger's errors: what a client did wrong (refused, invalid, not
//! found) apart from what failed under it (storage, state, execution), the
//! latter with their sources.

use gradnet_inference::error::{StorageFault, SystemError};
use thiserror::Error;

use crate::state::StateError;

/// What went wrong in the ledger.
#[derive(Debug, Error)]
pub enum ChainError {
    /// A transaction refused at the door; the text is what Ethereum clients
    /// print for the same case (geth's wording).
    #[error("{0}")]
    Rejected(String),
    /// Input that does not hold (a malformed block, genesis or parameter).
    #[error("{0}")]
    Invalid(String),
    /// Something asked for that is not there.
    #[error("{0}")]
    NotFound(String),
    /// The database failed.
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// The state as the EVM reads it failed, or a stored record does not
    /// decode.
    #[error("state: {0}")]
    State(String),
    /// A system contract failed where nothing may revert (a block's
    /// settlement, scheduled tasks, the genesis).
    #[error(transparent)]
    System(#[from] SystemError),
    /// The EVM failed (not a revert: that is a receipt).
    #[error("execution: {0}")]
    Execution(String),
}

impl From<StateError> for ChainError {
    fn from(e: StateError) -> Self {
        ChainError::State(e.0)
    }
}

impl From<StorageFault> for ChainError {
    fn from(f: StorageFault) -> Self {
        ChainError::System(f.into())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self {
                ChainError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
