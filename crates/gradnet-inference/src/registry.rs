//! The inference node registry, a system precompile at `0x…F5` with a
//! Solidity interface (`IInferenceRegistry`): operators register a node
//! (ed25519 signing key, HTTP endpoint, modes, models) with a stake sent as
//! the call's value, declare the engine and execution profile its results
//! come from (`setRuntime`: QUORUM samples only nodes of the deterministic
//! profile, whose results compare bit for bit), add stake, unbond (withdrawable after
//! `UNBOND_DELAY_SECS`), and withdraw what has matured plus the inference
//! fees they earned. The chain itself slashes (see `pipe`); slashed stake
//! stays locked in the registry's balance forever (burned).
//!
//! State lives in the registry account's storage, so it is journaled with
//! the transaction that changes it and enters the state commitment.
//!
//! Gas: reads `REGISTRY_READ_GAS` + `REGISTRY_GAS_PER_NODE` per node
//! returned; writes `REGISTRY_WRITE_GAS`.

use alloy_primitives::{address, Address, B256, U256};
use alloy_sol_types::{sol, SolCall, SolEvent, SolValue};
use revm::context_interface::{Block, Cfg, ContextTr, JournalTr};
use revm::interpreter::CallInputs;

use crate::error::SystemError;
use crate::revert;
use crate::slots::{slot, JournalSlots, Slots};
use crate::system_call::{self, Rules};

/// The inference node registry.
pub const ADDRESS: Address = address!("00000000000000000000000000000000000000F5");
/// Least stake of an active node: 10 tokens (18 decimals).
pub const MIN_STAKE: U256 = U256::from_limbs([10_000_000_000_000_000_000u128 as u64, 0, 0, 0]);
/// Time between `unbond` and the funds becoming withdrawable.
pub const UNBOND_DELAY_SECS: u64 = 3600;
/// Blocks a node sits out of sampling after a fault.
pub const FAULT_COOLDOWN_BLOCKS: u64 = 20;
/// The fee for one node's result, paid by the transaction's sender.
pub const INFERENCE_FEE: U256 = U256::from_limbs([1_000_000_000_000_000, 0, 0, 0]);
/// Gas of a registry read.
pub const REGISTRY_READ_GAS: u64 = 2_600;
/// Gas per node listed.
pub const REGISTRY_GAS_PER_NODE: u64 = 2_000;
/// Gas of a registry write.
pub const REGISTRY_WRITE_GAS: u64 = 60_000;
/// Storing a verifying key: per 32-byte word, as a new storage slot costs.
pub const ZK_KEY_GAS_PER_WORD: u64 = 20_000;
/// Checking one receipt of a batch (signature and stored leaf).
pub const RECEIPT_GAS: u64 = 5_000;
/// Receipts in one batch at most.
pub const MAX_BATCH: u32 = 1_000_000;

sol! {
    #[derive(Debug, PartialEq)]
    interface IInferenceRegistry {
        struct InferenceNode {
            address operator;
            bytes32 signingKey;
            string endpoint;
            uint8[] modes;
            string[] models;
            uint256 stake;
            uint256 unbonding;
            uint64 unbondingUntil;
            uint256 earnings;
            uint256 slashed;
            uint64 faults;
            uint64 lastFault;
            bool active;
            string engine;
            string profile;
        }
        event NodeRegistered(address indexed operator, bytes32 signingKey, string endpoint);
        event Staked(address indexed operator, uint256 amount, uint256 stake);
        event Unbonding(address indexed operator, uint256 amount, uint64 until);
        event Withdrawn(address indexed operator, uint256 amount);
        event Slashed(address indexed operator, uint256 amount, bytes32 requestHash, string reason, bytes evidence);
        event InferenceSettled(bytes32 indexed requestHash, uint8 mode, address[] nodes, uint256 fee);
        event ReceiptBatchPosted(address indexed operator, bytes32 indexed root, string batchCid, uint32 count);
        event ReceiptsSettled(address indexed operator, bytes32 indexed root, string batchCid, uint32 count);
        function postReceiptBatch(bytes32 root, string batchCid, uint32 count) external;
        function verifyReceipts(bytes32 root, bytes chunk) external;
        function receiptBatch(bytes32 root) external view returns (address operator, string batchCid, uint32 count, uint32 verified, uint64 settledAt);
        function register(bytes32 signingKey, string endpoint, uint8[] modes, string[] models) external payable;
        function update(string endpoint, uint8[] modes, string[] models) external;
        event RuntimeSet(address indexed operator, string engine, string profile);
        function setRuntime(string engine, string profile) external;
        function stake() external payable;
        function unbond(uint256 amount) external;
        function withdraw() external returns (uint256);
        function getNode(address operator) external view returns (InferenceNode memory);
        function activeNodes() external view returns (InferenceNode[] memory);
        function faultEvidence(address operator, uint64 index) external view returns (bytes32 requestHash, string reason, bytes evidence);
        event ZkModelRegistered(string modelCID, bytes32 keyId, address owner);
        function registerZkModel(string modelCID, bytes verifyingKey) external;
        function zkModel(string modelCID) external view returns (bytes32 keyId, address owner, uint8 fracBits, uint32 inputs, uint32 outputs);
        function minStake() external view returns (uint256);
        function inferenceFee() external view returns (uint256);
        function reportFault(bytes certificate) external;
        function zkVerifyingKey(string modelCID) external view returns (bytes);
    }
}

