//! An access-control event of a Hikvision terminal, as the history search (`AcsEvent` `InfoList` entries) and the
//! realtime stream (`AccessControllerEvent`) report it, and which of them are attendance punches. No I/O.
//!
//! Attendance events are the major type 5 ("event") minor codes of a person authenticated successfully (card,
//! fingerprint, face, password and their combinations); door, lock, alarm, failure and operation events are not.
//! The minor code gives the verification (kept as `raw_verify`); `attendanceStatus` gives the punch state (its
//! position in the documented list kept as `raw_state`). See `REFERENCE.md` for the sources.

use chrono::{DateTime, NaiveDateTime, Utc};
use protocol::{PunchState, VerifyMode};
use serde_json::Value;

use crate::http_terminal::context::{text, uint, Authentication, DeviceTime};

/// Major type of access-control events (authentications, door events).
pub const MAJOR_EVENT: u32 = 5;

/// `(minor code, verification)` of the major-5 minor codes that mean a person authenticated successfully.
pub const PASS_MINORS: &[(u32, VerifyMode)] = &[
    (0x01, VerifyMode::Card),        // legal card pass
    (0x02, VerifyMode::Card),        // card and password pass
    (0x26, VerifyMode::Fingerprint), // fingerprint compare pass
    (0x28, VerifyMode::Fingerprint), // card and fingerprint pass
    (0x2b, VerifyMode::Fingerprint), // card, fingerprint and password pass
    (0x2e, VerifyMode::Fingerprint), // fingerprint and password pass
    (0x36, VerifyMode::Face),        // face and fingerprint pass
    (0x39, VerifyMode::Face),        // face and password pass
    (0x3c, VerifyMode::Face),        // face and card pass
    (0x3f, VerifyMode::Face),        // face, password and fingerprint pass
    (0x42, VerifyMode::Face),        // face, card and fingerprint pass
    (0x45, VerifyMode::Fingerprint), // employee no. and fingerprint pass
    (0x48, VerifyMode::Fingerprint), // employee no., fingerprint and password pass
    (0x4b, VerifyMode::Face),        // face authentication pass
    (0x4d, VerifyMode::Face),        // employee no. and face pass
    (0x68, VerifyMode::Password),    // employee no. and password pass
    (0xb5, VerifyMode::Password),    // password authentication pass
];

/// The documented `attendanceStatus` values, in order; a value's position is kept as the punch's `raw_state`.
pub const ATTENDANCE_STATUSES: [&str; 7] =
    ["undefined", "checkIn", "checkOut", "breakOut", "breakIn", "overtimeIn", "overtimeOut"];

/// Longest employee number, name or status string taken from an event.
const MAX_FIELD: usize = 128;

/// One event, the fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsEvent {
    pub major: u32,
    pub minor: u32,
    pub time: DeviceTime,
    pub serial_no: Option<u64>,
    /// The serial number of the event sent before this one (realtime only).
    pub front_serial_no: Option<u64>,
    pub employee_no: Option<String>,
    pub name: Option<String>,
    pub card_no: Option<String>,
    pub attendance_status: Option<String>,
    /// The reader's configured mode (`cardOrFaceOrFp`...), not the one used; for the probe only.
    pub current_verify_mode: Option<String>,
}

/// Why an event is not a punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotPunch {
    /// Not a successful authentication (door, alarm, operation, failed verification).
    NotAuthentication { major: u32, minor: u32 },
    /// Authenticated, but no employee number came with it (an unregistered card, a visitor).
    NoPerson,
}

impl std::fmt::Display for NotPunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAuthentication { major, minor } => write!(f, "event {major}/{minor:#x} is not an authentication"),
            Self::NoPerson => f.write_str("authentication without an employee number"),
        }
    }
}

