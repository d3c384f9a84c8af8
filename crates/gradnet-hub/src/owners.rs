//! Who may write what: a repository's owner (the first account to register
//! its name) and the collaborators it adds publish versions and files; only
//! the owner adds or removes collaborators and transfers ownership. Each
//! account's uploads count against its storage quota, and the nonces of
//! signed requests are kept until their signatures expire, across restarts.

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use crate::error::{HubError, Result};
use crate::meta::{Repo, FILES, REPOS};
use crate::Hub;

/// Bytes uploaded per account.
pub(crate) const USAGE: TableDefinition<&str, u64> = TableDefinition::new("usage");
/// Signed requests' (timestamp, account + nonce), pruned once expired.
pub(crate) const NONCES: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("nonces");

/// The account name anonymous writes are recorded under (development mode).
pub const ANONYMOUS: &str = "anonymous";

/// Who makes a change: a verified account (checksummed `0x` address) or,
/// in development mode only, nobody in particular.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// A request signed by this account.
    Account(String),
    /// An unsigned request on a node in development mode.
    Anonymous,
}

impl Writer {
    /// The owner a repository it creates gets (empty when anonymous).
    pub(crate) fn owner_name(&self) -> String {
        match self {
            Writer::Account(a) => a.clone(),
            Writer::Anonymous => String::new(),
        }
    }

    /// How it is named in messages and in the quota table.
    pub fn display(&self) -> &str {
        match self {
            Writer::Account(a) => a,
            Writer::Anonymous => ANONYMOUS,
        }
    }

    fn is(&self, account: &str) -> bool {
        matches!(self, Writer::Account(a) if a.eq_ignore_ascii_case(account))
    }
}

impl Hub {
    /// The repository, if `by` may publish into it (its owner or a
    /// collaborator; anyone for a repository created anonymously).
    pub fn authorize(&self, repo: &str, by: &Writer) -> Result<Repo> {
        self.not_on_chain(repo)?;
        let r = self.local_repo(repo)?;
        if r.owner.is_empty() || by.is(&r.owner) || r.collaborators.iter().any(|c| by.is(c)) {
            return Ok(r);
        }
        Err(HubError::Forbidden(format!(
            "{} may not publish to model repository `{repo}`: it is owned by {}{}",
            by.display(),
            r.owner,
            if r.collaborators.is_empty() {
                String::new()
            } else {
                format!(" with collaborators {}", r.collaborators.join(", "))
            }
        )))
    }

    fn owner_only(&self, repo: &str, by: &Writer, what: &str) -> Result<Repo> {
        self.not_on_chain(repo)?;
        let r = self.local_repo(repo)?;
        if r.owner.is_empty() || by.is(&r.owner) {
            return Ok(r);
        }
        Err(HubError::Forbidden(format!(
            "only the owner of model repository `{repo}` ({}) may {what}; the request is signed by {}",
            r.owner,
            by.display()
        )))
    }

