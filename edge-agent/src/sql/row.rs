//! One row of the source table to one punch: the codec of the SQL source (no I/O).
//!
//! Every column is selected as text, cut by the database to [`MAX_FIELD_CHARS`] + 1 characters (so an over-long
//! value is seen as over-long, never read whole), and arrives here as raw bytes. Each value is checked before it is
//! used: UTF-8, length, the protocol's limits on PINs and serials, a time that parses and is plausible. A value that
//! cannot be mapped makes the row [`Mapped::Unmappable`] with a reason naming the column; the poller counts it,
//! reports it and moves on. Only an id that is not an integer is an error of the whole read (the cursor could not
//! move past it).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};

/// Longest value of any column taken, in characters; the query cuts each at one more to see an over-long one.
pub const MAX_FIELD_CHARS: usize = 128;
/// Longest value in bytes (a character of UTF-8 is at most 4 bytes).
pub const MAX_FIELD_BYTES: usize = (MAX_FIELD_CHARS + 1) * 4;
/// Earliest and latest year a punch may have; anything else is a broken or placeholder value (`0000-00-00`).
const YEARS: std::ops::RangeInclusive<i32> = 1990..=2100;

/// How the time column's text is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    /// A date-time without a zone (`timestamp`, `DATETIME`): wall-clock time in the source's zone.
    Naive,
    /// A moment with an offset (`timestamptz`, MySQL `TIMESTAMP` read in UTC): converted to the source's zone.
    Instant,
    /// A text column: parsed with the configured format, or as ISO 8601 with or without an offset.
    Text,
}

/// The selected values of one row, by role; `None` for SQL NULL or a column not configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields<'a> {
    pub id: Option<&'a [u8]>,
    pub employee: Option<&'a [u8]>,
    pub time: Option<&'a [u8]>,
    pub state: Option<&'a [u8]>,
    pub verify: Option<&'a [u8]>,
    pub work_code: Option<&'a [u8]>,
    pub device: Option<&'a [u8]>,
}

/// What became of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Punch {
        id: i64,
        punch: Box<Punch>,
    },
    /// The row cannot become a punch; `reason` names the column and the value's problem.
    Unmappable {
        id: i64,
        reason: String,
    },
}

impl Mapped {
    /// The row's id.
    pub fn id(&self) -> i64 {
        match self {
            Self::Punch { id, .. } | Self::Unmappable { id, .. } => *id,
        }
    }
}

/// A row whose id cannot be read: the read stops (the cursor cannot move past a row it cannot name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("id column: {0}")]
pub struct BadId(pub String);

/// Turns rows into punches for one source.
#[derive(Debug, Clone)]
pub struct RowMapper {
    pub site: SiteId,
    /// The device a punch is filed under when the row names none (no device column, or NULL/empty in it).
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    pub time_kind: TimeKind,
    /// A chrono format for text time columns (`%d/%m/%Y %H:%M:%S`); ISO 8601 when absent.
    pub time_format: Option<String>,
    /// Direction or state texts (lowercase) to state codes, consulted before the built-in words.
    pub state_map: HashMap<String, u8>,
    /// Device short names (as the row has them) to serials.
    pub device_names: HashMap<String, DeviceSerial>,
}

impl RowMapper {
    /// Maps one row.
    ///
    /// # Errors
    /// [`BadId`] when the id is NULL or not an integer.
    pub fn map(&self, fields: &Fields<'_>) -> Result<Mapped, BadId> {
        let id = parse_id(fields.id)?;
        Ok(match self.punch(fields) {
            Ok(punch) => Mapped::Punch { id, punch: Box::new(punch) },
            Err(reason) => Mapped::Unmappable { id, reason },
        })
    }

