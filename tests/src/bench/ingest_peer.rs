//! The database's own limit beside `bench ingest` (issue 19): the same rows written straight into a scratch table
//! shaped like `all_logs` (same columns, unique constraint and indexes), timed in the same run on the same server,
//! and a checksum of what `all_logs` holds.
//!
//! - PostgreSQL: one text `COPY ... FROM STDIN` into `CREATE TABLE ... (LIKE all_logs INCLUDING ALL)`.
//! - SQLite: one transaction of single-row `INSERT`s, one statement prepared once and stepped per row through SQLite's
//!   C interface (rusqlite: no per-statement overhead of an async driver), into a table created from `all_logs`' own
//!   `CREATE` statements, in the same database file, with central-api's durability (WAL, `synchronous = FULL`) and
//!   cache settings. The text values (times) are formatted before the clock starts, as COPY's text is.
//!
//! The rows are those central-api stores (`BatchRows::from_batch` of the same batches: keys computed, sorted per
//! batch), built before the clock starts, as the bench's request bodies are.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Context;
use central_api::store::rows::{BatchRows, PunchRow};
use central_api::store::sqlite_text;
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Connection, Row};

use crate::central::{Backend, CentralDb};

/// The scratch table's name.
const PEER_TABLE: &str = "bench_peer_all_logs";

/// The columns central-api writes (everything but the id and generated columns).
const COLUMNS: &str = "punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, work_code, \
                       source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, received_at, \
                       raw_state, raw_verify";

/// What the peer did.
pub struct Peer {
    pub what: &'static str,
    pub rows: u64,
    pub seconds: f64,
}

/// Writes back what earlier phases left in the write-ahead log (PostgreSQL: `CHECKPOINT`; SQLite: a truncating WAL
/// checkpoint), so that each timed phase starts from the same state and none pays for the one before.
///
/// # Errors
/// When the database refuses.
pub async fn settle(db: &CentralDb) -> anyhow::Result<()> {
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            sqlx::query("CHECKPOINT").execute(&mut conn).await.context("CHECKPOINT")?;
            conn.close().await?;
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await.context("WAL checkpoint")?;
            conn.close().await?;
        }
    }
    Ok(())
}

/// Writes `batches`' rows into a fresh scratch table like `all_logs` and times it; the table is dropped after.
///
/// # Errors
/// When the database refuses, or the peer did not store every row.
pub async fn measure(db: &CentralDb, batches: &[BatchRows]) -> anyhow::Result<Peer> {
    let peer = match db.backend {
        Backend::Postgres => copy_postgres(&db.url, batches).await?,
        Backend::Sqlite => insert_sqlite(&db.url, batches)?,
    };
    let expected: usize = batches.iter().map(|b| b.rows.len()).sum();
    anyhow::ensure!(peer.rows == expected as u64, "the peer stored {} rows of {expected}", peer.rows);
    Ok(peer)
}

async fn copy_postgres(url: &str, batches: &[BatchRows]) -> anyhow::Result<Peer> {
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP TABLE IF EXISTS {PEER_TABLE}")).execute(&mut conn).await?;
    sqlx::query(&format!("CREATE TABLE {PEER_TABLE} (LIKE all_logs INCLUDING ALL)")).execute(&mut conn).await?;
    let received_at = Utc::now();
    let mut text = String::with_capacity(batches.iter().map(|b| b.rows.len()).sum::<usize>() * 200);
    for batch in batches {
        for row in &batch.rows {
            copy_line(&mut text, batch, row, received_at);
        }
    }
    let started = Instant::now();
    let mut copy = conn.copy_in_raw(&format!("COPY {PEER_TABLE} ({COLUMNS}) FROM STDIN")).await?;
    for chunk in text.as_bytes().chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    let rows = copy.finish().await?;
    let seconds = started.elapsed().as_secs_f64();
    sqlx::query(&format!("DROP TABLE {PEER_TABLE}")).execute(&mut conn).await?;
    conn.close().await?;
    Ok(Peer { what: "PostgreSQL COPY (text) into a LIKE all_logs INCLUDING ALL table", rows, seconds })
}

fn optional(value: Option<i64>) -> String {
    value.map_or_else(|| "\\N".to_owned(), |v| v.to_string())
}

/// One row in COPY's text format. The bench's text values hold no tab, newline or backslash.
fn copy_line(out: &mut String, batch: &BatchRows, row: &PunchRow, received_at: DateTime<Utc>) {
    let _ = write!(out, "\\\\x");
    for byte in row.key.as_bytes() {
        let _ = write!(out, "{byte:02x}");
    }
    let _ = writeln!(
        out,
        "\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        batch.site,
        row.device,
        row.pin,
        row.local_time.format("%Y-%m-%d %H:%M:%S"),
        row.utc_time.format("%Y-%m-%d %H:%M:%S+00"),
        row.state,
        row.verify,
        row.work_code,
        row.source,
        row.direction,
        batch.agent,
        row.agent_seq,
        batch.first_seq,
        batch.last_seq,
        received_at.format("%Y-%m-%d %H:%M:%S%.6f+00"),
        optional(row.raw_state),
        optional(row.raw_verify),
    );
}

/// The SQLite file behind a `sqlite://` URL.
fn sqlite_path(url: &str) -> anyhow::Result<&str> {
    let path = url.strip_prefix("sqlite://").context("the SQLite URL does not start with sqlite://")?;
    Ok(path.split('?').next().unwrap_or(path))
}

