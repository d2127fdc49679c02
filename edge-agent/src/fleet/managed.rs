//! The managed configuration on the agent's side: turning central's [`ManagedConfig`] into device configurations
//! with the checks of `edge-agent check-config`, and keeping the last one applied on disk, so an agent that cannot
//! reach central starts on it.
//!
//! The file is `<data_dir>/managed-config.json` (the envelope in JSON, readable by an operator), written to a
//! temporary file, flushed, and renamed over the old one: a crash leaves the old or the new file, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use protocol::{Encoding, ManagedConfig};

use crate::config::{devices_from_tables, DeviceConfig, Problem};

/// The file name in the data directory.
pub const FILE_NAME: &str = "managed-config.json";

/// The path of the stored configuration.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

/// The devices of a managed configuration, checked like a configuration file's `[[device]]` entries.
///
/// # Errors
/// Every problem, keyed `device[<index>].<key>` as `check-config` keys them.
pub fn devices_of(config: &ManagedConfig) -> Result<Vec<DeviceConfig>, Vec<Problem>> {
    let mut tables = Vec::with_capacity(config.devices.len());
    let mut problems = Vec::new();
    for (index, device) in config.devices.iter().enumerate() {
        match serde_json::from_str::<toml::Table>(&device.entry) {
            Ok(table) => tables.push(table),
            Err(e) => problems.push(Problem {
                key: format!("device[{index}]"),
                message: format!("the entry for {} is not a table of settings: {e}", device.serial),
            }),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    devices_from_tables(tables)
}

/// The stored configuration, if there is a readable one (an unreadable file is logged and ignored).
pub fn load(data_dir: &Path) -> Option<ManagedConfig> {
    let path = path(data_dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot read the stored managed configuration");
            return None;
        }
    };
    match protocol::decode::<ManagedConfig>(&bytes, Encoding::Json) {
        Ok(config) => Some(config),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "the stored managed configuration is unreadable");
            None
        }
    }
}

/// Stores `config` durably (write, flush, rename, flush the directory).
///
/// # Errors
/// When the file cannot be written.
pub fn store(data_dir: &Path, config: &ManagedConfig) -> std::io::Result<()> {
    let bytes = protocol::encode(config, Encoding::Json).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(data_dir)?;
    let target = path(data_dir);
    let temporary = data_dir.join(format!("{FILE_NAME}.tmp"));
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, &target)?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ManagedDevice;

    fn config(entries: &[&str]) -> ManagedConfig {
        ManagedConfig {
            version: protocol::PROTOCOL_VERSION,
            agent: "gate-1".parse().unwrap(),
            site: "plant-1".parse().unwrap(),
            config_version: 3,
            issued_at: chrono::DateTime::from_timestamp(1_795_300_200, 0).unwrap(),
            devices: entries
                .iter()
                .map(|entry| {
                    let value: serde_json::Value = serde_json::from_str(entry).unwrap();
                    ManagedDevice { serial: value["serial"].as_str().unwrap().parse().unwrap(), entry: (*entry).into() }
                })
                .collect(),
            status_interval_secs: None,
        }
    }

    #[test]
    fn entries_are_checked_like_a_file() {
        let ok = config(&[
            r#"{"kind":"zk","serial":"Z1","time_zone":"Asia/Kolkata","host":"10.0.0.5","port":4370}"#,
            r#"{"kind":"adms","serial":"P1","time_zone":"Asia/Kolkata","allow_from":["10.0.0.0/24"]}"#,
        ]);
        let devices = devices_of(&ok).unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].settings.kind(), "zk");

        let bad = config(&[
            r#"{"kind":"zk","serial":"Z1","time_zone":"Asia/Kolkatta","host":"10.0.0.5","colour":"red"}"#,
            r#"{"kind":"modbus","serial":"M1","time_zone":"UTC","address":"10.0.0.9:502","counter_register":0,"ring_start":10,"ring_slots":3}"#,
        ]);
        let problems = devices_of(&bad).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"device[0].time_zone"), "{problems:?}");
        assert!(keys.contains(&"device[0].colour"), "{problems:?}");
        assert!(keys.iter().any(|k| k.starts_with("device[1].")), "{problems:?}");
    }

    #[test]
    fn stored_configuration_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).is_none());
        let config = config(&[r#"{"kind":"zk","serial":"Z1","time_zone":"UTC","host":"10.0.0.5"}"#]);
        store(dir.path(), &config).unwrap();
        assert_eq!(load(dir.path()), Some(config.clone()));
        std::fs::write(path(dir.path()), b"{not json").unwrap();
        assert!(load(dir.path()).is_none(), "an unreadable file is ignored");
    }
}
