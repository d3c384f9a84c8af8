//! `gradnet chain status|block|tx`: the ledger through Ethereum JSON-RPC.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::ChainCmd;

pub(crate) async fn rpc(url: &str, method: &str, params: Value) -> Result<Value> {
    let r: Value = reqwest::Client::new()
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .await
        .with_context(|| format!("no JSON-RPC at {url}"))?
        .json()
        .await?;
    if let Some(e) = r.get("error") {
        bail!(
            "{method}: {} ({})",
            e["message"].as_str().unwrap_or("error"),
            e["code"]
        );
    }
    Ok(r["result"].clone())
}

pub(crate) fn num(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}

pub(crate) async fn run(cmd: ChainCmd) -> Result<()> {
    match cmd {
        ChainCmd::Status(a) => {
            let id = num(&rpc(&a.rpc, "eth_chainId", json!([])).await?);
            let b = rpc(&a.rpc, "eth_getBlockByNumber", json!(["latest", false])).await?;
            println!("chain id     {id}");
            println!(
                "head         {} {}",
                num(&b["number"]),
                b["hash"].as_str().unwrap_or("")
            );
            println!("timestamp    {}", num(&b["timestamp"]));
            println!("state root   {}", b["stateRoot"].as_str().unwrap_or(""));
            println!("base fee     {} wei", num(&b["baseFeePerGas"]));
            println!(
                "client       {}",
                rpc(&a.rpc, "web3_clientVersion", json!([]))
                    .await?
                    .as_str()
                    .unwrap_or("")
            );
        }
        ChainCmd::Block { number, rpc: a } => {
            let tag = match number.as_str() {
                "latest" | "earliest" | "pending" => number.clone(),
                n => format!("{:#x}", n.parse::<u64>().context("block number")?),
            };
            let b = rpc(&a.rpc, "eth_getBlockByNumber", json!([tag, true])).await?;
            if b.is_null() {
                bail!("no block {number}");
            }
            println!("{}", serde_json::to_string_pretty(&b)?);
        }
        ChainCmd::Tx { hash, rpc: a } => {
            let t = rpc(&a.rpc, "eth_getTransactionByHash", json!([hash])).await?;
            if t.is_null() {
                bail!("no transaction {hash}");
            }
            let r = rpc(&a.rpc, "eth_getTransactionReceipt", json!([hash])).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"transaction": t, "receipt": r}))?
            );
        }
    }
    Ok(())
}

/// Polls for a transaction's receipt; `what` names it if it is not
/// included within `within`.
pub(crate) async fn wait_receipt(
    url: &str,
    hash: &Value,
    within: std::time::Duration,
    what: &str,
) -> Result<Value> {
    let started = std::time::Instant::now();
    loop {
        let r = rpc(url, "eth_getTransactionReceipt", json!([hash])).await?;
        if !r.is_null() {
            return Ok(r);
        }
        if started.elapsed() >= within {
            bail!("{what} was not included within {} s", within.as_secs());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends transactions from one key, counting its nonce, and waits for each
/// to succeed (a revert is an error carrying its reason).
pub(crate) struct Sender<'a> {
    pub url: &'a str,
    key: alloy_primitives::B256,
    chain_id: u64,
    nonce: u64,
}

impl<'a> Sender<'a> {
    pub(crate) async fn new(url: &'a str, key: alloy_primitives::B256) -> Result<Sender<'a>> {
        let from = gradnet_chain::genesis::address_of(&key)?;
        Ok(Sender {
            url,
            key,
            chain_id: num(&rpc(url, "eth_chainId", json!([])).await?),
            nonce: num(&rpc(url, "eth_getTransactionCount", json!([from, "pending"])).await?),
        })
    }

    pub(crate) async fn send(
        &mut self,
        to: alloy_primitives::Address,
        data: Vec<u8>,
        gas: u64,
    ) -> Result<Value> {
        let raw = gradnet_chain::wallet::sign(
            &gradnet_chain::wallet::TxRequest {
                chain_id: self.chain_id,
                nonce: self.nonce,
                to: Some(to),
                gas_limit: gas,
                data: data.into(),
                ..Default::default()
            },
            &self.key,
        )?;
        self.nonce += 1;
        let h = rpc(self.url, "eth_sendRawTransaction", json!([raw])).await?;
        let r = wait_receipt(
            self.url,
            &h,
            std::time::Duration::from_secs(60),
            &format!("transaction {h}"),
        )
        .await?;
        if r["status"] != "0x1" {
            let why: alloy_primitives::Bytes =
                serde_json::from_value(r["revertReason"].clone()).unwrap_or_default();
            let why = <alloy_sol_types::Revert as alloy_sol_types::SolError>::abi_decode(&why)
                .map(|r| r.reason)
                .unwrap_or_else(|_| why.to_string());
            bail!("transaction {h} reverted: {why}");
        }
        Ok(r)
    }
}
