//! The SQL the source sends, built from validated names (no I/O).
//!
//! Names from the configuration are checked by [`check_identifier`] and always quoted, so nothing from the file is
//! spliced into SQL unchecked; values (the cursor, the start of the re-scan window) are always bound parameters.
//! Every column is selected as text cut to [`MAX_FIELD_CHARS`] + 1 characters: the database never sends a huge
//! value, and [`super::row`] parses one representation whatever the column's type.

use super::row::{TimeKind, MAX_FIELD_CHARS};

/// The database's SQL flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
}

impl Dialect {
    /// `postgres` or `mysql`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    /// A name quoted for this dialect (the name is checked by [`check_identifier`] first).
    fn quote(self, name: &str) -> String {
        match self {
            Self::Postgres => format!("\"{name}\""),
            Self::MySql => format!("`{name}`"),
        }
    }

    fn text_type(self) -> &'static str {
        match self {
            Self::Postgres => "TEXT",
            Self::MySql => "CHAR",
        }
    }
}

/// The marker a configured query carries where the cursor goes.
pub const CURSOR_MARKER: &str = "{cursor}";

/// Where rows come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A table or view, possibly qualified (`schema.table`), as checked names.
    Table(Vec<String>),
    /// A read-only query holding [`CURSOR_MARKER`] once (rows after the cursor).
    Query(String),
}

/// The columns to read, by role, as the database names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub id: String,
    pub employee: String,
    pub time: String,
    pub state: Option<String>,
    pub verify: Option<String>,
    pub work_code: Option<String>,
    pub device: Option<String>,
}

impl Columns {
    /// `(role, name)` of every configured column, in selection order.
    pub fn named(&self) -> Vec<(&'static str, &str)> {
        let mut named =
            vec![("id", self.id.as_str()), ("employee", self.employee.as_str()), ("time", self.time.as_str())];
        for (role, column) in
            [("state", &self.state), ("verify", &self.verify), ("work_code", &self.work_code), ("device", &self.device)]
        {
            if let Some(name) = column {
                named.push((role, name.as_str()));
            }
        }
        named
    }
}

/// A value bound to a statement, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    pub binds: Vec<Bind>,
}

/// Everything needed to write the source's statements.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dialect: Dialect,
    pub source: Source,
    pub columns: Columns,
    /// How the time column reads; for moments (`timestamptz`, MySQL `TIMESTAMP`) the re-scan bound is UTC.
    pub time_kind: TimeKind,
    /// Rows per read.
    pub batch_size: u32,
}

/// Positions of the selected roles in a row; `None` for a role not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Positions {
    pub state: Option<usize>,
    pub verify: Option<usize>,
    pub work_code: Option<usize>,
    pub device: Option<usize>,
    pub count: usize,
}

/// Builds placeholders in order: `$1, $2, ...` on PostgreSQL, `?` on MySQL.
struct Params {
    dialect: Dialect,
    binds: Vec<Bind>,
}

impl Params {
    fn push(&mut self, bind: Bind) -> String {
        self.binds.push(bind);
        match self.dialect {
            Dialect::Postgres => format!("${}", self.binds.len()),
            Dialect::MySql => "?".into(),
        }
    }
}

impl Plan {
    /// Where each optional role sits in a selected row (id, employee and time are always 0, 1, 2).
    pub fn positions(&self) -> Positions {
        let mut next = 3;
        let mut slot = |present: bool| {
            present.then(|| {
                next += 1;
                next - 1
            })
        };
        let c = &self.columns;
        let state = slot(c.state.is_some());
        let verify = slot(c.verify.is_some());
        let work_code = slot(c.work_code.is_some());
        let device = slot(c.device.is_some());
        Positions { state, verify, work_code, device, count: next }
    }

    /// `SELECT *` of the source with no rows, to learn its column names and types.
    pub fn describe(&self) -> Statement {
        let mut params = Params { dialect: self.dialect, binds: Vec::new() };
        let from = self.from(&mut params, i64::MIN);
        Statement { sql: format!("SELECT * FROM {from} WHERE 1 = 0"), binds: params.binds }
    }

    /// The next `batch_size` rows after `cursor`, by id.
    pub fn after(&self, cursor: i64) -> Statement {
        let mut params = Params { dialect: self.dialect, binds: Vec::new() };
        let from = self.from(&mut params, cursor);
        let id = self.column(&self.columns.id);
        let after = params.push(Bind::Int(cursor));
        Statement {
            sql: format!(
                "SELECT {} FROM {from} WHERE {id} > {after} ORDER BY {id} LIMIT {}",
                self.select_list(),
                self.batch_size
            ),
            binds: params.binds,
        }
    }

