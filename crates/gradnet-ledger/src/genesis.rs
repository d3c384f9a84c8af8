//! The genesis: chain id, block parameters, validators with voting power,
//! and the balances the chain starts with. A devnet generates one with
//! pre-funded development accounts whose keys are printed, as anvil does.

use std::collections::BTreeMap;

use alloy_primitives::{keccak256, Address, B256, U256};
use serde::{Deserialize, Serialize};

use crate::error::ChainError;
use gradnet_inference::error::SystemError;

/// The chain's first state: id, gas limit, validators, funded accounts and system contracts' setup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Genesis {
    /// The chain id (EIP-155).
    pub chain_id: u64,
    /// Unix seconds of block 0.
    pub timestamp: u64,
    /// Gas a block may use.
    pub gas_limit: u64,
    /// Base fee of block 1, in wei; EIP-1559 moves it from there.
    pub base_fee: u64,
    /// Who votes.
    pub validators: Vec<GenesisValidator>,
    /// Starting balances, in wei.
    pub alloc: BTreeMap<Address, U256>,
    /// Contract code the chain starts with (by address).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub code: BTreeMap<Address, alloy_primitives::Bytes>,
    /// Inference nodes registered (and staked) from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inference_nodes: Vec<GenesisInferenceNode>,
    /// ZKML models' verifying keys, registered from the start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub zk_models: Vec<GenesisZkModel>,
    /// The TEE registry's admin, extra pinned roots and approved
    /// measurements (without it: AWS's Nitro root only, and no admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tee: Option<GenesisTee>,
    /// The escrow that pays nodes off chain (without it: its defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escrow: Option<GenesisEscrow>,
}

/// The TEE registry's setup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisTee {
    /// Approves and revokes enclave measurements.
    pub admin: Address,
    /// Root certificates (DER) trusted besides AWS's Nitro root: a
    /// dev-enclave root goes here, and nowhere by default.
    #[serde(default)]
    pub roots: Vec<alloy_primitives::Bytes>,
    /// Measurements (SHA-256 of PCR0‖PCR1‖PCR2) approved from the start.
    #[serde(default)]
    pub approved: Vec<B256>,
    /// Seconds a heartbeat keeps an enclave active [default: 600].
    #[serde(default)]
    pub max_heartbeat_age: Option<u64>,
}

/// A ZKML model's verifying key, registered from the start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisZkModel {
    /// The model's content id (as contracts name it).
    pub model: String,
    /// Its verifying key (`gradnet zk setup`'s verifying.key).
    pub verifying_key: alloy_primitives::Bytes,
    /// Who may replace the key.
    pub owner: Address,
}

/// An inference node registered from the start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisInferenceNode {
    /// The account that runs it (and holds its stake).
    pub operator: Address,
    /// ed25519 public key its results are signed with, hex.
    pub signing_key: String,
    /// Base URL of its HTTP API.
    pub endpoint: String,
    /// 0 VANILLA, 1 ZKML, 2 TEE, 3 QUORUM.
    pub modes: Vec<u8>,
    /// Models it serves; empty: any in its hub.
    #[serde(default)]
    pub models: Vec<String>,
    /// Stake in wei (held by the registry from the start).
    pub stake: U256,
    /// The engine its results come from, `name/version`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    /// Its execution profile (`det-1`: sampled for QUORUM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// What it charges off chain, in wei (none: free until it publishes prices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices: Option<GenesisPrices>,
}

/// A node's default prices (overrides per model are set by transaction).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisPrices {
    /// Per ONNX call.
    pub per_call: U256,
    /// Per million prompt tokens.
    pub per_million_input_tokens: U256,
    /// Per million generated tokens.
    pub per_million_output_tokens: U256,
}

/// The escrow's setup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisEscrow {
    /// Seconds between announcing a withdrawal and making it [default: 3600].
    pub withdrawal_delay: u64,
    /// Channels funded from the start (the escrow's balance holds them;
    /// list it in `alloc` at the escrow's address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deposits: Vec<GenesisDeposit>,
}

/// A channel funded at genesis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisDeposit {
    /// Who pays.
    pub payer: Address,
    /// The node operator it pays.
    pub payee: Address,
    /// Wei.
    pub amount: U256,
}

