//! The `[[device]]` keys of an HTTP terminal (`kind = "hikvision"` or `"dahua"`), their checks, and the password
//! (given inline, in a file, or in an environment variable).

use std::time::Duration;

use serde::Deserialize;

use super::digest::ClientOptions;
use super::session::SessionConfig;
use crate::config::DeviceConfig;

/// The settings of a Hikvision or Dahua terminal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TerminalSettings {
    /// `http://host[:port]` or `https://host[:port]`.
    pub url: String,
    /// The device account (an operator with event-search rights is enough).
    #[serde(default = "default_user")]
    pub user: String,
    /// The password itself. Give exactly one of `password`, `password_file`, `password_env`.
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (its first line).
    #[serde(default)]
    pub password_file: Option<String>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// How often the event history is read even while the realtime stream is up (a backstop; a read also follows
    /// every start and every stream drop).
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// Keep the device's realtime event stream open.
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// Events asked for per history page (the device may return fewer).
    #[serde(default)]
    pub page_size: Option<u32>,
    /// Bound on connecting and on each request.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// A clock further off than this raises `clock_drift`.
    #[serde(default = "default_max_drift")]
    pub max_clock_drift_secs: u64,
    /// A history read starts this long before the cursor's time (events the device stored late are still found).
    #[serde(default = "default_overlap_secs")]
    pub overlap_secs: u64,
    /// Reconnect the stream when nothing (not even a heartbeat) arrived for this long.
    #[serde(default)]
    pub stream_idle_secs: Option<u64>,
    /// After refused credentials, wait this long before trying again (terminals lock accounts after a few failures).
    #[serde(default = "default_auth_retry_secs")]
    pub auth_retry_secs: u64,
    /// Accept a self-signed certificate (HTTPS only).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// PEM file of the CA that signed the device's certificate (HTTPS only).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// Dahua only: `CreateTime` holds the device's wall-clock time written as if it were UTC (older firmware);
    /// `CreateTimeRealUTC`, when sent, is taken as true UTC either way.
    #[serde(default)]
    pub epoch_is_local: bool,
}

fn default_user() -> String {
    "admin".into()
}

fn default_poll_secs() -> u64 {
    300
}

fn default_true() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_max_drift() -> u64 {
    60
}

fn default_overlap_secs() -> u64 {
    60
}

fn default_auth_retry_secs() -> u64 {
    300
}

/// Everything wrong with the settings, as `(key, message)`.
pub fn check(s: &TerminalSettings, kind: &str) -> Vec<(&'static str, String)> {
    let mut wrong = Vec::new();
    match reqwest::Url::parse(&s.url) {
        Ok(url) if !matches!(url.scheme(), "http" | "https") => {
            wrong.push(("url", format!("{:?} is not an http:// or https:// URL", s.url)));
        }
        Ok(url) if url.host_str().is_none_or(str::is_empty) => wrong.push(("url", format!("{:?} has no host", s.url))),
        Ok(url) if url.path() != "/" || url.query().is_some() => {
            wrong.push(("url", format!("{:?}: give only scheme, host and port (no path)", s.url)));
        }
        Ok(_) => {}
        Err(e) => wrong.push(("url", format!("{:?} is not a URL: {e}", s.url))),
    }
    let sources = [s.password.is_some(), s.password_file.is_some(), s.password_env.is_some()];
    if sources.iter().filter(|given| **given).count() != 1 {
        wrong.push(("password", "give exactly one of password, password_file, password_env".into()));
    } else if let Some(file) = &s.password_file {
        if let Err(e) = std::fs::read_to_string(file) {
            wrong.push(("password_file", format!("{file}: {e}")));
        }
    } else if s.password_env.as_deref().is_some_and(str::is_empty) {
        // The variable itself is read when the agent starts (it may be set only in the service's environment).
        wrong.push(("password_env", "is empty".into()));
    }
    if s.user.is_empty() {
        wrong.push(("user", "is empty".into()));
    }
    if !(1..=86_400).contains(&s.poll_interval_secs) {
        wrong.push(("poll_interval_secs", format!("{} is outside 1..=86400", s.poll_interval_secs)));
    }
    if !(100..=120_000).contains(&s.timeout_ms) {
        wrong.push(("timeout_ms", format!("{} is outside 100..=120000", s.timeout_ms)));
    }
    if let Some(size) = s.page_size {
        if !(1..=1_000).contains(&size) {
            wrong.push(("page_size", format!("{size} is outside 1..=1000")));
        }
    }
    if s.overlap_secs > 86_400 {
        wrong.push(("overlap_secs", format!("{} is over 86400", s.overlap_secs)));
    }
    if let Some(idle) = s.stream_idle_secs {
        if !(1..=86_400).contains(&idle) {
            wrong.push(("stream_idle_secs", format!("{idle} is outside 1..=86400")));
        }
    }
    if !(1..=86_400).contains(&s.auth_retry_secs) {
        wrong.push(("auth_retry_secs", format!("{} is outside 1..=86400", s.auth_retry_secs)));
    }
    if let Some(file) = &s.ca_file {
        if let Err(e) = std::fs::read(file) {
            wrong.push(("ca_file", format!("{file}: {e}")));
        }
    }
    if s.epoch_is_local && kind != "dahua" {
        wrong.push(("epoch_is_local", "applies to kind \"dahua\" only".into()));
    }
    wrong
}

/// The password from wherever the settings say it is.
///
/// # Errors
/// A message naming the file or variable that could not be read.
pub fn password(s: &TerminalSettings) -> Result<String, String> {
    if let Some(password) = &s.password {
        return Ok(password.clone());
    }
    if let Some(file) = &s.password_file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("password_file {file}: {e}"))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Some(name) = &s.password_env {
        return std::env::var(name).map_err(|e| format!("password_env {name}: {e}"));
    }
    Err("no password given".into())
}

/// The HTTP client options of a checked configuration.
///
/// # Errors
/// The first problem, as text.
pub fn client_options(s: &TerminalSettings) -> Result<ClientOptions, String> {
    let base_url = reqwest::Url::parse(&s.url).map_err(|e| format!("url: {e}"))?;
    let ca_pem = match &s.ca_file {
        Some(file) => Some(std::fs::read(file).map_err(|e| format!("ca_file {file}: {e}"))?),
        None => None,
    };
    Ok(ClientOptions {
        base_url,
        user: s.user.clone(),
        password: password(s)?,
        timeout: Duration::from_millis(s.timeout_ms),
        accept_invalid_certs: s.accept_invalid_certs,
        ca_pem,
    })
}

/// The session settings shared by both kinds.
pub fn session_config(device: &DeviceConfig, s: &TerminalSettings) -> SessionConfig {
    SessionConfig {
        serial: device.serial.clone(),
        zone: device.time_zone,
        poll_interval: Duration::from_secs(s.poll_interval_secs.max(1)),
        max_clock_drift_secs: s.max_clock_drift_secs,
        overlap: Duration::from_secs(s.overlap_secs),
        auth_retry: Duration::from_secs(s.auth_retry_secs.max(1)),
        realtime: s.realtime,
    }
}
