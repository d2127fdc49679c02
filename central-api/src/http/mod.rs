//! The HTTP API: routes and the state they share. Agent handlers live in [`ingest`], the admin JSON API, its
//! OpenAPI document and reports in [`api`]; [`error`] maps every refusal to a status code and a JSON body;
//! [`guard`] refuses NUL characters and keeps API errors in shape; [`headers`] adds the security headers; [`drain`]
//! reads out a body a refusal left unread, so the client gets the answer instead of a reset.

pub mod agent_inbox;
pub mod api;
pub mod drain;
pub mod error;
pub mod guard;
pub mod headers;
pub mod ingest;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::access::ratelimit::LoginLimiter;
use crate::auth::Authenticator;
use crate::ingest::Ingest;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Arc<Authenticator>,
    pub ingest: Arc<Ingest>,
    /// Failed-login counts per (username, client address).
    pub limiter: Arc<LoginLimiter>,
    /// Browsers reach the service over HTTPS (`[tls]` here, or an `https://` `public_url` behind a proxy): session
    /// cookies get the `Secure` attribute and answers `Strict-Transport-Security` ([`headers`]).
    pub secure_cookies: bool,
    /// Cancelled when the service starts stopping, so long-lived responses (the live punch stream) end at once.
    pub stopping: tokio_util::sync::CancellationToken,
    /// How many days back a change marks days for recomputation (`attendance.backfill_days`).
    pub backfill_days: u32,
    /// Wakes agents' polls and the MQTT dispatcher when a command or a device changes.
    pub fleet: Arc<crate::fleet::Hub>,
    /// The data directory (backups live in its `backups` directory).
    pub data_dir: std::path::PathBuf,
    /// Largest backup upload accepted (`backup.max_upload_bytes`).
    pub max_backup_upload_bytes: u64,
}

impl AppState {
    /// The first day a change applying from `from` (yesterday in UTC when absent, which is today or later in every
    /// zone) marks for recomputation: no earlier than the backfill window.
    pub fn backfill_from(&self, from: Option<chrono::NaiveDate>) -> chrono::NaiveDate {
        let today = chrono::Utc::now().date_naive();
        let earliest = today - chrono::Duration::days(i64::from(self.backfill_days));
        from.unwrap_or(today - chrono::Duration::days(1)).max(earliest)
    }

    /// The backfill window in days.
    pub fn backfill_window(&self) -> i64 {
        i64::from(self.backfill_days) + 2
    }
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/ingest", post(ingest::ingest))
        .route("/api/v1/status", post(ingest::status))
        .route("/api/v1/agent/inbox", get(agent_inbox::inbox))
        .merge(api::router())
        .merge(crate::web::router())
        .layer(axum::middleware::from_fn(guard::hygiene))
        .layer(axum::middleware::from_fn_with_state(state.clone(), headers::security))
        .layer(axum::middleware::from_fn(drain::drain_unread))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({ "status": "ready" }))),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "reason": e.to_string() })),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.ingest.render_metrics())
}