    fn put_repo(&self, r: &Repo) -> Result<()> {
        let tx = self.db().begin_write()?;
        tx.open_table(REPOS)?
            .insert(r.name.as_str(), serde_json::to_vec(r)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Lets `account` publish to `repo` (owner only).
    pub fn add_collaborator(&self, repo: &str, account: &str, by: &Writer) -> Result<Repo> {
        let _guard = self.version_lock();
        let mut r = self.owner_only(repo, by, "add collaborators")?;
        if !r
            .collaborators
            .iter()
            .any(|c| c.eq_ignore_ascii_case(account))
        {
            r.collaborators.push(account.to_string());
            self.put_repo(&r)?;
        }
        Ok(r)
    }

    /// Stops `account` publishing to `repo` (owner only).
    pub fn remove_collaborator(&self, repo: &str, account: &str, by: &Writer) -> Result<Repo> {
        let _guard = self.version_lock();
        let mut r = self.owner_only(repo, by, "remove collaborators")?;
        let before = r.collaborators.len();
        r.collaborators.retain(|c| !c.eq_ignore_ascii_case(account));
        if r.collaborators.len() == before {
            return Err(HubError::NotFound(format!(
                "collaborator {account} of model repository `{repo}`"
            )));
        }
        self.put_repo(&r)?;
        Ok(r)
    }

    /// Makes `account` the owner of `repo` (owner only).
    pub fn transfer(&self, repo: &str, account: &str, by: &Writer) -> Result<Repo> {
        let _guard = self.version_lock();
        let mut r = self.owner_only(repo, by, "transfer it")?;
        r.owner = account.to_string();
        r.collaborators.retain(|c| !c.eq_ignore_ascii_case(account));
        self.put_repo(&r)?;
        Ok(r)
    }

    /// Checks, before a byte is read, that `by` may add `file` to
    /// `repo@version` and that the version has room for it.
    pub fn check_upload(&self, repo: &str, version: &str, file: &str, by: &Writer) -> Result<()> {
        self.authorize(repo, by)?;
        self.check_version(repo, version)?;
        let tx = self.db().begin_read()?;
        let t = tx.open_table(FILES)?;
        if t.get((repo, version, file))?.is_some() {
            return Ok(()); // a replacement takes no new place
        }
        let n = t
            .range((repo, version, "")..)?
            .take_while(|r| {
                r.as_ref()
                    .is_ok_and(|(k, _)| k.value().0 == repo && k.value().1 == version)
            })
            .count();
        if n >= self.config().max_files {
            return Err(HubError::Limit(format!(
                "`{repo}@{version}` has {n} files, the most this node keeps in a version"
            )));
        }
        Ok(())
    }

    /// Bytes `by` has uploaded to this node.
    pub fn usage(&self, by: &Writer) -> Result<u64> {
        let tx = self.db().begin_read()?;
        Ok(tx
            .open_table(USAGE)?
            .get(by.display())?
            .map(|g| g.value())
            .unwrap_or(0))
    }

    /// Bytes `by` may still upload (refused with [`HubError::Quota`] when
    /// `needed` does not fit).
    pub fn quota_left(&self, by: &Writer, needed: u64) -> Result<u64> {
        let used = self.usage(by)?;
        let quota = self.config().quota_bytes;
        let left = quota.saturating_sub(used);
        if needed > left || left == 0 {
            return Err(HubError::Quota {
                account: by.display().to_string(),
                used,
                quota,
                needed: needed.max(1),
            });
        }
        Ok(left)
    }

    /// Counts an upload that no version lists yet (a blob for a version
    /// published on chain) against `by`'s quota.
    pub fn charge_upload(&self, by: &Writer, size: u64) -> Result<()> {
        let tx = self.db().begin_write()?;
        self.charge(&tx, by, size)?;
        tx.commit()?;
        Ok(())
    }

    /// Counts `size` bytes against `by`'s quota within `tx`.
    pub(crate) fn charge(&self, tx: &WriteTransaction, by: &Writer, size: u64) -> Result<()> {
        let mut t = tx.open_table(USAGE)?;
        let used = t.get(by.display())?.map(|g| g.value()).unwrap_or(0);
        let quota = self.config().quota_bytes;
        if used.saturating_add(size) > quota {
            return Err(HubError::Quota {
                account: by.display().to_string(),
                used,
                quota,
                needed: size,
            });
        }
        t.insert(by.display(), used + size)?;
        Ok(())
    }

    /// Records a signed request's nonce; [`HubError::Replayed`] if it was
    /// seen before. Nonces older than `expired_before` (Unix seconds) are
    /// dropped: their signatures are refused as stale anyway.
    pub fn use_nonce(
        &self,
        account: &str,
        nonce: &[u8],
        timestamp: u64,
        expired_before: u64,
    ) -> Result<()> {
        let key = nonce_key(account, nonce);
        let tx = self.db().begin_write()?;
        {
            let mut t = tx.open_table(NONCES)?;
            if t.get((timestamp, key.as_slice()))?.is_some() {
                return Err(HubError::Replayed {
                    account: account.to_string(),
                    nonce: format!("0x{}", hex::encode(nonce)),
                });
            }
            t.insert((timestamp, key.as_slice()), ())?;
            let empty: &[u8] = &[];
            t.retain_in((0, empty)..(expired_before, empty), |_, _| false)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether `nonce` was recorded for `account` at `timestamp` (a session
    /// token's id is recorded at its expiry when its holder signs out).
    pub fn nonce_used(&self, account: &str, nonce: &[u8], timestamp: u64) -> Result<bool> {
        let tx = self.db().begin_read()?;
        let t = tx.open_table(NONCES)?;
        Ok(t.get((timestamp, nonce_key(account, nonce).as_slice()))?
            .is_some())
    }
}

fn nonce_key(account: &str, nonce: &[u8]) -> Vec<u8> {
    [account.to_ascii_lowercase().as_bytes(), nonce].concat()
}