use IInferenceRegistry::{IInferenceRegistryCalls as Call, InferenceNode};

/// Why a node was slashed: the call, a readable reason and the signed
/// results that prove it (RLP, see `sidecar::Evidence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The call.
    pub request_hash: B256,
    /// Why, for a person.
    pub reason: String,
    /// The signed results that prove it.
    pub evidence: alloy_primitives::Bytes,
}

/// One registered node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeRecord {
    /// Its operator account.
    pub operator: Address,
    /// The ed25519 key its results are signed with.
    pub signing_key: B256,
    /// Where PIPE reaches it.
    pub endpoint: String,
    /// Bit `m` set: serves mode `m`.
    pub modes: u8,
    /// Models it serves (content ids or names); empty: any in its hub.
    pub models: Vec<String>,
    /// Bonded stake, in wei.
    pub stake: U256,
    /// Stake being unbonded.
    pub unbonding: U256,
    /// When the unbonding stake can be withdrawn.
    pub unbonding_until: u64,
    /// Fees earned.
    pub earnings: U256,
    /// Stake slashed.
    pub slashed: U256,
    /// Faults recorded.
    pub faults: u64,
    /// Block of the last fault (0: none).
    pub last_fault: u64,
    /// The engine its results come from, `name/version` (empty: not declared).
    pub engine: String,
    /// Its execution profile: `det-1` (results compare bit for bit across
    /// nodes) or `native`; empty: not declared.
    pub profile: String,
}

impl NodeRecord {
    /// Whether it has stake enough to be sampled.
    pub fn active(&self) -> bool {
        self.stake >= MIN_STAKE
    }

    /// Whether it serves `mode` for `model`.
    pub fn serves(&self, mode: gradnet_types::InferenceMode, model: &str) -> bool {
        self.modes & (1 << mode.abi_code()) != 0
            && (self.models.is_empty() || self.models.iter().any(|m| m == model))
    }

    /// Declares the deterministic profile: its results can be compared bit
    /// for bit with any other such node's.
    pub fn deterministic(&self) -> bool {
        self.profile == gradnet_types::DETERMINISTIC_PROFILE
    }

    /// Active, serving `mode`/`model`, and not cooling down from a fault
    /// at `block`.
    pub fn eligible(&self, mode: gradnet_types::InferenceMode, model: &str, block: u64) -> bool {
        self.active()
            && self.serves(mode, model)
            && (self.last_fault == 0 || block > self.last_fault + FAULT_COOLDOWN_BLOCKS)
    }

    /// A node as `getNode` / `activeNodes` return it.
    pub fn from_abi(n: &InferenceNode) -> Self {
        NodeRecord {
            operator: n.operator,
            signing_key: n.signingKey,
            endpoint: n.endpoint.clone(),
            modes: modes_mask(&n.modes).unwrap_or(0),
            models: n.models.clone(),
            stake: n.stake,
            unbonding: n.unbonding,
            unbonding_until: n.unbondingUntil,
            earnings: n.earnings,
            slashed: n.slashed,
            faults: n.faults,
            last_fault: n.lastFault,
            engine: n.engine.clone(),
            profile: n.profile.clone(),
        }
    }

    fn abi(&self) -> InferenceNode {
        InferenceNode {
            operator: self.operator,
            signingKey: self.signing_key,
            endpoint: self.endpoint.clone(),
            modes: (0..8).filter(|m| self.modes & (1 << m) != 0).collect(),
            models: self.models.clone(),
            stake: self.stake,
            unbonding: self.unbonding,
            unbondingUntil: self.unbonding_until,
            earnings: self.earnings,
            slashed: self.slashed,
            faults: self.faults,
            lastFault: self.last_fault,
            active: self.active(),
            engine: self.engine.clone(),
            profile: self.profile.clone(),
        }
    }
}

