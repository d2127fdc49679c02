//! Configuration: embedded defaults, then an optional TOML file, then environment variables.
//!
//! Environment overrides use the prefix `CENTRAL_API_`; nested keys are joined with a double underscore
//! (`CENTRAL_API_MQTT__HOST=broker`). Values are read as TOML values when they parse as one (`8`, `true`) and as plain
//! strings otherwise. `DATABASE_URL` is honoured too, below `CENTRAL_API_DATABASE_URL`.
//!
//! Every table refuses unknown keys, so a typo is an error naming the key and the file (or the variable), never a
//! silently ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "CENTRAL_API_";
/// Environment variable naming the configuration file (the same as `--config`); not a configuration key.
pub const CONFIG_FILE_ENV: &str = "CENTRAL_API_CONFIG";
/// Variables with the prefix that belong to the command line, not to the configuration.
pub const CLI_ENV: [&str; 2] = [CONFIG_FILE_ENV, "CENTRAL_API_LOG_FORMAT"];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("configuration{from_file} with environment overrides {vars}: {message}")]
    Env { from_file: String, vars: String, message: String },
    #[error("configuration{from_file}: {message}")]
    Invalid { from_file: String, message: String },
}

/// The whole configuration of a central-api process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for local state; the default SQLite database lives here.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; when absent, SQLite at `<data_dir>/central.db`.
    pub database_url: Option<String>,
    /// Largest number of database connections in the pool.
    pub database_max_connections: u32,
    /// Address the HTTP(S) API listens on.
    pub listen: SocketAddr,
    /// Serve plain HTTP on a non-loopback address. Off by default: tokens would cross the network in clear.
    pub allow_plain_http: bool,
    /// How long a verified agent record is cached; a revoked token stops working at most this long after revocation.
    pub auth_cache_ttl_secs: u64,
    /// Apply pending migrations when a command starts (`migrate` always does).
    pub auto_migrate: bool,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// The URL browsers and agents use to reach this service (`https://attendance.example.com`), when it is not
    /// this process's own listener, e.g. behind a TLS-terminating proxy. An `https://` URL (or `[tls]`) makes the
    /// session cookie `Secure` and sends `Strict-Transport-Security`.
    pub public_url: Option<String>,
    /// Consume punches and status over MQTT.
    pub mqtt: Option<MqttConfig>,
    /// The attendance worker and scheduled jobs run by `serve`.
    pub attendance: AttendanceConfig,
    /// The tracked-job runner run by `serve`.
    pub jobs: crate::jobs::JobsConfig,
    /// Alert rules evaluated and notified by `serve` (`[alerts]`, `[alerts.smtp]`).
    pub alerts: crate::alerts::AlertsConfig,
    /// Backups on the server (`[backup]`).
    pub backup: crate::backup::files::BackupConfig,
}

/// The attendance job layer inside `serve`: the incremental worker and the scheduled jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttendanceConfig {
    /// Run the incremental worker (recomputes the days ingest and admin changes mark).
    pub worker: bool,
    /// How often the worker looks for marked days when the queue was empty.
    pub poll_interval_ms: u64,
    /// Marked days claimed per transaction.
    pub claim_limit: u32,
    /// Run the scheduled jobs (close the day, sandwich rule).
    pub scheduler: bool,
    /// How often the "close the day" job runs: it finalises the days whose check-out window closed since its last
    /// run and marks absentees.
    pub close_day_interval_secs: u64,
    /// When (UTC, `HH:MM`) the daily sandwich job recomputes the last `sandwich_lookback_days` of every site.
    pub sandwich_at: String,
    pub sandwich_lookback_days: u32,
    /// How far back a change marks days for recomputation: an employee's past joining date, a shift, week-off rule,
    /// holiday or site setting changed for past days (at most 400). Older days need a reprocess job.
    pub backfill_days: u32,
}

