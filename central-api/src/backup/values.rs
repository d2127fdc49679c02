//! Column values as a backup file holds them: the canonical text a record's checksum covers ([`write_val`]) and
//! the reading of values back, from a file's JSON ([`parse_val`], [`parse_text`]) or from SQLite's stored text
//! (`fast_*`).
//!
//! Both directions run for every value of every record, so the canonical forms of dates and times are written and
//! read by hand; anything else goes through chrono, and a proptest checks the hand-written text against chrono's.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use super::schema::{micros_local, micros_time, micros_utc, Base, Col, Val};

/// Appends `.fff` or `.ffffff` (nothing for a whole second), as chrono's formatter gave it.
fn push_fraction(out: &mut String, nanos: u32) {
    let micros = nanos / 1000;
    if micros == 0 {
    } else if micros % 1000 == 0 {
        out.push_str(&format!(".{:03}", micros / 1000));
    } else {
        out.push_str(&format!(".{micros:06}"));
    }
}

/// `HH:MM:SS[.fff|.ffffff]` through chrono (leap seconds).
fn time_text(t: NaiveTime) -> String {
    let mut s = t.format("%H:%M:%S").to_string();
    push_fraction(&mut s, t.nanosecond() % 1_000_000_000);
    s
}

#[cfg(test)]
fn local_text(t: NaiveDateTime) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    push_fraction(&mut s, t.nanosecond() % 1_000_000_000);
    s
}

/// Writes the `digits` lowest decimal digits of `n`, zero-padded.
fn push_digits(out: &mut Vec<u8>, n: u32, digits: u32) {
    for i in (0..digits).rev() {
        // A digit is below 10, so the cast keeps it.
        out.push(b'0' + (n / 10u32.pow(i) % 10) as u8);
    }
}

/// `YYYY-MM-DD`, without the quotes. The dates chrono prints with a sign (years outside 0..=9999) go through
/// chrono's formatter, so both give the same text.
fn push_date(out: &mut Vec<u8>, d: NaiveDate) {
    match u32::try_from(d.year()) {
        Ok(year) if year <= 9999 => {
            push_digits(out, year, 4);
            out.push(b'-');
            push_digits(out, d.month(), 2);
            out.push(b'-');
            push_digits(out, d.day(), 2);
        }
        _ => out.extend_from_slice(d.format("%Y-%m-%d").to_string().as_bytes()),
    }
}

