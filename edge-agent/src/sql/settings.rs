//! The `[[device]]` keys of a SQL source (`kind = "sql"`), their checks, and the source's configuration built from
//! them. The password is given in a file or an environment variable (or, discouraged, inline) and is never logged.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use protocol::{DeviceSerial, SiteId};
use serde::Deserialize;

use super::preset;
use super::query::{check_identifier, check_query, table_parts, Dialect, Source, CURSOR_MARKER};
use super::row::RowMapper;
use super::row::TimeKind;
use crate::config::DeviceConfig;

/// The settings of a SQL source as written in the file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SqlSettings {
    /// `postgres` or `mysql` (also for MariaDB).
    pub driver: String,
    pub host: String,
    /// The server's port; 5432 for PostgreSQL and 3306 for MySQL when absent.
    #[serde(default)]
    pub port: Option<u16>,
    pub database: String,
    pub user: String,
    /// The password itself (discouraged: prefer `password_file` or `password_env`). At most one of the three; none
    /// means an empty password (trust authentication).
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (its first line).
    #[serde(default)]
    pub password_file: Option<String>,
    /// An environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// `disable`, `prefer` (the default: TLS when the server offers it), `require`, `verify-ca` or `verify-full`.
    #[serde(default = "default_tls")]
    pub tls: String,
    /// PEM file of the CA that signed the server's certificate (`verify-ca`, `verify-full`).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// A known schema (`biotime`) filling in the table and columns; `generic` (the default) names them here.
    #[serde(default)]
    pub preset: Option<String>,
    /// The table or view, possibly `schema.table`. Give this or `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// A read-only `SELECT` holding `{cursor}` once where the last id read goes (`... WHERE t.id > {cursor}`).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub id_column: Option<String>,
    #[serde(default)]
    pub employee_column: Option<String>,
    #[serde(default)]
    pub time_column: Option<String>,
    /// The direction or state: a ZKTeco-style code (0 check-in, 1 check-out, ...) or a word (`IN`, `Check Out`).
    #[serde(default)]
    pub state_column: Option<String>,
    #[serde(default)]
    pub verify_column: Option<String>,
    #[serde(default)]
    pub work_code_column: Option<String>,
    /// The terminal's serial (or short name, mapped through `device_names`); the source's serial when absent.
    #[serde(default)]
    pub device_column: Option<String>,
    /// More direction texts: `{ "E" = 0, "S" = 1 }` (compared without case).
    #[serde(default)]
    pub state_map: BTreeMap<String, u8>,
    /// Device short names to serials: `{ "Main Gate" = "CL9M212260015" }`.
    #[serde(default)]
    pub device_names: BTreeMap<String, String>,
    /// For a time column of text: its chrono format (`%d/%m/%Y %H:%M:%S`); ISO 8601 when absent.
    #[serde(default)]
    pub time_format: Option<String>,
    /// `cursor` (the default: rows after the last id read) or `rescan` (also re-read the rows whose time is within
    /// the last `rescan_hours`, for tables whose ids are not increasing).
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default = "default_rescan_hours")]
    pub rescan_hours: u32,
    /// Rows per read.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// Bound on connecting and on each statement.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// On first start (no cursor stored yet) read only rows after this id; from the first row when absent.
    #[serde(default)]
    pub start_after_id: Option<i64>,
}

fn default_tls() -> String {
    "prefer".into()
}

fn default_mode() -> String {
    "cursor".into()
}

fn default_rescan_hours() -> u32 {
    24
}

/// Rows per read. Each read's rows are held decoded until appended: 2,000 keeps the agent under 50 MB while it reads a
/// backlog of 1,000,000 rows (`bench sql-backlog`: about 46 MB, against 49–51 MB with 5,000) and still reads about
/// 250,000 rows/s.
fn default_batch_size() -> u32 {
    2_000
}

fn default_poll_secs() -> u64 {
    30
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// TLS to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// How rows are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rows after the stored cursor, by id.
    Cursor,
    /// As `Cursor`, plus every poll re-reads the rows whose time is within the window (the punch key absorbs
    /// repeats), for ids that are not increasing.
    Rescan { window: Duration },
}

/// Where and how to connect. `Debug` leaves the password out.
#[derive(Clone)]
pub struct Connection {
    pub dialect: Dialect,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: String,
    pub tls: Tls,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("dialect", &self.dialect)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The configured column names, before they are matched with the database's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedColumns {
    pub id: String,
    pub employee: String,
    pub time: String,
    pub state: Option<String>,
    pub verify: Option<String>,
    pub work_code: Option<String>,
    pub device: Option<String>,
}

