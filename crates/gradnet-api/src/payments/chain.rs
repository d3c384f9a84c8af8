//! A paid node's link to the chain: it reads its prices and its payers'
//! channels through a JSON-RPC, and redeems what it charged at the escrow
//! with its operator's key — in batches, on a schedule, and at once when a
//! voucher is near its expiry or a payer announces a withdrawal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use gradnet_client::{Rpc, Sender};
use gradnet_types::payments::{Channel, IEscrow, IPrices, Prices, SignedVoucher, ESCROW};

use super::Payments;

/// The node registry, which answers `IPrices`.
const REGISTRY: Address = alloy_primitives::address!("00000000000000000000000000000000000000F5");

/// Where and how a node reaches the chain.
pub struct ChainLink {
    rpc: Rpc,
    /// The operator's key: signs redemptions (none: the node only reads).
    key: Option<B256>,
}

/// When a node redeems.
#[derive(Debug, Clone)]
pub struct RedeemPolicy {
    /// Redeem everything charged this often.
    pub every: Duration,
    /// ...or as soon as this much is charged and not collected (wei).
    pub threshold: U256,
    /// ...or when a voucher expires within this.
    pub before_expiry: Duration,
}

impl Default for RedeemPolicy {
    fn default() -> Self {
        RedeemPolicy {
            every: Duration::from_secs(300),
            threshold: U256::from(10u64).pow(U256::from(17u64)),
            before_expiry: Duration::from_secs(600),
        }
    }
}

impl ChainLink {
    /// A link through `rpc`, redeeming with `key` when given.
    pub fn new(rpc: &str, key: Option<B256>) -> Result<Self, gradnet_client::ClientError> {
        Ok(ChainLink {
            rpc: Rpc::new(rpc)?,
            key,
        })
    }

    /// The channel from `payer` to `payee`.
    pub async fn channel(
        &self,
        payer: Address,
        payee: Address,
    ) -> Result<Channel, gradnet_client::ClientError> {
        let out = self
            .rpc
            .call(ESCROW, IEscrow::channelCall { payer, payee }.abi_encode())
            .await?;
        IEscrow::channelCall::abi_decode_returns(&out)
            .map_err(|e| gradnet_client::ClientError::Invalid(format!("escrow channel: {e}")))
    }

    /// The prices `operator` published.
    pub async fn prices(&self, operator: Address) -> Result<Prices, gradnet_client::ClientError> {
        let out = self
            .rpc
            .call(REGISTRY, IPrices::pricesCall { operator }.abi_encode())
            .await?;
        IPrices::pricesCall::abi_decode_returns(&out)
            .map_err(|e| gradnet_client::ClientError::Invalid(format!("prices: {e}")))
    }

    /// The chain id of the JSON-RPC.
    pub async fn chain_id(&self) -> Result<u64, gradnet_client::ClientError> {
        self.rpc.chain_id().await
    }
}

/// What the node would redeem now: each payer's voucher claiming what was
/// charged beyond what the escrow paid.
fn due(p: &Payments, policy: &RedeemPolicy, now: u64, scheduled: bool) -> Vec<SignedVoucher> {
    let l = p.ledger.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = vec![];
    for (payer, a) in &l.accounts {
        let Some(v) = &a.voucher else { continue };
        let unredeemed = a.unredeemed();
        if unredeemed.is_zero() || v.expiry < now {
            continue;
        }
        let urgent = a.withdrawable_at != 0
            || unredeemed >= policy.threshold
            || v.expiry < now + policy.before_expiry.as_secs();
        if scheduled || urgent {
            out.push(SignedVoucher {
                payer: *payer,
                cumulative: v.cumulative,
                expiry: v.expiry,
                amount: a.charged.min(v.cumulative),
                signature: v.signature.clone(),
            });
        }
    }
    out.truncate(BATCH);
    out
}

/// Vouchers one redemption carries: about 20k gas each (calldata, the
/// signature's recovery, the channel), so a batch fits a 30M-gas block.
pub const BATCH: usize = 1_000;

impl Payments {
    /// Redeems everything charged and not yet collected; the wei the escrow
    /// paid, and the transaction.
    pub async fn redeem(&self) -> Result<(U256, Option<B256>), String> {
        self.redeem_due(&RedeemPolicy::default(), true).await
    }

