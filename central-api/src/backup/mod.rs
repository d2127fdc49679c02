//! Backup and restore with a git-like merge, and the move from the embedded SQLite to PostgreSQL.
//!
//! - [`schema`]: the record kinds (sites, devices, employees, shifts, week-off rules, holidays, punches, manual
//!   logs, leave, attendance, ManDays, and in full backups agents and administrators), their columns, merge keys
//!   and the canonical form of the per-record SHA-256 checksum; [`values`]: one value's canonical text, and
//!   reading values back from JSON or SQLite's text.
//! - [`format`]: the versioned JSON document and its streaming [`format::Writer`]; [`reader`]: the bounded,
//!   streaming reader of untrusted files (proptested, fuzzed), [`record`]: one record read straight into its
//!   columns.
//! - [`export`]: a full or incremental backup from one snapshot; [`restore`]: validate, preview and restore with
//!   a strategy (`backup_wins`, `database_wins`, `manual`) in one transaction, marking affected attendance
//!   ([`marks`]).
//! - [`db`]: the SQL, written once for both backends; [`sqlite`]: SQLite's reads and writes on the raw handle;
//!   [`files`]: the server's backups directory; [`jobs`]: backup
//!   and restore as tracked jobs (the API and the web pages start them).
//!
//! Every backup and restore is audited (who, when, file, type, counts, success or the error): the command line as
//! `cli`, jobs as the administrator who started them.

pub mod db;
pub mod export;
pub mod files;
pub mod format;
pub mod jobs;
pub mod marks;
pub mod reader;
pub mod record;
pub mod restore;
pub mod schema;
pub mod sqlite;
pub mod values;

use std::path::Path;

pub use export::{backup, BackupOptions, BackupSummary};
pub use format::BackupType;
pub use restore::{Mode, RestoreOptions, RestoreSummary, Strategy};

use crate::audit::{Actor, Entry};
use crate::jobs::Progress;
use crate::store::{Store, StoreError};

/// Why a backup or restore did not complete.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("stopped before the end")]
    Stopped,
    #[error("injected failure after {0} records were written (test)")]
    Injected(u64),
}

/// `sqlite` or `postgres`.
pub fn backend_name(store: &Store) -> &'static str {
    match store {
        Store::Sqlite(_) => "sqlite",
        Store::Postgres(_) => "postgres",
    }
}

/// [`backup`], audited as done by `actor` (success with the counts, or the error).
///
/// # Errors
/// As [`backup`].
pub async fn backup_audited(
    store: &Store,
    path: &Path,
    options: &BackupOptions,
    progress: &Progress,
    actor: &Actor,
) -> Result<BackupSummary, BackupError> {
    let result = backup(store, path, options, progress).await;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let after = match &result {
        Ok(s) => serde_json::json!({
            "success": true,
            "type": s.backup_type.as_str(),
            "since": s.since,
            "records": s.records,
            "counts": s.counts,
            "bytes": s.bytes,
        }),
        Err(e) => serde_json::json!({
            "success": false,
            "type": options.backup_type.as_str(),
            "since": options.since,
            "error": e.to_string(),
        }),
    };
    crate::audit::record_as(store, actor, Entry::new("backup", "backup", name).after(&after)).await;
    result
}

/// Parses a `--since` value: a date (midnight UTC) or an RFC 3339 instant.
///
/// # Errors
/// A message saying which forms are accepted.
pub fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| format!("since {text:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant"))
}
