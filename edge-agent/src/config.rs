//! The agent's configuration file (TOML; see `configs/edge-agent.toml` for a commented example).
//!
//! [`Config::load`] reads and validates a file and reports every problem it finds at once, each naming the file and
//! the key (`device[2].time_zone: unknown IANA time zone "Asia/Bombayy"`), so `edge-agent check-config` can list them
//! all. Unknown keys are problems, not warnings: a misspelt `max_disk_mb` silently falling back to the default is how
//! buffers fill disks.

mod devices;

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use protocol::{AgentId, DeviceSerial, Direction, SiteId, Topics};
use serde::Deserialize;

pub use devices::{AdmsSettings, DeviceSettings, ModbusSettings, SerialSettings, ZkSettings};

/// Everything wrong with a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

/// One wrong key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, such as `central.url` or `device[1].serial`; empty for the file as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "{}: {count} problem{}", self.file.display(), if count == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            write!(f, "\n  {}: ", self.file.display())?;
            if !problem.key.is_empty() {
                write!(f, "{}: ", problem.key)?;
            }
            f.write_str(&problem.message)?;
        }
        Ok(())
    }
}

/// How batches travel to the central service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Https,
    Mqtt,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub agent: AgentConfig,
    pub central: CentralConfig,
    pub mqtt: MqttConfig,
    pub buffer: BufferConfig,
    pub forward: ForwardConfig,
    pub status: StatusConfig,
    pub metrics: MetricsConfig,
    pub adms: AdmsConfig,
    pub devices: Vec<DeviceConfig>,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub id: AgentId,
    pub site: SiteId,
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct CentralConfig {
    pub transport: Transport,
    /// `https://...` (or `http://` for a local test) for HTTPS; `mqtt://host:port` or `mqtts://host:port` for MQTT.
    pub url: String,
    /// The agent's token, read from `token` or `token_file`: the bearer token on HTTPS; on MQTT the root of the keys
    /// that sign its messages and of its broker password.
    pub token: Option<String>,
    pub ca_file: Option<PathBuf>,
    /// HTTPS: trust central's chain by the SHA-256 of its CA certificate (`central-api tls init` prints it), instead
    /// of `ca_file`.
    pub ca_fingerprint: Option<[u8; 32]>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub request_timeout: Duration,
    /// `[central] managed = true`: the devices come from central's device list (see `fleet`), not from this file.
    pub managed: bool,
    /// HTTPS only: how long one poll for commands and configuration waits at central for something to arrive.
    pub poll_wait: Duration,
}

#[derive(Debug, Clone)]
pub struct MqttConfig {
    pub topics: Topics,
    /// The broker user name; the agent id when absent.
    pub username: Option<String>,
    pub keep_alive: Duration,
    pub ack_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct BufferConfig {
    pub max_disk_bytes: u64,
    pub cache_bytes: u64,
    pub key_retention: Duration,
}

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub max_batch: usize,
    pub linger: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct StatusConfig {
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where `/healthz` and `/metrics` are served; port 0 picks a free port (tests).
    pub listen: SocketAddr,
}

/// The push (ADMS) receiver; it runs only when some device has `kind = "adms"`.
#[derive(Debug, Clone)]
pub struct AdmsConfig {
    /// Where terminals push; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub unknown_log_interval: Duration,
    pub poll_delay_secs: u32,
    pub error_delay_secs: u32,
}

/// One configured device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    pub serial: DeviceSerial,
    pub name: String,
    pub time_zone: Tz,
    pub direction: Direction,
    pub settings: DeviceSettings,
}

impl Config {
    /// The sled directory inside the data directory.
    pub fn buffer_path(&self) -> PathBuf {
        self.agent.data_dir.join("buffer")
    }

