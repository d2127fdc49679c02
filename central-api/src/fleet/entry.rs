//! A registered device as the agent's `[[device]]` entry, checked by the agent's own code
//! (`edge_agent::config::devices_from_tables`, what `edge-agent check-config` runs), with the refusals named by the
//! API's fields.
//!
//! Central's columns map to the entry's common keys (`serial`, `name`, `time_zone`, `direction`) and to the kind:
//! `zk-tcp` and `zk-udp` are `kind = "zk"` with `protocol` tcp/udp, `host` from `ip` and `port` from `port`; the other
//! kinds (`adms`, `serial`, `modbus`, `hikvision`, `dahua`) keep their name. Everything else the driver needs is in
//! the device's `settings` object, with the agent's key names (`comm_key`, `baud_rate`, `url`, ...). A refusal of a
//! settings key is named `settings.<key>`.

use serde_json::{Map, Value};

use crate::store::admin::NewDevice;

/// The kinds a device may have at central.
pub const KINDS: [&str; 7] = ["zk-tcp", "zk-udp", "adms", "serial", "modbus", "hikvision", "dahua"];

/// A refusal: the API field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    pub field: String,
    pub message: String,
}

impl EntryError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Keys set from the device's columns, which `settings` may not hold.
const COMMON: [&str; 5] = ["kind", "serial", "name", "time_zone", "direction"];

fn is_zk(kind: &str) -> bool {
    kind == "zk-tcp" || kind == "zk-udp"
}

/// The agent's `[[device]]` entry for `device` with `settings`, checked like a configuration file's.
///
/// # Errors
/// The first refusal, named by the API's field (`ip`, `time_zone`, `settings.baud_rate`, ...).
pub fn entry(device: &NewDevice, settings: &Map<String, Value>) -> Result<Map<String, Value>, EntryError> {
    if !KINDS.contains(&device.kind.as_str()) {
        return Err(EntryError::new("kind", format!("{:?} is not one of {}", device.kind, KINDS.join(", "))));
    }
    let zk = is_zk(&device.kind);
    let mut table = Map::new();
    for (key, value) in settings {
        if COMMON.contains(&key.as_str()) {
            return Err(EntryError::new(format!("settings.{key}"), format!("set {key} with the device's own field")));
        }
        if zk && ["host", "port", "protocol"].contains(&key.as_str()) {
            let field = if key == "host" {
                "ip"
            } else if key == "protocol" {
                "kind"
            } else {
                "port"
            };
            return Err(EntryError::new(format!("settings.{key}"), format!("set it with the device's {field} field")));
        }
        if value.is_null() {
            return Err(EntryError::new(format!("settings.{key}"), "null is not a value (leave the key out)"));
        }
        table.insert(key.clone(), value.clone());
    }
    table.insert("kind".into(), Value::from(if zk { "zk" } else { device.kind.as_str() }));
    table.insert("serial".into(), Value::from(device.serial.as_str()));
    table.insert("name".into(), Value::from(device.name.as_str()));
    table.insert("time_zone".into(), Value::from(device.time_zone.as_str()));
    table.insert("direction".into(), Value::from(device.direction.as_str()));
    if zk {
        table.insert("protocol".into(), Value::from(if device.kind == "zk-udp" { "udp" } else { "tcp" }));
        if let Some(ip) = &device.ip {
            table.insert("host".into(), Value::from(ip.as_str()));
        }
        if let Some(port) = device.port {
            table.insert("port".into(), Value::from(port));
        }
    }
    check(&device.kind, &table)?;
    Ok(table)
}

/// Runs the agent's checks on the entry.
fn check(kind: &str, table: &Map<String, Value>) -> Result<(), EntryError> {
    let toml: toml::Table = serde_json::from_value(Value::Object(table.clone()))
        .map_err(|e| EntryError::new("settings", format!("not a table of settings: {e}")))?;
    match edge_agent::config::devices_from_tables(vec![toml]) {
        Ok(_) => Ok(()),
        Err(problems) => {
            let first = problems.into_iter().next();
            Err(first.map_or_else(
                || EntryError::new("settings", "refused"),
                |p| EntryError::new(field_of(kind, &p.key, &p.message), p.message),
            ))
        }
    }
}

