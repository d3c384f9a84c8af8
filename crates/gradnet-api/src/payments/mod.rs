//! Paid inference: a node with prices on chain answers `/v1/infer`,
//! `/v1/chat/completions` and `/v1/completions` only for a payment. A
//! client pays with an EIP-712 voucher (`gradnet_types::payments`) in the
//! x402 `PAYMENT-SIGNATURE` header: it caps what this node may charge the
//! payer in total; each answer charges its price (or its tokens) against it,
//! says what it charged and what remains, and signs the charge into its
//! receipt. One voucher pays for many requests ("up to"), so its signature
//! is checked once; a request past what it authorizes gets 402 with the
//! terms to sign a higher one. The node collects by redeeming the vouchers
//! at the escrow ([`chain`]).

pub mod chain;
pub mod ledger;
pub use gradnet_client::x402;

use std::sync::{Arc, Mutex, RwLock};

use alloy_primitives::{Address, U256};
use axum::http::{HeaderMap, StatusCode};
use gradnet_types::payments::{Channel, Prices, Rate};
use serde_json::{json, Value};

use crate::error::{ApiError, Extra};
use ledger::{Held, Ledger};

/// A voucher must leave the node this long to redeem it, in seconds.
pub const MIN_VOUCHER_LIFETIME_SECS: u64 = 120;

/// One node's payments: its account on chain, prices and ledger.
pub struct Payments {
    /// Who is paid: the node operator's account.
    pub payee: Address,
    /// The chain whose escrow pays (the JSON-RPC's, once read).
    chain_id: std::sync::atomic::AtomicU64,
    /// Whether the prices have been read from the chain: until then, paid
    /// routes answer 503 rather than serve for free.
    ready: std::sync::atomic::AtomicBool,
    /// Prices set here rather than read from the chain (a gateway's).
    fixed: std::sync::atomic::AtomicBool,
    prices: RwLock<Prices>,
    pub(crate) ledger: Mutex<Ledger>,
    /// The chain, for deposits and redemption (none: channels are as told).
    pub(crate) chain: Option<chain::ChainLink>,
    /// Totals for `/metrics`, in wei.
    pub(crate) totals: Mutex<Totals>,
}

/// What a node has charged and collected since it started.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Charged to payers.
    pub charged: U256,
    /// Paid out to the operator by the escrow.
    pub redeemed: U256,
    /// Redemption transactions sent.
    pub redemptions: u64,
}

/// A charge, as answers report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Who paid.
    pub payer: Address,
    /// This answer's price.
    pub amount: U256,
    /// Everything charged to the payer here so far.
    pub total: U256,
    /// What the payer's voucher still allows.
    pub remaining: U256,
}

impl Charge {
    /// As JSON (amounts as decimal strings of wei).
    pub fn json(&self) -> Value {
        json!({
            "payer": self.payer,
            "amount": self.amount.to_string(),
            "total": self.total.to_string(),
            "remaining": self.remaining.to_string(),
        })
    }

    /// For a receipt: what the node signs it charged.
    pub fn receipt(&self, payee: Address) -> gradnet_types::receipt::ReceiptCharge {
        gradnet_types::receipt::ReceiptCharge {
            payer: self.payer.to_checksum(None),
            payee: payee.to_checksum(None),
            amount: self.amount.to_string(),
            total: self.total.to_string(),
        }
    }

    /// The answer's payment headers: x402's `PAYMENT-RESPONSE` and plain ones.
    pub fn headers(&self, chain_id: u64) -> [(&'static str, String); 3] {
        [
            (
                x402::PAYMENT_RESPONSE,
                x402::encode(&json!({
                    "success": true,
                    "network": x402::network(chain_id),
                    "payer": self.payer,
                    "transaction": "",
                    "charged": self.amount.to_string(),
                    "total": self.total.to_string(),
                    "remaining": self.remaining.to_string(),
                })),
            ),
            ("x-gradnet-charged", self.amount.to_string()),
            ("x-gradnet-remaining", self.remaining.to_string()),
        ]
    }
}

/// Wei reserved for a request that is running; released if it is dropped.
pub struct Hold {
    payments: Arc<Payments>,
    payer: Address,
    amount: U256,
    settled: bool,
}

impl Hold {
    /// What is held.
    pub fn amount(&self) -> U256 {
        self.amount
    }

