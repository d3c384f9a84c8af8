//! Model repositories, versions and files, kept in redb.

use gradnet_types::request::check_name;
use gradnet_types::{now_ms, ContentId, ModelRef};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::blobs::{BlobInfo, Manifest};
use crate::error::{HubError, Result};
use crate::owners::Writer;
use crate::Hub;
use gradnet_types::version::Version;

pub(crate) const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
pub(crate) const REPOS: TableDefinition<&str, &[u8]> = TableDefinition::new("repos");
pub(crate) const VERSIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("versions");
pub(crate) const FILES: TableDefinition<(&str, &str, &str), &[u8]> = TableDefinition::new("files");
pub(crate) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const BYTES_STORED: &str = "bytes_stored";

/// What a client sends to create a repository.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoSpec {
    /// The repository's name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// What the model does (e.g. `classification`).
    #[serde(default)]
    pub task: String,
    /// The model's license.
    #[serde(default)]
    pub license: String,
    /// Search tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Who publishes it: when given, it must be the signing account (the
    /// first to register a name owns it).
    #[serde(default)]
    pub owner: String,
}

/// A model repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repo {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// What the model does.
    pub task: String,
    /// The model's license.
    pub license: String,
    /// Search tags.
    pub tags: Vec<String>,
    /// The account that owns it (empty: created anonymously in development
    /// mode, so anyone may write to it).
    pub owner: String,
    /// Accounts the owner lets publish versions and files.
    #[serde(default)]
    pub collaborators: Vec<String>,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: u64,
}

/// One version of a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// `major.minor`, e.g. `1.00` ([`crate::Version`]).
    #[serde(rename = "versionString")]
    pub version: String,
    /// Release notes.
    pub notes: String,
    /// Whether it bumped the major number.
    pub is_major: bool,
    /// When it was created (Unix milliseconds).
    pub created_at_ms: u64,
}

/// A file in a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its name in the version.
    pub name: String,
    /// The blob holding its bytes.
    pub cid: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded (Unix milliseconds).
    pub uploaded_at_ms: u64,
}

fn invalid(e: impl ToString) -> HubError {
    HubError::Invalid(e.to_string())
}

impl Hub {
    pub(crate) fn create_tables(&self) -> Result<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(BLOBS)?;
        tx.open_table(REPOS)?;
        tx.open_table(VERSIONS)?;
        tx.open_table(FILES)?;
        tx.open_table(COUNTERS)?;
        tx.open_table(crate::owners::USAGE)?;
        tx.open_table(crate::owners::NONCES)?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn put_manifest(&self, m: &Manifest) -> Result<()> {
        let tx = self.db().begin_write()?;
        {
            let mut blobs = tx.open_table(BLOBS)?;
            if blobs.get(m.cid.as_bytes().as_slice())?.is_none() {
                blobs.insert(m.cid.as_bytes().as_slice(), m.encode().as_slice())?;
                let mut counters = tx.open_table(COUNTERS)?;
                let stored = counters.get(BYTES_STORED)?.map(|g| g.value()).unwrap_or(0);
                counters.insert(BYTES_STORED, stored + m.size)?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// How blob `cid` is stored.
    pub fn manifest(&self, cid: &ContentId) -> Result<Manifest> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(BLOBS)?;
        let g = t
            .get(cid.as_bytes().as_slice())?
            .ok_or_else(|| HubError::NotFound(format!("blob {cid}")))?;
        Manifest::decode(*cid, g.value())
    }

    /// Whether blob `cid` is here.
    pub fn has_blob(&self, cid: &ContentId) -> Result<bool> {
        let tx = self.db().begin_read()?;
        Ok(tx
            .open_table(BLOBS)?
            .get(cid.as_bytes().as_slice())?
            .is_some())
    }

    /// Total size of distinct blobs stored.
    pub fn bytes_stored(&self) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx
            .open_table(COUNTERS)?
            .get(BYTES_STORED)?
            .map(|g| g.value())
            .unwrap_or(0))
    }

