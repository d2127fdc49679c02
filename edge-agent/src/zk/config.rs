//! Per-device configuration of a ZKTeco binary-protocol device (`[[zk_device]]` tables in the agent's TOML).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction};
use serde::{Deserialize, Serialize};

use super::client::Timeouts;
use super::records::RecordLayout;
use super::transport::TransportKind;

/// The port ZKTeco devices listen on.
pub const DEFAULT_PORT: u16 = 4370;

/// One device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkDeviceConfig {
    /// Host name or IP address, optionally with `:port`.
    pub address: String,
    /// Port, when `address` has none.
    #[serde(default = "default_port")]
    pub port: u16,
    /// `tcp` (default) or `udp` (older units).
    #[serde(default)]
    pub transport: TransportKind,
    /// The device's communication password ("comm key"); 0 when none is set.
    #[serde(default)]
    pub comm_key: u32,
    /// The IANA zone of the device's wall clock, e.g. `Asia/Kolkata`.
    #[serde(with = "zone_name")]
    pub time_zone: Tz,
    /// What the device is installed as: `IN`, `OUT` or `BOTH` (the punch state decides).
    #[serde(default)]
    pub direction: Direction,
    /// When set, a device answering with another serial number is refused (a swapped IP address would otherwise
    /// file its punches under the wrong device).
    #[serde(default)]
    pub expected_serial: Option<DeviceSerial>,
    /// Seconds between bulk reads without realtime; between heartbeats with it.
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// Receive punches as realtime events between bulk reads.
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// Set the device clock when it drifts more than `max_clock_drift_secs`.
    #[serde(default)]
    pub set_clock: bool,
    /// The drift beyond which `clock_drift` is raised (and the clock set, with `set_clock`). 5 minutes by default.
    #[serde(default = "default_max_clock_drift_secs")]
    pub max_clock_drift_secs: u64,
    /// UDP: refuse replies whose checksum is wrong (the default). `false` for implementations that compute it off by
    /// one (pyzk never checks it, so such devices work with pyzk-based tools). Over TCP the length prefix frames every
    /// packet: a wrong checksum is always accepted and counted (`edge_device_checksum_mismatches_total`).
    #[serde(default = "default_true")]
    pub strict_checksum: bool,
    /// Delete the device's log once every record on it is acknowledged by the central service. Off by default.
    #[serde(default)]
    pub clear_log_when_acknowledged: bool,
    /// Record size (8, 16 or 40) when the device's counts cannot tell it; normally left out.
    #[serde(default)]
    pub record_size: Option<RecordLayout>,
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long to wait for each reply packet.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// First wait after a failed contact; doubles per failure up to `backoff_max_ms`, with jitter.
    #[serde(default = "default_backoff_min_ms")]
    pub backoff_min_ms: u64,
    #[serde(default = "default_backoff_max_ms")]
    pub backoff_max_ms: u64,
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
fn default_true() -> bool {
    true
}
fn default_poll_interval_secs() -> u64 {
    60
}
fn default_max_clock_drift_secs() -> u64 {
    300
}
fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_request_timeout_ms() -> u64 {
    5_000
}
fn default_backoff_min_ms() -> u64 {
    1_000
}
fn default_backoff_max_ms() -> u64 {
    60_000
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("zk device {address:?}: {problem}")]
pub struct ConfigError {
    pub address: String,
    pub problem: String,
}

impl ZkDeviceConfig {
    /// A configuration with every default, for `address` in `time_zone`.
    pub fn new(address: impl Into<String>, time_zone: Tz) -> Self {
        Self {
            address: address.into(),
            port: DEFAULT_PORT,
            transport: TransportKind::Tcp,
            comm_key: 0,
            time_zone,
            direction: Direction::Both,
            expected_serial: None,
            poll_interval_secs: default_poll_interval_secs(),
            realtime: true,
            set_clock: false,
            max_clock_drift_secs: default_max_clock_drift_secs(),
            strict_checksum: true,
            clear_log_when_acknowledged: false,
            record_size: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            backoff_min_ms: default_backoff_min_ms(),
            backoff_max_ms: default_backoff_max_ms(),
        }
    }

