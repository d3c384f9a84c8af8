//! Blocks, headers and receipts as the chain stores and hashes them.

use alloy_consensus::{Receipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{keccak256, Address, Bloom, Bytes, Log, B256};
use alloy_rlp::{RlpDecodable, RlpEncodable};
use serde::{Deserialize, Serialize};

use crate::error::ChainError;
use gradnet_inference::sidecar::Sidecar;

/// A block header (RLP-encoded; its keccak is the block hash).
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable, Serialize, Deserialize)]
pub struct Header {
    /// The parent block's hash.
    pub parent_hash: B256,
    /// The height.
    pub number: u64,
    /// Unix seconds.
    pub timestamp: u64,
    /// The validator that proposed the block; its fee recipient is the
    /// block's coinbase.
    pub proposer: Address,
    /// Where the block's priority fees go.
    pub coinbase: Address,
    /// Commitment to the state after the block (see `state::commitment`).
    pub state_root: B256,
    /// Trie root of the transactions.
    pub transactions_root: B256,
    /// Trie root of the receipts.
    pub receipts_root: B256,
    /// Bloom filter of every log in the block.
    pub logs_bloom: Bloom,
    /// Gas the block may use.
    pub gas_limit: u64,
    /// Gas its transactions used.
    pub gas_used: u64,
    /// EIP-1559 base fee per gas.
    pub base_fee: u64,
    /// Commitment to the block's inference sidecar (zero: none).
    pub sidecar_root: B256,
}

impl Header {
    /// The block hash: keccak of the RLP header.
    pub fn hash(&self) -> B256 {
        keccak256(alloy_rlp::encode(self))
    }
}

/// A header, its transactions (each EIP-2718 encoded as sent) and the
/// signed inference results that answer their calls to the precompile.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions, EIP-2718 encoded.
    pub transactions: Vec<Bytes>,
    /// The signed inference results its calls used.
    pub sidecar: Sidecar,
}

impl Block {
    /// Its header's hash.
    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    /// RLP, as stored and streamed to validators.
    pub fn encode(&self) -> Vec<u8> {
        alloy_rlp::encode(self)
    }

    /// A block from [`Block::encode`]'s bytes (nothing left over).
    pub fn decode(mut bytes: &[u8]) -> Result<Self, ChainError> {
        let b: Block = alloy_rlp::Decodable::decode(&mut bytes)
            .map_err(|e| ChainError::Invalid(format!("block: {e}")))?;
        if !bytes.is_empty() {
            return Err(ChainError::Invalid("block: trailing bytes".into()));
        }
        Ok(b)
    }

    /// The transactions, decoded.
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
    /// The transaction.
    pub tx_hash: B256,
    /// Its EIP-2718 type.
    pub tx_type: u8,
    /// Its sender.
    pub from: Address,
    /// Its recipient (none: a deployment).
    pub to: Option<Address>,
    /// The contract it deployed, if any.
    pub contract_address: Option<Address>,
    /// Whether it succeeded (status 1).
    pub success: bool,
    /// Gas it used.
    pub gas_used: u64,
    /// Gas used in the block up to and with it.
    pub cumulative_gas_used: u64,
    /// What it paid per gas.
    pub effective_gas_price: u128,
    /// Its logs.
    pub logs: Vec<Log>,
    /// Revert data or the halt reason, when it failed.
    pub output: Bytes,
}

impl StoredReceipt {
    /// The bloom filter of its logs.
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

/// The transactions trie root, as Ethereum computes it.
pub fn transactions_root(txs: &[TxEnvelope]) -> B256 {
    alloy_consensus::proofs::calculate_transaction_root(txs)
}

/// The receipts trie root, as Ethereum computes it.
pub fn receipts_root(receipts: &[StoredReceipt]) -> B256 {
    let envs: Vec<ReceiptEnvelope> = receipts.iter().map(StoredReceipt::envelope).collect();
    alloy_consensus::proofs::calculate_receipt_root(&envs)
}

/// The hash of an encoded transaction, as Ethereum names it.
pub fn tx_hash(raw: &[u8]) -> B256 {
    keccak256(raw)
}

/// A transaction's EIP-2718 encoding.
pub fn encode_tx(tx: &TxEnvelope) -> Bytes {
    tx.encoded_2718().into()
}