impl Default for AttendanceConfig {
    fn default() -> Self {
        Self {
            worker: true,
            poll_interval_ms: 200,
            claim_limit: 500,
            scheduler: true,
            close_day_interval_secs: 900,
            sandwich_at: "02:00".to_owned(),
            sandwich_lookback_days: 7,
            backfill_days: 92,
        }
    }
}

impl AttendanceConfig {
    /// The daily sandwich job's time of day (UTC).
    ///
    /// # Errors
    /// A message naming the key when it is not `HH:MM`.
    pub fn sandwich_time(&self) -> Result<chrono::NaiveTime, String> {
        chrono::NaiveTime::parse_from_str(&self.sandwich_at, "%H:%M")
            .map_err(|e| format!("attendance.sandwich_at {:?} is not HH:MM: {e}", self.sandwich_at))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 8,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            allow_plain_http: false,
            auth_cache_ttl_secs: 5,
            auto_migrate: true,
            tls: None,
            public_url: None,
            mqtt: None,
            attendance: AttendanceConfig::default(),
            jobs: crate::jobs::JobsConfig::default(),
            alerts: crate::alerts::AlertsConfig::default(),
            backup: crate::backup::files::BackupConfig::default(),
        }
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// The MQTT consumer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// Topic prefix shared with the agents (see `protocol::Topics`).
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Shared-subscription group; replicas in one group split the punches between them.
    #[serde(default = "default_group")]
    pub group: String,
    /// Unique per replica; when absent, `central-<hostname>-<pid>`. A stable id lets a restarted replica resume its
    /// persistent session and receive again the messages it had not acknowledged.
    pub client_id: Option<String>,
    /// How long the broker keeps this replica's session (and its unacknowledged messages) after a disconnect.
    #[serde(default = "default_session_expiry")]
    pub session_expiry_secs: u32,
    #[serde(default = "default_keep_alive")]
    pub keep_alive_secs: u64,
    /// Batches processed at the same time.
    #[serde(default = "default_workers")]
    pub workers: usize,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS, trusting this CA (PEM) file.
    pub tls_ca_file: Option<PathBuf>,
    /// Also accept batches and statuses that carry no signed frame (agents of the previous release), warning once
    /// per agent. Off by default: on MQTT only a frame signed with the agent's key proves who sent a message.
    #[serde(default)]
    pub allow_unsigned: bool,
}

fn default_mqtt_port() -> u16 {
    1883
}
fn default_topic_prefix() -> String {
    "attendance".to_owned()
}
fn default_group() -> String {
    "central".to_owned()
}
fn default_session_expiry() -> u32 {
    3600
}
fn default_keep_alive() -> u64 {
    30
}
fn default_workers() -> usize {
    4
}