    /// Charges `actual` (at most what is held; the rest is released).
    pub fn settle(mut self, actual: U256) -> Charge {
        self.settled = true;
        let actual = actual.min(self.amount);
        self.payments.charge(self.payer, self.amount, actual)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.settled {
            let mut l = self
                .payments
                .ledger
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let a = l.account(self.payer);
            a.held = a.held.saturating_sub(self.amount);
        }
    }
}

/// How much a request may need: a fixed price, or tokens up to what the
/// voucher allows.
#[derive(Debug, Clone, Copy)]
pub enum Need {
    /// Exactly this.
    Exact(U256),
    /// At least `least` (the prompt and one generated token), at most
    /// `most` (every token asked for): the hold takes what is available
    /// between them, and the answer is charged its tokens.
    UpTo {
        /// What the request cannot start without.
        least: U256,
        /// What it could cost in full.
        most: U256,
    },
}

fn now() -> u64 {
    gradnet_client::auth::now()
}

impl Payments {
    /// Payments to `payee` on `chain_id` at `prices`, with `ledger`.
    pub fn new(
        payee: Address,
        chain_id: u64,
        prices: Prices,
        ledger: Ledger,
        chain: Option<chain::ChainLink>,
    ) -> Arc<Self> {
        Arc::new(Payments {
            payee,
            chain_id: chain_id.into(),
            ready: (chain.is_none()).into(),
            fixed: false.into(),
            prices: RwLock::new(prices),
            ledger: Mutex::new(ledger),
            chain,
            totals: Default::default(),
        })
    }

    /// The node's prices now.
    pub fn prices(&self) -> Prices {
        self.prices
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Keeps the prices given to [`Payments::new`] instead of reading the
    /// payee's from the chain (a gateway charges its own).
    pub fn fix_prices(&self) {
        self.fixed.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the prices are fixed here.
    pub fn prices_fixed(&self) -> bool {
        self.fixed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces the node's prices (read again from the chain).
    pub fn set_prices(&self, p: Prices) {
        *self.prices.write().unwrap_or_else(|p| p.into_inner()) = p;
        self.ready.store(true, std::sync::atomic::Ordering::Release);
    }

    /// The chain whose escrow pays.
    pub fn chain_id(&self) -> u64 {
        self.chain_id.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the node knows its prices (read from the chain).
    pub fn ready(&self) -> bool {
        self.ready.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The rate for a model (its content id, the repository it was named
    /// by); 503 while the node's prices are unknown.
    pub fn rate(&self, cid: &str, repo: Option<&str>) -> Result<Rate, ApiError> {
        if !self.ready() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "payments_unavailable",
                "this node has not read its prices from the chain yet (is its --chain-rpc reachable?); retry shortly",
            ));
        }
        Ok(self
            .prices
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .rate(cid, repo))
    }

    /// Tells the ledger a payer's channel as the chain has it.
    pub fn know_channel(&self, payer: Address, c: &Channel) {
        let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let a = l.account(payer);
        a.deposited = Some(c.deposited);
        a.withdrawable_at = c.withdrawableAt;
        a.read_at = Some(std::time::Instant::now());
        let redeemed = c.redeemed;
        if let Err(e) = l.redeemed(payer, redeemed) {
            tracing::error!(error = %e, "payments log");
        }
    }

    /// The standing of `payer` here, for `GET /api/v0/payments/{payer}`.
    pub fn standing(&self, payer: Address) -> Value {
        let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let a = l.account(payer).clone();
        json!({
            "payer": payer,
            "payee": self.payee,
            "chain_id": self.chain_id(),
            "authorized": a.voucher.as_ref().map_or(U256::ZERO, |v| v.cumulative).to_string(),
            "expiry": a.voucher.as_ref().map(|v| v.expiry),
            "charged": a.charged.to_string(),
            "held": a.held.to_string(),
            "redeemed": a.redeemed.to_string(),
            "deposited": a.deposited.map(|d| d.to_string()),
            "withdrawable_at": a.withdrawable_at,
            "available": a.available().to_string(),
        })
    }

    /// The node's payment terms for `/health` and clients.
    pub fn describe(&self) -> Value {
        json!({
            "payee": self.payee,
            "escrow": gradnet_types::payments::ESCROW,
            "network": x402::network(self.chain_id()),
            "scheme": x402::SCHEME,
            // whether the prices were read from the chain yet (paid routes answer 503 until then)
            "ready": self.ready(),
            "prices": prices_json(&self.prices()),
        })
    }

    /// The node's earnings in Prometheus' text format (wei as floats).
    pub fn metrics(&self) -> String {
        let t = self
            .totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let unredeemed: U256 = {
            let l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            l.accounts.values().map(|a| a.unredeemed()).sum()
        };
        let f = |v: U256| f64::from(v);
        format!(
            "# HELP gradnet_payments_charged_wei_total Wei charged to payers since the node started.\n\
             # TYPE gradnet_payments_charged_wei_total counter\n\
             gradnet_payments_charged_wei_total {}\n\
             # HELP gradnet_payments_redeemed_wei_total Wei the escrow paid this node's operator since the node started.\n\
             # TYPE gradnet_payments_redeemed_wei_total counter\n\
             gradnet_payments_redeemed_wei_total {}\n\
             # HELP gradnet_payments_redemptions_total Redemption transactions sent.\n\
             # TYPE gradnet_payments_redemptions_total counter\n\
             gradnet_payments_redemptions_total {}\n\
             # HELP gradnet_payments_unredeemed_wei Wei charged and not yet collected.\n\
             # TYPE gradnet_payments_unredeemed_wei gauge\n\
             gradnet_payments_unredeemed_wei {}\n",
            f(t.charged),
            f(t.redeemed),
            t.redemptions,
            f(unredeemed)
        )
    }

    fn charge(&self, payer: Address, held: U256, amount: U256) -> Charge {
        let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let total = match l.charge(payer, held, amount) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "payments log: a charge was not written");
                l.account(payer).charged
            }
        };
        let remaining = l.account(payer).available();
        drop(l);
        self.totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .charged += amount;
        Charge {
            payer,
            amount,
            total,
            remaining,
        }
    }

