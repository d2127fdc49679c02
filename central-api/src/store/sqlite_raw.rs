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
