//! Moving buffered punches to the central service, in order, until each is acknowledged.
//!
//! One [`Forwarder`] task reads a batch from the buffer ([`batcher`]: up to `max_batch` punches, or fewer once the
//! oldest has waited `linger`), sends it over the [`Link`] (HTTPS or MQTT) and waits for the answer. Only a stored
//! [`BatchAck`] for exactly the batch's range (and id) deletes it from the buffer. A permanent refusal (HTTP
//! 400/403/413/422, or a `Rejected` answer of kind `permanent`) moves the batch to the buffer's dead letters, raises
//! `batch_rejected` with central's reason and goes on with the rest: one bad batch never blocks the ones behind it.
//! A refused token (HTTP 401, or kind `unauthorized`) raises `auth_failed` and waits: nothing can get through until
//! an operator fixes it, and the punches stay buffered. Anything else (transport error, timeout, 5xx, kind `retry`)
//! raises a fault, waits an exponential backoff with jitter and sends again from the same place, so order is
//! preserved and nothing is skipped.
//!
//! Design: one batch in flight. The central service commits a batch in one transaction and the drain target is met
//! with batches of several thousand punches, so a window would add reordering and partial-ack cases for little gain.

pub mod backoff;
pub mod batcher;
pub mod http;
pub mod metrics;
pub mod mqtt;
pub mod pin;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use protocol::{AckOutcome, AgentId, AgentStatus, BatchAck, PunchBatch, RejectionKind, SequencedPunch, SiteId};
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::faults::{self, Faults};
use backoff::Backoff;
pub use http::{HttpLink, HttpLinkOptions};
pub use metrics::ForwardMetrics;
pub use mqtt::{MqttLink, MqttLinkOptions};

/// Why a batch or status did not get through. None of these acknowledges anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error("link setup failed: {0}")]
    Setup(String),
    #[error("cannot reach central: {0}")]
    Transport(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("central refused the request (HTTP {status} {code}): {message}")]
    Refused { status: u16, code: String, message: String },
    #[error("central failed (HTTP {status}): {body}")]
    Server { status: u16, body: String },
    #[error("bad answer from central: {0}")]
    BadAck(String),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// The way to the central service.
#[derive(Clone)]
pub enum Link {
    Http(HttpLink),
    Mqtt(MqttLink),
}

impl Link {
    /// Sends a batch and returns central's answer to it.
    ///
    /// # Errors
    /// [`ForwardError`].
    pub async fn send_batch(&self, batch: &PunchBatch) -> Result<BatchAck, ForwardError> {
        match self {
            Self::Http(link) => link.send_batch(batch).await,
            Self::Mqtt(link) => link.send_batch(batch).await,
        }
    }

    /// Sends a status envelope.
    ///
    /// # Errors
    /// [`ForwardError`].
    pub async fn send_status(&self, status: &AgentStatus) -> Result<(), ForwardError> {
        match self {
            Self::Http(link) => link.send_status(status).await,
            Self::Mqtt(link) => link.send_status(status).await,
        }
    }
}

/// How the forwarder batches and backs off.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    pub agent: AgentId,
    pub site: SiteId,
    /// Most punches per batch (at most [`protocol::limits::MAX_PUNCHES_PER_BATCH`]).
    pub max_batch: usize,
    /// How long a partial batch waits for more punches.
    pub linger: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

/// The forwarding task's state.
pub struct Forwarder {
    buffer: Buffer,
    link: Link,
    options: ForwardOptions,
    faults: Faults,
    metrics: Arc<ForwardMetrics>,
}

/// What became of one answer.
enum Answer {
    Stored(u64),
    Rejected(String, RejectionKind),
    Mismatch(String),
}

/// HTTP refusals that sending the same batch again cannot change.
fn permanent_status(status: u16) -> bool {
    matches!(status, 400 | 403 | 413 | 422)
}

impl Forwarder {
    pub fn new(
        buffer: Buffer,
        link: Link,
        options: ForwardOptions,
        faults: Faults,
        metrics: Arc<ForwardMetrics>,
    ) -> Self {
        let max_batch = options.max_batch.clamp(1, protocol::limits::MAX_PUNCHES_PER_BATCH);
        Self { buffer, link, options: ForwardOptions { max_batch, ..options }, faults, metrics }
    }

