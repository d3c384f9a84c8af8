//! The gateway: one endpoint for the whole network. It reads the registry
//! (`directory`), routes `/v1/infer`, `/v1/chat/completions` and
//! `/v1/completions` to inference nodes (`route`: VANILLA and TEE on one
//! node, health- and load-aware, with failover; `quorum`: QUORUM on the
//! sampled nodes, answered once a majority agrees, with a certificate;
//! `zkml`: a node's proof, checked against the registry's key),
//! and reports dissent it sees to the registry as fault evidence.
//!
//! Payment: the gateway is a client of the nodes like any other. With an
//! account (`--key`) it pays each node that charges from that account's
//! escrow channel to it (vouchers, as `gradnet pay` does); its own clients
//! are not charged (the operator pays for the answers it serves). Without
//! an account it routes only to nodes that answer without payment.
//! The same account sends fault reports.

pub mod answer;
pub mod billing;
pub mod directory;
pub mod metrics;
pub mod quorum;
pub mod request;
pub mod route;
pub mod sse;
pub mod upstream;
pub mod zkml;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, U256};
use alloy_sol_types::SolCall;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use gradnet_api::error::JsonBody;
use gradnet_api::ApiError;
use gradnet_inference::registry::{self, IInferenceRegistry};
use gradnet_types::certificate::{Answer, Certificate, CERTIFICATE_VERSION};
use gradnet_types::{ContentId, InferenceMode};
use parking_lot::Mutex;
use serde_json::{json, Value};

use directory::{Directory, Node, Snapshot};
use request::{Route, Shaped};

/// How long a resolved model name (or a read verifying key) is trusted.
const NAME_TTL: Duration = Duration::from_secs(10);
/// Fault reports kept for `GET /api/v0/gateway`.
const KEEP_FAULTS: usize = 64;
/// Gas a fault report may use.
const REPORT_GAS: u64 = 5_000_000;

/// A gateway's settings.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// A validator's JSON-RPC.
    pub rpc: String,
    /// The account that pays nodes and reports faults.
    pub key: Option<B256>,
    /// Wei a voucher authorizes beyond what a node has charged.
    pub budget: U256,
    /// What the gateway charges its clients (none: nothing); needs `key`,
    /// whose account they pay.
    pub prices: Option<gradnet_types::payments::Prices>,
    /// Where the vouchers its clients send are kept (`payments.log`).
    pub data_dir: Option<std::path::PathBuf>,
}

/// The gateway's state.
pub struct Gateway {
    /// The registry as read.
    pub directory: Arc<Directory>,
    /// The HTTP leg to nodes.
    pub upstream: upstream::Upstream,
    key: Option<B256>,
    names: Mutex<HashMap<(bool, String), (ContentId, Instant)>>,
    faults: Mutex<Vec<Value>>,
    reports: tokio::sync::Mutex<Option<gradnet_client::Sender>>,
    /// Its clients' payments, when it charges.
    pub payments: Option<Arc<gradnet_api::payments::Payments>>,
    /// What it counts.
    pub metrics: metrics::GatewayMetrics,
    /// Verifying keys read from the registry, by model (read again after
    /// `NAME_TTL`: an owner may replace its key).
    zk_keys: Mutex<HashMap<ContentId, (Vec<u8>, Instant)>>,
}

impl Gateway {
    /// A gateway reading the registry through `cfg.rpc`; it serves once it
    /// has read it.
    pub fn start(cfg: GatewayConfig) -> anyhow::Result<Arc<Self>> {
        let rpc = gradnet_client::Rpc::new(&cfg.rpc)?;
        let payments = match (&cfg.prices, cfg.key) {
            (None, _) => None,
            (Some(_), None) => {
                anyhow::bail!("a gateway that charges needs an account (--key) to be paid to")
            }
            (Some(prices), Some(key)) => {
                use gradnet_api::payments::{chain, ledger::Ledger, Payments};
                let dir = cfg.data_dir.clone().ok_or_else(|| {
                    anyhow::anyhow!("a gateway that charges needs a data dir for its payments log")
                })?;
                std::fs::create_dir_all(&dir)?;
                let ledger = Ledger::open(&dir.join("payments.log"))?;
                let p = Payments::new(
                    gradnet_client::wallet::address(&key)?,
                    0,
                    prices.clone(),
                    ledger,
                    Some(chain::ChainLink::new(&cfg.rpc, Some(key))?),
                );
                p.fix_prices();
                p.spawn(chain::RedeemPolicy::default());
                Some(p)
            }
        };
        let gw = Arc::new(Gateway {
            directory: Directory::new(rpc),
            upstream: upstream::Upstream::new(cfg.key, cfg.budget),
            key: cfg.key,
            names: Default::default(),
            faults: Default::default(),
            reports: Default::default(),
            payments,
            metrics: Default::default(),
            zk_keys: Default::default(),
        });
        gw.directory.spawn(gw.upstream.client.clone());
        Ok(gw)
    }

