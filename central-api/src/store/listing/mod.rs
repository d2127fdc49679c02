//! Reads for the admin API, every one limited to a caller's sites: `scope` is `None` for root (every site) or the
//! administrator's username, and the statements keep only rows of sites granted in `admin_sites`. Long lists are
//! read in pages by keyset (`after` the last key returned), never by offset.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;

use super::{on_reader, Store, StoreError};

pub use attendance::{AttendanceFilter, AttendanceRow, PunchCountsView};

/// Keeps rows whose site column `$col` is granted to the administrator bound at `$n` (or every row when NULL).
macro_rules! scoped {
    ($col:literal, $n:literal) => {
        concat!("($", $n, " IS NULL OR ", $col, " IN (SELECT site_id FROM admin_sites WHERE username = $", $n, "))")
    };
}

mod attendance;
mod dashboard;
mod man_days;

pub use dashboard::{AgentHealth, DeviceHealth, FaultEvent, PunchView, StatusCount};
pub use man_days::{ManDaysRow, ManDaysSlot};

/// A site with its settings, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SiteInfo {
    pub site_id: String,
    pub name: String,
    /// IANA zone: "now" and "today" for the site's days.
    pub time_zone: String,
    /// Which days the sandwich rule may turn into absences: `off`, `week_offs`, `week_offs_and_holidays`.
    pub sandwich: String,
    /// The week-off rule of employees without one of their own (none: no weekly off).
    pub default_week_off_rule: Option<String>,
}

/// An agent as listed (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AgentInfo {
    pub agent_id: String,
    pub site_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceInfo {
    pub serial: String,
    pub site_id: String,
    pub name: String,
    pub model: Option<String>,
    pub kind: String,
    pub time_zone: String,
    pub direction: String,
    /// `false` for a device registered automatically when an agent of its site first named it; an administrator
    /// confirms it by changing it (`PUT /api/v1/devices/{serial}`).
    pub confirmed: bool,
}

/// One raw punch of AllLogs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogRow {
    pub id: i64,
    pub site_id: String,
    pub device_serial: String,
    pub pin: String,
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub local_time: NaiveDateTime,
    pub utc_time: DateTime<Utc>,
    pub state: i16,
    pub verify: i16,
    /// The work code typed on the terminal (0: none).
    pub work_code: i64,
    /// How the punch arrived: `zk_pull`, `zk_realtime`, `adms_push`, `serial`, `modbus`, ...
    pub source: String,
    /// What the reader was configured as: `IN`, `OUT` or `BOTH`.
    pub direction: String,
    pub agent_id: String,
    /// The state code exactly as the device sent it (`state` is the normalised one); null when the source has none
    /// or the punch predates it.
    pub raw_state: Option<i64>,
    /// The verification code exactly as the device sent it (`verify` is the normalised one: a push terminal's 4 is
    /// card, 2); null when the source has none or the punch predates it.
    pub raw_verify: Option<i64>,
}

/// A manual log or a leave with the employee's site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RequestRow {
    pub id: i64,
    pub employee_id: String,
    pub site_id: Option<String>,
    /// Manual log: the punch's local time. Leave: the first day (midnight).
    #[schema(value_type = crate::http::api::local_time::LocalDateTime)]
    pub from: NaiveDateTime,
    /// Leave: the last day; manual log: none.
    pub to: Option<NaiveDate>,
    /// Manual log: `in`, `out`, ... (the punch state code); leave: its kind.
    pub kind: String,
    pub reason: String,
    pub approval: String,
    pub requested_by: String,
    pub decided_by: Option<String>,
}

