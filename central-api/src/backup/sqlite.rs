//! SQLite's side of backup and restore, on the connection's raw handle ([`crate::store::sqlite_raw`]): a kind's rows
//! read straight into [`Val`]s, a record's key looked up, a record inserted or updated, each through one prepared
//! statement stepped per row (sqlx would hand every row and every bound value through its worker thread).
//!
//! Values are read as sqlx's decoders read them and bound as sqlx's encoders write them, so a backup file is the
//! same byte for byte and a restored row the same text whichever path wrote it: integers and booleans as integers,
//! dates and times as text in sqlx's forms ([`crate::store::sqlite_text`]), bytes as blobs. The canonical forms are
//! read by hand ([`super::values`]); anything else goes through the formats sqlx's decoder tries, in its order.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use super::db::Existing;
use super::schema::{Base, Col, KindDef, Val};
use super::values::{fast_date, fast_local, fast_time, fast_utc};
use crate::store::sqlite_text::{push_date, push_local, push_utc};
use crate::store::StoreError;

/// A date-time stored as text in a form other than sqlx's own, read as sqlx's decoder reads it.
fn datetime_from_text(text: &str) -> Option<DateTime<FixedOffset>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt);
    }
    const FORMATS: [&str; 12] = [
        "%F %T%.f",
        "%F %R",
        "%F %RZ",
        "%F %R%:z",
        "%F %T%.fZ",
        "%F %T%.f%:z",
        "%FT%R",
        "%FT%RZ",
        "%FT%R%:z",
        "%FT%T%.f",
        "%FT%T%.fZ",
        "%FT%T%.f%:z",
    ];
    FORMATS.iter().find_map(|format| {
        DateTime::parse_from_str(text, format)
            .ok()
            .or_else(|| NaiveDateTime::parse_from_str(text, format).ok().map(|dt| Utc.fix().from_utc_datetime(&dt)))
    })
}

