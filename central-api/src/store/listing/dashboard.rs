//! Reads for the web dashboard, each limited to the caller's sites like the rest of [`super`]: attendance counts by
//! site, day and status (the 30-day chart), agents' and devices' latest status and recent faults (the devices
//! page), new punches after an id (the live stream) and one employee's punches in a span (the day page).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::store::{on_reader, Store, StoreError};

/// How many of a site's employee-days had one status on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub site_id: String,
    pub work_date: NaiveDate,
    /// `None`: provisional, pending.
    pub status: Option<String>,
    pub days: i64,
}

/// An agent's latest status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentHealth {
    pub agent_id: String,
    pub site_id: String,
    pub revoked: bool,
    /// `None`: it never reported.
    pub received_at: Option<DateTime<Utc>>,
    pub agent_version: Option<String>,
    pub buffer_depth: Option<i64>,
    pub oldest_unacked_age_secs: Option<i64>,
    pub faults_json: Option<String>,
}

/// A registered device with its latest reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceHealth {
    pub serial: String,
    pub site_id: String,
    pub name: String,
    pub kind: String,
    pub time_zone: String,
    /// `false`: registered automatically when first named by an agent, not yet reviewed.
    pub confirmed: bool,
    pub agent_id: Option<String>,
    pub reachable: Option<bool>,
    pub last_success: Option<DateTime<Utc>>,
    pub record_count: Option<i64>,
    pub clock_drift_secs: Option<i64>,
    pub faults_json: Option<String>,
    pub received_at: Option<DateTime<Utc>>,
}

/// A fault as it appeared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    pub agent_id: String,
    pub site_id: String,
    pub device_serial: Option<String>,
    pub code: String,
    pub message: String,
    pub since: DateTime<Utc>,
}

/// A punch with what a person reading it needs: the device's name and zone, the employee's name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PunchView {
    pub id: i64,
    /// The punch key, hex.
    pub key: String,
    pub site_id: String,
    pub device_serial: String,
    pub device_name: Option<String>,
    /// The device's configured IANA zone (the local time is in it).
    pub time_zone: Option<String>,
    pub pin: String,
    pub employee_name: Option<String>,
    pub local_time: NaiveDateTime,
    pub utc_time: DateTime<Utc>,
    pub direction: String,
    pub source: String,
}

type PunchRow = (
    i64,
    Vec<u8>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    NaiveDateTime,
    DateTime<Utc>,
    String,
    String,
);

const PUNCH_SELECT: &str = "SELECT l.id, l.punch_key, l.site_id, l.device_serial, d.name, d.time_zone, l.pin, \
     e.name, l.local_time, l.utc_time, l.direction, l.source FROM all_logs l \
     LEFT JOIN devices d ON d.serial = l.device_serial LEFT JOIN employees e ON e.employee_id = l.pin ";

fn punch_view(row: PunchRow) -> PunchView {
    let (id, key, site_id, device_serial, device_name, time_zone, pin, employee_name, local_time, utc_time, d, s) = row;
    PunchView {
        id,
        key: hex::encode(key),
        site_id,
        device_serial,
        device_name,
        time_zone,
        pin,
        employee_name,
        local_time,
        utc_time,
        direction: d,
        source: s,
    }
}

