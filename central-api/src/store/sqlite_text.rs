//! The text SQLite stores for dates and times (its columns are TEXT), written without chrono's format-string
//! interpreter, which costs more than the insert itself at ingest rates.
//!
//! The forms are exactly those sqlx writes for the same values (`NaiveDateTime` as `%F %T%.f`, `DateTime<Utc>` as
//! RFC 3339 with `+00:00`, `NaiveDate` as `%F`), so rows written here and rows written through sqlx read back and
//! compare alike. Values these fast paths do not cover (years outside 0..=9999, fractions of a second) go through
//! chrono's own formatting. [`parse_local`] reads a local time back.

use std::fmt::Write as _;
use std::sync::LazyLock;

use chrono::format::{Item, Parsed, StrftimeItems};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SecondsFormat, Timelike, Utc};

/// Appends `value` zero-padded to `width` digits (`value` has at most `width` digits).
fn push_padded(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        let digit = (value / divisor) % 10;
        out.push(char::from_digit(digit, 10).unwrap_or('0'));
        divisor /= 10;
    }
}

fn fast_year(date: NaiveDate) -> Option<u32> {
    u32::try_from(date.year()).ok().filter(|year| *year <= 9999)
}

fn push_date_digits(out: &mut String, year: u32, date: NaiveDate) {
    push_padded(out, year, 4);
    out.push('-');
    push_padded(out, date.month(), 2);
    out.push('-');
    push_padded(out, date.day(), 2);
}

fn push_time_digits(out: &mut String, time: NaiveDateTime) {
    push_padded(out, time.hour(), 2);
    out.push(':');
    push_padded(out, time.minute(), 2);
    out.push(':');
    push_padded(out, time.second(), 2);
}

/// Appends `date` as `YYYY-MM-DD` (sqlx's `%F`).
pub fn push_date(out: &mut String, date: NaiveDate) {
    match fast_year(date) {
        Some(year) => push_date_digits(out, year, date),
        None => {
            let _ = write!(out, "{}", date.format("%F"));
        }
    }
}

/// Appends a local wall-clock time as sqlx writes it (`%F %T%.f`: no fraction when it is zero).
pub fn push_local(out: &mut String, time: NaiveDateTime) {
    match fast_year(time.date()) {
        Some(year) if time.nanosecond() == 0 => {
            push_date_digits(out, year, time.date());
            out.push(' ');
            push_time_digits(out, time);
        }
        _ => {
            let _ = write!(out, "{}", time.format("%F %T%.f"));
        }
    }
}

/// Appends a UTC instant as sqlx writes it (RFC 3339, seconds with automatic fraction, `+00:00`).
pub fn push_utc(out: &mut String, time: DateTime<Utc>) {
    let naive = time.naive_utc();
    match fast_year(naive.date()) {
        Some(year) if naive.nanosecond() == 0 => {
            push_date_digits(out, year, naive.date());
            out.push('T');
            push_time_digits(out, naive);
            out.push_str("+00:00");
        }
        _ => out.push_str(&time.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
    }
}

/// Two ASCII digits at `at`, as a number.
fn two_digits(bytes: &[u8], at: usize) -> Option<u32> {
    let (high, low) = (bytes.get(at)?, bytes.get(at + 1)?);
    (high.is_ascii_digit() && low.is_ascii_digit()).then(|| u32::from(high - b'0') * 10 + u32::from(low - b'0'))
}

/// Reads a local time back from the text sqlx (or [`push_local`]) stored: `YYYY-MM-DD HH:MM:SS[.fff]`, or with a `T`.
/// The common form without a fraction is read by hand; any other goes through chrono's parser.
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    parse_local_fast(text.as_bytes()).or_else(|| parse_local_slow(text))
}

fn parse_local_fast(bytes: &[u8]) -> Option<NaiveDateTime> {
    let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
    if bytes.len() != 19 || separators.iter().any(|&(at, byte)| bytes.get(at) != Some(&byte)) {
        return None;
    }
    let year = two_digits(bytes, 0)? * 100 + two_digits(bytes, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, two_digits(bytes, 5)?, two_digits(bytes, 8)?)?;
    date.and_hms_opt(two_digits(bytes, 11)?, two_digits(bytes, 14)?, two_digits(bytes, 17)?)
}

fn parse_local_slow(text: &str) -> Option<NaiveDateTime> {
    // `NaiveDateTime::parse_from_str` parses its format string on every call: here each is parsed once.
    static FORMATS: LazyLock<Vec<Vec<Item<'static>>>> = LazyLock::new(|| {
        ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
            .into_iter()
            .filter_map(|format| StrftimeItems::new(format).parse().ok())
            .collect()
    });
    FORMATS.iter().find_map(|items| {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
        parsed.to_naive_datetime_with_offset(0).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn one(f: impl Fn(&mut String)) -> String {
        let mut out = String::new();
        f(&mut out);
        out
    }

    #[test]
    fn forms_are_sqlx_forms() {
        let local = NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(6, 7, 8)).unwrap();
        assert_eq!(one(|o| push_local(o, local)), "2026-01-05 06:07:08");
        assert_eq!(one(|o| push_date(o, local.date())), "2026-01-05");
        let utc = Utc.from_utc_datetime(&local);
        assert_eq!(one(|o| push_utc(o, utc)), "2026-01-05T06:07:08+00:00");
        let fraction = local.with_nanosecond(5_000_000).unwrap();
        assert_eq!(one(|o| push_local(o, fraction)), "2026-01-05 06:07:08.005");
        let early = NaiveDate::from_ymd_opt(7, 2, 3).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap();
        assert_eq!(one(|o| push_local(o, early)), "0007-02-03 00:00:00");
    }

    #[test]
    fn local_times_parse_as_sqlx_writes_them() {
        let at = NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(1, 0, 0)).unwrap();
        assert_eq!(parse_local("2026-01-05 01:00:00"), Some(at));
        assert_eq!(parse_local("2026-01-05T01:00:00.000"), Some(at));
        assert_eq!(parse_local("2026-01-05 01:00"), None);
        assert_eq!(parse_local("2026-02-30 01:00:00"), None, "no such day");
        assert_eq!(parse_local("2026-01-05 24:00:00"), None);
        assert_eq!(parse_local("2026-01-05 01:00:0x"), None);
    }

    proptest! {
        #[test]
        fn every_value_matches_chrono(secs in -70_000_000_000i64..300_000_000_000i64, nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000]) {
            let Some(utc) = DateTime::<Utc>::from_timestamp(secs, nanos) else { return Ok(()) };
            let local = utc.naive_utc();
            prop_assert_eq!(one(|o| push_local(o, local)), local.format("%F %T%.f").to_string());
            prop_assert_eq!(one(|o| push_date(o, local.date())), local.date().format("%F").to_string());
            prop_assert_eq!(one(|o| push_utc(o, utc)), utc.to_rfc3339_opts(SecondsFormat::AutoSi, false));
            if (0..=9999).contains(&local.year()) {
                prop_assert_eq!(parse_local(&one(|o| push_local(o, local))), Some(local));
            }
        }
    }
}
