//! gradnet's HTTP API: the model hub (`/api/v0/...`), inference
//! (`/v1/infer`), OpenAI-compatible LLM serving (`/v1/models`,
//! `/v1/chat/completions`, `/v1/completions`), `/health` and Prometheus
//! `/metrics`.

pub mod auth;
pub mod error;
pub mod history;
pub mod inference;
pub mod metrics;
pub mod payments;
pub mod rate;
mod routes;
pub mod server;
pub mod session;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_pay;

use std::path::Path;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use gradnet_hub::{Hub, HubConfig};
use gradnet_runtime::llm::LlmRuntime;
use gradnet_runtime::{OnnxRunner, RuntimeConfig};
use gradnet_types::NodeKey;
use tokio::sync::Semaphore;

pub use error::ApiError;
pub use inference::{Admitted, Caller};
pub use metrics::Metrics;
pub use server::ServerLimits;

/// The node's limits.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest JSON request body (inference inputs), in bytes.
    pub max_request_bytes: usize,
    /// Largest inference answer: its output tensors' bytes.
    pub max_response_bytes: usize,
    /// Inferences that run at once.
    pub workers: usize,
    /// Inferences admitted to wait for a worker; beyond it requests get 429.
    pub queue_depth: usize,
    /// LLM generations that run at once.
    pub llm_slots: usize,
    /// LLM requests admitted to wait for a slot; beyond it requests get 429.
    pub llm_queue_depth: usize,
    /// Memory budget for loaded LLMs, in bytes.
    pub llm_cache_bytes: u64,
    /// The chain id signed writes must name (the ledger's, when there is one).
    pub chain_id: u64,
    /// Development only: accept unsigned hub writes, made as `anonymous`.
    pub dev_mode: bool,
    /// Signed requests per second one account may make (0: no limit).
    pub requests_per_account: u32,
    /// Signed requests one account may make at once above its rate.
    pub burst_per_account: u32,
    /// Test only: every `/v1/infer` answer's first output value is altered
    /// before it is signed (a faulty node, for QUORUM to outvote).
    pub byzantine: bool,
}

/// The chain id of a node without a ledger (and of `gradnet devnet`'s default).
pub const DEFAULT_CHAIN_ID: u64 = 31337;

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_request_bytes: 32 << 20,
            max_response_bytes: 64 << 20,
            workers: 2,
            queue_depth: 64,
            llm_slots: 4,
            llm_queue_depth: 16,
            llm_cache_bytes: 4 << 30,
            chain_id: DEFAULT_CHAIN_ID,
            dev_mode: false,
            requests_per_account: 20,
            burst_per_account: 60,
            byzantine: false,
        }
    }
}

/// Everything a node serves from, shared by all handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] shares.
pub struct Inner {
    /// The model hub.
    pub hub: Hub,
    /// The ONNX runtime (engine, prepared-model cache).
    pub runtime: Arc<OnnxRunner>,
    /// The node's signing key (receipts, PIPE answers).
    pub key: Arc<NodeKey>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Sampled totals for charts over longer windows.
    pub history: history::History,
    /// The node's limits.
    pub config: ApiConfig,
    /// Places for admitted runs (running + queued): see [`inference`].
    admission: Arc<Semaphore>,
    /// Permits for running inferences.
    workers: Arc<Semaphore>,
    /// Loaded LLMs.
    pub llm: Arc<LlmRuntime>,
    /// Loaded embedding models.
    pub embed: Arc<gradnet_runtime::embed::EmbedRuntime>,
    /// Places for admitted LLM requests (running + queued).
    llm_admission: Arc<Semaphore>,
    /// Permits for running LLM generations (FIFO: fair to waiting clients).
    llm_slots: Arc<Semaphore>,
    /// This node's session tokens.
    pub sessions: session::Sessions,
    /// What this node charges, when it charges (see [`payments`]).
    payments: std::sync::OnceLock<Arc<payments::Payments>>,
    /// Signed requests per account.
    pub(crate) account_rate: rate::RateLimiter<alloy_primitives::Address>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// A node's state from its parts.
    pub fn new(hub: Hub, runtime: OnnxRunner, key: NodeKey, config: ApiConfig) -> Self {
        let workers = config.workers.max(1);
        let sessions = session::Sessions::new(&key.seed(), config.chain_id);
        AppState(Arc::new(Inner {
            hub,
            runtime: Arc::new(runtime),
            key: Arc::new(key),
            metrics: Metrics::new(),
            history: history::History::default(),
            admission: Arc::new(Semaphore::new(workers + config.queue_depth)),
            workers: Arc::new(Semaphore::new(workers)),
            llm: Arc::new(LlmRuntime::new(config.llm_cache_bytes)),
            embed: Arc::default(),
            llm_admission: Arc::new(Semaphore::new(
                config.llm_slots.max(1) + config.llm_queue_depth,
            )),
            llm_slots: Arc::new(Semaphore::new(config.llm_slots.max(1))),
            account_rate: rate::RateLimiter::new(
                config.requests_per_account,
                config.burst_per_account,
            ),
            sessions,
            payments: Default::default(),
            config,
        }))
    }

