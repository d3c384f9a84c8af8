//! `gradnet node start`: one node's listener (the API, the console, PIPE's
//! answer route) and, given a genesis, the ledger with `/rpc`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use gradnet_api::AppState;

use crate::config::NodeConfig;

/// Opens the node's state and binds its listener.
pub(crate) async fn open(cfg: &NodeConfig) -> Result<(AppState, tokio::net::TcpListener)> {
    let state = AppState::open(
        &cfg.data_dir,
        cfg.hub.clone(),
        cfg.runtime.clone(),
        cfg.api.clone(),
    )
    .with_context(|| format!("opening data dir {}", cfg.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    Ok((state, listener))
}

pub(crate) async fn start(cfg: NodeConfig) -> Result<()> {
    let (state, listener) = open(&cfg).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), node = %state.key.public_hex(), threads = cfg.runtime.threads, workers = cfg.api.workers, "node listening");
    let ledger = match &cfg.chain {
        Some(c) => Some(
            gradnet_node::ledger::start(&cfg.data_dir, c, &state.key, Some(state.clone())).await?,
        ),
        None => None,
    };
    if let Some(p) = &cfg.payments {
        start_payments(&state, p, &cfg.data_dir)?;
    }
    if let (None, Some(rpc)) = (&cfg.chain, &cfg.names_rpc) {
        let every = std::time::Duration::from_secs(1);
        state
            .hub
            .use_names(gradnet_node::names::RpcNames::spawn(rpc, every)?);
    }
    // a line for scripts and tests to wait on
    println!("gradnet node listening on http://{addr}");
    // the chain's inference calls (PIPE), answered with this node's key
    let pipe = gradnet_node::pipe::answer::router(std::sync::Arc::new(
        gradnet_node::pipe::answer::OutcomeSigner {
            inferencer: std::sync::Arc::new(gradnet_node::inferencer::NodeInferencer::new(
                state.clone(),
                gradnet_api::Caller::Pipe,
                Some(cfg.data_dir.join("zk")),
            )),
            key: state.key.clone(),
            perturb: cfg.byzantine,
        },
    ));
    // ZKML off chain: proofs with the same keys, paid like any answer
    let zk_infer = gradnet_node::zk_infer::router(
        state.clone(),
        std::sync::Arc::new(gradnet_node::inferencer::NodeInferencer::new(
            state.clone(),
            gradnet_api::Caller::Infer,
            Some(cfg.data_dir.join("zk")),
        )),
    );
    if cfg.byzantine {
        tracing::warn!("--byzantine: this node alters its results for the chain");
    }
    let mut limits = cfg.limits.clone();
    let tls = match &cfg.tls {
        Some(t) => {
            let hosts = vec![addr.ip().to_string(), "localhost".to_string()];
            let files = t.cert.as_deref().zip(t.key.as_deref());
            let tls = gradnet_node::tls::load(&cfg.data_dir.join("tls"), files, &hosts)?;
            limits.tls = Some(tls.config.clone());
            println!("gradnet node serves TLS too on https://{addr}");
            Some(tls)
        }
        None => None,
    };
    if let Some(mut d) = cfg.dev_enclave {
        // the registry lists the attested TLS endpoint when there is one
        match &tls {
            Some(t) => {
                d.endpoint = format!("https://{addr}");
                d.tls_certificate = t.certificate.clone();
            }
            None => d.endpoint = format!("http://{addr}"),
        }
        tokio::spawn(gradnet_node::dev_enclave::run(state.key.clone(), d));
    }
    gradnet_api::history::spawn_sampler(state.clone());
    // the web console at /, and on a validator its JSON-RPC at /rpc too
    let mut app = gradnet_api::router(state)
        .merge(pipe)
        .merge(zk_infer)
        .merge(gradnet_web::router());
    if let Some(l) = &ledger {
        app = app.nest("/rpc", gradnet_rpc::router(l.chain.clone()));
        // the network as one endpoint, reading the registry through this validator
        let rpc = cfg
            .chain
            .as_ref()
            .map(|c| loopback(&c.rpc_listen))
            .unwrap_or_default();
        let gw = gradnet_node::gateway::Gateway::start(gradnet_node::gateway::GatewayConfig {
            rpc,
            key: cfg.gateway_key,
            budget: alloy_primitives::U256::from(10u64.pow(16)),
            prices: None,
            data_dir: None,
        })?;
        app = app.nest("/gateway", gradnet_node::gateway::router(gw));
    }
    gradnet_api::serve_app(listener, app, limits, shutdown_signal()).await?;
    if let Some(l) = ledger {
        l.stop().await;
    }
    tracing::info!("node stopped");
    Ok(())
}

/// An HTTP URL for a listen address, on loopback when it listens on all.
fn loopback(listen: &str) -> String {
    let addr = listen
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{addr}")
}

