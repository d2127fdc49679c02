//! The fleet inventory: every agent with what its latest status said (version, host, uptime, configuration
//! version, last seen, buffer depth, dead letters, faults), and every device, registered at central or only reported
//! by an agent, with its identity, counts against capacities, clock drift, last punch and last successful read.
//! Reads are limited to the caller's sites like [`super::listing`]; the alert evaluator reads every site.

use chrono::{DateTime, Duration, Utc};
use protocol::{DeviceInfo, Fault};
use serde::Serialize;

use super::{on_reader, Store, StoreError};

/// A fault as the inventory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FaultView {
    pub code: String,
    pub message: String,
    pub since: DateTime<Utc>,
}

impl From<Fault> for FaultView {
    fn from(f: Fault) -> Self {
        Self { code: f.code, message: f.message, since: f.since }
    }
}

fn faults(json: Option<&str>) -> Vec<FaultView> {
    json.map(super::history::parse_faults).unwrap_or_default().into_iter().map(FaultView::from).collect()
}

/// An agent and its latest status.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AgentInventory {
    pub agent_id: String,
    pub site_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked: bool,
    /// When central last received a status (`None`: never).
    pub last_seen: Option<DateTime<Utc>>,
    /// The agent's software version.
    pub version: Option<String>,
    pub hostname: Option<String>,
    pub uptime_secs: Option<i64>,
    /// The version of the centrally managed configuration it runs (`None`: a local file, or unknown).
    pub config_version: Option<i64>,
    /// Punches buffered, not yet acknowledged.
    pub buffer_depth: Option<i64>,
    pub oldest_unacked_age_secs: Option<i64>,
    pub dead_letters: Option<i64>,
    pub faults: Vec<FaultView>,
}

/// A count and the capacity it fills, when the device told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub count: Option<i64>,
    pub capacity: Option<i64>,
}

/// A device, registered or only reported, with its latest reported state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeviceInventory {
    pub serial: String,
    pub site_id: String,
    /// Registered at central (`devices`); an unregistered one was only reported by an agent.
    pub registered: bool,
    pub name: Option<String>,
    /// The kind the agent reports (`zk-tcp`, `adms`, ...), else the registered one.
    pub kind: String,
    pub agent_id: Option<String>,
    /// `None`: never reported.
    pub reachable: Option<bool>,
    /// When it last became reachable or unreachable.
    pub reachable_since: Option<DateTime<Utc>>,
    /// The last successful read (or push).
    pub last_success: Option<DateTime<Utc>>,
    /// When its newest punch happened.
    pub last_punch: Option<DateTime<Utc>>,
    /// When central received its latest state.
    pub reported_at: Option<DateTime<Utc>>,
    /// Not in its agent's latest status (removed from the agent's configuration): its state is old.
    pub stale: bool,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub platform: Option<String>,
    /// The serial the device itself reports, when it differs it is a fault.
    pub reported_serial: Option<String>,
    pub users: Usage,
    pub fingerprints: Usage,
    pub faces: Usage,
    pub records: Usage,
    /// Device clock minus agent clock, seconds.
    pub clock_drift_secs: Option<i64>,
    pub faults: Vec<FaultView>,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    agent_id: String,
    site_id: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    agent_version: Option<String>,
    hostname: Option<String>,
    uptime_secs: Option<i64>,
    reported_config_version: Option<i64>,
    buffer_depth: Option<i64>,
    oldest_unacked_age_secs: Option<i64>,
    dead_letters: Option<i64>,
    faults_json: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DeviceRow {
    serial: String,
    site_id: String,
    registered: bool,
    name: Option<String>,
    registered_kind: Option<String>,
    agent_id: Option<String>,
    kind: Option<String>,
    reachable: Option<bool>,
    reachable_since: Option<DateTime<Utc>>,
    last_success: Option<DateTime<Utc>>,
    last_punch: Option<DateTime<Utc>>,
    received_at: Option<DateTime<Utc>>,
    agent_received_at: Option<DateTime<Utc>>,
    record_count: Option<i64>,
    user_count: Option<i64>,
    clock_drift_secs: Option<i64>,
    info_json: Option<String>,
    faults_json: Option<String>,
}

fn usage(count: Option<i64>, capacity: Option<u32>) -> Usage {
    Usage { count, capacity: capacity.map(i64::from) }
}

