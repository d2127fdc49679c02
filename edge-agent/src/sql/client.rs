//! One connection to the vendor's database (PostgreSQL or MySQL/MariaDB through sqlx), read-only.
//!
//! The session is made read-only (`default_transaction_read_only` / `SET SESSION TRANSACTION READ ONLY`) and set to
//! UTC, so moments print with a known offset. Every call is under the configured timeout. Values are taken as raw
//! bytes (every column is selected as text, see [`super::query`]) and handed to the caller's mapping without a copy.
//! Failures are sorted into the source's faults: unreachable, login refused, schema mismatch.

use std::time::Duration;

use futures::TryStreamExt;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Column, ConnectOptions, Connection as _, Executor, Row, Statement as _, TypeInfo};

use super::query::{Bind, Dialect, Statement};
use super::settings::{Connection, Tls};

/// Faults a SQL source raises.
pub const UNREACHABLE: &str = "sql_unreachable";
pub const AUTH_FAILED: &str = "sql_auth_failed";
pub const SCHEMA_MISMATCH: &str = "sql_schema_mismatch";
pub const UNMAPPABLE_ROWS: &str = "sql_unmappable_rows";

/// Most values one selected row may have.
pub const MAX_WIDTH: usize = 8;

/// Why a call to the database failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The server cannot be reached, the connection dropped, a call timed out, or the server is unavailable.
    #[error("database unreachable: {0}")]
    Unreachable(String),
    /// The server refused the login, or the account may not read what is configured.
    #[error("database refused the account: {0}")]
    Auth(String),
    /// The table, a column or the query does not exist or does not fit (type, syntax).
    #[error("{0}")]
    Schema(String),
}

impl SqlError {
    /// The device fault this failure raises.
    pub fn fault(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => UNREACHABLE,
            Self::Auth(_) => AUTH_FAILED,
            Self::Schema(_) => SCHEMA_MISMATCH,
        }
    }
}

/// Sorts a sqlx error by what the operator has to do about it.
fn classify(e: sqlx::Error) -> SqlError {
    match e {
        sqlx::Error::Database(db) => {
            let message = db.message().to_owned();
            if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return match my.number() {
                    // Access denied: login, database, table, column.
                    1044 | 1045 | 1142 | 1143 | 1227 | 1698 => SqlError::Auth(message),
                    // Unknown database, table, column; syntax; ambiguous column; wrong value or type.
                    // Unknown database, table, column; syntax; ambiguous column; a bad value; a write refused by the
                    // read-only session.
                    1049 | 1052 | 1054 | 1064 | 1146 | 1292 | 1366 | 1792 => SqlError::Schema(message),
                    _ => SqlError::Unreachable(format!("error {}: {message}", my.number())),
                };
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.get(..2) {
                Some("28") => SqlError::Auth(message),
                Some("42") if code == "42501" => SqlError::Auth(message),
                // Syntax or a missing name, data, an unknown database or schema, unsupported, or a write refused by
                // the read-only session: the configuration has to change.
                Some("42" | "22" | "3D" | "3F" | "0A" | "25") => SqlError::Schema(format!("{message} ({code})")),
                _ => SqlError::Unreachable(format!("{message} ({code})")),
            }
        }
        sqlx::Error::ColumnDecode { index, source } => SqlError::Schema(format!("column {index}: {source}")),
        other => SqlError::Unreachable(other.to_string()),
    }
}

enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

/// An open, read-only connection.
pub struct SqlClient {
    conn: Conn,
    timeout: Duration,
}

/// Runs `call` under `timeout`, naming `what` when it runs out.
async fn bounded<T>(
    timeout: Duration,
    what: &str,
    call: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, SqlError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| SqlError::Unreachable(format!("{what} timed out after {} ms", timeout.as_millis())))?
        .map_err(classify)
}

