//! The ledger inside a node: the chain in `<data-dir>/chain`, its
//! JSON-RPC listener, BFT consensus with the other validators, and the
//! relay that passes client transactions on to them.

use crate::consensus::{ConsensusOptions, KeySeed, Multiaddr, Supervised, Validator};
use alloy_primitives::Address;
use anyhow::{bail, Context, Result};
use gradnet_ledger::chain::Chain;
use gradnet_ledger::genesis::Genesis;
use gradnet_ledger::mempool::PoolConfig;
use gradnet_types::NodeKey;
use std::path::{Path, PathBuf};

/// The ledger part of a node (on when a genesis is given).
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// The genesis file.
    pub genesis: PathBuf,
    /// Where JSON-RPC listens.
    pub rpc_listen: String,
    /// Time from one block proposal to the next.
    pub block_time: std::time::Duration,
    /// Consensus p2p address (multiaddr or ip:port).
    pub p2p_listen: String,
    /// The other validators' consensus p2p addresses.
    pub peers: Vec<String>,
    /// The other validators' JSON-RPC URLs, to relay transactions to.
    pub peer_rpc: Vec<String>,
    /// Tests only: attack the network by these strategies
    /// (`gradnet_consensus::byzantine`; `all`: every one).
    pub byzantine: Vec<String>,
}

/// A running ledger: the chain, its JSON-RPC listener, the relay and
/// consensus.
pub struct Ledger {
    /// The chain, for the API's `/rpc` (the console's JSON-RPC).
    pub chain: std::sync::Arc<Chain>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    consensus: Option<Supervised>,
}

impl Ledger {
    /// Stops block production and the JSON-RPC listener; what is committed
    /// is already on disk.
    pub async fn stop(self) {
        if let Some(c) = &self.consensus {
            c.stop().await;
        }
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
    Ok(gradnet_consensus::context::address_of_key(&key))
}

/// A consensus p2p address: a multiaddr, or `host:port` for TCP.
pub fn p2p_addr(s: &str) -> Result<Multiaddr> {
    if s.starts_with('/') {
        return s
            .parse()
            .with_context(|| format!("`{s}` is not a multiaddr"));
    }
    let sa: std::net::SocketAddr = s
        .parse()
        .with_context(|| format!("`{s}` is neither a multiaddr nor ip:port"))?;
    let ip = match sa.ip() {
        std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
        std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
    };
    Ok(format!("{ip}/tcp/{}", sa.port()).parse()?)
}

/// The plan of a byzantine validator (tests only), if any.
fn byzantine_plan(
    names: &[String],
) -> Result<Option<std::sync::Arc<gradnet_consensus::byzantine::Byzantine>>> {
    use gradnet_consensus::byzantine::{Byzantine, Strategy};
    if names.is_empty() {
        return Ok(None);
    }
    let plan = names
        .iter()
        .filter(|n| n.as_str() != "all")
        .map(|n| Strategy::parse(n).map_err(|e| anyhow::anyhow!("--byzantine-validator: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<_> = plan.iter().map(|s| s.name()).collect();
    tracing::warn!(
        "--byzantine-validator: this validator attacks the network ({})",
        if names.is_empty() {
            "every strategy".into()
        } else {
            names.join(", ")
        }
    );
    Ok(Some(std::sync::Arc::new(Byzantine::new(plan))))
}

/// `state`: the node whose hub and runtimes answer the inference
/// precompile in `eth_call` (none: such calls revert).
pub async fn start(
    data_dir: &Path,
    cfg: &LedgerConfig,
    node_key: &NodeKey,
    state: Option<gradnet_api::AppState>,
) -> Result<Ledger> {
    let bytes = std::fs::read(&cfg.genesis)
        .with_context(|| format!("reading genesis {}", cfg.genesis.display()))?;
    let genesis = Genesis::from_json(&bytes)?;
    let me = node_key.public_hex();
    if !genesis.validators.iter().any(|v| v.public_key == me) {
        bail!(
            "this node's key ({me}) is not one of the genesis's {} validators; start a validator's node, or give this node its key",
            genesis.validators.len()
        );
    }
    let chain = Chain::open(
        &data_dir.join("chain"),
        genesis.clone(),
        PoolConfig::default(),
    )
    .with_context(|| format!("opening the chain in {}", data_dir.join("chain").display()))?;
    if let Some(state) = state.clone() {
        // the hub serves the network's names from the model registry
        state
            .hub
            .use_names(std::sync::Arc::new(crate::names::ChainNames(chain.clone())));
        chain.set_inferencer(std::sync::Arc::new(crate::inferencer::NodeInferencer::new(
            state,
            gradnet_api::Caller::EthCall,
            None,
        )));
    }
    let listener = tokio::net::TcpListener::bind(&cfg.rpc_listen)
        .await
        .with_context(|| format!("binding JSON-RPC on {}", cfg.rpc_listen))?;
    let rpc_addr = listener.local_addr()?;
    let app = gradnet_rpc::router(chain.clone());
    let mut tasks = vec![tokio::spawn(async move {
        // strangers reach JSON-RPC too: the same connection and rate limits
        let limits = gradnet_api::ServerLimits::default();
        if let Err(e) =
            gradnet_api::server::serve_limited(listener, app, limits, std::future::pending()).await
        {
            tracing::error!("JSON-RPC server: {e}");
        }
    })];
    tasks.push(tokio::spawn(crate::relay::run(
        chain.clone(),
        cfg.peer_rpc.clone(),
    )));
    let head = chain.head();
    let byzantine = byzantine_plan(&cfg.byzantine)?;
    let mut faults = gradnet_consensus::faults::Faults::default();
    faults.evidence_dir = Some(data_dir.join("consensus").join("evidence"));
    if let Some(s) = &state {
        let r = s.metrics.registry();
        faults.register(r)?;
        if let Some(b) = &byzantine {
            b.register(r)?;
        }
    }
    let dispatcher = crate::pipe::Dispatcher::default();
    let pipe: std::sync::Arc<dyn gradnet_ledger::chain::MissServer> = match &byzantine {
        Some(b) => {
            std::sync::Arc::new(crate::pipe::byzantine::Attacker::new(dispatcher, b.clone()))
        }
        None => std::sync::Arc::new(dispatcher),
    };
    let validator = Validator {
        chain: chain.clone(),
        pipe,
        faults,
        byzantine,
        key: KeySeed(node_key.seed()),
        genesis: genesis.clone(),
        options: ConsensusOptions {
            home: data_dir.join("consensus"),
            listen: p2p_addr(&cfg.p2p_listen)?,
            peers: cfg
                .peers
                .iter()
                .map(|p| p2p_addr(p))
                .collect::<Result<_>>()?,
            block_time: cfg.block_time,
            moniker: format!("validator-{}", &me[..8]),
        },
    };
    let consensus = Supervised::start(validator)
        .await
        .map_err(|e| anyhow::anyhow!("starting consensus: {e}"))?;
    tracing::info!(
        chain_id = genesis.chain_id,
        head = head.number,
        validators = genesis.validators.len(),
        p2p = %cfg.p2p_listen,
        "validating"
    );
    println!(
        "gradnet JSON-RPC listening on http://{rpc_addr} (chain id {})",
        genesis.chain_id
    );
    Ok(Ledger {
        chain,
        tasks,
        consensus: Some(consensus),
    })
}
