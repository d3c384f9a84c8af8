use gradnet_types::ContentId;

/// What a hub operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// No such repository, version, file or blob (named).
    #[error("{0} not found")]
    NotFound(String),
    /// A repository of that name exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A name, version or reference that is not valid.
    #[error("{0}")]
    Invalid(String),
    /// The writer may not change this repository (not its owner or a
    /// collaborator; or an owner-only change).
    #[error("{0}")]
    Forbidden(String),
    /// The account's storage quota on this node would be exceeded.
    #[error("storage quota of {account} on this node exceeded: {used} of {quota} bytes used, this upload needs {needed} more")]
    Quota {
        /// The account (`anonymous` in development mode).
        account: String,
        /// Bytes it has stored here.
        used: u64,
        /// Its quota.
        quota: u64,
        /// What the refused upload would add (at least).
        needed: u64,
    },
    /// A name the chain holds: changed only by transactions.
    #[error("{0}")]
    OnChain(String),
    /// A repository at its limit of versions, or a version at its limit of files.
    #[error("{0}")]
    Limit(String),
    /// A signed request seen before.
    #[error("nonce {nonce} was already used by {account}: a replayed request is refused; sign again with a fresh nonce")]
    Replayed {
        /// The signer.
        account: String,
        /// The nonce.
        nonce: String,
    },
    /// A blob past the size limit.
    #[error("blob is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Stored bytes that no longer hash to their id.
    #[error("blob {cid} failed verification ({detail}); it will not be served")]
    Corrupt {
        /// The blob.
        cid: ContentId,
        /// Which chunk or length failed.
        detail: String,
    },
    /// The file system.
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata database.
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

/// A hub operation's result.
pub type Result<T, E = HubError> = std::result::Result<T, E>;