/// An engine is `name/version`; a profile is a short token.
pub fn check_runtime(engine: &str, profile: &str) -> Result<(), SystemError> {
    let token = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(engine) || !engine.contains('/') {
        return Err(revert!(
            "registry: engine `{engine}` must be name/version (printable, at most 64 bytes)"
        ));
    }
    if !token(profile) {
        return Err(revert!(
            "registry: profile `{profile}` must be printable, 1 to 64 bytes"
        ));
    }
    Ok(())
}

/// The bit mask of a list of mode codes.
pub fn modes_mask(modes: &[u8]) -> Result<u8, SystemError> {
    modes.iter().try_fold(0u8, |m, &x| {
        if x > 3 {
            Err(revert!(
                "mode {x} is not one of 0 VANILLA, 1 ZKML, 2 TEE, 3 QUORUM"
            ))
        } else {
            Ok(m | 1 << x)
        }
    })
}

// field offsets within a node's record
const F_KEY: u64 = 0;
const F_STAKE: u64 = 1;
const F_UNBONDING: u64 = 2;
const F_UNTIL: u64 = 3;
const F_EARNINGS: u64 = 4;
const F_SLASHED: u64 = 5;
const F_FAULTS: u64 = 6;
const F_LAST_FAULT: u64 = 7;
const F_MODES: u64 = 8;
const F_EXISTS: u64 = 9;
const F_BLOB: u64 = 16;

fn to_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn batch_slot(root: &B256) -> U256 {
    slot("gradnet.registry.batch", root.as_slice())
}

fn leaf_slot(root: &B256, i: u64) -> U256 {
    slot(
        "gradnet.registry.batch.leaf",
        &[root.as_slice(), &i.to_be_bytes()].concat(),
    )
}

/// The registry over some storage.
pub struct Registry<S>(pub S);

impl<S: Slots> Registry<S> {
    fn base(op: &Address) -> U256 {
        slot("gradnet.registry.node", op.as_slice())
    }

    fn list() -> U256 {
        slot("gradnet.registry.nodes", &[])
    }

    /// Every registered operator, in registration order.
    pub fn operators(&mut self) -> Result<Vec<Address>, SystemError> {
        let n = to_u64(self.0.get(Self::list())?);
        (0..n)
            .map(|i| {
                let w = self.0.get(Self::list() + U256::from(1 + i))?;
                Ok(Address::from_word(w.into()))
            })
            .collect()
    }

    /// The node of `op`, if registered.
    pub fn node(&mut self, op: &Address) -> Result<Option<NodeRecord>, SystemError> {
        let b = Self::base(op);
        let f = |i: u64| b + U256::from(i);
        if self.0.get(f(F_EXISTS))?.is_zero() {
            return Ok(None);
        }
        let blob = self.0.get_bytes(f(F_BLOB))?;
        // records written before engines were declared hold two fields
        let (endpoint, models, engine, profile) =
            match <(String, Vec<String>, String, String)>::abi_decode_params(&blob) {
                Ok(r) => r,
                Err(_) => <(String, Vec<String>)>::abi_decode_params(&blob)
                    .map(|(e, m)| (e, m, String::new(), String::new()))
                    .map_err(|e| format!("stored node record: {e}"))?,
            };
        Ok(Some(NodeRecord {
            operator: *op,
            signing_key: self.0.get(f(F_KEY))?.into(),
            endpoint,
            modes: to_u64(self.0.get(f(F_MODES))?) as u8,
            models,
            stake: self.0.get(f(F_STAKE))?,
            unbonding: self.0.get(f(F_UNBONDING))?,
            unbonding_until: to_u64(self.0.get(f(F_UNTIL))?),
            earnings: self.0.get(f(F_EARNINGS))?,
            slashed: self.0.get(f(F_SLASHED))?,
            faults: to_u64(self.0.get(f(F_FAULTS))?),
            last_fault: to_u64(self.0.get(f(F_LAST_FAULT))?),
            engine,
            profile,
        }))
    }