    /// Creates a repository owned by `by` (its name must be new and valid:
    /// the first to register a name owns it).
    pub fn create_repo(&self, spec: RepoSpec, by: &Writer) -> Result<Repo> {
        check_name(&spec.name).map_err(invalid)?;
        self.not_on_chain(&spec.name)?;
        let owner = by.owner_name();
        if !spec.owner.is_empty() && !spec.owner.eq_ignore_ascii_case(&owner) {
            return Err(HubError::Forbidden(format!(
                "`owner` is {}, but the request is signed by {}: a repository is owned by the account that creates it",
                spec.owner,
                by.display()
            )));
        }
        let repo = Repo {
            name: spec.name,
            description: spec.description,
            task: spec.task,
            license: spec.license,
            tags: spec.tags,
            owner,
            collaborators: vec![],
            created_at_ms: now_ms(),
        };
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(REPOS)?;
            if t.get(repo.name.as_str())?.is_some() {
                return Err(HubError::AlreadyExists(format!(
                    "model repository `{}`",
                    repo.name
                )));
            }
            t.insert(repo.name.as_str(), serde_json::to_vec(&repo)?.as_slice())?;
        }
        tx.commit()?;
        Ok(repo)
    }

    /// The repository `name` (the chain's, when it has one).
    pub fn repo(&self, name: &str) -> Result<Repo> {
        if let Some(r) = self.on_chain(name)? {
            return Ok(r);
        }
        self.local_repo(name)
    }

    pub(crate) fn local_repo(&self, name: &str) -> Result<Repo> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(REPOS)?;
        let g = t
            .get(name)?
            .ok_or_else(|| HubError::NotFound(format!("model repository `{name}`")))?;
        Ok(serde_json::from_slice(g.value())?)
    }

    /// Every repository, by name: the chain's, and local ones it has no
    /// name for.
    pub fn list_repos(&self) -> Result<Vec<Repo>> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(REPOS)?;
        let local: Vec<Repo> = t
            .iter()?
            .map(|r| Ok(serde_json::from_slice(r?.1.value())?))
            .collect::<Result<_>>()?;
        let Some(chain) = self.chain_names() else {
            return Ok(local);
        };
        let mut all = chain.repos()?;
        for r in local {
            if !all.iter().any(|c| c.name == r.name) {
                all.push(r);
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Versions of a repository, oldest first.
    pub fn list_versions(&self, repo: &str) -> Result<Vec<VersionInfo>> {
        if let Some(versions) = match self.chain_names() {
            Some(chain) => chain.versions(repo)?,
            None => None,
        } {
            return Ok(versions);
        }
        self.local_repo(repo)?;
        let tx = self.db().begin_read()?;
        let t = tx.open_table(VERSIONS)?;
        let mut out: Vec<VersionInfo> = t
            .range((repo, "")..)?
            .map_while(|r| match r {
                Ok((k, v)) if k.value().0 == repo => {
                    Some(serde_json::from_slice(v.value()).map_err(HubError::from))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e.into())),
            })
            .collect::<Result<_>>()?;
        out.sort_by_key(|v| Version::parse(&v.version));
        Ok(out)
    }

    /// The next version of `repo` (minor, or major when `is_major`), made
    /// by its owner or a collaborator.
    pub fn create_version(
        &self,
        repo: &str,
        notes: String,
        is_major: bool,
        by: &Writer,
    ) -> Result<VersionInfo> {
        self.authorize(repo, by)?;
        let _guard = self.version_lock();
        let versions = self.list_versions(repo)?;
        if versions.len() >= self.config().max_versions {
            return Err(HubError::Limit(format!(
                "model repository `{repo}` has {} versions, the most this node keeps",
                versions.len()
            )));
        }
        let last = versions.last().and_then(|v| Version::parse(&v.version));
        let info = VersionInfo {
            version: Version::next(last, is_major).to_string(),
            notes,
            is_major,
            created_at_ms: now_ms(),
        };
        let tx = self.db().begin_write()?;
        tx.open_table(VERSIONS)?.insert(
            (repo, info.version.as_str()),
            serde_json::to_vec(&info)?.as_slice(),
        )?;
        tx.commit()?;
        Ok(info)
    }

    pub(crate) fn check_version(&self, repo: &str, version: &str) -> Result<()> {
        self.local_repo(repo)?;
        let tx = self.db().begin_read()?;
        if tx.open_table(VERSIONS)?.get((repo, version))?.is_none() {
            return Err(HubError::NotFound(format!(
                "version `{version}` of model repository `{repo}`"
            )));
        }
        Ok(())
    }

    /// Records an uploaded blob as `file` of a version (replacing an earlier
    /// one), by the repository's owner or a collaborator; its size counts
    /// against the writer's quota.
    pub fn add_file(
        &self,
        repo: &str,
        version: &str,
        file: &str,
        blob: BlobInfo,
        by: &Writer,
    ) -> Result<FileEntry> {
        check_name(file).map_err(invalid)?;
        self.check_upload(repo, version, file, by)?;
        let entry = FileEntry {
            name: file.to_string(),
            cid: blob.cid,
            size: blob.size,
            uploaded_at_ms: now_ms(),
        };
        let tx = self.db().begin_write()?;
        self.charge(&tx, by, blob.size)?;
        tx.open_table(FILES)?.insert(
            (repo, version, file),
            serde_json::to_vec(&entry)?.as_slice(),
        )?;
        tx.commit()?;
        Ok(entry)
    }

    /// The files of `repo` at `version`.
    pub fn list_files(&self, repo: &str, version: &str) -> Result<Vec<FileEntry>> {
        if let Some(chain) = self.chain_names() {
            if let Some(files) = chain.files(repo, version)? {
                return Ok(files);
            }
            // (the repository is read only when the version is not there)
            if self.on_chain(repo)?.is_some() {
                return Err(HubError::NotFound(format!(
                    "version `{version}` of model repository `{repo}`"
                )));
            }
        }
        self.check_version(repo, version)?;
        let tx = self.db().begin_read()?;
        let t = tx.open_table(FILES)?;
        t.range((repo, version, "")..)?
            .map_while(|r| match r {
                Ok((k, v)) if k.value().0 == repo && k.value().1 == version => {
                    Some(serde_json::from_slice(v.value()).map_err(HubError::from))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e.into())),
            })
            .collect()
    }

    /// The first file whose name ends with `ext` in `repo@version` (the
    /// latest version when `None`): how an LLM is named by its repository.
    pub fn find_file(&self, repo: &str, version: Option<&str>, ext: &str) -> Result<FileEntry> {
        self.find_in_version(repo, version, &format!("a `{ext}` file"), |f| {
            f.name.ends_with(ext)
        })
    }

    /// The first file of `repo@version` (the latest version when `None`)
    /// that `pick` accepts; `what` names it in the not-found error.
    fn find_in_version(
        &self,
        repo: &str,
        version: Option<&str>,
        what: &str,
        pick: impl Fn(&FileEntry) -> bool,
    ) -> Result<FileEntry> {
        let version = match version {
            Some(v) => v.to_string(),
            None => {
                self.list_versions(repo)?
                    .pop()
                    .ok_or_else(|| {
                        HubError::NotFound(format!("any version of model repository `{repo}`"))
                    })?
                    .version
            }
        };
        self.list_files(repo, &version)?
            .into_iter()
            .find(|f| pick(f))
            .ok_or_else(|| HubError::NotFound(format!("{what} in `{repo}@{version}`")))
    }

    /// The content id a model reference names.
    pub fn resolve(&self, r: &ModelRef) -> Result<ContentId> {
        match r {
            ModelRef::Cid(c) => {
                if !self.has_blob(c)? {
                    return Err(HubError::NotFound(format!("model {c}")));
                }
                Ok(*c)
            }
            ModelRef::Path {
                repo,
                version,
                file,
            } => self
                .find_in_version(repo, version.as_deref(), &format!("file `{file}`"), |f| {
                    f.name == *file
                })
                .map(|f| f.cid),
        }
    }
}