/// Parses a device time: RFC 3339 with an offset (or `Z`), or a wall-clock time without one.
pub fn parse_time(text: &str) -> Option<DeviceTime> {
    let text = text.trim();
    if text.len() > 40 {
        return None;
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(DeviceTime::Instant(at.with_timezone(&Utc)));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(DeviceTime::Local)
}

impl AcsEvent {
    /// An `InfoList` entry of a history search.
    ///
    /// # Errors
    /// What is missing or malformed.
    pub fn from_info(entry: &Value) -> Result<Self, String> {
        let time = entry.get("time").and_then(Value::as_str).ok_or("no time")?;
        Self::build(entry, entry.get("major"), entry.get("minor"), time)
    }

    /// The `AccessControllerEvent` of a realtime notification, with the notification's `dateTime`.
    ///
    /// # Errors
    /// What is missing or malformed.
    pub fn from_alert(alert: &Value) -> Result<Self, String> {
        let event = alert.get("AccessControllerEvent").ok_or("no AccessControllerEvent")?;
        let time = alert
            .get("dateTime")
            .or_else(|| event.get("dateTime"))
            .or_else(|| event.get("time"))
            .and_then(Value::as_str)
            .ok_or("no dateTime")?;
        Self::build(event, event.get("majorEventType"), event.get("subEventType"), time)
    }

    fn build(fields: &Value, major: Option<&Value>, minor: Option<&Value>, time: &str) -> Result<Self, String> {
        let code = |v: Option<&Value>, what: &str| {
            uint(v).and_then(|n| u32::try_from(n).ok()).ok_or_else(|| format!("no {what} type"))
        };
        Ok(Self {
            major: code(major, "major")?,
            minor: code(minor, "minor")?,
            time: parse_time(time).ok_or_else(|| format!("time {time:?} is not a time"))?,
            serial_no: uint(fields.get("serialNo")),
            front_serial_no: uint(fields.get("frontSerialNo")),
            employee_no: text(fields.get("employeeNoString"), MAX_FIELD)
                .or_else(|| text(fields.get("employeeNo"), MAX_FIELD))
                .filter(|e| e != "0"),
            name: text(fields.get("name"), MAX_FIELD),
            card_no: text(fields.get("cardNo"), MAX_FIELD),
            attendance_status: text(fields.get("attendanceStatus"), MAX_FIELD),
            current_verify_mode: text(fields.get("currentVerifyMode"), MAX_FIELD),
        })
    }

    /// The verification of a successful authentication, `None` for any other event.
    pub fn verification(&self) -> Option<VerifyMode> {
        if self.major != MAJOR_EVENT {
            return None;
        }
        PASS_MINORS.iter().find(|(minor, _)| *minor == self.minor).map(|(_, verify)| *verify)
    }

    /// The punch state and its raw code from `attendanceStatus` (unknown when absent or `undefined`).
    pub fn state(&self) -> (PunchState, Option<u32>) {
        let Some(status) = &self.attendance_status else { return (PunchState::from_code(u8::MAX), None) };
        let index = ATTENDANCE_STATUSES.iter().position(|s| s.eq_ignore_ascii_case(status));
        let state = match index {
            Some(1) => PunchState::CheckIn,
            Some(2) => PunchState::CheckOut,
            Some(3) => PunchState::BreakOut,
            Some(4) => PunchState::BreakIn,
            Some(5) => PunchState::OvertimeIn,
            Some(6) => PunchState::OvertimeOut,
            _ => PunchState::from_code(u8::MAX),
        };
        (state, index.and_then(|i| u32::try_from(i).ok()))
    }

    /// The authentication this event is, or why it is not one.
    ///
    /// # Errors
    /// [`NotPunch`].
    pub fn authentication(&self) -> Result<Authentication, NotPunch> {
        let verify = self.verification().ok_or(NotPunch::NotAuthentication { major: self.major, minor: self.minor })?;
        let pin = self.employee_no.clone().ok_or(NotPunch::NoPerson)?;
        let (state, raw_state) = self.state();
        Ok(Authentication { pin, time: self.time, state, verify, raw_state, raw_verify: Some(self.minor) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_face_pass_with_a_status_is_a_check_out_by_face() {
        let entry = json!({"major": 5, "minor": 75, "time": "2026-03-02T18:01:02+05:30", "serialNo": 187,
            "employeeNoString": "1001", "attendanceStatus": "checkOut", "currentVerifyMode": "cardOrFace"});
        let event = AcsEvent::from_info(&entry).unwrap();
        let auth = event.authentication().unwrap();
        assert_eq!((auth.pin.as_str(), auth.state, auth.verify), ("1001", PunchState::CheckOut, VerifyMode::Face));
        assert_eq!((auth.raw_state, auth.raw_verify), (Some(2), Some(75)));
        let (local, utc) = auth.time.resolve(chrono_tz::Asia::Kolkata);
        assert_eq!(local.to_string(), "2026-03-02 18:01:02");
        assert_eq!(utc.to_rfc3339(), "2026-03-02T12:31:02+00:00");
        assert_eq!(event.serial_no, Some(187));
    }

    #[test]
    fn door_and_failure_events_and_anonymous_passes_are_not_punches() {
        let door = json!({"major": 5, "minor": 21, "time": "2026-03-02T05:52:25-03:00", "serialNo": 1});
        assert!(matches!(
            AcsEvent::from_info(&door).unwrap().authentication(),
            Err(NotPunch::NotAuthentication { minor: 21, .. })
        ));
        let fail = json!({"major": 5, "minor": 76, "time": "2026-03-02T05:52:25Z", "employeeNoString": "7"});
        assert!(AcsEvent::from_info(&fail).unwrap().authentication().is_err());
        let operation = json!({"major": 2, "minor": 1024, "time": "2026-03-02T05:52:25Z"});
        assert!(AcsEvent::from_info(&operation).unwrap().authentication().is_err());
        let anonymous = json!({"major": 5, "minor": 1, "time": "2026-03-02T05:52:25Z", "employeeNoString": ""});
        assert_eq!(AcsEvent::from_info(&anonymous).unwrap().authentication(), Err(NotPunch::NoPerson));
    }

    #[test]
    fn realtime_events_read_the_same_way_with_strings_for_numbers() {
        let alert = json!({"ipAddress": "10.0.0.5", "dateTime": "2026-03-02T08:00:00+08:00",
            "eventType": "AccessControllerEvent", "AccessControllerEvent": {"majorEventType": 5,
            "subEventType": "38", "serialNo": "42", "frontSerialNo": 41, "employeeNoString": "E-7",
            "attendanceStatus": "overTimeOut"}});
        let event = AcsEvent::from_alert(&alert).unwrap();
        assert_eq!((event.serial_no, event.front_serial_no), (Some(42), Some(41)));
        let auth = event.authentication().unwrap();
        assert_eq!(
            (auth.state, auth.verify, auth.raw_state),
            (PunchState::OvertimeOut, VerifyMode::Fingerprint, Some(6))
        );
    }

    #[test]
    fn times_with_and_without_offsets() {
        assert!(matches!(parse_time("2026-03-02T08:00:00Z"), Some(DeviceTime::Instant(_))));
        assert!(matches!(parse_time("2026-03-02T08:00:00.5+01:00"), Some(DeviceTime::Instant(_))));
        assert!(matches!(parse_time("2026-03-02T08:00:00"), Some(DeviceTime::Local(_))));
        assert_eq!(parse_time("yesterday"), None);
        let no_status = json!({"major": 5, "minor": 1, "time": "2026-03-02T08:00:00", "employeeNo": 12});
        let auth = AcsEvent::from_info(&no_status).unwrap().authentication().unwrap();
        assert_eq!((auth.pin.as_str(), auth.raw_state), ("12", None));
        assert!(matches!(auth.state, PunchState::Unknown(_)));
    }
}
