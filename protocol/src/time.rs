//! Time on the wire, and the one rule for turning a device's wall-clock time into UTC.
//!
//! Devices speak local wall-clock time with no zone. Each device has a configured IANA zone; a punch keeps both its
//! local time (attendance is computed on it) and the UTC instant derived from it by [`local_to_utc`].
//!
//! Encoding: in bincode both are whole seconds as an `i64` (local time counted as if it were UTC, i.e. seconds since
//! 1970-01-01T00:00:00 on the wall clock); in JSON local time is `"2026-11-21T09:05:00"` and UTC is RFC 3339
//! `"2026-11-21T03:35:00Z"`. Sub-second parts are dropped: terminals record whole seconds.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Converts a device's wall-clock reading in zone `tz` to UTC. Never fails, so no punch is ever dropped for its time:
///
/// - ambiguous times (the repeated hour when clocks go back) take the earlier instant;
/// - non-existent times (the skipped hour when clocks go forward: a device clock that was not adjusted yet) are read
///   with the offset in force just before the gap.
pub fn local_to_utc(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let local = truncate_to_second(local);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // A gap is at most a few hours; the offset six hours earlier is the one in force before it.
            let before = tz.from_local_datetime(&(local - Duration::hours(6))).earliest();
            let offset_secs = before.map(|t| t.naive_local() - t.naive_utc()).unwrap_or_default();
            DateTime::from_naive_utc_and_offset(local - offset_secs, Utc)
        }
    }
}

/// Parses an IANA zone name such as `Asia/Kolkata`, naming the bad value in the error.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("unknown IANA time zone {name:?}"))
}

/// Drops any fraction of a second.
pub fn truncate_to_second(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

const LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Serde for a local wall-clock [`NaiveDateTime`] (see the module docs).
pub mod wire_local {
    use super::*;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&t.format(LOCAL_FORMAT))
        } else {
            s.serialize_i64(t.and_utc().timestamp())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDateTime, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            NaiveDateTime::parse_from_str(&text, LOCAL_FORMAT)
                .map_err(|e| D::Error::custom(format!("local time {text:?} is not YYYY-MM-DDTHH:MM:SS: {e}")))
        } else {
            let secs = i64::deserialize(d)?;
            DateTime::from_timestamp(secs, 0)
                .map(|t| t.naive_utc())
                .ok_or_else(|| D::Error::custom(format!("local time {secs} s is out of range")))
        }
    }
}

/// Serde for a UTC instant [`DateTime<Utc>`] (see the module docs).
pub mod wire_utc {
    use super::*;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(&t.format("%Y-%m-%dT%H:%M:%SZ"))
        } else {
            s.serialize_i64(t.timestamp())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            DateTime::parse_from_rfc3339(&text)
                .map(|t| DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default())
                .map_err(|e| D::Error::custom(format!("UTC time {text:?} is not RFC 3339: {e}")))
        } else {
            let secs = i64::deserialize(d)?;
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| D::Error::custom(format!("UTC time {secs} s is out of range")))
        }
    }
}

/// Serde for an optional UTC instant.
pub mod wire_utc_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Wrap(#[serde(with = "super::wire_utc")] DateTime<Utc>);

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.map(Wrap).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, mi, 0).unwrap()
    }

    #[test]
    fn kolkata_is_five_thirty_ahead() {
        let utc = local_to_utc(at(2026, 11, 21, 9, 0), chrono_tz::Asia::Kolkata);
        assert_eq!(utc.naive_utc(), at(2026, 11, 21, 3, 30));
    }

    #[test]
    fn ambiguous_hour_takes_the_earlier_instant() {
        // Europe/London goes back at 02:00 BST on 2026-10-25: 01:30 happens twice.
        let utc = local_to_utc(at(2026, 10, 25, 1, 30), chrono_tz::Europe::London);
        assert_eq!(utc.naive_utc(), at(2026, 10, 25, 0, 30));
    }

    #[test]
    fn skipped_hour_uses_the_offset_before_the_gap() {
        // Europe/London skips 01:00-02:00 on 2026-03-29; a device still on GMT says 01:30.
        let utc = local_to_utc(at(2026, 3, 29, 1, 30), chrono_tz::Europe::London);
        assert_eq!(utc.naive_utc(), at(2026, 3, 29, 1, 30));
    }

    #[test]
    fn bad_zone_is_named() {
        assert_eq!(parse_zone("Asia/Bombayy").unwrap_err(), "unknown IANA time zone \"Asia/Bombayy\"");
        assert_eq!(parse_zone("Asia/Kolkata").unwrap(), chrono_tz::Asia::Kolkata);
    }
}
