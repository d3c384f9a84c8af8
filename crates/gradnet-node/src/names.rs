//! The hub's names from the model registry on chain: a node with a ledger
//! serves the network's repositories, owners, versions and files (by content
//! id) from its committed state, the same on every node; a node without one
//! reads them through a validator's JSON-RPC.

use std::sync::Arc;

use alloy_primitives::Address;
use gradnet_hub::{FileEntry, HubError, NameSource, Repo, VersionInfo};
use gradnet_inference::error::SystemError;
use gradnet_inference::model_registry::{self, ModelRegistry};
use gradnet_inference::registry;
use gradnet_ledger::chain::Chain;
use gradnet_ledger::slots::ReaderSlots;
use gradnet_types::version::Version;

/// The chain's names, read from its committed state on each call.
pub struct ChainNames(pub Arc<Chain>);

fn account(a: Address) -> String {
    a.to_checksum(None)
}

impl ChainNames {
    fn read<T>(
        &self,
        f: impl FnOnce(&mut ModelRegistry<ReaderSlots<'_>>) -> Result<T, SystemError>,
    ) -> Result<T, HubError> {
        let state = self
            .0
            .store
            .state()
            .map_err(|e| HubError::Db(format!("chain state: {e}")))?;
        let mut reg = ModelRegistry(ReaderSlots {
            state: &state,
            account: registry::ADDRESS,
        });
        f(&mut reg).map_err(|e| HubError::Db(format!("model registry: {e}")))
    }
}

fn repo(r: model_registry::Repo) -> Repo {
    Repo {
        name: r.name,
        description: r.description,
        task: String::new(),
        license: String::new(),
        tags: vec![],
        owner: account(r.owner),
        collaborators: r.collaborators.into_iter().map(account).collect(),
        created_at_ms: r.created_at * 1000,
    }
}

fn version_info(m: &model_registry::ModelVersion) -> VersionInfo {
    VersionInfo {
        is_major: Version::parse(&m.version).is_some_and(|v| v.minor == 0 && v.major > 1),
        version: m.version.clone(),
        notes: m.notes.clone(),
        created_at_ms: m.publishedAt * 1000,
    }
}

impl NameSource for ChainNames {
    fn repos(&self) -> Result<Vec<Repo>, HubError> {
        self.read(|reg| {
            let mut out = vec![];
            for name in reg.names()? {
                if let Some(r) = reg.repo(&name)? {
                    out.push(repo(r));
                }
            }
            Ok(out)
        })
    }

    fn repo(&self, name: &str) -> Result<Option<Repo>, HubError> {
        self.read(|reg| Ok(reg.repo(name)?.map(repo)))
    }

    fn versions(&self, name: &str) -> Result<Option<Vec<VersionInfo>>, HubError> {
        self.read(|reg| {
            let Some(r) = reg.repo(name)? else {
                return Ok(None);
            };
            let mut out = vec![];
            for v in r.versions {
                if let Some(m) = reg.version(name, &v)? {
                    out.push(version_info(&m));
                }
            }
            Ok(Some(out))
        })
    }

