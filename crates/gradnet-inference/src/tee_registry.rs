//! The TEE registry at `0x…F8` (`ITEERegistry`, OpenGradient's
//! `TEERegistry` views plus its writes): the admin approves and revokes
//! enclave measurements (SHA-256 of PCR0‖PCR1‖PCR2); a node registers its
//! enclave with an attestation document, checked here at the block's time
//! against the pinned roots (AWS's Nitro root, plus dev roots only if the
//! genesis lists them), the approved measurements, and the binding of its
//! ed25519 signing key and TLS certificate in the document's user data;
//! heartbeats signed by the enclave's key keep it active.
//!
//! An enclave is active while it is not deactivated, its measurement is
//! still approved, and its last heartbeat is at most `maxHeartbeatAge`
//! seconds old. TEE-mode calls (mode 2) are served only by inference nodes
//! whose signing key is an active enclave's (`teeId = keccak(publicKey)`).
//!
//! State lives in the inference registry's account (`0x…F5`) under its
//! own slot tags, so it is journaled and committed with the rest.

use alloy_primitives::{address, keccak256, Address, Bytes, B256, U256};
use alloy_sol_types::{sol, SolCall, SolEvent};
use revm::context_interface::{Block, Cfg, ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::registry::{self, REGISTRY_READ_GAS, REGISTRY_WRITE_GAS};
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

/// The TEE registry.
pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F8");
/// Heartbeats older than this (seconds) make an enclave inactive, unless
/// the genesis says otherwise.
pub const DEFAULT_MAX_HEARTBEAT_AGE: u64 = 600;
/// A registration's attestation document must be at most this old.
pub const MAX_ATTESTATION_AGE: u64 = 600;
/// Checking a document: a P-384 signature per certificate and the COSE one.
pub const ATTESTATION_GAS: u64 = 400_000;
const HEARTBEAT_DOMAIN: &[u8] = b"gradnet-tee-heartbeat-v1";

sol! {
    #[derive(Debug, PartialEq)]
    interface ITEERegistry {
        /// OpenGradient's `TEERegistry.OhttpConfig` (gradnet's enclaves
        /// serve no Oblivious HTTP: all zero).
        struct OhttpConfig {
            uint8 keyId;
            uint16 kemId;
            uint16 kdfId;
            uint16 aeadId;
            bytes publicKey;
            bytes keyConfig;
            uint256 registeredAt;
        }
        /// OpenGradient's `TEERegistry.TEEInfo`, field for field.
        struct TEEInfo {
            address owner;
            address paymentAddress;
            string endpoint;
            bytes publicKey;
            bytes tlsCertificate;
            bytes32 pcrHash;
            uint8 teeType;
            bool enabled;
            uint256 registeredAt;
            uint256 lastHeartbeatAt;
            OhttpConfig ohttpConfig;
        }
        event PCRApproved(bytes32 indexed pcrHash, string description);
        event PCRRevoked(bytes32 indexed pcrHash);
        event TEERegistered(bytes32 indexed teeId, address indexed owner, bytes32 pcrHash, bool devEnclave);
        event TEEHeartbeat(bytes32 indexed teeId, uint256 timestamp);
        event TEEDeactivated(bytes32 indexed teeId);
        function approvePCR(bytes32 pcrHash, string description) external;
        function revokePCR(bytes32 pcrHash) external;
        function isPCRApproved(bytes32 pcrHash) external view returns (bool);
        function registerTEEWithAttestation(bytes attestation, bytes publicKey, bytes tlsCertificate, address paymentAddress, string endpoint, uint8 teeType) external returns (bytes32);
        function heartbeat(bytes32 teeId, uint256 timestamp, bytes signature) external;
        function deactivateTEE(bytes32 teeId) external;
        function getActiveTEEs() external view returns (bytes32[] memory);
        /// OpenGradient's: the active enclaves of one type, whole records.
        function getActiveTEEs(uint8 teeType) external view returns (TEEInfo[] memory);
        function getTEEsByType(uint8 teeType) external view returns (bytes32[] memory);
        function getEnabledTEEs(uint8 teeType) external view returns (bytes32[] memory);
        function isTEEActive(bytes32 teeId) external view returns (bool);
        function isTEEEnabled(bytes32 teeId) external view returns (bool);
        function getTEE(bytes32 teeId) external view returns (TEEInfo memory);
        function isActive(bytes32 teeId) external view returns (bool);
        function isDevEnclave(bytes32 teeId) external view returns (bool);
        function maxHeartbeatAge() external view returns (uint256);
    }
}

use ITEERegistry::ITEERegistryCalls as Call;

/// The message a heartbeat's signature covers.
pub fn heartbeat_message(chain_id: u64, tee_id: &B256, timestamp: u64) -> Vec<u8> {
    [
        HEARTBEAT_DOMAIN,
        &chain_id.to_be_bytes(),
        tee_id.as_slice(),
        &timestamp.to_be_bytes(),
    ]
    .concat()
}

/// An enclave's id: keccak of its public key.
pub fn tee_id(public_key: &[u8]) -> B256 {
    keccak256(public_key)
}

fn s(tag: &str, key: &[u8]) -> U256 {
    slot(tag, key)
}

/// One enclave's record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tee {
    /// The account that registered it.
    pub owner: Address,
    /// Where its fees go.
    pub payment: Address,
    /// Where it serves.
    pub endpoint: String,
    /// Its signing key, bound in its attestation.
    pub public_key: Vec<u8>,
    /// Its TLS certificate (empty: plain HTTP).
    pub tls_certificate: Vec<u8>,
    /// The measurement it attested.
    pub pcr_hash: B256,
    /// The enclave kind (0: AWS Nitro).
    pub tee_type: u8,
    /// Whether it was deactivated.
    pub deactivated: bool,
    /// Whether a dev-enclave root attested it.
    pub dev: bool,
    /// When it registered.
    pub registered_at: u64,
    /// Its last heartbeat.
    pub last_heartbeat: u64,
}