    /// A 402 for `resource`, `code` and `why` in words, with the terms:
    /// `amount` for this request, and a voucher of at least `charged + amount`.
    fn required(
        &self,
        code: &'static str,
        why: String,
        resource: &str,
        amount: U256,
        charged: U256,
    ) -> ApiError {
        self.required_above(code, why, resource, amount, charged, charged + amount)
    }

    /// [`Payments::required`] asking for a voucher of at least `min_cumulative`.
    fn required_above(
        &self,
        code: &'static str,
        why: String,
        resource: &str,
        amount: U256,
        charged: U256,
        min_cumulative: U256,
    ) -> ApiError {
        let terms = x402::Terms {
            chain_id: self.chain_id(),
            pay_to: self.payee,
            amount,
            min_cumulative,
            charged,
            resource,
            description: format!("inference at this node, paid to {}", self.payee),
            prices: prices_json(&self.prices()),
        };
        let required = terms.required(&why);
        let mut e = ApiError::new(StatusCode::PAYMENT_REQUIRED, code, why);
        let mut body = serde_json::Map::new();
        body.insert("payment".into(), required["accepts"][0].clone());
        e.extra = Some(Box::new(Extra {
            headers: vec![(x402::PAYMENT_REQUIRED, x402::encode(&required))],
            body,
        }));
        e
    }

    /// Takes the request's payment: reads its voucher (checking a new one
    /// once), and holds what the request needs. Err: the 402 to answer.
    pub async fn hold(
        self: &Arc<Self>,
        headers: &HeaderMap,
        resource: &str,
        need: Need,
    ) -> Result<Hold, ApiError> {
        let least = match need {
            Need::Exact(a) | Need::UpTo { least: a, .. } => a,
        };
        let Some(header) = headers
            .get(x402::PAYMENT_SIGNATURE)
            .and_then(|v| v.to_str().ok())
        else {
            return Err(self.required(
                "payment_required",
                format!(
                    "this node charges for {resource}: {least} wei for this request. Deposit to {} in the escrow {} and send a voucher in the PAYMENT-SIGNATURE header (x402 v2, scheme `upto`; `gradnet pay` signs one)",
                    self.payee,
                    gradnet_types::payments::ESCROW
                ),
                resource,
                least,
                U256::ZERO,
            ));
        };
        let p = x402::parse(header, self.chain_id()).map_err(|why| {
            self.required(
                "invalid_payment",
                format!("PAYMENT-SIGNATURE: {why}"),
                resource,
                least,
                U256::ZERO,
            )
        })?;
        let payer = p.voucher.payer;
        self.take_voucher(&p, resource, least).await?;
        // a deposit that no longer covers the call may have grown since it
        // was read (or a withdrawal may be gone): ask the chain, once a second
        if let Some(link) = &self.chain {
            let stale = {
                let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
                let a = l.account(payer);
                (a.available() < least || a.withdrawable_at != 0)
                    && a.read_at
                        .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
            };
            if stale {
                if let Ok(c) = link.channel(payer, self.payee).await {
                    self.know_channel(payer, &c);
                }
            }
        }
        let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let a = l.account(payer);
        if a.withdrawable_at != 0 {
            let charged = a.charged;
            drop(l);
            return Err(self.required(
                "withdrawal_pending",
                format!("{payer} announced a withdrawal from its channel to {}: this node takes no new work on it (deposit again after withdrawing)", self.payee),
                resource,
                least,
                charged,
            ));
        }
        let available = a.available();
        if available < least {
            let (charged, cap, deposited) = (
                a.charged,
                a.voucher.as_ref().map_or(U256::ZERO, |v| v.cumulative),
                a.deposited.unwrap_or_default(),
            );
            drop(l);
            let (code, why) = if deposited < charged + least {
                (
                    "insufficient_deposit",
                    format!("{payer} has {deposited} wei deposited to {} and {charged} wei charged; this request needs {least} more: deposit more to the escrow", self.payee),
                )
            } else {
                (
                    "insufficient_authorization",
                    format!("the voucher authorizes {cap} wei and {charged} wei are charged; this request needs {least} more: sign a voucher for at least {}", charged + least),
                )
            };
            return Err(self.required(code, why, resource, least, charged));
        }
        let amount = match need {
            Need::Exact(a) => a,
            Need::UpTo { most, .. } => available.min(most.max(least)),
        };
        a.held += amount;
        drop(l);
        Ok(Hold {
            payments: self.clone(),
            payer,
            amount,
            settled: false,
        })
    }

