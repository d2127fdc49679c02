//! Device time: the packed u32 of GET_TIME, SET_TIME and attendance records, and the 6-byte form of realtime events.
//!
//! Both are the device's local wall-clock time with no zone; the device's configured IANA zone turns them into UTC
//! elsewhere ([`protocol::time::local_to_utc`]).
//!
//! Packed form: `((Y % 100) * 12 * 31 + (M - 1) * 31 + (D - 1)) * 86400 + (h * 60 + m) * 60 + s`, every month
//! counted as 31 days; so a value can name a day that does not exist (30 February), which decoding refuses.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// Why a device time cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("device time {raw:#010x} decodes to {year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}, which does not exist")]
    Packed { raw: u32, year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32 },
    #[error("event time {bytes:02x?} is not a valid date and time")]
    Bytes { bytes: [u8; 6] },
}

/// Packs a wall-clock time; years are taken modulo 100 (2000-2099), as the device does.
pub fn encode(t: NaiveDateTime) -> u32 {
    let year = t.year().rem_euclid(100) as u32;
    let days = (year * 12 + t.month0()) * 31 + t.day0();
    days * 86_400 + (t.hour() * 60 + t.minute()) * 60 + t.second()
}

/// Unpacks a device time.
///
/// # Errors
/// [`TimeError::Packed`] when the value names a date that does not exist.
pub fn decode(raw: u32) -> Result<NaiveDateTime, TimeError> {
    let mut t = raw;
    let second = t % 60;
    t /= 60;
    let minute = t % 60;
    t /= 60;
    let hour = t % 24;
    t /= 24;
    let day = t % 31 + 1;
    t /= 31;
    let month = t % 12 + 1;
    t /= 12;
    let year = t + 2000;
    NaiveDate::from_ymd_opt(year as i32, month, day)
        .and_then(|d| d.and_hms_opt(hour, minute, second))
        .ok_or(TimeError::Packed { raw, year, month, day, hour, minute, second })
}

/// Reads the 6-byte event time `YY-2000, MM, DD, hh, mm, ss`.
///
/// # Errors
/// [`TimeError::Bytes`] when the bytes name no valid time.
pub fn decode_bytes(bytes: [u8; 6]) -> Result<NaiveDateTime, TimeError> {
    let [y, mo, d, h, mi, s] = bytes.map(u32::from);
    NaiveDate::from_ymd_opt(2000 + y as i32, mo, d)
        .and_then(|date| date.and_hms_opt(h, mi, s))
        .ok_or(TimeError::Bytes { bytes })
}

/// Writes the 6-byte event time (years 2000-2255).
pub fn encode_bytes(t: NaiveDateTime) -> [u8; 6] {
    let year = (t.year() - 2000).clamp(0, 255) as u8;
    [year, t.month() as u8, t.day() as u8, t.hour() as u8, t.minute() as u8, t.second() as u8]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap()
    }

    #[test]
    fn packed_time_round_trips_and_matches_the_formula() {
        let t = at(2026, 11, 21, 9, 5, 7);
        let expected = ((26 * 12 * 31 + 10 * 31 + 20) * 86_400 + (9 * 60 + 5) * 60 + 7) as u32;
        assert_eq!(encode(t), expected);
        assert_eq!(decode(expected).unwrap(), t);
        for t in [at(2000, 1, 1, 0, 0, 0), at(2099, 12, 31, 23, 59, 59), at(2024, 2, 29, 12, 0, 0)] {
            assert_eq!(decode(encode(t)).unwrap(), t);
        }
    }

    #[test]
    fn impossible_dates_are_refused_with_the_decoded_fields() {
        // Month index 1 (February), day index 29 (the 30th).
        let raw = ((18 * 12 * 31 + 31 + 29) * 86_400) as u32;
        let err = decode(raw).unwrap_err();
        assert!(err.to_string().contains("2018-02-30 00:00:00"), "{err}");
    }

    #[test]
    fn event_time_bytes() {
        // pyzk test.py realtime event: 12 0c 07 13 09 06 is 2018-12-07 19:09:06.
        assert_eq!(decode_bytes([0x12, 0x0c, 0x07, 0x13, 0x09, 0x06]).unwrap(), at(2018, 12, 7, 19, 9, 6));
        assert_eq!(encode_bytes(at(2018, 12, 7, 19, 9, 6)), [0x12, 0x0c, 0x07, 0x13, 0x09, 0x06]);
        assert!(decode_bytes([0x12, 13, 1, 0, 0, 0]).is_err());
    }
}
