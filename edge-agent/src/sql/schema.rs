//! Matching the configured table and columns with what the database has, and checking their types.
//!
//! Used when the poller connects (a mismatch is the fault `sql_schema_mismatch`, retried at every poll) and by
//! `edge-agent check-config`, which prints every problem at once.

use super::client::{types, SqlClient, SqlError};
use super::query::{Columns, Plan, Positions, Source};
use super::row::{RowMapper, TimeKind};
use super::settings::{Mode, SqlSource};

/// The source, ready to read: its statements, where each value sits in a row, and the row mapper.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub plan: Plan,
    pub positions: Positions,
    pub mapper: RowMapper,
}

/// Asks the database for the source's columns and builds the plan.
///
/// # Errors
/// [`SqlError`] from the database, or [`SqlError::Schema`] naming every column that is missing or of a type that
/// cannot be read.
pub async fn resolve(client: &mut SqlClient, source: &SqlSource) -> Result<Resolved, SqlError> {
    let probe = Plan {
        dialect: source.connection.dialect,
        source: source.source.clone(),
        columns: Columns {
            id: source.columns.id.clone(),
            employee: source.columns.employee.clone(),
            time: source.columns.time.clone(),
            state: None,
            verify: None,
            work_code: None,
            device: None,
        },
        time_kind: TimeKind::Naive,
        batch_size: source.batch_size,
    };
    let available = client.columns(&probe.describe()).await.map_err(|e| match e {
        SqlError::Schema(message) => SqlError::Schema(format!("{}: {message}", from_text(&source.source))),
        other => other,
    })?;
    resolve_columns(source, &available)
}

/// The plan for `source` given the columns the database reported, as `(name, type)`.
///
/// # Errors
/// [`SqlError::Schema`] naming every problem.
pub fn resolve_columns(source: &SqlSource, available: &[(String, String)]) -> Result<Resolved, SqlError> {
    let dialect = source.connection.dialect;
    let mut problems = Vec::new();
    let mut find = |key: &str, wanted: &str, usable: &dyn Fn(&str) -> bool, needs: &str| -> Option<String> {
        let found = available.iter().find(|(name, _)| name == wanted).or_else(|| {
            let mut same = available.iter().filter(|(name, _)| name.eq_ignore_ascii_case(wanted));
            match (same.next(), same.next()) {
                (Some(one), None) => Some(one),
                _ => None,
            }
        });
        match found {
            None => {
                let names: Vec<&str> = available.iter().map(|(n, _)| n.as_str()).take(40).collect();
                problems.push(format!("{key} {wanted:?} is not a column (it has: {})", names.join(", ")));
                None
            }
            Some((name, ty)) if !usable(ty) => {
                problems.push(format!("{key} {name:?} is of type {ty}, which cannot hold {needs}"));
                None
            }
            Some((name, _)) => Some(name.clone()),
        }
    };
    let wanted = &source.columns;
    let id = find("id_column", &wanted.id, &types::is_integer, "an integer id");
    let employee = find("employee_column", &wanted.employee, &types::is_code, "an employee id (integer or text)");
    let time_usable = |ty: &str| types::time_kind(dialect, ty).is_some();
    let time = find("time_column", &wanted.time, &time_usable, "a date and time");
    let mut optional = |key: &str, wanted: &Option<String>| {
        wanted.as_ref().map(|w| find(key, w, &types::is_code, "a code (integer or text)"))
    };
    let state = optional("state_column", &wanted.state);
    let verify = optional("verify_column", &wanted.verify);
    let work_code = optional("work_code_column", &wanted.work_code);
    let device = optional("device_column", &wanted.device);
    let time_kind = time
        .as_ref()
        .and_then(|t| available.iter().find(|(name, _)| name == t))
        .and_then(|(_, ty)| types::time_kind(dialect, ty))
        .unwrap_or(TimeKind::Naive);
    if time_kind == TimeKind::Text && matches!(source.mode, Mode::Rescan { .. }) {
        problems.push("mode \"rescan\" needs a time_column of a date-time type, not text".into());
    }
    if time_kind == TimeKind::Text && source.mapper.time_format.is_none() {
        tracing::debug!(device = %source.serial, "text time column read as ISO 8601 (no time_format)");
    }
    if !problems.is_empty() {
        return Err(SqlError::Schema(format!("{}: {}", from_text(&source.source), problems.join("; "))));
    }
    let (Some(id), Some(employee), Some(time)) = (id, employee, time) else {
        return Err(SqlError::Schema("required columns missing".into()));
    };
    let columns = Columns {
        id,
        employee,
        time,
        state: state.flatten(),
        verify: verify.flatten(),
        work_code: work_code.flatten(),
        device: device.flatten(),
    };
    let plan = Plan { dialect, source: source.source.clone(), columns, time_kind, batch_size: source.batch_size };
    let mut mapper = source.mapper.clone();
    mapper.time_kind = time_kind;
    Ok(Resolved { positions: plan.positions(), plan, mapper })
}

