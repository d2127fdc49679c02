//! What the driver writes to a device's user table, without I/O: a central [`protocol::UserUpdate`] turned into the
//! device's record (its layout's limits checked, the uid chosen, what central does not know taken from the record
//! the device holds), the USER_WRQ and DELETE_USER bodies, and the layout to write when the device holds nobody yet.
//!
//! pyzk's `set_user` sends the record itself as the USER_WRQ body (`HB5s8sIxBHI` for 28 bytes,
//! `HB8s24s4sx7sx24s` for 72) and `delete_user` the uid as an i16; both follow with REFRESHDATA. A user is found by
//! PIN; the uid is the device's own key, so an existing PIN keeps its uid (and password and group) and a new one
//! takes the lowest uid above every uid in use.

use std::collections::HashSet;

use protocol::{DeviceUser, UserUpdate};

use super::transport::TransportKind;
use super::users::{encode_user, UserLayout, UserRecord};

/// Why a user cannot be written in a layout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserWriteError {
    #[error("PIN {pin}: the device keeps 28-byte users, whose PIN is a number up to 4294967295")]
    PinNotNumeric { pin: String },
    #[error("PIN {pin}: {len} bytes, the device's 72-byte users hold at most 24")]
    PinTooLong { pin: String, len: usize },
    #[error("the device has no free user number (uid) left")]
    NoFreeUid,
}

