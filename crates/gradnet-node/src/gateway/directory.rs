//! What the gateway knows of the network: the registry's active nodes (with
//! their endpoints, modes, models, stake, profile and faults), which of them
//! are active enclaves, and the head block whose hash seeds QUORUM's
//! sampling, read through JSON-RPC every `REFRESH`; and, per node, its
//! health (a `/health` probe and the outcome of real requests), requests in
//! flight and latency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use alloy_sol_types::SolCall;
use gradnet_client::Rpc;
use gradnet_inference::registry::{self, IInferenceRegistry, NodeRecord};
use gradnet_inference::sidecar::RegistryView;
use gradnet_inference::tee_registry::{self, ITEERegistry};
use parking_lot::RwLock;

/// How often the registry and the head are read again.
pub const REFRESH: Duration = Duration::from_millis(500);
/// How often each node's `/health` is probed.
pub const PROBE: Duration = Duration::from_secs(2);

/// One node's standing, as requests and probes find it.
#[derive(Debug, Default)]
pub struct Health {
    /// Down after a failed probe or request, up after a good one.
    down: AtomicBool,
    /// Requests in flight.
    inflight: AtomicU32,
    /// Latency, an exponential moving average in microseconds (0: none yet).
    ewma_us: AtomicU64,
    /// Requests served and failed.
    served: AtomicU64,
    failed: AtomicU64,
    last_error: RwLock<Option<String>>,
}

impl Health {
    /// Whether the node is taken to be up.
    pub fn up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// A request's success and its latency.
    pub fn ok(&self, took: Duration) {
        self.down.store(false, Ordering::Relaxed);
        self.served.fetch_add(1, Ordering::Relaxed);
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let old = self.ewma_us.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        self.ewma_us.store(new.max(1), Ordering::Relaxed);
    }

    /// A failed request or probe: the node is down until one succeeds.
    pub fn fail(&self, why: String) {
        self.down.store(true, Ordering::Relaxed);
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self.last_error.write() = Some(why);
    }

    /// Load score: lower is better (latency times requests in flight).
    pub fn score(&self) -> u64 {
        let lat = self.ewma_us.load(Ordering::Relaxed).max(1);
        lat * (1 + self.inflight.load(Ordering::Relaxed) as u64)
    }

    /// Counts a request in flight until the guard drops.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "up": self.up(),
            "inflight": self.inflight.load(Ordering::Relaxed),
            "latency_ms": self.ewma_us.load(Ordering::Relaxed) as f64 / 1000.0,
            "served": self.served.load(Ordering::Relaxed),
            "failed": self.failed.load(Ordering::Relaxed),
            "last_error": *self.last_error.read(),
        })
    }
}

/// A request in flight on a node.
pub struct InFlight(Arc<Health>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A registered node as the gateway routes to it.
#[derive(Debug, Clone)]
pub struct Node {
    /// The registry's record of it.
    pub record: NodeRecord,
    /// Its enclave registration, when its key is an active enclave's.
    pub enclave: Option<B256>,
    /// Its standing, shared across snapshots.
    pub health: Arc<Health>,
}

impl Node {
    /// Its endpoint without a trailing slash.
    pub fn base(&self) -> &str {
        self.record.endpoint.trim_end_matches('/')
    }
}

/// The registry as last read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The chain the registry is on.
    pub chain_id: u64,
    /// The head block and its hash.
    pub head: u64,
    /// The head block's hash (QUORUM's seed).
    pub head_hash: B256,
    /// The active nodes.
    pub nodes: Vec<Node>,
    /// When it was read (none: not yet).
    pub read_at: Option<std::time::Instant>,
}

impl Snapshot {
    /// The head block as a certificate's seed.
    pub fn seed(&self) -> gradnet_types::certificate::Seed {
        gradnet_types::certificate::Seed {
            block: self.head,
            hash: self.head_hash,
        }
    }

    /// The registry view QUORUM's sampling uses, seeded by the head.
    pub fn view(&self) -> RegistryView {
        RegistryView {
            chain_id: self.chain_id,
            parent_hash: self.head_hash,
            block: self.head + 1,
            nodes: self.nodes.iter().map(|n| n.record.clone()).collect(),
            tee_keys: self
                .nodes
                .iter()
                .filter(|n| n.enclave.is_some())
                .map(|n| n.record.signing_key)
                .collect(),
        }
    }

