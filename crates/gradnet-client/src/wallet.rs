//! Signing transactions with a local secp256k1 key: gradnet's own
//! tools (benchmarks, `gradnet chain` commands, tests) send real signed
//! transactions as any wallet would.

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};

use crate::ClientError;

/// What to send; the fee fields pick the transaction type.
#[derive(Debug, Clone, Default)]
pub struct TxRequest {
    /// The chain it is valid on (EIP-155).
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// None deploys `data` as a contract.
    pub to: Option<Address>,
    /// Wei sent along.
    pub value: U256,
    /// Calldata, or a contract's init code.
    pub data: Bytes,
    /// Gas the transaction may use.
    pub gas_limit: u64,
    /// What it pays per gas, and so its type.
    pub fees: Fees,
}

/// A transaction's fees, which pick its type.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // the fields are Ethereum's, in wei per gas
pub enum Fees {
    /// A legacy (type 0) transaction.
    Legacy { gas_price: u128 },
    /// An EIP-2930 (type 1) transaction, with an empty access list.
    AccessList { gas_price: u128 },
    /// An EIP-1559 (type 2) transaction.
    Dynamic { max_fee: u128, tip: u128 },
}

impl Default for Fees {
    fn default() -> Self {
        Fees::Dynamic {
            max_fee: 100_000_000_000,
            tip: 1_000_000_000,
        }
    }
}

/// A recoverable signature of the 32-byte `hash` by `key` (a transaction's
/// signing hash, an EIP-712 digest).
pub fn sign_hash(key: &B256, hash: &B256) -> Result<Signature, ClientError> {
    let sk = k256::ecdsa::SigningKey::from_slice(key.as_slice())
        .map_err(|e| ClientError::Signing(format!("bad private key: {e}")))?;
    let (sig, recid) = sk
        .sign_prehash_recoverable(hash.as_slice())
        .map_err(|e| ClientError::Signing(e.to_string()))?;
    Ok(Signature::from_signature_and_parity(sig, recid.is_y_odd()))
}

fn signed<T: SignableTransaction<Signature>>(
    tx: T,
    key: &B256,
) -> Result<(T, Signature), ClientError> {
    let sig = sign_hash(key, &tx.signature_hash())?;
    Ok((tx, sig))
}

/// The account of a secp256k1 private key.
pub fn address(key: &B256) -> Result<Address, ClientError> {
    let sk = k256::ecdsa::SigningKey::from_slice(key.as_slice())
        .map_err(|e| ClientError::Signing(format!("bad private key: {e}")))?;
    Ok(Address::from_private_key(&sk))
}

/// The raw signed transaction, as `eth_sendRawTransaction` takes it.
pub fn sign(req: &TxRequest, key: &B256) -> Result<Bytes, ClientError> {
    let to = req.to.map_or(TxKind::Create, TxKind::Call);
    let env: TxEnvelope = match req.fees {
        Fees::Legacy { gas_price } => {
            let (tx, sig) = signed(
                TxLegacy {
                    chain_id: Some(req.chain_id),
                    nonce: req.nonce,
                    gas_price,
                    gas_limit: req.gas_limit,
                    to,
                    value: req.value,
                    input: req.data.clone(),
                },
                key,
            )?;
            tx.into_signed(sig).into()
        }
        Fees::AccessList { gas_price } => {
            let (tx, sig) = signed(
                TxEip2930 {
                    chain_id: req.chain_id,
                    nonce: req.nonce,
                    gas_price,
                    gas_limit: req.gas_limit,
                    to,
                    value: req.value,
                    input: req.data.clone(),
                    access_list: Default::default(),
                },
                key,
            )?;
            tx.into_signed(sig).into()
        }
        Fees::Dynamic { max_fee, tip } => {
            let (tx, sig) = signed(
                TxEip1559 {
                    chain_id: req.chain_id,
                    nonce: req.nonce,
                    gas_limit: req.gas_limit,
                    max_fee_per_gas: max_fee,
                    max_priority_fee_per_gas: tip,
                    to,
                    value: req.value,
                    access_list: Default::default(),
                    input: req.data.clone(),
                },
                key,
            )?;
            tx.into_signed(sig).into()
        }
    };
    Ok(env.encoded_2718().into())
}