/// Makes the node charge: its ledger of vouchers, prices and channels read
/// from the chain (until the first read, paid routes answer 503), and
/// redemption on a schedule.
fn start_payments(
    state: &AppState,
    p: &crate::config::PaymentsConfig,
    data_dir: &std::path::Path,
) -> Result<()> {
    use gradnet_api::payments::{chain, ledger::Ledger, Payments};
    let payee = gradnet_client::wallet::address(&p.operator_key)?;
    let ledger = Ledger::open(&data_dir.join("payments.log"))
        .with_context(|| format!("opening {}", data_dir.join("payments.log").display()))?;
    let link = chain::ChainLink::new(&p.rpc, Some(p.operator_key))?;
    let payments = Payments::new(
        payee,
        state.config.chain_id,
        Default::default(),
        ledger,
        Some(link),
    );
    payments.spawn(chain::RedeemPolicy {
        every: std::time::Duration::from_secs(p.redeem_every),
        ..Default::default()
    });
    tracing::info!(%payee, rpc = %p.rpc, "paid by the escrow");
    state.use_payments(payments);
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

#[derive(Subcommand)]
pub(crate) enum NodeCmd {
    /// Start a node: hub, inference and HTTP API.
    Start(NodeArgs),
}

/// Node settings; each flag overrides `GRADNET_*` from the environment, which
/// overrides the config file, which overrides the defaults.
#[derive(Args, Clone, Default)]
pub(crate) struct NodeArgs {
    /// A node home made by `gradnet init`: the data dir, with its
    /// config.toml as the config file.
    #[arg(long, env = "GRADNET_HOME")]
    pub home: Option<PathBuf>,
    /// TOML config file.
    #[arg(long, env = "GRADNET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the hub and the node key live [default: ~/.gradnet].
    #[arg(long, env = "GRADNET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address for the HTTP API [default: 127.0.0.1:7700].
    #[arg(long, env = "GRADNET_LISTEN")]
    pub listen: Option<String>,
    /// Threads per inference [default: 1].
    #[arg(long, env = "GRADNET_THREADS")]
    pub threads: Option<usize>,
    /// Inferences running at once [default: 2].
    #[arg(long, env = "GRADNET_WORKERS")]
    pub workers: Option<usize>,
    /// Inferences waiting for a worker before new ones get 429 [default: 64].
    #[arg(long, env = "GRADNET_QUEUE_DEPTH")]
    pub queue_depth: Option<usize>,
    /// Largest file the hub accepts, in bytes [default: 4 GiB].
    #[arg(long, env = "GRADNET_MAX_BLOB_SIZE")]
    pub max_blob_size: Option<u64>,
    /// Largest inference request body, in bytes [default: 32 MiB].
    #[arg(long, env = "GRADNET_MAX_REQUEST_BYTES")]
    pub max_request_bytes: Option<usize>,
    /// Memory budget for parsed models and compiled plans, in bytes [default: 2 GiB].
    #[arg(long, env = "GRADNET_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// Threads per LLM generation [default: the machine's cores]. candle's
    /// workers spin while they wait, so on a busy machine fewer threads (and
    /// more --llm-slots) hold up better.
    #[arg(long, env = "GRADNET_LLM_THREADS")]
    pub llm_threads: Option<usize>,
    /// LLM generations that run at once [default: 4]; those of one llama-
    /// family model decode together in shared passes.
    #[arg(long, env = "GRADNET_LLM_SLOTS")]
    pub llm_slots: Option<usize>,
    /// LLM requests waiting for a slot before new ones get 429 [default: 16].
    #[arg(long, env = "GRADNET_LLM_QUEUE_DEPTH")]
    pub llm_queue_depth: Option<usize>,
    /// Memory budget for loaded LLMs, in bytes [default: 4 GiB].
    #[arg(long, env = "GRADNET_LLM_CACHE_BYTES")]
    pub llm_cache_bytes: Option<u64>,
    /// Engine for ONNX models; receipts name it and its profile [default:
    /// deterministic].
    #[arg(long, env = "GRADNET_BACKEND", value_enum)]
    pub backend: Option<BackendName>,
    /// Genesis file of the chain this node keeps (JSON); without it the node
    /// serves inference and the hub only.
    #[arg(long, env = "GRADNET_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Address for Ethereum JSON-RPC [default: 127.0.0.1:8545].
    #[arg(long, env = "GRADNET_RPC_LISTEN")]
    pub rpc_listen: Option<String>,
    /// Milliseconds between block proposals [default: 1000].
    #[arg(long, env = "GRADNET_BLOCK_TIME_MS")]
    pub block_time_ms: Option<u64>,
    /// Consensus p2p address, a multiaddr or ip:port [default: 0.0.0.0:26656].
    #[arg(long, env = "GRADNET_P2P_LISTEN")]
    pub p2p_listen: Option<String>,
    /// Another validator's consensus p2p address (repeat for each).
    #[arg(long = "peer", value_name = "ADDR")]
    pub peer: Vec<String>,
    /// Another validator's JSON-RPC URL, to relay client transactions to
    /// (repeat for each).
    #[arg(long = "peer-rpc", value_name = "URL")]
    pub peer_rpc: Vec<String>,
    /// Another node's API URL to fetch models from when a call names a
    /// content id this hub lacks (checked against the id; repeat for each).
    #[arg(long = "hub-peer", value_name = "URL")]
    pub hub_peer: Vec<String>,
    /// ONNX Runtime shared library for `--backend onnxruntime`
    /// [default: $ORT_DYLIB_PATH, else models/libonnxruntime.so.1.32.0 from scripts/fetch-models].
    #[arg(long, env = "GRADNET_ONNXRUNTIME_LIB")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// A validator's JSON-RPC to read the network's model names from (for a
    /// node without a genesis: an inference node); without it such a node
    /// keeps its own names.
    #[arg(long, env = "GRADNET_NAMES_RPC")]
    pub names_rpc: Option<String>,
    /// Development only: accept unsigned hub writes (made as `anonymous`);
    /// `gradnet devnet` and `gradnet demo` turn it on.
    #[arg(long, env = "GRADNET_DEV_MODE")]
    pub dev_mode: bool,
    /// Bytes one account may upload to this node in all [default: 16 GiB].
    #[arg(long, env = "GRADNET_QUOTA_BYTES")]
    pub quota_bytes: Option<u64>,
    /// Bytes of tensors one inference may hold at once; a model past it is
    /// refused with 422 budget_exceeded [default: 4 GiB].
    #[arg(long, env = "GRADNET_INFERENCE_MEMORY_BYTES")]
    pub inference_memory_bytes: Option<u64>,
    /// Open connections in all [default: 8192].
    #[arg(long, env = "GRADNET_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open connections from one client address [default: 256].
    #[arg(long, env = "GRADNET_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Requests per second from one client address, 0 for no limit
    /// [default: 200, burst twice that]; loopback is not limited.
    #[arg(long, env = "GRADNET_REQUESTS_PER_IP")]
    pub requests_per_ip: Option<u32>,
    /// Serve TLS on the API port too (a connection that opens with a TLS
    /// handshake; plain HTTP still works): with --tls-cert/--tls-key, or a
    /// self-signed certificate made on first start in <data-dir>/tls/. An
    /// enclave attests and registers this certificate.
    #[arg(long, env = "GRADNET_TLS")]
    pub tls: bool,
    /// The TLS certificate chain (PEM), with --tls-key.
    #[arg(long, env = "GRADNET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The TLS private key (PEM), with --tls-cert.
    #[arg(long, env = "GRADNET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Test only: answer the chain's inference calls with altered outputs
    /// (a faulty node, to be outvoted and slashed).
    #[arg(long, hide = true)]
    pub byzantine: bool,
    /// Test only: a validator that attacks its network when it proposes,
    /// by these strategies in turn (`all`, or names: drop-answer,
    /// unsampled, forge-signature, replay-signature, wrong-decision,
    /// replay-sidecar, bad-results, equivocate, withhold, garble), and
    /// votes for every proposal unchecked.
    #[arg(long, hide = true, value_delimiter = ',')]
    pub byzantine_validator: Vec<String>,
    /// Development only: stand in for an enclave, attesting with the
    /// dev-enclave root of this seed (accepted only by a genesis that pins
    /// it), registering in the TEE registry and sending heartbeats.
    #[arg(long, hide = true, requires_all = ["tee_operator_key", "tee_rpc"])]
    pub tee_dev_enclave: Option<String>,
    /// The account that registers the dev enclave and pays its heartbeats.
    #[arg(long, hide = true)]
    pub tee_operator_key: Option<String>,
    /// JSON-RPC of the chain the dev enclave registers on.
    #[arg(long, hide = true)]
    pub tee_rpc: Option<String>,
    /// The node operator's account (secp256k1 key, hex): with --chain-rpc,
    /// the node charges the prices that account published on chain, is paid
    /// to it through the escrow, and signs its redemptions with it.
    #[arg(long, env = "GRADNET_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    /// The chain's JSON-RPC (a validator's): prices, deposits, redemption.
    #[arg(long, env = "GRADNET_CHAIN_RPC")]
    pub chain_rpc: Option<String>,
    /// Seconds between scheduled redemptions of what the node charged
    /// (sooner for a voucher near its expiry or a withdrawing payer) [default: 300].
    #[arg(long, env = "GRADNET_REDEEM_EVERY")]
    pub redeem_every: Option<u64>,
    /// A validator's gateway account (secp256k1 key, hex): pays the nodes
    /// its gateway (`/gateway`) routes to and reports the faults it sees.
    #[arg(long, env = "GRADNET_GATEWAY_KEY", hide_env_values = true)]
    pub gateway_key: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BackendName {
    /// gradnet's engine: the same output bits on every CPU (profile det-1),
    /// so QUORUM can compare this node's answers with any other's.
    Deterministic,
    /// ONNX Runtime: faster on convolutional models, exact to its CPU only
    /// (profile native: not sampled for QUORUM); needs its shared library.
    Onnxruntime,
}
