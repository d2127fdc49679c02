//! Agent heartbeats: the latest status per agent, the latest per device, and a history row each time a fault code
//! appears (it was not present in the previous status of the same agent or device).
//!
//! A device entry is kept only for a device registered at the agent's site: one registered nowhere is registered
//! there (unconfirmed, as a first punch would), one registered at another site is ignored and returned in
//! [`StatusStored::foreign`] so the ingest service raises the cross-site fault (issue 12).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use protocol::{AgentStatus, Fault};

use super::{Store, StoreError};

/// What storing a status did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusStored {
    /// Fault codes that appeared with this status and were appended to the history.
    pub new_faults: usize,
    /// (serial, its site) of entries ignored because the device is registered at another site.
    pub foreign: Vec<(String, String)>,
}

/// Registers a device first seen in a status at the agent's site, unconfirmed.
const REGISTER: &str = "INSERT INTO devices (serial, site_id, name, kind, time_zone, direction, status, created_at, \
     confirmed) SELECT $1, site_id, $1, $2, time_zone, 'BOTH', 'active', $3, $4 FROM sites WHERE site_id = $5 \
     ON CONFLICT (serial) DO NOTHING";

/// The kind a status reports for a device, or `unknown`.
fn reported_kind(kind: &str) -> &str {
    if kind.is_empty() || kind.len() > 40 {
        "unknown"
    } else {
        kind
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Invalid(format!("cannot serialise status: {e}")))
}

fn codes(json: Option<String>) -> HashSet<String> {
    json.and_then(|j| serde_json::from_str::<Vec<Fault>>(&j).ok())
        .map(|faults| faults.into_iter().map(|f| f.code).collect())
        .unwrap_or_default()
}

fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

macro_rules! store_status_in {
    ($tx:expr, $status:expr) => {{
        let status: &AgentStatus = $status;
        let tx = &mut *$tx;
        let now = Utc::now();
        let agent = status.agent.as_str();
        let site = status.site.as_str();
        // (device serial or None for the agent itself, fault) for every fault code not present last time.
        let mut appeared: Vec<(Option<&str>, &Fault)> = Vec::new();
        // The history of changes (issue 17) compares with the rows this status is about to replace.
        let fleet_changes = super::history::record_changes_in!(tx, status, now);

        let previous: Option<(String,)> = sqlx::query_as("SELECT faults_json FROM agent_status WHERE agent_id = $1")
            .bind(agent)
            .fetch_optional(&mut *tx)
            .await?;
        let before = codes(previous.map(|p| p.0));
        appeared.extend(status.faults.iter().filter(|f| !before.contains(&f.code)).map(|f| (None, f)));

        sqlx::query(
            "INSERT INTO agent_status (agent_id, site_id, sent_at, received_at, agent_version, uptime_secs, \
             buffer_depth, oldest_unacked_age_secs, faults_json, command_results_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (agent_id) DO UPDATE SET site_id = excluded.site_id, sent_at = excluded.sent_at, \
             received_at = excluded.received_at, agent_version = excluded.agent_version, \
             uptime_secs = excluded.uptime_secs, buffer_depth = excluded.buffer_depth, \
             oldest_unacked_age_secs = excluded.oldest_unacked_age_secs, faults_json = excluded.faults_json, \
             command_results_json = excluded.command_results_json",
        )
        .bind(agent)
        .bind(site)
        .bind(status.sent_at)
        .bind(now)
        .bind(&status.agent_version)
        .bind(clamp(status.uptime_secs))
        .bind(clamp(status.buffer_depth))
        .bind(status.oldest_unacked_age_secs.map(clamp))
        .bind(to_json(&status.faults)?)
        .bind(to_json(&status.command_results)?)
        .execute(&mut *tx)
        .await?;

        let mut foreign = Vec::new();
        for device in &status.devices {
            let serial = device.device.as_str();
            let registered: Option<(String,)> = sqlx::query_as("SELECT site_id FROM devices WHERE serial = $1")
                .bind(serial)
                .fetch_optional(&mut *tx)
                .await?;
            match registered {
                Some((other,)) if other != site => {
                    foreign.push((serial.to_owned(), other));
                    continue;
                }
                Some(_) => {}
                None => {
                    sqlx::query(REGISTER)
                        .bind(serial)
                        .bind(reported_kind(&device.kind))
                        .bind(now)
                        .bind(false)
                        .bind(site)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            let previous: Option<(String,)> =
                sqlx::query_as("SELECT faults_json FROM device_status WHERE device_serial = $1")
                    .bind(serial)
                    .fetch_optional(&mut *tx)
                    .await?;
            let before = codes(previous.map(|p| p.0));
            appeared.extend(device.faults.iter().filter(|f| !before.contains(&f.code)).map(|f| (Some(serial), f)));
            sqlx::query(
                "INSERT INTO device_status (device_serial, agent_id, site_id, reachable, last_success, record_count, \
                 user_count, clock_drift_secs, faults_json, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (device_serial) DO UPDATE SET agent_id = excluded.agent_id, \
                 site_id = excluded.site_id, reachable = excluded.reachable, last_success = excluded.last_success, \
                 record_count = excluded.record_count, user_count = excluded.user_count, \
                 clock_drift_secs = excluded.clock_drift_secs, faults_json = excluded.faults_json, \
                 received_at = excluded.received_at",
            )
            .bind(serial)
            .bind(agent)
            .bind(site)
            .bind(device.reachable)
            .bind(device.last_success)
            .bind(device.record_count.map(i64::from))
            .bind(device.user_count.map(i64::from))
            .bind(device.clock_drift_secs)
            .bind(to_json(&device.faults)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        super::history::store_inventory_in!(tx, status, &fleet_changes);
        for (device, fault) in &appeared {
            sqlx::query(
                "INSERT INTO fault_history (agent_id, device_serial, code, message, since, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(agent)
            .bind(*device)
            .bind(&fault.code)
            .bind(&fault.message)
            .bind(fault.since)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        StatusStored { new_faults: appeared.len(), foreign }
    }};
}

impl Store {
    /// Stores an agent's status in one transaction: the latest per agent and per device, and the faults that
    /// appeared since the previous status.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn store_status(&self, status: &AgentStatus) -> Result<StatusStored, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let mut tx = s.writer.begin_with("BEGIN IMMEDIATE").await?;
                let stored = store_status_in!(tx, status);
                tx.commit().await?;
                Ok(stored)
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let stored = store_status_in!(tx, status);
                tx.commit().await?;
                Ok(stored)
            }
        }
    }

    /// When the agent's latest status was received, if it ever sent one.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn last_status_at(&self, agent_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let row: Option<(DateTime<Utc>,)> =
            super::on_reader!(self, |pool| sqlx::query_as("SELECT received_at FROM agent_status WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_optional(pool)
                .await)?;
        Ok(row.map(|r| r.0))
    }
}
