//! Ethereum JSON-RPC through alloy's provider: the standard methods typed
//! as alloy types them, gradnet's own (`gradnet_*`) as raw requests, and
//! receipt waiting.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use alloy_json_rpc::RpcError;
use alloy_network::AnyNetwork;
use alloy_primitives::{Address, Bytes, B256, U256};
use alloy_provider::{Provider, RootProvider};
use alloy_transport::TransportErrorKind;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ClientError;

/// A transaction's receipt as alloy reads it, with gradnet's extra fields
/// (`revertReason`) in `other`.
pub type Receipt = alloy_network::AnyTransactionReceipt;

/// How often a receipt is asked for while waiting.
const POLL: Duration = Duration::from_millis(50);

/// A JSON-RPC endpoint (a validator's `--rpc-listen`, or a node's `/rpc`).
#[derive(Clone)]
pub struct Rpc {
    url: String,
    provider: RootProvider<AnyNetwork>,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc").field("url", &self.url).finish()
    }
}

/// A transport error named by the method that met it.
fn error(method: &str, e: RpcError<TransportErrorKind>) -> ClientError {
    match e {
        RpcError::ErrorResp(p) => ClientError::Rpc {
            method: method.into(),
            code: p.code,
            message: p.message.into_owned(),
            data: p.data.and_then(|d| serde_json::from_str(d.get()).ok()),
        },
        e => ClientError::Transport {
            method: method.into(),
            message: e.to_string(),
        },
    }
}

impl Rpc {
    /// An endpoint by URL (`http://host:port`, with a path if it has one).
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let parsed: url::Url = url
            .parse()
            .map_err(|e| ClientError::Invalid(format!("JSON-RPC URL `{url}`: {e}")))?;
        Ok(Rpc {
            url: url.to_string(),
            provider: RootProvider::new_http(parsed),
        })
    }

    /// The URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// alloy's provider, for what this type does not wrap.
    pub fn provider(&self) -> &RootProvider<AnyNetwork> {
        &self.provider
    }

    /// Any method, its result deserialized as `R` (`serde_json::Value` to
    /// take it as it comes).
    pub async fn request<P, R>(&self, method: &'static str, params: P) -> Result<R, ClientError>
    where
        P: Serialize + Clone + Send + Sync + std::fmt::Debug + Unpin + 'static,
        R: DeserializeOwned + std::fmt::Debug + Send + Sync + Unpin + 'static,
    {
        self.provider
            .raw_request(Cow::Borrowed(method), params)
            .await
            .map_err(|e| error(method, e))
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, ClientError> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|e| error("eth_chainId", e))
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, ClientError> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| error("eth_blockNumber", e))
    }

    /// The head block, its transactions as hashes.
    pub async fn latest_block(&self) -> Result<alloy_network::AnyRpcBlock, ClientError> {
        self.provider
            .get_block_by_number(alloy_rpc_types_eth::BlockNumberOrTag::Latest)
            .await
            .map_err(|e| error("eth_getBlockByNumber", e))?
            .ok_or_else(|| ClientError::Invalid("the node has no head block".into()))
    }

    /// Block `n`, its transactions as hashes (none: not yet).
    pub async fn block(&self, n: u64) -> Result<Option<alloy_network::AnyRpcBlock>, ClientError> {
        self.provider
            .get_block_by_number(n.into())
            .await
            .map_err(|e| error("eth_getBlockByNumber", e))
    }

    /// `eth_gasPrice`, in wei.
    pub async fn gas_price(&self) -> Result<u128, ClientError> {
        self.provider
            .get_gas_price()
            .await
            .map_err(|e| error("eth_gasPrice", e))
    }

    /// The next nonce of `a`, counting its transactions in the pool.
    pub async fn pending_nonce(&self, a: Address) -> Result<u64, ClientError> {
        self.provider
            .get_transaction_count(a)
            .pending()
            .await
            .map_err(|e| error("eth_getTransactionCount", e))
    }

    /// `eth_getBalance` at the head.
    pub async fn balance(&self, a: Address) -> Result<U256, ClientError> {
        self.provider
            .get_balance(a)
            .await
            .map_err(|e| error("eth_getBalance", e))
    }

    /// `eth_sendRawTransaction`: the transaction's hash.
    pub async fn send_raw(&self, raw: &[u8]) -> Result<B256, ClientError> {
        self.provider
            .send_raw_transaction(raw)
            .await
            .map(|p| *p.tx_hash())
            .map_err(|e| error("eth_sendRawTransaction", e))
    }

    /// `eth_getTransactionReceipt` (none: not included yet).
    pub async fn receipt(&self, hash: B256) -> Result<Option<Receipt>, ClientError> {
        self.provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| error("eth_getTransactionReceipt", e))
    }

    /// Waits for a transaction's receipt; an error if it is not included
    /// within `within`.
    pub async fn wait_receipt(&self, hash: B256, within: Duration) -> Result<Receipt, ClientError> {
        let started = Instant::now();
        loop {
            if let Some(r) = self.receipt(hash).await? {
                return Ok(r);
            }
            if started.elapsed() >= within {
                return Err(ClientError::Timeout(format!(
                    "transaction {hash} was not included within {} s",
                    within.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// `eth_call` of `data` to `to` at the head: the return data, or the
    /// revert as [`ClientError::Rpc`] (code 3, the reason in `data`).
    pub async fn call(&self, to: Address, data: Vec<u8>) -> Result<Bytes, ClientError> {
        self.request(
            "eth_call",
            (
                serde_json::json!({"to": to, "data": Bytes::from(data)}),
                "latest",
            ),
        )
        .await
    }
}

/// A receipt's revert, decoded (none: it succeeded).
pub(crate) fn reverted(r: &Receipt) -> Option<String> {
    if r.inner.inner.status() {
        return None;
    }
    let data: Bytes = r
        .other
        .get_deserialized("revertReason")
        .and_then(Result::ok)
        .unwrap_or_default();
    Some(crate::decode_revert(&data))
}
