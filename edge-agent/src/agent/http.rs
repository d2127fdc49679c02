//! The local HTTP endpoint: `/healthz` (JSON) and `/metrics` (Prometheus text), for monitoring and for
//! `edge-agent status`, `/adms/commands` (see `push_commands`) and `/dead-letters` (see `dead_letters`). Bind it to localhost: it has no authentication.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics_text::{render_health, render_metrics};
use super::state::AgentState;

/// Serves until `shutdown`.
///
/// # Errors
/// When serving fails.
pub async fn serve(listener: TcpListener, state: Arc<AgentState>, shutdown: CancellationToken) -> std::io::Result<()> {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/adms/commands", get(super::push_commands::results).post(super::push_commands::queue))
        .route("/dead-letters", get(super::dead_letters::list))
        .route("/dead-letters/retry", axum::routing::post(super::dead_letters::retry))
        .route("/dead-letters/export", get(super::dead_letters::export))
        .with_state(state);
    axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

async fn healthz(State(state): State<Arc<AgentState>>) -> Json<serde_json::Value> {
    Json(render_health(&state))
}

async fn metrics(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    // The text of a few hundred lines is built from in-memory figures and one range read; cheap enough inline.
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render_metrics(&state))
}