/// The API field for a problem the agent keyed `device[0].<key>` (or `device[0]` for a missing key).
fn field_of(kind: &str, key: &str, message: &str) -> String {
    let key = key.strip_prefix("device[0]").unwrap_or(key).trim_start_matches('.');
    let key = if key.is_empty() {
        // serde names the key in backquotes: "missing field `host`".
        message.split('`').nth(1).unwrap_or("").to_owned()
    } else {
        key.to_owned()
    };
    match key.as_str() {
        "" => "settings".to_owned(),
        "serial" | "name" | "time_zone" | "direction" | "kind" => key,
        "host" if is_zk(kind) => "ip".to_owned(),
        "port" if is_zk(kind) => "port".to_owned(),
        "protocol" if is_zk(kind) => "kind".to_owned(),
        other => format!("settings.{other}"),
    }
}

/// The settings with secrets hidden, for listing: every `password` (or `*_password`) value becomes `"********"`.
pub fn masked(settings: &Map<String, Value>) -> Map<String, Value> {
    settings
        .iter()
        .map(|(k, v)| if is_secret(k) { (k.clone(), Value::from(MASK)) } else { (k.clone(), v.clone()) })
        .collect()
}

/// What a hidden secret reads as; sending it back keeps the stored value.
pub const MASK: &str = "********";

fn is_secret(key: &str) -> bool {
    key == "password" || key.ends_with("_password") || key == "comm_key"
}

/// `settings` with every masked secret replaced by the stored value from `old`.
pub fn unmasked(settings: &Map<String, Value>, old: &Map<String, Value>) -> Map<String, Value> {
    settings
        .iter()
        .map(|(k, v)| {
            if is_secret(k) && v.as_str() == Some(MASK) {
                (k.clone(), old.get(k).cloned().unwrap_or(Value::Null))
            } else {
                (k.clone(), v.clone())
            }
        })
        .filter(|(_, v)| !v.is_null())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn device(kind: &str) -> NewDevice {
        NewDevice {
            serial: "DEV-1".into(),
            site_id: "A".into(),
            name: "Gate".into(),
            model: None,
            ip: Some("10.0.0.5".into()),
            port: Some(4370),
            kind: kind.into(),
            time_zone: "Asia/Kolkata".into(),
            direction: "BOTH".into(),
        }
    }

    fn settings(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_zk_device_becomes_the_agents_entry() {
        let table = entry(&device("zk-udp"), &settings(json!({"comm_key": 7, "poll_interval_secs": 5}))).unwrap();
        assert_eq!(table["kind"], "zk");
        assert_eq!(table["protocol"], "udp");
        assert_eq!(table["host"], "10.0.0.5");
        assert_eq!(table["port"], 4370);
        assert_eq!(table["comm_key"], 7);
    }

    #[test]
    fn refusals_name_the_api_field() {
        let mut no_ip = device("zk-tcp");
        no_ip.ip = None;
        assert_eq!(entry(&no_ip, &Map::new()).unwrap_err().field, "ip");
        let mut zone = device("zk-tcp");
        zone.time_zone = "Mars/Base".into();
        assert_eq!(entry(&zone, &Map::new()).unwrap_err().field, "time_zone");
        let err = entry(&device("zk-tcp"), &settings(json!({"colour": "red"}))).unwrap_err();
        assert_eq!(err.field, "settings.colour");
        let err = entry(&device("zk-tcp"), &settings(json!({"host": "10.0.0.9"}))).unwrap_err();
        assert_eq!(err.field, "settings.host");
        let err = entry(&device("serial"), &settings(json!({"port": "/dev/ttyUSB0", "baud_rate": 9600}))).unwrap_err();
        assert!(err.field.starts_with("settings"), "{err}");
        let modbus = settings(json!({"address": "10.0.0.9:502", "counter_register": 0, "ring_start": 10,
            "ring_slots": 3}));
        let err = entry(&device("modbus"), &modbus).unwrap_err();
        assert_eq!(err.field, "settings.ring_slots", "{err}");
        let err = entry(&device("telex"), &Map::new()).unwrap_err();
        assert_eq!(err.field, "kind");
        let err = entry(&device("adms"), &settings(json!({"allow_from": ["10.0.0.0/33"]}))).unwrap_err();
        assert_eq!(err.field, "settings.allow_from", "{err}");
    }

    #[test]
    fn secrets_are_masked_and_kept() {
        let stored = settings(json!({"url": "http://10.0.0.7", "user": "admin", "password": "s3cret"}));
        let shown = masked(&stored);
        assert_eq!(shown["password"], MASK);
        assert_eq!(unmasked(&shown, &stored)["password"], "s3cret");
        let changed = settings(json!({"url": "http://10.0.0.7", "user": "admin", "password": "new"}));
        assert_eq!(unmasked(&changed, &stored)["password"], "new");
    }
}
