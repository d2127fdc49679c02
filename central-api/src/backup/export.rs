//! Making a backup: every kind's rows (or those changed since a date) read from one snapshot of the database and
//! streamed into a [`Writer`].
//!
//! The snapshot is a read transaction: PostgreSQL `REPEATABLE READ READ ONLY`, SQLite a read transaction on a
//! reader connection (WAL keeps its view while ingest goes on), whose rows are stepped on its raw handle
//! ([`super::sqlite`]). The counts in the metadata are read in the same
//! snapshot, so they equal the records that follow.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;

use super::db::{count_sql, select_sql, RowExt};
use super::format::{BackupType, Metadata, Writer, CHECKSUM_FORM, FORMAT_VERSION};
use super::schema::{Kind, KINDS};
use super::BackupError;
use crate::jobs::Progress;
use crate::store::sqlite_raw::with_handle;
use crate::store::{on_tx, Store, Tx};

/// What to back up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupOptions {
    pub backup_type: BackupType,
    /// Incremental: records changed at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Who asks (a username, or `cli`).
    pub created_by: String,
}

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupSummary {
    /// The file's name (not its directory).
    pub file: String,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    pub since: Option<DateTime<Utc>>,
    pub records: u64,
    pub counts: BTreeMap<String, u64>,
    pub bytes: u64,
    pub duration_ms: u64,
}

/// The kinds a backup of `backup_type` holds.
pub fn kinds_of(backup_type: BackupType) -> Vec<Kind> {
    KINDS.into_iter().filter(|k| backup_type == BackupType::Full || !k.full_only()).collect()
}

pub(super) async fn snapshot(store: &Store) -> Result<Tx, BackupError> {
    Ok(match store {
        Store::Sqlite(s) => Tx::Sqlite(s.reader.begin().await.map_err(crate::store::StoreError::from)?),
        Store::Postgres(pool) => {
            let mut tx = pool.begin().await.map_err(crate::store::StoreError::from)?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(crate::store::StoreError::from)?;
            Tx::Postgres(tx)
        }
    })
}

/// A SQLite connection's memory settings, kept to be put back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lean {
    mmap_size: i64,
    cache_size: i64,
}

/// SQLite: reads through a page cache of at most `cache_kib` (when given) instead of memory-mapping the file, for
/// the rest of the transaction. A scan of every row through the store's 1 GiB map would count the whole database
/// file in the process's resident memory. Returns the settings [`unlean`] puts back (PostgreSQL: nothing to do).
///
/// # Errors
/// [`BackupError::Store`].
pub(super) async fn lean(tx: &mut Tx, cache_kib: Option<i64>) -> Result<Option<Lean>, BackupError> {
    let Tx::Sqlite(t) = tx else { return Ok(None) };
    let conn: &mut sqlx::SqliteConnection = t;
    let (mmap_size,): (i64,) =
        sqlx::query_as("PRAGMA mmap_size").fetch_one(&mut *conn).await.map_err(crate::store::StoreError::from)?;
    let (cache_size,): (i64,) =
        sqlx::query_as("PRAGMA cache_size").fetch_one(&mut *conn).await.map_err(crate::store::StoreError::from)?;
    sqlx::query("PRAGMA mmap_size = 0").execute(&mut *conn).await.map_err(crate::store::StoreError::from)?;
    if let Some(kib) = cache_kib {
        sqlx::query(&format!("PRAGMA cache_size = {}", -kib.abs()))
            .execute(&mut *conn)
            .await
            .map_err(crate::store::StoreError::from)?;
    }
    Ok(Some(Lean { mmap_size, cache_size }))
}

/// Puts back what [`lean`] changed (before the transaction ends, so the pool gets the connection as it was).
///
/// # Errors
/// [`BackupError::Store`].
pub(super) async fn unlean(tx: &mut Tx, saved: Option<Lean>) -> Result<(), BackupError> {
    let (Tx::Sqlite(t), Some(saved)) = (tx, saved) else { return Ok(()) };
    let conn: &mut sqlx::SqliteConnection = t;
    for sql in [format!("PRAGMA mmap_size = {}", saved.mmap_size), format!("PRAGMA cache_size = {}", saved.cache_size)]
    {
        sqlx::query(&sql).execute(&mut *conn).await.map_err(crate::store::StoreError::from)?;
    }
    Ok(())
}