    /// Every registered node, in registration order.
    pub fn all(&mut self) -> Result<Vec<NodeRecord>, SystemError> {
        let ops = self.operators()?;
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            if let Some(n) = self.node(&op)? {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Writes a record (adding it to the list when new).
    pub fn put(&mut self, n: &NodeRecord) -> Result<(), SystemError> {
        let b = Self::base(&n.operator);
        let f = |i: u64| b + U256::from(i);
        if self.0.get(f(F_EXISTS))?.is_zero() {
            let count = self.0.get(Self::list())?;
            self.0.set(
                Self::list() + U256::from(1) + count,
                n.operator.into_word().into(),
            )?;
            self.0.set(Self::list(), count + U256::from(1))?;
            self.0.set(f(F_EXISTS), U256::from(1))?;
        }
        self.0.set(f(F_KEY), n.signing_key.into())?;
        self.0.set(f(F_STAKE), n.stake)?;
        self.0.set(f(F_UNBONDING), n.unbonding)?;
        self.0.set(f(F_UNTIL), U256::from(n.unbonding_until))?;
        self.0.set(f(F_EARNINGS), n.earnings)?;
        self.0.set(f(F_SLASHED), n.slashed)?;
        self.0.set(f(F_FAULTS), U256::from(n.faults))?;
        self.0.set(f(F_LAST_FAULT), U256::from(n.last_fault))?;
        self.0.set(f(F_MODES), U256::from(n.modes))?;
        let blob = (
            n.endpoint.clone(),
            n.models.clone(),
            n.engine.clone(),
            n.profile.clone(),
        )
            .abi_encode_params();
        Ok(self.0.set_bytes(f(F_BLOB), &blob)?)
    }

    /// Checks and writes a new node.
    pub fn register(
        &mut self,
        operator: Address,
        signing_key: B256,
        endpoint: String,
        modes: &[u8],
        models: Vec<String>,
        stake: U256,
    ) -> Result<NodeRecord, SystemError> {
        if self.node(&operator)?.is_some() {
            return Err(revert!("registry: {operator} is already registered"));
        }
        if ed25519_consensus::VerificationKey::try_from(signing_key.0).is_err() {
            return Err("registry: signingKey is not an ed25519 public key".into());
        }
        let url = url::Url::parse(&endpoint)
            .map_err(|e| format!("registry: endpoint `{endpoint}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(revert!("registry: endpoint `{endpoint}` is not http(s)"));
        }
        if stake < MIN_STAKE {
            return Err(revert!(
                "registry: stake {stake} wei is below the minimum {MIN_STAKE} wei"
            ));
        }
        let n = NodeRecord {
            operator,
            signing_key,
            endpoint,
            modes: modes_mask(modes).map_err(|e| format!("registry: {e}"))?,
            models,
            stake,
            ..Default::default()
        };
        self.put(&n)?;
        Ok(n)
    }

    fn existing(&mut self, op: &Address) -> Result<NodeRecord, SystemError> {
        self.node(op)?
            .ok_or_else(|| revert!("registry: {op} is not a registered node"))
    }

    /// Takes `bps` basis points of a node's stake (and its unbonding
    /// funds, which are still at stake), marks a fault at `block` and
    /// keeps its evidence. Returns the amount taken.
    pub fn slash(
        &mut self,
        op: &Address,
        bps: u64,
        block: u64,
        fault: &Fault,
    ) -> Result<U256, SystemError> {
        let mut n = self.existing(op)?;
        let at = Self::evidence_slot(op, n.faults);
        let blob = (
            fault.request_hash,
            fault.reason.clone(),
            fault.evidence.clone(),
        )
            .abi_encode_params();
        self.0.set_bytes(at, &blob)?;
        let take = |v: U256| v * U256::from(bps) / U256::from(10_000);
        let (a, b) = (take(n.stake), take(n.unbonding));
        n.stake -= a;
        n.unbonding -= b;
        n.slashed += a + b;
        n.faults += 1;
        n.last_fault = block;
        self.put(&n)?;
        Ok(a + b)
    }

    fn evidence_slot(op: &Address, index: u64) -> U256 {
        slot(
            "gradnet.registry.evidence",
            &[op.as_slice(), &index.to_be_bytes()].concat(),
        )
    }

    fn zk_slot(model: &str) -> U256 {
        slot("gradnet.registry.zk", model.as_bytes())
    }

    /// A model's verifying key bytes and who registered them.
    pub fn zk_model(&mut self, model: &str) -> Result<Option<(Vec<u8>, Address)>, SystemError> {
        let s = Self::zk_slot(model);
        let owner = self.0.get(s)?;
        if owner.is_zero() {
            return Ok(None);
        }
        let bytes = self.0.get_bytes(s + U256::from(1))?;
        Ok(Some((bytes, Address::from_word(owner.into()))))
    }

    /// Registers (or, by its owner, replaces) a model's verifying key;
    /// returns the key's id (its content id's hash).
    pub fn register_zk(
        &mut self,
        caller: Address,
        model: &str,
        key: &[u8],
    ) -> Result<B256, SystemError> {
        if model.is_empty() {
            return Err("registry: a ZK model needs its model CID".into());
        }
        if let Some((_, owner)) = self.zk_model(model)? {
            if owner != caller {
                return Err(revert!(
                    "registry: model {model}'s verifying key was registered by {owner}; only it may replace the key"
                ));
            }
        }
        let s = Self::zk_slot(model);
        self.0.set(s, caller.into_word().into())?;
        self.0.set_bytes(s + U256::from(1), key)?;
        Ok(B256::from(gradnet_types::ContentId::of(key).0))
    }

    /// The evidence of a node's fault number `index` (from 0).
    pub fn evidence(&mut self, op: &Address, index: u64) -> Result<Fault, SystemError> {
        let blob = self.0.get_bytes(Self::evidence_slot(op, index))?;
        if blob.is_empty() {
            return Err(revert!("registry: {op} has no fault {index}"));
        }
        let (request_hash, reason, evidence) =
            <(B256, String, alloy_primitives::Bytes)>::abi_decode_params(&blob)
                .map_err(|e| format!("stored evidence: {e}"))?;
        Ok(Fault {
            request_hash,
            reason,
            evidence,
        })
    }

    /// Checks the next chunk of a posted batch (RLP list of compact
    /// receipts, in batch order); after the last, that all hash to the
    /// root. Returns the gas it costs and, when the batch settled, the event.
    pub fn verify_receipts(
        &mut self,
        root: &B256,
        chunk: &[u8],
        now: u64,
    ) -> Result<(u64, Option<IInferenceRegistry::ReceiptsSettled>), SystemError> {
        use crate::receipts::{self, CompactReceipt};
        let b = batch_slot(root);
        let op = self.0.get(b)?;
        if op.is_zero() {
            return Err(revert!("receipts: no batch {root} (post it first)"));
        }
        let op = Address::from_word(op.into());
        if !self.0.get(b + U256::from(3))?.is_zero() {
            return Err(revert!("receipts: batch {root} is settled already"));
        }
        let node = self.existing(&op)?;
        let node_hex = hex::encode(node.signing_key);
        let count = to_u64(self.0.get(b + U256::from(1))?);
        let mut done = to_u64(self.0.get(b + U256::from(2))?);
        let list: Vec<CompactReceipt> = alloy_rlp::Decodable::decode(&mut &chunk[..])
            .map_err(|e| format!("receipts: malformed chunk: {e}"))?;
        if done + list.len() as u64 > count {
            return Err(revert!(
                "receipts: batch {root} holds {count} receipts; {done} are in, this chunk brings {}",
                list.len()
            ));
        }
        for c in &list {
            let r = c
                .receipt(&node_hex)
                .map_err(|e| format!("receipts: receipt {done}: {e}"))?;
            r.verify()
                .map_err(|e| format!("receipts: receipt {done} of batch {root}: {e}"))?;
            self.0
                .set(leaf_slot(root, done), receipts::leaf(&r)?.into())?;
            done += 1;
        }
        self.0.set(b + U256::from(2), U256::from(done))?;
        let gas = RECEIPT_GAS * list.len() as u64;
        if done < count {
            return Ok((gas, None));
        }
        let leaves = (0..count)
            .map(|i| self.0.get(leaf_slot(root, i)).map(B256::from))
            .collect::<Result<Vec<_>, _>>()?;
        let got = receipts::root(&leaves);
        if got != *root {
            return Err(revert!(
                "receipts: the {count} receipts hash to {got}, not to the batch's root {root}"
            ));
        }
        self.0.set(b + U256::from(3), U256::from(now.max(1)))?;
        let cid = String::from_utf8_lossy(&self.0.get_bytes(b + U256::from(16))?).into_owned();
        Ok((
            gas,
            Some(IInferenceRegistry::ReceiptsSettled {
                operator: op,
                root: *root,
                batchCid: cid,
                count: count as u32,
            }),
        ))
    }

    /// Credits a node's earnings (fees already held by the registry).
    pub fn credit(&mut self, op: &Address, amount: U256) -> Result<(), SystemError> {
        let mut n = self.existing(op)?;
        n.earnings += amount;
        self.put(&n)
    }
}

fn log<J: JournalTr>(journal: &mut J, e: impl SolEvent) {
    system_call::log(journal, ADDRESS, e)
}

/// Runs a call to the registry: its return data and gas, or why it reverts.
pub fn call<CTX: ContextTr>(
    ctx: &mut CTX,
    inputs: &CallInputs,
) -> Result<(Vec<u8>, u64), SystemError> {
    let value = inputs.call_value();
    let call: Call = system_call::decode(ctx, inputs, ADDRESS, "registry", |c| Rules {
        payable: matches!(c, Call::register(_) | Call::stake(_)),
        writes: !matches!(
            c,
            Call::getNode(_)
                | Call::receiptBatch(_)
                | Call::activeNodes(_)
                | Call::faultEvidence(_)
                | Call::minStake(_)
                | Call::inferenceFee(_)
                | Call::zkModel(_)
                | Call::zkVerifyingKey(_)
        ),
    })?;
    let now = to_u64(ctx.block().timestamp());
    let caller = inputs.caller;
    let block = to_u64(ctx.block().number());
    let chain_id = ctx.cfg().chain_id();
    // a report's seed block hash, read before the registry takes the journal
    let seed = match &call {
        Call::reportFault(c) => seed_block(&c.certificate).map(|b| {
            use revm::Database;
            (b, ctx.db_mut().block_hash(b).unwrap_or_default())
        }),
        _ => None,
    };
    let journal = ctx.journal_mut();
    let mut reg = Registry(JournalSlots {
        journal: &mut *journal,
        account: ADDRESS,
    });
    match call {
        Call::register(c) => register(&mut reg, caller, value, c),
        Call::update(c) => update(&mut reg, caller, c),
        Call::setRuntime(c) => set_runtime(&mut reg, caller, c),
        Call::stake(_) => stake(&mut reg, caller, value),
        Call::unbond(c) => unbond(&mut reg, caller, now, c),
        Call::withdraw(_) => withdraw(&mut reg, caller, now),
        Call::getNode(c) => get_node(&mut reg, c),
        Call::activeNodes(_) => active_nodes(&mut reg),
        Call::faultEvidence(c) => fault_evidence(&mut reg, c),
        Call::postReceiptBatch(c) => post_receipt_batch(&mut reg, caller, c),
        Call::verifyReceipts(c) => verify_receipts(&mut reg, now, c),
        Call::receiptBatch(c) => receipt_batch(&mut reg, c),
        Call::registerZkModel(c) => register_zk_model(&mut reg, caller, c),
        Call::zkModel(c) => zk_model(&mut reg, c),
        Call::zkVerifyingKey(c) => zk_verifying_key(&mut reg, c),
        Call::minStake(_) => min_stake(),
        Call::inferenceFee(_) => inference_fee(),
        Call::reportFault(c) => report_fault(&mut reg, chain_id, block, seed, c),
    }
}

/// The seed block a reported certificate names, if it parses that far.
fn seed_block(certificate: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Seeded {
        seed: gradnet_types::certificate::Seed,
    }
    serde_json::from_slice::<Seeded>(certificate)
        .ok()
        .map(|s| s.seed.block)
}

/// `reportFault`: slashes the nodes a QUORUM certificate shows dissenting
/// (see `fault_report`), each once per request.
fn report_fault<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    chain_id: u64,
    block: u64,
    seed: Option<(u64, B256)>,
    c: IInferenceRegistry::reportFaultCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    use crate::fault_report;
    let nodes = reg.all()?;
    let hash_of = |b: u64| seed.filter(|(n, _)| *n == b).map_or(B256::ZERO, |s| s.1);
    let marks = |op: &Address, request: &B256| {
        slot(
            "gradnet.registry.reported",
            &[op.as_slice(), request.as_slice()].concat(),
        )
    };
    let (cert, convicted) = fault_report::check(
        &c.certificate,
        chain_id,
        block,
        hash_of,
        nodes,
        |op, request| {
            reg.0
                .get(marks(op, request))
                .map(|v| !v.is_zero())
                .map_err(|e| e.to_string())
        },
    )
    .map_err(SystemError::from)?;
    let words = c.certificate.len().div_ceil(32) as u64;
    let mut gas = REGISTRY_WRITE_GAS + RECEIPT_GAS * cert.answers.len() as u64;
    for op in &convicted.nodes {
        let mark = marks(op, &convicted.request_hash);
        reg.0.set(mark, U256::from(1))?;
        let fault = Fault {
            request_hash: convicted.request_hash,
            reason: fault_report::REASON.into(),
            evidence: c.certificate.clone(),
        };
        let amount = reg.slash(op, crate::sidecar::SLASH_WRONG_BPS, block, &fault)?;
        log(
            reg.0.journal,
            IInferenceRegistry::Slashed {
                operator: *op,
                amount,
                requestHash: convicted.request_hash,
                reason: fault.reason,
                evidence: fault.evidence,
            },
        );
        gas += REGISTRY_WRITE_GAS + ZK_KEY_GAS_PER_WORD * words;
    }
    Ok((vec![], gas))
}

/// `register`: a new node with its stake (the call's value).
fn register<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    value: U256,
    c: IInferenceRegistry::registerCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let n = reg.register(caller, c.signingKey, c.endpoint, &c.modes, c.models, value)?;
    log(
        reg.0.journal,
        IInferenceRegistry::NodeRegistered {
            operator: caller,
            signingKey: n.signing_key,
            endpoint: n.endpoint,
        },
    );
    log(
        reg.0.journal,
        IInferenceRegistry::Staked {
            operator: caller,
            amount: value,
            stake: value,
        },
    );
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `update`: a node's endpoint, modes and models.
fn update<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    c: IInferenceRegistry::updateCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let mut n = reg.existing(&caller)?;
    n.endpoint = c.endpoint;
    n.modes = modes_mask(&c.modes).map_err(|e| format!("registry: {e}"))?;
    n.models = c.models;
    reg.put(&n)?;
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `setRuntime`: the engine and profile a node's results come from.
fn set_runtime<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    c: IInferenceRegistry::setRuntimeCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let mut n = reg.existing(&caller)?;
    check_runtime(&c.engine, &c.profile)?;
    n.engine = c.engine;
    n.profile = c.profile;
    reg.put(&n)?;
    log(
        reg.0.journal,
        IInferenceRegistry::RuntimeSet {
            operator: caller,
            engine: n.engine,
            profile: n.profile,
        },
    );
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `stake`: more stake (the call's value).
fn stake<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    value: U256,
) -> Result<(Vec<u8>, u64), SystemError> {
    let mut n = reg.existing(&caller)?;
    n.stake += value;
    reg.put(&n)?;
    log(
        reg.0.journal,
        IInferenceRegistry::Staked {
            operator: caller,
            amount: value,
            stake: n.stake,
        },
    );
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `unbond`: stake that becomes withdrawable after `UNBOND_DELAY_SECS`.
fn unbond<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    now: u64,
    c: IInferenceRegistry::unbondCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let mut n = reg.existing(&caller)?;
    if c.amount.is_zero() || c.amount > n.stake {
        return Err(revert!(
            "registry: cannot unbond {} wei of a stake of {} wei",
            c.amount,
            n.stake
        ));
    }
    n.stake -= c.amount;
    n.unbonding += c.amount;
    n.unbonding_until = now + UNBOND_DELAY_SECS;
    reg.put(&n)?;
    log(
        reg.0.journal,
        IInferenceRegistry::Unbonding {
            operator: caller,
            amount: c.amount,
            until: n.unbonding_until,
        },
    );
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `withdraw`: earnings and matured unbonded stake, to the operator.
fn withdraw<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    now: u64,
) -> Result<(Vec<u8>, u64), SystemError> {
    let mut n = reg.existing(&caller)?;
    let mut amount = std::mem::take(&mut n.earnings);
    if !n.unbonding.is_zero() && now >= n.unbonding_until {
        amount += std::mem::take(&mut n.unbonding);
    }
    if amount.is_zero() {
        return Err(revert!(
            "registry: nothing to withdraw yet (unbonding {} wei until {})",
            n.unbonding,
            n.unbonding_until
        ));
    }
    reg.put(&n)?;
    if let Some(e) = reg
        .0
        .journal
        .transfer(ADDRESS, caller, amount)
        .map_err(|e| e.to_string())?
    {
        return Err(revert!("registry: transfer failed: {e:?}"));
    }
    log(
        reg.0.journal,
        IInferenceRegistry::Withdrawn {
            operator: caller,
            amount,
        },
    );
    Ok((
        IInferenceRegistry::withdrawCall::abi_encode_returns(&amount),
        REGISTRY_WRITE_GAS,
    ))
}

/// `getNode`: one node's record.
fn get_node<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    c: IInferenceRegistry::getNodeCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let n = reg.existing(&c.operator)?;
    let gas = REGISTRY_READ_GAS + REGISTRY_GAS_PER_NODE;
    Ok((
        IInferenceRegistry::getNodeCall::abi_encode_returns(&n.abi()),
        gas,
    ))
}

/// `activeNodes`: every node with at least the minimum stake.
fn active_nodes<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
) -> Result<(Vec<u8>, u64), SystemError> {
    let all = reg.all()?;
    let gas = REGISTRY_READ_GAS + REGISTRY_GAS_PER_NODE * all.len() as u64;
    let active: Vec<InferenceNode> = all
        .iter()
        .filter(|n| n.active())
        .map(NodeRecord::abi)
        .collect();
    Ok((
        IInferenceRegistry::activeNodesCall::abi_encode_returns(&active),
        gas,
    ))
}