    fn punch(&self, fields: &Fields<'_>) -> Result<Punch, String> {
        let employee = text("employee", fields.employee)?.ok_or("employee: NULL")?;
        let pin: Pin = employee.trim().parse().map_err(|e| format!("employee: {e}"))?;
        let local = self.local_time(fields.time)?;
        let (state, raw_state) = self.state(fields.state)?;
        let (verify, raw_verify) = verify(fields.verify)?;
        let work_code = work_code(fields.work_code)?;
        let device = self.device(fields.device)?;
        Ok(Punch::from_device(
            self.site.clone(),
            device,
            pin,
            local,
            self.zone,
            state,
            verify,
            work_code,
            PunchSource::Sql,
            self.direction,
        )
        .with_raw_codes(raw_state, raw_verify))
    }

    /// The wall-clock time in the source's zone.
    fn local_time(&self, value: Option<&[u8]>) -> Result<NaiveDateTime, String> {
        let text = text("time", value)?.ok_or("time: NULL")?;
        let text = text.trim();
        let local = match (self.time_kind, &self.time_format) {
            (TimeKind::Text, Some(format)) => NaiveDateTime::parse_from_str(text, format)
                .map_err(|e| format!("time: {text:?} does not match the format {format:?}: {e}"))?,
            _ => match parse_time(text).ok_or_else(|| format!("time: {text:?} is not a date and time"))? {
                ParsedTime::Local(_) if self.time_kind == TimeKind::Instant => {
                    // A moment column read without its offset would be misplaced by the server's zone; refuse.
                    return Err(format!("time: {text:?} has no offset but the column holds moments"));
                }
                ParsedTime::Local(local) => local,
                ParsedTime::Instant(at) => at.with_timezone(&self.zone).naive_local(),
            },
        };
        if !YEARS.contains(&local.year()) {
            return Err(format!("time: {text:?} is outside the years {}..={}", YEARS.start(), YEARS.end()));
        }
        Ok(local)
    }

    /// The state from a numeric code, a configured text, or a common word; none configured or NULL is unknown.
    fn state(&self, value: Option<&[u8]>) -> Result<(PunchState, Option<u32>), String> {
        let Some(text) = text("state", value)? else { return Ok((PunchState::from_code(u8::MAX), None)) };
        let trimmed = text.trim();
        if !self.state_map.is_empty() {
            if let Some(code) = self.state_map.get(&trimmed.to_lowercase()) {
                return Ok((PunchState::from_code(*code), Some(u32::from(*code))));
            }
        }
        if let Ok(code) = trimmed.parse::<u32>() {
            let byte = u8::try_from(code).map_err(|_| format!("state: {code} is not a state code (0..=255)"))?;
            return Ok((PunchState::from_code(byte), Some(code)));
        }
        state_word(&trimmed.to_lowercase())
            .map(|state| (state, None))
            .ok_or_else(|| format!("state: {trimmed:?} is not a known direction or state (map it in state_map)"))
    }

    /// The row's device: its serial, a mapped short name, or the source's own serial when it names none.
    fn device(&self, value: Option<&[u8]>) -> Result<DeviceSerial, String> {
        let Some(text) = text("device", value)? else { return Ok(self.serial.clone()) };
        let name = text.trim();
        if name.is_empty() {
            return Ok(self.serial.clone());
        }
        if let Some(serial) = self.device_names.get(name) {
            return Ok(serial.clone());
        }
        name.parse().map_err(|e| format!("device: {e} (map the name to a serial in device_names)"))
    }
}

/// The row id, from its decimal text.
fn parse_id(value: Option<&[u8]>) -> Result<i64, BadId> {
    let bytes = value.ok_or_else(|| BadId("NULL".into()))?;
    let text = std::str::from_utf8(bytes).map_err(|_| BadId("not UTF-8".into()))?;
    text.trim().parse().map_err(|_| BadId(format!("{:?} is not an integer of 64 bits", truncate(text))))
}

