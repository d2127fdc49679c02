//! SQLite's side of the punch query: the rows of `all_logs` a batch of employees needs, stepped through rusqlite on
//! the transaction's own handle ([`crate::store::sqlite_raw::with_handle`]) and decoded in place, with no copy of a
//! row's texts.
//!
//! A month of 10,000 employees is 1.5 M punches: building a JSON array per PIN in SQLite and decoding it again here
//! cost more than SQLite's reading of the rows. The statement is shaped as before (the PIN list is the outer loop,
//! each (PIN, date) one probe of the `(local_date, pin, local_time)` index), so the rows of one PIN arrive together
//! and each PIN is parsed once.

use chrono::{NaiveDate, NaiveDateTime};
use protocol::Pin;
use rusqlite::types::ValueRef;
use sqlx::SqliteConnection;

use super::punches::{json, Decoder};
use crate::store::sqlite_raw::with_handle;
use crate::store::sqlite_text::{parse_local, push_date, push_local};
use crate::store::StoreError;

const PUNCH_ROWS: &str = "SELECT e.value, l.local_time, l.state, l.direction, l.device_serial, l.source \
     FROM json_each(?2) AS e CROSS JOIN json_each(?1) AS d CROSS JOIN all_logs AS l \
     WHERE l.local_date = d.value AND l.pin = e.value AND l.local_time >= ?3 AND l.local_time < ?4";

fn text<'r>(value: ValueRef<'r>, column: &str) -> Result<&'r str, StoreError> {
    value.as_str().map_err(|e| StoreError::Invalid(format!("all_logs.{column}: {e}")))
}

/// Adds to `decoder` the punches of `pins` on `dates` with `from <= local_time < to`.
///
/// # Errors
/// [`StoreError::Sqlite`]; [`StoreError::Invalid`] for a column of an unexpected type.
pub(super) async fn load(
    conn: &mut SqliteConnection,
    dates: &[NaiveDate],
    pins: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
    decoder: &mut Decoder,
) -> Result<(), StoreError> {
    let dates: Vec<String> = dates
        .iter()
        .map(|d| {
            let mut out = String::with_capacity(10);
            push_date(&mut out, *d);
            out
        })
        .collect();
    let (dates, pins) = (json(&dates)?, json(pins)?);
    let (mut from_text, mut to_text) = (String::with_capacity(32), String::with_capacity(32));
    push_local(&mut from_text, from);
    push_local(&mut to_text, to);
    with_handle(conn, |db| {
        let mut statement = db.prepare_cached(PUNCH_ROWS)?;
        let mut rows = statement.query([&dates, &pins, &from_text, &to_text])?;
        // The PIN of the rows being read, parsed once (`None`: it does not parse, its rows are skipped).
        let mut current: Option<(String, Option<Pin>)> = None;
        while let Some(row) = rows.next()? {
            let pin_text = text(row.get_ref(0)?, "pin")?;
            if current.as_ref().is_none_or(|(text, _)| text != pin_text) {
                current = Some((pin_text.to_owned(), decoder.pin(pin_text)));
            }
            let Some((_, Some(pin))) = &current else { continue };
            let time_text = text(row.get_ref(1)?, "local_time")?;
            let Some(local_time) = parse_local(time_text) else {
                tracing::warn!(%pin, local_time = %time_text, "skipping an all_logs row whose local time does not parse");
                continue;
            };
            let state = row.get_ref(2)?.as_i64().map_err(|e| StoreError::Invalid(format!("all_logs.state: {e}")))?;
            let state = i16::try_from(state).unwrap_or(i16::MAX);
            let (direction, serial, source) = (
                text(row.get_ref(3)?, "direction")?,
                text(row.get_ref(4)?, "device_serial")?,
                text(row.get_ref(5)?, "source")?,
            );
            decoder.punch(pin, local_time, state, direction, serial, source);
        }
        Ok(())
    })
    .await
}