    /// Reads and validates `path`.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![Problem { key: String::new(), message: format!("cannot read the file: {e}") }],
        })?;
        Self::parse(&text, path)
    }

    /// Validates configuration text; `file` names it in errors and anchors relative paths.
    ///
    /// # Errors
    /// [`ConfigError`] listing every problem.
    pub fn parse(text: &str, file: &Path) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        let mut ignored = Vec::new();
        let fail = |problems: Vec<Problem>| ConfigError { file: file.to_owned(), problems };
        let raw: RawConfig = match toml::Deserializer::parse(text)
            .and_then(|de| serde_ignored::deserialize(de, |path| ignored.push(path_text(&path))))
        {
            Ok(raw) => raw,
            Err(e) => return Err(fail(vec![Problem { key: String::new(), message: e.to_string().trim().to_owned() }])),
        };
        for key in ignored {
            problems.add(&key, "unknown key");
        }
        let base = file.parent().unwrap_or(Path::new("."));
        let config = validate(raw, base, &mut problems);
        match config {
            Some(config) if problems.0.is_empty() => Ok(config),
            _ => Err(fail(problems.0)),
        }
    }
}

#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(Problem { key: key.to_owned(), message: message.into() });
    }

    /// Parses with `parse`, recording a problem under `key` on failure.
    fn check<T, E: fmt::Display>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.add(key, e.to_string())).ok()
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64) -> u64 {
        if value < min || value > max {
            self.add(key, format!("{value} is outside {min}..={max}"));
        }
        value.clamp(min, max)
    }
}

#[derive(Deserialize)]
struct RawConfig {
    agent: RawAgent,
    central: RawCentral,
    #[serde(default)]
    mqtt: RawMqtt,
    #[serde(default)]
    buffer: RawBuffer,
    #[serde(default)]
    forward: RawForward,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    adms: RawAdms,
    #[serde(default)]
    device: Vec<toml::Table>,
}

#[derive(Deserialize)]
struct RawAgent {
    id: String,
    site: String,
    data_dir: PathBuf,
}

