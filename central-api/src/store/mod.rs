//! The database: one [`Store`] over SQLite (embedded default) or PostgreSQL (production), chosen by the URL's scheme.
//!
//! Each backend has its own migrations (`migrations/sqlite`, `migrations/postgres`) describing the same tables.
//! Simple statements are written once with `$n` parameters, which both backends accept, and run through
//! [`on_pool!`]; the statements that decide throughput (the batch insert) are written per backend in [`ingest`].
//!
//! SQLite has one writer at a time, so its store keeps a single-connection writer pool (no `SQLITE_BUSY` between our
//! own transactions) beside a reader pool. It runs in WAL mode with `synchronous = FULL`: a commit is on disk before
//! a batch is acknowledged.

pub mod access;
pub mod admin;
pub mod alerts;
pub mod attendance;
pub mod audit;
pub mod central_faults;
pub mod device_guard;
pub mod fleet;
pub mod group_commit;
pub mod history;
pub mod ingest;
pub mod ingest_group;
mod ingest_sqlite;
pub mod inventory;
pub mod jobs;
pub mod listing;
mod pg_copy;
pub mod quarantine;
pub mod rows;
pub(crate) mod sqlite_raw;
pub mod sqlite_text;
pub mod status;
pub mod writer_stats;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::config::{backend_of, Backend, Config};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From SQLite's C interface, used directly by the ingest writer, backup and restore ([`sqlite_raw`]).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    #[error("{what} {id:?} already exists")]
    AlreadyExists { what: &'static str, id: String },
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("the SQLite writer task has stopped")]
    WriterStopped,
}

impl StoreError {
    /// Whether retrying the same transaction may succeed (deadlock, serialization failure, busy database).
    pub fn is_transient(&self) -> bool {
        if let Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) = self {
            return matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked);
        }
        let Self::Database(sqlx::Error::Database(db)) = self else {
            return matches!(self, Self::Database(sqlx::Error::PoolTimedOut | sqlx::Error::Io(_)));
        };
        // PostgreSQL: 40001 serialization_failure, 40P01 deadlock_detected. SQLite: 5 SQLITE_BUSY, 6 SQLITE_LOCKED.
        matches!(db.code().as_deref(), Some("40001" | "40P01" | "5" | "6" | "517" | "262"))
    }

    fn unique_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(db)) if db.is_unique_violation())
    }
}

/// SQLite's two pools.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// One connection: every write goes through it, in order.
    pub writer: SqlitePool,
    /// Readers; WAL lets them run beside the writer.
    pub reader: SqlitePool,
    /// The task that stores punch batches through `writer`, several per transaction.
    pub group_commit: group_commit::GroupCommit,
}

/// A connected database.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool (the writer pool for SQLite): for statements whose SQL is the
/// same on both backends.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(sqlite) => {
                let $pool = &sqlite.writer;
                $body
            }
            $crate::store::Store::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// As [`on_pool!`] but on SQLite's reader pool.
macro_rules! on_reader {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(sqlite) => {
                let $pool = &sqlite.reader;
                $body
            }
            $crate::store::Store::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}
pub(crate) use on_reader;

/// An open transaction on either backend. Statements written once for both run through [`on_tx!`].
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection (`&mut SqliteConnection` or `&mut PgConnection`).
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn: &mut sqlx::PgConnection = &mut *t;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Tx {
    /// Commits.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(t) => t.commit().await?,
            Self::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Store {
    /// Starts a transaction (on SQLite's writer connection).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            // IMMEDIATE takes the write lock at once (waiting up to the busy timeout), so a transaction that reads
            // before it writes never fails with "database is locked" when another process (a CLI command beside
            // `serve`) writes meanwhile.
            Self::Sqlite(s) => Tx::Sqlite(s.writer.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Connects to the database the configuration names, creating the SQLite file (and its directory) if needed.
    ///
    /// # Errors
    /// [`StoreError::Config`] for a bad URL, [`StoreError::Database`] when the database cannot be reached.
    pub async fn connect(config: &Config) -> Result<Self, StoreError> {
        let url = config.database_url();
        let backend = backend_of(&url).map_err(StoreError::Config)?;
        let max = config.database_max_connections;
        match backend {
            Backend::Sqlite => {
                let options = SqliteConnectOptions::from_str(&url)
                    .map_err(|e| StoreError::Config(format!("database_url {url:?}: {e}")))?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    // A 64 MiB page cache and memory-mapped reads keep index pages out of read() system calls.
                    .pragma("cache_size", "-65536")
                    .pragma("mmap_size", "1073741824")
                    .pragma("temp_store", "memory")
                    // Checkpoint every 64 MiB of WAL instead of 4 MiB: index pages rewritten by consecutive batches
                    // are copied back to the database once per checkpoint, not once per batch.
                    .pragma("wal_autocheckpoint", "16384")
                    .pragma("journal_size_limit", "134217728");
                if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create the database directory {}: {e}", dir.display()))
                    })?;
                }
                let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
                let reader = SqlitePoolOptions::new().max_connections(max).connect_with(options).await?;
                let group_commit = group_commit::GroupCommit::start(writer.clone());
                Ok(Self::Sqlite(SqliteStore { writer, reader, group_commit }))
            }
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(&url)
                    .map_err(|e| StoreError::Config(format!("database_url: {e}")))?
                    .application_name("central-api");
                let pool = PgPoolOptions::new()
                    .max_connections(max)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Applies the backend's pending migrations.
    ///
    /// # Errors
    /// [`StoreError::Migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(s) => sqlx::migrate!("migrations/sqlite").run(&s.writer).await?,
            Self::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_reader!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(s) => {
                s.writer.close().await;
                s.reader.close().await;
            }
            Self::Postgres(pool) => pool.close().await,
        }
    }
}
