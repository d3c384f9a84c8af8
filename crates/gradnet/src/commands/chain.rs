//! `gradnet chain status|block|tx`: the ledger through Ethereum JSON-RPC.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gradnet_client::Rpc;
use serde_json::{json, Value};

pub(crate) async fn run(cmd: ChainCmd) -> Result<()> {
    match cmd {
        ChainCmd::Status(a) => {
            let rpc = Rpc::new(&a.rpc)?;
            let id = rpc.chain_id().await?;
            let b = rpc.latest_block().await?;
            let h = &b.header;
            let client: String = rpc.request("web3_clientVersion", ()).await?;
            println!("chain id     {id}");
            println!("head         {} {}", h.number, h.hash);
            println!("timestamp    {}", h.timestamp);
            println!("state root   {}", h.state_root);
            println!(
                "base fee     {} wei",
                h.base_fee_per_gas.unwrap_or_default()
            );
            println!("client       {client}");
        }
        ChainCmd::Block { number, rpc: a } => {
            let tag = match number.as_str() {
                "latest" | "earliest" | "pending" => number.clone(),
                n => format!("{:#x}", n.parse::<u64>().context("block number")?),
            };
            let b: Value = Rpc::new(&a.rpc)?
                .request("eth_getBlockByNumber", (tag, true))
                .await?;
            if b.is_null() {
                bail!("no block {number}");
            }
            println!("{}", serde_json::to_string_pretty(&b)?);
        }
        ChainCmd::Tx { hash, rpc: a } => {
            let rpc = Rpc::new(&a.rpc)?;
            let t: Value = rpc
                .request("eth_getTransactionByHash", (hash.clone(),))
                .await?;
            if t.is_null() {
                bail!("no transaction {hash}");
            }
            let r: Value = rpc
                .request("eth_getTransactionReceipt", (hash.clone(),))
                .await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"transaction": t, "receipt": r}))?
            );
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum ChainCmd {
    /// Chain id, head block and pending transactions.
    Status(RpcArg),
    /// A block by number (or `latest`), with its transactions.
    Block {
        number: String,
        #[command(flatten)]
        rpc: RpcArg,
    },
    /// A transaction and its receipt.
    Tx {
        hash: String,
        #[command(flatten)]
        rpc: RpcArg,
    },
}

#[derive(Args, Clone)]
pub(crate) struct RpcArg {
    /// Ethereum JSON-RPC endpoint of a node.
    #[arg(long, env = "GRADNET_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
}
