//! Realtime events: packets the device sends unasked after REG_EVENT. The event packet's command is REG_EVENT, its
//! session field carries the event flag (EF_ATTLOG = 1 for a punch) and its reply id is 0; the client answers each
//! with ACK_OK.
//!
//! Attendance event payloads, by size:
//!
//! | size | layout |
//! |---|---|
//! | 10 | user u16, verify u8, state u8, time6 |
//! | 12 | user u32, verify u8, state u8, time6 |
//! | 14 | as 10, then 4 bytes |
//! | 32 | user char\[24\], verify u8 @24, state u8 @25, time6 @26 |
//! | 36, 37, 52 | as 32, then 4, 5 or 20 bytes |
//!
//! time6 is `YY-2000, MM, DD, hh, mm, ss`. The 16-bit user of the 10/14-byte events is taken as the internal uid (those
//! come from the firmware that stores 8-byte records, whose records name the uid too), so both paths resolve the PIN
//! through the same user table and give the same punch key.

use chrono::NaiveDateTime;

use super::records::{c_string, fixed_string, DeviceUser};
use super::time::{self, TimeError};

/// One punch reported in realtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttlogEvent {
    pub user: DeviceUser,
    pub verify: u8,
    pub state: u8,
    /// Local wall-clock time.
    pub time: NaiveDateTime,
}

/// Why an attendance event payload cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("attendance event of {len} bytes has no known layout (10, 12, 14, 32, 36, 37 or 52)")]
    UnknownSize { len: usize },
    #[error("attendance event: {0}")]
    Time(#[from] TimeError),
}

/// The attendance event payload sizes.
pub const ATTLOG_EVENT_SIZES: [usize; 7] = [10, 12, 14, 32, 36, 37, 52];

/// Reads an EF_ATTLOG payload.
///
/// # Errors
/// When its size is unknown or its time is invalid.
pub fn parse_attlog(payload: &[u8]) -> Result<AttlogEvent, EventError> {
    let time6 = |at: usize| -> [u8; 6] {
        let mut t = [0u8; 6];
        t.copy_from_slice(&payload[at..at + 6]);
        t
    };
    match payload.len() {
        10 | 14 => Ok(AttlogEvent {
            user: DeviceUser::Uid(u16::from_le_bytes([payload[0], payload[1]])),
            verify: payload[2],
            state: payload[3],
            time: time::decode_bytes(time6(4))?,
        }),
        12 => Ok(AttlogEvent {
            user: DeviceUser::Pin(u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]).to_string()),
            verify: payload[4],
            state: payload[5],
            time: time::decode_bytes(time6(6))?,
        }),
        32 | 36 | 37 | 52 => Ok(AttlogEvent {
            user: DeviceUser::Pin(c_string(&payload[..24])),
            verify: payload[24],
            state: payload[25],
            time: time::decode_bytes(time6(26))?,
        }),
        len => Err(EventError::UnknownSize { len }),
    }
}

/// Encodes an EF_ATTLOG payload of `size` bytes (one of [`ATTLOG_EVENT_SIZES`]; others give 32). The simulator uses
/// it; a [`DeviceUser::Pin`] in a 10/14-byte event, or a non-numeric one in a 12-byte event, is written as 0.
pub fn encode_attlog(size: usize, event: &AttlogEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    let t = time::encode_bytes(event.time);
    match size {
        10 | 14 => {
            let uid = match &event.user {
                DeviceUser::Uid(uid) => *uid,
                DeviceUser::Pin(_) => 0,
            };
            out.extend_from_slice(&uid.to_le_bytes());
            out.extend_from_slice(&[event.verify, event.state]);
            out.extend_from_slice(&t);
            out.resize(size, 0);
        }
        12 => {
            let pin = match &event.user {
                DeviceUser::Pin(pin) => pin.parse::<u32>().unwrap_or(0),
                DeviceUser::Uid(uid) => u32::from(*uid),
            };
            out.extend_from_slice(&pin.to_le_bytes());
            out.extend_from_slice(&[event.verify, event.state]);
            out.extend_from_slice(&t);
        }
        _ => {
            let pin = match &event.user {
                DeviceUser::Pin(pin) => pin.clone(),
                DeviceUser::Uid(uid) => uid.to_string(),
            };
            out.extend_from_slice(&fixed_string::<24>(&pin));
            out.extend_from_slice(&[event.verify, event.state]);
            out.extend_from_slice(&t);
            out.resize(if ATTLOG_EVENT_SIZES.contains(&size) { size } else { 32 }, 0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn every_size_round_trips() {
        let time = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_opt(9, 5, 7).unwrap();
        for size in ATTLOG_EVENT_SIZES {
            let user = match size {
                10 | 14 => DeviceUser::Uid(42),
                12 => DeviceUser::Pin("4822257".into()),
                _ => DeviceUser::Pin("EMP-0042".into()),
            };
            let event = AttlogEvent { user, verify: 15, state: 1, time };
            let payload = encode_attlog(size, &event);
            assert_eq!(payload.len(), size);
            assert_eq!(parse_attlog(&payload).unwrap(), event, "size {size}");
        }
    }

    #[test]
    fn unknown_sizes_and_bad_times_are_named() {
        assert_eq!(
            parse_attlog(&[0; 11]).unwrap_err().to_string(),
            "attendance event of 11 bytes has no known layout (10, 12, 14, 32, 36, 37 or 52)"
        );
        let mut payload = vec![0u8; 12];
        payload[6..12].copy_from_slice(&[18, 2, 30, 0, 0, 0]);
        assert!(matches!(parse_attlog(&payload), Err(EventError::Time(_))));
    }
}
