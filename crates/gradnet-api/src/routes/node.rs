use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::AppState;

pub(crate) async fn health(State(s): State<AppState>) -> impl IntoResponse {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "node": s.key.public_hex(),
        "runtime": s.runtime.runtime_id(),
        "isa": s.runtime.isa(),
        "chain_id": s.config.chain_id,
        "dev_mode": s.config.dev_mode,
        // where the hub's names come from: the chain's model registry or this node
        "names": if s.hub.chain_names().is_some() { "chain" } else { "local" },
        // whom this node's answers are paid to, and its prices (null: free)
        "payments": s.payments().map(|p| p.describe()),
    }))
}

pub(crate) async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(&s),
    )
}

#[derive(serde::Deserialize)]
pub(crate) struct Window {
    window: Option<String>,
}

/// Rates and latency percentiles per sampling interval over `window`
/// (`15m`, `1h` or `24h`; default `1h`).
pub(crate) async fn history(
    State(s): State<AppState>,
    axum::extract::Query(w): axum::extract::Query<Window>,
) -> Result<impl IntoResponse, crate::error::ApiError> {
    let window = w.window.as_deref().unwrap_or("1h");
    let window_ms: u64 = match window {
        "15m" => 15 * 60_000,
        "1h" => 3_600_000,
        "24h" => 24 * 3_600_000,
        other => {
            return Err(crate::error::ApiError::bad_request(
                "invalid_window",
                format!("window `{other}` is not one of 15m, 1h, 24h"),
            )
            .with_param("window"))
        }
    };
    let points = s.history.points(window_ms, crate::history::totals(&s));
    Ok(Json(json!({
        "window": window,
        "step_secs": crate::history::step_secs(window_ms),
        "points": points,
    })))
}