impl Store {
    /// Attendance rows counted by (site, day, status) over `from..=to`, for the sites in scope.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn status_counts(
        &self,
        scope: Option<&str>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<StatusCount>, StoreError> {
        let rows: Vec<(String, NaiveDate, Option<String>, i64)> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT e.site_id, a.work_date, a.status, COUNT(*) FROM attendance a \
             JOIN employees e ON e.employee_id = a.employee_id WHERE e.site_id IS NOT NULL AND ",
            scoped!("e.site_id", "1"),
            " AND a.work_date >= $2 AND a.work_date <= $3 GROUP BY e.site_id, a.work_date, a.status"
        ))
        .bind(scope)
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(site_id, work_date, status, days)| StatusCount { site_id, work_date, status, days })
            .collect())
    }

    /// Every agent in scope with its latest status, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn agent_health(&self, scope: Option<&str>) -> Result<Vec<AgentHealth>, StoreError> {
        type Row = (
            String,
            String,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT a.agent_id, a.site_id, a.revoked_at, s.received_at, s.agent_version, s.buffer_depth, \
             s.oldest_unacked_age_secs, s.faults_json FROM agents a \
             LEFT JOIN agent_status s ON s.agent_id = a.agent_id WHERE ",
            scoped!("a.site_id", "1"),
            " ORDER BY a.agent_id"
        ))
        .bind(scope)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(agent_id, site_id, revoked, received_at, agent_version, depth, oldest, faults_json)| AgentHealth {
                agent_id,
                site_id,
                revoked: revoked.is_some(),
                received_at,
                agent_version,
                buffer_depth: depth,
                oldest_unacked_age_secs: oldest,
                faults_json,
            })
            .collect())
    }

    /// Every device in scope with its latest reported status, by serial.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn device_health(&self, scope: Option<&str>) -> Result<Vec<DeviceHealth>, StoreError> {
        let rows = on_reader!(self, |pool| sqlx::query_as::<_, DeviceHealthRow>(concat!(
            "SELECT d.serial, d.site_id, d.name, d.kind, d.time_zone, d.confirmed, s.agent_id, s.reachable, \
             s.last_success, s.record_count, s.clock_drift_secs, s.faults_json, s.received_at FROM devices d \
             LEFT JOIN device_status s ON s.device_serial = d.serial WHERE ",
            scoped!("d.site_id", "1"),
            " ORDER BY d.serial"
        ))
        .bind(scope)
        .fetch_all(pool)
        .await)?;
        Ok(rows.into_iter().map(DeviceHealthRow::into_health).collect())
    }

    /// The `limit` latest faults that appeared on agents (or their devices) in scope, newest first; a fault about
    /// another site (`other_site_id`, e.g. an agent naming that site's device) is in that site's scope too.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn recent_faults(&self, scope: Option<&str>, limit: i64) -> Result<Vec<FaultEvent>, StoreError> {
        type Row = (String, String, Option<String>, String, String, DateTime<Utc>);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT f.agent_id, a.site_id, f.device_serial, f.code, f.message, f.since FROM fault_history f \
             JOIN agents a ON a.agent_id = f.agent_id WHERE (",
            scoped!("a.site_id", "1"),
            " OR ",
            scoped!("f.other_site_id", "1"),
            ") ORDER BY f.id DESC LIMIT $2"
        ))
        .bind(scope)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(agent_id, site_id, device_serial, code, message, since)| FaultEvent {
                agent_id,
                site_id,
                device_serial,
                code,
                message,
                since,
            })
            .collect())
    }

    /// The highest AllLogs id (0 when empty): where a live stream starts.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn last_log_id(&self) -> Result<i64, StoreError> {
        let (id,): (Option<i64>,) =
            on_reader!(self, |pool| sqlx::query_as("SELECT MAX(id) FROM all_logs").fetch_one(pool).await)?;
        Ok(id.unwrap_or(0))
    }

    /// Up to `limit` punches in scope with an id above `after`, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn punches_after(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<PunchView>, StoreError> {
        let sql = format!("{PUNCH_SELECT} WHERE {} AND l.id > $2 ORDER BY l.id LIMIT $3", scoped!("l.site_id", "1"));
        let rows: Vec<PunchRow> =
            on_reader!(self, |pool| sqlx::query_as(&sql).bind(scope).bind(after).bind(limit).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(punch_view).collect())
    }

    /// One PIN's punches with `from <= local_time < to`, by time.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn punches_of(
        &self,
        pin: &str,
        from: NaiveDateTime,
        to: NaiveDateTime,
    ) -> Result<Vec<PunchView>, StoreError> {
        let sql = format!(
            "{PUNCH_SELECT} WHERE l.pin = $1 AND l.local_time >= $2 AND l.local_time < $3 ORDER BY l.local_time, l.id"
        );
        let rows: Vec<PunchRow> =
            on_reader!(self, |pool| sqlx::query_as(&sql).bind(pin).bind(from).bind(to).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(punch_view).collect())
    }
}

#[derive(sqlx::FromRow)]
struct DeviceHealthRow {
    serial: String,
    site_id: String,
    name: String,
    kind: String,
    time_zone: String,
    confirmed: bool,
    agent_id: Option<String>,
    reachable: Option<bool>,
    last_success: Option<DateTime<Utc>>,
    record_count: Option<i64>,
    clock_drift_secs: Option<i64>,
    faults_json: Option<String>,
    received_at: Option<DateTime<Utc>>,
}

impl DeviceHealthRow {
    fn into_health(self) -> DeviceHealth {
        DeviceHealth {
            serial: self.serial,
            site_id: self.site_id,
            name: self.name,
            kind: self.kind,
            time_zone: self.time_zone,
            confirmed: self.confirmed,
            agent_id: self.agent_id,
            reachable: self.reachable,
            last_success: self.last_success,
            record_count: self.record_count,
            clock_drift_secs: self.clock_drift_secs,
            faults_json: self.faults_json,
            received_at: self.received_at,
        }
    }
}
