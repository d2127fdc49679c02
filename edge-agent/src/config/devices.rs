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
    /// UDP: refuse replies with a wrong checksum (default true); see `zk::ZkDeviceConfig::strict_checksum`.
    #[serde(default)]
    pub strict_checksum: Option<bool>,
    /// Seconds of clock drift before `clock_drift` is raised (default 300).
    #[serde(default)]
    pub max_clock_drift_secs: Option<u64>,
    /// Delete the device log once every record on it is acknowledged by central (the clear-log rule); off by default.
    #[serde(default)]
    pub clear_log_when_acknowledged: bool,
    /// Set the device clock when it drifts; off by default.
    #[serde(default)]
    pub set_clock: bool,
}

/// A terminal pushing over ZKTeco PUSH / ADMS to the agent's push receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AdmsSettings {
    /// Addresses (`192.168.1.201`) or networks (`192.168.1.0/24`, `fd00::/8`) the device may push from; empty
    /// (the default) accepts any sender that knows the serial.
    #[serde(default)]
    pub allow_from: Vec<String>,
}

impl AdmsSettings {
    /// The `allow_from` entries as networks (a bare address is a network of one).
    ///
    /// # Errors
    /// The first entry that is neither an address nor a network, named.
    pub fn allowed_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.allow_from
            .iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("{entry:?} is neither an IP address nor a network such as 192.168.1.0/24"))
            })
            .collect()
    }
}

/// A terminal on a serial line (RS-232/485). See `serial::format` for the line format keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SerialSettings {
    /// The port, such as `/dev/ttyUSB0`.
    pub port: String,
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// `none`, `even` or `odd`.
    #[serde(default = "default_parity")]
    pub parity: String,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// The field separator (one character; `" "` for runs of spaces). Give this or `pattern`.
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub pin_field: Option<usize>,
    #[serde(default)]
    pub time_field: Option<usize>,
    #[serde(default)]
    pub state_field: Option<usize>,
    #[serde(default)]
    pub verify_field: Option<usize>,
    /// A line pattern such as `T {time} U{pin} S{state}`. Give this or `delimiter`.
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default = "default_time_format")]
    pub time_format: String,
    #[serde(default = "default_reconnect_secs")]
    pub reconnect_secs: u64,
}

/// A Modbus TCP or RTU terminal. See `modbus` for the register map.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModbusSettings {
    /// `host:port` for Modbus TCP, or a serial port path (starting with `/`) for RTU.
    pub address: String,
    #[serde(default = "default_unit")]
    pub unit_id: u8,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// Every Modbus call is abandoned after this long.
    #[serde(default = "default_modbus_timeout_ms")]
    pub timeout_ms: u64,
    /// RTU only (with parity, data_bits, stop_bits).
    #[serde(default = "default_baud")]
    pub baud_rate: u32,
    /// `none`, `even` or `odd`.
    #[serde(default = "default_parity")]
    pub parity: String,
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// `holding` (function 3, default) or `input` (function 4) registers.
    #[serde(default = "default_register_kind")]
    pub register_kind: String,
    /// The event counter: how many events the device has ever recorded, wrapping at 2^16 or 2^32.
    pub counter_register: u16,
    /// 1 (16-bit counter) or 2 (32-bit, high word first).
    #[serde(default = "default_one")]
    pub counter_words: u8,
    /// The first register of the event ring.
    pub ring_start: u16,
    /// Events in the ring, a power of two; event `n` (counting from 0) is in slot `n mod ring_slots`.
    pub ring_slots: u16,
    /// Registers per slot.
    #[serde(default = "default_slot_registers")]
    pub slot_registers: u16,
    /// Offsets in a slot: PIN (u32, two registers, high first), time (u32 seconds since 1970-01-01 in the device's
    /// local wall-clock time, two registers, high first), state (one register), verify (one register, optional).
    #[serde(default)]
    pub pin_offset: u16,
    #[serde(default = "default_time_offset")]
    pub time_offset: u16,
    #[serde(default = "default_state_offset")]
    pub state_offset: u16,
    #[serde(default)]
    pub verify_offset: Option<u16>,
}

/// The settings of a device's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceSettings {
    Zk(ZkSettings),
    Adms(AdmsSettings),
    Serial(SerialSettings),
    Modbus(ModbusSettings),
    Hikvision(crate::http_terminal::settings::TerminalSettings),
    Dahua(crate::http_terminal::settings::TerminalSettings),
    /// Boxed: a SQL source has many more keys than the other kinds.
    Sql(Box<crate::sql::SqlSettings>),
}

impl DeviceSettings {
    pub const KINDS: &'static str = "\"zk\", \"adms\", \"serial\", \"modbus\", \"hikvision\", \"dahua\" or \"sql\"";

    /// The `kind` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Zk(_) => "zk",
            Self::Adms(_) => "adms",
            Self::Serial(_) => "serial",
            Self::Modbus(_) => "modbus",
            Self::Hikvision(_) => "hikvision",
            Self::Dahua(_) => "dahua",
            Self::Sql(_) => "sql",
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
        "hikvision" => read(table, ignored).map(DeviceSettings::Hikvision),
        "dahua" => read(table, ignored).map(DeviceSettings::Dahua),
        "sql" => read(table, ignored).map(|s| DeviceSettings::Sql(Box::new(s))),
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

fn default_time_format() -> String {
    "%Y-%m-%d %H:%M:%S".into()
}

fn default_reconnect_secs() -> u64 {
    5
}

fn default_parity() -> String {
    "none".into()
}

fn default_data_bits() -> u8 {
    8
}

fn default_stop_bits() -> u8 {
    1
}

fn default_modbus_timeout_ms() -> u64 {
    2000
}

fn default_register_kind() -> String {
    "holding".into()
}

fn default_one() -> u8 {
    1
}

fn default_slot_registers() -> u16 {
    5
}

fn default_time_offset() -> u16 {
    2
}

fn default_state_offset() -> u16 {
    4
}

/// The problems of a kind's settings that serde cannot see, as `(key, message)`: values out of range, a line
/// format that does not parse, a register map that does not fit.
pub fn check(settings: &DeviceSettings) -> Vec<(&'static str, String)> {
    match settings {
        DeviceSettings::Zk(z) => match z.protocol.as_deref() {
            None | Some("tcp" | "udp") => Vec::new(),
            Some(other) => vec![("protocol", format!("{other:?} is not \"tcp\" or \"udp\""))],
        },
        DeviceSettings::Adms(a) => a.allowed_networks().err().map(|e| ("allow_from", e)).into_iter().collect(),
        DeviceSettings::Serial(s) => crate::serial::settings::check(s),
        DeviceSettings::Modbus(m) => crate::modbus::settings::check(m),
        DeviceSettings::Hikvision(t) => crate::http_terminal::settings::check(t, "hikvision"),
        DeviceSettings::Dahua(t) => crate::http_terminal::settings::check(t, "dahua"),
        DeviceSettings::Sql(s) => crate::sql::settings::check(s),
    }
}
