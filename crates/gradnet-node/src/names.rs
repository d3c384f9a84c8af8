//! The hub's names from the model registry on chain: a node with a ledger
//! serves the network's repositories, owners, versions and files (by content
//! id) from its committed state, the same on every node.

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

    fn versions(&self, name: &str) -> Result<Vec<VersionInfo>, HubError> {
        self.read(|reg| {
            let Some(r) = reg.repo(name)? else {
                return Ok(vec![]);
            };
            let mut out = vec![];
            for v in r.versions {
                if let Some(m) = reg.version(name, &v)? {
                    out.push(VersionInfo {
                        is_major: Version::parse(&m.version)
                            .is_some_and(|v| v.minor == 0 && v.major > 1),
                        version: m.version,
                        notes: m.notes,
                        created_at_ms: m.publishedAt * 1000,
                    });
                }
            }
            Ok(out)
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
