//! Transactions at the door: decoding (legacy, EIP-2930, EIP-1559),
//! signature recovery with the chain id, the checks that need no state,
//! and the conversion to revm's transaction environment. Error texts are
//! geth's, which wallets and libraries recognize.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Transaction, TxEnvelope, Typed2718};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, Bytes, TxKind, B256};
use revm::context::TxEnv;

use crate::error::ChainError;

/// geth refuses transactions over 128 KiB (`txMaxSize`).
pub const MAX_TX_BYTES: usize = 128 * 1024;

/// A decoded, signature-checked transaction.
#[derive(Debug, Clone)]
pub struct PooledTx {
    /// The decoded transaction.
    pub envelope: TxEnvelope,
    /// Its bytes as sent.
    pub raw: Bytes,
    /// Its hash.
    pub hash: B256,
    /// The account that signed it.
    pub sender: Address,
}

impl PooledTx {
    /// Its nonce.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    /// Its gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// The most it pays per gas.
    pub fn max_fee(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }

    /// Tip per gas at `base_fee` (0 when the fee cap is below it).
    pub fn tip(&self, base_fee: u64) -> u128 {
        self.envelope.effective_tip_per_gas(base_fee).unwrap_or(0)
    }

    /// The tip it offers at most (the gas price for legacy transactions).
    pub fn envelope_tip(&self) -> u128 {
        self.envelope.priority_fee_or_price()
    }

    /// The most this transaction can cost its sender: gas at its fee cap plus value.
    pub fn max_cost(&self) -> alloy_primitives::U256 {
        alloy_primitives::U256::from(self.gas_limit())
            * alloy_primitives::U256::from(self.max_fee())
            + self.envelope.value()
    }
}

fn rejected(s: impl Into<String>) -> ChainError {
    ChainError::Rejected(s.into())
}

/// Decodes a raw transaction as `eth_sendRawTransaction` receives it.
pub fn decode(raw: &[u8], chain_id: u64) -> Result<PooledTx, ChainError> {
    if raw.len() > MAX_TX_BYTES {
        return Err(rejected("oversized data"));
    }
    let mut rest = raw;
    let envelope = TxEnvelope::decode_2718(&mut rest)
        .map_err(|e| rejected(format!("transaction could not be decoded: {e}")))?;
    if !rest.is_empty() {
        return Err(rejected(
            "transaction could not be decoded: trailing bytes after the transaction",
        ));
    }
    if matches!(envelope, TxEnvelope::Eip4844(_) | TxEnvelope::Eip7702(_)) {
        return Err(rejected("transaction type not supported"));
    }
    match envelope.chain_id() {
        None => {
            return Err(rejected(
                "only replay-protected (EIP-155) transactions allowed over RPC",
            ))
        }
        Some(c) if c != chain_id => return Err(rejected("invalid chain id for signer")),
        Some(_) => {}
    }
    let sender = envelope
        .recover_signer()
        .map_err(|_| rejected("invalid sender"))?;
    if envelope.gas_limit() < intrinsic_gas(&envelope) {
        return Err(rejected("intrinsic gas too low"));
    }
    if let Some(tip) = envelope.max_priority_fee_per_gas() {
        if tip > envelope.max_fee_per_gas() {
            return Err(rejected(
                "max priority fee per gas higher than max fee per gas",
            ));
        }
    }
    let hash = *envelope.tx_hash();
    Ok(PooledTx {
        envelope,
        raw: Bytes::copy_from_slice(raw),
        hash,
        sender,
    })
}

/// Gas a transaction costs before it runs (Shanghai rules: base, calldata,
/// contract creation with its init code words, access list).
pub fn intrinsic_gas(tx: &TxEnvelope) -> u64 {
    let data = tx.input();
    let zeros = data.iter().filter(|b| **b == 0).count() as u64;
    let mut gas = 21_000 + zeros * 4 + (data.len() as u64 - zeros) * 16;
    if tx.is_create() {
        gas += 32_000 + 2 * (data.len() as u64).div_ceil(32);
    }
    if let Some(list) = tx.access_list() {
        for item in list.iter() {
            gas += 2_400 + 1_900 * item.storage_keys.len() as u64;
        }
    }
    gas
}

/// revm's view of a transaction.
pub fn tx_env(tx: &TxEnvelope, sender: Address) -> TxEnv {
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        gas_price: tx.max_fee_per_gas(),
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: tx.max_priority_fee_per_gas(),
        ..Default::default()
    }
}

/// The contract a creation from `sender` at `nonce` deploys.
pub fn created_address(tx: &TxEnvelope, sender: Address) -> Option<Address> {
    matches!(tx.kind(), TxKind::Create).then(|| sender.create(tx.nonce()))
}
