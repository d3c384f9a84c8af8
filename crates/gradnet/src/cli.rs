//! Command-line grammar: the global options and the commands; each
//! command's arguments live next to its code in `commands/`.

use clap::{Parser, Subcommand};

use crate::commands::chain::ChainCmd;
use crate::commands::chat::{ChatArgs, CompletionArgs};
use crate::commands::demo::DemoArgs;
use crate::commands::devnet::DevnetArgs;
use crate::commands::infer::InferArgs;
use crate::commands::init::InitArgs;
use crate::commands::keys::KeysCmd;
use crate::commands::model::ModelArgs;
use crate::commands::node::NodeCmd;
use crate::commands::receipt::ReceiptCmd;
use crate::commands::zk::ZkCmd;

#[derive(Parser)]
#[command(
    name = "gradnet",
    version,
    about = "gradnet: verifiable AI inference — model hub, inference node and CLI"
)]
pub(crate) struct Cli {
    /// Node API to talk to (client commands).
    #[arg(
        long,
        global = true,
        env = "GRADNET_NODE",
        default_value = "http://127.0.0.1:7700"
    )]
    pub node: String,
    /// Log filter, e.g. `info` or `gradnet_api=debug`.
    #[arg(
        long,
        global = true,
        env = "GRADNET_LOG",
        default_value = "info,informalsystems_malachitebft=error,libp2p=warn,ractor=warn"
    )]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub(crate) enum Command {
    /// Run a node.
    #[command(subcommand)]
    Node(NodeCmd),
    /// Model hub: repositories, versions, files, owners.
    Model(ModelArgs),
    /// Run a model on a node and print the outputs and the signed receipt.
    Infer(InferArgs),
    /// Chat with an LLM on a node (interactive without --message).
    Chat(ChatArgs),
    /// Complete a prompt with an LLM on a node.
    Completion(CompletionArgs),
    /// Paying inference nodes: deposits, vouchers, withdrawals, prices, redemption.
    #[command(subcommand)]
    Pay(crate::commands::pay::PayCmd),
    /// Receipts.
    #[command(subcommand)]
    Receipt(ReceiptCmd),
    /// Node keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Zero-knowledge proofs of ONNX inference (Groth16 over BN254).
    #[command(subcommand)]
    Zk(ZkCmd),
    /// Start a node on a temporary data dir, upload a real model, run it, verify the receipt.
    Demo(DemoArgs),
    /// Make a node home for a network of several machines: a node key and
    /// a config.toml to edit; then `gradnet node start --home DIR`.
    Init(InitArgs),
    /// Start a local network: validators with a generated genesis and
    /// funded development accounts, each with JSON-RPC and the inference API.
    Devnet(DevnetArgs),
    /// One endpoint for the whole network: routes inference to the
    /// registry's nodes, with failover, and serves QUORUM and TEE off chain
    /// with certificates.
    Gateway(crate::commands::gateway::GatewayArgs),
    /// The ledger, through a node's Ethereum JSON-RPC.
    #[command(subcommand)]
    Chain(ChainCmd),
}