impl MqttConfig {
    /// The configured client id, or one derived from the host name and process id.
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| {
            let host = gethostname::gethostname().to_string_lossy().into_owned();
            let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect();
            format!("central-{host}-{}", std::process::id())
        })
    }
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Config {
    /// Loads defaults, then `file` (when given), then the process environment.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the file, the environment variable and the key that was wrong.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// As [`Config::load`] with an explicit environment, for tests.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, from_file) = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
                // Parse into the typed config first so the file's own mistakes are reported with its line and key.
                toml::from_str::<Config>(&text)
                    .map_err(|e| ConfigError::File { path: path.into(), message: e.to_string() })?;
                let table = toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::File { path: path.into(), message: e.to_string() })?;
                (table, format!(" from {}", path.display()))
            }
            None => (toml::Table::new(), String::new()),
        };

        let mut applied = Vec::new();
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        let explicit_db = env.iter().any(|(k, _)| k == "CENTRAL_API_DATABASE_URL");
        for (name, value) in &env {
            if CLI_ENV.contains(&name.as_str()) {
                continue;
            }
            let path: Vec<String> = if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
                rest.split("__").map(str::to_ascii_lowercase).collect()
            } else if name == "DATABASE_URL" && !explicit_db {
                vec!["database_url".to_owned()]
            } else {
                continue;
            };
            set_path(&mut table, &path, env_value(value)).map_err(|message| ConfigError::Env {
                from_file: from_file.clone(),
                vars: name.clone(),
                message,
            })?;
            applied.push(name.clone());
        }

        let config: Config = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            if applied.is_empty() {
                ConfigError::Invalid { from_file: from_file.clone(), message: e.to_string() }
            } else {
                ConfigError::Env { from_file: from_file.clone(), vars: applied.join(", "), message: e.to_string() }
            }
        })?;
        config.check().map_err(|message| ConfigError::Invalid { from_file, message })?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(mqtt) = &self.mqtt {
            protocol::Topics::new(&mqtt.topic_prefix).map_err(|e| format!("mqtt.topic_prefix: {e}"))?;
            protocol::Topics::new("x")
                .and_then(|t| t.shared(&mqtt.group, protocol::TopicKind::Punches))
                .map_err(|e| format!("mqtt.group: {e}"))?;
            if mqtt.workers == 0 {
                return Err("mqtt.workers must be at least 1".into());
            }
        }
        self.attendance.sandwich_time()?;
        self.jobs.check()?;
        self.alerts.check()?;
        if !(1..=400).contains(&self.attendance.backfill_days) {
            return Err("attendance.backfill_days must be between 1 and 400".into());
        }
        if self.attendance.claim_limit == 0 || self.attendance.poll_interval_ms == 0 {
            return Err("attendance.claim_limit and attendance.poll_interval_ms must be at least 1".into());
        }
        if self.database_max_connections == 0 {
            return Err("database_max_connections must be at least 1".into());
        }
        if let Some(url) = &self.database_url {
            backend_of(url)?;
        }
        if let Some(url) = &self.public_url {
            check_public_url(url)?;
        }
        Ok(())
    }

    /// Whether browsers reach this service over HTTPS: it serves TLS itself, or `public_url` is `https://`. Then
    /// the session cookie is `Secure` and answers carry `Strict-Transport-Security`.
    pub fn browsers_use_https(&self) -> bool {
        self.tls.is_some()
            || self
                .public_url
                .as_deref()
                .is_some_and(|u| u.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")))
    }

    /// The database URL in force: the configured one, or SQLite under the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("central.db").display()),
        }
    }

    /// Whether the API may listen on `listen` without TLS.
    pub fn plain_http_allowed(&self) -> bool {
        self.allow_plain_http || self.listen.ip().is_loopback()
    }
}

/// `public_url` must be an absolute `http://` or `https://` URL with a host.
fn check_public_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")).ok_or_else(|| {
        format!("public_url {url:?} must start with https:// (or http://), e.g. https://attendance.example.com")
    })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("public_url {url:?} is not a URL with a host, e.g. https://attendance.example.com"));
    }
    Ok(())
}

/// The backend a database URL selects, by its scheme.
///
/// # Errors
/// A message naming the URL's scheme when it is neither SQLite nor PostgreSQL.
pub fn backend_of(url: &str) -> Result<Backend, String> {
    let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
    match scheme.as_str() {
        "sqlite" => Ok(Backend::Sqlite),
        "postgres" | "postgresql" => Ok(Backend::Postgres),
        _ => Err(format!("database_url scheme {scheme:?} is not supported; use sqlite:// or postgres://")),
    }
}

