//! Device records and realtime events to [`Punch`]es: the PIN (through the uid table when a record names a uid),
//! local time and UTC from the device's zone, and the codes kept as they are (unknown ones included).

use std::collections::HashMap;

use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction, IdError, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};

use super::event::AttlogEvent;
use super::records::{AttendanceRecord, DeviceUser};

/// What every punch from one device shares.
#[derive(Debug, Clone)]
pub struct PunchContext<'a> {
    pub site: &'a SiteId,
    pub device: &'a DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    /// uid -> PIN, from the device's user table.
    pub pins: &'a HashMap<u16, String>,
}

/// A record whose user id cannot be a PIN (empty, too long, control characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record of user {user:?} at {time}: {source}")]
pub struct ConvertError {
    pub user: String,
    pub time: chrono::NaiveDateTime,
    pub source: IdError,
}

impl PunchContext<'_> {
    /// The PIN of `user`: a text id as it is; a uid through the user table, or the uid's digits when the table does
    /// not know it (what other clients do, so the same punch gets the same key whoever reads it).
    pub fn pin_text(&self, user: &DeviceUser) -> String {
        match user {
            DeviceUser::Pin(pin) => pin.clone(),
            DeviceUser::Uid(uid) => self.pins.get(uid).cloned().unwrap_or_else(|| uid.to_string()),
        }
    }

    /// A bulk-read record as a punch (`zk-pull`).
    ///
    /// # Errors
    /// When the user id is not a valid PIN.
    pub fn record(&self, record: &AttendanceRecord) -> Result<Punch, ConvertError> {
        self.punch(&record.user, record.time, record.state, record.verify, record.work_code, PunchSource::ZkPull)
    }

    /// A realtime event as a punch (`zk-realtime`).
    ///
    /// # Errors
    /// When the user id is not a valid PIN.
    pub fn event(&self, event: &AttlogEvent) -> Result<Punch, ConvertError> {
        self.punch(&event.user, event.time, event.state, event.verify, 0, PunchSource::ZkRealtime)
    }

    fn punch(
        &self,
        user: &DeviceUser,
        time: chrono::NaiveDateTime,
        state: u8,
        verify: u8,
        work_code: u32,
        source: PunchSource,
    ) -> Result<Punch, ConvertError> {
        let text = self.pin_text(user);
        let pin: Pin = text.parse().map_err(|source| ConvertError { user: text.clone(), time, source })?;
        Ok(Punch::from_device(
            self.site.clone(),
            self.device.clone(),
            pin,
            time,
            self.zone,
            PunchState::from_code(state),
            VerifyMode::from_code(verify),
            work_code,
            source,
            self.direction,
        )
        .with_raw_codes(Some(u32::from(state)), Some(u32::from(verify))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn uid_records_take_the_pin_from_the_user_table() {
        let site: SiteId = "plant-1".parse().unwrap();
        let device: DeviceSerial = "CDQ9192960006".parse().unwrap();
        let pins = HashMap::from([(4u16, "831".to_owned())]);
        let ctx = PunchContext {
            site: &site,
            device: &device,
            zone: chrono_tz::Asia::Kolkata,
            direction: Direction::In,
            pins: &pins,
        };
        let time = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let record =
            AttendanceRecord { user: DeviceUser::Uid(4), uid: Some(4), time, verify: 1, state: 9, work_code: 0 };
        let punch = ctx.record(&record).unwrap();
        assert_eq!(punch.pin.as_str(), "831");
        assert_eq!(punch.state, PunchState::Unknown(9), "unknown codes are kept");
        assert_eq!(punch.verify, VerifyMode::Fingerprint);
        assert_eq!((punch.raw_state, punch.raw_verify), (Some(9), Some(1)), "the device's own codes are kept");
        let card = AttendanceRecord { verify: 4, ..record.clone() };
        let card = ctx.record(&card).unwrap();
        assert_eq!(card.raw_verify, Some(4), "{:?} keeps the device's 4", card.verify);
        assert_eq!(punch.utc_time.naive_utc(), time - chrono::Duration::minutes(330));
        assert_eq!((punch.source, punch.direction), (PunchSource::ZkPull, Direction::In));
        // A uid missing from the table keeps its digits.
        let stranger = AttendanceRecord { user: DeviceUser::Uid(77), ..record.clone() };
        assert_eq!(ctx.record(&stranger).unwrap().pin.as_str(), "77");
        // The same punch by realtime event has the same key.
        let event = AttlogEvent { user: DeviceUser::Uid(4), verify: 1, state: 9, time };
        let live = ctx.event(&event).unwrap();
        assert_eq!((live.key(), live.source), (punch.key(), PunchSource::ZkRealtime));
        let bad = AttendanceRecord { user: DeviceUser::Pin("a\tb".into()), ..record };
        let err = ctx.record(&bad).unwrap_err().to_string();
        assert!(err.starts_with("record of user \"a\\tb\" at 2026-11-21 09:00:00: PIN"), "{err}");
    }
}
