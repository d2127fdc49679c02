//! What a notification says, and how it is sent: a webhook (a JSON body POSTed with an HMAC-SHA256 signature) or an
//! e-mail through the configured SMTP server (lettre).
//!
//! Webhook headers: `X-Alert-Delivery` (the delivery's id: a receiver that sees it twice, after a retry, drops the
//! second), `X-Alert-Event` (`raised` or `cleared`), `X-Alert-Timestamp` (Unix seconds) and `X-Alert-Signature:
//! sha256=<hex>`, the HMAC-SHA256 under the rule's secret of `<timestamp>.<body>`. A receiver recomputes it over the
//! raw body, compares in constant time, and refuses old timestamps.

use std::str::FromStr;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};
use serde::Serialize;
use sha2::Sha256;

use super::{SmtpConfig, SmtpTls};
use crate::store::alerts::AlertEvent;

/// The JSON body of a webhook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Payload<'a> {
    /// `raised` or `cleared`.
    pub event: &'a str,
    pub event_id: i64,
    pub delivery_id: i64,
    pub rule_id: i64,
    pub site_id: &'a str,
    /// The rule's kind: `device_unreachable`, `agent_not_seen`, ...
    pub kind: &'a str,
    /// `device:<serial>` or `agent:<id>`.
    pub subject: &'a str,
    pub message: &'a str,
    /// Since when the condition held.
    pub since: chrono::DateTime<chrono::Utc>,
    /// When it was raised or cleared.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl<'a> Payload<'a> {
    pub fn of(event: &'a AlertEvent, delivery_id: i64) -> Self {
        Self {
            event: &event.event,
            event_id: event.id,
            delivery_id,
            rule_id: event.rule_id,
            site_id: &event.site_id,
            kind: &event.kind,
            subject: &event.subject,
            message: &event.message,
            since: event.since,
            at: event.at,
        }
    }
}

/// Why a notification was not sent: `permanent` ones are not retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    pub permanent: bool,
}

impl SendError {
    fn retry(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: false }
    }
    fn permanent(message: impl Into<String>) -> Self {
        Self { message: message.into(), permanent: true }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 under `secret` over `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// An HTTP client for webhooks: bounded time, no redirects (a signed body is not re-sent elsewhere).
///
/// # Errors
/// When the TLS backend cannot start.
pub fn webhook_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("attendance-central-api/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// POSTs the event to `url`, signed with `secret`.
///
/// # Errors
/// A [`SendError`]: permanent for a 4xx answer (but 408 and 429) or a missing secret, else retried.
pub async fn send_webhook(
    client: &reqwest::Client,
    url: &str,
    secret: Option<&str>,
    event: &AlertEvent,
    delivery_id: i64,
) -> Result<(), SendError> {
    let secret = secret.ok_or_else(|| SendError::permanent("the rule was deleted or has no webhook secret"))?;
    let body = serde_json::to_vec(&Payload::of(event, delivery_id))
        .map_err(|e| SendError::permanent(format!("cannot encode the notification: {e}")))?;
    let timestamp = chrono::Utc::now().timestamp();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Alert-Delivery", delivery_id.to_string())
        .header("X-Alert-Event", event.event.as_str())
        .header("X-Alert-Timestamp", timestamp.to_string())
        .header("X-Alert-Signature", signature(secret.as_bytes(), timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| SendError::retry(format!("POST {url}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else if status.is_client_error() && status != reqwest::StatusCode::REQUEST_TIMEOUT && status.as_u16() != 429 {
        Err(SendError::permanent(format!("POST {url}: the receiver answered {status}")))
    } else {
        Err(SendError::retry(format!("POST {url}: the receiver answered {status}")))
    }
}

/// Sends alert e-mails through one SMTP server. lettre's blocking transport runs on tokio's blocking pool: its
/// rustls build needs no second TLS stack, and alerts are few.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `config`.
    ///
    /// # Errors
    /// A message naming the setting that is wrong.
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let from = Mailbox::from_str(&config.from).map_err(|e| format!("alerts.smtp.from {:?}: {e}", config.from))?;
        let builder = match config.tls {
            SmtpTls::None => SmtpTransport::builder_dangerous(&config.host),
            SmtpTls::Starttls => SmtpTransport::starttls_relay(&config.host)
                .map_err(|e| format!("alerts.smtp.host {:?}: {e}", config.host))?,
            SmtpTls::Tls => {
                SmtpTransport::relay(&config.host).map_err(|e| format!("alerts.smtp.host {:?}: {e}", config.host))?
            }
        };
        let mut builder = builder.timeout(Some(Duration::from_secs(config.timeout_secs)));
        if let Some(port) = config.port {
            builder = builder.port(port);
        }
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Self { transport: builder.build(), from })
    }

    /// Sends the event to the comma-separated `recipients`.
    ///
    /// # Errors
    /// A [`SendError`]: permanent for a refused address or a permanent SMTP answer, else retried.
    pub async fn send(&self, recipients: &str, event: &AlertEvent, delivery_id: i64) -> Result<(), SendError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(event))
            .message_id(Some(format!("<alert-{delivery_id}-{}@attendance-central>", event.id)))
            .header(ContentType::TEXT_PLAIN);
        for address in recipients.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let mailbox =
                Mailbox::from_str(address).map_err(|e| SendError::permanent(format!("recipient {address:?}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .body(body(event, delivery_id))
            .map_err(|e| SendError::permanent(format!("cannot build the e-mail: {e}")))?;
        let transport = self.transport.clone();
        let sent = tokio::task::spawn_blocking(move || transport.send(&message))
            .await
            .map_err(|e| SendError::retry(format!("SMTP: the sending task failed: {e}")))?;
        sent.map(|_| ()).map_err(|e| {
            if e.is_permanent() {
                SendError::permanent(format!("SMTP: {e}"))
            } else {
                SendError::retry(format!("SMTP: {e}"))
            }
        })
    }
}

/// `[attendance] RAISED device_unreachable: device:SIM1 (site A)`.
pub fn subject(event: &AlertEvent) -> String {
    format!("[attendance] {} {}: {} (site {})", event.event.to_uppercase(), event.kind, event.subject, event.site_id)
}

fn body(event: &AlertEvent, delivery_id: i64) -> String {
    format!(
        "{message}\n\nAlert: {kind} {event} for {subject} at site {site}\nCondition since: {since}\n\
         {event_cap} at: {at}\nRule: {rule}\nEvent: {id}, delivery {delivery_id}\n",
        message = event.message,
        kind = event.kind,
        event = event.event,
        subject = event.subject,
        site = event.site_id,
        since = event.since.to_rfc3339(),
        event_cap = if event.event == "raised" { "Raised" } else { "Cleared" },
        at = event.at.to_rfc3339(),
        rule = event.rule_id,
        id = event.id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // The signed bytes are exactly "<timestamp>.<body>", in one piece.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"1700000000.{\"a\":1}");
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature(b"Jefe", 1_700_000_000, b"{\"a\":1}"), expected);
        assert_ne!(signature(b"Jeff", 1_700_000_000, b"{\"a\":1}"), expected);
        assert_ne!(signature(b"Jefe", 1_700_000_001, b"{\"a\":1}"), expected);
    }

    #[test]
    fn rfc_4231_vector() {
        // RFC 4231 test case 2 pins the HMAC-SHA256 primitive the signature uses.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