impl DeviceRow {
    fn into_inventory(self) -> DeviceInventory {
        let info: DeviceInfo = self.info_json.as_deref().and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
        // A device row written with the agent's latest status has the same `received_at` (one transaction).
        let stale = match (self.received_at, self.agent_received_at) {
            (Some(device), Some(agent)) => device + Duration::seconds(1) < agent,
            _ => false,
        };
        let kind = self.kind.filter(|k| !k.is_empty()).or(self.registered_kind).unwrap_or_default();
        DeviceInventory {
            serial: self.serial,
            site_id: self.site_id,
            registered: self.registered,
            name: self.name,
            kind,
            agent_id: self.agent_id,
            reachable: self.reachable,
            reachable_since: self.reachable_since,
            last_success: self.last_success,
            last_punch: self.last_punch,
            reported_at: self.received_at,
            stale,
            model: info.model,
            firmware: info.firmware,
            platform: info.platform,
            reported_serial: info.reported_serial,
            users: usage(self.user_count, info.user_capacity),
            fingerprints: usage(info.fingerprint_count.map(i64::from), info.fingerprint_capacity),
            faces: usage(info.face_count.map(i64::from), info.face_capacity),
            records: usage(self.record_count, info.record_capacity),
            clock_drift_secs: self.clock_drift_secs,
            faults: faults(self.faults_json.as_deref()),
        }
    }
}

const DEVICE_COLUMNS: &str = "s.agent_id, s.kind, s.reachable, s.reachable_since, s.last_success, s.last_punch, \
     s.received_at, a.received_at AS agent_received_at, s.record_count, s.user_count, s.clock_drift_secs, \
     s.info_json, s.faults_json";

impl Store {
    /// Agents in scope (`None`: every site), optionally of one site, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agent_inventory(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
    ) -> Result<Vec<AgentInventory>, StoreError> {
        let rows: Vec<AgentRow> = on_reader!(self, |pool| {
            sqlx::query_as(
            "SELECT a.agent_id, a.site_id, a.created_at, a.revoked_at, s.received_at, s.agent_version, s.hostname, \
             s.uptime_secs, s.reported_config_version, s.buffer_depth, s.oldest_unacked_age_secs, s.dead_letters, \
             s.faults_json FROM agents a LEFT JOIN agent_status s ON s.agent_id = a.agent_id \
             WHERE ($1 IS NULL OR a.site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR a.site_id = $2) ORDER BY a.agent_id"
        )
        .bind(scope)
        .bind(site)
        .fetch_all(pool)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|r| AgentInventory {
                agent_id: r.agent_id,
                site_id: r.site_id,
                created_at: r.created_at,
                revoked: r.revoked_at.is_some(),
                last_seen: r.received_at,
                version: r.agent_version,
                hostname: r.hostname.filter(|h| !h.is_empty()),
                uptime_secs: r.uptime_secs,
                config_version: r.reported_config_version,
                buffer_depth: r.buffer_depth,
                oldest_unacked_age_secs: r.oldest_unacked_age_secs,
                dead_letters: r.dead_letters,
                faults: faults(r.faults_json.as_deref()),
            })
            .collect())
    }

    /// Devices in scope (`None`: every site), optionally of one site: the registered ones with their latest
    /// reported state, then those only reported, by serial.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn device_inventory(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
    ) -> Result<Vec<DeviceInventory>, StoreError> {
        let registered = format!(
            "SELECT d.serial, d.site_id, TRUE AS registered, d.name, d.kind AS registered_kind, {DEVICE_COLUMNS} \
             FROM devices d LEFT JOIN device_status s ON s.device_serial = d.serial \
             LEFT JOIN agent_status a ON a.agent_id = s.agent_id \
             WHERE ($1 IS NULL OR d.site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR d.site_id = $2)"
        );
        let reported = format!(
            "SELECT s.device_serial AS serial, s.site_id, FALSE AS registered, CAST(NULL AS TEXT) AS name, \
             CAST(NULL AS TEXT) AS registered_kind, {DEVICE_COLUMNS} FROM device_status s \
             LEFT JOIN agent_status a ON a.agent_id = s.agent_id \
             WHERE NOT EXISTS (SELECT 1 FROM devices d WHERE d.serial = s.device_serial) \
             AND ($1 IS NULL OR s.site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR s.site_id = $2)"
        );
        let mut rows: Vec<DeviceRow> = Vec::new();
        for sql in [&registered, &reported] {
            let part: Vec<DeviceRow> =
                on_reader!(self, |pool| sqlx::query_as(sql).bind(scope).bind(site).fetch_all(pool).await)?;
            rows.extend(part);
        }
        let mut devices: Vec<DeviceInventory> = rows.into_iter().map(DeviceRow::into_inventory).collect();
        devices.sort_by(|a, b| a.serial.cmp(&b.serial));
        Ok(devices)
    }

    /// Punches stored in AllLogs from each of `serials`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn stored_punches_of(&self, serials: &[String]) -> Result<Vec<(String, i64)>, StoreError> {
        let mut counts = Vec::with_capacity(serials.len());
        for serial in serials {
            let (n,): (i64,) =
                on_reader!(self, |pool| sqlx::query_as("SELECT COUNT(*) FROM all_logs WHERE device_serial = $1")
                    .bind(serial)
                    .fetch_one(pool)
                    .await)?;
            counts.push((serial.clone(), n));
        }
        Ok(counts)
    }
}
