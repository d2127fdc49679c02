//! The status envelope, built from the shared state and sent every `interval` over the same link as the batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::limits::{MAX_DEVICES_PER_STATUS, MAX_LIST_ITEMS};
use protocol::AgentStatus;
use tokio_util::sync::CancellationToken;

use super::state::{AgentState, AGENT_VERSION};
use crate::forward::Link;

/// The agent's status now. Lists are cut to the protocol's limits rather than refused.
pub fn build_status(state: &AgentState, now: DateTime<Utc>) -> AgentStatus {
    let (depth, oldest) = match state.buffer.stats() {
        Ok(stats) => (stats.depth, stats.oldest_unacked_at),
        Err(e) => {
            tracing::warn!(error = %e, "buffer figures unavailable for the status");
            (state.buffer.depth(), None)
        }
    };
    let mut devices = state.board.snapshot();
    devices.truncate(MAX_DEVICES_PER_STATUS);
    for device in &mut devices {
        device.faults.truncate(MAX_LIST_ITEMS);
    }
    let mut faults = state.faults.snapshot();
    faults.truncate(MAX_LIST_ITEMS);
    AgentStatus {
        version: protocol::PROTOCOL_VERSION,
        agent: state.agent.clone(),
        site: state.site.clone(),
        sent_at: now,
        agent_version: AGENT_VERSION.to_owned(),
        uptime_secs: state.uptime_secs(),
        buffer_depth: depth,
        oldest_unacked_age_secs: oldest.map(|t| (now - t).num_seconds().max(0).unsigned_abs()),
        devices,
        faults,
        command_results: state.report.results(),
        hostname: hostname().to_owned(),
        dead_letters: state.buffer.dead_letter_count(),
        config_version: state.report.config_version(),
    }
}

/// Sends a status at start, then every `interval` (which a managed configuration may change), and at once when a
/// command finished, until `shutdown`. A failed send is logged and counted; the next one goes at the next tick
/// (status is a snapshot, not worth queueing). Command results stay in every status until one carrying them was
/// delivered.
pub async fn run_status_sender(state: Arc<AgentState>, link: Link, interval: Duration, shutdown: CancellationToken) {
    state.report.set_interval(interval);
    let mut intervals = state.report.interval();
    let mut ticker = tokio::time::interval(*intervals.borrow_and_update());
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = state.report.send_now.notified() => {}
            changed = intervals.changed() => {
                if changed.is_ok() {
                    let period = *intervals.borrow_and_update();
                    ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                continue;
            }
            () = shutdown.cancelled() => return,
        }
        let status = build_status(&state, Utc::now());
        let sent = tokio::select! {
            sent = link.send_status(&status) => sent,
            () = shutdown.cancelled() => return,
        };
        match sent {
            Ok(()) => {
                state.forward.statuses_sent.fetch_add(1, Ordering::Relaxed);
                state.report.delivered(&status.command_results);
            }
            Err(e) => {
                state.forward.status_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "status not delivered");
            }
        }
    }
}

/// The machine's host name, read once (cut to the protocol's text limit).
fn hostname() -> &'static str {
    static HOSTNAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOSTNAME
        .get_or_init(|| protocol::envelope::truncate_text(gethostname::gethostname().to_string_lossy().into_owned()))
}
