//! Alert rules: one per site and fault kind, with the kind's parameters and where to notify. [`check_rule`] is the
//! one check the API and the dashboard share; its refusals name the field.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A device has not answered for `for_minutes`.
    DeviceUnreachable,
    /// No status from an agent for `for_minutes`.
    AgentNotSeen,
    /// A device's clock is more than `threshold` seconds off the agent's.
    ClockDrift,
    /// An agent's buffer holds at least `threshold` (a share, 0 to 1) of `buffer_limit` punches, or is full.
    BufferHigh,
    /// An agent holds more than `threshold` (default 0) dead letters.
    DeadLetters,
    /// An agent reports a device serial central does not know, a push from an unknown serial, or a device that
    /// reports another serial than the one configured.
    UnknownSerial,
    /// A device holds more than `threshold` (default 0) records beyond those central stored from it.
    RecordCountMismatch,
}

impl RuleKind {
    pub const ALL: [RuleKind; 7] = [
        Self::DeviceUnreachable,
        Self::AgentNotSeen,
        Self::ClockDrift,
        Self::BufferHigh,
        Self::DeadLetters,
        Self::UnknownSerial,
        Self::RecordCountMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceUnreachable => "device_unreachable",
            Self::AgentNotSeen => "agent_not_seen",
            Self::ClockDrift => "clock_drift",
            Self::BufferHigh => "buffer_high",
            Self::DeadLetters => "dead_letters",
            Self::UnknownSerial => "unknown_serial",
            Self::RecordCountMismatch => "record_count_mismatch",
        }
    }

    /// Parses a kind's name.
    ///
    /// # Errors
    /// A message listing the kinds.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|k| k.as_str()).collect();
            format!("{name:?} is not one of {}", names.join(", "))
        })
    }

    /// How long the condition must hold before the alert is raised, when the rule does not say.
    fn default_minutes(self) -> f64 {
        match self {
            Self::DeviceUnreachable => 5.0,
            Self::AgentNotSeen => 10.0,
            Self::RecordCountMismatch => 30.0,
            _ => 0.0,
        }
    }

    /// What `threshold` means for the kind, and its default (`None`: required); `Err`: the kind takes none.
    fn threshold(self) -> Result<(&'static str, Option<f64>), ()> {
        match self {
            Self::ClockDrift => Ok(("seconds of drift, more than 0", None)),
            Self::BufferHigh => Ok(("a share of buffer_limit, above 0 and at most 1", None)),
            Self::DeadLetters => Ok(("dead letters tolerated, 0 or more", Some(0.0))),
            Self::RecordCountMismatch => Ok(("records tolerated, 0 or more", Some(0.0))),
            Self::DeviceUnreachable | Self::AgentNotSeen | Self::UnknownSerial => Err(()),
        }
    }

    /// Whether the rule is about agents (else devices).
    pub fn about_agents(self) -> bool {
        matches!(self, Self::AgentNotSeen | Self::BufferHigh | Self::DeadLetters)
    }
}

/// A rule as stored and listed. The webhook secret is never listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AlertRule {
    pub id: i64,
    pub site_id: String,
    pub kind: RuleKind,
    /// How long the condition must hold before the alert is raised.
    pub for_minutes: f64,
    /// The kind's limit (seconds of drift, share of the buffer, dead letters or records tolerated).
    pub threshold: Option<f64>,
    /// buffer_high: the buffer's limit in punches.
    pub buffer_limit: Option<i64>,
    pub webhook_url: Option<String>,
    #[serde(skip)]
    pub webhook_secret: Option<String>,
    pub email_to: Vec<String>,
    /// Raises notified per rolling hour; further raises (and their clears) are recorded, not sent.
    pub max_per_hour: i64,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl AlertRule {
    /// Seconds the condition must hold.
    pub fn for_secs(&self) -> i64 {
        minutes_to_secs(self.for_minutes)
    }
}

pub(crate) fn minutes_to_secs(minutes: f64) -> i64 {
    // Checked to be within 0..=MAX_MINUTES, so the product fits.
    #[allow(clippy::cast_possible_truncation)]
    let secs = (minutes * 60.0).round() as i64;
    secs
}

