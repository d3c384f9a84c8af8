//! A one-validator chain on a loopback port, with funded dev accounts.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, Bytes, B256, U256};
use gradnet_client::wallet::{sign, Fees, TxRequest};
use gradnet_ledger::chain::Chain;
use gradnet_ledger::genesis::{address_of, dev_keys, Genesis, GenesisValidator};
use gradnet_ledger::mempool::PoolConfig;
use serde_json::{json, Value};

pub(crate) const CHAIN_ID: u64 = 4242;
pub(crate) const ETH: u128 = 1_000_000_000_000_000_000;

/// The validator's ed25519 seed.
pub(crate) const VALIDATOR_SEED: [u8; 32] = [0x11; 32];

pub(crate) fn validator_public_hex() -> String {
    let key = gradnet_consensus::context::PrivateKey::from(VALIDATOR_SEED);
    hex::encode(key.public_key().as_bytes())
}

pub(crate) fn genesis(keys: &[B256]) -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        timestamp: 1_700_000_000,
        gas_limit: 30_000_000,
        base_fee: 1_000_000_000,
        validators: vec![GenesisValidator {
            public_key: validator_public_hex(),
            power: 1,
            fee_recipient: Address::repeat_byte(0xfe),
        }],
        alloc: keys
            .iter()
            .map(|k| (address_of(k).unwrap(), U256::from(1000 * ETH)))
            .collect(),
        code: Default::default(),
        inference_nodes: vec![],
        zk_models: vec![],
        tee: None,
        escrow: None,
    }
}

pub(crate) struct Dev {
    pub chain: Arc<Chain>,
    pub url: String,
    pub keys: Vec<B256>,
    pub dir: tempfile::TempDir,
    consensus: Option<gradnet_node::consensus::Running>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        if let Some(c) = self.consensus.take() {
            c.app.abort();
            c.engine.handle.abort();
            c.engine.actor.stop(None);
        }
        self.server.abort();
    }
}

pub(crate) async fn serve(chain: Arc<Chain>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = gradnet_rpc::router(chain);
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, server)
}

pub(crate) async fn dev() -> Dev {
    dev_with(|_| {}).await
}

/// A dev chain whose genesis `edit` changes first.
pub(crate) async fn dev_with(edit: impl FnOnce(&mut Genesis)) -> Dev {
    let keys = dev_keys(3);
    let dir = tempfile::tempdir().unwrap();
    let mut g = genesis(&keys);
    edit(&mut g);
    let chain = Chain::open(dir.path(), g, PoolConfig::default()).unwrap();
    let (url, server) = serve(chain.clone()).await;
    let validator = gradnet_node::consensus::Validator {
        chain: chain.clone(),
        pipe: std::sync::Arc::new(gradnet_node::pipe::Dispatcher::default()),
        key: gradnet_node::consensus::KeySeed(VALIDATOR_SEED),
        genesis: chain.store.genesis().clone(),
        faults: Default::default(),
        byzantine: None,
        options: gradnet_node::consensus::ConsensusOptions {
            home: dir.path().join("consensus"),
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            peers: vec![],
            block_time: Duration::from_millis(50),
            moniker: "test".into(),
        },
    };
    let consensus = Some(validator.launch().await.unwrap());
    Dev {
        chain,
        url,
        keys,
        dir,
        consensus,
        server,
    }
}

/// The whole JSON-RPC response.
pub(crate) async fn rpc_raw(url: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The result through the client library, or panic with the error.
pub(crate) async fn rpc(url: &str, method: &'static str, params: Value) -> Value {
    let rpc = gradnet_client::Rpc::new(url).unwrap();
    match rpc.request::<_, Value>(method, params).await {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// The error object.
pub(crate) async fn rpc_err(url: &str, method: &str, params: Value) -> Value {
    let r = rpc_raw(
        url,
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
    )
    .await;
    assert!(r.get("error").is_some(), "{method} should fail: {r}");
    r["error"].clone()
}

/// The receipt as alloy reads it (the client library's typed receipt),
/// back in JSON: every receipt a test looks at has gone through a standard
/// Ethereum client's types.
pub(crate) async fn wait_receipt(url: &str, hash: &str) -> Value {
    let rpc = gradnet_client::Rpc::new(url).unwrap();
    let r = rpc
        .wait_receipt(hash.parse().unwrap(), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("no receipt for {hash}: {e}"));
    serde_json::to_value(r).unwrap()
}

pub(crate) fn transfer(key: &B256, nonce: u64, to: Address, value: u128) -> Bytes {
    sign(
        &TxRequest {
            chain_id: CHAIN_ID,
            nonce,
            to: Some(to),
            value: U256::from(value),
            gas_limit: 21_000,
            fees: Fees::default(),
            ..Default::default()
        },
        key,
    )
    .unwrap()
}

/// A JSON-RPC quantity (`0x`-prefixed hex).
pub(crate) fn hexq(v: &Value) -> u128 {
    serde_json::from_value::<U256>(v.clone())
        .unwrap_or_else(|e| panic!("{v} is not a quantity: {e}"))
        .to()
}

/// Models by content id, run on gradnet's ONNX runtime.
pub(crate) struct Local {
    pub runtime: gradnet_runtime::OnnxRunner,
    pub models: std::collections::HashMap<String, Vec<u8>>,
}

impl gradnet_inference::precompile::Inferencer for Local {
    fn admit(
        self: Arc<Self>,
    ) -> Result<Arc<dyn gradnet_inference::precompile::Inferencer>, String> {
        Ok(self)
    }

    fn run_model(
        &self,
        model: &str,
        inputs: &serde_json::Value,
    ) -> Result<gradnet_types::tensor::NamedTensors, String> {
        let bytes = self
            .models
            .get(model)
            .ok_or_else(|| format!("unknown model {model}"))?;
        let m = self
            .runtime
            .load(model.parse().map_err(|e| format!("{e}"))?, bytes)
            .map_err(|e| e.to_string())?;
        let inputs = gradnet_types::json::parse_inputs(inputs).map_err(|e| e.to_string())?;
        self.runtime
            .infer(&m, &inputs)
            .map(|(_, out)| out)
            .map_err(|e| e.to_string())
    }
    fn complete(
        &self,
        r: &gradnet_inference::abi::LLMCompletionRequest,
    ) -> Result<gradnet_inference::abi::LLMCompletionResponse, String> {
        Err(format!("no LLM {} here", r.modelCID))
    }
    fn chat(
        &self,
        r: &gradnet_inference::abi::LLMChatRequest,
    ) -> Result<gradnet_inference::abi::LLMChatResponse, String> {
        Err(format!("no LLM {} here", r.modelCID))
    }
}