/// The TEE registry over the inference registry's storage.
pub struct TeeRegistry<S>(pub S);

impl<S: Slots> TeeRegistry<S> {
    /// Who approves and revokes measurements.
    pub fn admin(&mut self) -> Result<Address, SystemError> {
        Ok(Address::from_word(
            self.0.get(s("gradnet.tee.admin", &[]))?.into(),
        ))
    }

    /// How old a heartbeat may be for the enclave to count as active.
    pub fn max_age(&mut self) -> Result<u64, SystemError> {
        let v = self.0.get(s("gradnet.tee.max-age", &[]))?;
        Ok(if v.is_zero() {
            DEFAULT_MAX_HEARTBEAT_AGE
        } else {
            u64::try_from(v).unwrap_or(u64::MAX)
        })
    }

    /// Pinned roots: AWS's Nitro root and any the genesis listed.
    pub fn roots(&mut self) -> Result<Vec<Vec<u8>>, SystemError> {
        let n = self.0.get(s("gradnet.tee.roots", &[]))?;
        let mut out = vec![gradnet_tee::aws_nitro_root()];
        for i in 0..u64::try_from(n).unwrap_or(0) {
            out.push(self.0.get_bytes(s("gradnet.tee.root", &i.to_be_bytes()))?);
        }
        Ok(out)
    }

    /// Genesis configuration: the admin, extra pinned roots, approved
    /// measurements and the heartbeat age.
    pub fn configure(
        &mut self,
        admin: Address,
        roots: &[Vec<u8>],
        approved: &[B256],
        max_age: u64,
    ) -> Result<(), SystemError> {
        self.0
            .set(s("gradnet.tee.admin", &[]), admin.into_word().into())?;
        self.0
            .set(s("gradnet.tee.max-age", &[]), U256::from(max_age))?;
        self.0
            .set(s("gradnet.tee.roots", &[]), U256::from(roots.len()))?;
        for (i, r) in roots.iter().enumerate() {
            self.0
                .set_bytes(s("gradnet.tee.root", &(i as u64).to_be_bytes()), r)?;
        }
        for m in approved {
            self.set_approved(m, true)?;
        }
        Ok(())
    }

    /// Whether a measurement is approved.
    pub fn approved(&mut self, pcr_hash: &B256) -> Result<bool, SystemError> {
        Ok(!self
            .0
            .get(s("gradnet.tee.pcr", pcr_hash.as_slice()))?
            .is_zero())
    }

    fn set_approved(&mut self, pcr_hash: &B256, on: bool) -> Result<(), SystemError> {
        Ok(self.0.set(
            s("gradnet.tee.pcr", pcr_hash.as_slice()),
            U256::from(on as u8),
        )?)
    }

    fn ids(&mut self) -> Result<Vec<B256>, SystemError> {
        let list = s("gradnet.tee.list", &[]);
        let n = u64::try_from(self.0.get(list)?).unwrap_or(0);
        (0..n)
            .map(|i| Ok(self.0.get(list + U256::from(1 + i))?.into()))
            .collect()
    }