    /// Redeems what `policy` says is due (everything when `all`).
    async fn redeem_due(
        &self,
        policy: &RedeemPolicy,
        all: bool,
    ) -> Result<(U256, Option<B256>), String> {
        let Some(link) = &self.chain else {
            return Err("this node has no chain to redeem at (--chain-rpc)".into());
        };
        let Some(key) = link.key else {
            return Err("this node has no operator key to redeem with (--operator-key)".into());
        };
        let batch = due(self, policy, super::now(), all);
        if batch.is_empty() {
            return Ok((U256::ZERO, None));
        }
        let before: U256 = {
            let l = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            batch.iter().map(|v| l.accounts[&v.payer].redeemed).sum()
        };
        let payers: Vec<Address> = batch.iter().map(|v| v.payer).collect();
        let gas = 60_000 + 24_000 * batch.len() as u64;
        // packed (125 bytes a voucher) so a full batch fits one transaction
        let data = match gradnet_types::payments::pack(&batch) {
            Some(p) => IEscrow::redeemPackedCall { vouchers: p.into() }.abi_encode(),
            None => IEscrow::redeemCall { vouchers: batch }.abi_encode(),
        };
        let mut sender = Sender::new(link.rpc.clone(), key)
            .await
            .map_err(|e| e.to_string())?;
        let r = sender
            .send(ESCROW, data, gas)
            .await
            .map_err(|e| e.to_string())?;
        gradnet_types::crash::point("redeem-sent");
        // what the escrow now says it paid
        let mut after = U256::ZERO;
        for payer in payers {
            let c = link
                .channel(payer, self.payee)
                .await
                .map_err(|e| e.to_string())?;
            after += c.redeemed;
            self.know_channel(payer, &c);
        }
        let paid = after.saturating_sub(before);
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.redeemed += paid;
        t.redemptions += 1;
        Ok((paid, Some(r.transaction_hash)))
    }

    /// Keeps the node's prices and its active payers' channels current and
    /// redeems by `policy`, until the payments are dropped.
    pub fn spawn(self: &Arc<Self>, policy: RedeemPolicy) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_redeem = Instant::now();
            let mut first = true;
            loop {
                if !first {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                first = false;
                let Some(p) = weak.upgrade() else { return };
                let Some(link) = &p.chain else { return };
                if !p.ready() {
                    match link.chain_id().await {
                        Ok(id) => p.chain_id.store(id, std::sync::atomic::Ordering::Relaxed),
                        Err(e) => {
                            tracing::warn!(error = %e, "payments: the chain is unreachable");
                            continue;
                        }
                    }
                }
                match p.prices_fixed() {
                    true => p.set_prices(p.prices()),
                    false => match link.prices(p.payee).await {
                        Ok(prices) => p.set_prices(prices),
                        Err(e) => tracing::warn!(error = %e, "reading the node's prices"),
                    },
                }
                let payers: Vec<Address> = {
                    let l = p.ledger.lock().unwrap_or_else(|e| e.into_inner());
                    l.accounts
                        .iter()
                        .filter(|(_, a)| {
                            a.voucher.is_some()
                                && (!a.unredeemed().is_zero()
                                    || !a.held.is_zero()
                                    || a.deposited.is_none())
                        })
                        .map(|(k, _)| *k)
                        .collect()
                };
                for payer in payers {
                    match link.channel(payer, p.payee).await {
                        Ok(c) => p.know_channel(payer, &c),
                        Err(e) => tracing::warn!(error = %e, %payer, "reading a channel"),
                    }
                }
                let scheduled = last_redeem.elapsed() >= policy.every;
                let urgent = !due(&p, &policy, super::now(), false).is_empty();
                if (scheduled || urgent) && link.key.is_some() {
                    match p.redeem_due(&policy, scheduled).await {
                        Ok((paid, Some(tx))) => {
                            tracing::info!(%paid, %tx, "redeemed vouchers at the escrow")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "redeeming vouchers"),
                    }
                    if scheduled {
                        last_redeem = Instant::now();
                    }
                }
            }
        });
    }
}
