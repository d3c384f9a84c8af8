//! Blocks, headers and receipts as the chain stores and hashes them.

use alloy_consensus::{Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{keccak256, Address, Bloom, Bytes, Log, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use serde::{Deserialize, Serialize};

use crate::error::ChainError;
use gradnet_inference::sidecar::Sidecar;

#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct Header {
    pub parent_hash: B256,
    pub number: u64,
    /// Unix seconds.
    pub timestamp: u64,
    /// The validator that proposed the block; its fee recipient is the
    /// block's coinbase.
    pub proposer: Address,
    pub coinbase: Address,
    /// Commitment to the state after the block (see `state::commitment`).
    pub state_root: B256,
    pub transactions_root: B256,
    pub receipts_root: B256,
    pub logs_bloom: Bloom,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub base_fee: u64,
    /// Commitment to the block's inference sidecar (zero: none).
    pub sidecar_root: B256,
}

impl Header {
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }
}

/// A header, its transactions (each EIP-2718 encoded as sent) and the
/// signed inference results that answer their calls to the precompile.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Block {
    pub header: Header,
    pub transactions: Vec<Bytes>,
    pub sidecar: Sidecar,
}

impl Block {
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    pub fn decode(mut bytes: &[u8]) -> Result<Self, ChainError> {
        let b: Block = alloy_rlp::Decodable::decode(&mut bytes)
            .map_err(|e| ChainError::Invalid(format!("block: {e}")))?;
        if !bytes.is_empty() {
            return Err(ChainError::Invalid("block: trailing bytes".into()));
        }
        Ok(b)
    }

    pub fn envelopes(&self) -> Result<Vec<TxEnvelope>, ChainError> {
        self.transactions
            .iter()
            .map(|raw| {
                TxEnvelope::decode_2718(&mut raw.as_ref())
                    .map_err(|e| ChainError::Invalid(format!("transaction: {e}")))
            })
            .collect()
    }
}

/// What a transaction did, as stored and served by `eth_getTransactionReceipt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredReceipt {
    pub tx_hash: B256,
    pub tx_type: u8,
    pub from: Address,
    pub to: Option<Address>,
    pub contract_address: Option<Address>,
    pub success: bool,
    pub gas_used: u64,
    pub cumulative_gas_used: u64,
    pub effective_gas_price: u128,
    pub logs: Vec<Log>,
    /// Revert data or the halt reason, when it failed.
    pub output: Bytes,
}

impl StoredReceipt {
    pub fn bloom(&self) -> Bloom {
        alloy_primitives::logs_bloom(self.logs.iter())
    }

    /// The consensus form whose trie root goes in the header.
    pub fn envelope(&self) -> ReceiptEnvelope {
        let r = ReceiptWithBloom::new(
            Receipt {
                status: self.success.into(),
                cumulative_gas_used: self.cumulative_gas_used,
                logs: self.logs.clone(),
            },
            self.bloom(),
        );
        match self.tx_type {
            1 => ReceiptEnvelope::Eip2930(r),
            2 => ReceiptEnvelope::Eip1559(r),
            _ => ReceiptEnvelope::Legacy(r),
        }
    }
}

pub fn transactions_root(txs: &[TxEnvelope]) -> B256 {
    alloy_consensus::proofs::calculate_transaction_root(txs)
}

pub fn receipts_root(receipts: &[StoredReceipt]) -> B256 {
    let envs: Vec<ReceiptEnvelope> = receipts.iter().map(StoredReceipt::envelope).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envs)
}

/// The hash of an encoded transaction, as Ethereum names it.
pub fn tx_hash(raw: &[u8]) -> B256 {
    keccak256(raw)
}

pub fn encode_tx(tx: &TxEnvelope) -> Bytes {
    tx.encoded_2718().into()
}