    /// The node of operator `op`.
    pub fn node(&self, op: &Address) -> Option<&Node> {
        self.nodes.iter().find(|n| n.record.operator == *op)
    }

    /// The snapshot for `GET /api/v0/gateway`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "chain_id": self.chain_id,
            "head": self.head,
            "nodes": self.nodes.iter().map(|n| serde_json::json!({
                "operator": n.record.operator,
                "endpoint": n.record.endpoint,
                "modes": (0..8u8).filter(|m| n.record.modes & (1 << m) != 0).collect::<Vec<_>>(),
                "models": n.record.models,
                "stake": n.record.stake.to_string(),
                "profile": n.record.profile,
                "faults": n.record.faults,
                "last_fault": n.record.last_fault,
                "enclave": n.enclave,
                "health": n.health.json(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The registry, read again and again.
pub struct Directory {
    rpc: Rpc,
    snapshot: RwLock<Arc<Snapshot>>,
    health: RwLock<HashMap<Address, Arc<Health>>>,
    /// The last error reading the chain.
    pub error: RwLock<Option<String>>,
}

impl Directory {
    /// A directory reading through `rpc` (nothing read yet).
    pub fn new(rpc: Rpc) -> Arc<Self> {
        Arc::new(Directory {
            rpc,
            snapshot: Default::default(),
            health: Default::default(),
            error: Default::default(),
        })
    }

    /// The JSON-RPC it reads through.
    pub fn rpc(&self) -> &Rpc {
        &self.rpc
    }

    /// The registry as last read.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// Reads the registry and the head once.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        let chain_id = match self.snapshot().chain_id {
            0 => self.rpc.chain_id().await?,
            c => c,
        };
        let head = self.rpc.latest_block().await?;
        let (number, hash) = (head.header.number, head.header.hash);
        let out = self
            .rpc
            .call(
                registry::ADDRESS,
                IInferenceRegistry::activeNodesCall {}.abi_encode(),
            )
            .await?;
        let active = IInferenceRegistry::activeNodesCall::abi_decode_returns(&out)?;
        let enclaves: Vec<B256> = match self
            .rpc
            .call(
                tee_registry::ADDRESS,
                ITEERegistry::getActiveTEEs_0Call {}.abi_encode(),
            )
            .await
        {
            Ok(out) => ITEERegistry::getActiveTEEs_0Call::abi_decode_returns(&out)?,
            Err(_) => vec![],
        };
        let mut health = self.health.write();
        let nodes = active
            .into_iter()
            .map(|n| {
                let record = NodeRecord::from_abi(&n);
                let id = tee_registry::tee_id(record.signing_key.as_slice());
                Node {
                    enclave: enclaves.contains(&id).then_some(id),
                    health: health.entry(record.operator).or_default().clone(),
                    record,
                }
            })
            .collect();
        *self.snapshot.write() = Arc::new(Snapshot {
            chain_id,
            head: number,
            head_hash: hash,
            nodes,
            read_at: Some(std::time::Instant::now()),
        });
        Ok(())
    }

    /// Reads the registry every `REFRESH` and probes every node every
    /// `PROBE`, until the directory is dropped.
    pub fn spawn(self: &Arc<Self>, client: reqwest::Client) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(d) = weak.upgrade() else { return };
                let r = d.refresh().await;
                *d.error.write() = r.err().map(|e| format!("{e:#}"));
                drop(d);
                tokio::time::sleep(REFRESH).await;
            }
        });
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(d) = weak.upgrade() else { return };
                let nodes = d.snapshot().nodes.clone();
                drop(d);
                let probes = nodes.iter().map(|n| probe(&client, n));
                futures::future::join_all(probes).await;
                tokio::time::sleep(PROBE).await;
            }
        });
    }
}

async fn probe(client: &reqwest::Client, n: &Node) {
    let url = format!("{}/health", n.base());
    let r = client
        .get(&url)
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    match r {
        Ok(r) if r.status().is_success() => {
            n.health.down.store(false, Ordering::Relaxed);
        }
        Ok(r) => n.health.fail(format!("health probe: HTTP {}", r.status())),
        Err(e) => n.health.fail(format!("health probe: {e}")),
    }
}
