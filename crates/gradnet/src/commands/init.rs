//! `gradnet init`: a node home for a network of several machines. Each
//! operator makes one and shares the public key it prints; the genesis
//! lists those keys as validators; each operator puts the genesis in the
//! home and runs `gradnet node start --home DIR`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use gradnet_ledger::genesis::Genesis;
use gradnet_types::NodeKey;

use crate::config::HOME_CONFIG;

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", q.join(", "))
}

pub(crate) fn run(args: InitArgs) -> Result<()> {
    let home = &args.home;
    let config = home.join(HOME_CONFIG);
    if config.exists() {
        bail!(
            "{} exists; this home is already initialized",
            config.display()
        );
    }
    for p in args.peer.iter().chain([&args.p2p_listen]) {
        gradnet_node::ledger::p2p_addr(p)?;
    }
    std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
    let key = NodeKey::load_or_create(&home.join("node.key"))?;
    let genesis = home.join("genesis.json");
    if let Some(g) = &args.genesis {
        let bytes = std::fs::read(g).with_context(|| format!("reading {}", g.display()))?;
        Genesis::from_json(&bytes).with_context(|| format!("checking {}", g.display()))?;
        std::fs::write(&genesis, bytes)?;
    }
    let text = format!(
        "# gradnet node (run: gradnet node start --home {home})\n\
         # the network's genesis, relative to this file\n\
         genesis = \"genesis.json\"\n\
         listen = {listen}\n\
         rpc_listen = {rpc}\n\
         # consensus p2p: this node's address, and the other validators'\n\
         p2p_listen = {p2p}\n\
         peers = {peers}\n\
         # the other validators' JSON-RPC URLs (client transactions are relayed to them)\n\
         peer_rpc = {peer_rpc}\n\
         block_time_ms = 1000\n",
        home = home.display(),
        listen = quoted(&args.listen),
        rpc = quoted(&args.rpc_listen),
        p2p = quoted(&args.p2p_listen),
        peers = list(&args.peer),
        peer_rpc = list(&args.peer_rpc),
    );
    std::fs::write(&config, text)?;
    println!("initialized {}", home.display());
    println!("validator public key: {}", key.public_hex());
    println!(
        "validator address:    {}",
        gradnet_node::ledger::validator_address(&key.public_hex())?
    );
    if !genesis.exists() {
        println!(
            "next: list the public key in the network's genesis (validators), put it at {}",
            genesis.display()
        );
    }
    println!("then:  gradnet node start --home {}", home.display());
    Ok(())
}

#[derive(Args, Clone)]
pub(crate) struct InitArgs {
    /// The node's home directory (created).
    #[arg(long)]
    pub home: PathBuf,
    /// The network's genesis file, copied into the home (it can be added
    /// later as <home>/genesis.json).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Consensus p2p address.
    #[arg(long, default_value = "0.0.0.0:26656")]
    pub p2p_listen: String,
    /// Ethereum JSON-RPC address.
    #[arg(long, default_value = "127.0.0.1:8545")]
    pub rpc_listen: String,
    /// Inference API address.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub listen: String,
    /// Another validator's consensus p2p address (repeat for each).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peer: Vec<String>,
    /// Another validator's JSON-RPC URL, to relay client transactions to.
    #[arg(long = "peer-rpc", value_name = "URL")]
    pub peer_rpc: Vec<String>,
}
