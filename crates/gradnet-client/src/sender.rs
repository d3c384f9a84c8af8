//! Sending transactions from one local key: it counts its nonce, signs,
//! sends, waits for the receipt, and turns a revert into an error with its
//! reason.

use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256};

use crate::rpc::{reverted, Receipt, Rpc};
use crate::wallet::{self, Fees, TxRequest};
use crate::ClientError;

/// How long a transaction may take to be included.
pub(crate) const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Transactions from one key, in nonce order.
#[derive(Debug)]
pub struct Sender {
    rpc: Rpc,
    key: B256,
    from: Address,
    chain_id: u64,
    nonce: u64,
    /// The fees every transaction offers (EIP-1559 defaults).
    pub fees: Fees,
}

impl Sender {
    /// A sender for `key` on the chain behind `rpc`, starting at the
    /// account's next nonce (its pooled transactions counted).
    pub async fn new(rpc: Rpc, key: B256) -> Result<Self, ClientError> {
        let from = wallet::address(&key)?;
        Ok(Sender {
            chain_id: rpc.chain_id().await?,
            nonce: rpc.pending_nonce(from).await?,
            rpc,
            key,
            from,
            fees: Fees::default(),
        })
    }

    /// The sending account.
    pub fn address(&self) -> Address {
        self.from
    }

    /// The JSON-RPC endpoint.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// Signs and sends a transaction with the next nonce; returns its hash
    /// without waiting.
    pub async fn submit(
        &mut self,
        to: Option<Address>,
        value: U256,
        data: Vec<u8>,
        gas_limit: u64,
    ) -> Result<B256, ClientError> {
        let raw = wallet::sign(
            &TxRequest {
                chain_id: self.chain_id,
                nonce: self.nonce,
                to,
                value,
                data: Bytes::from(data),
                gas_limit,
                fees: self.fees.clone(),
            },
            &self.key,
        )?;
        let hash = self.rpc.send_raw(&raw).await?;
        self.nonce += 1;
        Ok(hash)
    }

    /// Sends a call to `to` and waits for it to succeed: a revert is
    /// [`ClientError::Reverted`] with the decoded reason.
    pub async fn send(
        &mut self,
        to: Address,
        data: Vec<u8>,
        gas_limit: u64,
    ) -> Result<Receipt, ClientError> {
        let hash = self.submit(Some(to), U256::ZERO, data, gas_limit).await?;
        self.succeeded(hash).await
    }

    /// Waits for `hash` and checks that it succeeded.
    pub async fn succeeded(&self, hash: B256) -> Result<Receipt, ClientError> {
        let r = self.rpc.wait_receipt(hash, INCLUSION_TIMEOUT).await?;
        match reverted(&r) {
            None => Ok(r),
            Some(reason) => Err(ClientError::Reverted { hash, reason }),
        }
    }
}