/// One row's values as SQLite stores them (the text central-api writes), made before the clock starts.
struct SqliteRow<'a> {
    batch: &'a BatchRows,
    row: &'a PunchRow,
    local: String,
    utc: String,
}

/// Runs on this thread (the bench's runtime moves its other tasks away meanwhile).
fn insert_sqlite(url: &str, batches: &[BatchRows]) -> anyhow::Result<Peer> {
    let path = sqlite_path(url)?;
    tokio::task::block_in_place(|| insert_sqlite_blocking(path, batches))
}

fn insert_sqlite_blocking(path: &str, batches: &[BatchRows]) -> anyhow::Result<Peer> {
    let mut conn = rusqlite::Connection::open(path)?;
    // central-api's own settings (`store::Store::connect`): the peer gets the same cache and the same durability.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; \
         PRAGMA cache_size = -65536; PRAGMA mmap_size = 1073741824; PRAGMA temp_store = memory; \
         PRAGMA wal_autocheckpoint = 16384;",
    )?;
    let schema: Vec<String> = conn
        .prepare(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'all_logs' AND sql IS NOT NULL \
             ORDER BY type = 'index', name",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!schema.is_empty(), "all_logs has no schema in sqlite_master");
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {PEER_TABLE}"))?;
    for sql in &schema {
        conn.execute_batch(&sql.replace("all_logs", PEER_TABLE))?;
    }
    let mut received_at = String::new();
    sqlite_text::push_utc(&mut received_at, Utc::now());
    let mut values = Vec::with_capacity(batches.iter().map(|b| b.rows.len()).sum());
    for batch in batches {
        for row in &batch.rows {
            let (mut local, mut utc) = (String::new(), String::new());
            sqlite_text::push_local(&mut local, row.local_time);
            sqlite_text::push_utc(&mut utc, row.utc_time);
            values.push(SqliteRow { batch, row, local, utc });
        }
    }
    let sql = format!(
        "INSERT INTO {PEER_TABLE} ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, \
         ?13, ?14, ?15, ?16, ?17, ?18)"
    );
    let started = Instant::now();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut rows = 0u64;
    {
        let mut insert = tx.prepare(&sql)?;
        for SqliteRow { batch, row, local, utc } in &values {
            rows += insert.execute(rusqlite::params![
                row.key.as_bytes().as_slice(),
                batch.site,
                row.device,
                row.pin,
                local,
                utc,
                row.state,
                row.verify,
                row.work_code,
                row.source,
                row.direction,
                batch.agent,
                row.agent_seq,
                batch.first_seq,
                batch.last_seq,
                received_at,
                row.raw_state,
                row.raw_verify,
            ])? as u64;
        }
    }
    tx.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    conn.execute_batch(&format!("DROP TABLE {PEER_TABLE}"))?;
    Ok(Peer {
        what: "SQLite single-transaction prepared single-row INSERT (C interface, rusqlite) into a copy of all_logs",
        rows,
        seconds,
    })
}

const CHECKSUM_SQL: &str = "SELECT punch_key, site_id, device_serial, pin, local_time, utc_time, state, verify, \
     work_code, source, direction, agent_id, agent_seq, batch_first_seq, batch_last_seq, raw_state, raw_verify \
     FROM all_logs ORDER BY device_serial, local_time, pin";

/// Feeds one row (read with `sqlx::Row::try_get`, the same types on both backends) to the hash.
macro_rules! feed {
    ($hash:expr, $row:expr) => {{
        let row = $row;
        let key: Vec<u8> = row.try_get(0)?;
        $hash.update(&key);
        let mut line = String::new();
        for i in [1usize, 2, 3] {
            let text: String = row.try_get(i)?;
            let _ = write!(line, "|{text}");
        }
        let local: NaiveDateTime = row.try_get(4)?;
        let utc: DateTime<Utc> = row.try_get(5)?;
        let (state, verify): (i16, i16) = (row.try_get(6)?, row.try_get(7)?);
        let work_code: i64 = row.try_get(8)?;
        let _ = write!(line, "|{local}|{utc}|{state}|{verify}|{work_code}");
        for i in [9usize, 10, 11] {
            let text: String = row.try_get(i)?;
            let _ = write!(line, "|{text}");
        }
        for i in [12usize, 13, 14] {
            let n: i64 = row.try_get(i)?;
            let _ = write!(line, "|{n}");
        }
        let (raw_state, raw_verify): (Option<i64>, Option<i64>) = (row.try_get(15)?, row.try_get(16)?);
        let _ = writeln!(line, "|{raw_state:?}|{raw_verify:?}");
        $hash.update(line.as_bytes());
    }};
}

/// SHA-256 (first 16 hex digits) of every `all_logs` row but its id and receive time, in the unique key's order,
/// and the row count. The same rows give the same checksum on both backends.
///
/// # Errors
/// When the database refuses.
pub async fn all_logs_checksum(db: &CentralDb) -> anyhow::Result<(String, u64)> {
    let mut hash = Sha256::new();
    let mut rows = 0u64;
    match db.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await?;
            let mut stream = sqlx::query(CHECKSUM_SQL).fetch(&mut conn);
            while let Some(row) = stream.try_next().await.context("reading all_logs")? {
                feed!(hash, &row);
                rows += 1;
            }
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await?;
            let mut stream = sqlx::query(CHECKSUM_SQL).fetch(&mut conn);
            while let Some(row) = stream.try_next().await.context("reading all_logs")? {
                feed!(hash, &row);
                rows += 1;
            }
        }
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok((hex, rows))
}

/// The load average, for every printed figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