fn env_value(raw: &str) -> toml::Value {
    // Only scalars are read as TOML: a value like `[a]` or `{}` stays a string rather than becoming a table.
    match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
            Some(toml::Value::String(s)) => toml::Value::String(s),
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    match path {
        [] => Err("empty key".into()),
        [key] if key.is_empty() => Err("empty key".into()),
        [key] => {
            table.insert(key.clone(), value);
            Ok(())
        }
        [key, rest @ ..] => {
            let entry = table.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            match entry {
                toml::Value::Table(inner) => set_path(inner, rest, value),
                _ => Err(format!("key `{key}` is not a table")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        file
    }

    #[test]
    fn defaults_are_embedded_sqlite_on_loopback() {
        let config = Config::load_with_env(None, env(&[])).unwrap();
        assert_eq!(config.database_url(), "sqlite://./data/central.db");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert!(config.plain_http_allowed());
        assert!(config.mqtt.is_none());
    }

    #[test]
    fn environment_overrides_the_file_and_nested_keys() {
        let file = write("listen = \"127.0.0.1:9000\"\n[mqtt]\nhost = \"broker\"\n");
        let config = Config::load_with_env(
            Some(file.path()),
            env(&[
                ("CENTRAL_API_LISTEN", "0.0.0.0:9001"),
                ("CENTRAL_API_MQTT__PORT", "8883"),
                ("CENTRAL_API_MQTT__ALLOW_UNSIGNED", "true"),
                ("CENTRAL_API_ALLOW_PLAIN_HTTP", "true"),
                ("DATABASE_URL", "postgres://db/x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9001");
        let mqtt = config.mqtt.unwrap();
        assert_eq!((mqtt.host.as_str(), mqtt.port, mqtt.allow_unsigned), ("broker", 8883, true));
        assert_eq!(config.database_url.as_deref(), Some("postgres://db/x"));
    }

    #[test]
    fn central_api_database_url_beats_database_url() {
        let config = Config::load_with_env(
            None,
            env(&[("DATABASE_URL", "postgres://a/x"), ("CENTRAL_API_DATABASE_URL", "sqlite://b.db")]),
        )
        .unwrap();
        assert_eq!(config.database_url(), "sqlite://b.db");
    }

    #[test]
    fn unknown_key_in_file_names_key_and_file() {
        let file = write("[mqtt]\nhost = \"b\"\ntopic_prefx = \"x\"\n");
        let err = Config::load_with_env(Some(file.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("topic_prefx"), "{err}");
        assert!(err.contains(&file.path().display().to_string()), "{err}");
    }

    #[test]
    fn missing_required_key_is_named() {
        let file = write("[tls]\ncert_file = \"c.pem\"\n");
        let err = Config::load_with_env(Some(file.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("key_file"), "{err}");
        assert!(err.contains(&file.path().display().to_string()), "{err}");
    }

    #[test]
    fn unknown_environment_key_names_the_variable() {
        let err = Config::load_with_env(None, env(&[("CENTRAL_API_LISTN", "x")])).unwrap_err().to_string();
        assert!(err.contains("CENTRAL_API_LISTN"), "{err}");
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let file = write("database_max_connections = \"many\"\n");
        let err = Config::load_with_env(Some(file.path()), env(&[])).unwrap_err().to_string();
        assert!(err.contains("database_max_connections"), "{err}");
    }

    #[test]
    fn bad_database_scheme_is_refused() {
        let err =
            Config::load_with_env(None, env(&[("CENTRAL_API_DATABASE_URL", "mysql://x")])).unwrap_err().to_string();
        assert!(err.contains("mysql"), "{err}");
    }

    #[test]
    fn public_url_https_means_browsers_use_https() {
        let plain = Config::load_with_env(None, env(&[])).unwrap();
        assert!(!plain.browsers_use_https());
        let proxied =
            Config::load_with_env(None, env(&[("CENTRAL_API_PUBLIC_URL", "HTTPS://attendance.example.com/")])).unwrap();
        assert!(proxied.browsers_use_https());
        let http = Config::load_with_env(None, env(&[("CENTRAL_API_PUBLIC_URL", "http://10.0.0.5:8080")])).unwrap();
        assert!(!http.browsers_use_https());
        for bad in ["attendance.example.com", "https://", "ftp://x", "https://a b"] {
            let err = Config::load_with_env(None, env(&[("CENTRAL_API_PUBLIC_URL", bad)])).unwrap_err().to_string();
            assert!(err.contains("public_url"), "{bad}: {err}");
        }
    }

    #[test]
    fn plain_http_off_loopback_needs_the_switch() {
        let config = Config::load_with_env(None, env(&[("CENTRAL_API_LISTEN", "0.0.0.0:8080")])).unwrap();
        assert!(!config.plain_http_allowed());
    }
}