/// A date-time stored as text (any form sqlx reads), seconds since the epoch or a Julian day number.
fn datetime_of(v: ValueRef<'_>) -> Option<DateTime<FixedOffset>> {
    match v {
        ValueRef::Text(t) => datetime_from_text(std::str::from_utf8(t).ok()?),
        ValueRef::Integer(secs) => Utc.fix().timestamp_opt(secs, 0).single(),
        ValueRef::Real(days) => {
            let timestamp = (days - 2_440_587.5) * 86_400.0;
            if !timestamp.is_finite() {
                return None;
            }
            // As sqlx: whole seconds, and the fraction's nanoseconds.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (secs, nanos) = (timestamp.trunc() as i64, (timestamp.fract() * 1e9).abs() as u32);
            Utc.fix().timestamp_opt(secs, nanos).single()
        }
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// A time of day in a form other than the canonical ones, as sqlx's decoder reads it.
fn time_from_text(text: &str) -> Option<NaiveTime> {
    ["%T.f", "%T%.f", "%R", "%RZ", "%T%.fZ", "%R%:z", "%T%.f%:z"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(text, format).ok())
}

fn text_of(v: ValueRef<'_>) -> Option<&str> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).ok(),
        _ => None,
    }
}

/// The stored value `v` of column `col`, as sqlx would have decoded it, truncated to the microsecond. `None`: not a
/// value of the column's type.
fn decode(v: ValueRef<'_>, col: &Col) -> Option<Val> {
    if let ValueRef::Null = v {
        return Some(Val::Null);
    }
    let bytes = match v {
        ValueRef::Text(t) => Some(t),
        _ => None,
    };
    let val = match col.base {
        Base::Int | Base::Int4 | Base::Int2 => Val::Int(v.as_i64().ok()?),
        Base::Bool => Val::Bool(v.as_i64().ok()? != 0),
        Base::Text => Val::Text(text_of(v)?.to_owned()),
        Base::Bytes => match v {
            ValueRef::Blob(b) | ValueRef::Text(b) => Val::Bytes(b.to_vec()),
            _ => return None,
        },
        Base::Date => Val::Date(match bytes.and_then(fast_date) {
            Some(d) => d,
            None => NaiveDate::parse_from_str(text_of(v)?, "%F").ok()?,
        }),
        Base::Time => Val::Time(match bytes.and_then(fast_time) {
            Some(t) => t,
            None => time_from_text(text_of(v)?)?,
        }),
        Base::Local => Val::Local(match bytes.and_then(|b| fast_local(b, b' ').or_else(|| fast_local(b, b'T'))) {
            Some(t) => t,
            None => datetime_of(v)?.naive_local(),
        }),
        Base::Utc => Val::Utc(match bytes.and_then(fast_utc) {
            Some(t) => t,
            None => datetime_of(v)?.with_timezone(&Utc),
        }),
    };
    Some(val.normalized())
}

/// Column `i` of `row`, of column `col` of `def`.
fn column(row: &rusqlite::Row<'_>, i: usize, def: &KindDef, col: &Col) -> Result<Val, StoreError> {
    let v = row.get_ref(i)?;
    decode(v, col).ok_or_else(|| {
        StoreError::Invalid(format!("{}.{} holds {:?}, not a {:?} value", def.table, col.name, v.data_type(), col.base))
    })
}

/// Reads the columns of `def` from `row` into `vals` (cleared first).
fn read_row(row: &rusqlite::Row<'_>, def: &KindDef, vals: &mut Vec<Val>) -> Result<(), StoreError> {
    vals.clear();
    for (i, col) in def.cols.iter().enumerate() {
        vals.push(column(row, i, def, col)?);
    }
    Ok(())
}

/// A value bound as sqlx binds it.
struct Bound<'a>(&'a Val);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        let text = |f: &dyn Fn(&mut String)| {
            let mut s = String::with_capacity(32);
            f(&mut s);
            ToSqlOutput::Owned(Value::Text(s))
        };
        Ok(match self.0 {
            Val::Null => ToSqlOutput::Owned(Value::Null),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Val::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Val::Date(d) => text(&|s| push_date(s, *d)),
            Val::Time(t) => ToSqlOutput::Owned(Value::Text(t.format("%T%.f").to_string())),
            Val::Local(t) => text(&|s| push_local(s, *t)),
            Val::Utc(t) => text(&|s| push_utc(s, *t)),
            Val::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// Steps `sql` (a kind's `SELECT` of [`super::db::select_sql`], `$1` bound to `since` when given) and hands every
/// row's values to `each`; returns the number of rows.
///
/// # Errors
/// The database's, a stored value that is not of its column's type, or `each`'s.
pub fn scan<E: From<StoreError>>(
    db: &rusqlite::Connection,
    def: &KindDef,
    sql: &str,
    since: Option<DateTime<Utc>>,
    mut each: impl FnMut(&[Val]) -> Result<(), E>,
) -> Result<u64, E> {
    let mut statement = db.prepare(sql).map_err(StoreError::from)?;
    let since = since.map(Val::Utc);
    if let Some(since) = &since {
        statement.raw_bind_parameter(1, Bound(since)).map_err(StoreError::from)?;
    }
    let mut rows = statement.raw_query();
    let mut vals = Vec::with_capacity(def.cols.len());
    let mut n = 0u64;
    while let Some(row) = rows.next().map_err(StoreError::from)? {
        read_row(row, def, &mut vals)?;
        each(&vals)?;
        n += 1;
    }
    Ok(n)
}

/// `SELECT` of every column (and the locator) of the rows whose key equals one record's key, lowest locator first.
fn lookup_one_sql(def: &KindDef) -> String {
    let columns: Vec<&str> = def.cols.iter().map(|c| c.name.as_str()).chain(def.locator).collect();
    let conds: Vec<String> = def
        .key
        .iter()
        .map(|k| {
            let col = &def.cols[*k];
            format!("{} {} ?", col.name, if col.nullable { "IS" } else { "=" })
        })
        .collect();
    let order = def.locator.map(|l| format!(" ORDER BY {l}")).unwrap_or_default();
    format!("SELECT {} FROM {} WHERE {}{order} LIMIT 1", columns.join(", "), def.table, conds.join(" AND "))
}

/// The row of each record's key (`vals` of every record of one kind), or `None`: the first one, lowest locator
/// first, when the key is not unique in the table.
///
/// # Errors
/// The database's, or a stored value that is not of its column's type.
pub fn lookup<'a>(
    db: &rusqlite::Connection,
    def: &KindDef,
    records: impl Iterator<Item = &'a [Val]>,
) -> Result<Vec<Option<Existing>>, StoreError> {
    let mut statement = db.prepare_cached(&lookup_one_sql(def))?;
    let mut found = Vec::new();
    for vals in records {
        for (n, k) in def.key.iter().enumerate() {
            statement.raw_bind_parameter(n + 1, Bound(&vals[*k]))?;
        }
        let mut rows = statement.raw_query();
        found.push(match rows.next()? {
            Some(row) => {
                let mut vals = Vec::with_capacity(def.cols.len());
                read_row(row, def, &mut vals)?;
                let id = match def.locator {
                    Some(_) => Some(row.get::<_, i64>(def.cols.len())?),
                    None => None,
                };
                Some(Existing { vals, id })
            }
            None => None,
        });
    }
    Ok(found)
}

/// Inserts each of `records` (values of every column of `def`).
///
/// # Errors
/// The database's (a constraint, a full disk).
pub fn insert<'a>(
    db: &rusqlite::Connection,
    def: &KindDef,
    records: impl Iterator<Item = &'a [Val]>,
) -> Result<(), StoreError> {
    let mut statement = db.prepare_cached(&super::db::insert_sql(def, false, 1))?;
    for vals in records {
        for (i, v) in vals.iter().enumerate() {
            statement.raw_bind_parameter(i + 1, Bound(v))?;
        }
        statement.raw_execute()?;
    }
    Ok(())
}

