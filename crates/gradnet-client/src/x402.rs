//! The x402 v2 shapes over HTTP: the `PAYMENT-REQUIRED` header of a 402
//! (base64 JSON: what to pay, to whom, on which network, and here the
//! escrow and the EIP-712 voucher to sign), the `PAYMENT-SIGNATURE` header a
//! client pays with (a signed voucher, scheme `upto`), and the
//! `PAYMENT-RESPONSE` header of a paid answer (what was charged).

use alloy_primitives::{Address, Bytes, U256};
use base64::Engine as _;
use gradnet_types::payments::{Voucher, ESCROW, NATIVE_ASSET};
use serde::Deserialize;
use serde_json::{json, Value};

/// The 402's header.
pub const PAYMENT_REQUIRED: &str = "payment-required";
/// The client's payment.
pub const PAYMENT_SIGNATURE: &str = "payment-signature";
/// The answer's settlement.
pub const PAYMENT_RESPONSE: &str = "payment-response";
/// The scheme: the voucher caps what the node may charge; it charges usage.
pub const SCHEME: &str = "upto";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Base64 of `v`'s compact JSON, as x402 headers carry it.
pub fn encode(v: &Value) -> String {
    b64().encode(v.to_string())
}

/// The bytes of a base64 header value.
pub fn decode(header: &str) -> Result<Vec<u8>, String> {
    b64()
        .decode(header.trim())
        .map_err(|e| format!("not base64: {e}"))
}

/// The chain id of a CAIP-2 `eip155:<chain id>` network.
pub fn chain_of(network: &str) -> Option<u64> {
    network.strip_prefix("eip155:")?.parse().ok()
}

/// `eip155:<chain id>`, the network as CAIP-2 names it.
pub fn network(chain_id: u64) -> String {
    format!("eip155:{chain_id}")
}

/// What a node asks for: `amount` (this request's price, or its most) to
/// `pay_to`, by a voucher of at least `min_cumulative`.
pub struct Terms<'a> {
    /// The chain whose escrow pays.
    pub chain_id: u64,
    /// The node operator's account.
    pub pay_to: Address,
    /// This request's price, or its most.
    pub amount: U256,
    /// The least cumulative amount a new voucher must sign.
    pub min_cumulative: U256,
    /// What is charged to the payer so far.
    pub charged: U256,
    /// The path asked for.
    pub resource: &'a str,
    /// The resource, for people.
    pub description: String,
    /// The node's prices.
    pub prices: Value,
}

impl Terms<'_> {
    /// The `PaymentRequired` object, `error` saying why.
    pub fn required(&self, error: &str) -> Value {
        json!({
            "x402Version": 2,
            "error": error,
            "resource": {"url": self.resource, "description": self.description, "mimeType": "application/json"},
            "accepts": [{
                "scheme": SCHEME,
                "network": network(self.chain_id),
                "asset": NATIVE_ASSET,
                "amount": self.amount.to_string(),
                "payTo": self.pay_to,
                "maxTimeoutSeconds": 60,
                "extra": {
                    "escrow": ESCROW,
                    "charged": self.charged.to_string(),
                    "minCumulative": self.min_cumulative.to_string(),
                    "prices": self.prices,
                    "primaryType": "Voucher",
                    "domain": {"name": "gradnet-escrow", "version": "1", "chainId": self.chain_id, "verifyingContract": ESCROW},
                    "types": {"Voucher": [
                        {"name": "payer", "type": "address"},
                        {"name": "payee", "type": "address"},
                        {"name": "cumulative", "type": "uint256"},
                        {"name": "expiry", "type": "uint64"},
                    ]},
                },
            }],
        })
    }
}

/// A payment as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The voucher.
    pub voucher: Voucher,
    /// The payer's signature over it.
    pub signature: Bytes,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "x402Version")]
    version: u32,
    #[serde(default)]
    accepted: Option<Accepted>,
    payload: Payload,
}

