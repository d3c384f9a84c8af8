use anyhow::{Context, Result};
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
    if cfg.byzantine {
        tracing::warn!("--byzantine: this node alters its results for the chain");
    }
    if let Some(mut d) = cfg.dev_enclave {
        d.endpoint = format!("http://{addr}");
        tokio::spawn(gradnet_node::dev_enclave::run(state.key.clone(), d));
    }
    gradnet_api::history::spawn_sampler(state.clone());
    // the web console at /, and on a validator its JSON-RPC at /rpc too
    let mut app = gradnet_api::router(state)
        .merge(pipe)
        .merge(gradnet_web::router());
    if let Some(l) = &ledger {
        app = app.nest("/rpc", gradnet_rpc::router(l.chain.clone()));
    }
    gradnet_api::serve_app(listener, app, shutdown_signal()).await?;
    if let Some(l) = ledger {
        l.stop().await;
    }
    tracing::info!("node stopped");
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
