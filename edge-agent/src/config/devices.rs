//! The `[[device]]` entries: settings every device has, plus the settings of its kind.
//!
//! An entry is read in two passes over the same table, one for the common keys and one for the kind's keys; a key is
//! unknown when neither pass used it. That way every wrong key is named, which an internally tagged serde enum cannot
//! do (it buffers the table and drops unknown keys silently).
//!
//! The kind-specific structs are deliberately small: each driver's module owns its settings (the ZKTeco driver's
//! `zk::ZkDeviceConfig` replaces [`ZkSettings`] when it is merged).

use serde::Deserialize;

/// The keys every device has.
#[derive(Debug, Clone, Deserialize)]
pub struct RawDeviceCommon {
    pub kind: String,
    pub serial: String,
    #[serde(default)]
    pub name: Option<String>,
    pub time_zone: String,
    #[serde(default)]
    pub direction: Option<String>,
}

/// A ZKTeco terminal polled over the binary protocol (TCP/UDP 4370).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ZkSettings {
    pub host: String,
    #[serde(default = "default_zk_port")]
    pub port: u16,
    /// The device's communication key (0 when none is set).
    #[serde(default)]
    pub comm_key: u32,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// `tcp` (default) or `udp`.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// A terminal pushing over ZKTeco PUSH / ADMS to the agent's push receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdmsSettings {}

/// A terminal on a serial line (RS-232/485).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SerialSettings {
    /// The port, such as `/dev/ttyUSB0`.
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
}

/// A Modbus TCP or RTU terminal.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModbusSettings {
    /// `host:port` for Modbus TCP, or a serial port path for RTU.
    pub address: String,
    #[serde(default = "default_unit")]
    pub unit_id: u8,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
}

/// The settings of a device's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSettings {
    Zk(ZkSettings),
    Adms(AdmsSettings),
    Serial(SerialSettings),
    Modbus(ModbusSettings),
}

impl DeviceSettings {
    pub const KINDS: &'static str = "\"zk\", \"adms\", \"serial\" or \"modbus\"";

    /// The `kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Zk(_) => "zk",
            Self::Adms(_) => "adms",
            Self::Serial(_) => "serial",
            Self::Modbus(_) => "modbus",
        }
    }
}

/// Reads the kind's settings from `table`, reporting every key the kind's struct did not use.
pub fn kind_settings(
    kind: &str,
    table: toml::Table,
    ignored: &mut Vec<String>,
) -> Option<Result<DeviceSettings, String>> {
    fn read<T: for<'de> Deserialize<'de>>(table: toml::Table, ignored: &mut Vec<String>) -> Result<T, String> {
        serde_ignored::deserialize(toml::Value::Table(table), |path| ignored.push(super::path_text(&path)))
            .map_err(|e| e.to_string())
    }
    Some(match kind {
        "zk" => read(table, ignored).map(DeviceSettings::Zk),
        "adms" => read(table, ignored).map(DeviceSettings::Adms),
        "serial" => read(table, ignored).map(DeviceSettings::Serial),
        "modbus" => read(table, ignored).map(DeviceSettings::Modbus),
        _ => return None,
    })
}

fn default_zk_port() -> u16 {
    4370
}

fn default_poll_secs() -> u64 {
    60
}

fn default_baud() -> u32 {
    9600
}

fn default_unit() -> u8 {
    1
}