/// Everything one SQL source needs.
#[derive(Debug, Clone)]
pub struct SqlSource {
    pub serial: DeviceSerial,
    pub connection: Connection,
    pub source: Source,
    pub columns: WantedColumns,
    pub mode: Mode,
    pub batch_size: u32,
    pub poll_interval: Duration,
    pub start_after_id: Option<i64>,
    /// The mapper; its `time_kind` is replaced once the time column's type is known.
    pub mapper: RowMapper,
    /// `biotime` or `generic`, for status and probe.
    pub preset: &'static str,
}

/// Everything wrong with the settings, as `(key, message)`.
pub fn check(s: &SqlSettings) -> Vec<(&'static str, String)> {
    let mut wrong = Vec::new();
    if dialect(&s.driver).is_none() {
        wrong.push(("driver", format!("{:?} is not \"postgres\" or \"mysql\" (MariaDB is \"mysql\")", s.driver)));
    }
    for (key, value) in [("host", &s.host), ("database", &s.database), ("user", &s.user)] {
        if value.trim().is_empty() {
            wrong.push((key, "is empty".into()));
        }
    }
    if [s.password.is_some(), s.password_file.is_some(), s.password_env.is_some()].iter().filter(|g| **g).count() > 1 {
        wrong.push(("password", "give at most one of password, password_file, password_env".into()));
    } else if let Some(file) = &s.password_file {
        if let Err(e) = std::fs::read_to_string(file) {
            wrong.push(("password_file", format!("{file}: {e}")));
        }
    } else if s.password_env.as_deref().is_some_and(str::is_empty) {
        wrong.push(("password_env", "is empty".into()));
    }
    if tls(&s.tls).is_none() {
        wrong.push((
            "tls",
            format!("{:?} is not \"disable\", \"prefer\", \"require\", \"verify-ca\" or \"verify-full\"", s.tls),
        ));
    }
    if let Some(file) = &s.ca_file {
        if let Err(e) = std::fs::read(file) {
            wrong.push(("ca_file", format!("{file}: {e}")));
        }
    }
    wrong.extend(source_and_columns(s).err().unwrap_or_default());
    for text in s.state_map.keys() {
        if text.trim().is_empty() || text.len() > 64 {
            wrong.push(("state_map", format!("{text:?} must be 1 to 64 bytes")));
        }
    }
    for (name, serial) in &s.device_names {
        if let Err(e) = serial.parse::<DeviceSerial>() {
            wrong.push(("device_names", format!("{name:?}: {e}")));
        }
    }
    if let Some(format) = &s.time_format {
        // A format that formats a fixed moment and reads it back is one chrono understands.
        let sample = chrono::NaiveDate::from_ymd_opt(2024, 3, 26).and_then(|d| d.and_hms_opt(8, 49, 31));
        let ok = sample.is_some_and(|t| {
            use std::fmt::Write;
            let mut text = String::new();
            write!(text, "{}", t.format(format)).is_ok()
                && chrono::NaiveDateTime::parse_from_str(&text, format).is_ok_and(|back| back == t)
        });
        if !ok {
            wrong.push(("time_format", format!("{format:?} does not read back a date and time to the second")));
        }
    }
    match s.mode.as_str() {
        "cursor" | "rescan" => {}
        other => wrong.push(("mode", format!("{other:?} is not \"cursor\" or \"rescan\""))),
    }
    if !(1..=720).contains(&s.rescan_hours) {
        wrong.push(("rescan_hours", format!("{} is outside 1..=720", s.rescan_hours)));
    }
    if !(1..=protocol::limits::MAX_PUNCHES_PER_BATCH as u32).contains(&s.batch_size) {
        wrong.push((
            "batch_size",
            format!("{} is outside 1..={}", s.batch_size, protocol::limits::MAX_PUNCHES_PER_BATCH),
        ));
    }
    if !(1..=86_400).contains(&s.poll_interval_secs) {
        wrong.push(("poll_interval_secs", format!("{} is outside 1..=86400", s.poll_interval_secs)));
    }
    if !(100..=300_000).contains(&s.timeout_ms) {
        wrong.push(("timeout_ms", format!("{} is outside 100..=300000", s.timeout_ms)));
    }
    wrong
}

fn dialect(driver: &str) -> Option<Dialect> {
    match driver.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Some(Dialect::Postgres),
        "mysql" | "mariadb" => Some(Dialect::MySql),
        _ => None,
    }
}

fn tls(mode: &str) -> Option<Tls> {
    Some(match mode {
        "disable" => Tls::Disable,
        "prefer" => Tls::Prefer,
        "require" => Tls::Require,
        "verify-ca" => Tls::VerifyCa,
        "verify-full" => Tls::VerifyFull,
        _ => return None,
    })
}