/// `HH:MM:SS[.fff|.ffffff]` of a time already truncated to the microsecond, without the quotes. A leap second
/// (chrono's nanoseconds past 1e9) goes through chrono's formatter.
fn push_time(out: &mut Vec<u8>, t: NaiveTime) {
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        out.extend_from_slice(time_text(t).as_bytes());
        return;
    }
    push_digits(out, t.hour(), 2);
    out.push(b':');
    push_digits(out, t.minute(), 2);
    out.push(b':');
    push_digits(out, t.second(), 2);
    let micros = nanos / 1000;
    if micros == 0 {
    } else if micros % 1000 == 0 {
        out.push(b'.');
        push_digits(out, micros / 1000, 3);
    } else {
        out.push(b'.');
        push_digits(out, micros, 6);
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]` of a date-time already truncated to the microsecond, without the quotes.
fn push_local(out: &mut Vec<u8>, t: NaiveDateTime) {
    push_date(out, t.date());
    out.push(b'T');
    push_time(out, t.time());
}

/// Writes `v` in its canonical JSON form. Dates and times are formatted by hand (this runs for every value of
/// every record, in backup and restore alike); `canonical_forms_match_chrono` checks them against chrono's text.
pub fn write_val(out: &mut Vec<u8>, v: &Val) {
    match v {
        Val::Null => out.extend_from_slice(b"null"),
        // Writing JSON into a Vec cannot fail.
        Val::Text(s) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Val::Int(i) => {
            let _ = serde_json::to_writer(&mut *out, i);
        }
        Val::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Val::Date(d) => {
            out.push(b'"');
            push_date(out, *d);
            out.push(b'"');
        }
        Val::Time(t) => {
            out.push(b'"');
            push_time(out, micros_time(*t));
            out.push(b'"');
        }
        Val::Local(t) => {
            out.push(b'"');
            push_local(out, micros_local(*t));
            out.push(b'"');
        }
        Val::Utc(t) => {
            out.push(b'"');
            push_local(out, micros_utc(*t).naive_utc());
            out.extend_from_slice(b"Z\"");
        }
        Val::Bytes(b) => {
            out.push(b'"');
            let start = out.len();
            out.resize(start + b.len() * 2, 0);
            // The slice is exactly twice the input's length, which is all encode_to_slice needs.
            let _ = hex::encode_to_slice(b, &mut out[start..]);
            out.push(b'"');
        }
    }
}

/// `v` as the formatter before the hand-written one wrote it (chrono's `format`), for the test that compares them.
#[cfg(test)]
fn write_val_with_chrono(out: &mut Vec<u8>, v: &Val) {
    let text = |out: &mut Vec<u8>, s: &str| {
        let _ = serde_json::to_writer(&mut *out, s);
    };
    match v {
        Val::Date(d) => text(out, &d.format("%Y-%m-%d").to_string()),
        Val::Time(t) => text(out, &time_text(micros_time(*t))),
        Val::Local(t) => text(out, &local_text(micros_local(*t))),
        Val::Utc(t) => text(out, &format!("{}Z", local_text(micros_utc(*t).naive_utc()))),
        Val::Bytes(b) => text(out, &hex::encode(b)),
        other => write_val(out, other),
    }
}

/// The message for a value of the wrong JSON type (`found` is [`json_type`]'s word for it), or `None` when a
/// value of that type may be right for the column (strings, numbers and booleans are checked further).
pub fn type_error(col: &Col, found: &'static str) -> Option<String> {
    let (wanted, expected) = match col.base {
        Base::Int | Base::Int4 | Base::Int2 => ("a number", "must be a whole number"),
        Base::Bool => ("a boolean", "must be true or false"),
        _ => ("a string", "must be a string"),
    };
    (found != wanted).then(|| format!("{expected}, not {found}"))
}

/// The range a whole-number column accepts.
fn int_range(base: Base) -> (i64, i64) {
    match base {
        Base::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        Base::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        _ => (i64::MIN, i64::MAX),
    }
}

/// Checks a JSON integer for a whole-number column.
pub fn parse_int(col: &Col, i: i64) -> Result<Val, String> {
    let (min, max) = int_range(col.base);
    if i < min || i > max {
        return Err(format!("{i} is not between {min} and {max}"));
    }
    Ok(Val::Int(i))
}

/// The message for a JSON number that is not an `i64` (`shown` is the number as JSON text).
pub fn not_whole(col: &Col, shown: &str) -> String {
    let (min, max) = int_range(col.base);
    format!("{shown} is not a whole number between {min} and {max}")
}

/// The value of the two ASCII digits at `at`.
fn two(b: &[u8], at: usize) -> Option<u32> {
    let (h, l) = (b.get(at)?, b.get(at + 1)?);
    (h.is_ascii_digit() && l.is_ascii_digit()).then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
}

/// The value of the ASCII digits of `b`, when they all are.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
}

/// `YYYY-MM-DD` exactly.
pub fn fast_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, two(b, 5)?, two(b, 8)?)
}

/// `HH:MM:SS`, `HH:MM:SS.fff` or `HH:MM:SS.ffffff` exactly (no leap second).
pub fn fast_time(b: &[u8]) -> Option<NaiveTime> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let nanos = match b.len() {
        8 => 0,
        12 if b[8] == b'.' => digits(&b[9..])? * 1_000_000,
        15 if b[8] == b'.' => digits(&b[9..])? * 1000,
        _ => return None,
    };
    let second = two(b, 6)?;
    if second > 59 {
        return None;
    }
    NaiveTime::from_hms_nano_opt(two(b, 0)?, two(b, 3)?, second, nanos)
}

/// [`fast_date`] + `separator` + [`fast_time`].
pub fn fast_local(b: &[u8], separator: u8) -> Option<NaiveDateTime> {
    if b.len() < 11 || b[10] != separator {
        return None;
    }
    Some(NaiveDateTime::new(fast_date(&b[..10])?, fast_time(&b[11..])?))
}

/// [`fast_local`] with `T`, then `Z` or `+00:00`.
pub fn fast_utc(b: &[u8]) -> Option<DateTime<Utc>> {
    let local = b.strip_suffix(b"Z").or_else(|| b.strip_suffix(b"+00:00"))?;
    Some(fast_local(local, b'T')?.and_utc())
}

/// Parses a JSON string for column `col`; the error says what is wrong (the caller names the column).
///
/// The canonical forms are read by hand (the fast path: every value of every record goes through here); anything
/// else goes to chrono's parsers, which decide what is accepted and word the refusals.
pub fn parse_text(col: &Col, s: &str) -> Result<Val, String> {
    let b = s.as_bytes();
    let val = match col.base {
        Base::Text => {
            if !col.allowed.is_empty() && !col.allowed.contains(&s) {
                return Err(format!("{s:?} is not one of {}", col.allowed.join(", ")));
            }
            Val::Text(s.to_owned())
        }
        Base::Date => match fast_date(b) {
            Some(d) => Val::Date(d),
            None => {
                Val::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| format!("{s:?} is not a date: {e}"))?)
            }
        },
        Base::Time => match fast_time(b) {
            Some(t) => Val::Time(t),
            None => Val::Time(
                NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
                    .map_err(|e| format!("{s:?} is not a time (HH:MM:SS): {e}"))?,
            ),
        },
        Base::Local => match fast_local(b, b'T') {
            Some(t) => Val::Local(t),
            None => Val::Local(
                NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                    .map_err(|e| format!("{s:?} is not a local date-time (YYYY-MM-DDTHH:MM:SS): {e}"))?,
            ),
        },
        Base::Utc => match b.strip_suffix(b"Z").and_then(|rest| fast_local(rest, b'T')) {
            Some(t) => Val::Utc(t.and_utc()),
            None => Val::Utc(
                DateTime::parse_from_rfc3339(s)
                    .map_err(|e| format!("{s:?} is not an RFC 3339 instant: {e}"))?
                    .with_timezone(&Utc),
            ),
        },
        Base::Bytes => Val::Bytes(hex::decode(s).map_err(|e| format!("{s:?} is not hex: {e}"))?),
        Base::Int | Base::Int4 | Base::Int2 | Base::Bool => return Err(type_error(col, "a string").unwrap_or_default()),
    };
    Ok(val.normalized())
}

/// Parses one column's JSON value; the error says what is wrong (the caller names the column).
pub fn parse_val(col: &Col, v: &serde_json::Value) -> Result<Val, String> {
    use serde_json::Value as J;
    if v.is_null() {
        return if col.nullable { Ok(Val::Null) } else { Err("must not be null".into()) };
    }
    if let Some(message) = type_error(col, json_type(v)) {
        return Err(message);
    }
    match v {
        J::String(s) => parse_text(col, s),
        J::Bool(b) => Ok(Val::Bool(*b)),
        J::Number(n) => match n.as_i64() {
            Some(i) => parse_int(col, i),
            None => Err(not_whole(col, &n.to_string())),
        },
        // type_error refused arrays and objects.
        J::Null | J::Array(_) | J::Object(_) => Err(format!("unexpected {}", json_type(v))),
    }
}

/// "a string", "a number", ... for messages.
pub fn json_type(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // The hand-written formatter gives chrono's text for every date, time and instant (leap seconds and signed
        // years included), so checksums do not change.
        #[test]
        fn canonical_forms_match_chrono(
            days in -5_000_000i32..5_000_000,
            secs in 0u32..86_400,
            nanos in proptest::prop_oneof![0u32..2_000_000_000, proptest::strategy::Just(0), proptest::strategy::Just(123_000_000)],
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
        ) {
            let date = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or_default();
            // A leap second only at :59.
            let nanos = if secs % 60 == 59 { nanos } else { nanos % 1_000_000_000 };
            let time = NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).unwrap_or_default();
            let local = NaiveDateTime::new(date, time);
            for v in [
                Val::Date(date),
                Val::Time(time),
                Val::Local(local),
                Val::Utc(local.and_utc()),
                Val::Bytes(bytes.clone()),
            ] {
                let (mut fast, mut slow) = (Vec::new(), Vec::new());
                write_val(&mut fast, &v);
                write_val_with_chrono(&mut slow, &v);
                proptest::prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&slow));
            }
        }
    }
}