    /// Checks the values serde cannot.
    ///
    /// # Errors
    /// Naming the device and the bad value.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problem = if self.address.trim().is_empty() {
            Some("address is empty".to_owned())
        } else if self.poll_interval_secs == 0 {
            Some("poll_interval_secs must be at least 1".to_owned())
        } else if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            Some("timeouts must be at least 1 ms".to_owned())
        } else if self.backoff_min_ms == 0 || self.backoff_max_ms < self.backoff_min_ms {
            Some("backoff_min_ms must be at least 1 and at most backoff_max_ms".to_owned())
        } else {
            None
        };
        problem.map_or(Ok(()), |problem| Err(ConfigError { address: self.address.clone(), problem }))
    }

    /// `host:port` to connect to.
    pub fn socket_address(&self) -> String {
        socket_address(&self.address, self.port)
    }

    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: Duration::from_millis(self.connect_timeout_ms),
            request: Duration::from_millis(self.request_timeout_ms),
        }
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(self.poll_interval_secs)
    }
}

/// `address` with `port` added unless it already names one (`host:port`, `1.2.3.4:5`, `[::1]:5`).
pub fn socket_address(address: &str, port: u16) -> String {
    let address = address.trim();
    if address.parse::<SocketAddr>().is_ok() {
        return address.to_owned();
    }
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        Ok(IpAddr::V4(ip)) => format!("{ip}:{port}"),
        Err(_) if address.contains(':') => address.to_owned(),
        Err(_) => format!("{address}:{port}"),
    }
}

/// Serde for an IANA zone given by name, refusing unknown names with the name in the message.
mod zone_name {
    use chrono_tz::Tz;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(zone: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(zone.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        protocol::time::parse_zone(&name).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_with_defaults_and_every_field() {
        let minimal: ZkDeviceConfig =
            toml::from_str("address = \"192.168.1.201\"\ntime_zone = \"Asia/Kolkata\"").unwrap();
        assert_eq!(minimal, ZkDeviceConfig::new("192.168.1.201", chrono_tz::Asia::Kolkata));
        assert_eq!(minimal.socket_address(), "192.168.1.201:4370");
        assert!(minimal.realtime && !minimal.set_clock && !minimal.clear_log_when_acknowledged);
        assert!(minimal.strict_checksum && minimal.max_clock_drift_secs == 300, "strict over UDP; 5 minutes");

        let full: ZkDeviceConfig = toml::from_str(
            r#"
            address = "gate-2.local"
            port = 5005
            transport = "udp"
            comm_key = 123456
            time_zone = "Asia/Jakarta"
            direction = "IN"
            expected_serial = "CDQ9192960006"
            poll_interval_secs = 30
            realtime = false
            set_clock = true
            max_clock_drift_secs = 10
            strict_checksum = false
            clear_log_when_acknowledged = true
            record_size = 40
            connect_timeout_ms = 2000
            request_timeout_ms = 3000
            backoff_min_ms = 500
            backoff_max_ms = 30000
            "#,
        )
        .unwrap();
        full.validate().unwrap();
        assert_eq!(full.socket_address(), "gate-2.local:5005");
        assert_eq!(
            (full.transport, full.direction, full.record_size),
            (TransportKind::Udp, Direction::In, Some(RecordLayout::Long))
        );
        assert_eq!(full.timeouts().request, Duration::from_secs(3));
        assert!(!full.strict_checksum);
    }

    #[test]
    fn bad_values_are_named() {
        let err = toml::from_str::<ZkDeviceConfig>("address = \"a\"\ntime_zone = \"Asia/Bombayy\"").unwrap_err();
        assert!(err.to_string().contains("unknown IANA time zone \"Asia/Bombayy\""), "{err}");
        let err =
            toml::from_str::<ZkDeviceConfig>("address = \"a\"\ntime_zone = \"UTC\"\nrecord_size = 12").unwrap_err();
        assert!(err.to_string().contains("record size 12 is not one of 8, 16, 40"), "{err}");
        let err = toml::from_str::<ZkDeviceConfig>("address = \"a\"\ntime_zone = \"UTC\"\ncomkey = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field `comkey`"), "{err}");
        let mut config = ZkDeviceConfig::new("a", chrono_tz::UTC);
        config.poll_interval_secs = 0;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "zk device \"a\": poll_interval_secs must be at least 1"
        );
    }

    #[test]
    fn socket_addresses() {
        assert_eq!(socket_address("10.0.0.5:4371", 4370), "10.0.0.5:4371");
        assert_eq!(socket_address("::1", 4370), "[::1]:4370");
        assert_eq!(socket_address("[::1]:9", 4370), "[::1]:9");
        assert_eq!(socket_address("dev.local:9", 4370), "dev.local:9");
        assert_eq!(socket_address("dev.local", 4370), "dev.local:4370");
    }
}
