//! `gradnet gateway`: one endpoint for the whole network, run standalone
//! (every validator also serves one under `/gateway`).

use std::time::Duration;

use alloy_primitives::U256;
use anyhow::{Context, Result};
use clap::Args;
use gradnet_client::pay::parse_amount;
use gradnet_node::gateway::{self, Gateway, GatewayConfig};

/// Gateway settings.
#[derive(Args, Clone, Debug)]
pub(crate) struct GatewayArgs {
    /// A validator's JSON-RPC, to read the registry and send fault reports.
    #[arg(long, env = "GRADNET_RPC", default_value = "http://127.0.0.1:8545")]
    pub rpc: String,
    /// Address to serve on.
    #[arg(long, env = "GRADNET_GATEWAY_LISTEN", default_value = "127.0.0.1:7900")]
    pub listen: String,
    /// The gateway's account (secp256k1 key, hex): pays nodes that charge
    /// (from its escrow deposits to them) and reports the faults it sees.
    #[arg(long, env = "GRADNET_GATEWAY_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The most one voucher lets a node charge beyond what it has charged:
    /// tokens (`0.01`) or `Nwei`.
    #[arg(long, default_value = "0.01")]
    pub max_spend: String,
    /// What the gateway charges its clients, in wei: per ONNX call, per
    /// million prompt tokens, per million generated tokens (each answer
    /// times the nodes it takes: `k` for QUORUM). They pay the gateway's
    /// account (--key) through the escrow, as they pay a node. Unset: the
    /// gateway answers for free (its account pays the nodes).
    #[arg(long, value_delimiter = ',')]
    pub prices: Vec<u128>,
    /// Where a charging gateway keeps its clients' vouchers.
    #[arg(long, env = "GRADNET_GATEWAY_DATA_DIR", default_value = "gateway-data")]
    pub data_dir: std::path::PathBuf,
}

impl GatewayArgs {
    pub(crate) fn config(&self) -> Result<GatewayConfig> {
        Ok(GatewayConfig {
            rpc: self.rpc.clone(),
            key: self
                .key
                .as_deref()
                .map(|k| k.trim().parse())
                .transpose()
                .context("--key is not a private key (0x and 64 hex digits)")?,
            budget: parse_amount(&self.max_spend).map_err(anyhow::Error::msg)?,
            prices: match self.prices[..] {
                [] => None,
                [call, m_in, m_out] => Some(gradnet_types::payments::Prices {
                    perCall: U256::from(call),
                    perMillionInputTokens: U256::from(m_in),
                    perMillionOutputTokens: U256::from(m_out),
                    ..Default::default()
                }),
                _ => anyhow::bail!(
                    "--prices takes three amounts: per call, per million input and output tokens"
                ),
            },
            data_dir: Some(self.data_dir.clone()),
        })
    }
}

pub(crate) async fn run(args: GatewayArgs) -> Result<()> {
    let gw = Gateway::start(args.config()?)?;
    gw.wait_ready(Duration::from_secs(30)).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let snap = gw.directory.snapshot();
    tracing::info!(%addr, rpc = %args.rpc, nodes = snap.nodes.len(), account = ?gw.upstream.account(), "gateway serving");
    println!("gradnet gateway listening on http://{addr}");
    gradnet_api::serve_app(
        listener,
        gateway::router(gw),
        gradnet_api::ServerLimits::default(),
        crate::commands::node::shutdown_signal(),
    )
    .await?;
    Ok(())
}
