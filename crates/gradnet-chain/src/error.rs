use thiserror::Error;

#[derive(Debug, Error)]
pub enum ChainError {
    /// A transaction refused at the door; the text is what Ethereum clients
    /// print for the same case (geth's wording).
    #[error("{0}")]
    Rejected(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("execution: {0}")]
    Execution(String),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ChainError {
            fn from(e: $t) -> Self {
                ChainError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
