//! Paying inference nodes off chain, as every party sees it: the escrow
//! contract's interface (payer → payee channels at `0x…FA`), the prices a
//! node publishes in the node registry, the EIP-712 voucher a payer signs,
//! and what a request costs at a node's prices.
//!
//! A voucher authorizes its payee to collect **up to** a cumulative amount
//! from the payer's channel; the payee redeems what it actually charged
//! (never more than signed), and the channel remembers what was redeemed, so
//! a voucher pays each wei once and only the latest one needs to reach the
//! chain. Amounts are in wei of the native token.

use alloy_primitives::{address, Address, Signature, B256, U256};
use alloy_sol_types::{eip712_domain, sol, Eip712Domain, SolStruct};

/// The escrow contract.
pub const ESCROW: Address = address!("00000000000000000000000000000000000000FA");
/// The asset vouchers pay in: the native token (x402's `asset`).
pub const NATIVE_ASSET: Address = Address::ZERO;
/// The withdrawal delay of a chain whose genesis names none, in seconds.
pub const DEFAULT_WITHDRAWAL_DELAY_SECS: u64 = 3600;

sol! {
    /// What a payer signs: `payee` may collect up to `cumulative` wei from
    /// the payer's channel to it, until `expiry` (Unix seconds).
    #[derive(Debug, PartialEq, Eq)]
    struct Voucher {
        address payer;
        address payee;
        uint256 cumulative;
        uint64 expiry;
    }

    #[derive(Debug, PartialEq, Eq)]
    interface IEscrow {
        /// A voucher as the payee redeems it: `amount` (what it charged,
        /// at most `cumulative`) is what it collects.
        struct SignedVoucher {
            address payer;
            uint256 cumulative;
            uint64 expiry;
            uint256 amount;
            bytes signature;
        }
        struct Channel {
            uint256 deposited;
            uint256 redeemed;
            uint64 withdrawableAt;
        }
        event Deposited(address indexed payer, address indexed payee, uint256 amount, uint256 deposited);
        event WithdrawalStarted(address indexed payer, address indexed payee, uint64 withdrawableAt);
        event Withdrawn(address indexed payer, address indexed payee, uint256 amount);
        event Redeemed(address indexed payer, address indexed payee, uint256 amount, uint256 paid);
        event VoucherRefused(address indexed payer, address indexed payee, string reason);
        function deposit(address payee) external payable;
        function startWithdrawal(address payee) external;
        function withdraw(address payee) external returns (uint256);
        function redeem(SignedVoucher[] vouchers) external returns (uint256);
        /// The same, packed (see `pack`): 125 bytes a voucher, so 1,000 fit
        /// one transaction.
        function redeemPacked(bytes vouchers) external returns (uint256);
        function channel(address payer, address payee) external view returns (Channel);
        function withdrawalDelay() external view returns (uint64);
    }

    #[derive(Debug, PartialEq, Eq, Default)]
    interface IPrices {
        /// A price for one model: by content id or repository name.
        struct ModelPrice {
            string model;
            uint256 perCall;
            uint256 perMillionInputTokens;
            uint256 perMillionOutputTokens;
        }
        /// A node's prices: defaults, and overrides per model.
        struct Prices {
            uint256 perCall;
            uint256 perMillionInputTokens;
            uint256 perMillionOutputTokens;
            ModelPrice[] models;
        }
        event PricesSet(address indexed operator, uint256 perCall, uint256 models);
        function setPrices(Prices prices) external;
        function prices(address operator) external view returns (Prices);
    }
}

pub use IEscrow::{Channel, SignedVoucher};
pub use IPrices::{ModelPrice, Prices};

/// Model price overrides a node may publish.
pub const MAX_MODEL_PRICES: usize = 256;
/// Vouchers one redemption may carry.
pub const MAX_REDEEM: usize = 2_000;

/// Bytes of one voucher in [`pack`]'s form: payer (20), cumulative (16),
/// expiry (8), amount (16), signature (65).
pub const PACKED_VOUCHER: usize = 125;

/// Packs vouchers for `redeemPacked`; `None` if an amount needs more than
/// 128 bits.
pub fn pack(vouchers: &[SignedVoucher]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(vouchers.len() * PACKED_VOUCHER);
    for v in vouchers {
        if v.signature.len() != 65 {
            return None;
        }
        out.extend_from_slice(v.payer.as_slice());
        out.extend_from_slice(&u128::try_from(v.cumulative).ok()?.to_be_bytes());
        out.extend_from_slice(&v.expiry.to_be_bytes());
        out.extend_from_slice(&u128::try_from(v.amount).ok()?.to_be_bytes());
        out.extend_from_slice(&v.signature);
    }
    Some(out)
}

