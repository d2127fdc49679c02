//! SQLite's own C interface (through rusqlite) on the raw handle of a sqlx connection, for the statements whose
//! per-row cost through sqlx decides throughput: the ingest insert ([`super::ingest_sqlite`]) and the attendance
//! job's result writes ([`super::attendance`]).
//!
//! Through sqlx every statement is a message to the connection's worker thread and every bound value a boxed
//! argument; for hundreds of thousands of rows that costs more than SQLite's own work. Here the connection's handle
//! is taken from sqlx ([`sqlx::sqlite::SqliteConnection::lock_handle`]: its worker makes no call meanwhile) and
//! wrapped by rusqlite. The statements run inside the transaction (and savepoint) sqlx opened, and are finalized
//! before the handle goes back.

use sqlx::SqliteConnection;

use super::StoreError;

/// Runs `work` on the raw handle of `conn` (inside its open transaction), off the async executor when it can.
///
/// # Errors
/// Whatever `work` returns, and [`StoreError::Database`] when the handle cannot be taken.
pub(crate) async fn with_handle<T>(
    conn: &mut SqliteConnection,
    work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle();
    let run = move || {
        // SAFETY: `locked` keeps sqlx's worker thread away from this handle until it is dropped, after this closure
        // returned; rusqlite does not close a handle it did not open (`from_handle`), and dropping `db` finalizes
        // every statement prepared on it before the handle goes back to sqlx.
        let db = unsafe { rusqlite::Connection::from_handle(raw.as_ptr()) }?;
        work(&db)
    };
    let result = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        // Many rows take a while: let the runtime move its other tasks to another thread meanwhile.
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
        _ => run(),
    };
    drop(locked);
    result
}