    /// The enclave with `id`.
    pub fn get(&mut self, id: &B256) -> Result<Option<Tee>, SystemError> {
        let b = s("gradnet.tee.info", id.as_slice());
        let f = |i: u64| b + U256::from(i);
        let owner = self.0.get(f(0))?;
        if owner.is_zero() {
            return Ok(None);
        }
        let flags = self.0.get(f(4))?;
        let n = |v: U256| u64::try_from(v).unwrap_or(u64::MAX);
        Ok(Some(Tee {
            owner: Address::from_word(owner.into()),
            payment: Address::from_word(self.0.get(f(1))?.into()),
            pcr_hash: self.0.get(f(2))?.into(),
            tee_type: n(self.0.get(f(3))?) as u8,
            deactivated: flags.bit(0),
            dev: flags.bit(1),
            registered_at: n(self.0.get(f(5))?),
            last_heartbeat: n(self.0.get(f(6))?),
            endpoint: String::from_utf8_lossy(
                &self.0.get_bytes(s("gradnet.tee.endpoint", id.as_slice()))?,
            )
            .into_owned(),
            public_key: self.0.get_bytes(s("gradnet.tee.key", id.as_slice()))?,
            tls_certificate: self.0.get_bytes(s("gradnet.tee.tls", id.as_slice()))?,
        }))
    }

    fn put(&mut self, id: &B256, t: &Tee) -> Result<(), SystemError> {
        let b = s("gradnet.tee.info", id.as_slice());
        let f = |i: u64| b + U256::from(i);
        if self.0.get(f(0))?.is_zero() {
            let list = s("gradnet.tee.list", &[]);
            let count = self.0.get(list)?;
            self.0.set(list + U256::from(1) + count, (*id).into())?;
            self.0.set(list, count + U256::from(1))?;
        }
        self.0.set(f(0), t.owner.into_word().into())?;
        self.0.set(f(1), t.payment.into_word().into())?;
        self.0.set(f(2), t.pcr_hash.into())?;
        self.0.set(f(3), U256::from(t.tee_type))?;
        self.0
            .set(f(4), U256::from(t.deactivated as u8 | (t.dev as u8) << 1))?;
        self.0.set(f(5), U256::from(t.registered_at))?;
        self.0.set(f(6), U256::from(t.last_heartbeat))?;
        self.0.set_bytes(
            s("gradnet.tee.endpoint", id.as_slice()),
            t.endpoint.as_bytes(),
        )?;
        self.0
            .set_bytes(s("gradnet.tee.key", id.as_slice()), &t.public_key)?;
        Ok(self
            .0
            .set_bytes(s("gradnet.tee.tls", id.as_slice()), &t.tls_certificate)?)
    }

    /// Whether `t` may serve TEE calls at `now`.
    pub fn is_active(&mut self, t: &Tee, now: u64) -> Result<bool, SystemError> {
        Ok(!t.deactivated
            && self.approved(&t.pcr_hash)?
            && now.saturating_sub(t.last_heartbeat) <= self.max_age()?)
    }

    /// Signing keys of the enclaves active at `now`.
    pub fn active_keys(&mut self, now: u64) -> Result<Vec<B256>, SystemError> {
        let mut out = vec![];
        for id in self.ids()? {
            if let Some(t) = self.get(&id)? {
                if self.is_active(&t, now)? && t.public_key.len() == 32 {
                    out.push(B256::from_slice(&t.public_key));
                }
            }
        }
        Ok(out)
    }