impl SqlClient {
    /// Connects and prepares the session (read-only, UTC).
    ///
    /// # Errors
    /// [`SqlError`] by cause.
    pub async fn connect(c: &Connection) -> Result<Self, SqlError> {
        let conn = match c.dialect {
            Dialect::Postgres => {
                let mut options = PgConnectOptions::new_without_pgpass()
                    .host(&c.host)
                    .port(c.port)
                    .username(&c.user)
                    .database(&c.database)
                    .application_name("edge-agent")
                    .ssl_mode(match c.tls {
                        Tls::Disable => PgSslMode::Disable,
                        Tls::Prefer => PgSslMode::Prefer,
                        Tls::Require => PgSslMode::Require,
                        Tls::VerifyCa => PgSslMode::VerifyCa,
                        Tls::VerifyFull => PgSslMode::VerifyFull,
                    })
                    .options([
                        ("default_transaction_read_only", "on".to_owned()),
                        ("TimeZone", "UTC".to_owned()),
                        ("DateStyle", "ISO".to_owned()),
                        ("statement_timeout", c.timeout.as_millis().to_string()),
                    ])
                    .disable_statement_logging();
                if let Some(ca) = &c.ca_file {
                    options = options.ssl_root_cert(ca);
                }
                // An empty password is no password (trust authentication), not the scramble of "".
                if !c.password.is_empty() {
                    options = options.password(&c.password);
                }
                Conn::Pg(bounded(c.timeout, "connecting", PgConnection::connect_with(&options)).await?)
            }
            Dialect::MySql => {
                let mut options = MySqlConnectOptions::new()
                    .host(&c.host)
                    .port(c.port)
                    .username(&c.user)
                    .database(&c.database)
                    .charset("utf8mb4")
                    .timezone(Some("+00:00".to_owned()))
                    .ssl_mode(match c.tls {
                        Tls::Disable => MySqlSslMode::Disabled,
                        Tls::Prefer => MySqlSslMode::Preferred,
                        Tls::Require => MySqlSslMode::Required,
                        Tls::VerifyCa => MySqlSslMode::VerifyCa,
                        Tls::VerifyFull => MySqlSslMode::VerifyIdentity,
                    })
                    .disable_statement_logging();
                if let Some(ca) = &c.ca_file {
                    options = options.ssl_ca(ca);
                }
                if !c.password.is_empty() {
                    options = options.password(&c.password);
                }
                let mut conn = bounded(c.timeout, "connecting", MySqlConnection::connect_with(&options)).await?;
                bounded(c.timeout, "making the session read-only", conn.execute("SET SESSION TRANSACTION READ ONLY"))
                    .await?;
                Conn::My(conn)
            }
        };
        Ok(Self { conn, timeout: c.timeout })
    }

    /// The server's product and version (`PostgreSQL 15.8`, `10.11.19-MariaDB`).
    ///
    /// # Errors
    /// [`SqlError`] by cause.
    pub async fn server_version(&mut self) -> Result<String, SqlError> {
        let (prefix, sql) = match self.conn {
            Conn::Pg(_) => ("PostgreSQL ", "SELECT current_setting('server_version')"),
            Conn::My(_) => ("MySQL ", "SELECT CAST(VERSION() AS CHAR)"),
        };
        let statement = Statement { sql: sql.to_owned(), binds: Vec::new() };
        let rows = self
            .fetch(&statement, 1, |v| v[0].map(|b| String::from_utf8_lossy(&b[..b.len().min(64)]).into_owned()))
            .await?;
        let version = rows.into_iter().flatten().next().unwrap_or_default();
        Ok(if version.contains("MariaDB") { format!("MariaDB {version}") } else { format!("{prefix}{version}") })
    }

    /// The columns a statement returns, as `(name, type name)` (prepared, not run).
    ///
    /// # Errors
    /// [`SqlError`] by cause: a missing table or a query that does not compile is a schema mismatch.
    pub async fn columns(&mut self, statement: &Statement) -> Result<Vec<(String, String)>, SqlError> {
        let timeout = self.timeout;
        let sql = statement.sql.as_str();
        Ok(match &mut self.conn {
            Conn::Pg(conn) => {
                let prepared = bounded(timeout, "describing the source", conn.prepare(sql)).await?;
                prepared.columns().iter().map(|c| (c.name().to_owned(), c.type_info().name().to_owned())).collect()
            }
            Conn::My(conn) => {
                let prepared = bounded(timeout, "describing the source", conn.prepare(sql)).await?;
                prepared.columns().iter().map(|c| (c.name().to_owned(), c.type_info().name().to_owned())).collect()
            }
        })
    }

