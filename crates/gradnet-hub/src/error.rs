use gradnet_types::ContentId;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("blob is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("blob {cid} failed verification ({detail}); it will not be served")]
    Corrupt { cid: ContentId, detail: String },
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata database: {0}")]
    Db(String),
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for HubError {
            fn from(e: $t) -> Self {
                HubError::Db(e.to_string())
            }
        }
    )*};
}
db_errors!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    serde_json::Error
);

pub type Result<T, E = HubError> = std::result::Result<T, E>;
