//! Blobs fetched from other nodes: a model named by a content id this hub
//! lacks is downloaded from a peer (`HubConfig::peers`, in order, their
//! `/api/v0/blobs/{cid}`) and kept only if it hashes to that id, so a model
//! uploaded to one node runs on every node that knows a peer.

use std::time::Duration;

use gradnet_types::cid::ContentId;
use gradnet_types::request::ModelRef;

use crate::{Hub, HubError};

impl Hub {
    /// The content id `r` names, its blob here: a blob this hub lacks (named
    /// by id, or by a name the chain holds) is fetched from the peers first.
    pub async fn resolve_model(&self, r: &ModelRef) -> Result<ContentId, HubError> {
        let cid = match r {
            ModelRef::Cid(c) => *c,
            ModelRef::Path { .. } => self.resolve(r)?,
        };
        if !self.has_blob(&cid)? {
            if self.0.config.peers.is_empty() {
                return Err(HubError::NotFound(format!("model {cid}")));
            }
            self.fetch_from_peers(&cid).await?;
        }
        Ok(cid)
    }

    async fn fetch_from_peers(&self, cid: &ContentId) -> Result<(), HubError> {
        // one download at a time: calls for the same model wait for it
        let _one = self.0.fetching.lock().await;
        if self.has_blob(cid)? {
            return Ok(());
        }
        let mut why = vec![];
        for peer in &self.0.config.peers {
            match self.fetch_from(peer, cid).await {
                Ok(bytes) => {
                    tracing::info!(%cid, peer, bytes, "model fetched from a peer");
                    return Ok(());
                }
                Err(e) => why.push(format!("{peer}: {e}")),
            }
        }
        Err(HubError::NotFound(format!(
            "model {cid} (nor on the hub peers: {})",
            why.join("; ")
        )))
    }

    /// Streams the blob into the hub (its size limit applies); its size.
    async fn fetch_from(&self, peer: &str, cid: &ContentId) -> Result<u64, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let url = format!("{}/api/v0/blobs/{cid}", peer.trim_end_matches('/'));
        let mut resp = client.get(&url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let mut w = self.writer().map_err(|e| e.to_string())?;
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            w.write(&chunk).await.map_err(|e| e.to_string())?;
        }
        let info = w.finish().await.map_err(|e| e.to_string())?;
        if info.cid != *cid {
            return Err(format!("it served bytes that hash to {}", info.cid));
        }
        Ok(info.size)
    }
}
