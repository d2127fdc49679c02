//! Running dozens of sites from the central office (issue 17), central's side.
//!
//! - **Managed configuration.** Central's device list is the source of truth for agents with `[central] managed =
//!   true`. [`config_for`] builds an agent's [`ManagedConfig`]: the site's active devices assigned to the agent (or
//!   to no agent), each as the `[[device]]` entry the agent's own checks accept ([`entry`]), under the site's
//!   configuration version (`store::fleet`: one more on every device change, in the same transaction). An agent
//!   reports the version it runs in its status; one that runs another version is sent the configuration: over MQTT
//!   by [`dispatch`] (a frame of kind `Config` on its `commands` topic, signed with central's key for the agent),
//!   over HTTPS in the answer to its poll (`http::agent_inbox`).
//! - **Commands** are rows of `agent_commands`: created `pending` by the API for one device or every device of a
//!   site, handed out once as new (`delivered`: published on MQTT with QoS 1, or returned to a poll), and finished
//!   `done` or `failed` by the result the agent reports in a status. A pending command whose expiry passes becomes
//!   `expired` and is never handed out. The agent carries out each command id at most once, so a redelivery (a lost
//!   poll answer is handed out again after a minute) is harmless.
//! - Every agent message is checked against the agent's site before anything here reads it (`ingest`), and a result
//!   is only taken for a command of the agent that reports it.

pub mod dispatch;
pub mod entry;
pub mod privilege;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use protocol::{AgentCommand, AgentId, AgentStatus, ManagedConfig, ManagedDevice, SiteId};

use crate::store::fleet::CommandRecord;
use crate::store::{Store, StoreError};

/// In-process wake-ups: a poll waiting for work, the MQTT dispatcher. Other replicas find the same rows on their next
/// round (every second).
#[derive(Debug, Default)]
pub struct Hub {
    tick: std::sync::atomic::AtomicU64,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Something changed (a command was created, a device list changed): wake whoever waits.
    pub fn poke(&self) {
        let n = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.changed.send_replace(n);
    }

    /// Waits for the next [`Hub::poke`] or `timeout`, whichever is first.
    pub async fn wait(&self, timeout: std::time::Duration) {
        let mut changed = self.changed.subscribe();
        let _ = tokio::time::timeout(timeout, changed.changed()).await;
    }
}

/// The configuration of `agent` at `site`, as central holds it now. Devices whose stored settings no longer pass
/// the agent's checks are left out (and logged), so one bad row cannot stop a whole site.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn config_for(store: &Store, agent: &AgentId, site: &SiteId) -> Result<ManagedConfig, StoreError> {
    let (version, devices) = store.agent_devices(site.as_str(), agent.as_str()).await?;
    let mut managed = Vec::with_capacity(devices.len());
    for device in devices {
        let serial = device.record.device.serial.clone();
        let settings: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&device.settings_json).unwrap_or_default();
        match (entry::entry(&device.record.device, &settings), serial.parse()) {
            (Ok(table), Ok(serial)) => {
                managed.push(ManagedDevice { serial, entry: serde_json::Value::Object(table).to_string() });
            }
            (Err(e), _) => tracing::warn!(device = %serial, error = %e, "device left out of the managed configuration"),
            (_, Err(e)) => tracing::warn!(device = %serial, error = %e, "device left out of the managed configuration"),
        }
    }
    Ok(ManagedConfig {
        version: protocol::PROTOCOL_VERSION,
        agent: agent.clone(),
        site: site.clone(),
        config_version: u64::try_from(version).unwrap_or(0),
        issued_at: Utc::now(),
        devices: managed,
        status_interval_secs: None,
    })
}

/// The protocol command for a stored one.
pub fn wire_command(record: &CommandRecord) -> Option<AgentCommand> {
    Some(AgentCommand {
        version: protocol::PROTOCOL_VERSION,
        command_id: u64::try_from(record.id).ok()?,
        agent: record.agent_id.parse().ok()?,
        issued_at: record.created_at,
        expires_at: Some(record.expires_at),
        action: record.action()?,
    })
}

/// What a status tells the fleet side: how the agent is reached, the version it runs, and command results (only
/// for the agent's own commands). Called after the status was checked against the agent's credential and site.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn on_status(store: &Store, status: &AgentStatus, transport: &str) -> Result<(), StoreError> {
    store.record_link(status.agent.as_str(), status.site.as_str(), transport, status.config_version).await?;
    for result in &status.command_results {
        let Ok(id) = i64::try_from(result.command_id) else { continue };
        let outcome = store.command(id).await?.and_then(|c| users::outcome_for(&c, result));
        if let Some(command) = store.finish_command(status.agent.as_str(), result, outcome.as_ref()).await? {
            users::after_result(store, &command).await?;
        }
    }
    Ok(())
}

/// How long a command waits to be delivered before it expires, when its creator does not say.
pub const DEFAULT_EXPIRY: chrono::Duration = chrono::Duration::hours(1);

/// The expiry of a command created now, `expires_in_secs` from now (default [`DEFAULT_EXPIRY`], at most a week).
pub fn expiry(now: DateTime<Utc>, expires_in_secs: Option<u32>) -> DateTime<Utc> {
    let secs = expires_in_secs.map_or(DEFAULT_EXPIRY.num_seconds(), |s| i64::from(s).clamp(1, 7 * 86_400));
    now + chrono::Duration::seconds(secs)
}

pub mod users;
