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
/// through a validator's JSON-RPC and refreshed in the background when the
/// chain moves. The node trusts that validator for names, as it trusts it
/// for the chain; the bytes are still checked against their content ids.
pub struct RpcNames {
    snapshot: std::sync::RwLock<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    repos: Vec<Repo>,
    versions: std::collections::HashMap<String, Vec<(VersionInfo, Vec<FileEntry>)>>,
}

impl RpcNames {
    /// Reads the names from `rpc` now and whenever its head moves (checked
    /// every `every`).
    pub fn spawn(rpc: &str, every: std::time::Duration) -> anyhow::Result<Arc<RpcNames>> {
        let rpc = gradnet_client::Rpc::new(rpc)?;
        let names = Arc::new(RpcNames {
            snapshot: Default::default(),
        });
        let weak = Arc::downgrade(&names);
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                let Some(names) = weak.upgrade() else { return };
                match rpc.block_number().await {
                    Ok(head) if seen != Some(head) => match read_all(&rpc).await {
                        Ok(s) => {
                            *names.snapshot.write().unwrap_or_else(|p| p.into_inner()) = s;
                            seen = Some(head);
                        }
                        Err(e) => tracing::warn!(error = %e, "reading the model registry"),
                    },
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
        let r = I::getRepositoryCall::abi_decode_returns(
            &call(I::getRepositoryCall { name: name.clone() }.abi_encode()).await?,
        )?;
        let mut versions = vec![];
        for v in &r.versions {
            let m = I::getVersionCall::abi_decode_returns(
                &call(
                    I::getVersionCall {
                        name: name.clone(),
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
        snap.repos.push(repo(model_registry::Repo {
            name: r.name,
            description: r.description,
            owner: r.owner,
            collaborators: r.collaborators,
            created_at: r.createdAt,
            versions: r.versions,
        }));
        snap.versions.insert(name, versions);
    }
    Ok(snap)
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