/// A rule's settings as sent to create or change it: anything left out keeps its value (or its default on
/// creation). `webhook_url`, `webhook_secret`, `email_to`, `threshold` and `buffer_limit` may be `null` to remove.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleChange {
    /// How long (minutes, fractions allowed) the condition must hold before the alert is raised.
    pub for_minutes: Option<f64>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, nullable)]
    pub threshold: Option<Option<f64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, nullable)]
    pub buffer_limit: Option<Option<i64>>,
    /// `http://` or `https://`; notified with a JSON body signed by HMAC-SHA256 under the rule's secret.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub webhook_url: Option<Option<String>>,
    /// 16 to 256 characters; generated (and shown once) when a webhook is set without one.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub webhook_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Vec<String>>, nullable)]
    pub email_to: Option<Option<Vec<String>>>,
    /// 1 to 1000 (default 12).
    pub max_per_hour: Option<i64>,
    pub enabled: Option<bool>,
}

/// A field given as `null` is `Some(None)`; absent is `None`.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A new rule: its site and kind, then its settings.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub site_id: String,
    pub kind: String,
    pub for_minutes: Option<f64>,
    pub threshold: Option<f64>,
    pub buffer_limit: Option<i64>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub email_to: Option<Vec<String>>,
    pub max_per_hour: Option<i64>,
    pub enabled: Option<bool>,
}

impl NewRule {
    /// The kind, checked, and the settings as a change of nothing.
    ///
    /// # Errors
    /// A [`RuleError`] on `kind`.
    pub fn split(self) -> Result<(String, RuleKind, RuleChange), RuleError> {
        let kind = RuleKind::parse(&self.kind).map_err(|m| RuleError::new("kind", m))?;
        Ok((
            self.site_id,
            kind,
            RuleChange {
                for_minutes: self.for_minutes,
                threshold: self.threshold.map(Some),
                buffer_limit: self.buffer_limit.map(Some),
                webhook_url: self.webhook_url.map(Some),
                webhook_secret: self.webhook_secret.map(Some),
                email_to: self.email_to.map(Some),
                max_per_hour: self.max_per_hour,
                enabled: self.enabled,
            },
        ))
    }
}

/// A refused rule: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

impl RuleError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// The checked settings of a rule, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSettings {
    pub for_minutes: f64,
    pub threshold: Option<f64>,
    pub buffer_limit: Option<i64>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub email_to: Vec<String>,
    pub max_per_hour: i64,
    pub enabled: bool,
    /// The secret was generated here: show it once.
    pub generated_secret: bool,
}

/// Longest wait a rule may ask for: a week.
pub const MAX_MINUTES: f64 = 7.0 * 24.0 * 60.0;
/// Most e-mail recipients per rule.
pub const MAX_RECIPIENTS: usize = 20;
/// Default raises notified per hour.
pub const DEFAULT_MAX_PER_HOUR: i64 = 12;

