//! Where names come from. A node with a ledger serves the network's names
//! from the model registry on chain (owners, versions, files by content id)
//! and fetches their bytes from peers by content id; a node without one
//! keeps its own names in its database. A chain's name always wins: local
//! names (development mode) are served only where the chain has none.

use std::sync::Arc;

use crate::meta::{FileEntry, Repo, VersionInfo};
use crate::{Hub, Result};

/// Names, owners, versions and files from somewhere other than this hub's
/// database (the chain).
pub trait NameSource: Send + Sync {
    /// Every repository.
    fn repos(&self) -> Result<Vec<Repo>>;
    /// The repository `name`, if there is one.
    fn repo(&self, name: &str) -> Result<Option<Repo>>;
    /// Its versions, oldest first; `None` when there is no such repository.
    fn versions(&self, name: &str) -> Result<Option<Vec<VersionInfo>>>;
    /// The files of `name@version`, if that version exists.
    fn files(&self, name: &str, version: &str) -> Result<Option<Vec<FileEntry>>>;
}

impl Hub {
    /// Serves names from `source` from now on (set once, when the ledger starts).
    pub fn use_names(&self, source: Arc<dyn NameSource>) {
        let _ = self.0.names.set(source);
    }

    /// The chain's names, if this node has a ledger.
    pub fn chain_names(&self) -> Option<&Arc<dyn NameSource>> {
        self.0.names.get()
    }

    /// Refuses a local write to a name the chain holds.
    pub(crate) fn not_on_chain(&self, name: &str) -> Result<()> {
        match self.on_chain(name)? {
            Some(r) => Err(crate::HubError::OnChain(format!(
                "model repository `{name}` is registered on chain (owner {}): publish to it with a transaction to the model registry (`gradnet model publish --rpc ...`)",
                r.owner
            ))),
            None => Ok(()),
        }
    }

    /// Whether `name` is the chain's (so local writes to it are refused).
    pub fn on_chain(&self, name: &str) -> Result<Option<Repo>> {
        match self.chain_names() {
            Some(src) => src.repo(name),
            None => Ok(None),
        }
    }
}