    fn files(&self, name: &str, version: &str) -> Result<Option<Vec<FileEntry>>, HubError> {
        let v = self.read(|reg| reg.version(name, version))?;
        let Some(v) = v else {
            return Ok(None);
        };
        v.files
            .into_iter()
            .map(|f| {
                Ok(FileEntry {
                    cid: f.cid.parse().map_err(|e| {
                        HubError::Db(format!("model registry: file `{}`: {e}", f.name))
                    })?,
                    name: f.name,
                    size: f.size,
                    uploaded_at_ms: v.publishedAt * 1000,
                })
            })
            .collect::<Result<Vec<_>, HubError>>()
            .map(Some)
    }
}

/// The chain's names for a node without a ledger (an inference node), read
/// through a validator's JSON-RPC: all of them once, then, as the chain
/// moves, only the repositories the registry's events name. The node trusts
/// that validator for names, as it trusts it for the chain; the bytes are
/// still checked against their content ids.
pub struct RpcNames {
    snapshot: std::sync::RwLock<Snapshot>,
}

#[derive(Default, Clone)]
struct Snapshot {
    repos: Vec<Repo>,
    versions: std::collections::HashMap<String, Vec<(VersionInfo, Vec<FileEntry>)>>,
}

/// Past this many blocks behind, the registry is read whole again rather
/// than its events (a JSON-RPC serves at most 10,000 blocks of logs).
const MAX_EVENT_SPAN: u64 = 5_000;

impl RpcNames {
    /// Reads the names from `rpc` now and follows the registry's events
    /// whenever its head moves (checked every `every`).
    pub fn spawn(rpc: &str, every: std::time::Duration) -> anyhow::Result<Arc<RpcNames>> {
        let rpc = gradnet_client::Rpc::new(rpc)?;
        let names = Arc::new(RpcNames {
            snapshot: Default::default(),
        });
        let weak = Arc::downgrade(&names);
        tokio::spawn(async move {
            // the head the snapshot is complete up to
            let mut seen: Option<u64> = None;
            loop {
                let Some(names) = weak.upgrade() else { return };
                match rpc.block_number().await {
                    Ok(head) if seen != Some(head) => {
                        let read = match seen {
                            Some(from) if head > from && head - from <= MAX_EVENT_SPAN => {
                                follow(&rpc, &names, from + 1, head).await
                            }
                            _ => read_all(&rpc).await.map(Some),
                        };
                        match read {
                            Ok(changed) => {
                                if let Some(s) = changed {
                                    *names.snapshot.write().unwrap_or_else(|p| p.into_inner()) = s;
                                }
                                seen = Some(head);
                            }
                            Err(e) => tracing::warn!(error = %e, "reading the model registry"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "names JSON-RPC unreachable"),
                }
                drop(names);
                tokio::time::sleep(every).await;
            }
        });
        Ok(names)
    }

    fn read<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.snapshot.read().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The repository an event of the registry names.
fn named(topics: &[alloy_primitives::B256], data: &[u8]) -> Option<String> {
    use alloy_sol_types::SolEvent;
    use model_registry::IModelRegistry as I;
    let t0 = *topics.first()?;
    let data = alloy_primitives::Bytes::copy_from_slice(data);
    let log = alloy_primitives::LogData::new(topics.to_vec(), data)?;
    Some(match t0 {
        I::RepositoryCreated::SIGNATURE_HASH => {
            I::RepositoryCreated::decode_log_data(&log).ok()?.name
        }
        I::CollaboratorAdded::SIGNATURE_HASH => {
            I::CollaboratorAdded::decode_log_data(&log).ok()?.name
        }
        I::CollaboratorRemoved::SIGNATURE_HASH => {
            I::CollaboratorRemoved::decode_log_data(&log).ok()?.name
        }
        I::OwnershipTransferred::SIGNATURE_HASH => {
            I::OwnershipTransferred::decode_log_data(&log).ok()?.name
        }
        I::VersionPublished::SIGNATURE_HASH => {
            I::VersionPublished::decode_log_data(&log).ok()?.name
        }
        _ => return None,
    })
}

/// The names brought up to block `to`: the repositories the registry's
/// events in blocks `from..=to` name are read again (their new versions
/// only: published versions never change); `None` when there were none.
async fn follow(
    rpc: &gradnet_client::Rpc,
    names: &RpcNames,
    from: u64,
    to: u64,
) -> anyhow::Result<Option<Snapshot>> {
    let filter = serde_json::json!([{
        "address": model_registry::ADDRESS,
        "fromBlock": format!("0x{from:x}"),
        "toBlock": format!("0x{to:x}"),
    }]);
    let logs: Vec<serde_json::Value> = rpc.request("eth_getLogs", filter).await?;
    let mut touched: Vec<String> = vec![];
    for log in &logs {
        let topics: Vec<alloy_primitives::B256> =
            serde_json::from_value(log["topics"].clone()).unwrap_or_default();
        let data =
            alloy_primitives::hex::decode(log["data"].as_str().unwrap_or("0x")).unwrap_or_default();
        if let Some(name) = named(&topics, &data) {
            if !touched.contains(&name) {
                touched.push(name);
            }
        }
    }
    if touched.is_empty() {
        return Ok(None);
    }
    let mut snap = names.read(Snapshot::clone);
    for name in touched {
        read_repo(rpc, &mut snap, &name).await?;
    }
    Ok(Some(snap))
}

/// Every repository, version and file in the model registry, by eth_call.
async fn read_all(rpc: &gradnet_client::Rpc) -> anyhow::Result<Snapshot> {
    use alloy_sol_types::SolCall;
    use model_registry::IModelRegistry as I;
    let call = |data: Vec<u8>| rpc.call(model_registry::ADDRESS, data);
    let count = I::repositoryCountCall::abi_decode_returns(
        &call(I::repositoryCountCall {}.abi_encode()).await?,
    )?;
    let mut snap = Snapshot::default();
    for i in 0..count.saturating_to::<u64>() {
        let name = I::repositoryAtCall::abi_decode_returns(
            &call(
                I::repositoryAtCall {
                    index: alloy_primitives::U256::from(i),
                }
                .abi_encode(),
            )
            .await?,
        )?;
        read_repo(rpc, &mut snap, &name).await?;
    }
    Ok(snap)
}

/// Reads repository `name` into `snap`: its owner, collaborators and the
/// versions `snap` does not hold yet.
async fn read_repo(
    rpc: &gradnet_client::Rpc,
    snap: &mut Snapshot,
    name: &str,
) -> anyhow::Result<()> {
    use alloy_sol_types::SolCall;
    use model_registry::IModelRegistry as I;
    let call = |data: Vec<u8>| rpc.call(model_registry::ADDRESS, data);
    let r = I::getRepositoryCall::abi_decode_returns(
        &call(I::getRepositoryCall { name: name.into() }.abi_encode()).await?,
    )?;
    let versions = snap.versions.entry(name.to_string()).or_default();
    for v in &r.versions {
        if versions.iter().any(|(known, _)| known.version == *v) {
            continue;
        }
        let m = I::getVersionCall::abi_decode_returns(
            &call(
                I::getVersionCall {
                    name: name.into(),
                    version: v.clone(),
                }
                .abi_encode(),
            )
            .await?,
        )?;
        let files = m
            .files
            .iter()
            .filter_map(|f| {
                Some(FileEntry {
                    name: f.name.clone(),
                    cid: f.cid.parse().ok()?,
                    size: f.size,
                    uploaded_at_ms: m.publishedAt * 1000,
                })
            })
            .collect();
        versions.push((version_info(&m), files));
    }
    let repo = repo(model_registry::Repo {
        name: r.name,
        description: r.description,
        owner: r.owner,
        collaborators: r.collaborators,
        created_at: r.createdAt,
        versions: r.versions,
    });
    match snap.repos.iter_mut().find(|known| known.name == name) {
        Some(known) => *known = repo,
        None => snap.repos.push(repo),
    }
    Ok(())
}

impl NameSource for RpcNames {
    fn repos(&self) -> Result<Vec<Repo>, HubError> {
        Ok(self.read(|s| s.repos.clone()))
    }

    fn repo(&self, name: &str) -> Result<Option<Repo>, HubError> {
        Ok(self.read(|s| s.repos.iter().find(|r| r.name == name).cloned()))
    }

    fn versions(&self, name: &str) -> Result<Option<Vec<VersionInfo>>, HubError> {
        Ok(self.read(|s| {
            s.versions
                .get(name)
                .map(|v| v.iter().map(|(i, _)| i.clone()).collect())
        }))
    }

    fn files(&self, name: &str, version: &str) -> Result<Option<Vec<FileEntry>>, HubError> {
        Ok(self.read(|s| {
            s.versions
                .get(name)?
                .iter()
                .find(|(i, _)| i.version == version)
                .map(|(_, f)| f.clone())
        }))
    }
}
