//! `gradnet pay`: paying inference nodes through the escrow — deposits,
//! withdrawals, vouchers for clients that cannot sign (a header for an
//! unchanged OpenAI client), prices, and redemption for operators. And the
//! `--key` / `--max-spend` that `infer`, `chat` and `completion` pay with.

use std::sync::Arc;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gradnet_client::pay::{format_amount, parse_amount, Payer};
use gradnet_client::{NodeClient as Client, Rpc, Sender};
use gradnet_types::payments::{IEscrow, IPrices, ModelPrice, Prices, ESCROW};
use serde_json::{json, Value};

use crate::commands::chain::RpcArg;

/// How a client command pays a node that charges.
#[derive(Args, Clone, Default, Debug)]
pub(crate) struct PayArgs {
    /// The paying account (secp256k1 key, hex): signs vouchers when the node
    /// charges (it must have deposited to the node: `gradnet pay deposit`).
    #[arg(long, env = "GRADNET_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// The most one voucher lets the node charge beyond what it has
    /// charged: tokens (`0.01`) or `Nwei`.
    #[arg(long, default_value = "0.001")]
    pub max_spend: String,
}

fn key_of(k: &str) -> Result<B256> {
    k.trim()
        .parse()
        .context("--key / GRADNET_KEY is not a private key (0x and 64 hex digits)")
}

impl PayArgs {
    /// `c`, paying with the key when one is given.
    pub(crate) fn client(&self, c: &Client) -> Result<Client> {
        let Some(k) = &self.key else {
            return Ok(c.clone());
        };
        let budget = parse_amount(&self.max_spend).map_err(anyhow::Error::msg)?;
        Ok(c.clone()
            .with_payer(Arc::new(Payer::new(key_of(k)?, budget, 3600)?)))
    }
}

#[derive(Subcommand)]
pub(crate) enum PayCmd {
    /// Deposit into the escrow for one node (its operator): what its
    /// vouchers can collect.
    Deposit {
        /// Tokens (`1.5`) or `Nwei`.
        amount: String,
        #[command(flatten)]
        to: Payee,
        #[command(flatten)]
        acct: Account,
    },
    /// A node's terms: whom it is paid to, through which escrow, its prices.
    Terms,
    /// Your channel to a node: deposited, redeemed, a pending withdrawal;
    /// and what the node says it charged, and its prices.
    Status {
        #[command(flatten)]
        to: Payee,
        #[command(flatten)]
        acct: Account,
    },
    /// Take back what a node has not redeemed: announce it, then (after
    /// the escrow's delay, during which the node may still redeem) finish.
    Withdraw {
        /// Finish an announced withdrawal.
        #[arg(long)]
        finish: bool,
        #[command(flatten)]
        to: Payee,
        #[command(flatten)]
        acct: Account,
    },
    /// Sign one voucher for a node and print its `PAYMENT-SIGNATURE`
    /// header, for a client that cannot sign (e.g. an OpenAI client's
    /// default headers). It lets the node charge up to CAP more.
    Session {
        /// Tokens (`0.01`) or `Nwei` the node may charge from now on.
        cap: String,
        /// Seconds the voucher stays redeemable.
        #[arg(long, default_value_t = 86_400)]
        ttl: u64,
        #[arg(long, env = "GRADNET_KEY", hide_env_values = true)]
        key: String,
    },
    /// Operators: publish your node's prices on chain.
    Prices {
        /// Per ONNX call (tokens or `Nwei`).
        #[arg(long, default_value = "0")]
        per_call: String,
        /// Per million prompt tokens.
        #[arg(long, default_value = "0")]
        per_million_input: String,
        /// Per million generated tokens.
        #[arg(long, default_value = "0")]
        per_million_output: String,
        /// A model's own prices: `MODEL=CALL,IN,OUT` (content id or
        /// repository name); repeat for several.
        #[arg(long = "model")]
        models: Vec<String>,
        #[command(flatten)]
        acct: Account,
    },
    /// Operators: redeem now what your node charged (it also redeems on its own).
    Redeem {
        /// The operator's key (the node checks it is its own).
        #[arg(long, env = "GRADNET_KEY", hide_env_values = true)]
        key: String,
    },
}

/// The node to pay: its operator's address, or its API (which says it).
#[derive(Args, Clone)]
pub(crate) struct Payee {
    /// The node operator's address [default: asked of --node].
    #[arg(long)]
    pub to: Option<String>,
}

/// The account that sends a transaction.
#[derive(Args, Clone)]
pub(crate) struct Account {
    #[arg(long, env = "GRADNET_KEY", hide_env_values = true)]
    pub key: String,
    #[command(flatten)]
    pub rpc: RpcArg,
}

