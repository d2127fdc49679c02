//! A Dahua access record or realtime access event, and which of them are attendance punches. No I/O.
//!
//! A punch is a successful access (`Status` 1, `ErrorCode` 0) by a person (`UserID`) with a personal method: the
//! `Method` code gives the verification (kept as `raw_verify`); `AttendanceState` gives the punch state (kept as
//! `raw_state`), and without it the record's `Type` (`Entry` / `Exit`) does. Times are epoch seconds:
//! `CreateTimeRealUTC` / `RealUTC` are true UTC; `CreateTime` / `UTC` are UTC too unless the device is configured
//! with `epoch_is_local` (firmware writing its wall clock as if it were UTC). See `REFERENCE.md` for the sources.

use chrono::DateTime;
use protocol::{PunchState, VerifyMode};
use serde_json::Value;

use super::records::CardRecord;
use crate::http_terminal::context::{text, uint, Authentication, DeviceTime};

/// Open-door `Method` codes that are not a person (remote open, exit button, mechanical key).
pub const NOT_PERSONAL_METHODS: [u32; 3] = [4, 5, 12];

/// The verification of a `Method` code (`None` for codes without a known mapping).
pub fn verification(method: u32) -> Option<VerifyMode> {
    match method {
        0 => Some(VerifyMode::Password),
        1..=3 => Some(VerifyMode::Card),
        6 | 7 | 9 | 10 => Some(VerifyMode::Fingerprint),
        15 => Some(VerifyMode::Face),
        _ => None,
    }
}

/// The punch state of an `AttendanceState` code (0 and unknown codes: none).
pub fn attendance_state(code: u32) -> Option<PunchState> {
    match code {
        1 => Some(PunchState::CheckIn),
        2 => Some(PunchState::BreakOut),
        3 => Some(PunchState::BreakIn),
        4 => Some(PunchState::CheckOut),
        5 => Some(PunchState::OvertimeIn),
        6 => Some(PunchState::OvertimeOut),
        _ => None,
    }
}

/// One access, from a record or an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub rec_no: Option<u64>,
    pub time: DeviceTime,
    pub user_id: Option<String>,
    pub method: Option<u32>,
    pub success: bool,
    pub direction: Option<String>,
    pub attendance_state: Option<u32>,
}

/// A device time from epoch seconds: true UTC, or a wall clock written as UTC.
fn epoch_time(real_utc: Option<i64>, epoch: Option<i64>, epoch_is_local: bool) -> Option<DeviceTime> {
    if let Some(at) = real_utc.filter(|t| *t > 0).and_then(|t| DateTime::from_timestamp(t, 0)) {
        return Some(DeviceTime::Instant(at));
    }
    let at = epoch.filter(|t| *t > 0).and_then(|t| DateTime::from_timestamp(t, 0))?;
    Some(if epoch_is_local { DeviceTime::Local(at.naive_utc()) } else { DeviceTime::Instant(at) })
}

impl Access {
    /// An `AccessControlCardRec` record.
    ///
    /// # Errors
    /// A message when the record has no usable time.
    pub fn from_record(record: &CardRecord, epoch_is_local: bool) -> Result<Self, String> {
        let time = epoch_time(record.create_time_real_utc, record.create_time, epoch_is_local)
            .ok_or_else(|| format!("record {:?} has no CreateTime", record.rec_no))?;
        Ok(Self {
            rec_no: record.rec_no,
            time,
            user_id: record.user_id.clone(),
            method: record.method,
            success: record.status == Some(1) && record.error_code.unwrap_or(0) == 0,
            direction: record.direction.clone(),
            attendance_state: record.attendance_state,
        })
    }

    /// The `data` of a realtime `AccessControl` event.
    ///
    /// # Errors
    /// A message when the event has no usable time.
    pub fn from_event(data: &Value, epoch_is_local: bool) -> Result<Self, String> {
        let epoch = |key: &str| uint(data.get(key)).and_then(|t| i64::try_from(t).ok());
        let time = epoch_time(epoch("RealUTC").or_else(|| epoch("CreateTimeRealUTC")), epoch("UTC"), epoch_is_local)
            .ok_or("access event has no UTC time")?;
        let success = match data.get("Status") {
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
            _ => false,
        } && uint(data.get("ErrorCode")).unwrap_or(0) == 0;
        Ok(Self {
            rec_no: uint(data.get("RecNo")),
            time,
            user_id: text(data.get("UserID"), 64),
            method: uint(data.get("Method")).and_then(|m| u32::try_from(m).ok()),
            success,
            direction: text(data.get("Type"), 32),
            attendance_state: uint(data.get("AttendanceState")).and_then(|s| u32::try_from(s).ok()),
        })
    }

