//! The punch query: the ONE place that reads `all_logs` for attendance (and the manual logs beside it).
//!
//! It filters on `pin = ? AND local_time >= ? AND local_time < ?` (or `pin` in a list, for bulk loads), which the
//! index `all_logs (pin, local_time)` serves. When `all_logs` gains a `local_date` column with an index on
//! `(local_date, pin, local_time)`, only [`load_punches`] changes.

use chrono::NaiveDateTime;
use protocol::{DeviceSerial, Direction, Pin, PunchSource, PunchState};

use crate::attendance::engine::AttendancePunch;
use crate::store::{StoreError, Tx};

use super::parse_approval;

/// (pin, local_time, state, direction, device_serial, source)
type PunchRow = (String, NaiveDateTime, i16, String, String, String);

/// Whose punches to load.
#[derive(Debug, Clone, Copy)]
pub enum Who<'a> {
    One(&'a str),
    Many(&'a [String]),
}

fn json(ids: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(ids).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The device punches of `who` with `from <= local_time < to`, in no particular order. A row whose PIN, serial or
/// source no longer parses (it was validated at ingest) is skipped with a warning rather than failing the day.
///
/// # Errors
/// [`StoreError::Database`].
pub async fn load_punches(
    tx: &mut Tx,
    who: Who<'_>,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<Vec<AttendancePunch>, StoreError> {
    const COLUMNS: &str = "SELECT pin, local_time, state, direction, device_serial, source FROM all_logs";
    let rows: Vec<PunchRow> = match (tx, who) {
        (Tx::Postgres(t), Who::One(pin)) => {
            sqlx::query_as(&format!("{COLUMNS} WHERE pin = $1 AND local_time >= $2 AND local_time < $3"))
                .bind(pin)
                .bind(from)
                .bind(to)
                .fetch_all(&mut **t)
                .await?
        }
        (Tx::Postgres(t), Who::Many(pins)) => {
            sqlx::query_as(&format!("{COLUMNS} WHERE pin = ANY($1) AND local_time >= $2 AND local_time < $3"))
                .bind(pins)
                .bind(from)
                .bind(to)
                .fetch_all(&mut **t)
                .await?
        }
        (Tx::Sqlite(t), Who::One(pin)) => {
            sqlx::query_as(&format!("{COLUMNS} WHERE pin = ?1 AND local_time >= ?2 AND local_time < ?3"))
                .bind(pin)
                .bind(from)
                .bind(to)
                .fetch_all(&mut **t)
                .await?
        }
        (Tx::Sqlite(t), Who::Many(pins)) => {
            // CROSS JOIN makes the list the outer loop: one index range per PIN, never a scan of all_logs.
            sqlx::query_as(
                "SELECT l.pin, l.local_time, l.state, l.direction, l.device_serial, l.source \
                 FROM json_each(?1) AS e CROSS JOIN all_logs AS l \
                 WHERE l.pin = e.value AND l.local_time >= ?2 AND l.local_time < ?3",
            )
            .bind(json(pins)?)
            .bind(from)
            .bind(to)
            .fetch_all(&mut **t)
            .await?
        }
    };
    let mut punches = Vec::with_capacity(rows.len());
    for (pin, local_time, state, direction, serial, source) in rows {
        let (Ok(pin), Ok(serial), Some(source)) =
            (pin.parse::<Pin>(), serial.parse::<DeviceSerial>(), source_of(&source))
        else {
            tracing::warn!(%pin, %local_time, %serial, %source, "skipping an all_logs row that does not parse");
            continue;
        };
        punches.push(AttendancePunch::from_device(
            pin,
            local_time,
            PunchState::from_code(u8::try_from(state).unwrap_or(u8::MAX)),
            direction_of(&direction),
            serial,
            source,
        ));
    }
    Ok(punches)
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
