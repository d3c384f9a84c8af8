//! Content-addressed blobs: a blob is split into fixed-size chunks, each stored
//! in a file named by its BLAKE3 hash; a manifest (size and chunk hashes) is
//! kept in the metadata database under the blob's content id. Writes stream
//! chunk by chunk (at most two chunks in memory) and reads verify every chunk
//! against its hash before handing out a byte of it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use gradnet_types::ContentId;
use tokio::task::JoinHandle;

use crate::error::{HubError, Result};
use crate::Hub;

/// Chunk size: large enough that a 500 MB model is ~120 files and one fsync
/// per chunk is cheap, small enough that memory stays flat.
pub const CHUNK_SIZE: usize = 4 << 20;

/// How a blob is stored: its id, size and chunks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The blob's content id (BLAKE3 of all its bytes).
    pub cid: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// BLAKE3 of each chunk, in order.
    pub chunks: Vec<[u8; 32]>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + 32 * self.chunks.len());
        v.extend_from_slice(&self.size.to_le_bytes());
        v.extend_from_slice(&(CHUNK_SIZE as u64).to_le_bytes());
        self.chunks.iter().for_each(|c| v.extend_from_slice(c));
        v
    }

    pub(crate) fn decode(cid: ContentId, b: &[u8]) -> Result<Manifest> {
        let bad = || HubError::Corrupt {
            cid,
            detail: "manifest is malformed".into(),
        };
        if b.len() < 16 || !(b.len() - 16).is_multiple_of(32) {
            return Err(bad());
        }
        let size = u64::from_le_bytes(b[..8].try_into().unwrap());
        let chunk = u64::from_le_bytes(b[8..16].try_into().unwrap());
        let chunks: Vec<[u8; 32]> = b[16..].chunks(32).map(|c| c.try_into().unwrap()).collect();
        if chunk != CHUNK_SIZE as u64 || size.div_ceil(chunk) != chunks.len() as u64 {
            return Err(bad());
        }
        Ok(Manifest { cid, size, chunks })
    }

    fn chunk_len(&self, i: usize) -> usize {
        let start = i as u64 * CHUNK_SIZE as u64;
        (self.size - start).min(CHUNK_SIZE as u64) as usize
    }
}

/// Where a blob went: its id and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobInfo {
    /// The blob's content id.
    pub cid: ContentId,
    /// Its size in bytes.
    pub size: u64,
}

pub(crate) fn chunk_path(dir: &Path, hash: &[u8; 32]) -> PathBuf {
    let h = hex::encode(hash);
    dir.join(&h[..2]).join(h)
}

/// A chunk being stored: gives back the blob hasher and the chunk's hash.
type ChunkTask = JoinHandle<Result<(blake3::Hasher, [u8; 32])>>;

/// Streams a blob in; [`BlobWriter::finish`] makes it visible. Dropping a
/// writer that was not finished leaves nothing behind.
pub struct BlobWriter {
    hub: Hub,
    staging: Arc<StagingDir>,
    buf: Vec<u8>,
    size: u64,
    limit: u64,
    chunks: Vec<[u8; 32]>,
    hasher: Option<blake3::Hasher>,
    pending: Option<ChunkTask>,
}

impl BlobWriter {
    pub(crate) fn new(hub: Hub, staging: PathBuf, limit: u64) -> Result<Self> {
        std::fs::create_dir_all(&staging)?;
        Ok(BlobWriter {
            hub,
            staging: Arc::new(StagingDir(staging)),
            buf: Vec::with_capacity(CHUNK_SIZE),
            size: 0,
            limit,
            chunks: Vec::new(),
            hasher: Some(blake3::Hasher::new()),
            pending: None,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Appends `data` (refused past the writer's size limit).
    pub async fn write(&mut self, mut data: &[u8]) -> Result<()> {
        self.size += data.len() as u64;
        if self.size > self.limit {
            return Err(HubError::TooLarge { limit: self.limit });
        }
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_SIZE {
                self.flush_chunk().await?;
            }
        }
        Ok(())
    }

    /// Hands the full buffer to a blocking task (hash, write, fsync) and goes
    /// on receiving; waits for the previous chunk first, so two at most are held.
    async fn flush_chunk(&mut self) -> Result<()> {
        let hasher = self.settle().await?;
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_SIZE));
        let staging = self.staging.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let mut hasher = hasher;
            // the blob's hash and the chunk's (hash, write, fsync) run side by side
            let stored = std::thread::scope(|s| {
                let chunk = &chunk;
                let store = s.spawn(move || -> std::io::Result<[u8; 32]> {
                    let hash = *blake3::hash(chunk).as_bytes();
                    write_synced(&staging.join(hex::encode(hash)), chunk)?;
                    gradnet_types::crash::point("hub-chunk");
                    Ok(hash)
                });
                hasher.update(chunk);
                store
                    .join()
                    .map_err(|_| std::io::Error::other("chunk writer panicked"))
            })?;
            Ok((hasher, stored?))
        }));
        Ok(())
    }

    async fn settle(&mut self) -> Result<blake3::Hasher> {
        if let Some(p) = self.pending.take() {
            let (hasher, hash) = p
                .await
                .map_err(|e| HubError::Io(std::io::Error::other(e)))??;
            self.chunks.push(hash);
            return Ok(hasher);
        }
        Ok(self
            .hasher
            .take()
            .expect("hasher is present when nothing is pending"))
    }

    /// Stores the blob (durably) and returns its id and size.
    pub async fn finish(mut self) -> Result<BlobInfo> {
        if !self.buf.is_empty() {
            self.flush_chunk().await?;
        }
        let hasher = self.settle().await?;
        let cid = ContentId::from_hash(hasher.finalize());
        let manifest = Manifest {
            cid,
            size: self.size,
            chunks: std::mem::take(&mut self.chunks),
        };
        let hub = self.hub.clone();
        let staging = self.staging.clone();
        tokio::task::spawn_blocking(move || {
            let dir = hub.chunks_dir();
            for c in &manifest.chunks {
                let to = chunk_path(&dir, c);
                let from = staging.join(hex::encode(c));
                if to.exists() {
                    continue;
                }
                std::fs::create_dir_all(to.parent().unwrap())?;
                std::fs::rename(from, &to)?;
                gradnet_types::crash::point("hub-finish");
            }
            hub.put_manifest(&manifest)
        })
        .await
        .map_err(|e| HubError::Io(std::io::Error::other(e)))??;
        Ok(BlobInfo {
            cid,
            size: self.size,
        })
    }
}