/// A value as text: `None` for NULL; an error naming the column when it is not UTF-8 or too long.
fn text<'a>(column: &str, value: Option<&'a [u8]>) -> Result<Option<&'a str>, String> {
    let Some(bytes) = value else { return Ok(None) };
    if bytes.len() > MAX_FIELD_BYTES {
        return Err(format!("{column}: {} bytes, over the limit of {MAX_FIELD_CHARS} characters", bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{column}: not UTF-8"))?;
    if text.chars().count() > MAX_FIELD_CHARS {
        return Err(format!("{column}: over the limit of {MAX_FIELD_CHARS} characters"));
    }
    Ok(Some(text))
}

/// The verification mode: a numeric code (ZKTeco numbering, as BioTime stores it) or a common word. Anything else
/// is kept as `other(255)` with the punch: how someone was verified never costs the punch itself.
fn verify(value: Option<&[u8]>) -> Result<(VerifyMode, Option<u32>), String> {
    let Some(text) = text("verify", value)? else { return Ok((VerifyMode::from_code(u8::MAX), None)) };
    let text = text.trim();
    if let Ok(code) = text.parse::<u32>() {
        return Ok((VerifyMode::from_code(u8::try_from(code).unwrap_or(u8::MAX)), Some(code)));
    }
    let mode = match text.to_lowercase().as_str() {
        "password" | "pin" | "pw" => VerifyMode::Password,
        "fingerprint" | "finger" | "fp" => VerifyMode::Fingerprint,
        "card" | "rfid" => VerifyMode::Card,
        "face" => VerifyMode::Face,
        "palm" => VerifyMode::Palm,
        _ => VerifyMode::from_code(u8::MAX),
    };
    Ok((mode, None))
}

/// The work code: a number, or 0 for NULL, empty or a code that is not a number (the punch is kept).
fn work_code(value: Option<&[u8]>) -> Result<u32, String> {
    Ok(text("work_code", value)?.and_then(|t| t.trim().parse().ok()).unwrap_or(0))
}

/// Direction and state words vendors write instead of codes.
fn state_word(lower: &str) -> Option<PunchState> {
    let compact: String = lower.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    Some(match compact.as_str() {
        "i" | "in" | "checkin" | "cin" | "clockin" | "entry" | "enter" => PunchState::CheckIn,
        "o" | "out" | "checkout" | "cout" | "clockout" | "exit" => PunchState::CheckOut,
        "breakout" => PunchState::BreakOut,
        "breakin" => PunchState::BreakIn,
        "otin" | "overtimein" => PunchState::OvertimeIn,
        "otout" | "overtimeout" => PunchState::OvertimeOut,
        _ => return None,
    })
}

/// A parsed time text: a wall-clock time, or a moment when it carried an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedTime {
    Local(NaiveDateTime),
    Instant(DateTime<Utc>),
}

/// `YYYY-MM-DD[ T]HH:MM[:SS[.fraction]][Z|±HH[:MM|MM]]`, as PostgreSQL and MySQL print date-times. Fractions are
/// dropped (devices record whole seconds).
pub fn parse_time(text: &str) -> Option<ParsedTime> {
    let text = text.trim();
    if text.len() < 16 || !text.is_ascii() {
        return None;
    }
    let (date, rest) = text.split_at(10);
    let date = fixed_date(date).map_or_else(|| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok(), Some)?;
    let rest = rest.strip_prefix(' ').or_else(|| rest.strip_prefix('T'))?;
    // The time runs to the first sign or `Z` after it.
    let end = rest.find(['+', '-', 'Z', 'z']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(end);
    let clock = clock.trim_end();
    let clock =
        clock.split_once('.').map_or(
            clock,
            |(whole, fraction)| {
                if fraction.bytes().all(|b| b.is_ascii_digit()) {
                    whole
                } else {
                    clock
                }
            },
        );
    let time = match fixed_clock(clock) {
        Some(time) => time,
        None => {
            NaiveTime::parse_from_str(clock, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(clock, "%H:%M")).ok()?
        }
    };
    let local = date.and_time(time);
    if zone.is_empty() {
        return Some(ParsedTime::Local(local));
    }
    let offset = parse_offset(zone)?;
    offset.from_local_datetime(&local).single().map(|at| ParsedTime::Instant(at.with_timezone(&Utc)))
}

/// The common shape `YYYY-MM-DD` without chrono's format interpreter (a backlog parses a million of them); `None`
/// sends anything else, or an impossible date, to the general parser, so the result never differs from it.
fn fixed_date(date: &str) -> Option<NaiveDate> {
    let b = date.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits(&b[0..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, digits(&b[5..7])?, digits(&b[8..10])?)
}

/// The common shape `HH:MM:SS`, like [`fixed_date`].
fn fixed_clock(clock: &str) -> Option<NaiveTime> {
    let b = clock.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    NaiveTime::from_hms_opt(digits(&b[0..2])?, digits(&b[3..5])?, digits(&b[6..8])?)
}

/// ASCII decimal digits (at most four here) as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
}

/// `Z`, `±HH`, `±HH:MM` or `±HHMM`.
fn parse_offset(zone: &str) -> Option<FixedOffset> {
    if zone.eq_ignore_ascii_case("z") {
        return FixedOffset::east_opt(0);
    }
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    if hours > 15 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// At most 40 characters of a value, for messages.
fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixed_shapes_parse_as_chrono_does() {
        for date in ["2025-01-31", "2024-02-29", "2025-02-29", "2025-13-01", "0000-00-00", "1999-12-31", "2025-1-011"] {
            assert_eq!(
                fixed_date(date).or_else(|| NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()),
                NaiveDate::parse_from_str(date, "%Y-%m-%d").ok(),
                "{date:?}"
            );
        }
        for clock in ["00:00:00", "23:59:59", "24:00:00", "12:60:00", "12:30:61", "12:30:60", "1:30:005", "12-30-00"] {
            assert_eq!(
                fixed_clock(clock).or_else(|| NaiveTime::parse_from_str(clock, "%H:%M:%S").ok()),
                NaiveTime::parse_from_str(clock, "%H:%M:%S").ok(),
                "{clock:?}"
            );
        }
        assert_eq!(fixed_date("2025-01-31"), NaiveDate::from_ymd_opt(2025, 1, 31));
        assert_eq!(fixed_clock("07:08:09"), NaiveTime::from_hms_opt(7, 8, 9));
        assert_eq!(fixed_date("2025/01/31"), None, "another shape goes to the general parser");
    }

    fn mapper(time_kind: TimeKind) -> RowMapper {
        RowMapper {
            site: "plant-1".parse().unwrap(),
            serial: "BIOTIME".parse().unwrap(),
            zone: chrono_tz::Asia::Kolkata,
            direction: Direction::Both,
            time_kind,
            time_format: None,
            state_map: HashMap::from([("sideways".to_owned(), 4)]),
            device_names: HashMap::from([("Gate 1".to_owned(), "GATE-1".parse().unwrap())]),
        }
    }

    fn row<'a>(id: &'a str, employee: &'a str, time: &'a str, state: &'a str) -> Fields<'a> {
        Fields {
            id: Some(id.as_bytes()),
            employee: Some(employee.as_bytes()),
            time: Some(time.as_bytes()),
            state: Some(state.as_bytes()),
            ..Fields::default()
        }
    }

    fn punch(mapped: Mapped) -> Punch {
        match mapped {
            Mapped::Punch { punch, .. } => *punch,
            Mapped::Unmappable { reason, .. } => panic!("unmappable: {reason}"),
        }
    }

    fn reason(mapped: Mapped) -> String {
        match mapped {
            Mapped::Unmappable { reason, .. } => reason,
            Mapped::Punch { punch, .. } => panic!("mapped to {punch:?}"),
        }
    }

    #[test]
    fn a_biotime_row_becomes_a_punch() {
        let m = mapper(TimeKind::Naive);
        let mut fields = row("17", " 1001 ", "2024-03-26 08:49:31.554000", "1");
        fields.verify = Some(b"15");
        fields.work_code = Some(b"7");
        fields.device = Some(b"CL9M212260015");
        let p = punch(m.map(&fields).unwrap());
        assert_eq!(p.pin.as_str(), "1001");
        assert_eq!(p.device.as_str(), "CL9M212260015");
        assert_eq!(p.local_time.to_string(), "2024-03-26 08:49:31");
        assert_eq!(p.utc_time.to_rfc3339(), "2024-03-26T03:19:31+00:00");
        assert_eq!(
            (p.state, p.verify, p.work_code, p.source),
            (PunchState::CheckOut, VerifyMode::Face, 7, PunchSource::Sql)
        );
        assert_eq!((p.raw_state, p.raw_verify), (Some(1), Some(15)));
    }

    #[test]
    fn moments_are_placed_in_the_source_zone() {
        let m = mapper(TimeKind::Instant);
        let p = punch(m.map(&row("1", "5", "2024-03-26 03:19:31+00", "0")).unwrap());
        assert_eq!(p.local_time.to_string(), "2024-03-26 08:49:31");
        let p = punch(m.map(&row("1", "5", "2024-03-26T08:49:31+05:30", "0")).unwrap());
        assert_eq!(p.local_time.to_string(), "2024-03-26 08:49:31");
        assert!(reason(m.map(&row("1", "5", "2024-03-26 03:19:31", "0")).unwrap()).contains("no offset"));
    }

    #[test]
    fn states_from_codes_words_and_the_configured_map() {
        let m = mapper(TimeKind::Naive);
        let state = |s: &str| punch(m.map(&row("1", "5", "2024-01-01 10:00:00", s)).unwrap()).state;
        assert_eq!(state("0"), PunchState::CheckIn);
        assert_eq!(state("Check Out"), PunchState::CheckOut);
        assert_eq!(state("C/In"), PunchState::CheckIn);
        // BioTime installs that write I and O instead of codes.
        assert_eq!((state("I"), state("O")), (PunchState::CheckIn, PunchState::CheckOut));
        assert_eq!(state("SIDEWAYS"), PunchState::OvertimeIn);
        assert_eq!(state("9"), PunchState::Unknown(9));
        let mut no_state = row("1", "5", "2024-01-01 10:00:00", "");
        no_state.state = None;
        assert_eq!(punch(m.map(&no_state).unwrap()).state, PunchState::Unknown(255));
        assert!(reason(m.map(&row("3", "5", "2024-01-01 10:00:00", "upwards")).unwrap()).starts_with("state:"));
        assert!(reason(m.map(&row("3", "5", "2024-01-01 10:00:00", "256")).unwrap()).starts_with("state:"));
    }

    #[test]
    fn unmappable_values_name_their_column() {
        let m = mapper(TimeKind::Naive);
        let mut null_time = row("8", "5", "", "0");
        null_time.time = None;
        let cases = [
            (m.map(&null_time), "time: NULL"),
            (m.map(&row("8", "", "2024-01-01 10:00:00", "0")), "employee:"),
            (m.map(&row("8", &"9".repeat(40), "2024-01-01 10:00:00", "0")), "employee:"),
            (m.map(&row("8", "5", "0000-00-00 00:00:00", "0")), "time:"),
            (m.map(&row("8", "5", "1970-01-01 00:00:00", "0")), "time:"),
            (m.map(&row("8", "5", "yesterday", "0")), "time:"),
            (m.map(&row("8", &"x".repeat(MAX_FIELD_CHARS + 1), "2024-01-01 10:00:00", "0")), "employee: over"),
        ];
        for (mapped, prefix) in cases {
            let mapped = mapped.unwrap();
            assert_eq!(mapped.id(), 8);
            let why = reason(mapped);
            assert!(why.starts_with(prefix), "{why:?} should start with {prefix:?}");
        }
        let mut bad_device = row("9", "5", "2024-01-01 10:00:00", "0");
        bad_device.device = Some(b"Gate 2");
        assert!(reason(m.map(&bad_device).unwrap()).contains("device_names"));
        bad_device.device = Some(b"Gate 1");
        assert_eq!(punch(m.map(&bad_device).unwrap()).device.as_str(), "GATE-1");
        bad_device.device = Some(b"  ");
        assert_eq!(punch(m.map(&bad_device).unwrap()).device.as_str(), "BIOTIME");
    }

    #[test]
    fn an_id_that_is_not_an_integer_stops_the_read() {
        let m = mapper(TimeKind::Naive);
        assert!(m.map(&row("18446744073709551615", "5", "2024-01-01 10:00:00", "0")).is_err());
        let mut no_id = row("1", "5", "2024-01-01 10:00:00", "0");
        no_id.id = None;
        assert!(m.map(&no_id).is_err());
    }

    #[test]
    fn text_times_with_a_format() {
        let mut m = mapper(TimeKind::Text);
        m.time_format = Some("%d/%m/%Y %H:%M:%S".into());
        let p = punch(m.map(&row("1", "5", "26/03/2024 08:49:31", "0")).unwrap());
        assert_eq!(p.local_time.to_string(), "2024-03-26 08:49:31");
        assert!(reason(m.map(&row("1", "5", "2024-03-26 08:49:31", "0")).unwrap()).contains("format"));
    }

    #[test]
    fn time_texts() {
        let local = |s: &str| match parse_time(s) {
            Some(ParsedTime::Local(t)) => t.to_string(),
            other => panic!("{s}: {other:?}"),
        };
        let instant = |s: &str| match parse_time(s) {
            Some(ParsedTime::Instant(t)) => t.to_rfc3339(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(local("2024-03-26 08:49:31"), "2024-03-26 08:49:31");
        assert_eq!(local("2024-03-26T08:49:31.123456"), "2024-03-26 08:49:31");
        assert_eq!(local("2024-03-26 08:49"), "2024-03-26 08:49:00");
        assert_eq!(instant("2024-03-26 08:49:31+00"), "2024-03-26T08:49:31+00:00");
        assert_eq!(instant("2024-03-26 08:49:31.5-08"), "2024-03-26T16:49:31+00:00");
        assert_eq!(instant("2024-03-26 08:49:31+0530"), "2024-03-26T03:19:31+00:00");
        assert_eq!(instant("2024-03-26T08:49:31Z"), "2024-03-26T08:49:31+00:00");
        for bad in [
            "",
            "2024-03-26",
            "2024-13-01 00:00:00",
            "2024-03-26 25:00:00",
            "2024-03-26 08:49:31+99",
            "2024-03-26 08:49:31 BC",
            "infinity",
            "2024-03-26 08:49:31.x",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Any bytes in any column: no panic, and a mapped punch is within the protocol's limits.
        #[test]
        fn arbitrary_rows_never_panic(
            id in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..24)),
            employee in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..600)),
            time in proptest::option::of("[0-9 :.+TZ-]{0,40}"),
            state in proptest::option::of(proptest::collection::vec(proptest::num::u8::ANY, 0..20)),
            device in proptest::option::of("[ -~]{0,80}"),
            kind in 0..3u8,
        ) {
            let m = mapper([TimeKind::Naive, TimeKind::Instant, TimeKind::Text][usize::from(kind)]);
            let fields = Fields {
                id: id.as_deref(),
                employee: employee.as_deref(),
                time: time.as_deref().map(str::as_bytes),
                state: state.as_deref(),
                verify: state.as_deref(),
                work_code: employee.as_deref(),
                device: device.as_deref().map(str::as_bytes),
            };
            if let Ok(Mapped::Punch { punch, .. }) = m.map(&fields) {
                proptest::prop_assert!(punch.pin.as_str().len() <= protocol::limits::MAX_PIN_LEN);
                proptest::prop_assert!(YEARS.contains(&punch.local_time.year()));
            }
        }
    }
}
