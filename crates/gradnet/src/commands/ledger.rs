//! The ledger inside a node: the chain in `<data-dir>/chain`, its
//! JSON-RPC listener, and block production when this node is the genesis's
//! only validator.

use alloy_primitives::{keccak256, Address};
use anyhow::{bail, Context, Result};
use gradnet_chain::chain::Chain;
use gradnet_chain::genesis::Genesis;
use gradnet_chain::mempool::PoolConfig;
use std::path::Path;

use crate::config::ChainConfig;

pub struct Ledger {
    pub rpc_url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Ledger {
    /// Stops block production and the JSON-RPC listener; what is committed
    /// is already on disk.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The EVM-style address of a validator's ed25519 key (blocks name their proposer by it).
pub fn validator_address(public_hex: &str) -> Result<Address> {
    let key = hex::decode(public_hex).context("validator key is not hex")?;
    Ok(Address::from_slice(&keccak256(key)[12..]))
}

pub async fn start(data_dir: &Path, cfg: &ChainConfig, node_public_hex: &str) -> Result<Ledger> {
    let bytes = std::fs::read(&cfg.genesis)
        .with_context(|| format!("reading genesis {}", cfg.genesis.display()))?;
    let genesis = Genesis::from_json(&bytes)?;
    let validators = genesis.validators.clone();
    if validators.len() != 1 {
        bail!(
            "the genesis lists {} validators; this build produces blocks for one-validator networks only (BFT consensus between validators is not in it yet)",
            validators.len()
        );
    }
    let me = &validators[0];
    if me.public_key != node_public_hex {
        bail!(
            "this node's key ({node_public_hex}) is not the genesis validator ({}); start the validator's node, or give this node its key",
            me.public_key
        );
    }
    let chain = Chain::open(
        &data_dir.join("chain"),
        genesis.clone(),
        PoolConfig::default(),
    )
    .with_context(|| format!("opening the chain in {}", data_dir.join("chain").display()))?;
    let listener = tokio::net::TcpListener::bind(&cfg.rpc_listen)
        .await
        .with_context(|| format!("binding JSON-RPC on {}", cfg.rpc_listen))?;
    let rpc_addr = listener.local_addr()?;
    let app = gradnet_chain::rpc::router(chain.clone());
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("JSON-RPC server: {e}");
        }
    })];
    let head = chain.head();
    tasks.push(tokio::spawn(gradnet_chain::producer::run(
        chain.clone(),
        cfg.block_time,
        validator_address(&me.public_key)?,
        me.fee_recipient,
    )));
    tracing::info!(
        chain_id = genesis.chain_id,
        head = head.number,
        "producing blocks as the validator"
    );
    println!(
        "gradnet JSON-RPC listening on http://{rpc_addr} (chain id {})",
        genesis.chain_id
    );
    Ok(Ledger {
        rpc_url: format!("http://{rpc_addr}"),
        tasks,
    })
}
