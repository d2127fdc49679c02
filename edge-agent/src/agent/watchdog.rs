//! systemd notifications: `READY=1` once the agent serves, `WATCHDOG=1` pings while it is healthy, `STOPPING=1` at
//! shutdown. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.
//!
//! A ping is sent only when the runtime is responsive (this task runs on it) and the buffer's writer lock can be taken
//! (a stuck writer would stop every source), so systemd restarts an agent that hangs rather than one that is busy.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::state::AgentState;

pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd that the agent is ready");
    }
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// Pings the watchdog at half its interval until `shutdown`, if systemd asked for pings.
pub async fn run_watchdog(state: Arc<AgentState>, shutdown: CancellationToken) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return;
    }
    let period = Duration::from_micros(usec / 2).max(Duration::from_millis(100));
    tracing::info!(?period, "systemd watchdog enabled");
    let mut ticker = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let probe = state.clone();
        let healthy = tokio::time::timeout(period, tokio::task::spawn_blocking(move || probe.buffer.depth())).await;
        match healthy {
            Ok(Ok(_)) => {
                if let Err(e) = sd_notify::notify(false, &[NotifyState::Watchdog]) {
                    tracing::warn!(error = %e, "watchdog ping failed");
                }
            }
            _ => tracing::error!("buffer did not answer within the watchdog period; not pinging systemd"),
        }
    }
}