    /// The re-scan: up to `batch_size` rows with `after < id <= upto` whose time is at or after `since` (text in the
    /// column's terms: wall-clock time for a naive column, UTC for one holding moments).
    pub fn rescan(&self, after: i64, upto: i64, since: &str) -> Statement {
        let mut params = Params { dialect: self.dialect, binds: Vec::new() };
        let from = self.from(&mut params, after);
        let id = self.column(&self.columns.id);
        let time = self.column(&self.columns.time);
        let after = params.push(Bind::Int(after));
        let upto = params.push(Bind::Int(upto));
        let since = params.push(Bind::Text(since.to_owned()));
        let since = match (self.dialect, self.time_kind) {
            (Dialect::Postgres, TimeKind::Instant) => format!("CAST({since} AS TIMESTAMPTZ)"),
            (Dialect::Postgres, _) => format!("CAST({since} AS TIMESTAMP)"),
            (Dialect::MySql, _) => since,
        };
        Statement {
            sql: format!(
                "SELECT {} FROM {from} WHERE {id} > {after} AND {id} <= {upto} AND {time} >= {since} ORDER BY {id} \
                 LIMIT {}",
                self.select_list(),
                self.batch_size
            ),
            binds: params.binds,
        }
    }

    /// The newest `limit` rows (for `edge-agent probe`).
    pub fn newest(&self, limit: u32) -> Statement {
        let mut params = Params { dialect: self.dialect, binds: Vec::new() };
        let from = self.from(&mut params, i64::MIN);
        let id = self.column(&self.columns.id);
        Statement {
            sql: format!("SELECT {} FROM {from} ORDER BY {id} DESC LIMIT {limit}", self.select_list()),
            binds: params.binds,
        }
    }

    /// The number of rows, as text (for `edge-agent probe`).
    pub fn count(&self) -> Statement {
        let mut params = Params { dialect: self.dialect, binds: Vec::new() };
        let from = self.from(&mut params, i64::MIN);
        Statement {
            sql: format!("SELECT CAST(COUNT(*) AS {}) FROM {from}", self.dialect.text_type()),
            binds: params.binds,
        }
    }

    /// The `FROM` target: the quoted table, or the query as a derived table with its cursor bound.
    fn from(&self, params: &mut Params, cursor: i64) -> String {
        match &self.source {
            Source::Table(parts) => parts.iter().map(|p| self.dialect.quote(p)).collect::<Vec<_>>().join("."),
            Source::Query(query) => {
                let placeholder = params.push(Bind::Int(cursor));
                format!("({}) AS src", query.replacen(CURSOR_MARKER, &placeholder, 1))
            }
        }
    }

    fn column(&self, name: &str) -> String {
        match self.source {
            Source::Table(_) => self.dialect.quote(name),
            Source::Query(_) => format!("src.{}", self.dialect.quote(name)),
        }
    }

    /// Every configured column as text, cut one character past the limit.
    fn select_list(&self) -> String {
        let cut = MAX_FIELD_CHARS + 1;
        let c = &self.columns;
        let mut list = Vec::new();
        for (role, name) in c.named() {
            let text = format!("LEFT(CAST({} AS {}), {cut})", self.column(name), self.dialect.text_type());
            // MySQL prints a TIMESTAMP in the session's zone, which the client sets to UTC: say so.
            let text = if role == "time" && self.dialect == Dialect::MySql && self.time_kind == TimeKind::Instant {
                format!("CONCAT({text}, '+00:00')")
            } else {
                text
            };
            list.push(text);
        }
        list.join(", ")
    }
}

/// Checks a name from the configuration: letters, digits, `_` and `$`, not starting with a digit, at most 64 bytes.
///
/// # Errors
/// A message naming what is wrong.
pub fn check_identifier(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > 64 {
        return Err(format!("{name:?} is over 64 bytes"));
    }
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{name:?} starts with a digit"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$')) {
        return Err(format!("{name:?} contains {bad:?}; names may hold letters, digits, _ and $"));
    }
    Ok(())
}

/// A table name, possibly qualified (`schema.table`, `database.schema.table`), split into checked parts.
///
/// # Errors
/// A message naming the part that is wrong.
pub fn table_parts(table: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = table.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("{table:?} has more than three parts"));
    }
    parts.iter().map(|part| check_identifier(part).map(|()| (*part).to_owned())).collect()
}

