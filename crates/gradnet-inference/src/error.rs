//! How a system contract call ends when it does not return: a revert that
//! the caller sees (a valid block may hold one), or a storage fault, which
//! is the node's failure and never the call's: it stops the block instead
//! of being written into it as a revert that other nodes would not make.

/// The system contracts' storage could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageFault(pub String);

/// Why a system contract call did not return.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemError {
    /// The call is refused with this reason (ABI-encoded as `Error(string)`).
    #[error("{0}")]
    Revert(String),
    /// The state failed under the call.
    #[error(transparent)]
    Storage(#[from] StorageFault),
}

impl SystemError {
    /// The revert reason; a storage fault is passed on as it is.
    pub fn revert_reason(self) -> Result<String, StorageFault> {
        match self {
            SystemError::Revert(why) => Ok(why),
            SystemError::Storage(f) => Err(f),
        }
    }
}

impl From<String> for SystemError {
    fn from(why: String) -> Self {
        SystemError::Revert(why)
    }
}

impl From<&str> for SystemError {
    fn from(why: &str) -> Self {
        SystemError::Revert(why.to_string())
    }
}

/// A [`SystemError::Revert`] with a formatted reason.
#[macro_export]
macro_rules! revert {
    ($($t:tt)*) => {
        $crate::error::SystemError::Revert(format!($($t)*))
    };
}
