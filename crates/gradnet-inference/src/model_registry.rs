//! The model registry at `0x…F9`: the hub's names on chain. A repository
//! name belongs to the first account that registers it; its owner adds and
//! removes collaborators and may transfer it; the owner and collaborators
//! publish versions, each a list of files named by content id (and size),
//! numbered as the hub numbers them (`1.00`, `1.01`, … `2.00`). Every node
//! serves these names from chain state and fetches the bytes by content id,
//! so `repo@version/file` means the same bytes everywhere.
//!
//! State lives in the inference registry's account (`0x…F5`) under its own
//! slot tags, journaled and committed with the rest.

use alloy_primitives::{address, Address, U256};
use alloy_sol_types::{sol, SolCall};
use gradnet_types::request::check_name;
use gradnet_types::version::Version;
use gradnet_types::ContentId;
use revm::context_interface::{Block, ContextTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::registry::{self, REGISTRY_READ_GAS, REGISTRY_WRITE_GAS};
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

/// The model registry.
pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F9");
/// Collaborators one repository may have.
pub const MAX_COLLABORATORS: usize = 32;
/// Files one version may list.
pub const MAX_FILES: usize = 256;
/// Versions one repository may have.
pub const MAX_VERSIONS: u64 = 1000;
/// Longest description or release notes, in bytes.
pub const MAX_TEXT: usize = 2048;
/// Gas per file a version lists (its name, content id and size stored).
pub const FILE_GAS: u64 = 60_000;

sol! {
    #[derive(Debug, PartialEq)]
    interface IModelRegistry {
        struct ModelFile {
            string name;
            string cid;
            uint64 size;
        }
        struct ModelVersion {
            string version;
            string notes;
            address publisher;
            uint64 publishedAt;
            ModelFile[] files;
        }
        struct Repository {
            string name;
            string description;
            address owner;
            address[] collaborators;
            uint64 createdAt;
            string[] versions;
        }
        event RepositoryCreated(string name, address indexed owner);
        event CollaboratorAdded(string name, address indexed account);
        event CollaboratorRemoved(string name, address indexed account);
        event OwnershipTransferred(string name, address indexed from, address indexed to);
        event VersionPublished(string name, string version, address indexed publisher, uint256 files);
        function createRepository(string name, string description) external;
        function addCollaborator(string name, address account) external;
        function removeCollaborator(string name, address account) external;
        function transferOwnership(string name, address newOwner) external;
        function publishVersion(string name, bool major, string notes, ModelFile[] files) external returns (string);
        function repositoryCount() external view returns (uint256);
        function repositoryAt(uint256 index) external view returns (string);
        function getRepository(string name) external view returns (Repository);
        function getVersion(string name, string version) external view returns (ModelVersion);
    }
}

use IModelRegistry::IModelRegistryCalls as Call;
pub use IModelRegistry::{ModelFile, ModelVersion, Repository};

fn s(tag: &str, key: &[u8]) -> U256 {
    slot(tag, key)
}

/// The model registry over the inference registry's storage.
pub struct ModelRegistry<S>(pub S);

/// A repository's record without its versions' files.
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Who owns it.
    pub owner: Address,
    /// Who else publishes.
    pub collaborators: Vec<Address>,
    /// Block time it was created.
    pub created_at: u64,
    /// Its versions, oldest first.
    pub versions: Vec<String>,
}

impl<S: Slots> ModelRegistry<S> {
    /// How many repositories there are.
    pub fn count(&mut self) -> Result<u64, SystemError> {
        Ok(u64::try_from(self.0.get(s("gradnet.names.list", &[]))?).unwrap_or(0))
    }