/// The vouchers `pack` packed; the error names what is wrong.
pub fn unpack(b: &[u8]) -> Result<Vec<SignedVoucher>, String> {
    if !b.len().is_multiple_of(PACKED_VOUCHER) {
        return Err(format!(
            "{} bytes is not a whole number of {PACKED_VOUCHER}-byte vouchers",
            b.len()
        ));
    }
    Ok(b.chunks(PACKED_VOUCHER)
        .map(|c| {
            let u128_at = |i: usize| u128::from_be_bytes(c[i..i + 16].try_into().expect("16"));
            SignedVoucher {
                payer: Address::from_slice(&c[..20]),
                cumulative: U256::from(u128_at(20)),
                expiry: u64::from_be_bytes(c[36..44].try_into().expect("8")),
                amount: U256::from(u128_at(44)),
                signature: alloy_primitives::Bytes::copy_from_slice(&c[60..125]),
            }
        })
        .collect())
}

/// The EIP-712 domain vouchers of chain `chain_id` are signed in.
pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "gradnet-escrow",
        version: "1",
        chain_id: chain_id,
        verifying_contract: ESCROW,
    }
}

/// Why a voucher is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoucherError {
    /// The signature does not recover to the payer.
    #[error("the voucher's signature is not {payer}'s over this voucher (chain {chain_id}, escrow {ESCROW}); it recovers to {recovered}")]
    Signature {
        /// Who the voucher names.
        payer: Address,
        /// Who signed it.
        recovered: Address,
        /// The chain id checked against.
        chain_id: u64,
    },
    /// Not a 65-byte signature.
    #[error("the voucher's signature is malformed: {0}")]
    Malformed(String),
}

impl Voucher {
    /// The hash its signature signs.
    pub fn signing_hash(&self, chain_id: u64) -> B256 {
        self.eip712_signing_hash(&domain(chain_id))
    }

    /// Checks that `signature` is the payer's over this voucher.
    pub fn check(&self, chain_id: u64, signature: &[u8]) -> Result<(), VoucherError> {
        let sig = Signature::try_from(signature)
            .map_err(|e| VoucherError::Malformed(format!("{e} (65 bytes: r, s, v)")))?;
        let recovered = sig
            .recover_address_from_prehash(&self.signing_hash(chain_id))
            .map_err(|e| VoucherError::Malformed(e.to_string()))?;
        if recovered != self.payer {
            return Err(VoucherError::Signature {
                payer: self.payer,
                recovered,
                chain_id,
            });
        }
        Ok(())
    }
}

/// A node's prices for one model: per call, per million input and output
/// tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rate {
    /// Wei per ONNX call.
    pub per_call: U256,
    /// Wei per million prompt tokens.
    pub per_million_input: U256,
    /// Wei per million generated tokens.
    pub per_million_output: U256,
}

impl Rate {
    /// Whether anything is charged at this rate.
    pub fn is_free(&self) -> bool {
        self.per_call.is_zero()
            && self.per_million_input.is_zero()
            && self.per_million_output.is_zero()
    }

    /// What `input` prompt tokens and `output` generated tokens cost: the
    /// exact product, rounded up to the wei.
    pub fn tokens(&self, input: u64, output: u64) -> U256 {
        let total = self.per_million_input * U256::from(input)
            + self.per_million_output * U256::from(output);
        total.div_ceil(U256::from(1_000_000u64))
    }
}

impl Prices {
    /// The rate for a model, by its content id or its repository name (an
    /// override naming either), else the node's defaults.
    pub fn rate(&self, cid: &str, repo: Option<&str>) -> Rate {
        let hit = self
            .models
            .iter()
            .find(|m| m.model == cid)
            .or_else(|| repo.and_then(|r| self.models.iter().find(|m| m.model == r)));
        match hit {
            Some(m) => Rate {
                per_call: m.perCall,
                per_million_input: m.perMillionInputTokens,
                per_million_output: m.perMillionOutputTokens,
            },
            None => Rate {
                per_call: self.perCall,
                per_million_input: self.perMillionInputTokens,
                per_million_output: self.perMillionOutputTokens,
            },
        }
    }

    /// Whether every model is free here.
    pub fn is_free(&self) -> bool {
        self.perCall.is_zero()
            && self.perMillionInputTokens.is_zero()
            && self.perMillionOutputTokens.is_zero()
            && self.models.iter().all(|m| {
                m.perCall.is_zero()
                    && m.perMillionInputTokens.is_zero()
                    && m.perMillionOutputTokens.is_zero()
            })
    }
}

