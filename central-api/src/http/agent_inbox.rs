//! `GET /api/v1/agent/inbox`: the HTTPS agent's long poll for its commands and managed configuration (agent bearer
//! token, like ingest).
//!
//! Query: `config_version` (the version the agent runs; absent for an agent that is not managed), `wait_secs` (how
//! long to hold the request when there is nothing, at most [`MAX_WAIT_SECS`]), `force_config` (send the
//! configuration even when the versions agree: a reload). The answer is an [`AgentInbox`] in bincode when the
//! `Accept` header asks for `application/x-bincode`, else JSON: at once when there are commands or another
//! configuration, else after the wait with neither. Each command returned is marked delivered; one delivered
//! earlier whose result has not come is handed out again after [`REDELIVER_AFTER`] (the agent carries out each id
//! once). The configuration is always the one of the agent's own site: the token decides, not the query.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use protocol::{AgentInbox, Encoding};
use serde::Deserialize;

use super::error::ApiError;
use super::ingest::authenticate;
use super::AppState;
use crate::store::StoreError;

/// Longest hold of a poll.
pub const MAX_WAIT_SECS: u64 = 60;
/// A delivered command without a result is handed out again after this long.
pub const REDELIVER_AFTER: chrono::Duration = chrono::Duration::seconds(60);
/// Commands per answer.
const MAX_COMMANDS: i64 = 50;

#[derive(Debug, Deserialize)]
pub struct InboxQuery {
    config_version: Option<u64>,
    wait_secs: Option<u64>,
    force_config: Option<bool>,
}

fn unavailable(e: StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string())
}

pub async fn inbox(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<InboxQuery>,
) -> Result<Response, ApiError> {
    let sender = authenticate(&state, &headers).await?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let encoding = if accept.contains(Encoding::BINCODE_CONTENT_TYPE) { Encoding::Bincode } else { Encoding::Json };
    let (agent, site) = (sender.agent.clone(), sender.site.clone());
    state.store.record_link(agent.as_str(), site.as_str(), "https", query.config_version).await.map_err(unavailable)?;
    let wait = std::time::Duration::from_secs(query.wait_secs.unwrap_or(0).min(MAX_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    let force = query.force_config.unwrap_or(false);
    loop {
        let now = Utc::now();
        let claimed = state
            .store
            .claim_commands(agent.as_str(), now, now - REDELIVER_AFTER, MAX_COMMANDS)
            .await
            .map_err(unavailable)?;
        let commands: Vec<_> = claimed.iter().filter_map(crate::fleet::wire_command).collect();
        let config = match query.config_version {
            Some(running) => {
                let current = state.store.config_version(site.as_str()).await.map_err(unavailable)?;
                if force || i64::try_from(running).ok() != Some(current) {
                    Some(crate::fleet::config_for(&state.store, &agent, &site).await.map_err(unavailable)?)
                } else {
                    None
                }
            }
            None => None,
        };
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !commands.is_empty() || config.is_some() || remaining.is_zero() || state.stopping.is_cancelled() {
            let inbox = AgentInbox { version: protocol::PROTOCOL_VERSION, agent: agent.clone(), config, commands };
            let body = protocol::encode(&inbox, encoding)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "encode_failed", e.to_string()))?;
            return Ok(([(header::CONTENT_TYPE, encoding.content_type())], body).into_response());
        }
        tokio::select! {
            () = state.fleet.wait(remaining.min(std::time::Duration::from_secs(1))) => {}
            () = state.stopping.cancelled() => {}
        }
    }
}