/// The settings `change` gives a rule of `kind` that had `old` (`None`: a new rule), checked.
///
/// # Errors
/// The first wrong field, named.
pub fn check_rule(kind: RuleKind, old: Option<&AlertRule>, change: &RuleChange) -> Result<RuleSettings, RuleError> {
    let for_minutes = change.for_minutes.or(old.map(|o| o.for_minutes)).unwrap_or_else(|| kind.default_minutes());
    if !for_minutes.is_finite() || !(0.0..=MAX_MINUTES).contains(&for_minutes) {
        return Err(RuleError::new("for_minutes", format!("must be between 0 and {MAX_MINUTES}")));
    }
    if kind == RuleKind::AgentNotSeen && minutes_to_secs(for_minutes) < 1 {
        return Err(RuleError::new("for_minutes", "must be more than 0 for agent_not_seen"));
    }

    let threshold = pick(&change.threshold, old.map(|o| o.threshold));
    let threshold = match (kind.threshold(), threshold) {
        (Err(()), None) => None,
        (Err(()), Some(_)) => {
            return Err(RuleError::new("threshold", format!("{} takes no threshold", kind.as_str())));
        }
        (Ok((what, None)), None) => return Err(RuleError::new("threshold", format!("is required: {what}"))),
        (Ok((_, default)), None) => default,
        (Ok((what, _)), Some(t)) => {
            let ok = t.is_finite()
                && match kind {
                    RuleKind::ClockDrift => t > 0.0 && t <= 1.0e7,
                    RuleKind::BufferHigh => t > 0.0 && t <= 1.0,
                    _ => (0.0..=1.0e12).contains(&t),
                };
            if !ok {
                return Err(RuleError::new("threshold", format!("{t} is not {what}")));
            }
            Some(t)
        }
    };

    let buffer_limit = pick(&change.buffer_limit, old.map(|o| o.buffer_limit));
    match (kind, buffer_limit) {
        (RuleKind::BufferHigh, None) => {
            return Err(RuleError::new("buffer_limit", "is required for buffer_high: the buffer's limit in punches"))
        }
        (RuleKind::BufferHigh, Some(n)) if n < 1 => {
            return Err(RuleError::new("buffer_limit", format!("{n} is not a positive number of punches")))
        }
        (RuleKind::BufferHigh, _) | (_, None) => {}
        (_, Some(_)) => return Err(RuleError::new("buffer_limit", format!("{} takes no buffer_limit", kind.as_str()))),
    }

    let webhook_url = pick(&change.webhook_url, old.map(|o| o.webhook_url.clone()))
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if let Some(url) = &webhook_url {
        check_url(url)?;
    }
    let given_secret = pick(&change.webhook_secret, old.map(|o| o.webhook_secret.clone()));
    let (webhook_secret, generated_secret) = match (&webhook_url, given_secret) {
        (None, _) => (None, false),
        (Some(_), Some(secret)) => {
            let n = secret.chars().count();
            if !(16..=256).contains(&n) {
                return Err(RuleError::new("webhook_secret", "must be 16 to 256 characters"));
            }
            (Some(secret), false)
        }
        (Some(_), None) => (Some(new_secret()), true),
    };

    let email_to = pick(&change.email_to, old.map(|o| Some(o.email_to.clone()))).unwrap_or_default();
    if email_to.len() > MAX_RECIPIENTS {
        return Err(RuleError::new("email_to", format!("at most {MAX_RECIPIENTS} addresses")));
    }
    let mut addresses = Vec::with_capacity(email_to.len());
    for address in &email_to {
        let address = address.trim();
        if address.len() > 254 || lettre::Address::from_str(address).is_err() {
            return Err(RuleError::new("email_to", format!("{address:?} is not an e-mail address")));
        }
        addresses.push(address.to_owned());
    }
    if webhook_url.is_none() && addresses.is_empty() {
        return Err(RuleError::new("webhook_url", "a rule needs a webhook_url or email_to to notify"));
    }

    let max_per_hour = change.max_per_hour.or(old.map(|o| o.max_per_hour)).unwrap_or(DEFAULT_MAX_PER_HOUR);
    if !(1..=1000).contains(&max_per_hour) {
        return Err(RuleError::new("max_per_hour", format!("{max_per_hour} is not between 1 and 1000")));
    }
    let enabled = change.enabled.or(old.map(|o| o.enabled)).unwrap_or(true);
    Ok(RuleSettings {
        for_minutes,
        threshold,
        buffer_limit,
        webhook_url,
        webhook_secret,
        email_to: addresses,
        max_per_hour,
        enabled,
        generated_secret,
    })
}

/// The changed value when the field was sent (`null` removes), else the old one.
fn pick<T: Clone>(change: &Option<Option<T>>, old: Option<Option<T>>) -> Option<T> {
    match change {
        Some(value) => value.clone(),
        None => old.flatten(),
    }
}

