//! The SQL poller: one task per source. Connect, match the schema, then every `poll_interval`: read the rows after
//! the cursor in pages of `batch_size`, append each page's punches, and only then store the page's last id as the
//! cursor (`sql.cursor` in the buffer), so a restart neither re-reads nor skips. A backlog is read page after page
//! without waiting. In `rescan` mode each poll then re-reads the rows whose time is within the window; punches
//! already stored are not appended again (and the buffer's key index would absorb them anyway).
//!
//! A row that cannot be mapped is counted, reported in the fault `sql_unmappable_rows` with an example, and skipped;
//! the cursor moves past it. A failed call drops the connection, raises `sql_unreachable`, `sql_auth_failed` or
//! `sql_schema_mismatch`, and the next poll starts again from the stored cursor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use protocol::{DeviceInfo, Punch, PunchKey};
use tokio_util::sync::CancellationToken;

use super::client::{SqlClient, SqlError, UNMAPPABLE_ROWS};
use super::query::Statement;
use super::row::{Mapped, TimeKind};
use super::schema::{resolve, Resolved};
use super::settings::{describe, Mode, SqlSource};
use super::stats;
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::{PunchSink, SinkError};

/// The cursor: the id of the last row whose punch is stored (8 bytes, big-endian, signed).
pub const CURSOR: &str = "sql.cursor";
/// Pages read in one round before the status is updated and shutdown looked at.
const PAGES_PER_ROUND: usize = 20;
/// How long `sql_unmappable_rows` stays raised after the last such row.
const UNMAPPABLE_VISIBLE: Duration = Duration::from_secs(3600);
/// Most rows the re-scan remembers (id -> key) to avoid appending unchanged rows again.
const MAX_REMEMBERED: usize = 500_000;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Sql(#[from] SqlError),
    #[error("buffer: {0}")]
    Sink(#[from] SinkError),
}

/// Rows skipped since the agent started, with the newest example.
#[derive(Debug, Default)]
struct Skipped {
    total: u64,
    last: Option<(Instant, i64, String)>,
}

/// What the task keeps between polls.
struct State {
    client: Option<SqlClient>,
    resolved: Option<Resolved>,
    skipped: Skipped,
    /// Rows of the re-scan window already stored: id -> key (`None` for a row that could not be mapped).
    remembered: HashMap<i64, Option<PunchKey>>,
    rows_read: u64,
}

/// What one round did.
#[derive(Debug, Default)]
struct Round {
    /// Pages were full: there is more to read right away.
    more: bool,
}

/// Reads the source until `shutdown`.
pub async fn run<S: PunchSink>(source: SqlSource, sink: Arc<S>, board: DeviceStatusBoard, shutdown: CancellationToken) {
    board.identify(&source.serial, "sql", None);
    let mut state =
        State { client: None, resolved: None, skipped: Skipped::default(), remembered: HashMap::new(), rows_read: 0 };
    let serial = source.serial.to_string();
    loop {
        let more = match round(&source, sink.as_ref(), &board, &mut state, &shutdown).await {
            Ok(round) => {
                let now = Utc::now();
                let contact = Contact {
                    record_count: Some(u32::try_from(state.rows_read).unwrap_or(u32::MAX)),
                    ..Contact::default()
                };
                board.success(&source.serial, now, contact);
                stats::update(&serial, |s| s.last_success = Some(now));
                if let Some((at, id, reason)) = &state.skipped.last {
                    if at.elapsed() < UNMAPPABLE_VISIBLE {
                        board.fault(
                            &source.serial,
                            now,
                            UNMAPPABLE_ROWS,
                            format!(
                                "{} rows could not become punches and were skipped (the cursor moved past them); \
                                 the newest: row id {id}: {reason}",
                                state.skipped.total
                            ),
                        );
                    }
                }
                round.more
            }
            Err(PollError::Sink(e)) => {
                tracing::warn!(device = %source.serial, error = %e, "buffer refused SQL rows; retrying later");
                false
            }
            Err(PollError::Sql(e)) => {
                tracing::warn!(device = %source.serial, fault = e.fault(), error = %e, "SQL source read failed");
                board.failure(&source.serial, Utc::now(), e.fault(), e.to_string());
                state.resolved = None;
                false
            }
        };
        if shutdown.is_cancelled() {
            break;
        }
        if more && sink.accepting() {
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(source.poll_interval) => {}
        }
    }
    if let Some(client) = state.client.take() {
        client.close().await;
    }
}

/// Connects when needed, then reads; keeps the connection unless the database failed.
async fn round<S: PunchSink>(
    source: &SqlSource,
    sink: &S,
    board: &DeviceStatusBoard,
    state: &mut State,
    shutdown: &CancellationToken,
) -> Result<Round, PollError> {
    let mut client = match state.client.take() {
        Some(client) => client,
        None => {
            let mut client = SqlClient::connect(&source.connection).await?;
            let version = match client.server_version().await {
                Ok(version) => version,
                Err(e) => {
                    client.close().await;
                    return Err(e.into());
                }
            };
            tracing::info!(device = %source.serial, server = %version, source = %describe(source), "SQL source connected");
            board.identify(
                &source.serial,
                "sql",
                Some(DeviceInfo { model: Some(version), platform: Some(describe(source)), ..DeviceInfo::default() }),
            );
            client
        }
    };
    let result = read(source, sink, board, state, &mut client, shutdown).await;
    if matches!(result, Err(PollError::Sql(_))) {
        client.close().await;
    } else {
        state.client = Some(client);
    }
    result
}

/// Resolves the schema when needed, reads the rows after the cursor, then re-scans (in that mode).
async fn read<S: PunchSink>(
    source: &SqlSource,
    sink: &S,
    board: &DeviceStatusBoard,
    state: &mut State,
    client: &mut SqlClient,
    shutdown: &CancellationToken,
) -> Result<Round, PollError> {
    let resolved = match &state.resolved {
        Some(resolved) => resolved.clone(),
        None => {
            let resolved = resolve(client, source).await?;
            state.resolved = Some(resolved.clone());
            resolved
        }
    };
    if !sink.accepting() {
        return Ok(Round::default());
    }
    let mut cursor = match sink.cursor(&source.serial, CURSOR).await? {
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_slice())
            .map(i64::from_be_bytes)
            .map_err(|_| SinkError::Storage(format!("cursor {CURSOR} of {} bytes", bytes.len())))?,
        None => source.start_after_id.unwrap_or(i64::MIN),
    };
    let serial = source.serial.to_string();
    if cursor != i64::MIN {
        stats::update(&serial, |s| s.last_id = Some(cursor));
    }
    let track = matches!(source.mode, Mode::Rescan { .. });
    let batch = resolved.plan.batch_size as usize;
    let mut more = true;
    let mut page = read_page(client, &resolved, &resolved.plan.after(cursor)).await?;
    for index in 0..PAGES_PER_ROUND {
        if shutdown.is_cancelled() || !sink.accepting() {
            return Ok(Round { more: false });
        }
        let full = page.rows == batch;
        let Some(last_id) = page.last_id else {
            more = false;
            break;
        };
        if last_id <= cursor {
            return Err(SqlError::Schema(format!("ids are not increasing: {last_id} came after {cursor}")).into());
        }
        // While a full page is stored, the next one is fetched (the database and the disk work at once).
        let next = if full && index + 1 < PAGES_PER_ROUND {
            let statement = resolved.plan.after(last_id);
            // The fetch goes first, so the query is on its way before the append's own work begins.
            let (fetched, stored) =
                tokio::join!(read_page(client, &resolved, &statement), store(source, sink, board, state, page, track));
            stored?;
            Some(fetched)
        } else {
            store(source, sink, board, state, page, track).await?;
            None
        };
        // Only now, with the page's punches durable, does the cursor move past its rows.
        sink.set_cursor(&source.serial, CURSOR, last_id.to_be_bytes().to_vec()).await?;
        cursor = last_id;
        stats::update(&serial, |s| s.last_id = Some(last_id));
        if !full {
            more = false;
            break;
        }
        match next {
            Some(fetched) => page = fetched?,
            None => break,
        }
    }
    // A backlog is read to its end before the re-scan.
    if more {
        return Ok(Round { more: true });
    }
    if let Mode::Rescan { window } = source.mode {
        rescan(source, sink, board, state, client, &resolved, cursor, window, shutdown).await?;
    }
    Ok(Round { more: false })
}

