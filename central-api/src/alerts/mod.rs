//! Alerts on the fleet: rules per site and fault kind ([`rules`]), evaluated against the inventory ([`evaluate`],
//! pure) by the loop every replica of `serve` runs ([`engine`]), which raises an alert once its condition has held
//! for the rule's time and clears it when the condition stops; each raise and clear is notified by webhook and
//! e-mail ([`notify`]) through a queue of deliveries retried with backoff ([`sender`]).
//!
//! Configuration: the `[alerts]` table ([`AlertsConfig`]), with the SMTP server in `[alerts.smtp]`.

pub mod engine;
pub mod evaluate;
pub mod notify;
pub mod rules;
pub mod sender;

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// The `[alerts]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Evaluate rules and send notifications in `serve`.
    pub enabled: bool,
    /// How often rules are evaluated and due notifications sent.
    pub interval_ms: u64,
    /// How long one webhook request may take.
    pub webhook_timeout_secs: u64,
    /// Attempts before a notification is given up (backoff doubles from 5 s up to 10 min).
    pub max_attempts: u32,
    /// The SMTP server for e-mail notifications; without it, e-mail deliveries fail with that reason.
    pub smtp: Option<SmtpConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self { enabled: true, interval_ms: 15_000, webhook_timeout_secs: 10, max_attempts: 10, smtp: None }
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only to a server on this machine (loopback).
    None,
    /// STARTTLS (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465 by default).
    Tls,
}

/// `[alerts.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// The protocol's default when absent (25 for `none`, 587, 465).
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Attendance alerts <alerts@example.com>`.
    pub from: String,
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

fn default_smtp_timeout() -> u64 {
    15
}

impl AlertsConfig {
    /// Checks the values `serve` relies on.
    ///
    /// # Errors
    /// A message naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.interval_ms == 0 || self.webhook_timeout_secs == 0 || self.max_attempts == 0 {
            return Err(
                "alerts.interval_ms, alerts.webhook_timeout_secs and alerts.max_attempts must be at least 1".into()
            );
        }
        if let Some(smtp) = &self.smtp {
            if smtp.tls == SmtpTls::None && !is_loopback(&smtp.host) {
                return Err(format!(
                    "alerts.smtp.tls = \"none\" is only allowed for a server on this machine, not {:?}: use starttls or tls",
                    smtp.host
                ));
            }
            if smtp.username.is_some() != smtp.password.is_some() {
                return Err("alerts.smtp.username and alerts.smtp.password go together".into());
            }
            notify::Mailer::new(smtp)?;
        }
        Ok(())
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Runs the evaluator and the sender until `stop`.
pub async fn run(store: Store, config: AlertsConfig, stop: CancellationToken) {
    let interval = Duration::from_millis(config.interval_ms);
    let sender = match sender::Sender::new(&config) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(error = %e, "alerts: cannot start the notification sender; alerts are off");
            return;
        }
    };
    let evaluating = tokio::spawn(engine::run(store.clone(), interval, stop.clone()));
    sender.run(store, interval, stop).await;
    if let Err(e) = evaluating.await {
        tracing::error!(error = %e, "alerts: the evaluator panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_only_on_loopback() {
        let smtp = |host: &str, tls| SmtpConfig {
            host: host.into(),
            port: Some(2525),
            tls,
            username: None,
            password: None,
            from: "alerts@example.com".into(),
            timeout_secs: 5,
        };
        let config = |s| AlertsConfig { smtp: Some(s), ..AlertsConfig::default() };
        assert!(config(smtp("127.0.0.1", SmtpTls::None)).check().is_ok());
        assert!(config(smtp("localhost", SmtpTls::None)).check().is_ok());
        let err = config(smtp("mail.example.com", SmtpTls::None)).check().unwrap_err();
        assert!(err.contains("alerts.smtp.tls"), "{err}");
        assert!(config(smtp("mail.example.com", SmtpTls::Starttls)).check().is_ok());
        let mut bad_from = smtp("127.0.0.1", SmtpTls::None);
        bad_from.from = "nobody".into();
        assert!(config(bad_from).check().unwrap_err().contains("alerts.smtp.from"));
    }
}