    /// Makes this node charge for inference (once, at start).
    pub fn use_payments(&self, p: Arc<payments::Payments>) {
        let _ = self.payments.set(p);
    }

    /// This node's payments, if it charges.
    pub fn payments(&self) -> Option<&Arc<payments::Payments>> {
        self.payments.get()
    }

    /// Opens a node's state under `data_dir`: `hub/` and `node.key` (created
    /// on first use).
    pub fn open(
        data_dir: &Path,
        hub: HubConfig,
        runtime: RuntimeConfig,
        api: ApiConfig,
    ) -> Result<Self, OpenError> {
        let key = NodeKey::load_or_create(&data_dir.join("node.key"))?;
        let hub = Hub::open(&data_dir.join("hub"), hub)?;
        Ok(Self::new(hub, OnnxRunner::new(runtime)?, key, api))
    }
}

/// Why a node's state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// `node.key` unreadable or malformed.
    #[error("node key: {0}")]
    Key(#[from] gradnet_types::keys::KeyError),
    /// The hub's database or files.
    #[error("hub: {0}")]
    Hub(#[from] gradnet_hub::HubError),
    /// The runtime (e.g. onnxruntime's library missing).
    #[error("{0}")]
    Runtime(#[from] gradnet_runtime::RuntimeError),
}

/// Every route of the node's API, with its limits and metrics.
pub fn router(state: AppState) -> Router {
    let upload_limit = axum::extract::DefaultBodyLimit::disable();
    let json_limit = axum::extract::DefaultBodyLimit::max(state.config.max_request_bytes);
    Router::new()
        .route("/health", get(routes::node::health))
        .route("/metrics", get(routes::node::metrics))
        .route("/api/v0/metrics/history", get(routes::node::history))
        .route(
            "/api/v0/models",
            post(routes::hub::create_repo).get(routes::hub::list_repos),
        )
        .route("/api/v0/models/{name}", get(routes::hub::get_repo))
        .route(
            "/api/v0/models/{name}/collaborators",
            post(routes::hub::add_collaborator),
        )
        .route(
            "/api/v0/models/{name}/collaborators/{account}",
            axum::routing::delete(routes::hub::remove_collaborator),
        )
        .route("/api/v0/models/{name}/owner", post(routes::hub::transfer))
        .route(
            "/api/v0/sessions",
            post(routes::session::sign_in)
                .delete(routes::session::sign_out)
                .get(routes::session::whoami),
        )
        .route(
            "/api/v0/accounts/{account}",
            get(routes::hub::account_usage),
        )
        .route(
            "/api/v0/models/{name}/versions",
            post(routes::hub::create_version).get(routes::hub::list_versions),
        )
        .route(
            "/api/v0/models/{name}/versions/{ver}/files",
            post(routes::upload::upload)
                .layer(upload_limit)
                .get(routes::hub::list_files),
        )
        .route(
            "/api/v0/blobs",
            post(routes::upload::upload_blob).layer(upload_limit),
        )
        .route("/api/v0/blobs/{cid}", get(routes::hub::download))
        .route("/api/v0/payments", get(routes::pay::terms))
        .route("/api/v0/payments/redeem", post(routes::pay::redeem))
        .route("/api/v0/payments/{payer}", get(routes::pay::standing))
        .route("/api/v0/signature/{*model}", get(routes::infer::signature))
        .route("/api/v0/resolve/{*model}", get(routes::infer::resolve))
        .route("/v1/infer", post(routes::infer::infer))
        .route("/v1/models", get(routes::openai::list_models))
        .route("/v1/models/{*id}", get(routes::openai::get_model))
        .route("/v1/chat/completions", post(routes::openai::chat))
        .route("/v1/completions", post(routes::openai::completions))
        .route("/v1/responses", post(routes::openai::responses::responses))
        .route(
            "/v1/embeddings",
            post(routes::openai::embeddings::embeddings),
        )
        .layer(json_limit)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::signed_writes,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    history::spawn_sampler(state.clone());
    serve_app(listener, router(state), ServerLimits::default(), shutdown).await
}

/// `serve` for the API's router with more routes merged in, under `limits`.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve_limited(listener, app, limits, shutdown).await
}