/// One page of mapped rows.
struct Page {
    rows: usize,
    last_id: Option<i64>,
    mapped: Vec<Mapped>,
}

async fn read_page(client: &mut SqlClient, resolved: &Resolved, statement: &Statement) -> Result<Page, SqlError> {
    let results = client
        .fetch(statement, resolved.positions.count, |values| resolved.mapper.map(&resolved.fields(values)))
        .await?;
    let rows = results.len();
    let mapped = results.into_iter().collect::<Result<Vec<_>, _>>().map_err(|e| SqlError::Schema(e.to_string()))?;
    Ok(Page { rows, last_id: mapped.iter().map(Mapped::id).max(), mapped })
}

/// Appends a page's punches (durably) and counts what could not be mapped. With `track`, rows already stored
/// unchanged (the re-scan) are left out, and every row is remembered.
async fn store<S: PunchSink>(
    source: &SqlSource,
    sink: &S,
    board: &DeviceStatusBoard,
    state: &mut State,
    page: Page,
    track: bool,
) -> Result<(), PollError> {
    let mut punches: Vec<Punch> = Vec::with_capacity(page.mapped.len());
    let mut skipped = 0u64;
    let mut example = None;
    let mut newest: Option<DateTime<Utc>> = None;
    let mut remember = Vec::new();
    for mapped in page.mapped {
        match mapped {
            Mapped::Punch { id, punch } => {
                // The key (a SHA-256) is only needed to remember re-scanned rows; the buffer computes its own.
                if track {
                    let key = punch.key();
                    if state.remembered.get(&id) == Some(&Some(key)) {
                        continue;
                    }
                    remember.push((id, Some(key)));
                }
                newest = newest.max(Some(punch.utc_time));
                punches.push(*punch);
            }
            Mapped::Unmappable { id, reason } => {
                if track && state.remembered.get(&id) == Some(&None) {
                    continue;
                }
                if track {
                    remember.push((id, None));
                }
                skipped += 1;
                example.get_or_insert((id, reason));
            }
        }
    }
    let stored = punches.len() as u64;
    if !punches.is_empty() {
        let appended = sink.append(punches).await?;
        board.punches_read(&source.serial, appended.new as u64);
    }
    if track && state.remembered.len() + remember.len() <= MAX_REMEMBERED {
        state.remembered.extend(remember);
    }
    if let Some(newest) = newest {
        board.last_punch(&source.serial, newest);
    }
    state.rows_read += stored + skipped;
    if let Some((id, reason)) = &example {
        tracing::warn!(device = %source.serial, skipped, example_id = id, reason = %reason, "SQL rows skipped");
    }
    state.skipped.total += skipped;
    if let Some((id, reason)) = example {
        state.skipped.last = Some((Instant::now(), id, reason));
    }
    stats::update(source.serial.as_str(), |s| {
        s.rows_read += stored + skipped;
        s.unmappable_rows += skipped;
        s.newest_row = s.newest_row.max(newest);
    });
    Ok(())
}

