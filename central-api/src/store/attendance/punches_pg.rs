//! PostgreSQL's side of the punch query: each PIN's row of arrays read in place from the driver's buffer.
//!
//! A month of 10,000 employees is 1.5 M punches. Decoded through sqlx as `Vec<String>` and friends, every punch cost
//! three string allocations (direction, serial, source) and a copy of each, which was most of the client's share of
//! the month's loading. Here the rows are streamed and each array is walked in PostgreSQL's binary array format
//! (`array_send` in PostgreSQL's `arrayfuncs.c`: dimensions, lower bounds, then each element as a 4-byte length
//! and its bytes), so a punch's texts are borrowed `&str`s.

use chrono::{NaiveDate, NaiveDateTime};
use futures::TryStreamExt;
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{PgConnection, Row, ValueRef};

use super::punches::{Decoder, PG_PUNCHES};
use crate::store::StoreError;

/// PostgreSQL's type oids (`pg_type.dat`) of the arrays' elements.
const TEXT: i32 = 25;
const INT2: i32 = 21;
const TIMESTAMP: i32 = 1114;

/// One column of a row as a one-dimensional binary array.
struct Elements<'r> {
    column: &'static str,
    rest: &'r [u8],
    left: usize,
}

fn invalid(column: &str, what: &str) -> StoreError {
    StoreError::Invalid(format!("all_logs.{column}: {what}"))
}

fn take<'r>(bytes: &mut &'r [u8], n: usize, column: &str) -> Result<&'r [u8], StoreError> {
    if bytes.len() < n {
        return Err(invalid(column, "array ends early"));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn int4(bytes: &mut &[u8], column: &str) -> Result<i32, StoreError> {
    let raw = take(bytes, 4, column)?;
    Ok(i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

impl<'r> Elements<'r> {
    /// Column `index` of `row`, an array of elements of type `element` (an oid); SQL NULL reads as empty.
    fn of(row: &'r PgRow, index: usize, column: &'static str, element: i32) -> Result<Self, StoreError> {
        let value = row.try_get_raw(index)?;
        if value.is_null() {
            return Ok(Self { column, rest: &[], left: 0 });
        }
        if value.format() != PgValueFormat::Binary {
            return Err(invalid(column, "array not in binary form"));
        }
        Self::parse(value.as_bytes().map_err(|e| invalid(column, &e.to_string()))?, column, element)
    }

    /// Reads an array's header: its elements must be of type `element`, so that a column whose type changed is an
    /// error rather than misread.
    fn parse(mut bytes: &'r [u8], column: &'static str, element: i32) -> Result<Self, StoreError> {
        let dimensions = int4(&mut bytes, column)?;
        let _has_nulls = int4(&mut bytes, column)?;
        let element_type = int4(&mut bytes, column)?;
        if element_type != element {
            return Err(invalid(column, &format!("array of type oid {element_type}, not {element}")));
        }
        let left = match dimensions {
            0 => 0,
            1 => {
                let len = int4(&mut bytes, column)?;
                let _lower_bound = int4(&mut bytes, column)?;
                usize::try_from(len).map_err(|_| invalid(column, "negative array length"))?
            }
            _ => return Err(invalid(column, "array of more than one dimension")),
        };
        Ok(Self { column, rest: bytes, left })
    }

    /// The next element: `None` at the end, `Some(None)` for SQL NULL, else its bytes.
    fn next(&mut self) -> Result<Option<Option<&'r [u8]>>, StoreError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let len = int4(&mut self.rest, self.column)?;
        if len < 0 {
            return Ok(Some(None));
        }
        let len = usize::try_from(len).map_err(|_| invalid(self.column, "bad element length"))?;
        Ok(Some(Some(take(&mut self.rest, len, self.column)?)))
    }

    fn next_text(&mut self) -> Result<Option<&'r str>, StoreError> {
        match self.next()? {
            None => Ok(None),
            Some(None) => Err(invalid(self.column, "NULL element")),
            Some(Some(bytes)) => std::str::from_utf8(bytes).map(Some).map_err(|e| invalid(self.column, &e.to_string())),
        }
    }

    fn next_int2(&mut self) -> Result<Option<i16>, StoreError> {
        match self.next()? {
            None => Ok(None),
            Some(Some(&[a, b])) => Ok(Some(i16::from_be_bytes([a, b]))),
            Some(_) => Err(invalid(self.column, "not a smallint")),
        }
    }

    /// A `timestamp` (microseconds since 2000-01-01 00:00:00).
    fn next_timestamp(&mut self) -> Result<Option<NaiveDateTime>, StoreError> {
        match self.next()? {
            None => Ok(None),
            Some(Some(&[a, b, c, d, e, f, g, h])) => {
                let micros = i64::from_be_bytes([a, b, c, d, e, f, g, h]);
                let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
                epoch
                    .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::microseconds(micros)))
                    .map(Some)
                    .ok_or_else(|| invalid(self.column, "timestamp out of range"))
            }
            Some(_) => Err(invalid(self.column, "not a timestamp")),
        }
    }
}