    /// The authentication this access is, or why it is not one.
    ///
    /// # Errors
    /// The reason.
    pub fn authentication(&self) -> Result<Authentication, String> {
        if !self.success {
            return Err("a refused access".into());
        }
        let method = self.method.unwrap_or(u32::MAX);
        if NOT_PERSONAL_METHODS.contains(&method) {
            return Err(format!("method {method} opens the door without a person"));
        }
        let pin = self.user_id.clone().filter(|u| !u.is_empty()).ok_or("an access without a UserID")?;
        let verify = verification(method).unwrap_or_else(|| VerifyMode::from_code(u8::MAX));
        let by_direction = match self.direction.as_deref() {
            Some(d) if d.eq_ignore_ascii_case("entry") => Some(PunchState::CheckIn),
            Some(d) if d.eq_ignore_ascii_case("exit") => Some(PunchState::CheckOut),
            _ => None,
        };
        let state = self
            .attendance_state
            .and_then(attendance_state)
            .or(by_direction)
            .unwrap_or_else(|| PunchState::from_code(u8::MAX));
        Ok(Authentication {
            pin,
            time: self.time,
            state,
            verify,
            raw_state: self.attendance_state,
            raw_verify: self.method,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_face_record_with_an_attendance_state() {
        let record = CardRecord {
            rec_no: Some(7),
            create_time: Some(1_772_438_400),
            user_id: Some("1001".into()),
            method: Some(15),
            status: Some(1),
            direction: Some("Entry".into()),
            attendance_state: Some(4),
            ..CardRecord::default()
        };
        let auth = Access::from_record(&record, false).unwrap().authentication().unwrap();
        assert_eq!((auth.pin.as_str(), auth.state, auth.verify), ("1001", PunchState::CheckOut, VerifyMode::Face));
        assert_eq!((auth.raw_state, auth.raw_verify), (Some(4), Some(15)));
        let (local, utc) = auth.time.resolve(chrono_tz::Asia::Kolkata);
        assert_eq!((local.to_string(), utc.timestamp()), ("2026-03-02 13:30:00".to_owned(), 1_772_438_400));
        let (local, _) = Access::from_record(&record, true).unwrap().time.resolve(chrono_tz::Asia::Kolkata);
        assert_eq!(local.to_string(), "2026-03-02 08:00:00", "a wall clock written as UTC");
    }

    #[test]
    fn refused_remote_and_anonymous_accesses_are_not_punches() {
        let base = CardRecord {
            create_time: Some(1),
            user_id: Some("5".into()),
            method: Some(1),
            status: Some(1),
            ..CardRecord::default()
        };
        assert!(Access::from_record(&base, false).unwrap().authentication().is_ok());
        let refused = CardRecord { status: Some(0), ..base.clone() };
        assert!(Access::from_record(&refused, false).unwrap().authentication().is_err());
        let remote = CardRecord { method: Some(4), ..base.clone() };
        assert!(Access::from_record(&remote, false).unwrap().authentication().is_err());
        let anonymous = CardRecord { user_id: None, ..base.clone() };
        assert!(Access::from_record(&anonymous, false).unwrap().authentication().is_err());
        assert!(Access::from_record(&CardRecord::default(), false).is_err());
    }

    #[test]
    fn realtime_events_with_type_for_state() {
        let data = json!({"CardNo": "", "Method": 6, "UserID": "E-2", "Status": 1, "Type": "Exit", "UTC": 1_772_438_400,
            "RecNo": 99, "ErrorCode": 0});
        let access = Access::from_event(&data, false).unwrap();
        assert_eq!(access.rec_no, Some(99));
        let auth = access.authentication().unwrap();
        assert_eq!((auth.state, auth.verify, auth.raw_state), (PunchState::CheckOut, VerifyMode::Fingerprint, None));
    }
}
