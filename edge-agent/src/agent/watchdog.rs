//! systemd notifications: `READY=1` once the agent serves, `WATCHDOG=1` pings while it makes progress, `STOPPING=1`
//! at shutdown. Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.
//!
//! A ping is sent only when [`assess`] finds the agent live: the runtime answers (this task runs on it), the
//! buffer's writer lock can be taken, no buffer operation (append, acknowledgement, cursor write, each waiting on a
//! flush) has run longer than the stall limit, the store is healthy or being reopened (waiting for disk space is
//! idle by choice, and a restart would not help), the forwarder is not stuck in one send longer than its timeouts
//! allow, and no task (forwarder, status sender, source loop) ended on its own. Waiting for punches, backing off
//! after a failure and waiting for devices are idle by choice. So systemd restarts an agent that hangs, never one
//! that is merely busy or waiting.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::state::AgentState;
use crate::buffer::{BufferHealth, StoreHealth};

pub fn ready() {
    if let Err(e) = sd_notify::notify(false, &[NotifyState::Ready]) {
        tracing::warn!(error = %e, "cannot notify systemd that the agent is ready");
    }
}

pub fn stopping() {
    let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
}

/// A task's name and the flag set when it ends.
type Watched = (String, Arc<AtomicBool>);

/// The long-running tasks, each with a flag set when it ends.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    ended: Arc<Mutex<Vec<Watched>>>,
}

impl Tasks {
    /// Spawns `future` as a task the watchdog expects to run until shutdown.
    pub fn spawn<F>(&self, name: impl Into<String>, future: F) -> tokio::task::JoinHandle<()>
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let ended = Arc::new(AtomicBool::new(false));
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).push((name.into(), ended.clone()));
        tokio::spawn(async move {
            future.await;
            ended.store(true, Ordering::SeqCst);
        })
    }

    /// Watches an already spawned task.
    pub fn watch(&self, name: impl Into<String>, handle: tokio::task::JoinHandle<()>) -> tokio::task::JoinHandle<()> {
        self.spawn(name, async move {
            let _ = handle.await;
        })
    }

    fn ended(&self) -> Vec<String> {
        let tasks = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        tasks.iter().filter(|(_, e)| e.load(Ordering::SeqCst)).map(|(n, _)| n.clone()).collect()
    }
}

/// What the watchdog looks at.
#[derive(Debug, Clone)]
pub struct Observed {
    pub buffer: BufferHealth,
    /// How long the forwarder has been in its current send, if it is sending.
    pub forward_busy: Option<Duration>,
    /// Tasks that ended before shutdown.
    pub ended: Vec<String>,
}

/// Limits for [`assess`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest a buffer operation may run.
    pub buffer_operation: Duration,
    /// Longest one send may take (its own timeouts plus a margin).
    pub send: Duration,
}

/// `Ok` when the agent is live, else why not.
///
/// # Errors
/// The reason the agent counts as stalled.
pub fn assess(observed: &Observed, limits: Limits) -> Result<(), String> {
    if let Some(name) = observed.ended.first() {
        return Err(format!("task {name} ended on its own"));
    }
    if let StoreHealth::Stuck(reason) = &observed.buffer.store {
        return Err(reason.clone());
    }
    if let Some((what, age)) = observed.buffer.oldest_operation {
        if age > limits.buffer_operation {
            return Err(format!("buffer {what} has run for {} s", age.as_secs()));
        }
    }
    if let Some(age) = observed.forward_busy {
        if age > limits.send {
            return Err(format!("the forwarder has waited {} s on one send", age.as_secs()));
        }
    }
    Ok(())
}

/// Pings the watchdog at half its interval until `shutdown`, if systemd asked for pings.
pub async fn run_watchdog(state: Arc<AgentState>, tasks: Tasks, send_timeout: Duration, shutdown: CancellationToken) {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return;
    }
    let interval = Duration::from_micros(usec).max(Duration::from_millis(200));
    let period = interval / 2;
    // A buffer operation normally takes milliseconds; one that outlasts the whole watchdog interval is stuck.
    let limits = Limits { buffer_operation: interval, send: send_timeout + interval };
    tracing::info!(?period, "systemd watchdog enabled");
    let mut ticker = tokio::time::interval(period);
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let probe = state.clone();
        let lock = tokio::time::timeout(period, tokio::task::spawn_blocking(move || probe.buffer.depth())).await;
        let verdict = match lock {
            Ok(Ok(_)) => assess(
                &Observed {
                    buffer: state.buffer.health(),
                    forward_busy: state.forward.busy_for(),
                    ended: tasks.ended(),
                },
                limits,
            ),
            _ => Err("the buffer's writer lock is held for longer than the watchdog period".into()),
        };
        match verdict {
            Ok(()) => {
                if stalled {
                    tracing::info!("agent making progress again; pinging the watchdog");
                    stalled = false;
                }
                if let Err(e) = sd_notify::notify(false, &[NotifyState::Watchdog]) {
                    tracing::warn!(error = %e, "watchdog ping failed");
                }
            }
            Err(reason) => {
                if !stalled {
                    tracing::error!(%reason, "agent stalled; not pinging systemd, which will restart it");
                    stalled = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        Observed {
            buffer: BufferHealth { store: StoreHealth::Healthy, oldest_operation: None },
            forward_busy: None,
            ended: Vec::new(),
        }
    }

    const LIMITS: Limits = Limits { buffer_operation: Duration::from_secs(30), send: Duration::from_secs(60) };

    #[test]
    fn idle_waiting_and_recovering_are_live_and_stuck_parts_are_not() {
        assert!(assess(&observed(), LIMITS).is_ok());
        let mut waiting = observed();
        waiting.buffer.store = StoreHealth::Recovering("disk full".into());
        waiting.buffer.oldest_operation = Some(("append", Duration::from_millis(5)));
        waiting.forward_busy = Some(Duration::from_secs(20));
        assert!(assess(&waiting, LIMITS).is_ok(), "waiting for space and a send in progress are fine");

        let mut flush = observed();
        flush.buffer.oldest_operation = Some(("append", Duration::from_secs(31)));
        assert!(assess(&flush, LIMITS).unwrap_err().contains("append"));
        let mut stuck = observed();
        stuck.buffer.store = StoreHealth::Stuck("cannot be reopened".into());
        assert!(assess(&stuck, LIMITS).is_err());
        let mut send = observed();
        send.forward_busy = Some(Duration::from_secs(61));
        assert!(assess(&send, LIMITS).unwrap_err().contains("send"));
        let mut ended = observed();
        ended.ended = vec!["forwarder".into()];
        assert!(assess(&ended, LIMITS).unwrap_err().contains("forwarder"));
    }
}