/// A validator.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenesisValidator {
    /// ed25519 public key, hex.
    pub public_key: String,
    /// Its voting power.
    pub power: u64,
    /// Where its block rewards (priority fees) go.
    pub fee_recipient: Address,
}

/// Development accounts: secp256k1 keys derived from a fixed seed, so a
/// devnet's accounts are the same every time (never use them elsewhere).
pub fn dev_keys(n: usize) -> Vec<B256> {
    (0..n as u64).map(dev_key).collect()
}

/// Development account `i` (devnets give inference node `j` the operator
/// account `DEV_OPERATOR_BASE + j`).
pub fn dev_key(i: u64) -> B256 {
    keccak256([b"gradnet devnet account ".as_slice(), &i.to_be_bytes()].concat())
}

/// Index of the first inference operator among the dev keys ([`dev_key`]).
pub const DEV_OPERATOR_BASE: u64 = 1000;
/// Index of the first validator's gateway account among the dev keys.
pub const DEV_GATEWAY_BASE: u64 = 2000;

/// The Ethereum address of a secp256k1 private key.
pub fn address_of(key: &B256) -> Result<Address, ChainError> {
    let sk = k256::ecdsa::SigningKey::from_slice(key.as_slice())
        .map_err(|e| ChainError::Invalid(format!("bad private key: {e}")))?;
    Ok(Address::from_public_key(sk.verifying_key()))
}