/// `faultEvidence`: one recorded fault of a node.
fn fault_evidence<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    c: IInferenceRegistry::faultEvidenceCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let f = reg.evidence(&c.operator, c.index)?;
    let gas = REGISTRY_READ_GAS + 16 * f.evidence.len() as u64;
    Ok((
        IInferenceRegistry::faultEvidenceCall::abi_encode_returns_tuple(&(
            f.request_hash,
            f.reason,
            f.evidence,
        )),
        gas,
    ))
}

/// `postReceiptBatch`: the Merkle root of a batch of a node's receipts.
fn post_receipt_batch<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    c: IInferenceRegistry::postReceiptBatchCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    reg.existing(&caller)?;
    if c.count == 0 || c.count > MAX_BATCH {
        return Err(revert!(
            "receipts: a batch holds 1 to {MAX_BATCH} receipts, not {}",
            c.count
        ));
    }
    let b = batch_slot(&c.root);
    if !reg.0.get(b)?.is_zero() {
        return Err(revert!("receipts: batch {} was posted already", c.root));
    }
    reg.0.set(b, caller.into_word().into())?;
    reg.0.set(b + U256::from(1), U256::from(c.count))?;
    reg.0.set_bytes(b + U256::from(16), c.batchCid.as_bytes())?;
    log(
        reg.0.journal,
        IInferenceRegistry::ReceiptBatchPosted {
            operator: caller,
            root: c.root,
            batchCid: c.batchCid,
            count: c.count,
        },
    );
    Ok((vec![], REGISTRY_WRITE_GAS))
}