    /// Waits until the registry has been read (at most `within`).
    pub async fn wait_ready(&self, within: Duration) -> anyhow::Result<()> {
        let t = Instant::now();
        while self.directory.snapshot().read_at.is_none() {
            if t.elapsed() > within {
                anyhow::bail!(
                    "the gateway could not read the registry: {}",
                    self.directory.error.read().clone().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// The registry as last read, or a 503 before the first read.
    pub fn ready(&self) -> Result<Arc<Snapshot>, ApiError> {
        let s = self.directory.snapshot();
        if s.read_at.is_none() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "gateway_starting",
                format!(
                    "the gateway has not read the registry yet{}",
                    self.directory
                        .error
                        .read()
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(s)
    }

    /// The content id a request's model names, asked of a node that
    /// serves it (kept `NAME_TTL`).
    pub async fn resolve(&self, snap: &Snapshot, s: &Shaped) -> Result<ContentId, ApiError> {
        if let Ok(c) = s.model.parse::<ContentId>() {
            return Ok(c);
        }
        let key = (s.route.llm(), s.model.clone());
        if let Some((c, at)) = self.names.lock().get(&key) {
            if at.elapsed() < NAME_TTL {
                return Ok(*c);
            }
        }
        let kind = if s.route.llm() { "?kind=llm" } else { "" };
        let nodes = route::candidates(&snap.nodes, |n| n.record.serves(s.mode, &s.model));
        let mut why = String::from("no node serves it");
        for n in nodes.iter().take(route::ATTEMPTS) {
            let url = format!("{}/api/v0/resolve/{}{kind}", n.base(), s.model);
            let r = self
                .upstream
                .client
                .get(&url)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match r {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(c) = v["model"].as_str().and_then(|m| m.parse().ok()) {
                        self.names.lock().insert(key, (c, Instant::now()));
                        return Ok(c);
                    }
                    why = format!("{} answered without a content id", n.base());
                }
                // the node does not know the name: the client's answer
                Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                    let body = r.text().await.unwrap_or_default();
                    return Err(ApiError::not_found(
                        serde_json::from_str::<Value>(&body)
                            .ok()
                            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                            .unwrap_or_else(|| format!("model `{}` not found", s.model)),
                    ));
                }
                Ok(r) => why = format!("{}: HTTP {}", n.base(), r.status()),
                Err(e) => why = format!("{}: {e}", n.base()),
            }
        }
        Err(route::unavailable(
            &s.model,
            s.mode,
            format!("its content id could not be read ({why})"),
        ))
    }

    /// A model's verifying key as the registry holds it (kept once read).
    pub async fn zk_key(&self, cid: &ContentId) -> Result<Vec<u8>, ApiError> {
        if let Some((k, at)) = self.zk_keys.lock().get(cid) {
            if at.elapsed() < NAME_TTL {
                return Ok(k.clone());
            }
        }
        let call = IInferenceRegistry::zkVerifyingKeyCall {
            modelCID: cid.to_string(),
        };
        let out = self
            .directory
            .rpc()
            .call(registry::ADDRESS, call.abi_encode())
            .await
            .map_err(|e| match e {
                gradnet_client::ClientError::Reverted { reason, .. } => ApiError::not_found(reason),
                e => ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "chain_unreachable",
                    format!("reading the model's verifying key: {e}"),
                ),
            })?;
        let bytes = IInferenceRegistry::zkVerifyingKeyCall::abi_decode_returns(&out)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .to_vec();
        self.zk_keys
            .lock()
            .insert(*cid, (bytes.clone(), Instant::now()));
        Ok(bytes)
    }

    /// A TEE answer's certificate: its receipt and the enclave's registration.
    pub fn tee_certificate(
        &self,
        snap: &Snapshot,
        node: &Node,
        c: &answer::Checked,
    ) -> Certificate {
        Certificate {
            enclave: node.enclave,
            ..one_node(snap, InferenceMode::Tee, node, c.receipt.clone())
        }
    }

    /// Counts a node's failure.
    pub fn failed(&self, node: &Node, f: &upstream::Failure) {
        self.metrics
            .node_failures
            .with_label_values(&[&node.record.operator.to_string(), f.kind()])
            .inc();
    }

    /// A certificate with dissent: kept, and reported to the registry by
    /// the gateway's account (if it has one).
    pub fn convicted(self: &Arc<Self>, cert: &Certificate) {
        let bytes = serde_json::to_vec(cert).unwrap_or_default();
        let entry = json!({
            "request": cert.request_hash(),
            "seed_block": cert.seed.block,
            "certificate": cert,
            "report": if self.key.is_some() { "sending" } else { "not sent: the gateway has no account (--key)" },
        });
        let index = {
            let mut f = self.faults.lock();
            if f.len() >= KEEP_FAULTS {
                f.remove(0);
            }
            f.push(entry);
            f.len() - 1
        };
        let Some(key) = self.key else {
            self.metrics.faults.with_label_values(&["unsent"]).inc();
            return;
        };
        let gw = self.clone();
        tokio::spawn(async move {
            let outcome = gw.report(key, bytes).await;
            let label = if outcome.is_ok() { "sent" } else { "failed" };
            gw.metrics.faults.with_label_values(&[label]).inc();
            match &outcome {
                Ok(tx) => tracing::warn!(%tx, "reported a QUORUM dissent to the registry"),
                Err(e) => tracing::warn!(error = %e, "reporting a QUORUM dissent failed"),
            }
            let mut f = gw.faults.lock();
            if let Some(e) = f.get_mut(index) {
                e["report"] = match outcome {
                    Ok(tx) => json!({"transaction": tx}),
                    Err(e) => json!({"error": e}),
                };
            }
        });
    }

    async fn report(&self, key: B256, certificate: Vec<u8>) -> Result<B256, String> {
        let mut guard = self.reports.lock().await;
        if guard.is_none() {
            let rpc = self.directory.rpc().clone();
            *guard = Some(
                gradnet_client::Sender::new(rpc, key)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let sender = guard.as_mut().expect("set");
        let data = IInferenceRegistry::reportFaultCall {
            certificate: certificate.into(),
        }
        .abi_encode();
        match sender.send(registry::ADDRESS, data, REPORT_GAS).await {
            Ok(r) => Ok(r.transaction_hash),
            Err(e) => {
                // the nonce may be off after a failure: read it again next time
                *guard = None;
                Err(e.to_string())
            }
        }
    }

    fn status(&self) -> Value {
        let snap = self.directory.snapshot();
        let mut v = snap.json();
        v["ready"] = json!(snap.read_at.is_some());
        v["account"] = json!(self.upstream.account());
        v["error"] = json!(*self.directory.error.read());
        v["faults"] = json!(*self.faults.lock());
        v["payments"] = json!(self.payments.as_ref().map(|p| p.describe()));
        v
    }
}

/// A certificate of one node's answer (TEE, ZKML), seeded by the snapshot's head.
pub fn one_node(
    snap: &Snapshot,
    mode: InferenceMode,
    node: &Node,
    receipt: gradnet_types::Receipt,
) -> Certificate {
    Certificate {
        version: CERTIFICATE_VERSION,
        mode,
        chain_id: snap.chain_id,
        seed: snap.seed(),
        quorum: 1,
        asked: vec![node.record.operator],
        answers: vec![Answer {
            operator: node.record.operator,
            receipt,
        }],
        enclave: None,
        zk: None,
    }
}

/// The gateway's routes: the inference API at its usual paths, and its
/// view of the network at `/api/v0/gateway`.
pub fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/infer", post(infer))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/api/v0/gateway", get(status))
        .route("/health", get(health))
        .route("/metrics", get(prometheus_text))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(gw)
}

async fn serve(
    gw: &Arc<Gateway>,
    route: Route,
    headers: &HeaderMap,
    body: &JsonBody,
) -> Result<Response, ApiError> {
    let t = Instant::now();
    let mut mode = InferenceMode::Vanilla;
    let r = serve_counted(gw, route, headers, body, &mut mode).await;
    let status = match &r {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.status.as_u16(),
    };
    gw.metrics
        .requests
        .with_label_values(&[route.path(), mode.name(), &status.to_string()])
        .inc();
    gw.metrics
        .latency
        .with_label_values(&[mode.name()])
        .observe(t.elapsed().as_secs_f64());
    r
}

async fn prometheus_text(State(gw): State<Arc<Gateway>>) -> String {
    let up = gw
        .directory
        .snapshot()
        .nodes
        .iter()
        .filter(|n| n.health.up())
        .count();
    gw.metrics.nodes_up.set(up as i64);
    gw.metrics.render()
}

async fn serve_counted(
    gw: &Arc<Gateway>,
    route: Route,
    headers: &HeaderMap,
    body: &JsonBody,
    mode: &mut InferenceMode,
) -> Result<Response, ApiError> {
    let mut s = request::shape(route, headers, body)?;
    *mode = s.mode;
    let held = billing::hold(gw.payments.as_ref(), headers, &s).await?;
    if held.is_some() && s.stream && s.mode != InferenceMode::Quorum {
        s.include_usage();
    }
    match s.mode {
        InferenceMode::Quorum => quorum::serve(gw, s, held).await,
        InferenceMode::Zkml => zkml::serve(gw, s, held).await,
        _ => route::one(gw, s, held).await,
    }
}

async fn infer(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    serve(&gw, Route::Infer, &headers, &body).await
}

async fn chat(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    serve(&gw, Route::Chat, &headers, &body).await
}

async fn completions(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    serve(&gw, Route::Completions, &headers, &body).await
}

async fn status(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(gw.status())
}

async fn health(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    let snap = gw.directory.snapshot();
    Json(json!({
        "status": if snap.read_at.is_some() { "ok" } else { "starting" },
        "role": "gateway",
        "chain_id": snap.chain_id,
        "nodes": snap.nodes.len(),
    }))
}