    /// Checks a registration and writes it; returns its id and record.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &mut self,
        owner: Address,
        attestation: &[u8],
        public_key: &[u8],
        tls_certificate: &[u8],
        payment: Address,
        endpoint: String,
        tee_type: u8,
        now: u64,
    ) -> Result<(B256, Tee), SystemError> {
        let key: [u8; 32] = public_key.try_into().map_err(|_| {
            "TEE registry: publicKey must be the node's 32-byte ed25519 key".to_string()
        })?;
        let id = tee_id(public_key);
        if let Some(t) = self.get(&id)? {
            if t.owner != owner {
                return Err(revert!(
                    "TEE registry: enclave {id} is registered by {}",
                    t.owner
                ));
            }
        }
        let roots = self.roots()?;
        let a = gradnet_tee::verify(attestation, &roots, now)
            .map_err(|e| format!("TEE registry: {e}"))?;
        let age = now.saturating_sub(a.timestamp_ms / 1000);
        if age > MAX_ATTESTATION_AGE {
            return Err(revert!(
                "TEE registry: the attestation is {age} s old; at most {MAX_ATTESTATION_AGE} s"
            ));
        }
        a.check_binding(&key, tls_certificate)
            .map_err(|e| format!("TEE registry: {e}"))?;
        let pcr_hash = B256::from(a.measurement().map_err(|e| format!("TEE registry: {e}"))?);
        if !self.approved(&pcr_hash)? {
            return Err(revert!(
                "TEE registry: measurement {pcr_hash} is not approved"
            ));
        }
        let t = Tee {
            owner,
            payment,
            endpoint,
            public_key: public_key.to_vec(),
            tls_certificate: tls_certificate.to_vec(),
            pcr_hash,
            tee_type,
            deactivated: false,
            dev: a.is_dev(),
            registered_at: now,
            last_heartbeat: now,
        };
        self.put(&id, &t)?;
        Ok((id, t))
    }

    fn info(&self, t: &Tee) -> ITEERegistry::TEEInfo {
        ITEERegistry::TEEInfo {
            owner: t.owner,
            paymentAddress: t.payment,
            endpoint: t.endpoint.clone(),
            publicKey: t.public_key.clone().into(),
            tlsCertificate: t.tls_certificate.clone().into(),
            pcrHash: t.pcr_hash,
            teeType: t.tee_type,
            enabled: !t.deactivated,
            registeredAt: U256::from(t.registered_at),
            lastHeartbeatAt: U256::from(t.last_heartbeat),
            ohttpConfig: ITEERegistry::OhttpConfig {
                keyId: 0,
                kemId: 0,
                kdfId: 0,
                aeadId: 0,
                publicKey: Default::default(),
                keyConfig: Default::default(),
                registeredAt: U256::ZERO,
            },
        }
    }
}

fn log<J: JournalTr>(journal: &mut J, e: impl SolEvent) {
    system_call::log(journal, ADDRESS, e)
}