/// `verifyReceipts`: a chunk of a posted batch, every signature checked.
fn verify_receipts<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    now: u64,
    c: IInferenceRegistry::verifyReceiptsCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let gas = reg.verify_receipts(&c.root, &c.chunk, now)?;
    if let Some(settled) = gas.1 {
        log(reg.0.journal, settled);
    }
    Ok((vec![], REGISTRY_WRITE_GAS + gas.0))
}

/// `receiptBatch`: a posted batch and how far it is verified.
fn receipt_batch<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    c: IInferenceRegistry::receiptBatchCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let b = batch_slot(&c.root);
    let op = reg.0.get(b)?;
    if op.is_zero() {
        return Err(revert!("receipts: no batch {}", c.root));
    }
    let cid = String::from_utf8_lossy(&reg.0.get_bytes(b + U256::from(16))?).into_owned();
    let out = IInferenceRegistry::receiptBatchCall::abi_encode_returns_tuple(&(
        Address::from_word(op.into()),
        cid,
        to_u64(reg.0.get(b + U256::from(1))?) as u32,
        to_u64(reg.0.get(b + U256::from(2))?) as u32,
        to_u64(reg.0.get(b + U256::from(3))?),
    ));
    Ok((out, REGISTRY_READ_GAS))
}

/// `registerZkModel`: a model's verifying key (checked before it is stored).
fn register_zk_model<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    caller: Address,
    c: IInferenceRegistry::registerZkModelCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    // parsed (every point checked) before it is stored
    crate::zk::key(&c.verifyingKey).map_err(|e| format!("registry: {e}"))?;
    let key_id = reg.register_zk(caller, &c.modelCID, &c.verifyingKey)?;
    log(
        reg.0.journal,
        IInferenceRegistry::ZkModelRegistered {
            modelCID: c.modelCID,
            keyId: key_id,
            owner: caller,
        },
    );
    let words = c.verifyingKey.len().div_ceil(32) as u64;
    Ok((vec![], REGISTRY_WRITE_GAS + ZK_KEY_GAS_PER_WORD * words))
}

