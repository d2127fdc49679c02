//! The history of agents' and devices' states: each status an agent sends is compared with the previous one of the
//! same agent and devices, and every change is appended to `status_changes` (a device became reachable or
//! unreachable, a fault was raised or cleared), in the status's own transaction ([`crate::store::status`] calls the
//! two macros here). The inventory fields of protocol version 2 (host name, dead letters, configuration version,
//! device kind, last punch, device identity) are stored beside the latest status.
//!
//! `at` is when the change happened as the agent tells it (a fault's `since`, a device's last success), never later
//! than when central received it; `recorded_at` is when central received it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use protocol::{AgentStatus, DeviceStatus, Fault};
use serde::Serialize;

use super::{on_reader, Store, StoreError};

/// What kind of change a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Reachable,
    Unreachable,
    FaultRaised,
    FaultCleared,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reachable => "reachable",
            Self::Unreachable => "unreachable",
            Self::FaultRaised => "fault_raised",
            Self::FaultCleared => "fault_cleared",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "reachable" => Self::Reachable,
            "unreachable" => Self::Unreachable,
            "fault_raised" => Self::FaultRaised,
            _ => Self::FaultCleared,
        }
    }
}

/// One change found by comparing a status with the previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `None`: the agent itself.
    pub device: Option<String>,
    pub kind: ChangeKind,
    pub code: Option<String>,
    pub message: String,
    pub at: DateTime<Utc>,
}

/// What a device's previous stored status said.
#[derive(Debug, Clone, Default)]
pub struct Previous {
    pub reachable: bool,
    pub faults: Vec<Fault>,
}

fn fault_list(json: Option<&str>) -> Vec<Fault> {
    json.and_then(|j| serde_json::from_str::<Vec<Fault>>(j).ok()).unwrap_or_default()
}

/// Fault changes between `before` and `after` for one agent or device.
fn fault_changes(
    device: Option<&str>,
    before: &[Fault],
    after: &[Fault],
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let old: HashSet<&str> = before.iter().map(|f| f.code.as_str()).collect();
    let new: HashSet<&str> = after.iter().map(|f| f.code.as_str()).collect();
    let mut changes: Vec<Change> = after
        .iter()
        .filter(|f| !old.contains(f.code.as_str()))
        .map(|f| Change {
            device: device.map(str::to_owned),
            kind: ChangeKind::FaultRaised,
            code: Some(f.code.clone()),
            message: f.message.clone(),
            at: f.since.min(now),
        })
        .collect();
    changes.extend(before.iter().filter(|f| !new.contains(f.code.as_str())).map(|f| Change {
        device: device.map(str::to_owned),
        kind: ChangeKind::FaultCleared,
        code: Some(f.code.clone()),
        message: f.message.clone(),
        at: sent_at.min(now),
    }));
    changes
}