/// The source and the wanted columns, from the preset and the keys given (which win).
/// Problems by key.
type Wrong = Vec<(&'static str, String)>;

fn source_and_columns(s: &SqlSettings) -> Result<(Source, WantedColumns, &'static str), Wrong> {
    let mut wrong = Vec::new();
    let preset = match s.preset.as_deref() {
        None => None,
        Some(name) if name.eq_ignore_ascii_case("generic") => None,
        Some(name) => match preset::find(name) {
            Some(p) => Some(p),
            None => {
                wrong.push(("preset", format!("{name:?} is not one of {}", preset::names())));
                None
            }
        },
    };
    let source = match (&s.table, &s.query) {
        (Some(_), Some(_)) => {
            wrong.push(("table", "give table or query, not both".into()));
            None
        }
        (None, Some(query)) => match check_query(query) {
            Ok(()) => Some(Source::Query(query.trim().trim_end_matches(';').to_owned())),
            Err(e) => {
                wrong.push(("query", e));
                None
            }
        },
        (table, None) => match table.as_deref().or(preset.map(|p| p.table)) {
            None => {
                wrong.push(("table", "give the table (or a query, or a preset)".into()));
                None
            }
            Some(table) => match table_parts(table) {
                Ok(parts) => Some(Source::Table(parts)),
                Err(e) => {
                    wrong.push(("table", e));
                    None
                }
            },
        },
    };
    let mut required =
        |key: &'static str, given: &Option<String>, default: Option<&'static str>| match given.as_deref().or(default) {
            None => {
                wrong.push((key, "is required (or a preset that names it)".into()));
                String::new()
            }
            Some(name) => {
                if let Err(e) = check_identifier(name) {
                    wrong.push((key, e));
                }
                name.to_owned()
            }
        };
    let id = required("id_column", &s.id_column, preset.map(|p| p.id));
    let employee = required("employee_column", &s.employee_column, preset.map(|p| p.employee));
    let time = required("time_column", &s.time_column, preset.map(|p| p.time));
    let mut optional = |key: &'static str, given: &Option<String>, default: Option<&'static str>| {
        let name = given.as_deref().or(default)?;
        if let Err(e) = check_identifier(name) {
            wrong.push((key, e));
        }
        Some(name.to_owned())
    };
    let state = optional("state_column", &s.state_column, preset.and_then(|p| p.state));
    let verify = optional("verify_column", &s.verify_column, preset.and_then(|p| p.verify));
    let work_code = optional("work_code_column", &s.work_code_column, preset.and_then(|p| p.work_code));
    let device = optional("device_column", &s.device_column, preset.and_then(|p| p.device));
    match source {
        Some(source) if wrong.is_empty() => Ok((
            source,
            WantedColumns { id, employee, time, state, verify, work_code, device },
            preset.map_or("generic", |p| p.name),
        )),
        _ => Err(wrong),
    }
}

/// The password from wherever the settings say it is (empty when none is given).
///
/// # Errors
/// A message naming the file or variable that could not be read (never the password).
pub fn password(s: &SqlSettings) -> Result<String, String> {
    if let Some(password) = &s.password {
        return Ok(password.clone());
    }
    if let Some(file) = &s.password_file {
        let text = std::fs::read_to_string(file).map_err(|e| format!("password_file {file}: {e}"))?;
        return Ok(text.lines().next().unwrap_or("").to_owned());
    }
    if let Some(name) = &s.password_env {
        return std::env::var(name).map_err(|e| format!("password_env {name}: {e}"));
    }
    Ok(String::new())
}

/// The source's configuration for a checked `[[device]]` of kind `sql`.
///
/// # Errors
/// The first problem, as text (a password that cannot be read, settings that do not check).
pub fn build(site: &SiteId, device: &DeviceConfig, s: &SqlSettings) -> Result<SqlSource, String> {
    if let Some((key, message)) = check(s).into_iter().next() {
        return Err(format!("{key}: {message}"));
    }
    let dialect = dialect(&s.driver).ok_or("driver")?;
    let (source, columns, preset) = source_and_columns(s).map_err(|wrong| {
        wrong.into_iter().next().map_or_else(String::new, |(key, message)| format!("{key}: {message}"))
    })?;
    let port = s.port.unwrap_or(match dialect {
        Dialect::Postgres => 5432,
        Dialect::MySql => 3306,
    });
    let connection = Connection {
        dialect,
        host: s.host.clone(),
        port,
        database: s.database.clone(),
        user: s.user.clone(),
        password: password(s)?,
        tls: tls(&s.tls).ok_or("tls")?,
        ca_file: s.ca_file.as_ref().map(PathBuf::from),
        timeout: Duration::from_millis(s.timeout_ms),
    };
    let device_names = s
        .device_names
        .iter()
        .map(|(name, serial)| serial.parse().map(|serial| (name.clone(), serial)).map_err(|e| format!("{e}")))
        .collect::<Result<HashMap<_, _>, _>>()?;
    let mapper = RowMapper {
        site: site.clone(),
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        time_kind: TimeKind::Naive,
        time_format: s.time_format.clone(),
        state_map: s.state_map.iter().map(|(text, code)| (text.trim().to_lowercase(), *code)).collect(),
        device_names,
    };
    let mode = match s.mode.as_str() {
        "rescan" => Mode::Rescan { window: Duration::from_secs(u64::from(s.rescan_hours) * 3600) },
        _ => Mode::Cursor,
    };
    Ok(SqlSource {
        serial: device.serial.clone(),
        connection,
        source,
        columns,
        mode,
        batch_size: s.batch_size,
        poll_interval: Duration::from_secs(s.poll_interval_secs),
        start_after_id: s.start_after_id,
        mapper,
        preset,
    })
}

/// A description of where rows come from, for logs and status (`table iclock_transaction (biotime)`).
pub fn describe(source: &SqlSource) -> String {
    let from = match &source.source {
        Source::Table(parts) => format!("table {}", parts.join(".")),
        Source::Query(_) => format!("query ({CURSOR_MARKER})"),
    };
    format!("{} {from} ({})", source.connection.dialect.name(), source.preset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(extra: &str) -> SqlSettings {
        toml::from_str(&format!("driver = \"mysql\"\nhost = \"db\"\ndatabase = \"att\"\nuser = \"reader\"\n{extra}"))
            .unwrap()
    }

    fn keys(s: &SqlSettings) -> Vec<&'static str> {
        check(s).into_iter().map(|(key, _)| key).collect()
    }

    #[test]
    fn the_biotime_preset_fills_in_and_keys_win() {
        let s = settings("preset = \"biotime\"\ndevice_column = \"terminal_alias\"");
        assert!(check(&s).is_empty(), "{:?}", check(&s));
        let (source, columns, preset) = source_and_columns(&s).unwrap();
        assert_eq!(source, Source::Table(vec!["iclock_transaction".into()]));
        assert_eq!((columns.employee.as_str(), columns.time.as_str()), ("emp_code", "punch_time"));
        assert_eq!(columns.state.as_deref(), Some("punch_state"));
        assert_eq!(columns.device.as_deref(), Some("terminal_alias"));
        assert_eq!(preset, "biotime");
    }

    #[test]
    fn the_generic_form_needs_its_columns() {
        assert_eq!(keys(&settings("table = \"punches\"")), vec!["id_column", "employee_column", "time_column"]);
        let s = settings("table = \"punches\"\nid_column = \"id\"\nemployee_column = \"pin\"\ntime_column = \"at\"");
        assert!(check(&s).is_empty());
    }

    #[test]
    fn wrong_values_are_named() {
        let s: SqlSettings = toml::from_str(
            "driver = \"oracle\"\nhost = \"\"\ndatabase = \"att\"\nuser = \"reader\"\npreset = \"biotime\"\n\
             tls = \"maybe\"\nmode = \"sometimes\"\nbatch_size = 0\npassword = \"a\"\npassword_env = \"B\"\n\
             state_column = \"punch state\"\ndevice_names = { \"Gate 1\" = \"not a serial\" }\ntime_format = \"%Y\"",
        )
        .unwrap();
        let mut got = keys(&s);
        got.sort_unstable();
        let mut want = vec![
            "driver",
            "host",
            "password",
            "tls",
            "state_column",
            "device_names",
            "time_format",
            "mode",
            "batch_size",
        ];
        want.sort_unstable();
        assert_eq!(got, want);
        assert!(keys(&settings("preset = \"kronos\"")).contains(&"preset"));
        assert!(keys(&settings("preset = \"biotime\"\nquery = \"SELECT * FROM t\"")).contains(&"query"));
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let s = settings("preset = \"biotime\"\npassword = \"hunter2\"");
        let device = DeviceConfig {
            serial: "BT".parse().unwrap(),
            name: "BT".into(),
            time_zone: chrono_tz::UTC,
            direction: protocol::Direction::Both,
            settings: crate::config::DeviceSettings::Sql(Box::new(s.clone())),
        };
        let source = build(&"plant-1".parse().unwrap(), &device, &s).unwrap();
        assert_eq!(source.connection.password, "hunter2");
        assert!(!format!("{source:?}").contains("hunter2"));
        assert_eq!(source.connection.port, 3306);
    }
}
