//! A node standing in for an enclave on a machine without one: it attests
//! with a dev-enclave root (documents that say so in their module id,
//! accepted only by a chain whose genesis pins that root), registers in
//! the TEE registry from its operator account, and sends heartbeats signed
//! with its node key for as long as it runs.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use gradnet_inference::tee_registry::{self, ITEERegistry};
use gradnet_ledger::genesis::GenesisTee;
use gradnet_tee::dev::{dev_pcrs, DevEnclave};
use gradnet_types::NodeKey;

use gradnet_client::{Rpc, Sender};

/// How a node acts as a dev enclave.
#[derive(Clone)]
pub struct DevEnclaveConfig {
    /// Seed of the dev root (the genesis pins the same root).
    pub seed: String,
    /// The account that registers the enclave and pays its heartbeats.
    pub operator_key: B256,
    /// The chain's JSON-RPC.
    pub rpc: String,
    /// The node's API, as the registry lists it.
    pub endpoint: String,
    /// The TLS certificate the API serves (DER), bound in the attestation
    /// and registered; empty for a node that serves plain HTTP only.
    pub tls_certificate: Vec<u8>,
}

impl std::fmt::Debug for DevEnclaveConfig {
    // the operator key stays out of logs
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevEnclaveConfig")
            .field("seed", &self.seed)
            .field("rpc", &self.rpc)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// The devnet's dev-enclave seed: its genesis pins this seed's root.
pub const DEVNET_SEED: &str = "gradnet-devnet-dev-enclave";

/// The genesis section that makes a chain accept `seed`'s dev enclaves
/// (running `dev_pcrs`), with `admin` approving measurements.
pub fn dev_genesis_tee(seed: &str, admin: Address, max_age: u64) -> Result<GenesisTee> {
    Ok(GenesisTee {
        admin,
        roots: vec![DevEnclave::from_seed(seed.as_bytes())?
            .root_der()
            .to_vec()
            .into()],
        approved: vec![B256::from(gradnet_tee::measurement(&dev_pcrs())?)],
        max_heartbeat_age: Some(max_age),
    })
}

/// Waits until `n` enclaves are active on the chain at `rpc`.
pub async fn wait_active(rpc_url: &str, n: usize, within: Duration) -> Result<()> {
    let started = std::time::Instant::now();
    let rpc = Rpc::new(rpc_url)?;
    loop {
        let active = rpc
            .call(
                tee_registry::ADDRESS,
                ITEERegistry::getActiveTEEs_0Call {}.abi_encode(),
            )
            .await
            .ok()
            .and_then(|b| ITEERegistry::getActiveTEEs_0Call::abi_decode_returns(&b).ok())
            .map_or(0, |ids| ids.len());
        if active >= n {
            return Ok(());
        }
        if started.elapsed() > within {
            anyhow::bail!(
                "{active} of {n} dev enclaves registered within {} s",
                within.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Registers, then heartbeats; starts over after an error (the chain not
/// up yet, a restart).
pub async fn run(key: Arc<NodeKey>, c: DevEnclaveConfig) {
    loop {
        if let Err(e) = register_and_beat(&key, &c).await {
            tracing::debug!("dev enclave: {e:#}; retrying");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn register_and_beat(key: &NodeKey, c: &DevEnclaveConfig) -> Result<()> {
    let rpc = Rpc::new(&c.rpc)?;
    let chain_id = rpc.chain_id().await?;
    let mut sender = Sender::new(rpc.clone(), c.operator_key).await?;
    let root = DevEnclave::from_seed(c.seed.as_bytes())?;
    let public: [u8; 32] = hex::decode(key.public_hex())?
        .try_into()
        .map_err(|_| anyhow::anyhow!("node key is not 32 bytes"))?;
    // the TLS certificate's hash is bound with the signing key
    let doc = root.attest(
        &dev_pcrs(),
        &gradnet_tee::binding(&public, &c.tls_certificate),
        None,
        unix_now(),
    )?;
    let register = ITEERegistry::registerTEEWithAttestationCall {
        attestation: doc.into(),
        publicKey: public.to_vec().into(),
        tlsCertificate: c.tls_certificate.clone().into(),
        paymentAddress: gradnet_ledger::genesis::address_of(&c.operator_key)?,
        endpoint: c.endpoint.clone(),
        teeType: 0,
    };
    sender
        .send(tee_registry::ADDRESS, register.abi_encode(), 3_000_000)
        .await
        .context("registering the dev enclave")?;
    let id = tee_registry::tee_id(&public);
    tracing::info!(tee = %id, "registered as a dev enclave (not an enclave: a test root signs its attestation)");
    let age = rpc
        .call(
            tee_registry::ADDRESS,
            ITEERegistry::maxHeartbeatAgeCall {}.abi_encode(),
        )
        .await?;
    let age: u64 = ITEERegistry::maxHeartbeatAgeCall::abi_decode_returns(&age)?
        .saturating_to::<u64>()
        .max(3);
    loop {
        tokio::time::sleep(Duration::from_secs(age / 3)).await;
        let ts = unix_now();
        let sig = key
            .sign(&tee_registry::heartbeat_message(chain_id, &id, ts))
            .to_vec();
        sender
            .send(
                tee_registry::ADDRESS,
                tee_registry::heartbeat_call(id, ts, sig).to_vec(),
                200_000,
            )
            .await
            .context("heartbeat")?;
    }
}