#[derive(Deserialize)]
struct RawCentral {
    transport: String,
    url: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    ca_fingerprint: Option<String>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    #[serde(default = "default_request_timeout")]
    request_timeout_secs: u64,
    /// Allow `http://` to a central that is not on this machine (the token then travels in clear).
    #[serde(default)]
    allow_plain_http: bool,
    /// Take the devices from central's device list.
    #[serde(default)]
    managed: bool,
    #[serde(default = "default_poll_wait")]
    poll_wait_secs: u64,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawMqtt {
    topic_prefix: String,
    username: Option<String>,
    keep_alive_secs: u64,
    ack_timeout_secs: u64,
}

impl Default for RawMqtt {
    fn default() -> Self {
        Self { topic_prefix: "attendance".into(), username: None, keep_alive_secs: 30, ack_timeout_secs: 60 }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawBuffer {
    max_disk_mb: u64,
    cache_mb: u64,
    key_retention_days: u64,
}

impl Default for RawBuffer {
    fn default() -> Self {
        Self { max_disk_mb: 2048, cache_mb: 16, key_retention_days: 45 }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawForward {
    max_batch: u64,
    linger_ms: u64,
    initial_backoff_ms: u64,
    max_backoff_secs: u64,
}

impl Default for RawForward {
    fn default() -> Self {
        Self { max_batch: 5000, linger_ms: 500, initial_backoff_ms: 500, max_backoff_secs: 60 }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawStatus {
    interval_secs: u64,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self { interval_secs: 30 }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawMetrics {
    listen: String,
}

impl Default for RawMetrics {
    fn default() -> Self {
        Self { listen: "127.0.0.1:9187".into() }
    }
}

#[derive(Deserialize)]
#[serde(default)]
struct RawAdms {
    listen: String,
    max_body_kb: u64,
    unknown_log_interval_secs: u64,
    poll_delay_secs: u64,
    error_delay_secs: u64,
}

impl Default for RawAdms {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8081".into(),
            max_body_kb: 4096,
            unknown_log_interval_secs: 300,
            poll_delay_secs: 10,
            error_delay_secs: 30,
        }
    }
}

fn default_request_timeout() -> u64 {
    30
}

fn default_poll_wait() -> u64 {
    25
}

fn validate(raw: RawConfig, base: &Path, p: &mut Problems) -> Option<Config> {
    let id = p.check("agent.id", raw.agent.id.parse::<AgentId>());
    let site = p.check("agent.site", raw.agent.site.parse::<SiteId>());
    let central = validate_central(raw.central, base, p);
    if let (Some(central), Some(id)) = (&central, &id) {
        check_mqtt_token(central, id, p);
    }
    let topics = p.check("mqtt.topic_prefix", Topics::new(&raw.mqtt.topic_prefix));
    let mqtt_keep_alive = p.range("mqtt.keep_alive_secs", raw.mqtt.keep_alive_secs, 5, 3600);
    let ack_timeout = p.range("mqtt.ack_timeout_secs", raw.mqtt.ack_timeout_secs, 1, 3600);
    let buffer = BufferConfig {
        max_disk_bytes: p.range("buffer.max_disk_mb", raw.buffer.max_disk_mb, 1, 1 << 30) * 1024 * 1024,
        cache_bytes: p.range("buffer.cache_mb", raw.buffer.cache_mb, 1, 4096) * 1024 * 1024,
        key_retention: days(p.range("buffer.key_retention_days", raw.buffer.key_retention_days, 0, 3650)),
    };
    let max_batch = protocol::limits::MAX_PUNCHES_PER_BATCH as u64;
    let forward = ForwardConfig {
        max_batch: usize::try_from(p.range("forward.max_batch", raw.forward.max_batch, 1, max_batch)).unwrap_or(1),
        linger: Duration::from_millis(p.range("forward.linger_ms", raw.forward.linger_ms, 0, 60_000)),
        initial_backoff: Duration::from_millis(p.range(
            "forward.initial_backoff_ms",
            raw.forward.initial_backoff_ms,
            1,
            600_000,
        )),
        max_backoff: Duration::from_secs(p.range("forward.max_backoff_secs", raw.forward.max_backoff_secs, 1, 3600)),
    };
    let status = StatusConfig {
        interval: Duration::from_secs(p.range("status.interval_secs", raw.status.interval_secs, 1, 86_400)),
    };
    let listen =
        p.check("metrics.listen", raw.metrics.listen.parse::<SocketAddr>().map_err(|e| format!("{e} (want ip:port)")));
    let adms_listen =
        p.check("adms.listen", raw.adms.listen.parse::<SocketAddr>().map_err(|e| format!("{e} (want ip:port)")));
    let max_body_kb = p.range("adms.max_body_kb", raw.adms.max_body_kb, 1, 64 * 1024);
    let unknown_log = p.range("adms.unknown_log_interval_secs", raw.adms.unknown_log_interval_secs, 1, 86_400);
    let poll_delay = p.range("adms.poll_delay_secs", raw.adms.poll_delay_secs, 1, 3600);
    let error_delay = p.range("adms.error_delay_secs", raw.adms.error_delay_secs, 1, 3600);
    let managed = central.as_ref().is_some_and(|c| c.managed);
    if managed && !raw.device.is_empty() {
        p.add(
            "device",
            "central.managed = true takes the devices from central's device list; remove the [[device]] entries \
             (or set managed = false to keep them in this file)",
        );
    }
    let devices = validate_devices(raw.device, p);
    Some(Config {
        agent: AgentConfig { id: id?, site: site?, data_dir: resolve(base, &raw.agent.data_dir) },
        central: central?,
        mqtt: MqttConfig {
            topics: topics?,
            username: raw.mqtt.username,
            keep_alive: Duration::from_secs(mqtt_keep_alive),
            ack_timeout: Duration::from_secs(ack_timeout),
        },
        buffer,
        forward,
        status,
        metrics: MetricsConfig { listen: listen? },
        adms: AdmsConfig {
            listen: adms_listen?,
            max_body_bytes: usize::try_from(max_body_kb * 1024).unwrap_or(usize::MAX),
            unknown_log_interval: Duration::from_secs(unknown_log),
            poll_delay_secs: u32::try_from(poll_delay).unwrap_or(10),
            error_delay_secs: u32::try_from(error_delay).unwrap_or(30),
        },
        devices,
    })
}

/// On MQTT the token signs every message (see `protocol::signed`), so it must be this agent's token.
fn check_mqtt_token(central: &CentralConfig, id: &AgentId, p: &mut Problems) {
    if central.transport != Transport::Mqtt {
        return;
    }
    match central.token.as_deref().map(protocol::AgentKeys::from_token) {
        None => p.add(
            "central.token",
            "the MQTT transport signs every message with the agent's token (token or token_file)",
        ),
        Some(Err(e)) => p.add("central.token", format!("not an agent token: {e}")),
        Some(Ok((agent, _))) if agent != *id => {
            p.add("central.token", format!("the token belongs to agent {agent}, not to this agent ({id})"));
        }
        Some(Ok(_)) => {}
    }
}

/// `http://` is only for a central on this machine: the agent's token would otherwise cross the network in clear.
fn plain_http_allowed(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("");
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(format!("{url:?} is plain http:// to another machine: the agent's token would be sent in clear"))
    }
}

fn validate_central(raw: RawCentral, base: &Path, p: &mut Problems) -> Option<CentralConfig> {
    let transport = match raw.transport.as_str() {
        "https" => Some(Transport::Https),
        "mqtt" => Some(Transport::Mqtt),
        other => {
            p.add("central.transport", format!("{other:?} is not \"https\" or \"mqtt\""));
            None
        }
    };
    let schemes: &[&str] = match transport {
        Some(Transport::Https) => &["https://", "http://"],
        Some(Transport::Mqtt) => &["mqtt://", "mqtts://"],
        None => &[],
    };
    if transport.is_some() && !schemes.iter().any(|s| raw.url.starts_with(s)) {
        p.add("central.url", format!("{:?} must start with {}", raw.url, schemes.join(" or ")));
    }
    if transport == Some(Transport::Https) && raw.url.starts_with("http://") && !raw.allow_plain_http {
        if let Err(reason) = plain_http_allowed(&raw.url) {
            p.add(
                "central.url",
                format!("{reason}; use https://, or set central.allow_plain_http = true to accept it"),
            );
        }
    }
    let token = match (raw.token, &raw.token_file) {
        (Some(_), Some(_)) => {
            p.add("central.token_file", "give either token or token_file, not both");
            None
        }
        (Some(token), None) => Some(token),
        (None, Some(file)) => {
            let file = resolve(base, file);
            p.check(
                "central.token_file",
                std::fs::read_to_string(&file)
                    .map(|t| t.trim().to_owned())
                    .map_err(|e| format!("cannot read {}: {e}", file.display())),
            )
        }
        (None, None) => None,
    };
    if transport == Some(Transport::Https) && token.as_deref().is_none_or(str::is_empty) {
        p.add("central.token", "the HTTPS transport needs the agent's token (token or token_file)");
    }
    let mut file_key = |key: &str, value: Option<PathBuf>| {
        let path = resolve(base, &value?);
        if !path.is_file() {
            p.add(key, format!("{} is not a readable file", path.display()));
        }
        Some(path)
    };
    let ca_file = file_key("central.ca_file", raw.ca_file);
    let client_cert = file_key("central.client_cert", raw.client_cert);
    let client_key = file_key("central.client_key", raw.client_key);
    if client_key.is_some() && client_cert.is_none() {
        p.add("central.client_key", "client_key without client_cert");
    }
    let ca_fingerprint = raw.ca_fingerprint.as_deref().and_then(|text| {
        crate::forward::pin::parse_fingerprint(text).map_err(|m| p.add("central.ca_fingerprint", m)).ok()
    });
    if raw.ca_fingerprint.is_some() && ca_file.is_some() {
        p.add("central.ca_fingerprint", "set ca_file or ca_fingerprint, not both");
    }
    if raw.ca_fingerprint.is_some() && transport != Some(Transport::Https) {
        p.add("central.ca_fingerprint", "only the HTTPS transport pins central's CA; for MQTT set ca_file");
    }
    if transport == Some(Transport::Mqtt) && raw.url.starts_with("mqtts://") && ca_file.is_none() {
        p.add("central.ca_file", "mqtts:// needs the broker's CA bundle in ca_file");
    }
    let timeout = p.range("central.request_timeout_secs", raw.request_timeout_secs, 1, 600);
    let poll_wait = p.range("central.poll_wait_secs", raw.poll_wait_secs, 1, 300);
    Some(CentralConfig {
        transport: transport?,
        url: raw.url,
        token,
        ca_file,
        ca_fingerprint,
        client_cert,
        client_key,
        request_timeout: Duration::from_secs(timeout),
        managed: raw.managed,
        poll_wait: Duration::from_secs(poll_wait),
    })
}

/// Checks `[[device]]` entries exactly as [`Config::load`] checks a file's (the managed configuration from central
/// and central's device form use it, so both refuse what `edge-agent check-config` refuses, with the same keys:
/// `device[0].host`).
///
/// # Errors
/// Every problem found.
pub fn devices_from_tables(tables: Vec<toml::Table>) -> Result<Vec<DeviceConfig>, Vec<Problem>> {
    let mut problems = Problems::default();
    let devices = validate_devices(tables, &mut problems);
    if problems.0.is_empty() {
        Ok(devices)
    } else {
        Err(problems.0)
    }
}

fn validate_devices(tables: Vec<toml::Table>, p: &mut Problems) -> Vec<DeviceConfig> {
    let mut devices = Vec::new();
    let mut serials = HashSet::new();
    for (index, table) in tables.into_iter().enumerate() {
        let at = |key: &str| format!("device[{index}].{key}");
        let mut common_ignored = Vec::new();
        let common: devices::RawDeviceCommon =
            match serde_ignored::deserialize(toml::Value::Table(table.clone()), |path| {
                common_ignored.push(path_text(&path))
            }) {
                Ok(common) => common,
                Err(e) => {
                    p.add(&format!("device[{index}]"), e.to_string());
                    continue;
                }
            };
        let mut kind_ignored = Vec::new();
        let settings = match devices::kind_settings(&common.kind, table, &mut kind_ignored) {
            None => {
                p.add(&at("kind"), format!("{:?} is not {}", common.kind, DeviceSettings::KINDS));
                None
            }
            Some(Err(e)) => {
                p.add(&format!("device[{index}]"), format!("{} settings: {e}", common.kind));
                None
            }
            Some(Ok(settings)) => {
                for key in common_ignored.iter().filter(|k| kind_ignored.contains(k)) {
                    p.add(&at(key), format!("unknown key for a {} device", common.kind));
                }
                let wrong = devices::check(&settings);
                for (key, message) in &wrong {
                    p.add(&at(key), message.clone());
                }
                wrong.is_empty().then_some(settings)
            }
        };
        let serial = p.check(&at("serial"), common.serial.parse::<DeviceSerial>());
        if let Some(serial) = &serial {
            if !serials.insert(serial.clone()) {
                p.add(&at("serial"), format!("serial {serial} is configured twice"));
            }
        }
        let zone = p.check(&at("time_zone"), protocol::time::parse_zone(&common.time_zone));
        let direction = match common.direction.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("BOTH") => Some(Direction::Both),
            Some("IN") => Some(Direction::In),
            Some("OUT") => Some(Direction::Out),
            Some(other) => {
                p.add(&at("direction"), format!("{other:?} is not \"IN\", \"OUT\" or \"BOTH\""));
                None
            }
        };
        if let (Some(serial), Some(time_zone), Some(direction), Some(settings)) = (serial, zone, direction, settings) {
            let name = common.name.unwrap_or_else(|| serial.to_string());
            devices.push(DeviceConfig { serial, name, time_zone, direction, settings });
        }
    }
    devices
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

/// `device[2].host` rather than serde_ignored's `device.2.host`.
fn path_text(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", path_text(parent)),
        Path::Map { parent, key } => {
            let parent = path_text(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => path_text(parent),
    }
}

#[cfg(test)]
mod tests;