/// `zkModel`: a model's registered verifying key.
/// `zkVerifyingKey`: a model's registered verifying key, its bytes.
fn zk_verifying_key<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    c: IInferenceRegistry::zkVerifyingKeyCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let (bytes, _) = reg.zk_model(&c.modelCID)?.ok_or_else(|| {
        format!(
            "registry: no verifying key registered for model {}",
            c.modelCID
        )
    })?;
    let words = bytes.len().div_ceil(32) as u64;
    let out = IInferenceRegistry::zkVerifyingKeyCall::abi_encode_returns(&bytes.into());
    Ok((out, REGISTRY_READ_GAS + 200 * words))
}

fn zk_model<J: JournalTr>(
    reg: &mut Registry<JournalSlots<'_, J>>,
    c: IInferenceRegistry::zkModelCall,
) -> Result<(Vec<u8>, u64), SystemError> {
    let (bytes, owner) = reg.zk_model(&c.modelCID)?.ok_or_else(|| {
        format!(
            "registry: no verifying key registered for model {}",
            c.modelCID
        )
    })?;
    let vk = crate::zk::key(&bytes)?;
    let out = IInferenceRegistry::zkModelCall::abi_encode_returns_tuple(&(
        B256::from(vk.id().0),
        owner,
        vk.frac_bits as u8,
        vk.inputs as u32,
        vk.outputs as u32,
    ));
    let words = bytes.len().div_ceil(32) as u64;
    Ok((out, REGISTRY_READ_GAS + 200 * words))
}

/// `minStake`.
fn min_stake() -> Result<(Vec<u8>, u64), SystemError> {
    Ok((
        IInferenceRegistry::minStakeCall::abi_encode_returns(&MIN_STAKE),
        REGISTRY_READ_GAS,
    ))
}

/// `inferenceFee`.
fn inference_fee() -> Result<(Vec<u8>, u64), SystemError> {
    Ok((
        IInferenceRegistry::inferenceFeeCall::abi_encode_returns(&INFERENCE_FEE),
        REGISTRY_READ_GAS,
    ))
}