    /// The name of the `i`th repository registered.
    pub fn name_at(&mut self, i: u64) -> Result<String, SystemError> {
        let b = self
            .0
            .get_bytes(s("gradnet.names.list", &i.to_be_bytes()))?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Every repository's name, in registration order.
    pub fn names(&mut self) -> Result<Vec<String>, SystemError> {
        (0..self.count()?).map(|i| self.name_at(i)).collect()
    }

    /// The repository `name`.
    pub fn repo(&mut self, name: &str) -> Result<Option<Repo>, SystemError> {
        let key = name.as_bytes();
        let owner = self.0.get(s("gradnet.names.owner", key))?;
        if owner.is_zero() {
            return Ok(None);
        }
        let collabs = s("gradnet.names.collabs", key);
        let n = u64::try_from(self.0.get(collabs)?).unwrap_or(0);
        let mut collaborators = vec![];
        for i in 0..n {
            collaborators.push(Address::from_word(
                self.0.get(collabs + U256::from(1 + i))?.into(),
            ));
        }
        let versions = (0..self.version_count(name)?)
            .map(|i| Ok(self.version_info(name, i)?.0.to_string()))
            .collect::<Result<_, SystemError>>()?;
        Ok(Some(Repo {
            name: name.to_string(),
            description: String::from_utf8_lossy(
                &self.0.get_bytes(s("gradnet.names.description", key))?,
            )
            .into_owned(),
            owner: Address::from_word(owner.into()),
            collaborators,
            created_at: u64::try_from(self.0.get(s("gradnet.names.created", key))?).unwrap_or(0),
            versions,
        }))
    }

    fn existing(&mut self, name: &str) -> Result<Repo, SystemError> {
        self.repo(name)?
            .ok_or_else(|| revert!("model registry: no repository `{name}`"))
    }

    fn version_count(&mut self, name: &str) -> Result<u64, SystemError> {
        Ok(u64::try_from(self.0.get(s("gradnet.names.versions", name.as_bytes()))?).unwrap_or(0))
    }

    fn version_key(name: &str, i: u64) -> Vec<u8> {
        [name.as_bytes(), b"@", &i.to_be_bytes()].concat()
    }

    /// The `i`th version of `name`: its number, publisher, time and notes.
    fn version_info(
        &mut self,
        name: &str,
        i: u64,
    ) -> Result<(Version, Address, u64, String), SystemError> {
        let k = Self::version_key(name, i);
        let b = s("gradnet.names.version", &k);
        let num = self.0.get(b)?;
        let (major, minor) = (
            u32::try_from(num >> 32).unwrap_or(0),
            u32::try_from(num & U256::from(u32::MAX)).unwrap_or(0),
        );
        Ok((
            Version { major, minor },
            Address::from_word(self.0.get(b + U256::from(1))?.into()),
            u64::try_from(self.0.get(b + U256::from(2))?).unwrap_or(0),
            String::from_utf8_lossy(&self.0.get_bytes(s("gradnet.names.notes", &k))?).into_owned(),
        ))
    }

    /// The files of version `i` of `name`.
    fn files(&mut self, name: &str, i: u64) -> Result<Vec<ModelFile>, SystemError> {
        let k = Self::version_key(name, i);
        let n = u64::try_from(self.0.get(s("gradnet.names.files", &k))?).unwrap_or(0);
        let mut out = vec![];
        for j in 0..n {
            let fk = [k.as_slice(), &j.to_be_bytes()].concat();
            out.push(ModelFile {
                name: String::from_utf8_lossy(&self.0.get_bytes(s("gradnet.names.file", &fk))?)
                    .into_owned(),
                cid: String::from_utf8_lossy(&self.0.get_bytes(s("gradnet.names.cid", &fk))?)
                    .into_owned(),
                size: u64::try_from(self.0.get(s("gradnet.names.size", &fk))?).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Version `version` of `name` with its files; `None` when either is unknown.
    pub fn version(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<Option<ModelVersion>, SystemError> {
        let Some(want) = Version::parse(version) else {
            return Ok(None);
        };
        for i in (0..self.version_count(name)?).rev() {
            let (v, publisher, at, notes) = self.version_info(name, i)?;
            if v == want {
                return Ok(Some(ModelVersion {
                    version: v.to_string(),
                    notes,
                    publisher,
                    publishedAt: at,
                    files: self.files(name, i)?,
                }));
            }
        }
        Ok(None)
    }

    /// The latest version of `name`, if it has one.
    pub fn latest(&mut self, name: &str) -> Result<Option<ModelVersion>, SystemError> {
        let n = self.version_count(name)?;
        if n == 0 {
            return Ok(None);
        }
        let v = self.version_info(name, n - 1)?.0.to_string();
        self.version(name, &v)
    }

    /// Registers `name` for `owner` (the first to register a name owns it).
    pub fn create(
        &mut self,
        name: &str,
        description: &str,
        owner: Address,
        now: u64,
    ) -> Result<(), SystemError> {
        check_name(name).map_err(|e| revert!("model registry: {e}"))?;
        if description.len() > MAX_TEXT {
            return Err(revert!(
                "model registry: description of {} bytes; at most {MAX_TEXT}",
                description.len()
            ));
        }
        if let Some(r) = self.repo(name)? {
            return Err(revert!(
                "model registry: `{name}` is already registered (owner {})",
                r.owner
            ));
        }
        let key = name.as_bytes();
        self.0
            .set(s("gradnet.names.owner", key), owner.into_word().into())?;
        self.0
            .set(s("gradnet.names.created", key), U256::from(now))?;
        self.0
            .set_bytes(s("gradnet.names.description", key), description.as_bytes())?;
        let n = self.count()?;
        self.0
            .set_bytes(s("gradnet.names.list", &n.to_be_bytes()), key)?;
        Ok(self
            .0
            .set(s("gradnet.names.list", &[]), U256::from(n + 1))?)
    }

    fn owner_only(&mut self, name: &str, caller: Address, what: &str) -> Result<Repo, SystemError> {
        let r = self.existing(name)?;
        if r.owner != caller {
            return Err(revert!(
                "model registry: only the owner of `{name}` ({}) may {what}",
                r.owner
            ));
        }
        Ok(r)
    }

    fn set_collaborators(&mut self, name: &str, list: &[Address]) -> Result<(), SystemError> {
        let b = s("gradnet.names.collabs", name.as_bytes());
        for (i, a) in list.iter().enumerate() {
            self.0.set(b + U256::from(1 + i), a.into_word().into())?;
        }
        Ok(self.0.set(b, U256::from(list.len()))?)
    }

    /// Lets `account` publish to `name` (owner only).
    pub fn add_collaborator(
        &mut self,
        name: &str,
        account: Address,
        caller: Address,
    ) -> Result<(), SystemError> {
        let mut r = self.owner_only(name, caller, "add collaborators")?;
        if account.is_zero() || account == r.owner || r.collaborators.contains(&account) {
            return Err(revert!(
                "model registry: {account} already publishes to `{name}`"
            ));
        }
        if r.collaborators.len() >= MAX_COLLABORATORS {
            return Err(revert!(
                "model registry: `{name}` has {MAX_COLLABORATORS} collaborators, the most it may have"
            ));
        }
        r.collaborators.push(account);
        self.set_collaborators(name, &r.collaborators)
    }

    /// Stops `account` publishing to `name` (owner only).
    pub fn remove_collaborator(
        &mut self,
        name: &str,
        account: Address,
        caller: Address,
    ) -> Result<(), SystemError> {
        let mut r = self.owner_only(name, caller, "remove collaborators")?;
        let before = r.collaborators.len();
        r.collaborators.retain(|a| *a != account);
        if r.collaborators.len() == before {
            return Err(revert!(
                "model registry: {account} is not a collaborator of `{name}`"
            ));
        }
        self.set_collaborators(name, &r.collaborators)
    }

    /// Gives `name` to `to` (owner only).
    pub fn transfer(
        &mut self,
        name: &str,
        to: Address,
        caller: Address,
    ) -> Result<(), SystemError> {
        let mut r = self.owner_only(name, caller, "transfer it")?;
        if to.is_zero() {
            return Err(revert!(
                "model registry: cannot transfer to the zero address"
            ));
        }
        self.0.set(
            s("gradnet.names.owner", name.as_bytes()),
            to.into_word().into(),
        )?;
        r.collaborators.retain(|a| *a != to);
        self.set_collaborators(name, &r.collaborators)
    }

    /// Publishes the next version of `name` (owner or collaborator) with
    /// `files`; returns its number.
    pub fn publish(
        &mut self,
        name: &str,
        major: bool,
        notes: &str,
        files: &[ModelFile],
        caller: Address,
        now: u64,
    ) -> Result<Version, SystemError> {
        let r = self.existing(name)?;
        if r.owner != caller && !r.collaborators.contains(&caller) {
            return Err(revert!(
                "model registry: {caller} may not publish to `{name}`: it is owned by {}",
                r.owner
            ));
        }
        if files.is_empty() || files.len() > MAX_FILES {
            return Err(revert!(
                "model registry: a version lists 1 to {MAX_FILES} files, not {}",
                files.len()
            ));
        }
        if notes.len() > MAX_TEXT {
            return Err(revert!(
                "model registry: notes of {} bytes; at most {MAX_TEXT}",
                notes.len()
            ));
        }
        for (i, f) in files.iter().enumerate() {
            check_name(&f.name).map_err(|e| revert!("model registry: file {i}: {e}"))?;
            f.cid.parse::<ContentId>().map_err(|e| {
                revert!(
                    "model registry: file `{}`: `{}` is not a content id: {e}",
                    f.name,
                    f.cid
                )
            })?;
            if files[..i].iter().any(|g| g.name == f.name) {
                return Err(revert!("model registry: file `{}` is listed twice", f.name));
            }
        }
        let n = self.version_count(name)?;
        if n >= MAX_VERSIONS {
            return Err(revert!(
                "model registry: `{name}` has {MAX_VERSIONS} versions, the most it may have"
            ));
        }
        let last = match n {
            0 => None,
            _ => Some(self.version_info(name, n - 1)?.0),
        };
        let v = Version::next(last, major);
        let k = Self::version_key(name, n);
        let b = s("gradnet.names.version", &k);
        self.0
            .set(b, (U256::from(v.major) << 32) | U256::from(v.minor))?;
        self.0.set(b + U256::from(1), caller.into_word().into())?;
        self.0.set(b + U256::from(2), U256::from(now))?;
        self.0
            .set_bytes(s("gradnet.names.notes", &k), notes.as_bytes())?;
        self.0
            .set(s("gradnet.names.files", &k), U256::from(files.len()))?;
        for (j, f) in files.iter().enumerate() {
            let fk = [k.as_slice(), &(j as u64).to_be_bytes()].concat();
            self.0
                .set_bytes(s("gradnet.names.file", &fk), f.name.as_bytes())?;
            self.0
                .set_bytes(s("gradnet.names.cid", &fk), f.cid.as_bytes())?;
            self.0
                .set(s("gradnet.names.size", &fk), U256::from(f.size))?;
        }
        self.0.set(
            s("gradnet.names.versions", name.as_bytes()),
            U256::from(n + 1),
        )?;
        Ok(v)
    }
}

fn log<J: revm::context_interface::JournalTr>(journal: &mut J, e: impl alloy_sol_types::SolEvent) {
    system_call::log(journal, ADDRESS, e)
}

/// Runs a call to `0x…F9`: its return data and gas.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let call: Call = system_call::decode(ctx, inputs, ADDRESS, "model registry", |c| Rules {
        payable: false,
        writes: matches!(
            c,
            Call::createRepository(_)
                | Call::addCollaborator(_)
                | Call::removeCollaborator(_)
                | Call::transferOwnership(_)
                | Call::publishVersion(_)
        ),
    })?;
    let now = u64::try_from(ctx.block().timestamp()).unwrap_or(u64::MAX);
    let caller = inputs.caller;
    let journal = ctx.journal_mut();
    let mut reg = ModelRegistry(JournalSlots {
        journal: &mut *journal,
        account: registry::ADDRESS,
    });
    let read = |out: Vec<u8>, slots: u64| Ok((out, REGISTRY_READ_GAS * slots.max(1)));
    match call {
        Call::createRepository(c) => {
            reg.create(&c.name, &c.description, caller, now)?;
            log(
                reg.0.journal,
                IModelRegistry::RepositoryCreated {
                    name: c.name,
                    owner: caller,
                },
            );
        }
        Call::addCollaborator(c) => {
            reg.add_collaborator(&c.name, c.account, caller)?;
            log(
                reg.0.journal,
                IModelRegistry::CollaboratorAdded {
                    name: c.name,
                    account: c.account,
                },
            );
        }
        Call::removeCollaborator(c) => {
            reg.remove_collaborator(&c.name, c.account, caller)?;
            log(
                reg.0.journal,
                IModelRegistry::CollaboratorRemoved {
                    name: c.name,
                    account: c.account,
                },
            );
        }
        Call::transferOwnership(c) => {
            reg.transfer(&c.name, c.newOwner, caller)?;
            log(
                reg.0.journal,
                IModelRegistry::OwnershipTransferred {
                    name: c.name,
                    from: caller,
                    to: c.newOwner,
                },
            );
        }
        Call::publishVersion(c) => {
            let v = reg.publish(&c.name, c.major, &c.notes, &c.files, caller, now)?;
            log(
                reg.0.journal,
                IModelRegistry::VersionPublished {
                    name: c.name,
                    version: v.to_string(),
                    publisher: caller,
                    files: U256::from(c.files.len()),
                },
            );
            let out = IModelRegistry::publishVersionCall::abi_encode_returns(&v.to_string());
            return Ok((out, REGISTRY_WRITE_GAS + FILE_GAS * c.files.len() as u64));
        }
        Call::repositoryCount(_) => {
            return read(
                IModelRegistry::repositoryCountCall::abi_encode_returns(&U256::from(reg.count()?)),
                1,
            );
        }
        Call::repositoryAt(c) => {
            let i = u64::try_from(c.index).unwrap_or(u64::MAX);
            if i >= reg.count()? {
                return Err(revert!("model registry: no repository at index {i}"));
            }
            return read(
                IModelRegistry::repositoryAtCall::abi_encode_returns(&reg.name_at(i)?),
                2,
            );
        }
        Call::getRepository(c) => {
            let r = reg.existing(&c.name)?;
            let slots = 4 + r.collaborators.len() as u64 + r.versions.len() as u64;
            return read(
                IModelRegistry::getRepositoryCall::abi_encode_returns(&Repository {
                    name: r.name,
                    description: r.description,
                    owner: r.owner,
                    collaborators: r.collaborators,
                    createdAt: r.created_at,
                    versions: r.versions,
                }),
                slots,
            );
        }
        Call::getVersion(c) => {
            let v = reg.version(&c.name, &c.version)?.ok_or_else(|| {
                revert!("model registry: no version `{}` of `{}`", c.version, c.name)
            })?;
            let slots = 4 + 3 * v.files.len() as u64;
            return read(
                IModelRegistry::getVersionCall::abi_encode_returns(&v),
                slots,
            );
        }
    }
    Ok((vec![], REGISTRY_WRITE_GAS))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn file(name: &str, bytes: &[u8]) -> ModelFile {
        ModelFile {
            name: name.into(),
            cid: ContentId::of(bytes).to_string(),
            size: bytes.len() as u64,
        }
    }

    #[test]
    fn owners_collaborators_and_versions() {
        let mut m = BTreeMap::new();
        let mut reg = ModelRegistry(&mut m);
        let (alice, bob) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb0));
        reg.create("alice-model", "risk scores", alice, 10).unwrap();
        let e = reg
            .create("alice-model", "", bob, 11)
            .unwrap_err()
            .to_string();
        assert!(e.contains("already registered"), "{e}");
        assert!(reg.create("../x", "", bob, 11).is_err());
        let f = [file("model.onnx", b"weights")];
        let e = reg
            .publish("alice-model", false, "", &f, bob, 12)
            .unwrap_err()
            .to_string();
        assert!(e.contains("may not publish"), "{e}");
        assert_eq!(
            reg.publish("alice-model", false, "", &f, alice, 12)
                .unwrap()
                .to_string(),
            "1.00"
        );
        assert!(reg.add_collaborator("alice-model", bob, bob).is_err());
        reg.add_collaborator("alice-model", bob, alice).unwrap();
        assert_eq!(
            reg.publish("alice-model", false, "b", &f, bob, 13)
                .unwrap()
                .to_string(),
            "1.01"
        );
        assert_eq!(
            reg.publish("alice-model", true, "", &f, bob, 14)
                .unwrap()
                .to_string(),
            "2.00"
        );
        assert!(reg.transfer("alice-model", bob, bob).is_err());
        let r = reg.repo("alice-model").unwrap().unwrap();
        assert_eq!((r.owner, r.collaborators.clone()), (alice, vec![bob]));
        assert_eq!(r.versions, ["1.00", "1.01", "2.00"]);
        let v = reg.version("alice-model", "1.01").unwrap().unwrap();
        assert_eq!(
            (v.publisher, v.notes.as_str(), v.files.clone()),
            (bob, "b", f.to_vec())
        );
        assert_eq!(reg.latest("alice-model").unwrap().unwrap().version, "2.00");
        reg.transfer("alice-model", bob, alice).unwrap();
        let r = reg.repo("alice-model").unwrap().unwrap();
        assert_eq!((r.owner, r.collaborators), (bob, vec![]));
        assert!(reg
            .publish("alice-model", false, "", &f, alice, 15)
            .is_err());
        assert_eq!(reg.names().unwrap(), ["alice-model"]);
    }

    #[test]
    fn bad_files_are_refused_with_their_name() {
        let mut m = BTreeMap::new();
        let mut reg = ModelRegistry(&mut m);
        let a = Address::repeat_byte(1);
        reg.create("m", "", a, 1).unwrap();
        let bad_cid = ModelFile {
            name: "x.onnx".into(),
            cid: "not-a-cid".into(),
            size: 1,
        };
        let e = reg
            .publish("m", false, "", &[bad_cid], a, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.onnx") && e.contains("content id"), "{e}");
        let twice = [file("a", b"1"), file("a", b"2")];
        let e = reg
            .publish("m", false, "", &twice, a, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("twice"), "{e}");
        assert!(reg.publish("m", false, "", &[], a, 2).is_err());
        assert!(reg
            .publish("nope", false, "", &[file("a", b"1")], a, 2)
            .is_err());
        assert_eq!(reg.version_count("m").unwrap(), 0, "nothing half-written");
    }
}
