//! gradnet's model hub: a content-addressed blob store (chunked, verified on
//! read) and model repositories with versions and files, in redb.

mod blobs;
mod error;
mod meta;
mod names;
mod owners;
mod peers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

pub use blobs::{BlobInfo, BlobWriter, Manifest, CHUNK_SIZE};
pub use error::{HubError, Result};
pub use gradnet_types::version::Version;
pub use meta::{FileEntry, Repo, RepoSpec, VersionInfo};
pub use names::NameSource;
pub use owners::{Writer, ANONYMOUS};

/// A hub's limits and peers.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Largest blob accepted, in bytes.
    pub max_blob_size: u64,
    /// Other nodes' API URLs, asked for a blob by content id when this hub
    /// lacks it.
    pub peers: Vec<String>,
    /// Bytes one account may upload to this node, in all.
    pub quota_bytes: u64,
    /// Versions a repository may have.
    pub max_versions: usize,
    /// Files a version may have.
    pub max_files: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_blob_size: 4 << 30,
            peers: vec![],
            quota_bytes: 16 << 30,
            max_versions: 1000,
            max_files: 256,
        }
    }
}

/// A handle to a hub on disk; cheap to clone.
#[derive(Clone)]
pub struct Hub(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    db: redb::Database,
    config: HubConfig,
    version_lock: Mutex<()>,
    /// Held while a blob is fetched from a peer.
    fetching: tokio::sync::Mutex<()>,
    /// The chain's names, once the ledger runs.
    names: std::sync::OnceLock<std::sync::Arc<dyn NameSource>>,
}

impl Hub {
    /// Opens (creating if needed) the hub under `dir`.
    pub fn open(dir: &Path, config: HubConfig) -> Result<Hub> {
        std::fs::create_dir_all(dir.join("chunks"))?;
        // uploads that were cut off leave staging folders behind
        let _ = std::fs::remove_dir_all(dir.join("staging"));
        // names and versions: small; redb's default cache (1 GiB) would
        // only let it grow with them
        let db = redb::Builder::new()
            .set_cache_size(16 << 20)
            .create(dir.join("meta.redb"))?;
        let hub = Hub(Arc::new(Inner {
            dir: dir.to_path_buf(),
            db,
            config,
            version_lock: Mutex::new(()),
            fetching: tokio::sync::Mutex::new(()),
            names: Default::default(),
        }));
        hub.create_tables()?;
        Ok(hub)
    }

    /// The hub's limits and peers.
    pub fn config(&self) -> &HubConfig {
        &self.0.config
    }

    /// A writer for a new blob, limited to the configured maximum size.
    pub fn writer(&self) -> Result<BlobWriter> {
        self.writer_with_limit(self.0.config.max_blob_size)
    }

    /// A writer for a new blob of at most `limit` bytes.
    pub fn writer_with_limit(&self, limit: u64) -> Result<BlobWriter> {
        let staging = self
            .0
            .dir
            .join("staging")
            .join(format!("{:016x}", rand_id()));
        BlobWriter::new(
            self.clone(),
            staging,
            limit.min(self.0.config.max_blob_size),
        )
    }

    pub(crate) fn db(&self) -> &redb::Database {
        &self.0.db
    }

    pub(crate) fn chunks_dir(&self) -> PathBuf {
        self.0.dir.join("chunks")
    }

    pub(crate) fn version_lock(&self) -> MutexGuard<'_, ()> {
        self.0
            .version_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}