/// Runs a call to `0x…F8`: its return data and gas.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let call: Call = system_call::decode(ctx, inputs, ADDRESS, "TEE registry", |c| Rules {
        payable: false,
        writes: matches!(
            c,
            Call::approvePCR(_)
                | Call::revokePCR(_)
                | Call::registerTEEWithAttestation(_)
                | Call::heartbeat(_)
                | Call::deactivateTEE(_)
        ),
    })?;
    let now = u64::try_from(ctx.block().timestamp()).unwrap_or(u64::MAX);
    let chain_id = ctx.cfg().chain_id();
    let caller = inputs.caller;
    let journal = ctx.journal_mut();
    let mut reg = TeeRegistry(JournalSlots {
        journal: &mut *journal,
        account: registry::ADDRESS,
    });
    let admin_only = |reg: &mut TeeRegistry<JournalSlots<_>>| -> Result<(), SystemError> {
        let admin = reg.admin()?;
        if caller != admin || admin.is_zero() {
            return Err(revert!(
                "TEE registry: only the admin ({admin}) approves or revokes measurements"
            ));
        }
        Ok(())
    };
    let read = |out: Vec<u8>| Ok((out, REGISTRY_READ_GAS));
    match call {
        Call::approvePCR(c) => {
            admin_only(&mut reg)?;
            reg.set_approved(&c.pcrHash, true)?;
            log(
                reg.0.journal,
                ITEERegistry::PCRApproved {
                    pcrHash: c.pcrHash,
                    description: c.description,
                },
            );
        }
        Call::revokePCR(c) => {
            admin_only(&mut reg)?;
            reg.set_approved(&c.pcrHash, false)?;
            log(
                reg.0.journal,
                ITEERegistry::PCRRevoked { pcrHash: c.pcrHash },
            );
        }
        Call::isPCRApproved(c) => {
            return read(ITEERegistry::isPCRApprovedCall::abi_encode_returns(
                &reg.approved(&c.pcrHash)?,
            ));
        }
        Call::registerTEEWithAttestation(c) => {
            let (id, t) = reg.register(
                caller,
                &c.attestation,
                &c.publicKey,
                &c.tlsCertificate,
                c.paymentAddress,
                c.endpoint,
                c.teeType,
                now,
            )?;
            log(
                reg.0.journal,
                ITEERegistry::TEERegistered {
                    teeId: id,
                    owner: caller,
                    pcrHash: t.pcr_hash,
                    devEnclave: t.dev,
                },
            );
            let out = ITEERegistry::registerTEEWithAttestationCall::abi_encode_returns(&id);
            return Ok((out, REGISTRY_WRITE_GAS + ATTESTATION_GAS));
        }
        Call::heartbeat(c) => {
            let mut t = reg
                .get(&c.teeId)?
                .ok_or_else(|| format!("TEE registry: no enclave {}", c.teeId))?;
            let ts = u64::try_from(c.timestamp).unwrap_or(u64::MAX);
            let max_age = reg.max_age()?;
            // a replayed heartbeat cannot move the time past its own
            if ts > now || now - ts > max_age {
                return Err(revert!(
                    "TEE registry: heartbeat time {ts} is stale or in the future (block time {now}, at most {max_age} s old)"
                ));
            }
            let key = B256::from_slice(&t.public_key);
            let msg = heartbeat_message(chain_id, &c.teeId, ts);
            if !crate::sidecar::verify_signature(&key, &msg, &c.signature) {
                return Err(
                    "TEE registry: the heartbeat is not signed by the enclave's key".into(),
                );
            }
            t.last_heartbeat = ts.max(t.last_heartbeat);
            reg.put(&c.teeId, &t)?;
            log(
                reg.0.journal,
                ITEERegistry::TEEHeartbeat {
                    teeId: c.teeId,
                    timestamp: c.timestamp,
                },
            );
        }
        Call::deactivateTEE(c) => {
            let mut t = reg
                .get(&c.teeId)?
                .ok_or_else(|| format!("TEE registry: no enclave {}", c.teeId))?;
            if t.owner != caller && reg.admin()? != caller {
                return Err(
                    "TEE registry: only the enclave's owner or the admin deactivates it".into(),
                );
            }
            t.deactivated = true;
            reg.put(&c.teeId, &t)?;
            log(
                reg.0.journal,
                ITEERegistry::TEEDeactivated { teeId: c.teeId },
            );
        }
        Call::getActiveTEEs_0(_) | Call::getTEEsByType(_) | Call::getEnabledTEEs(_) => {
            let (want, enabled_only) = match &call {
                Call::getTEEsByType(c) => (Some(c.teeType), false),
                Call::getEnabledTEEs(c) => (Some(c.teeType), true),
                _ => (None, false),
            };
            let mut ids = vec![];
            for id in reg.ids()? {
                let t = reg.get(&id)?.expect("listed");
                let listed = if enabled_only {
                    !t.deactivated
                } else {
                    reg.is_active(&t, now)?
                };
                if listed && want.is_none_or(|w| w == t.tee_type) {
                    ids.push(id);
                }
            }
            let gas = REGISTRY_READ_GAS * (1 + ids.len() as u64);
            return Ok((
                ITEERegistry::getActiveTEEs_0Call::abi_encode_returns(&ids),
                gas,
            ));
        }
        Call::getActiveTEEs_1(c) => {
            let mut infos = vec![];
            for id in reg.ids()? {
                let t = reg.get(&id)?.expect("listed");
                if reg.is_active(&t, now)? && t.tee_type == c.teeType {
                    infos.push(reg.info(&t));
                }
            }
            let gas = REGISTRY_READ_GAS * (1 + 4 * infos.len() as u64);
            return Ok((
                ITEERegistry::getActiveTEEs_1Call::abi_encode_returns(&infos),
                gas,
            ));
        }
        // OpenGradient's name for `isActive`
        Call::isTEEActive(ITEERegistry::isTEEActiveCall { teeId })
        | Call::isActive(ITEERegistry::isActiveCall { teeId }) => {
            let active = match reg.get(&teeId)? {
                Some(t) => reg.is_active(&t, now)?,
                None => false,
            };
            return read(ITEERegistry::isActiveCall::abi_encode_returns(&active));
        }
        Call::isTEEEnabled(c) => {
            let enabled = reg.get(&c.teeId)?.is_some_and(|t| !t.deactivated);
            return read(ITEERegistry::isTEEEnabledCall::abi_encode_returns(&enabled));
        }
        Call::getTEE(c) => {
            let t = reg
                .get(&c.teeId)?
                .ok_or_else(|| format!("TEE registry: no enclave {}", c.teeId))?;
            return read(ITEERegistry::getTEECall::abi_encode_returns(&reg.info(&t)));
        }
        Call::isDevEnclave(c) => {
            let dev = reg.get(&c.teeId)?.is_some_and(|t| t.dev);
            return read(ITEERegistry::isDevEnclaveCall::abi_encode_returns(&dev));
        }
        Call::maxHeartbeatAge(_) => {
            return read(ITEERegistry::maxHeartbeatAgeCall::abi_encode_returns(
                &U256::from(reg.max_age()?),
            ));
        }
    }
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// Bytes of a heartbeat call, for nodes and tests.
pub fn heartbeat_call(tee_id: B256, timestamp: u64, signature: Vec<u8>) -> Bytes {
    ITEERegistry::heartbeatCall {
        teeId: tee_id,
        timestamp: U256::from(timestamp),
        signature: signature.into(),
    }
    .abi_encode()
    .into()
}