    /// Checks and keeps a voucher the node has not seen; the one it holds
    /// passes at the cost of a comparison.
    async fn take_voucher(
        &self,
        p: &x402::Payment,
        resource: &str,
        least: U256,
    ) -> Result<(), ApiError> {
        let v = &p.voucher;
        let (known, charged, deposited) = {
            let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            let a = l.account(v.payer);
            let known = a.voucher.as_ref().is_some_and(|h| {
                h.cumulative == v.cumulative && h.expiry == v.expiry && h.signature == p.signature
            });
            (known, a.charged, a.deposited)
        };
        let refuse = |code, why: String| self.required(code, why, resource, least, charged);
        if !known {
            if v.payee != self.payee {
                return Err(refuse(
                    "wrong_payee",
                    format!(
                        "the voucher pays {}, not this node's operator {}",
                        v.payee, self.payee
                    ),
                ));
            }
            v.check(self.chain_id(), &p.signature)
                .map_err(|e| refuse("invalid_payment", e.to_string()))?;
            let now = now();
            if v.expiry < now + MIN_VOUCHER_LIFETIME_SECS {
                return Err(refuse(
                    "voucher_expired",
                    format!("the voucher expires at {} and the node needs {MIN_VOUCHER_LIFETIME_SECS} s to redeem it (now {now}): sign one that lasts longer", v.expiry),
                ));
            }
            let mut l = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
            let a = l.account(v.payer);
            if let Some(h) = &a.voucher {
                if v.cumulative < h.cumulative
                    || (v.cumulative == h.cumulative && v.expiry <= h.expiry)
                {
                    let min = (h.cumulative + U256::from(1)).max(charged + least);
                    let why = format!("the voucher's cumulative {} is not above the {} this node already holds (vouchers count up): sign one for at least {min}", v.cumulative, h.cumulative);
                    drop(l);
                    return Err(self.required_above(
                        "stale_voucher",
                        why,
                        resource,
                        least,
                        charged,
                        min,
                    ));
                }
            }
            l.keep_voucher(
                v.payer,
                Held {
                    cumulative: v.cumulative,
                    expiry: v.expiry,
                    signature: p.signature.clone(),
                },
            )
            .map_err(|e| ApiError::internal(format!("keeping the voucher: {e}")))?;
        }
        // a deposit not yet read, or too small for the voucher: ask the chain
        let short = deposited.is_none_or(|d| d < v.cumulative.min(charged + least));
        if short && (!known || deposited.is_none()) {
            if let Some(link) = &self.chain {
                match link.channel(v.payer, self.payee).await {
                    Ok(c) => self.know_channel(v.payer, &c),
                    Err(e) => {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "chain_unreachable",
                            format!("reading {}'s deposit from the chain: {e}", v.payer),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

/// Adds a paid answer's headers to `h`.
pub fn put_headers(h: &mut HeaderMap, c: &Charge, chain_id: u64) {
    for (name, value) in c.headers(chain_id) {
        if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

pub use gradnet_types::payments::prices_json;