impl Store {
    /// Sites in scope, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_sites(&self, scope: Option<&str>) -> Result<Vec<SiteInfo>, StoreError> {
        type Row = (String, String, String, String, Option<String>);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT site_id, name, time_zone, sandwich, default_week_off_rule FROM sites WHERE ",
            scoped!("site_id", "1"),
            " ORDER BY site_id"
        ))
        .bind(scope)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(site_id, name, time_zone, sandwich, default_week_off_rule)| SiteInfo {
                site_id,
                name,
                time_zone,
                sandwich,
                default_week_off_rule,
            })
            .collect())
    }

    /// Agents in scope, by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_agents(&self, scope: Option<&str>, site: Option<&str>) -> Result<Vec<AgentInfo>, StoreError> {
        type Row = (String, String, DateTime<Utc>, Option<DateTime<Utc>>);
        let rows: Vec<Row> = on_reader!(self, |pool| {
            sqlx::query_as(concat!(
                "SELECT agent_id, site_id, created_at, revoked_at FROM agents WHERE ",
                scoped!("site_id", "1"),
                " AND ($2 IS NULL OR site_id = $2) ORDER BY agent_id"
            ))
            .bind(scope)
            .bind(site)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(agent_id, site_id, created_at, revoked_at)| AgentInfo { agent_id, site_id, created_at, revoked_at })
            .collect())
    }

    /// Devices in scope, by serial.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_devices(&self, scope: Option<&str>, site: Option<&str>) -> Result<Vec<DeviceInfo>, StoreError> {
        type Row = (String, String, String, Option<String>, String, String, String, bool);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT serial, site_id, name, model, kind, time_zone, direction, confirmed FROM devices WHERE ",
            scoped!("site_id", "1"),
            " AND ($2 IS NULL OR site_id = $2) ORDER BY serial"
        ))
        .bind(scope)
        .bind(site)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(serial, site_id, name, model, kind, time_zone, direction, confirmed)| DeviceInfo {
                serial,
                site_id,
                name,
                model,
                kind,
                time_zone,
                direction,
                confirmed,
            })
            .collect())
    }

    /// A page of AllLogs in scope, by id, after `after`.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_logs(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
        pin: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<LogRow>, StoreError> {
        type Row = (
            i64,
            String,
            String,
            String,
            NaiveDateTime,
            DateTime<Utc>,
            i16,
            i16,
            i64,
            String,
            String,
            String,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT id, site_id, device_serial, pin, local_time, utc_time, state, verify, work_code, source, \
             direction, agent_id, raw_state, raw_verify \
             FROM all_logs WHERE ",
            scoped!("site_id", "1"),
            " AND ($2 IS NULL OR site_id = $2) AND ($3 IS NULL OR pin = $3) AND id > $4 ORDER BY id LIMIT $5"
        ))
        .bind(scope)
        .bind(site)
        .bind(pin)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    site_id,
                    device_serial,
                    pin,
                    local_time,
                    utc_time,
                    state,
                    verify,
                    work_code,
                    source,
                    direction,
                    agent_id,
                    raw_state,
                    raw_verify,
                )| LogRow {
                    id,
                    site_id,
                    device_serial,
                    pin,
                    local_time,
                    utc_time,
                    state,
                    verify,
                    work_code,
                    source,
                    direction,
                    agent_id,
                    raw_state,
                    raw_verify,
                },
            )
            .collect())
    }

    /// Manual logs in scope (optionally one site's, one approval state), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_manual_logs(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
        approval: Option<&str>,
    ) -> Result<Vec<RequestRow>, StoreError> {
        type Row = (i64, String, Option<String>, NaiveDateTime, i16, String, String, String, Option<String>);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT m.id, m.employee_id, e.site_id, m.local_time, m.state, m.reason, m.approval, m.requested_by, \
             m.decided_by FROM manual_logs m JOIN employees e ON e.employee_id = m.employee_id WHERE ",
            scoped!("e.site_id", "1"),
            " AND ($2 IS NULL OR e.site_id = $2) AND ($3 IS NULL OR m.approval = $3) ORDER BY m.id"
        ))
        .bind(scope)
        .bind(site)
        .bind(approval)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, employee_id, site_id, from, state, reason, approval, requested_by, decided_by)| RequestRow {
                id,
                employee_id,
                site_id,
                from,
                to: None,
                kind: protocol::PunchState::from_code(u8::try_from(state).unwrap_or(u8::MAX)).name().into_owned(),
                reason,
                approval,
                requested_by,
                decided_by,
            })
            .collect())
    }

    /// Leaves in scope (optionally one site's, one approval state), by id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_leaves(
        &self,
        scope: Option<&str>,
        site: Option<&str>,
        approval: Option<&str>,
    ) -> Result<Vec<RequestRow>, StoreError> {
        type Row = (i64, String, Option<String>, NaiveDate, NaiveDate, String, String, String, Option<String>);
        let rows: Vec<Row> = on_reader!(self, |pool| sqlx::query_as(concat!(
            "SELECT l.id, l.employee_id, e.site_id, l.from_date, l.to_date, l.kind, l.approval, l.requested_by, \
             l.decided_by FROM leaves l JOIN employees e ON e.employee_id = l.employee_id WHERE ",
            scoped!("e.site_id", "1"),
            " AND ($2 IS NULL OR e.site_id = $2) AND ($3 IS NULL OR l.approval = $3) ORDER BY l.id"
        ))
        .bind(scope)
        .bind(site)
        .bind(approval)
        .fetch_all(pool)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(id, employee_id, site_id, from, to, kind, approval, requested_by, decided_by)| RequestRow {
                id,
                employee_id,
                site_id,
                from: from.and_time(chrono::NaiveTime::MIN),
                to: Some(to),
                kind,
                reason: String::new(),
                approval,
                requested_by,
                decided_by,
            })
            .collect())
    }

    /// The site of a manual log's or leave's employee (`table` is `manual_logs` or `leaves`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id.
    pub async fn request_site(&self, table: RequestTable, id: i64) -> Result<Option<String>, StoreError> {
        let sql = match table {
            RequestTable::ManualLogs => {
                "SELECT e.site_id FROM manual_logs r JOIN employees e ON e.employee_id = r.employee_id WHERE r.id = $1"
            }
            RequestTable::Leaves => {
                "SELECT e.site_id FROM leaves r JOIN employees e ON e.employee_id = r.employee_id WHERE r.id = $1"
            }
        };
        let row: Option<(Option<String>,)> =
            on_reader!(self, |pool| sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?;
        let what = match table {
            RequestTable::ManualLogs => "manual log",
            RequestTable::Leaves => "leave",
        };
        row.map(|(s,)| s).ok_or_else(|| StoreError::NotFound { what, id: id.to_string() })
    }
}

/// The request tables [`Store::request_site`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestTable {
    ManualLogs,
    Leaves,
}