/// Prices as JSON (wei as decimal strings), as nodes and the chain's
/// JSON-RPC show them.
pub fn prices_json(p: &Prices) -> serde_json::Value {
    serde_json::json!({
        "perCall": p.perCall.to_string(),
        "perMillionInputTokens": p.perMillionInputTokens.to_string(),
        "perMillionOutputTokens": p.perMillionOutputTokens.to_string(),
        "models": p.models.iter().map(|m| serde_json::json!({
            "model": m.model,
            "perCall": m.perCall.to_string(),
            "perMillionInputTokens": m.perMillionInputTokens.to_string(),
            "perMillionOutputTokens": m.perMillionOutputTokens.to_string(),
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &alloy_primitives::B256, hash: &B256) -> Vec<u8> {
        use k256::ecdsa::SigningKey;
        let sk = SigningKey::from_slice(key.as_slice()).unwrap();
        let (sig, recid) = sk.sign_prehash_recoverable(hash.as_slice()).unwrap();
        Signature::from_signature_and_parity(sig, recid.is_y_odd())
            .as_bytes()
            .to_vec()
    }

    fn address_of(key: &B256) -> Address {
        let sk = k256::ecdsa::SigningKey::from_slice(key.as_slice()).unwrap();
        Address::from_public_key(sk.verifying_key())
    }

    #[test]
    fn a_voucher_holds_only_for_its_payer_chain_and_terms() {
        let key = B256::repeat_byte(9);
        let v = Voucher {
            payer: address_of(&key),
            payee: Address::repeat_byte(2),
            cumulative: U256::from(1_000u64),
            expiry: 99,
        };
        let sig = sign(&key, &v.signing_hash(31337));
        v.check(31337, &sig).unwrap();
        assert!(matches!(
            v.check(1, &sig),
            Err(VoucherError::Signature { .. })
        ));
        for other in [
            Voucher {
                cumulative: U256::from(1_001u64),
                ..v.clone()
            },
            Voucher {
                payee: Address::repeat_byte(3),
                ..v.clone()
            },
            Voucher {
                expiry: 100,
                ..v.clone()
            },
        ] {
            assert!(other.check(31337, &sig).is_err());
        }
        assert!(matches!(
            v.check(31337, &sig[..64]),
            Err(VoucherError::Malformed(_))
        ));
    }

    #[test]
    fn vouchers_pack_and_unpack() {
        let v = SignedVoucher {
            payer: Address::repeat_byte(1),
            cumulative: U256::from(u128::MAX),
            expiry: 77,
            amount: U256::from(5u64),
            signature: vec![9; 65].into(),
        };
        let packed = pack(&[v.clone(), v.clone()]).unwrap();
        assert_eq!(packed.len(), 2 * PACKED_VOUCHER);
        assert_eq!(unpack(&packed).unwrap(), vec![v.clone(), v.clone()]);
        assert!(unpack(&packed[1..]).is_err());
        let too_big = SignedVoucher {
            cumulative: U256::from(u128::MAX) + U256::from(1u64),
            ..v
        };
        assert!(pack(&[too_big]).is_none());
    }

    #[test]
    fn rates_pick_the_model_then_the_repository_then_the_default() {
        let p = Prices {
            perCall: U256::from(10u64),
            perMillionInputTokens: U256::from(1u64),
            perMillionOutputTokens: U256::from(2u64),
            models: vec![
                ModelPrice {
                    model: "b3cid".into(),
                    perCall: U256::from(7u64),
                    perMillionInputTokens: U256::ZERO,
                    perMillionOutputTokens: U256::ZERO,
                },
                ModelPrice {
                    model: "smollm2".into(),
                    perCall: U256::ZERO,
                    perMillionInputTokens: U256::from(3_000_000u64),
                    perMillionOutputTokens: U256::from(1_500_001u64),
                },
            ],
        };
        assert_eq!(p.rate("b3cid", Some("smollm2")).per_call, U256::from(7u64));
        let llm = p.rate("b3other", Some("smollm2"));
        // 2 input tokens at 3 wei, 3 output at 1.500001 wei: 10.500003 → 11
        assert_eq!(llm.tokens(2, 3), U256::from(11u64));
        assert_eq!(llm.tokens(0, 0), U256::ZERO);
        assert_eq!(p.rate("x", None).per_call, U256::from(10u64));
        assert!(!p.is_free());
        assert!(Prices::default().is_free());
    }
}