/// The reachability change of a device, if any: against its previous status, or its first state when it had none.
fn reachability_change(
    previous: Option<&Previous>,
    device: &DeviceStatus,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Change> {
    if previous.is_some_and(|p| p.reachable == device.reachable) {
        return None;
    }
    let (kind, at, message) = if device.reachable {
        (ChangeKind::Reachable, device.last_success.unwrap_or(sent_at), "the device answers".to_owned())
    } else {
        let why = device.faults.first();
        (
            ChangeKind::Unreachable,
            why.map_or(sent_at, |f| f.since),
            why.map_or_else(|| "the device does not answer".to_owned(), |f| format!("{}: {}", f.code, f.message)),
        )
    };
    Some(Change { device: Some(device.device.as_str().to_owned()), kind, code: None, message, at: at.min(now) })
}

/// Every change `status` brings against the previous agent faults and device states (pure; the macro reads them).
pub fn changes_of(
    status: &AgentStatus,
    agent_faults_before: Option<&[Fault]>,
    devices_before: &HashMap<String, Previous>,
    now: DateTime<Utc>,
) -> Vec<Change> {
    let sent_at = status.sent_at;
    let mut changes = fault_changes(None, agent_faults_before.unwrap_or(&[]), &status.faults, sent_at, now);
    for device in &status.devices {
        let serial = device.device.as_str();
        let previous = devices_before.get(serial);
        changes.extend(reachability_change(previous, device, sent_at, now));
        let before = previous.map(|p| p.faults.as_slice()).unwrap_or(&[]);
        changes.extend(fault_changes(Some(serial), before, &device.faults, sent_at, now));
    }
    changes
}

/// Reads the previous agent faults and device states of `$status` in the transaction `$tx`, appends the changes to
/// `status_changes`, and evaluates to the changes (for [`store_inventory_in!`]). Run before the status is stored.
macro_rules! record_changes_in {
    ($tx:expr, $status:expr, $now:expr) => {{
        let status: &protocol::AgentStatus = $status;
        let now: chrono::DateTime<chrono::Utc> = $now;
        let tx = &mut *$tx;
        let agent_before: Option<(String,)> =
            sqlx::query_as("SELECT faults_json FROM agent_status WHERE agent_id = $1")
                .bind(status.agent.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let agent_faults = agent_before.map(|(json,)| $crate::store::history::parse_faults(&json));
        let mut devices_before = std::collections::HashMap::new();
        for device in &status.devices {
            let row: Option<(bool, String)> =
                sqlx::query_as("SELECT reachable, faults_json FROM device_status WHERE device_serial = $1")
                    .bind(device.device.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some((reachable, json)) = row {
                devices_before.insert(
                    device.device.as_str().to_owned(),
                    $crate::store::history::Previous { reachable, faults: $crate::store::history::parse_faults(&json) },
                );
            }
        }
        let changes = $crate::store::history::changes_of(status, agent_faults.as_deref(), &devices_before, now);
        for change in &changes {
            sqlx::query(
                "INSERT INTO status_changes (site_id, agent_id, device_serial, change, code, message, at, \
                 recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(status.site.as_str())
            .bind(status.agent.as_str())
            .bind(change.device.as_deref())
            .bind(change.kind.as_str())
            .bind(change.code.as_deref())
            .bind(&change.message)
            .bind(change.at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        changes
    }};
}
pub(crate) use record_changes_in;

/// Stores the inventory fields of `$status` beside the latest agent and device status rows (which must exist: run
/// after they were written), and each device's `reachable_since` from `$changes` ([`record_changes_in!`]).
macro_rules! store_inventory_in {
    ($tx:expr, $status:expr, $changes:expr) => {{
        let status: &protocol::AgentStatus = $status;
        let changes: &[$crate::store::history::Change] = $changes;
        let tx = &mut *$tx;
        sqlx::query(
            "UPDATE agent_status SET hostname = $2, dead_letters = $3, reported_config_version = $4 \
             WHERE agent_id = $1",
        )
        .bind(status.agent.as_str())
        .bind(&status.hostname)
        .bind(i64::try_from(status.dead_letters).unwrap_or(i64::MAX))
        .bind(status.config_version.map(|v| i64::try_from(v).unwrap_or(i64::MAX)))
        .execute(&mut *tx)
        .await?;
        for device in &status.devices {
            let serial = device.device.as_str();
            let since = $crate::store::history::reachable_since(changes, serial);
            sqlx::query(
                "UPDATE device_status SET kind = $2, last_punch = $3, info_json = $4, \
                 reachable_since = COALESCE($5, reachable_since, $6) WHERE device_serial = $1",
            )
            .bind(serial)
            .bind(&device.kind)
            .bind(device.last_punch)
            .bind(device.info.as_ref().and_then(|i| serde_json::to_string(i).ok()))
            .bind(since)
            .bind(status.sent_at)
            .execute(&mut *tx)
            .await?;
        }
    }};
}
pub(crate) use store_inventory_in;

/// Parses a stored fault list (empty when unreadable).
pub fn parse_faults(json: &str) -> Vec<Fault> {
    fault_list(Some(json))
}

/// When `serial`'s reachability changed in `changes`, if it did.
pub fn reachable_since(changes: &[Change], serial: &str) -> Option<DateTime<Utc>> {
    changes
        .iter()
        .find(|c| {
            c.device.as_deref() == Some(serial) && matches!(c.kind, ChangeKind::Reachable | ChangeKind::Unreachable)
        })
        .map(|c| c.at)
}

/// One row of the history, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StatusChange {
    pub id: i64,
    pub site_id: String,
    pub agent_id: String,
    /// `None`: a change of the agent itself.
    pub device_serial: Option<String>,
    pub change: ChangeKind,
    /// The fault's code, for fault changes.
    pub code: Option<String>,
    pub message: String,
    /// When it happened, as the agent reported it.
    pub at: DateTime<Utc>,
    /// When central learned it.
    pub recorded_at: DateTime<Utc>,
}

/// Which history rows to read.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter<'a> {
    /// `None`: every site (root); else the administrator whose granted sites bound the read.
    pub scope: Option<&'a str>,
    pub site: Option<&'a str>,
    pub agent: Option<&'a str>,
    pub device: Option<&'a str>,
    /// Newest first, ids below this one (keyset paging); `None`: from the newest.
    pub before: Option<i64>,
    /// Oldest first, ids above this one (the live stream); takes precedence over `before`.
    pub after: Option<i64>,
    pub limit: i64,
}

type ChangeRow = (i64, String, String, Option<String>, String, Option<String>, String, DateTime<Utc>, DateTime<Utc>);

impl Store {
    /// History rows in scope, newest first (or, with `after`, oldest first).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn status_history(&self, filter: &HistoryFilter<'_>) -> Result<Vec<StatusChange>, StoreError> {
        const SELECT: &str = "SELECT id, site_id, agent_id, device_serial, change, code, message, at, recorded_at \
             FROM status_changes WHERE ($1 IS NULL OR site_id IN (SELECT site_id FROM admin_sites WHERE username = $1)) \
             AND ($2 IS NULL OR site_id = $2) AND ($3 IS NULL OR agent_id = $3) AND ($4 IS NULL OR device_serial = $4) ";
        let (sql, cursor) = match (filter.after, filter.before) {
            (Some(after), _) => (format!("{SELECT} AND id > $5 ORDER BY id LIMIT $6"), after),
            (None, before) => (format!("{SELECT} AND id < $5 ORDER BY id DESC LIMIT $6"), before.unwrap_or(i64::MAX)),
        };
        let rows: Vec<ChangeRow> = on_reader!(self, |pool| sqlx::query_as(&sql)
            .bind(filter.scope)
            .bind(filter.site)
            .bind(filter.agent)
            .bind(filter.device)
            .bind(cursor)
            .bind(filter.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, site_id, agent_id, device_serial, change, code, message, at, recorded_at)| StatusChange {
                id,
                site_id,
                agent_id,
                device_serial,
                change: ChangeKind::parse(&change),
                code,
                message,
                at,
                recorded_at,
            })
            .collect())
    }

    /// The highest history id (0 when empty): where a live stream of changes starts.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn last_status_change_id(&self) -> Result<i64, StoreError> {
        let (id,): (Option<i64>,) =
            on_reader!(self, |pool| sqlx::query_as("SELECT MAX(id) FROM status_changes").fetch_one(pool).await)?;
        Ok(id.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).single().expect("valid")
    }

    fn fault(code: &str, since: i64) -> Fault {
        Fault { code: code.into(), message: format!("{code} happened"), since: t(since) }
    }

    fn status(devices: Vec<DeviceStatus>, faults: Vec<Fault>) -> AgentStatus {
        AgentStatus {
            version: protocol::PROTOCOL_VERSION,
            agent: "gate-1".parse().expect("agent"),
            site: "A".parse().expect("site"),
            sent_at: t(100),
            agent_version: "1".into(),
            uptime_secs: 1,
            buffer_depth: 0,
            oldest_unacked_age_secs: None,
            devices,
            faults,
            command_results: vec![],
            hostname: "h".into(),
            dead_letters: 0,
            config_version: None,
        }
    }

    fn device(serial: &str, reachable: bool, faults: Vec<Fault>) -> DeviceStatus {
        let mut d = DeviceStatus::new(serial.parse().expect("serial"));
        d.reachable = reachable;
        d.last_success = reachable.then(|| t(90));
        d.faults = faults;
        d
    }

    #[test]
    fn a_new_device_gets_its_first_state_and_faults() {
        let s = status(vec![device("D1", false, vec![fault("device_unreachable", 50)])], vec![]);
        let changes = changes_of(&s, None, &HashMap::new(), t(200));
        let kinds: Vec<_> = changes.iter().map(|c| (c.kind, c.code.clone(), c.at)).collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Unreachable, None, t(50)),
                (ChangeKind::FaultRaised, Some("device_unreachable".into()), t(50))
            ]
        );
        assert_eq!(reachable_since(&changes, "D1"), Some(t(50)));
    }

    #[test]
    fn only_differences_are_changes_and_times_never_pass_now() {
        let before: HashMap<_, _> = [(
            "D1".to_owned(),
            Previous { reachable: false, faults: vec![fault("device_unreachable", 50), fault("clock_drift", 10)] },
        )]
        .into();
        // The device answers again, its unreachable fault is gone, the clock fault stays; the agent raises one.
        let s = status(vec![device("D1", true, vec![fault("clock_drift", 10)])], vec![fault("link_down", 500)]);
        let changes = changes_of(&s, Some(&[]), &before, t(200));
        let kinds: Vec<_> = changes.iter().map(|c| (c.device.clone(), c.kind, c.code.clone(), c.at)).collect();
        assert_eq!(
            kinds,
            vec![
                (None, ChangeKind::FaultRaised, Some("link_down".into()), t(200)),
                (Some("D1".into()), ChangeKind::Reachable, None, t(90)),
                (Some("D1".into()), ChangeKind::FaultCleared, Some("device_unreachable".into()), t(100)),
            ]
        );
        // The same status again changes nothing.
        let now: HashMap<_, _> =
            [("D1".to_owned(), Previous { reachable: true, faults: vec![fault("clock_drift", 10)] })].into();
        assert!(changes_of(&s, Some(&s.faults), &now, t(300)).is_empty());
    }
}