/// An upload's private folder. The writer and its in-flight chunk task each
/// hold it, so it goes only after the last chunk write has ended (a task still
/// writing when the writer is dropped would otherwise leave a file behind).
struct StagingDir(PathBuf);

impl StagingDir {
    fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_data()
}

impl Hub {
    /// Reads chunk `i` of a blob and checks it against its hash.
    pub async fn read_chunk(&self, m: &Manifest, i: usize) -> Result<Bytes> {
        let path = chunk_path(&self.chunks_dir(), &m.chunks[i]);
        let want = m.chunks[i];
        let len = m.chunk_len(i);
        let cid = m.cid;
        let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let data = std::fs::read(&path).map_err(|e| HubError::Corrupt {
                cid,
                detail: format!("chunk {i}: {e}"),
            })?;
            if data.len() != len || *blake3::hash(&data).as_bytes() != want {
                return Err(HubError::Corrupt {
                    cid,
                    detail: format!("chunk {i} does not match its hash"),
                });
            }
            Ok(data)
        })
        .await
        .map_err(|e| HubError::Io(std::io::Error::other(e)))?;
        if let Err(e) = &data {
            tracing::error!(%cid, error = %e, "blob failed verification");
        }
        Ok(Bytes::from(data?))
    }

    /// Streams bytes `start..end` of a blob. The first chunk is read and
    /// verified before this returns, so a corrupt small blob fails up front;
    /// a later corrupt chunk ends the stream with an error before its bytes.
    pub async fn read_range(
        &self,
        cid: &ContentId,
        start: u64,
        end: u64,
    ) -> Result<(Manifest, impl Stream<Item = Result<Bytes>> + Send + 'static)> {
        let m = self.manifest(cid)?;
        if start > end || end > m.size {
            return Err(HubError::Invalid(format!(
                "range {start}..{end} is outside 0..{}",
                m.size
            )));
        }
        let cs = CHUNK_SIZE as u64;
        let first = (start / cs) as usize;
        let last = if end == start {
            first
        } else {
            ((end - 1) / cs) as usize + 1
        };
        let first_bytes = if start < end {
            Some(self.read_chunk(&m, first).await?)
        } else {
            None
        };
        let hub = self.clone();
        let man = m.clone();
        let stream = futures::stream::try_unfold((first, first_bytes), move |(i, ready)| {
            let hub = hub.clone();
            let m = man.clone();
            async move {
                if i >= last || start >= end {
                    return Ok(None);
                }
                let chunk = match ready {
                    Some(b) => b,
                    None => hub.read_chunk(&m, i).await?,
                };
                let base = i as u64 * cs;
                let lo = start.saturating_sub(base) as usize;
                let hi = (end - base).min(chunk.len() as u64) as usize;
                Ok(Some((chunk.slice(lo..hi), (i + 1, None))))
            }
        });
        Ok((m, stream))
    }

    /// Reads a whole blob into memory, verifying every chunk and the content id.
    pub async fn read_all(&self, cid: &ContentId) -> Result<Vec<u8>> {
        let m = self.manifest(cid)?;
        let mut out = Vec::with_capacity(m.size as usize);
        for i in 0..m.chunks.len() {
            out.extend_from_slice(&self.read_chunk(&m, i).await?);
        }
        if ContentId::of(&out) != *cid {
            tracing::error!(%cid, "blob manifest does not hash to its id");
            return Err(HubError::Corrupt {
                cid: *cid,
                detail: "content does not hash to its id".into(),
            });
        }
        Ok(out)
    }

    /// Stores a blob held in memory.
    pub async fn put_bytes(&self, data: &[u8]) -> Result<BlobInfo> {
        let mut w = self.writer()?;
        w.write(data).await?;
        w.finish().await
    }
}