/// Adds to `decoder` the punches of `pins` on `dates` with `from <= local_time < to`.
///
/// # Errors
/// [`StoreError::Database`]; [`StoreError::Invalid`] for an array that is not what the query makes.
pub(super) async fn load(
    conn: &mut PgConnection,
    dates: &[NaiveDate],
    pins: &[String],
    from: NaiveDateTime,
    to: NaiveDateTime,
    decoder: &mut Decoder,
) -> Result<(), StoreError> {
    let mut rows = sqlx::query(PG_PUNCHES).bind(dates).bind(pins).bind(from).bind(to).fetch(conn);
    while let Some(row) = rows.try_next().await? {
        let pin_text: &str = row.try_get(0)?;
        let Some(pin) = decoder.pin(pin_text) else { continue };
        let mut times = Elements::of(&row, 1, "local_time", TIMESTAMP)?;
        let mut states = Elements::of(&row, 2, "state", INT2)?;
        let mut directions = Elements::of(&row, 3, "direction", TEXT)?;
        let mut serials = Elements::of(&row, 4, "device_serial", TEXT)?;
        let mut sources = Elements::of(&row, 5, "source", TEXT)?;
        while let Some(local_time) = times.next_timestamp()? {
            let (Some(state), Some(direction), Some(serial), Some(source)) =
                (states.next_int2()?, directions.next_text()?, serials.next_text()?, sources.next_text()?)
            else {
                return Err(invalid("local_time", "arrays of different lengths"));
            };
            decoder.punch(&pin, local_time, state, direction, serial, source);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn array(element: i32, elements: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [1i32, 0, element, i32::try_from(elements.len()).expect("short"), 1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for e in elements {
            match e {
                Some(bytes) => {
                    out.extend_from_slice(&i32::try_from(bytes.len()).expect("short").to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        out
    }

    fn elements(bytes: &[u8], element: i32) -> Elements<'_> {
        Elements::parse(bytes, "t", element).expect("header")
    }

    #[test]
    fn elements_are_read_in_place_and_a_short_or_odd_array_is_an_error_not_a_panic() {
        let bytes = array(TEXT, &[Some(b"IN"), Some(b"OUT"), None]);
        let mut texts = elements(&bytes, TEXT);
        assert_eq!(texts.next_text().expect("first"), Some("IN"));
        assert_eq!(texts.next_text().expect("second"), Some("OUT"));
        assert!(texts.next_text().is_err(), "a NULL text is refused");
        assert_eq!(texts.next_text().expect("end"), None);

        let micros = 86_400_000_000i64 + 1;
        let bytes = array(TIMESTAMP, &[Some(&micros.to_be_bytes()), Some(&7i16.to_be_bytes())]);
        let mut times = elements(&bytes, TIMESTAMP);
        let expected = NaiveDate::from_ymd_opt(2000, 1, 2).and_then(|d| d.and_hms_micro_opt(0, 0, 0, 1));
        assert_eq!(times.next_timestamp().expect("time"), expected);
        assert!(times.next_timestamp().is_err(), "two bytes are not a timestamp");

        let bytes = array(TEXT, &[Some(b"ABCDEF")]);
        assert_eq!(elements(&bytes, TEXT).next_text().expect("whole"), Some("ABCDEF"));
        for end in 20..bytes.len() {
            assert!(elements(&bytes[..end], TEXT).next_text().is_err(), "an array cut at byte {end} is refused");
        }
        for end in 0..20 {
            assert!(Elements::parse(&bytes[..end], "t", TEXT).is_err(), "a header cut at byte {end} is refused");
        }
        assert!(Elements::parse(&bytes, "t", INT2).is_err(), "an array of another type is refused");
        let mut two = bytes.clone();
        two[3] = 2;
        assert!(Elements::parse(&two, "t", TEXT).is_err(), "a two-dimensional array is refused");
    }
}
