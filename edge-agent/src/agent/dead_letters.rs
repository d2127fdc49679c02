//! `edge-agent dead-letters list|retry|export`: the operator's hands on the punches central refused for good.
//!
//! On a stopped agent the command opens the buffer itself. While the agent runs it holds the buffer's lock, so the
//! command asks the agent's local endpoint instead (`/dead-letters`, `/dead-letters/retry`, `/dead-letters/export`
//! on `metrics.listen`, like `edge-agent status`), which serves the same functions on the open buffer.

use std::sync::Arc;

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::state::AgentState;
use crate::buffer::{Buffer, BufferOptions, DeadLetter, OpenError};
use crate::config::Config;
use crate::faults::Faults;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    List,
    /// Send again: all, or the entry starting at this sequence number.
    Retry(Option<u64>),
    Export,
}

/// The body of a retry request.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct RetryRequest {
    pub first: Option<u64>,
}

/// One exported punch.
#[derive(Debug, Serialize)]
struct Exported<'a> {
    seq: u64,
    refused_at: chrono::DateTime<chrono::Utc>,
    reason: &'a str,
    punch: &'a protocol::Punch,
}

/// Runs the command and returns what to print.
///
/// # Errors
/// When the buffer can be neither opened nor reached through the running agent.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<String> {
    let options = BufferOptions {
        path: config.buffer_path(),
        max_disk_bytes: config.buffer.max_disk_bytes,
        cache_bytes: config.buffer.cache_bytes,
        key_retention: config.buffer.key_retention,
    };
    let opened = tokio::task::spawn_blocking(move || Buffer::open(options, Faults::new())).await?;
    match opened {
        Ok(buffer) => {
            let out = local(&buffer, action).await?;
            buffer.flush().await?;
            Ok(out)
        }
        Err(OpenError::Locked { .. }) => remote(config, action).await,
        Err(e) => Err(e.into()),
    }
}

async fn local(buffer: &Buffer, action: Action) -> anyhow::Result<String> {
    Ok(match action {
        Action::List => list_text(&buffer.dead_letters()?),
        Action::Retry(first) => {
            format!("{} punches queued to be sent again\n", buffer.retry_dead_letters(first).await?)
        }
        Action::Export => export_text(buffer)?,
    })
}

async fn remote(config: &Config, action: Action) -> anyhow::Result<String> {
    let mut addr = config.metrics.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let base = format!("http://{addr}");
    let http = reqwest::Client::new();
    let context = || format!("the buffer is in use by the running agent; asking it at {base} (metrics.listen)");
    let response = match action {
        Action::List => http.get(format!("{base}/dead-letters")).send().await,
        Action::Retry(first) => {
            http.post(format!("{base}/dead-letters/retry")).json(&RetryRequest { first }).send().await
        }
        Action::Export => http.get(format!("{base}/dead-letters/export")).send().await,
    }
    .with_context(context)?;
    let status = response.status();
    let text = response.text().await.with_context(context)?;
    anyhow::ensure!(status.is_success(), "the running agent answered {status}: {text}");
    Ok(match action {
        Action::List => list_text(&serde_json::from_str::<Vec<DeadLetter>>(&text).context("the agent's answer")?),
        _ => text,
    })
}

fn list_text(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    let mut out = String::from("first_seq  last_seq   punches  refused_at            reason\n");
    for l in letters {
        out.push_str(&format!(
            "{:<10} {:<10} {:<8} {}  {}\n",
            l.first_seq,
            l.last_seq,
            l.punches,
            l.refused_at.format("%Y-%m-%d %H:%M:%S"),
            l.reason
        ));
    }
    let total: u64 = letters.iter().map(|l| l.punches).sum();
    out.push_str(&format!("{total} punches in {} entries\n", letters.len()));
    out
}

/// One JSON object per line: sequence number, when and why refused, the punch.
fn export_text(buffer: &Buffer) -> anyhow::Result<String> {
    let mut out = String::new();
    for (seq, letter, punch) in buffer.dead_letter_punches(None)? {
        let line = Exported { seq, refused_at: letter.refused_at, reason: &letter.reason, punch: &punch };
        out.push_str(&serde_json::to_string(&line)?);
        out.push('\n');
    }
    Ok(out)
}

fn failure(e: impl std::fmt::Display) -> (StatusCode, Json<serde_json::Value>) {
    (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"code": "buffer", "message": e.to_string()})))
}

pub async fn list(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    state.buffer.dead_letters().map(Json).map_err(failure)
}

pub async fn retry(State(state): State<Arc<AgentState>>, Json(body): Json<RetryRequest>) -> impl IntoResponse {
    match state.buffer.retry_dead_letters(body.first).await {
        Ok(n) => Ok(format!("{n} punches queued to be sent again\n")),
        Err(e) => Err(failure(e)),
    }
}

pub async fn export(State(state): State<Arc<AgentState>>) -> impl IntoResponse {
    match export_text(&state.buffer) {
        Ok(text) => Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text)),
        Err(e) => Err(failure(e)),
    }
}