/// Re-reads the rows up to the cursor whose time is within `window`, page by page.
#[allow(clippy::too_many_arguments)]
async fn rescan<S: PunchSink>(
    source: &SqlSource,
    sink: &S,
    board: &DeviceStatusBoard,
    state: &mut State,
    client: &mut SqlClient,
    resolved: &Resolved,
    upto: i64,
    window: Duration,
    shutdown: &CancellationToken,
) -> Result<(), PollError> {
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(24));
    let since = match resolved.plan.time_kind {
        TimeKind::Instant => match resolved.plan.dialect {
            super::query::Dialect::Postgres => since.format("%Y-%m-%d %H:%M:%S+00").to_string(),
            super::query::Dialect::MySql => since.format("%Y-%m-%d %H:%M:%S").to_string(),
        },
        _ => since.with_timezone(&source.mapper.zone).naive_local().format("%Y-%m-%d %H:%M:%S").to_string(),
    };
    let mut after = i64::MIN;
    let mut seen = Vec::new();
    loop {
        if shutdown.is_cancelled() || !sink.accepting() {
            return Ok(());
        }
        let page = read_page(client, resolved, &resolved.plan.rescan(after, upto, &since)).await?;
        let Some(last_id) = page.last_id else { break };
        let full = page.rows == resolved.plan.batch_size as usize;
        seen.extend(page.mapped.iter().map(Mapped::id));
        store(source, sink, board, state, page, true).await?;
        after = last_id;
        if !full {
            break;
        }
    }
    // Forget rows that left the window.
    let seen: std::collections::HashSet<i64> = seen.into_iter().collect();
    state.remembered.retain(|id, _| seen.contains(id) || *id > upto);
    Ok(())
}
