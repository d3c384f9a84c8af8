//! gradnet's HTTP API: the model hub (`/api/v0/...`), inference
//! (`/v1/infer`), OpenAI-compatible LLM serving (`/v1/models`,
//! `/v1/chat/completions`, `/v1/completions`), `/health` and Prometheus
//! `/metrics`.

pub mod error;
pub mod history;
pub mod inference;
pub mod metrics;
mod routes;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
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

/// The node's limits.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest JSON request body (inference inputs), in bytes.
    pub max_request_bytes: usize,
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
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_request_bytes: 32 << 20,
            workers: 2,
            queue_depth: 64,
            llm_slots: 4,
            llm_queue_depth: 16,
            llm_cache_bytes: 4 << 30,
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
    /// Places for admitted LLM requests (running + queued).
    llm_admission: Arc<Semaphore>,
    /// Permits for running LLM generations (FIFO: fair to waiting clients).
    llm_slots: Arc<Semaphore>,
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
        AppState(Arc::new(Inner {
            hub,
            runtime: Arc::new(runtime),
            key: Arc::new(key),
            metrics: Metrics::new(),
            history: history::History::default(),
            admission: Arc::new(Semaphore::new(workers + config.queue_depth)),
            workers: Arc::new(Semaphore::new(workers)),
            llm: Arc::new(LlmRuntime::new(config.llm_cache_bytes)),
            llm_admission: Arc::new(Semaphore::new(
                config.llm_slots.max(1) + config.llm_queue_depth,
            )),
            llm_slots: Arc::new(Semaphore::new(config.llm_slots.max(1))),
            config,
        }))
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
            "/api/v0/models/{name}/versions",
            post(routes::hub::create_version).get(routes::hub::list_versions),
        )
        .route(
            "/api/v0/models/{name}/versions/{ver}/files",
            post(routes::hub::upload)
                .layer(upload_limit)
                .get(routes::hub::list_files),
        )
        .route("/api/v0/blobs/{cid}", get(routes::hub::download))
        .route("/api/v0/signature/{*model}", get(routes::infer::signature))
        .route("/v1/infer", post(routes::infer::infer))
        .route("/v1/models", get(routes::openai::list_models))
        .route("/v1/chat/completions", post(routes::openai::chat))
        .route("/v1/completions", post(routes::openai::completions))
        .layer(json_limit)
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
    serve_app(listener, router(state), shutdown).await
}

/// `serve` for the API's router with more routes merged in.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    // responses go out as soon as they are written (no Nagle delay between
    // the headers and the body)
    let listener = listener.tap_io(|s| {
        let _ = s.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
