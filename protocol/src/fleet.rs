//! What central sends an agent to run a site from the central office (issue 17): the agent's managed configuration
//! ([`ManagedConfig`]) and, on HTTPS, the answer to its poll for work ([`AgentInbox`]).
//!
//! - [`ManagedConfig`]: central -> agent. The devices central's device list assigns to the agent, each as the
//!   `[[device]]` entry the agent's configuration file would hold (a JSON object, checked by the agent with the same
//!   code as `edge-agent check-config`), under a version that only grows. On MQTT it travels on the agent's
//!   `commands` topic as a frame of kind [`crate::FrameKind::Config`]; on HTTPS inside an [`AgentInbox`].
//! - [`AgentInbox`]: central -> agent over HTTPS, the answer to `GET /api/v1/agent/inbox`: the configuration when
//!   the agent runs another version, and the commands waiting for it.
//!
//! Both are frozen by golden vectors like the other envelopes. Added in protocol version 2 without changing any
//! existing bytes (new types, new enum variants at the end).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::DecodeError;
use crate::envelope::AgentCommand;
use crate::ids::{AgentId, DeviceSerial, SiteId};
use crate::limits::{MAX_DEVICES_PER_STATUS, MAX_DEVICE_ENTRY_LEN, MAX_LIST_ITEMS};

/// One managed device: its serial and its `[[device]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedDevice {
    pub serial: DeviceSerial,
    /// The device's `[[device]]` entry as a JSON object (`{"kind": "zk", "serial": "...", "time_zone": "...",
    /// "host": "..."}`): exactly the keys the agent's configuration file takes. At most
    /// [`MAX_DEVICE_ENTRY_LEN`] bytes.
    pub entry: String,
}

/// The configuration central manages for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedConfig {
    pub version: u16,
    pub agent: AgentId,
    pub site: SiteId,
    /// Grows with every change of the site's devices; the agent reports the one it runs in
    /// [`crate::AgentStatus::config_version`].
    pub config_version: u64,
    #[serde(with = "crate::time::wire_utc")]
    pub issued_at: DateTime<Utc>,
    pub devices: Vec<ManagedDevice>,
    /// Seconds between status envelopes, when central sets it.
    pub status_interval_secs: Option<u32>,
}

impl ManagedConfig {
    /// Checks counts, entry sizes, that every entry is a JSON object naming its own serial, and that no serial is
    /// there twice.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.devices.len() > MAX_DEVICES_PER_STATUS {
            return Err(DecodeError::TooMany {
                what: "devices",
                count: self.devices.len(),
                limit: MAX_DEVICES_PER_STATUS,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for (index, device) in self.devices.iter().enumerate() {
            if device.entry.len() > MAX_DEVICE_ENTRY_LEN {
                return Err(DecodeError::invalid(
                    "devices.entry",
                    format!(
                        "device {index} has {} bytes, over the limit of {MAX_DEVICE_ENTRY_LEN}",
                        device.entry.len()
                    ),
                ));
            }
            let entry: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&device.entry).map_err(|e| {
                    DecodeError::invalid("devices.entry", format!("device {index}: not a JSON object: {e}"))
                })?;
            if entry.get("serial").and_then(|s| s.as_str()) != Some(device.serial.as_str()) {
                return Err(DecodeError::invalid(
                    "devices.entry",
                    format!("device {index}: the entry does not name serial {}", device.serial),
                ));
            }
            if !seen.insert(&device.serial) {
                return Err(DecodeError::invalid("devices.serial", format!("{} is there twice", device.serial)));
            }
        }
        if self.status_interval_secs == Some(0) {
            return Err(DecodeError::invalid("status_interval_secs", "must be at least 1"));
        }
        Ok(())
    }
}

/// Central's answer to an agent's poll over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInbox {
    pub version: u16,
    pub agent: AgentId,
    /// The agent's configuration, when it is managed and runs another version than central's.
    pub config: Option<ManagedConfig>,
    /// Commands for the agent, oldest first. A command may come again (a lost answer is delivered again); the agent
    /// carries out each `command_id` at most once.
    pub commands: Vec<AgentCommand>,
}

impl AgentInbox {
    /// Checks the configuration, the number of commands and each command.
    ///
    /// # Errors
    /// [`DecodeError::TooMany`] or [`DecodeError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if let Some(config) = &self.config {
            config.validate()?;
            if config.agent != self.agent {
                return Err(DecodeError::invalid("config.agent", "the configuration is for another agent"));
            }
        }
        if self.commands.len() > MAX_LIST_ITEMS {
            return Err(DecodeError::TooMany { what: "commands", count: self.commands.len(), limit: MAX_LIST_ITEMS });
        }
        for command in &self.commands {
            command.validate()?;
            if command.agent != self.agent {
                return Err(DecodeError::invalid("commands.agent", "a command is for another agent"));
            }
        }
        Ok(())
    }
}