impl Genesis {
    /// A genesis from its JSON file, checked.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ChainError> {
        let g: Genesis = serde_json::from_slice(bytes)
            .map_err(|e| ChainError::Invalid(format!("genesis: {e}")))?;
        g.check()?;
        Ok(g)
    }

    /// Whether the genesis holds together (ids, keys, stakes, the TEE setup).
    pub fn check(&self) -> Result<(), ChainError> {
        let bad = |m: &str| Err(ChainError::Invalid(format!("genesis: {m}")));
        if self.chain_id == 0 {
            return bad("chainId must not be 0");
        }
        if self.gas_limit < 21_000 {
            return bad("gasLimit is below one transfer");
        }
        if self.validators.is_empty() {
            return bad("no validators");
        }
        if self.validators.iter().any(|v| v.power == 0) {
            return bad("a validator has no voting power");
        }
        let mut seen = std::collections::HashSet::new();
        for v in &self.validators {
            let key: Option<[u8; 32]> = hex::decode(&v.public_key)
                .ok()
                .and_then(|k| k.try_into().ok());
            let Some(key) = key else {
                return bad(&format!(
                    "validator key `{}` is not 32 hex bytes",
                    v.public_key
                ));
            };
            if ed25519_consensus::VerificationKey::try_from(key).is_err() {
                return bad(&format!(
                    "validator key `{}` is not an ed25519 public key",
                    v.public_key
                ));
            }
            if !seen.insert(key) {
                return bad(&format!("validator key `{}` is listed twice", v.public_key));
            }
        }
        self.registry_storage()?;
        Ok(())
    }

    /// The registry's storage with the genesis's inference nodes, and
    /// their total stake.
    pub fn registry_storage(&self) -> Result<(BTreeMap<U256, U256>, U256), ChainError> {
        use gradnet_inference::registry::Registry;
        let mut slots = BTreeMap::new();
        let mut total = U256::ZERO;
        for n in &self.inference_nodes {
            let key: [u8; 32] = hex::decode(&n.signing_key)
                .ok()
                .and_then(|k| k.try_into().ok())
                .ok_or_else(|| {
                    ChainError::Invalid(format!(
                        "genesis: inference node {} signingKey is not 32 hex bytes",
                        n.operator
                    ))
                })?;
            let invalid = |e: SystemError| {
                ChainError::Invalid(format!("genesis: inference node {}: {e}", n.operator))
            };
            let mut reg = Registry(&mut slots);
            let mut rec = reg
                .register(
                    n.operator,
                    B256::from(key),
                    n.endpoint.clone(),
                    &n.modes,
                    n.models.clone(),
                    n.stake,
                )
                .map_err(invalid)?;
            if !n.engine.is_empty() || !n.profile.is_empty() {
                gradnet_inference::registry::check_runtime(&n.engine, &n.profile)
                    .map_err(invalid)?;
                rec.engine = n.engine.clone();
                rec.profile = n.profile.clone();
                reg.put(&rec).map_err(invalid)?;
            }
            if let Some(p) = &n.prices {
                let prices = gradnet_types::payments::Prices {
                    perCall: p.per_call,
                    perMillionInputTokens: p.per_million_input_tokens,
                    perMillionOutputTokens: p.per_million_output_tokens,
                    models: vec![],
                };
                gradnet_inference::prices::set_prices(&mut slots, n.operator, &prices)
                    .map_err(invalid)?;
            }
            total += n.stake;
        }
        if let Some(t) = &self.tee {
            let roots: Vec<Vec<u8>> = t.roots.iter().map(|r| r.to_vec()).collect();
            gradnet_inference::tee_registry::TeeRegistry(&mut slots)
                .configure(
                    t.admin,
                    &roots,
                    &t.approved,
                    t.max_heartbeat_age
                        .unwrap_or(gradnet_inference::tee_registry::DEFAULT_MAX_HEARTBEAT_AGE),
                )
                .map_err(|e| ChainError::Invalid(format!("genesis: tee: {e}")))?;
        }
        if let Some(e) = &self.escrow {
            if e.withdrawal_delay == 0 {
                return Err(ChainError::Invalid(
                    "genesis: escrow.withdrawalDelay must be at least 1 s".into(),
                ));
            }
            gradnet_inference::escrow::Escrow(&mut slots)
                .set_delay(e.withdrawal_delay)
                .map_err(|e| ChainError::Invalid(format!("genesis: escrow: {e}")))?;
            let held = self
                .alloc
                .get(&gradnet_types::payments::ESCROW)
                .copied()
                .unwrap_or_default();
            let owed: U256 = e.deposits.iter().map(|d| d.amount).sum();
            if owed > held {
                return Err(ChainError::Invalid(format!(
                    "genesis: escrow deposits total {owed} wei but alloc gives the escrow {held}"
                )));
            }
            for d in &e.deposits {
                gradnet_inference::escrow::Escrow(&mut slots)
                    .deposit(d.payer, d.payee, d.amount)
                    .map_err(|e| ChainError::Invalid(format!("genesis: escrow deposit: {e}")))?;
            }
        }
        for z in &self.zk_models {
            gradnet_inference::zk::key(&z.verifying_key)
                .map_err(SystemError::from)
                .and_then(|_| Registry(&mut slots).register_zk(z.owner, &z.model, &z.verifying_key))
                .map_err(|e| ChainError::Invalid(format!("genesis: ZK model {}: {e}", z.model)))?;
        }
        Ok((slots, total))
    }

    /// The genesis's own hash: the parent of block 1.
    pub fn hash(&self) -> B256 {
        keccak256(serde_json::to_vec(self).expect("genesis serializes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_keys_must_be_ed25519_points_listed_once() {
        let valid = hex::encode(
            ed25519_consensus::SigningKey::from([1u8; 32])
                .verification_key()
                .as_bytes(),
        );
        let not_a_point = (0u8..=255)
            .map(|i| [i; 32])
            .find(|k| ed25519_consensus::VerificationKey::try_from(*k).is_err())
            .unwrap();
        let g = |keys: Vec<String>| Genesis {
            chain_id: 1,
            timestamp: 0,
            gas_limit: 30_000_000,
            base_fee: 1,
            validators: keys
                .into_iter()
                .map(|public_key| GenesisValidator {
                    public_key,
                    power: 1,
                    fee_recipient: Address::ZERO,
                })
                .collect(),
            alloc: Default::default(),
            code: Default::default(),
            inference_nodes: vec![],
            zk_models: vec![],
            tee: None,
            escrow: None,
        };
        assert!(g(vec![valid.clone()]).check().is_ok());
        let e = g(vec![hex::encode(not_a_point)])
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not an ed25519 public key"), "{e}");
        let e = g(vec![valid.clone(), valid])
            .check()
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
        let e = g(vec!["abcd".into()]).check().unwrap_err().to_string();
        assert!(e.contains("not 32 hex bytes"), "{e}");
    }

    #[test]
    fn dev_accounts_are_stable() {
        let keys = dev_keys(2);
        assert_ne!(keys[0], keys[1]);
        assert_eq!(keys, dev_keys(2));
        assert_ne!(address_of(&keys[0]).unwrap(), Address::ZERO);
    }
}