fn from_text(source: &Source) -> String {
    match source {
        Source::Table(parts) => format!("table {}", parts.join(".")),
        Source::Query(_) => "query".into(),
    }
}

impl Resolved {
    /// The fields of one selected row, by role.
    pub fn fields<'a>(&self, values: &[Option<&'a [u8]>]) -> super::row::Fields<'a> {
        let at = |i: Option<usize>| i.and_then(|i| values.get(i).copied().flatten());
        super::row::Fields {
            id: at(Some(0)),
            employee: at(Some(1)),
            time: at(Some(2)),
            state: at(self.positions.state),
            verify: at(self.positions.verify),
            work_code: at(self.positions.work_code),
            device: at(self.positions.device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceConfig, DeviceSettings};
    use crate::sql::query::Dialect;

    fn biotime(driver: &str, mode: &str) -> SqlSource {
        let settings: crate::sql::settings::SqlSettings = toml::from_str(&format!(
            "driver = \"{driver}\"\nhost = \"db\"\ndatabase = \"bt\"\nuser = \"r\"\npreset = \"biotime\"\nmode = \"{mode}\""
        ))
        .unwrap();
        let device = DeviceConfig {
            serial: "BT".parse().unwrap(),
            name: "BT".into(),
            time_zone: chrono_tz::UTC,
            direction: protocol::Direction::Both,
            settings: DeviceSettings::Sql(Box::new(settings.clone())),
        };
        crate::sql::settings::build(&"plant-1".parse().unwrap(), &device, &settings).unwrap()
    }

    fn columns(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect()
    }

    #[test]
    fn biotime_on_postgres_reads_moments() {
        let available = columns(&[
            ("id", "INT4"),
            ("emp_code", "VARCHAR"),
            ("punch_time", "TIMESTAMPTZ"),
            ("punch_state", "VARCHAR"),
            ("verify_type", "INT4"),
            ("work_code", "VARCHAR"),
            ("terminal_sn", "VARCHAR"),
            ("terminal_alias", "VARCHAR"),
        ]);
        let resolved = resolve_columns(&biotime("postgres", "rescan"), &available).unwrap();
        assert_eq!(resolved.plan.time_kind, TimeKind::Instant);
        assert_eq!(resolved.mapper.time_kind, TimeKind::Instant);
        assert_eq!(resolved.positions.count, 7);
        assert_eq!(resolved.plan.dialect, Dialect::Postgres);
    }

    #[test]
    fn names_match_without_case_and_types_are_checked() {
        let available = columns(&[
            ("ID", "BIGINT UNSIGNED"),
            ("EMP_CODE", "VARCHAR"),
            ("PUNCH_TIME", "DATETIME"),
            ("punch_state", "DOUBLE"),
            ("terminal_sn", "VARCHAR"),
        ]);
        let Err(SqlError::Schema(message)) = resolve_columns(&biotime("mysql", "cursor"), &available) else {
            panic!("a mismatch")
        };
        assert!(message.contains("state_column \"punch_state\" is of type DOUBLE"), "{message}");
        assert!(message.contains("verify_column \"verify_type\" is not a column"), "{message}");
        assert!(message.contains("work_code_column \"work_code\" is not a column"), "{message}");
        assert!(!message.contains("id_column"), "{message}");
        let text_time = columns(&[
            ("id", "INT"),
            ("emp_code", "VARCHAR"),
            ("punch_time", "VARCHAR"),
            ("punch_state", "VARCHAR"),
            ("verify_type", "INT"),
            ("work_code", "VARCHAR"),
            ("terminal_sn", "VARCHAR"),
        ]);
        assert!(resolve_columns(&biotime("mysql", "cursor"), &text_time).is_ok());
        let Err(SqlError::Schema(message)) = resolve_columns(&biotime("mysql", "rescan"), &text_time) else {
            panic!("rescan on text")
        };
        assert!(message.contains("rescan"), "{message}");
    }
}
