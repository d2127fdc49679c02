//! Work for a ZKTeco poller from outside its loop: a remote command (set the clock, read now, clear the log, write
//! or delete users, read or write fingerprint templates) is carried out on the poller's own connection, between its
//! reads, so the device never sees two sessions at once.
//!
//! The sender ([`ZkJobs`]) queues a [`ZkRequest`] and wakes the poller out of its realtime wait; the poller
//! ([`ZkJobInbox`]) takes the requests between reads and answers each on its reply channel. A request whose sender
//! gave up (its reply channel is closed) is dropped unexecuted, so a command reported as failed for a device that
//! could not be reached is never carried out later.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{DeviceUser, Pin, UserUpdate, UsersReport};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::templates::Template;

/// Requests waiting per device.
const QUEUE: usize = 16;

/// What the poller is asked to do.
#[derive(Debug, Clone)]
pub enum ZkJob {
    /// Set the device clock to the agent's clock in the device's zone.
    SetClock,
    /// Read the log now (a full read: the buffer drops what it holds).
    ReadNow,
    /// Clear the log, only under the clear-log rule (`clear_log_when_acknowledged`, every record acknowledged).
    ClearLog,
    /// Write users (added, or replaced by PIN); a card or privilege left out keeps the device's.
    SetUsers(Vec<UserUpdate>),
    /// Delete users by PIN, with their templates.
    DeleteUsers(Vec<Pin>),
    /// Read a user and their fingerprint templates.
    ReadTemplates(Pin),
    /// Write a user and their fingerprint templates.
    WriteTemplates(DeviceUser, Vec<Template>),
}

/// What a job produced.
#[derive(Debug, Clone)]
pub enum ZkJobOutput {
    /// Done; a sentence for the command's result.
    Done(String),
    /// The user and templates read.
    Templates(DeviceUser, Vec<Template>),
    /// Users written, and those refused (by the layout's limits or by the device) with why.
    Users(UsersReport),
}

/// A job and where its answer goes.
#[derive(Debug)]
pub struct ZkRequest {
    pub job: ZkJob,
    pub reply: oneshot::Sender<Result<ZkJobOutput, String>>,
}

type WakeSlot = Arc<Mutex<Option<CancellationToken>>>;

/// The sending side, kept by the source set for the device.
#[derive(Debug, Clone)]
pub struct ZkJobs {
    tx: mpsc::Sender<ZkRequest>,
    wake: WakeSlot,
}

/// The poller's side.
#[derive(Debug)]
pub struct ZkJobInbox {
    rx: mpsc::Receiver<ZkRequest>,
    wake: WakeSlot,
}

/// A connected pair.
pub fn channel() -> (ZkJobs, ZkJobInbox) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let wake = WakeSlot::default();
    (ZkJobs { tx, wake: wake.clone() }, ZkJobInbox { rx, wake })
}

impl ZkJobs {
    /// Queues `job` and waits up to `within` for its answer.
    ///
    /// # Errors
    /// The device's refusal, or that the poller did not get to the job in time (the device is unreachable, or the
    /// poller stopped); a job not started by then is dropped, never carried out later.
    pub async fn run(&self, job: ZkJob, within: Duration) -> Result<ZkJobOutput, String> {
        let (reply, answer) = oneshot::channel();
        let request = ZkRequest { job, reply };
        let sent = tokio::time::timeout(within, self.tx.send(request)).await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err("the device's poller is not running".into()),
            Err(_) => return Err(format!("the device's poller did not take the command within {within:?}")),
        }
        if let Some(token) = self.wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            token.cancel();
        }
        match tokio::time::timeout(within, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the device's poller stopped before answering".into()),
            Err(_) => Err(format!(
                "the device did not answer within {within:?} (unreachable?); the command was not carried out"
            )),
        }
    }
}

impl ZkJobInbox {
    /// A token that is cancelled when a job arrives or `shutdown` fires: the realtime wait is interrupted by it.
    pub fn wake_token(&self, shutdown: &CancellationToken) -> CancellationToken {
        let token = shutdown.child_token();
        *self.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        if !self.rx.is_empty() {
            token.cancel();
        }
        token
    }

    /// The next request whose sender still waits, if one is queued.
    pub fn take(&mut self) -> Option<ZkRequest> {
        while let Ok(request) = self.rx.try_recv() {
            if !request.reply.is_closed() {
                return Some(request);
            }
            tracing::info!(job = ?request.job, "dropping a device job whose command gave up waiting");
        }
        None
    }

    /// Waits for a request (for a poller between reads); `None` when every sender is gone.
    pub async fn recv(&mut self) -> Option<ZkRequest> {
        loop {
            let request = self.rx.recv().await?;
            if !request.reply.is_closed() {
                return Some(request);
            }
        }
    }
}