/// Updates the non-key columns of the row `existing` found for `vals` (by its locator, or else by its key).
///
/// # Errors
/// The database's.
pub fn update(db: &rusqlite::Connection, def: &KindDef, vals: &[Val], existing: &Existing) -> Result<(), StoreError> {
    let mut statement = db.prepare_cached(&super::db::update_sql(def, false))?;
    let mut n = 0;
    let id = existing.id.map(Val::Int);
    let filter: Vec<&Val> = match &id {
        Some(id) => vec![id],
        None => def.key.iter().map(|k| &vals[*k]).collect(),
    };
    for v in def.non_key().map(|i| &vals[i]).chain(filter) {
        n += 1;
        statement.raw_bind_parameter(n, Bound(v))?;
    }
    statement.raw_execute()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(base: Base) -> Col {
        Col { name: "c".into(), base, nullable: true, allowed: &[], later: false }
    }

    #[test]
    fn other_forms_read_as_sqlx_reads_them() {
        let local = col(Base::Local);
        let utc = col(Base::Utc);
        let at = NaiveDate::from_ymd_opt(2024, 1, 31).and_then(|d| d.and_hms_micro_opt(8, 0, 0, 500_000));
        let at = at.unwrap_or_default();
        for text in ["2024-01-31 08:00:00.5", "2024-01-31T08:00:00.500", "2024-01-31T08:00:00.500000000"] {
            assert_eq!(decode(ValueRef::Text(text.as_bytes()), &local), Some(Val::Local(at)), "{text}");
        }
        // An offset: the local reading keeps the wall clock, the instant is moved to UTC.
        let zoned = ValueRef::Text(b"2024-01-31T13:30:00.5+05:30");
        assert_eq!(decode(zoned, &local), Some(Val::Local(at + chrono::Duration::minutes(330))));
        assert_eq!(decode(zoned, &utc), Some(Val::Utc(at.and_utc())));
        assert_eq!(decode(ValueRef::Text(b"2024-01-31 08:00:00.5"), &utc), Some(Val::Utc(at.and_utc())));
        assert_eq!(decode(ValueRef::Integer(0), &utc), Some(Val::Utc(DateTime::UNIX_EPOCH)));
        assert_eq!(decode(ValueRef::Text(b"08:00"), &col(Base::Time)), NaiveTime::from_hms_opt(8, 0, 0).map(Val::Time));
        assert_eq!(decode(ValueRef::Text(b"31/01/2024"), &col(Base::Date)), None);
        assert_eq!(decode(ValueRef::Text(b"7"), &col(Base::Int)), None);
        assert_eq!(decode(ValueRef::Integer(2), &col(Base::Bool)), Some(Val::Bool(true)));
        assert_eq!(decode(ValueRef::Null, &col(Base::Bool)), Some(Val::Null));
    }
}