/// Checks a configured query: one statement reading rows (`SELECT` or `WITH`), holding [`CURSOR_MARKER`] once.
///
/// # Errors
/// A message naming what is wrong.
pub fn check_query(query: &str) -> Result<(), String> {
    let trimmed = query.trim();
    let first = trimmed.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
    if first != "SELECT" && first != "WITH" {
        return Err("must be a SELECT (or WITH ... SELECT) statement".into());
    }
    if trimmed.trim_end_matches(';').contains(';') {
        return Err("must be one statement (no ';' inside)".into());
    }
    if query.len() > 8_192 {
        return Err(format!("is {} bytes, over the limit of 8192", query.len()));
    }
    match query.matches(CURSOR_MARKER).count() {
        1 => Ok(()),
        n => Err(format!("must hold {CURSOR_MARKER} exactly once (where the last id read goes), not {n} times")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dialect: Dialect, source: Source, time_kind: TimeKind) -> Plan {
        Plan {
            dialect,
            source,
            columns: Columns {
                id: "id".into(),
                employee: "emp_code".into(),
                time: "punch_time".into(),
                state: Some("punch_state".into()),
                verify: None,
                work_code: None,
                device: Some("terminal_sn".into()),
            },
            time_kind,
            batch_size: 500,
        }
    }

    #[test]
    fn table_reads_on_both_dialects() {
        let table = Source::Table(vec!["public".into(), "iclock_transaction".into()]);
        let pg = plan(Dialect::Postgres, table.clone(), TimeKind::Instant).after(41);
        assert_eq!(
            pg.sql,
            "SELECT LEFT(CAST(\"id\" AS TEXT), 129), LEFT(CAST(\"emp_code\" AS TEXT), 129), \
             LEFT(CAST(\"punch_time\" AS TEXT), 129), LEFT(CAST(\"punch_state\" AS TEXT), 129), \
             LEFT(CAST(\"terminal_sn\" AS TEXT), 129) FROM \"public\".\"iclock_transaction\" WHERE \"id\" > $1 \
             ORDER BY \"id\" LIMIT 500"
        );
        assert_eq!(pg.binds, vec![Bind::Int(41)]);
        let my = plan(Dialect::MySql, table, TimeKind::Instant).after(41);
        assert!(my.sql.contains("CONCAT(LEFT(CAST(`punch_time` AS CHAR), 129), '+00:00')"), "{}", my.sql);
        assert!(my.sql.ends_with("WHERE `id` > ? ORDER BY `id` LIMIT 500"), "{}", my.sql);
    }

    #[test]
    fn a_query_is_a_derived_table_with_its_cursor_bound_first() {
        let source = Source::Query("SELECT t.* FROM punches t WHERE t.id > {cursor}".into());
        let p = plan(Dialect::Postgres, source.clone(), TimeKind::Naive);
        let s = p.rescan(10, 99, "2024-01-01 00:00:00");
        assert!(s.sql.contains("FROM (SELECT t.* FROM punches t WHERE t.id > $1) AS src WHERE src.\"id\" > $2"));
        assert!(s.sql.contains("src.\"punch_time\" >= CAST($4 AS TIMESTAMP)"), "{}", s.sql);
        assert_eq!(
            s.binds,
            vec![Bind::Int(10), Bind::Int(10), Bind::Int(99), Bind::Text("2024-01-01 00:00:00".into())]
        );
        let my = plan(Dialect::MySql, source, TimeKind::Naive).after(5);
        assert!(my.sql.contains("WHERE t.id > ?) AS src WHERE src.`id` > ?"), "{}", my.sql);
        assert_eq!(my.binds, vec![Bind::Int(5), Bind::Int(5)]);
    }

    #[test]
    fn positions_follow_the_configured_columns() {
        let p = plan(Dialect::Postgres, Source::Table(vec!["t".into()]), TimeKind::Naive);
        assert_eq!(
            p.positions(),
            Positions { state: Some(3), verify: None, work_code: None, device: Some(4), count: 5 }
        );
    }

    #[test]
    fn names_and_queries_are_checked() {
        assert!(check_identifier("emp_code").is_ok());
        for bad in ["", "a b", "x\"y", "a`b", "1st", "a;drop", &"a".repeat(65)] {
            assert!(check_identifier(bad).is_err(), "{bad:?}");
        }
        assert_eq!(table_parts("public.t").unwrap(), vec!["public".to_owned(), "t".to_owned()]);
        assert!(table_parts("a.b.c.d").is_err());
        assert!(table_parts("public.").is_err());
        assert!(check_query("SELECT * FROM t WHERE id > {cursor}").is_ok());
        assert!(check_query("select * from t where id > {cursor};").is_ok());
        assert!(check_query("DELETE FROM t WHERE id > {cursor}").is_err());
        assert!(check_query("SELECT 1; DROP TABLE t; SELECT {cursor}").is_err());
        assert!(check_query("SELECT * FROM t").is_err());
    }
}
