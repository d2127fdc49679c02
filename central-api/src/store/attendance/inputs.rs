//! Loading what the engine needs: the small reference tables (shifts, week-off rules, sites with their holidays and
//! settings) once per run, then employees and their leave for a batch of employees.

use std::collections::HashMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use protocol::{Pin, SiteId};
use sqlx::Row;

use super::shifts::{shift_from_row, ShiftRecord};
use super::{parse_approval, parse_week_off};
use crate::attendance::engine::{
    Employee, Holiday, HolidayKind, Leave, SandwichSetting, Shift, SiteCalendar, SiteSettings, WeekOffRule,
};
use crate::store::{on_tx, StoreError, Tx};

/// A site as the job layer needs it: its calendar and its zone (which decides "now" for its days).
#[derive(Debug, Clone)]
pub struct SiteInfo {
    pub calendar: SiteCalendar,
    pub zone: Tz,
    /// The week-off rule of the site's employees without one of their own.
    pub default_week_off: Option<WeekOffRule>,
}

/// The small tables every computation needs.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub shifts: HashMap<String, Shift>,
    pub sites: HashMap<String, SiteInfo>,
    pub week_offs: HashMap<String, WeekOffRule>,
}

/// Which employees to load.
#[derive(Debug, Clone, Copy)]
pub enum Employees<'a> {
    Ids(&'a [String]),
    Site(&'a str),
    All,
}

fn invalid(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(what.to_string())
}

/// Loads shifts, week-off rules, sites and holidays.
///
/// # Errors
/// [`StoreError::Database`], [`StoreError::Invalid`] for a stored value no code writes (a bad zone, kind, spec).
pub async fn load_reference(tx: &mut Tx) -> Result<Reference, StoreError> {
    let shifts: Vec<ShiftRecord> = on_tx!(tx, |conn| {
        let rows = sqlx::query(
            "SELECT code, name, start_time, end_time, grace_late_in_secs, grace_early_out_secs, min_half_day_secs, \
             max_work_for_half_day_secs, overtime_before_secs, overtime_after_secs, deduct_lunch_break, \
             lunch_break_start, lunch_break_duration_secs, check_in_window_secs, check_out_window_secs, pairing, \
             debounce_secs, single_punch FROM shifts",
        )
        .fetch_all(&mut *conn)
        .await?;
        rows.iter().map(|row| Ok(shift_from_row!(row))).collect::<Result<Vec<_>, StoreError>>()?
    });
    let rules: Vec<(String, String)> =
        on_tx!(tx, |conn| sqlx::query_as("SELECT code, spec FROM week_off_rules").fetch_all(&mut *conn).await?);
    let sites: Vec<(String, String, String, Option<String>)> =
        on_tx!(tx, |conn| sqlx::query_as("SELECT site_id, time_zone, sandwich, default_week_off_rule FROM sites")
            .fetch_all(&mut *conn)
            .await?);
    let holidays: Vec<(NaiveDate, String, String, Option<String>)> =
        on_tx!(tx, |conn| sqlx::query_as("SELECT holiday_date, name, kind, site_id FROM holidays")
            .fetch_all(&mut *conn)
            .await?);

    let mut all_holidays = Vec::with_capacity(holidays.len());
    for (date, name, kind, site) in holidays {
        let kind = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional]
            .into_iter()
            .find(|k| k.as_str() == kind)
            .ok_or_else(|| invalid(format!("holiday {name:?} on {date}: kind {kind:?}")))?;
        let site = site.map(|s| s.parse::<SiteId>()).transpose().map_err(invalid)?;
        all_holidays.push(Holiday { date, name, kind, site });
    }
    let mut reference = Reference::default();
    for record in shifts {
        reference.shifts.insert(record.shift.code.clone(), record.shift);
    }
    for (code, spec) in rules {
        reference.week_offs.insert(code, parse_week_off(&spec)?);
    }
    for (site_id, zone, sandwich, default_rule) in sites {
        let site: SiteId = site_id.parse().map_err(invalid)?;
        let zone: Tz = zone.parse().map_err(|_| invalid(format!("site {site_id}: time zone {zone:?}")))?;
        let sandwich = SandwichSetting::from_name(&sandwich)
            .ok_or_else(|| invalid(format!("site {site_id}: sandwich {sandwich:?}")))?;
        let calendar = SiteCalendar::new(site, all_holidays.iter().cloned(), SiteSettings { sandwich });
        let default_week_off = match default_rule {
            Some(code) => Some(
                reference
                    .week_offs
                    .get(&code)
                    .cloned()
                    .ok_or_else(|| invalid(format!("site {site_id}: default week-off rule {code:?} not found")))?,
            ),
            None => None,
        };
        reference.sites.insert(site_id, SiteInfo { calendar, zone, default_week_off });
    }
    Ok(reference)
}