/// Writes a backup of `store` to `path` (gzip when it ends in `.gz`), reporting records done of total through
/// `progress` and stopping (the file removed) when told to.
///
/// # Errors
/// [`BackupError`]: the database, the file, or a stop.
pub async fn backup(
    store: &Store,
    path: &Path,
    options: &BackupOptions,
    progress: &Progress,
) -> Result<BackupSummary, BackupError> {
    let started = Instant::now();
    let incremental = options.backup_type == BackupType::Incremental;
    let since = match (options.backup_type, options.since) {
        (BackupType::Incremental, Some(s)) => Some(super::schema::micros_utc(s)),
        (BackupType::Incremental, None) => {
            return Err(BackupError::Invalid("since: an incremental backup needs a date".into()))
        }
        (BackupType::Full, Some(_)) => return Err(BackupError::Invalid("since: a full backup takes no date".into())),
        (BackupType::Full, None) => None,
    };
    let kinds = kinds_of(options.backup_type);
    let mut tx = snapshot(store).await?;
    let saved = lean(&mut tx, Some(16 * 1024)).await?;
    let mut counts = BTreeMap::new();
    for kind in &kinds {
        let sql = count_sql(kind.def(), incremental);
        let (n,): (i64,) = on_tx!(&mut tx, |conn| {
            let mut q = sqlx::query_as(&sql);
            if let Some(s) = since {
                q = q.bind(s);
            }
            q.fetch_one(&mut *conn).await.map_err(crate::store::StoreError::from)?
        });
        counts.insert(kind.name().to_owned(), u64::try_from(n).unwrap_or_default());
    }
    let total: u64 = counts.values().sum();
    progress.set_total(total);
    let metadata = Metadata {
        format_version: FORMAT_VERSION,
        created_at: super::schema::micros_utc(Utc::now()),
        backup_type: options.backup_type,
        since,
        counts: counts.clone(),
        created_by: options.created_by.clone(),
        source_database: super::backend_name(store).to_owned(),
        generator: format!("central-api {}", env!("CARGO_PKG_VERSION")),
        checksum: CHECKSUM_FORM.to_owned(),
    };
    let mut writer = Writer::create(path, &metadata)?;
    for kind in &kinds {
        let def = kind.def();
        let mut written = 0u64;
        // Every 1,024 records: progress, and whether to stop.
        let wrote_one = |written: &mut u64| -> Result<(), BackupError> {
            *written += 1;
            if *written % 1024 == 0 {
                progress.advance(1024);
                if progress.should_stop() {
                    return Err(BackupError::Stopped);
                }
            }
            Ok(())
        };
        match &mut tx {
            Tx::Sqlite(t) => {
                let sql = select_sql(def, false, incremental);
                let writer = &mut writer;
                with_handle(t, |db| {
                    super::sqlite::scan(db, def, &sql, since, |vals| {
                        writer.record_blocking(def, vals)?;
                        wrote_one(&mut written)
                    })
                })
                .await?;
            }
            Tx::Postgres(t) => {
                let sql = select_sql(def, true, incremental);
                let mut q = sqlx::query(&sql);
                if let Some(s) = since {
                    q = q.bind(s);
                }
                let mut rows = q.fetch(&mut **t);
                while let Some(row) = rows.try_next().await.map_err(crate::store::StoreError::from)? {
                    let vals = def
                        .cols
                        .iter()
                        .enumerate()
                        .map(|(i, col)| row.val(i, col))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(crate::store::StoreError::from)?;
                    writer.record(def, &vals).await?;
                    wrote_one(&mut written)?;
                }
            }
        }
        progress.advance(written % 1024);
        let stated = counts.get(kind.name()).copied().unwrap_or(0);
        if written != stated {
            return Err(BackupError::Invalid(format!(
                "{} {} records counted but {written} read: the snapshot moved",
                stated,
                kind.name()
            )));
        }
    }
    let records = writer.finish().await?;
    unlean(&mut tx, saved).await?;
    drop(tx);
    let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        file: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        backup_type: options.backup_type,
        since,
        records,
        counts,
        bytes,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
