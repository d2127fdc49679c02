//! SQLite's C interface (through rusqlite) on a connection sqlx owns: the one place that takes the raw handle.
//!
//! Through sqlx every statement is a message to the connection's worker thread, every bound value a boxed argument
//! and every row a decoded copy handed back over a channel; where rows are counted in millions (the ingest writer,
//! the attendance job's punch reads and result writes, backup and restore) that costs more than SQLite's own work.
//! [`with_handle`] takes the connection's handle from sqlx ([`sqlx::sqlite::SqliteConnection::lock_handle`]: its
//! worker makes no call meanwhile) and wraps it in a [`rusqlite::Connection`] for the length of one closure.
//! Statements run inside whatever transaction (and savepoint) sqlx opened, and are finalized before the handle goes
//! back.

use sqlx::SqliteConnection;

use super::StoreError;

/// Runs `work` on the raw handle of `conn` (inside its open transaction, if any), off the async executor when the
/// runtime lets it (`block_in_place` on a multi-threaded runtime; inline on a current-thread one).
///
/// # Errors
/// `work`'s error, or a [`StoreError`] when the handle cannot be taken.
pub(crate) async fn with_handle<T, E: From<StoreError>>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, E>,
) -> Result<T, E> {
    let mut locked = conn.lock_handle().await.map_err(StoreError::from)?;
    let raw = locked.as_raw_handle();
    let run = move || {
        // SAFETY: `locked` keeps sqlx's worker thread away from this handle until it is dropped, after this closure
        // returned; rusqlite does not close a handle it did not open (`from_handle`), and dropping `db` finalizes
        // every statement prepared on it before the handle goes back to sqlx.
        let db = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }.map_err(StoreError::from)?;
        work(&db)
    };
    let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        // The work takes a while: let the runtime move its other tasks to another thread meanwhile.
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(locked);
    result
}

/// Where SQLite's writer connection stands: which connection it is, how many rows its statements changed since it
/// opened (`total_changes()`), and its data version (which moves when another connection or process commits). Two
/// equal stamps read on the writer mean nothing was written in between, by this process (every write of which goes
/// through that one connection) or another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriterStamp {
    connection: usize,
    changes: i64,
    data_version: i64,
}

/// The [`WriterStamp`] of `conn` (meant for the writer connection, inside its write transaction, where no other
/// connection can commit).
///
/// # Errors
/// [`StoreError::Database`].
pub(crate) async fn writer_stamp(conn: &mut SqliteConnection) -> Result<WriterStamp, StoreError> {
    let connection = conn.lock_handle().await?.as_raw_handle().as_ptr().addr();
    let (changes, data_version): (i64, i64) =
        sqlx::query_as("SELECT total_changes(), data_version FROM pragma_data_version").fetch_one(&mut *conn).await?;
    Ok(WriterStamp { connection, changes, data_version })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
    use sqlx::{Connection, SqlitePool};

    use super::*;

    async fn stamp_in_tx(writer: &SqlitePool, write: Option<&str>) -> WriterStamp {
        let mut tx = writer.begin_with("BEGIN IMMEDIATE").await.expect("begin");
        if let Some(sql) = write {
            sqlx::query(sql).execute(&mut *tx).await.expect("write");
        }
        let stamp = writer_stamp(&mut tx).await.expect("stamp");
        tx.commit().await.expect("commit");
        stamp
    }

    #[tokio::test]
    async fn the_writer_stamp_moves_with_every_write_on_the_writer_or_elsewhere_and_only_then() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", dir.path().join("db").display()))
            .expect("url")
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await.expect("writer");
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&writer).await.expect("create");

        // A transaction's last stamp is the next one's first when nothing is written in between.
        let left = stamp_in_tx(&writer, Some("INSERT INTO t VALUES (1)")).await;
        let next = stamp_in_tx(&writer, None).await;
        assert_eq!(left, next);
        // Reads change nothing, neither on the writer nor on another connection.
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM t").fetch_one(&writer).await.expect("read");
        assert_eq!(n, 1);
        let mut other = sqlx::SqliteConnection::connect_with(&options).await.expect("other");
        sqlx::query("SELECT count(*) FROM t").fetch_one(&mut other).await.expect("read");
        assert_eq!(stamp_in_tx(&writer, None).await, next);

        // A write on the writer outside any transaction of ours (as ingest's are).
        sqlx::query("UPDATE t SET n = 2").execute(&writer).await.expect("update");
        let after_own = stamp_in_tx(&writer, None).await;
        assert_ne!(after_own, next, "a write on the writer connection must move the stamp");

        // A commit by another connection (another process, a CLI command).
        sqlx::query("INSERT INTO t VALUES (3)").execute(&mut other).await.expect("other write");
        let after_other = stamp_in_tx(&writer, None).await;
        assert_ne!(after_other, after_own, "another connection's commit must move the stamp");
        assert_eq!(stamp_in_tx(&writer, None).await, after_other);

        // Another connection in place of the writer's (the pool reopened it).
        other.close().await.expect("close");
        writer.close().await;
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.expect("writer again");
        assert_ne!(stamp_in_tx(&writer, None).await, after_other, "a reopened writer must not match");
        writer.close().await;
    }
}