#[derive(Deserialize)]
struct Accepted {
    scheme: String,
    network: String,
}

#[derive(Deserialize)]
struct Payload {
    voucher: WireVoucher,
    signature: Bytes,
}

#[derive(Deserialize)]
struct WireVoucher {
    payer: Address,
    payee: Address,
    cumulative: Num,
    expiry: Num,
}

/// An amount as a decimal string, a `0x` string or a JSON number.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    Int(u64),
    Text(String),
}

impl Num {
    fn u256(&self) -> Option<U256> {
        match self {
            Num::Int(n) => Some(U256::from(*n)),
            Num::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// Reads a `PAYMENT-SIGNATURE` header; the error says what is wrong.
pub fn parse(header: &str, chain_id: u64) -> Result<Payment, String> {
    let raw = decode(header)?;
    let w: Wire = serde_json::from_slice(&raw).map_err(|e| {
        format!("not an x402 payment payload ({{x402Version: 2, accepted, payload: {{voucher, signature}}}}): {e}")
    })?;
    if w.version != 2 {
        return Err(format!("x402Version {} (this node speaks 2)", w.version));
    }
    if let Some(a) = &w.accepted {
        if a.scheme != SCHEME {
            return Err(format!(
                "scheme `{}` (this node takes `{SCHEME}`)",
                a.scheme
            ));
        }
        if a.network != network(chain_id) {
            return Err(format!(
                "network `{}` (this node's is `{}`)",
                a.network,
                network(chain_id)
            ));
        }
    }
    let v = &w.payload.voucher;
    let cumulative = v
        .cumulative
        .u256()
        .ok_or("voucher.cumulative is not an amount in wei")?;
    let expiry = v
        .expiry
        .u256()
        .and_then(|e| u64::try_from(e).ok())
        .ok_or("voucher.expiry is not Unix seconds")?;
    Ok(Payment {
        voucher: Voucher {
            payer: v.payer,
            payee: v.payee,
            cumulative,
            expiry,
        },
        signature: w.payload.signature,
    })
}

/// The `PAYMENT-SIGNATURE` value for a signed voucher (what clients send).
pub fn payment_header(chain_id: u64, voucher: &Voucher, signature: &[u8]) -> String {
    encode(&json!({
        "x402Version": 2,
        "accepted": {"scheme": SCHEME, "network": network(chain_id), "asset": NATIVE_ASSET, "payTo": voucher.payee},
        "payload": {
            "voucher": {
                "payer": voucher.payer,
                "payee": voucher.payee,
                "cumulative": voucher.cumulative.to_string(),
                "expiry": voucher.expiry,
            },
            "signature": Bytes::copy_from_slice(signature),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payment_header_round_trips_and_bad_ones_say_why() {
        let v = Voucher {
            payer: Address::repeat_byte(1),
            payee: Address::repeat_byte(2),
            cumulative: U256::from(12_345u64),
            expiry: 77,
        };
        let h = payment_header(5, &v, &[9; 65]);
        let p = parse(&h, 5).unwrap();
        assert_eq!((p.voucher, p.signature.len()), (v.clone(), 65));
        assert!(parse(&h, 6).unwrap_err().contains("network"));
        assert!(parse("%%%", 5).unwrap_err().contains("base64"));
        let other = encode(&json!({"x402Version": 1, "payload": {}}));
        assert!(parse(&other, 5).is_err());
        let required = Terms {
            chain_id: 5,
            pay_to: v.payee,
            amount: U256::from(3u64),
            min_cumulative: U256::from(3u64),
            charged: U256::ZERO,
            resource: "/v1/infer",
            description: "x".into(),
            prices: json!({}),
        }
        .required("PAYMENT-SIGNATURE header is required");
        assert_eq!(required["accepts"][0]["network"], "eip155:5");
        assert_eq!(required["accepts"][0]["amount"], "3");
    }
}
