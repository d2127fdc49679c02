//! The punch query: the ONE place that reads `all_logs` for attendance (and the manual logs beside it).
//!
//! `all_logs` is indexed by `(local_date, pin, local_time)` (ingest appends to it in time order), so the query names
//! every local date of the range and every PIN: the index is probed once per (date, PIN) pair and reads only the rows
//! asked for, never a scan of other employees' punches (the statements are shaped so that the planner cannot pick a
//! scan of the whole date range instead, whatever its statistics say). SQLite's rows are read in
//! [`super::punches_sqlite`], PostgreSQL's in [`super::punches_pg`].

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use protocol::{DeviceSerial, Direction, Pin, PunchSource, PunchState};

use crate::attendance::engine::AttendancePunch;
use crate::store::{StoreError, Tx};

use super::parse_approval;

/// Whose manual logs to load.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// A list of ids (or dates) as the JSON array SQLite's `json_each` reads.
pub(super) fn json(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// PostgreSQL: one index scan per PIN over the dates (the PIN list is the outer loop of a `LATERAL` join, so the PIN
/// is always an index condition; an aggregate is never flattened into the outer query). A flat `local_date = ANY(..)
/// AND pin = ANY(..)` was planned, on a fresh table without statistics or one holding little more than the range
/// asked for, as a scan of every punch of the date range filtered by PIN (or a sequential scan): ten times slower
/// for a chunk of 500 employees. One row per PIN carrying its punches as arrays: the driver's cost is per row, and
/// one row per punch made it most of the load time. The arrays are read in [`super::punches_pg`].
pub(super) const PG_PUNCHES: &str = "SELECT e.pin, l.times, l.states, l.directions, l.serials, l.sources \
     FROM UNNEST($2::text[]) AS e(pin) CROSS JOIN LATERAL (\
         SELECT array_agg(local_time) AS times, array_agg(state) AS states, array_agg(direction) AS directions, \
                array_agg(device_serial) AS serials, array_agg(source) AS sources FROM all_logs \
         WHERE local_date = ANY($1) AND pin = e.pin AND local_time >= $3 AND local_time < $4) AS l \
     WHERE l.times IS NOT NULL";

/// The device punches of `pins` with `from <= local_time < to`, in no particular order. A row whose PIN, serial,
/// time or source no longer parses (it was validated at ingest) is skipped with a warning rather than failing the
/// day.
///
/// # Errors
/// [`StoreError::Database`], [`StoreError::Sqlite`]; [`StoreError::Invalid`] for a SQLite column of an unexpected type.
pub async fn load_punches(
    tx: &mut Tx,
    pins: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<AttendancePunch>, StoreError> {
    let dates = local_dates(from, to);
    if dates.is_empty() || pins.is_empty() {
        return Ok(Vec::new());
    }
    let mut decoder = Decoder::default();
    match tx {
        Tx::Postgres(t) => super::punches_pg::load(t, &dates, pins, from, to, &mut decoder).await?,
        Tx::Sqlite(t) => super::punches_sqlite::load(t, &dates, pins, from, to, &mut decoder).await?,
    }
    Ok(decoder.punches)
}

/// Turns `all_logs` columns into punches, parsing each distinct device serial once (a chunk's punches come from a
/// few devices).
#[derive(Default)]
pub(super) struct Decoder {
    serials: HashMap<String, Option<DeviceSerial>>,
    punches: Vec<AttendancePunch>,
}

impl Decoder {
    /// The PIN of a row, `None` (with a warning) when it no longer parses.
    pub(super) fn pin(&self, text: &str) -> Option<Pin> {
        text.parse::<Pin>()
            .inspect_err(
                |e| tracing::warn!(pin = %text, error = %e, "skipping the all_logs rows of a PIN that does not parse"),
            )
            .ok()
    }

    /// Adds a punch. A row whose serial or source no longer parses (it was validated at ingest) is skipped with a
    /// warning rather than failing the day.
    pub(super) fn punch(
        &mut self,
        pin: &Pin,
        local_time: NaiveDateTime,
        state: i16,
        direction: &str,
        serial: &str,
        source: &str,
    ) {
        let serial_parsed = match self.serials.get(serial) {
            Some(parsed) => parsed.clone(),
            None => {
                let parsed = serial.parse::<DeviceSerial>().ok();
                self.serials.insert(serial.to_owned(), parsed.clone());
                parsed
            }
        };
        let (Some(serial), Some(source)) = (serial_parsed, source_of(source)) else {
            tracing::warn!(%pin, %local_time, %serial, %source, "skipping an all_logs row that does not parse");
            return;
        };
        self.punches.push(AttendancePunch::from_device(
            pin.clone(),
            local_time,
            PunchState::from_code(u8::try_from(state).unwrap_or(u8::MAX)),
            direction_of(direction),
            serial,
            source,
        ));
    }
}

/// Every local date a time in `from..to` can fall on.
fn local_dates(from: NaiveDateTime, to: NaiveDateTime) -> Vec<NaiveDate> {
    let mut dates = Vec::new();
    if to <= from {
        return dates;
    }
    let last = (to - chrono::Duration::nanoseconds(1)).date();
    let mut day = from.date();
    while day <= last {
        dates.push(day);
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    dates
}

/// The manual logs (approved, pending and rejected: the engine counts only approved ones and names the others) of
/// `who` with `from <= local_time < to`.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn load_manual_logs(
    tx: &mut Tx,
    who: Who<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<AttendancePunch>, StoreError> {
    let many = match who {
        Who::One(id) => vec![id.to_owned()],
        Who::Many(ids) => ids.to_vec(),
    };
    let rows: Vec<(String, NaiveDateTime, i16, String)> = match tx {
        Tx::Postgres(t) => {
            sqlx::query_as(
                "SELECT employee_id, local_time, state, approval FROM manual_logs \
                 WHERE employee_id = ANY($1) AND local_time >= $2 AND local_time < $3",
            )
            .bind(&many)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?
        }
        Tx::Sqlite(t) => {
            sqlx::query_as(
                "SELECT employee_id, local_time, state, approval FROM manual_logs \
                 WHERE employee_id IN (SELECT value FROM json_each(?1)) AND local_time >= ?2 AND local_time < ?3",
            )
            .bind(json(&many)?)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?
        }
    };
    let mut out = Vec::with_capacity(rows.len());
    for (id, at, state, approval) in rows {
        let pin: Pin = id.parse().map_err(|e| StoreError::Invalid(format!("manual log of {id:?}: {e}")))?;
        out.push(AttendancePunch::manual(
            pin,
            at,
            PunchState::from_code(u8::try_from(state).unwrap_or(u8::MAX)),
            parse_approval(&approval)?,
        ));
    }
    Ok(out)
}

fn direction_of(text: &str) -> Direction {
    match text {
        "IN" => Direction::In,
        "OUT" => Direction::Out,
        _ => Direction::Both,
    }
}

fn source_of(text: &str) -> Option<PunchSource> {
    [
        PunchSource::ZkPull,
        PunchSource::ZkRealtime,
        PunchSource::AdmsPush,
        PunchSource::Serial,
        PunchSource::Modbus,
        PunchSource::Sql,
        PunchSource::Manual,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
}

#[cfg(test)]
mod tests {
    use super::local_dates;
    use chrono::NaiveDate;

    fn at(day: u32, hour: u32) -> chrono::NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 1, day).and_then(|d| d.and_hms_opt(hour, 0, 0)).expect("valid")
    }

    #[test]
    fn every_date_the_range_touches_and_no_other() {
        let dates: Vec<u32> = local_dates(at(30, 20), at(31, 0)).iter().map(chrono::Datelike::day).collect();
        assert_eq!(dates, [30], "an end at midnight is exclusive");
        let dates: Vec<u32> = local_dates(at(29, 20), at(31, 1)).iter().map(chrono::Datelike::day).collect();
        assert_eq!(dates, [29, 30, 31]);
        assert!(local_dates(at(5, 1), at(5, 1)).is_empty());
    }
}