    /// Forwards until `shutdown`. A batch in flight at shutdown is abandoned unacknowledged and sent again after the
    /// next start.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Backoff::new(self.options.initial_backoff, self.options.max_backoff);
        let mut last_seq = self.buffer.watch_last_seq();
        loop {
            let after = self.buffer.acked_up_to();
            let batch = batcher::next_batch(
                &self.buffer,
                after,
                self.options.max_batch,
                self.options.linger,
                &mut last_seq,
                &shutdown,
            );
            let Some(punches) = batch.await else { return };
            let batch = self.make_batch(punches);
            let count = batch.punches.len() as u64;
            self.metrics.batches_sent.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(first = batch.first_seq, last = batch.last_seq, count, "sending batch");
            self.metrics.sending(true);
            let sent = tokio::select! {
                sent = self.link.send_batch(&batch) => sent,
                () = shutdown.cancelled() => return,
            };
            let answer = match sent {
                Ok(ack) => Ok(self.apply(&batch, &ack).await),
                Err(e) => Err(e),
            };
            self.metrics.sending(false);
            let problem = match answer {
                Ok(answer) => match answer {
                    Answer::Stored(deleted) => {
                        backoff.reset();
                        self.metrics.backoff_ms.store(0, Ordering::Relaxed);
                        self.metrics.acked(count);
                        self.faults.clear(faults::LINK_DOWN);
                        self.faults.clear(faults::AUTH_FAILED);
                        if self.buffer.dead_letter_count() == 0 {
                            self.faults.clear(faults::BATCH_REJECTED);
                        }
                        tracing::debug!(last = batch.last_seq, deleted, "batch acknowledged");
                        continue;
                    }
                    Answer::Rejected(reason, RejectionKind::Permanent) => {
                        self.metrics.rejections.fetch_add(1, Ordering::Relaxed);
                        match self.set_aside(&batch, &reason).await {
                            Ok(()) => {
                                backoff.reset();
                                continue;
                            }
                            Err(message) => (faults::BATCH_REJECTED, message),
                        }
                    }
                    Answer::Rejected(reason, RejectionKind::Unauthorized) => {
                        self.metrics.rejections.fetch_add(1, Ordering::Relaxed);
                        (faults::AUTH_FAILED, format!("central refused the agent's credentials: {reason}; waiting"))
                    }
                    Answer::Rejected(reason, RejectionKind::Retry) => {
                        self.metrics.rejections.fetch_add(1, Ordering::Relaxed);
                        let message = format!(
                            "central could not take punches {}..={} now: {reason}; they stay buffered and are retried",
                            batch.first_seq, batch.last_seq
                        );
                        (faults::BATCH_REJECTED, message)
                    }
                    Answer::Mismatch(message) => (faults::LINK_DOWN, message),
                },
                Err(ForwardError::Refused { status: 401, code, message }) => {
                    self.metrics.rejections.fetch_add(1, Ordering::Relaxed);
                    let message = format!("central refused the agent's token (HTTP 401 {code}): {message}; waiting");
                    (faults::AUTH_FAILED, message)
                }
                Err(ForwardError::Refused { status, code, message }) if permanent_status(status) => {
                    self.metrics.rejections.fetch_add(1, Ordering::Relaxed);
                    let reason = format!("HTTP {status} {code}: {message}");
                    match self.set_aside(&batch, &reason).await {
                        Ok(()) => {
                            backoff.reset();
                            continue;
                        }
                        Err(message) => (faults::BATCH_REJECTED, message),
                    }
                }
                Err(e) => (faults::LINK_DOWN, e.to_string()),
            };
            let (code, message) = problem;
            self.metrics.failed(&message);
            self.faults.raise(code, &message, Utc::now());
            let delay = backoff.next_delay();
            self.metrics.backoff_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
            tracing::warn!(%message, failures = backoff.failures(), ?delay, "batch not delivered; backing off");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Moves a batch central refused for good to the dead letters and raises `batch_rejected`; the error is the
    /// fault message when the buffer could not move it (then it is sent again after a backoff).
    async fn set_aside(&self, batch: &PunchBatch, reason: &str) -> Result<(), String> {
        match self.buffer.dead_letter(batch.first_seq, batch.last_seq, reason).await {
            Ok(moved) => {
                self.metrics.dead_lettered.fetch_add(1, Ordering::Relaxed);
                let message = format!(
                    "central refused punches {}..={} for good ({reason}); {moved} punches moved to the dead letters \
                     (edge-agent dead-letters list|retry|export); forwarding goes on",
                    batch.first_seq, batch.last_seq
                );
                tracing::error!(%message, "batch refused");
                self.faults.raise(faults::BATCH_REJECTED, message, Utc::now());
                self.faults.clear(faults::LINK_DOWN);
                Ok(())
            }
            Err(e) => Err(format!(
                "central refused punches {}..={} for good ({reason}) and they could not be moved to the dead \
                 letters: {e}",
                batch.first_seq, batch.last_seq
            )),
        }
    }

    /// A batch carries one site. Punches buffered under another site (the site id was changed in the configuration
    /// while punches waited) go in batches of their own, so that only they are refused (and set aside as dead
    /// letters) if central will not take them.
    fn make_batch(&self, mut punches: Vec<SequencedPunch>) -> PunchBatch {
        let site = punches.first().map_or_else(|| self.options.site.clone(), |p| p.punch.site.clone());
        if let Some(cut) = punches.iter().position(|p| p.punch.site != site) {
            punches.truncate(cut);
        }
        if site != self.options.site {
            tracing::warn!(%site, configured = %self.options.site, "forwarding punches buffered under another site");
        }
        PunchBatch::new(self.options.agent.clone(), site, Utc::now(), punches)
    }

    /// Applies central's answer: deletes the batch only for a stored answer to exactly this batch.
    async fn apply(&self, batch: &PunchBatch, ack: &BatchAck) -> Answer {
        if ack.agent != self.options.agent || !ack.answers(batch) {
            return Answer::Mismatch(format!(
                "answer for agent {} seq {}..={} (batch {}) does not match the batch {}..={} (batch {}); ignored",
                ack.agent, ack.first_seq, ack.last_seq, ack.batch_id, batch.first_seq, batch.last_seq, batch.batch_id
            ));
        }
        match (&ack.outcome, ack.acknowledged_up_to()) {
            (AckOutcome::Stored { quarantined, .. }, Some(up_to)) => match self.buffer.acknowledge(up_to).await {
                Ok(deleted) => {
                    self.metrics.quarantined.fetch_add(u64::from(*quarantined), Ordering::Relaxed);
                    Answer::Stored(deleted)
                }
                // Central has the batch; if the delete failed we send it again and central counts duplicates.
                Err(e) => Answer::Mismatch(format!("acknowledged batch could not be deleted from the buffer: {e}")),
            },
            (AckOutcome::Rejected { reason, kind }, _) => Answer::Rejected(reason.clone(), *kind),
            (AckOutcome::Stored { .. }, None) => Answer::Mismatch("stored answer without a watermark".into()),
        }
    }
}