fn check_url(url: &str) -> Result<(), RuleError> {
    if url.len() > 2000 {
        return Err(RuleError::new("webhook_url", "is longer than 2000 characters"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| RuleError::new("webhook_url", format!("{url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(RuleError::new("webhook_url", format!("{url:?} is not an http:// or https:// URL with a host")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(RuleError::new("webhook_url", "must not carry credentials; the body is signed instead"));
    }
    Ok(())
}

/// 32 random bytes, hex.
fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(json: serde_json::Value) -> RuleChange {
        serde_json::from_value(json).expect("a change")
    }

    fn refused(kind: RuleKind, json: serde_json::Value) -> &'static str {
        check_rule(kind, None, &change(json)).expect_err("refused").field
    }

    #[test]
    fn defaults_and_generated_secret() {
        let s = check_rule(
            RuleKind::DeviceUnreachable,
            None,
            &change(serde_json::json!({"webhook_url": "http://127.0.0.1:9/x"})),
        )
        .expect("accepted");
        assert_eq!((s.for_minutes, s.threshold, s.max_per_hour, s.enabled), (5.0, None, 12, true));
        assert!(s.generated_secret);
        assert_eq!(s.webhook_secret.as_deref().map(str::len), Some(64));
        let s = check_rule(RuleKind::DeadLetters, None, &change(serde_json::json!({"email_to": ["ops@example.com"]})))
            .expect("accepted");
        assert_eq!((s.threshold, s.webhook_secret), (Some(0.0), None));
    }

    #[test]
    fn each_wrong_field_is_named() {
        use serde_json::json;
        let hook = "http://127.0.0.1:9/x";
        assert_eq!(refused(RuleKind::DeviceUnreachable, json!({})), "webhook_url");
        assert_eq!(refused(RuleKind::DeviceUnreachable, json!({"webhook_url": "ftp://x/y"})), "webhook_url");
        assert_eq!(refused(RuleKind::DeviceUnreachable, json!({"webhook_url": "http://u:p@x/y"})), "webhook_url");
        assert_eq!(refused(RuleKind::DeviceUnreachable, json!({"webhook_url": hook, "threshold": 3})), "threshold");
        assert_eq!(refused(RuleKind::ClockDrift, json!({"webhook_url": hook})), "threshold");
        assert_eq!(refused(RuleKind::ClockDrift, json!({"webhook_url": hook, "threshold": -1})), "threshold");
        assert_eq!(refused(RuleKind::BufferHigh, json!({"webhook_url": hook, "threshold": 1.5})), "threshold");
        assert_eq!(refused(RuleKind::BufferHigh, json!({"webhook_url": hook, "threshold": 0.8})), "buffer_limit");
        assert_eq!(refused(RuleKind::DeadLetters, json!({"webhook_url": hook, "buffer_limit": 10})), "buffer_limit");
        assert_eq!(refused(RuleKind::AgentNotSeen, json!({"webhook_url": hook, "for_minutes": 0})), "for_minutes");
        assert_eq!(
            refused(RuleKind::DeviceUnreachable, json!({"webhook_url": hook, "for_minutes": -1})),
            "for_minutes"
        );
        assert_eq!(
            refused(RuleKind::DeviceUnreachable, json!({"webhook_url": hook, "webhook_secret": "short"})),
            "webhook_secret"
        );
        assert_eq!(refused(RuleKind::DeviceUnreachable, json!({"email_to": ["not an address"]})), "email_to");
        assert_eq!(
            refused(RuleKind::DeviceUnreachable, json!({"webhook_url": hook, "max_per_hour": 0})),
            "max_per_hour"
        );
        assert_eq!(
            NewRule {
                kind: "volcano".into(),
                ..serde_json::from_value(json!({"site_id": "A", "kind": "x"})).expect("rule")
            }
            .split()
            .expect_err("refused")
            .field,
            "kind"
        );
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_null_removes() {
        let first = check_rule(
            RuleKind::ClockDrift,
            None,
            &change(serde_json::json!({"threshold": 30, "webhook_url": "https://hooks.example/x", "webhook_secret": "0123456789abcdef", "email_to": ["a@example.com"]})),
        )
        .expect("accepted");
        let rule = AlertRule {
            id: 1,
            site_id: "A".into(),
            kind: RuleKind::ClockDrift,
            for_minutes: first.for_minutes,
            threshold: first.threshold,
            buffer_limit: None,
            webhook_url: first.webhook_url.clone(),
            webhook_secret: first.webhook_secret.clone(),
            email_to: first.email_to.clone(),
            max_per_hour: first.max_per_hour,
            enabled: true,
            created_by: "root".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let second = check_rule(RuleKind::ClockDrift, Some(&rule), &change(serde_json::json!({"webhook_url": null})))
            .expect("accepted");
        assert_eq!((second.threshold, second.webhook_url, second.webhook_secret), (Some(30.0), None, None));
        assert_eq!(second.email_to, vec!["a@example.com".to_owned()]);
        let third = check_rule(RuleKind::ClockDrift, Some(&rule), &change(serde_json::json!({"enabled": false})))
            .expect("accepted");
        assert_eq!(
            (third.webhook_secret.as_deref(), third.generated_secret, third.enabled),
            (Some("0123456789abcdef"), false, false)
        );
    }
}
