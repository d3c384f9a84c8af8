//! Paying nodes for a client: a [`Payer`] answers a node's `402 Payment
//! Required` with a voucher (EIP-712, `gradnet_types::payments::Voucher`)
//! that lets the node charge up to `budget` more than it has charged, and
//! keeps sending it until the node asks for a higher one. The payer's
//! deposit to the node (`gradnet pay deposit`) backs the vouchers.

use std::sync::Mutex;

use alloy_primitives::{Address, B256, U256};
use gradnet_types::payments::Voucher;
use serde_json::Value;

use crate::x402;
use crate::ClientError;

/// Signs vouchers for one account, `budget` wei at a time.
#[derive(Debug)]
pub struct Payer {
    key: B256,
    account: Address,
    budget: U256,
    ttl_secs: u64,
    current: Mutex<Option<String>>,
}

impl Payer {
    /// A payer for `key`'s account, authorizing `budget` wei beyond what a
    /// node has charged each time it asks; vouchers last `ttl_secs`.
    pub fn new(key: B256, budget: U256, ttl_secs: u64) -> Result<Self, ClientError> {
        Ok(Payer {
            account: crate::wallet::address(&key)?,
            key,
            budget,
            ttl_secs,
            current: Mutex::new(None),
        })
    }

    /// The paying account.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The `PAYMENT-SIGNATURE` of a voucher letting `payee` charge up to
    /// `cumulative` on chain `chain_id`, until `expiry`.
    pub fn sign(
        &self,
        chain_id: u64,
        payee: Address,
        cumulative: U256,
        expiry: u64,
    ) -> Result<String, ClientError> {
        let v = Voucher {
            payer: self.account,
            payee,
            cumulative,
            expiry,
        };
        let sig = crate::wallet::sign_hash(&self.key, &v.signing_hash(chain_id))?;
        Ok(x402::payment_header(chain_id, &v, &sig.as_bytes()))
    }

    /// The voucher to send now, if one was signed.
    pub fn current(&self) -> Option<String> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers a 402's `PAYMENT-REQUIRED` header: signs a voucher for what
    /// the node has charged plus the budget (at least what it asks), keeps
    /// it, and returns it.
    pub fn answer(&self, required: &str) -> Result<String, ClientError> {
        let bad =
            |m: &str| ClientError::Invalid(format!("the node's PAYMENT-REQUIRED header: {m}"));
        let v: Value = serde_json::from_slice(&x402::decode(required).map_err(|e| bad(&e))?)
            .map_err(|e| bad(&e.to_string()))?;
        let a = &v["accepts"][0];
        if a["scheme"] != x402::SCHEME {
            return Err(bad(&format!(
                "scheme {} (this client pays `{}`)",
                a["scheme"],
                x402::SCHEME
            )));
        }
        let chain_id = a["network"]
            .as_str()
            .and_then(x402::chain_of)
            .ok_or_else(|| bad("no eip155 network"))?;
        let payee: Address = a["payTo"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| bad("no payTo"))?;
        let amount = |k: &str| -> U256 {
            a["extra"][k]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_default()
        };
        let cumulative = amount("minCumulative").max(amount("charged") + self.budget);
        let expiry = crate::auth::now() + self.ttl_secs;
        let header = self.sign(chain_id, payee, cumulative, expiry)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(header.clone());
        Ok(header)
    }
}

/// An amount of the native token: `1.5` (tokens, 18 decimals) or `1500wei`.
pub fn parse_amount(s: &str) -> Result<U256, String> {
    let s = s.trim();
    if let Some(w) = s.strip_suffix("wei") {
        return w
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an amount of wei"));
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 18 || int.is_empty() && frac.is_empty() {
        return Err(format!(
            "`{s}` is not an amount (tokens with at most 18 decimals, or `Nwei`)"
        ));
    }
    let digits = format!("{int}{frac:0<18}");
    digits
        .trim_start_matches('0')
        .parse::<U256>()
        .or_else(|_| {
            if digits.chars().all(|c| c == '0') {
                Ok(U256::ZERO)
            } else {
                Err(())
            }
        })
        .map_err(|_| format!("`{s}` is not an amount (tokens with at most 18 decimals, or `Nwei`)"))
}

/// Wei as tokens, for people (`0.000001`).
pub fn format_amount(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18u64));
    let (int, frac) = (wei / unit, wei % unit);
    if frac.is_zero() {
        return int.to_string();
    }
    let f = format!("{:0>18}", frac.to_string());
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_and_print_in_tokens_or_wei() {
        assert_eq!(
            parse_amount("1.5").unwrap(),
            U256::from(1_500_000_000_000_000_000u128)
        );
        assert_eq!(
            parse_amount("0.000001").unwrap(),
            U256::from(1_000_000_000_000u64)
        );
        assert_eq!(parse_amount("42wei").unwrap(), U256::from(42u64));
        assert_eq!(parse_amount("0").unwrap(), U256::ZERO);
        for bad in ["", "x", "1.0000000000000000001", "1e3"] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(
            format_amount(U256::from(1_500_000_000_000_000_000u128)),
            "1.5"
        );
        assert_eq!(format_amount(U256::from(1u64)), "0.000000000000000001");
    }

    #[test]
    fn a_402_is_answered_with_a_voucher_for_what_was_charged_plus_the_budget() {
        let payer = Payer::new(B256::repeat_byte(5), U256::from(1_000u64), 600).unwrap();
        let payee = Address::repeat_byte(9);
        let required = x402::Terms {
            chain_id: 7,
            pay_to: payee,
            amount: U256::from(10u64),
            min_cumulative: U256::from(60u64),
            charged: U256::from(50u64),
            resource: "/v1/infer",
            description: String::new(),
            prices: Value::Null,
        }
        .required("x");
        let h = payer.answer(&x402::encode(&required)).unwrap();
        let p = x402::parse(&h, 7).unwrap();
        assert_eq!(p.voucher.cumulative, U256::from(1_050u64));
        assert_eq!((p.voucher.payee, p.voucher.payer), (payee, payer.account()));
        p.voucher.check(7, &p.signature).unwrap();
        assert_eq!(payer.current(), Some(h));
    }
}
