//! The notification queue's consumer: claims due deliveries, sends each by its channel, and records the outcome: sent,
//! retried later (backoff doubling from [`FIRST_RETRY`] up to [`LONGEST_RETRY`]), or failed for good (a permanent
//! refusal, or `max_attempts` used up). A claim lasts [`LEASE`]: a replica that dies mid-send leaves the delivery
//! to be claimed again, so a receiver may get one twice (same delivery id), never none.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::notify::{send_webhook, webhook_client, Mailer, SendError};
use super::AlertsConfig;
use crate::store::alerts::{ClaimedDelivery, DeliveryOutcome};
use crate::store::Store;

/// First wait before a retry.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
/// Longest wait between retries.
pub const LONGEST_RETRY: Duration = Duration::from_secs(600);
/// How long a claimed delivery is left to its replica.
pub const LEASE: Duration = Duration::from_secs(120);
/// Deliveries claimed per round.
const BATCH: i64 = 20;

/// Sends queued notifications.
#[derive(Debug, Clone)]
pub struct Sender {
    http: reqwest::Client,
    mailer: Option<Mailer>,
    max_attempts: u32,
}

impl Sender {
    /// A sender for `config`.
    ///
    /// # Errors
    /// When the HTTP client or the SMTP settings cannot be set up.
    pub fn new(config: &AlertsConfig) -> Result<Self, String> {
        let http = webhook_client(Duration::from_secs(config.webhook_timeout_secs))
            .map_err(|e| format!("webhook client: {e}"))?;
        let mailer = config.smtp.as_ref().map(Mailer::new).transpose()?;
        Ok(Self { http, mailer, max_attempts: config.max_attempts })
    }

    /// Sends every due delivery, in rounds of [`BATCH`]; returns how many were attempted.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn send_due(&self, store: &Store) -> Result<usize, crate::store::StoreError> {
        let mut attempted = 0;
        loop {
            let lease = chrono::Duration::from_std(LEASE).unwrap_or_else(|_| chrono::Duration::minutes(2));
            let claimed = store.claim_deliveries(Utc::now(), lease, BATCH).await?;
            if claimed.is_empty() {
                return Ok(attempted);
            }
            attempted += claimed.len();
            for delivery in claimed {
                let result = self.send(&delivery).await;
                let outcome = self.outcome(&delivery, result);
                match &outcome {
                    DeliveryOutcome::Sent => tracing::info!(delivery = delivery.id, channel = %delivery.channel,
                        event = delivery.event.id, "alert notification sent"),
                    DeliveryOutcome::Retry(e, _) | DeliveryOutcome::Failed(e) => tracing::warn!(
                        delivery = delivery.id, channel = %delivery.channel, attempt = delivery.attempts, error = %e,
                        "alert notification not sent"),
                }
                store.finish_delivery(delivery.id, delivery.attempts, &outcome, Utc::now()).await?;
            }
        }
    }

    async fn send(&self, delivery: &ClaimedDelivery) -> Result<(), SendError> {
        match delivery.channel.as_str() {
            "webhook" => {
                send_webhook(&self.http, &delivery.target, delivery.secret.as_deref(), &delivery.event, delivery.id)
                    .await
            }
            "email" => match &self.mailer {
                Some(mailer) => mailer.send(&delivery.target, &delivery.event, delivery.id).await,
                None => {
                    Err(SendError { message: "no SMTP server is configured ([alerts.smtp])".into(), permanent: true })
                }
            },
            other => Err(SendError { message: format!("unknown channel {other:?}"), permanent: true }),
        }
    }

    fn outcome(&self, delivery: &ClaimedDelivery, result: Result<(), SendError>) -> DeliveryOutcome {
        match result {
            Ok(()) => DeliveryOutcome::Sent,
            Err(e) if e.permanent => DeliveryOutcome::Failed(e.message),
            Err(e) if u32::try_from(delivery.attempts).unwrap_or(u32::MAX) >= self.max_attempts => {
                DeliveryOutcome::Failed(format!("{} (gave up after {} attempts)", e.message, delivery.attempts))
            }
            Err(e) => {
                let wait = retry_after(delivery.attempts);
                let wait = chrono::Duration::from_std(wait).unwrap_or_else(|_| chrono::Duration::minutes(10));
                DeliveryOutcome::Retry(e.message, Utc::now() + wait)
            }
        }
    }

    /// Sends due deliveries every `interval` until `stop`.
    pub async fn run(self, store: Store, interval: Duration, stop: CancellationToken) {
        loop {
            if let Err(e) = self.send_due(&store).await {
                tracing::warn!(error = %e, "alerts: reading the notification queue failed; trying again next round");
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// The wait after attempt `attempts` failed.
pub fn retry_after(attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    FIRST_RETRY.saturating_mul(2u32.saturating_pow(doublings)).min(LONGEST_RETRY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(retry_after(1), Duration::from_secs(5));
        assert_eq!(retry_after(2), Duration::from_secs(10));
        assert_eq!(retry_after(4), Duration::from_secs(40));
        assert_eq!(retry_after(9), LONGEST_RETRY);
        assert_eq!(retry_after(1000), LONGEST_RETRY);
    }
}
