//! What can go wrong talking to a node, each case with what the caller needs
//! to act on it.

use alloy_primitives::B256;

/// A failed request to a node or its JSON-RPC.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached or the transfer broke off.
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// The transport's error.
        #[source]
        source: reqwest::Error,
    },
    /// The node's API refused the request (its error code and message).
    #[error("{code} ({status}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's error code, such as `invalid_request`.
        code: String,
        /// What the node said.
        message: String,
    },
    /// A JSON-RPC error response (Ethereum's codes: -32602 invalid params,
    /// 3 execution reverted, ...).
    #[error("{method}: {message} ({code})")]
    Rpc {
        /// The method called.
        method: String,
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
        /// The error's `data`, such as a revert's ABI-encoded reason.
        data: Option<Box<serde_json::Value>>,
    },
    /// The JSON-RPC transport failed (connection, HTTP status, decoding).
    #[error("{method}: {message}")]
    Transport {
        /// The method called.
        method: String,
        /// The transport's message.
        message: String,
    },
    /// A transaction was included and reverted.
    #[error("transaction {hash} reverted: {reason}")]
    Reverted {
        /// The transaction.
        hash: B256,
        /// The decoded reason ([`crate::decode_revert`]).
        reason: String,
    },
    /// Something was not done in time.
    #[error("{0}")]
    Timeout(String),
    /// A response that does not say what it should (a stream without its
    /// end, a download whose bytes do not hash to its content id).
    #[error("{0}")]
    Invalid(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A node's answer that does not hold: a bad signature, outputs that
    /// are not the signed ones.
    #[error("not verified: {0}")]
    Unverified(String),
    /// A transaction could not be signed (a bad key).
    #[error("signing: {0}")]
    Signing(String),
}

impl ClientError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        ClientError::Io {
            path: path.to_string(),
            source,
        }
    }
}