/// The employees selected, split into those attendance can be computed for (active, with a site and a shift) and
/// the ids of the others.
///
/// # Errors
/// [`StoreError::Database`], [`StoreError::Invalid`] for an unknown week-off rule or an id that is not a PIN.
pub async fn load_employees(
    tx: &mut Tx,
    reference: &Reference,
    which: Employees<'_>,
) -> Result<(Vec<Employee>, Vec<String>), StoreError> {
    const SELECT: &str = "SELECT employee_id, name, department, designation, site_id, shift_code, week_off_rule, \
                          date_of_joining, date_of_leaving, active FROM employees";
    macro_rules! rows {
        ($conn:expr, $ids_clause:expr, $ids:expr) => {{
            let conn = $conn;
            match which {
                Employees::Ids(_) => {
                    sqlx::query(&format!("{SELECT} WHERE {}", $ids_clause)).bind($ids).fetch_all(&mut *conn).await?
                }
                Employees::Site(site) => {
                    sqlx::query(&format!("{SELECT} WHERE site_id = $1")).bind(site).fetch_all(&mut *conn).await?
                }
                Employees::All => sqlx::query(SELECT).fetch_all(&mut *conn).await?,
            }
        }};
    }
    let ids: Vec<String> = match which {
        Employees::Ids(ids) => ids.to_vec(),
        _ => Vec::new(),
    };
    let mut computable = Vec::new();
    let mut others = Vec::new();
    macro_rules! convert {
        ($rows:expr) => {
            for row in &$rows {
                let id: String = row.try_get("employee_id")?;
                let site: Option<String> = row.try_get("site_id")?;
                let shift: Option<String> = row.try_get("shift_code")?;
                let active: bool = row.try_get("active")?;
                let (Some(site), Some(shift), true) = (site, shift, active) else {
                    others.push(id);
                    continue;
                };
                let week_off = match row.try_get::<Option<String>, _>("week_off_rule")? {
                    Some(code) => reference
                        .week_offs
                        .get(&code)
                        .cloned()
                        .ok_or_else(|| invalid(format!("employee {id}: week-off rule {code:?} not found")))?,
                    None => {
                        reference.sites.get(site.as_str()).and_then(|s| s.default_week_off.clone()).unwrap_or_default()
                    }
                };
                let employee_id: Pin = id.parse().map_err(|e| invalid(format!("employee {id:?}: {e}")))?;
                computable.push(Employee {
                    employee_id,
                    name: row.try_get("name")?,
                    department: row.try_get("department")?,
                    designation: row.try_get("designation")?,
                    site: site.parse().map_err(invalid)?,
                    shift,
                    date_of_joining: row.try_get("date_of_joining")?,
                    date_of_leaving: row.try_get("date_of_leaving")?,
                    week_off,
                });
            }
        };
    }
    match tx {
        Tx::Postgres(t) => {
            let rows = rows!(&mut **t, "employee_id = ANY($1)", &ids);
            convert!(rows);
        }
        Tx::Sqlite(t) => {
            let json = serde_json::to_string(&ids).map_err(invalid)?;
            let rows = rows!(&mut **t, "employee_id IN (SELECT value FROM json_each($1))", json);
            convert!(rows);
        }
    }
    Ok((computable, others))
}

/// The leave (any approval: the engine keeps only approved ones) of `ids` overlapping `from..=to`, per employee.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn load_leaves(
    tx: &mut Tx,
    ids: &[String],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<String, Vec<Leave>>, StoreError> {
    let rows: Vec<(String, NaiveDate, NaiveDate, bool, String, String)> = match tx {
        Tx::Postgres(t) => {
            sqlx::query_as(
                "SELECT employee_id, from_date, to_date, paid, approval, kind FROM leaves \
                 WHERE employee_id = ANY($1) AND to_date >= $2 AND from_date <= $3",
            )
            .bind(ids)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?
        }
        Tx::Sqlite(t) => {
            sqlx::query_as(
                "SELECT employee_id, from_date, to_date, paid, approval, kind FROM leaves \
                 WHERE employee_id IN (SELECT value FROM json_each($1)) AND to_date >= $2 AND from_date <= $3",
            )
            .bind(serde_json::to_string(ids).map_err(invalid)?)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?
        }
    };
    let mut out: HashMap<String, Vec<Leave>> = HashMap::new();
    for (id, from, to, paid, approval, kind) in rows {
        let employee_id: Pin = id.parse().map_err(|e| invalid(format!("leave of {id:?}: {e}")))?;
        let leave = Leave { employee_id, from, to, paid, approval: parse_approval(&approval)?, kind };
        out.entry(id).or_default().push(leave);
    }
    Ok(out)
}