/// The layout to write when the device has no user to tell it: pyzk's default, 72 bytes over TCP and 28 over UDP.
pub fn default_layout(transport: TransportKind) -> UserLayout {
    match transport {
        TransportKind::Tcp => UserLayout::Large,
        TransportKind::Udp => UserLayout::Small,
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The lowest uid above every uid in `taken` (uid 0 is never given).
///
/// # Errors
/// [`UserWriteError::NoFreeUid`] when 65535 is taken.
pub fn next_uid(taken: &HashSet<u16>) -> Result<u16, UserWriteError> {
    let max = taken.iter().copied().max().unwrap_or(0);
    max.checked_add(1).ok_or(UserWriteError::NoFreeUid)
}

/// The device record for `user` with `uid`; `existing` is the device's record of the same PIN, whose password and
/// group are kept, and its card and privilege too when `user` carries none (central knows none, so a push must not
/// wipe a card enrolled on the terminal nor demote an administrator). A privilege central sets keeps the record's
/// disabled bit (bit 0). A new user without them has no card and is an ordinary user (0). The name is cut to the
/// layout's field (8 or 24 bytes).
///
/// # Errors
/// A PIN the layout cannot hold.
pub fn device_record(
    layout: UserLayout,
    uid: u16,
    user: &UserUpdate,
    existing: Option<&UserRecord>,
) -> Result<UserRecord, UserWriteError> {
    let pin = user.pin.as_str();
    match layout {
        UserLayout::Small if pin.parse::<u32>().is_err() => {
            return Err(UserWriteError::PinNotNumeric { pin: pin.to_owned() })
        }
        UserLayout::Large if pin.len() > 24 => {
            return Err(UserWriteError::PinTooLong { pin: pin.to_owned(), len: pin.len() })
        }
        _ => {}
    }
    let name_field = match layout {
        UserLayout::Small => 8,
        UserLayout::Large => 24,
    };
    Ok(UserRecord {
        uid,
        privilege: match (user.privilege, existing) {
            (Some(level), Some(e)) => level | (e.privilege & 1),
            (Some(level), None) => level,
            (None, Some(e)) => e.privilege,
            (None, None) => 0,
        },
        password: existing.map(|u| u.password.clone()).unwrap_or_default(),
        name: cut(&user.name, name_field).to_owned(),
        card: user.card.unwrap_or_else(|| existing.map_or(0, |u| u.card)),
        group: existing.map_or_else(|| "1".to_owned(), |u| u.group.clone()),
        // The 28-byte record holds the number, so "007" reads back as "7": store what the device will show.
        user_id: match layout {
            UserLayout::Small => pin.parse::<u32>().map(|n| n.to_string()).unwrap_or_default(),
            UserLayout::Large => pin.to_owned(),
        },
    })
}

/// The USER_WRQ body: the record, with byte 39 of a 72-byte one 0 as pyzk's `set_user` sends it.
pub fn user_write_request(layout: UserLayout, record: &UserRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(layout.size());
    encode_user(layout, record, &mut out);
    if layout == UserLayout::Large {
        out[39] = 0;
    }
    out
}

/// The DELETE_USER body: the uid.
pub fn delete_user_request(uid: u16) -> [u8; 2] {
    uid.to_le_bytes()
}

/// The [`DeviceUser`] a device record stands for (privilege reduced to its level, the disabled bit dropped).
pub fn central_user(record: &UserRecord) -> Option<DeviceUser> {
    let level = record.privilege & 0x0E;
    Some(DeviceUser {
        pin: record.user_id.parse().ok()?,
        name: cut(&record.name, protocol::envelope::MAX_USER_NAME_LEN).to_owned(),
        card: record.card,
        privilege: if protocol::envelope::USER_PRIVILEGES.contains(&level) { level } else { 0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn central(pin: &str, name: &str, privilege: u8) -> UserUpdate {
        UserUpdate { pin: pin.parse().unwrap(), name: name.into(), card: Some(7), privilege: Some(privilege) }
    }

    #[test]
    fn user_wrq_bodies_match_pyzks_set_user() {
        // Python: pack('HB5s8sIxBHI', 3, 0, b'', b'Asha', 7, 1, 0, 1001)
        let small = device_record(UserLayout::Small, 3, &central("1001", "Asha", 0), None).unwrap();
        assert_eq!(
            user_write_request(UserLayout::Small, &small),
            hex("0300 00 0000000000 4173686100000000 07000000 00 01 0000 e9030000")
        );
        // Python: pack('HB8s24s4sx7sx24s', 3, 14, b'', b'Asha Rao'.ljust(24, b'\0'), pack('<I', 7), b'1', b'E00035')
        let large = device_record(UserLayout::Large, 3, &central("E00035", "Asha Rao", 14), None).unwrap();
        assert_eq!(
            user_write_request(UserLayout::Large, &large),
            hex("03000e0000000000000000417368612052616f0000000000000000000000000000000007000000003100000000000000\
                 453030303335000000000000000000000000000000000000")
        );
        // Python: pack('h', 3)
        assert_eq!(delete_user_request(3), [3, 0]);
    }

    #[test]
    fn layout_limits_are_named() {
        let err = device_record(UserLayout::Small, 1, &central("E7", "X", 0), None).unwrap_err();
        assert!(err.to_string().contains("PIN E7"), "{err}");
        let long = "1".repeat(25);
        let err = device_record(UserLayout::Large, 1, &central(&long, "X", 0), None).unwrap_err();
        assert!(err.to_string().contains("25 bytes"), "{err}");
        let cut_name = device_record(UserLayout::Small, 1, &central("0042", "Ravishankar", 0), None).unwrap();
        assert_eq!((cut_name.name.as_str(), cut_name.user_id.as_str()), ("Ravishan", "42"));
        assert_eq!(cut("Zoë Zoë", 3), "Zo");
    }

    #[test]
    fn an_existing_user_keeps_password_and_group_and_new_ones_take_the_next_uid() {
        let existing = UserRecord {
            uid: 9,
            privilege: 0,
            password: "123".into(),
            name: "Old".into(),
            card: 31,
            group: "4".into(),
            user_id: "1001".into(),
        };
        let no_card = UserUpdate { card: None, ..central("1001", "New", 0) };
        assert_eq!(device_record(UserLayout::Large, 9, &no_card, Some(&existing)).unwrap().card, 31);
        // Central knows no privilege: an administrator on the device stays one; a new user is an ordinary one.
        let admin = UserRecord { privilege: 14, ..existing.clone() };
        let unknown = UserUpdate { privilege: None, ..central("1001", "New", 0) };
        assert_eq!(device_record(UserLayout::Large, 9, &unknown, Some(&admin)).unwrap().privilege, 14);
        assert_eq!(device_record(UserLayout::Large, 9, &unknown, None).unwrap().privilege, 0);
        // Central's level wins when set, and a disabled user stays disabled.
        let disabled = UserRecord { privilege: 15, ..existing.clone() };
        assert_eq!(
            device_record(UserLayout::Large, 9, &central("1001", "New", 2), Some(&disabled)).unwrap().privilege,
            3
        );
        let record = device_record(UserLayout::Large, 9, &central("1001", "New", 2), Some(&existing)).unwrap();
        assert_eq!((record.password.as_str(), record.group.as_str(), record.name.as_str()), ("123", "4", "New"));
        assert_eq!(next_uid(&HashSet::from([1, 2, 9])), Ok(10));
        assert_eq!(next_uid(&HashSet::new()), Ok(1));
        assert_eq!(next_uid(&HashSet::from([u16::MAX])), Err(UserWriteError::NoFreeUid));
        let back = central_user(&UserRecord { privilege: 15, ..record }).unwrap();
        assert_eq!((back.pin.as_str(), back.privilege), ("1001", 14));
    }
}