    /// Runs a statement and maps each row's first `width` values (raw bytes, `None` for NULL) with `map`.
    ///
    /// # Errors
    /// [`SqlError`] by cause.
    pub async fn fetch<T>(
        &mut self,
        statement: &Statement,
        width: usize,
        mut map: impl FnMut(&[Option<&[u8]>]) -> T,
    ) -> Result<Vec<T>, SqlError> {
        let width = width.min(MAX_WIDTH);
        let timeout = self.timeout;
        let call = async {
            let mut out = Vec::new();
            match &mut self.conn {
                Conn::Pg(conn) => {
                    let mut query = sqlx::query(&statement.sql);
                    for bind in &statement.binds {
                        query = match bind {
                            Bind::Int(v) => query.bind(*v),
                            Bind::Text(t) => query.bind(t.as_str()),
                        };
                    }
                    let mut rows = query.fetch(&mut *conn);
                    while let Some(row) = rows.try_next().await? {
                        let mut values: [Option<&[u8]>; MAX_WIDTH] = [None; MAX_WIDTH];
                        for (i, slot) in values.iter_mut().enumerate().take(width) {
                            *slot = row.try_get_unchecked::<Option<&[u8]>, _>(i)?;
                        }
                        out.push(map(&values[..width]));
                    }
                }
                Conn::My(conn) => {
                    let mut query = sqlx::query(&statement.sql);
                    for bind in &statement.binds {
                        query = match bind {
                            Bind::Int(v) => query.bind(*v),
                            Bind::Text(t) => query.bind(t.as_str()),
                        };
                    }
                    let mut rows = query.fetch(&mut *conn);
                    while let Some(row) = rows.try_next().await? {
                        let mut values: [Option<&[u8]>; MAX_WIDTH] = [None; MAX_WIDTH];
                        for (i, slot) in values.iter_mut().enumerate().take(width) {
                            *slot = row.try_get_unchecked::<Option<&[u8]>, _>(i)?;
                        }
                        out.push(map(&values[..width]));
                    }
                }
            }
            Ok(out)
        };
        bounded(timeout, "reading rows", call).await
    }

    /// Closes the connection politely (errors ignored: the server drops it anyway).
    pub async fn close(self) {
        let _ = match self.conn {
            Conn::Pg(conn) => tokio::time::timeout(Duration::from_secs(2), conn.close()).await,
            Conn::My(conn) => tokio::time::timeout(Duration::from_secs(2), conn.close()).await,
        };
    }
}

/// Whether a column type (as the server names it) can hold each role.
pub mod types {
    use super::super::query::Dialect;
    use super::super::row::TimeKind;

    /// Integer types, for the id.
    pub fn is_integer(ty: &str) -> bool {
        let ty = ty.to_ascii_uppercase();
        let base = ty.trim_end_matches(" UNSIGNED");
        matches!(base, "INT2" | "INT4" | "INT8" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" | "INTEGER")
            || base == "SERIAL"
    }

    /// Text types.
    pub fn is_text(ty: &str) -> bool {
        let ty = ty.to_ascii_uppercase();
        matches!(
            ty.as_str(),
            "TEXT"
                | "VARCHAR"
                | "BPCHAR"
                | "CHAR"
                | "NAME"
                | "CITEXT"
                | "TINYTEXT"
                | "MEDIUMTEXT"
                | "LONGTEXT"
                | "ENUM"
        )
    }

    /// Integer or text (employee ids, states, codes, devices). Numeric with a scale prints as `1.0`: refused.
    pub fn is_code(ty: &str) -> bool {
        is_integer(ty) || is_text(ty) || ty.eq_ignore_ascii_case("BOOLEAN")
    }

    /// How a time column reads, or `None` when its type cannot hold a punch time. MySQL's `TIMESTAMP` is a moment
    /// (printed in the session's zone, UTC); PostgreSQL's is a wall-clock time.
    pub fn time_kind(dialect: Dialect, ty: &str) -> Option<TimeKind> {
        match (dialect, ty.to_ascii_uppercase().as_str()) {
            (Dialect::MySql, "TIMESTAMP") | (_, "TIMESTAMPTZ") => Some(TimeKind::Instant),
            (_, "TIMESTAMP" | "DATETIME") => Some(TimeKind::Naive),
            (_, t) if is_text(t) => Some(TimeKind::Text),
            _ => None,
        }
    }
}