async fn payee(c: &Client, to: &Payee) -> Result<Address> {
    if let Some(a) = &to.to {
        return a
            .parse()
            .context("--to is not an address (0x and 40 hex digits)");
    }
    let t: Value = c
        .get("/api/v0/payments")
        .await
        .with_context(|| format!("asking {} whom it is paid to (or pass --to)", c.url("")))?;
    t["payee"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .context("the node names no payee")
}

async fn sender(a: &Account) -> Result<Sender> {
    Ok(Sender::new(Rpc::new(&a.rpc.rpc)?, key_of(&a.key)?).await?)
}

async fn channel(rpc: &Rpc, payer: Address, payee: Address) -> Result<IEscrow::Channel> {
    let out = rpc
        .call(ESCROW, IEscrow::channelCall { payer, payee }.abi_encode())
        .await?;
    Ok(IEscrow::channelCall::abi_decode_returns(&out)?)
}

fn amount(s: &str) -> Result<U256> {
    parse_amount(s).map_err(anyhow::Error::msg)
}

pub(crate) async fn run(c: &Client, cmd: PayCmd) -> Result<()> {
    match cmd {
        PayCmd::Deposit {
            amount: a,
            to,
            acct,
        } => {
            let payee = payee(c, &to).await?;
            let value = amount(&a)?;
            let mut s = sender(&acct).await?;
            let hash = s
                .submit(
                    Some(ESCROW),
                    value,
                    IEscrow::depositCall { payee }.abi_encode(),
                    200_000,
                )
                .await?;
            let r = s.succeeded(hash).await?;
            let ch = channel(s.rpc(), s.address(), payee).await?;
            println!(
                "deposited {} to {payee} in block {}: the channel holds {} ({} redeemed)",
                format_amount(value),
                r.block_number.unwrap_or_default(),
                format_amount(ch.deposited),
                format_amount(ch.redeemed)
            );
        }
        PayCmd::Terms => {
            let t: Value = c
                .get("/api/v0/payments")
                .await
                .with_context(|| format!("{} does not charge (or is unreachable)", c.url("")))?;
            println!("{}", serde_json::to_string_pretty(&t)?);
        }
        PayCmd::Status { to, acct } => {
            let payee = payee(c, &to).await?;
            let payer = gradnet_client::wallet::address(&key_of(&acct.key)?)?;
            let ch = channel(&Rpc::new(&acct.rpc.rpc)?, payer, payee).await?;
            let node: Option<Value> = c.get(&format!("/api/v0/payments/{payer}")).await.ok();
            let terms: Option<Value> = c.get("/api/v0/payments").await.ok();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "payer": payer,
                    "payee": payee,
                    "deposited": format_amount(ch.deposited),
                    "redeemed": format_amount(ch.redeemed),
                    "withdrawable_at": (ch.withdrawableAt != 0).then_some(ch.withdrawableAt),
                    "node": node,
                    "prices": terms.map(|t| t["prices"].clone()),
                }))?
            );
        }
        PayCmd::Withdraw { finish, to, acct } => {
            let payee = payee(c, &to).await?;
            let mut s = sender(&acct).await?;
            if finish {
                s.send(
                    ESCROW,
                    IEscrow::withdrawCall { payee }.abi_encode(),
                    200_000,
                )
                .await?;
                let ch = channel(s.rpc(), s.address(), payee).await?;
                println!(
                    "withdrawn: the node had redeemed {} in all",
                    format_amount(ch.redeemed)
                );
            } else {
                s.send(
                    ESCROW,
                    IEscrow::startWithdrawalCall { payee }.abi_encode(),
                    200_000,
                )
                .await?;
                let ch = channel(s.rpc(), s.address(), payee).await?;
                println!(
                    "withdrawal announced: finish it with --finish after {} (Unix time); the node may redeem until then",
                    ch.withdrawableAt
                );
            }
        }
        PayCmd::Session { cap, ttl, key } => {
            let t: Value = c.get("/api/v0/payments").await?;
            let payee: Address = t["payee"].as_str().unwrap_or_default().parse()?;
            let chain_id = t["network"]
                .as_str()
                .and_then(gradnet_client::x402::chain_of)
                .context("the node names no eip155 network")?;
            let payer = Payer::new(key_of(&key)?, amount(&cap)?, ttl)?;
            let standing: Value = c
                .get(&format!("/api/v0/payments/{}", payer.account()))
                .await?;
            let charged: U256 = standing["charged"].as_str().unwrap_or("0").parse()?;
            let held: U256 = standing["authorized"].as_str().unwrap_or("0").parse()?;
            // counts up from what the node holds, so it is never stale
            let cumulative = charged.max(held) + amount(&cap)?;
            let header = payer.sign(
                chain_id,
                payee,
                cumulative,
                gradnet_client::auth::now() + ttl,
            )?;
            eprintln!(
                "a voucher letting {payee} charge up to {} in all ({} more); send it as the PAYMENT-SIGNATURE header:",
                format_amount(cumulative),
                cap
            );
            println!("{header}");
        }
        PayCmd::Prices {
            per_call,
            per_million_input,
            per_million_output,
            models,
            acct,
        } => {
            let mut p = Prices {
                perCall: amount(&per_call)?,
                perMillionInputTokens: amount(&per_million_input)?,
                perMillionOutputTokens: amount(&per_million_output)?,
                models: vec![],
            };
            for m in models {
                let (name, rest) = m.split_once('=').context("--model is MODEL=CALL,IN,OUT")?;
                let v: Vec<&str> = rest.split(',').collect();
                let [call, m_in, m_out] = v[..] else {
                    anyhow::bail!("--model {m}: three prices, CALL,IN,OUT");
                };
                p.models.push(ModelPrice {
                    model: name.to_string(),
                    perCall: amount(call)?,
                    perMillionInputTokens: amount(m_in)?,
                    perMillionOutputTokens: amount(m_out)?,
                });
            }
            let mut s = sender(&acct).await?;
            let registry: Address = gradnet_inference::registry::ADDRESS;
            s.send(
                registry,
                IPrices::setPricesCall { prices: p }.abi_encode(),
                2_000_000,
            )
            .await?;
            println!("prices published for {}", s.address());
        }
        PayCmd::Redeem { key } => {
            let r: Value = c
                .clone()
                .with_key(key_of(&key)?)
                .post("/api/v0/payments/redeem", &json!({}))
                .await?;
            let paid: U256 = r["paid"].as_str().unwrap_or("0").parse()?;
            println!(
                "redeemed {} (transaction {})",
                format_amount(paid),
                r["transaction"].as_str().unwrap_or("none: nothing was due")
            );
        }
    }
    Ok(())
}
