//! User records (28 or 72 bytes): the device's table from internal uid to PIN and name.
//!
//! | size | layout |
//! |---|---|
//! | 28 | uid u16 @0, privilege u8 @2, password char\[5\] @3, name char\[8\] @8, card u32 @16, group u8 @21, time zone i16 @22, user id u32 @24 |
//! | 72 | uid u16 @0, privilege u8 @2, password char\[8\] @3, name char\[24\] @11, card u32 @35, group char\[7\] @40, user id char\[24\] @48 |
//!
//! Like attendance, a user dataset is a u32 byte count and the records; the size per record is bytes / user count.

use super::records::{c_string, dataset_body, fixed_string, DatasetError};

/// The two user record sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum UserLayout {
    /// 28 bytes, numeric user id (ZK6 firmware).
    Small,
    /// 72 bytes, text user id (ZK8 / TFT firmware).
    Large,
}

impl UserLayout {
    pub fn size(self) -> usize {
        match self {
            Self::Small => 28,
            Self::Large => 72,
        }
    }

    pub fn from_size(size: usize) -> Option<Self> {
        [Self::Small, Self::Large].into_iter().find(|l| l.size() == size)
    }
}

impl TryFrom<u16> for UserLayout {
    type Error = String;
    fn try_from(size: u16) -> Result<Self, String> {
        Self::from_size(usize::from(size)).ok_or_else(|| format!("user record size {size} is not 28 or 72"))
    }
}

impl From<UserLayout> for u16 {
    fn from(layout: UserLayout) -> u16 {
        layout.size() as u16
    }
}

/// One user as stored on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub uid: u16,
    /// Bit 0: disabled; bits 1-3: level (0 user, 2 enroller, 6 admin, 14 super admin).
    pub privilege: u8,
    pub password: String,
    pub name: String,
    pub card: u32,
    pub group: String,
    /// The PIN.
    pub user_id: String,
}

/// Reads a user dataset; `count` is the user count from GET_FREE_SIZES.
///
/// # Errors
/// When the dataset is truncated or its record size cannot be determined.
pub fn parse_users(dataset: &[u8], count: Option<u32>) -> Result<Vec<UserRecord>, DatasetError> {
    parse_users_with_layout(dataset, count).map(|(_, users)| users)
}

/// [`parse_users`], with the layout the records came in (`None` for an empty table, which does not tell).
///
/// # Errors
/// As [`parse_users`].
pub fn parse_users_with_layout(
    dataset: &[u8],
    count: Option<u32>,
) -> Result<(Option<UserLayout>, Vec<UserRecord>), DatasetError> {
    let body = dataset_body("user", dataset)?;
    if body.is_empty() {
        return Ok((None, Vec::new()));
    }
    let count = count.unwrap_or(0);
    let unknown = DatasetError::UnknownLayout { what: "user", bytes: body.len(), count, known: "28 or 72" };
    if count == 0 || body.len() % count as usize != 0 {
        return Err(unknown);
    }
    let layout = UserLayout::from_size(body.len() / count as usize).ok_or(unknown)?;
    Ok((Some(layout), body.chunks_exact(layout.size()).map(|raw| decode_user(layout, raw)).collect()))
}

/// Decodes one user record (`raw` must be exactly `layout.size()` bytes).
pub fn decode_user(layout: UserLayout, raw: &[u8]) -> UserRecord {
    let u16_at = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([raw[i], raw[i + 1], raw[i + 2], raw[i + 3]]);
    match layout {
        UserLayout::Small => UserRecord {
            uid: u16_at(0),
            privilege: raw[2],
            password: c_string(&raw[3..8]),
            name: c_string(&raw[8..16]).trim().to_owned(),
            card: u32_at(16),
            group: raw[21].to_string(),
            user_id: u32_at(24).to_string(),
        },
        UserLayout::Large => UserRecord {
            uid: u16_at(0),
            privilege: raw[2],
            password: c_string(&raw[3..11]),
            name: c_string(&raw[11..35]).trim().to_owned(),
            card: u32_at(35),
            group: c_string(&raw[40..47]).trim().to_owned(),
            user_id: c_string(&raw[48..72]),
        },
    }
}

/// Encodes one user (simulator and tests). In the 28-byte layout a non-numeric user id or group is written as 0.
pub fn encode_user(layout: UserLayout, user: &UserRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&user.uid.to_le_bytes());
    out.push(user.privilege);
    match layout {
        UserLayout::Small => {
            out.extend_from_slice(&fixed_string::<5>(&user.password));
            out.extend_from_slice(&fixed_string::<8>(&user.name));
            out.extend_from_slice(&user.card.to_le_bytes());
            out.push(0);
            out.push(user.group.parse().unwrap_or(0));
            out.extend_from_slice(&0i16.to_le_bytes());
            out.extend_from_slice(&user.user_id.parse::<u32>().unwrap_or(0).to_le_bytes());
        }
        UserLayout::Large => {
            out.extend_from_slice(&fixed_string::<8>(&user.password));
            out.extend_from_slice(&fixed_string::<24>(&user.name));
            out.extend_from_slice(&user.card.to_le_bytes());
            out.push(1);
            out.extend_from_slice(&fixed_string::<7>(&user.group));
            out.push(0);
            out.extend_from_slice(&fixed_string::<24>(&user.user_id));
        }
    }
}

/// A whole user dataset (u32 length + records).
pub fn encode_users(layout: UserLayout, users: &[UserRecord]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + users.len() * layout.size());
    out.extend_from_slice(&((users.len() * layout.size()) as u32).to_le_bytes());
    for user in users {
        encode_user(layout, user, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> Vec<UserRecord> {
        vec![
            UserRecord {
                uid: 1,
                privilege: 14,
                password: "123".into(),
                name: "Asha".into(),
                card: 0x00c0_ffee,
                group: "1".into(),
                user_id: "1001".into(),
            },
            UserRecord {
                uid: 2,
                privilege: 0,
                password: String::new(),
                name: "Ravi K".into(),
                card: 0,
                group: "0".into(),
                user_id: "1002".into(),
            },
        ]
    }

    #[test]
    fn both_layouts_round_trip() {
        for layout in [UserLayout::Small, UserLayout::Large] {
            let dataset = encode_users(layout, &users());
            assert_eq!(dataset.len(), 4 + 2 * layout.size());
            assert_eq!(parse_users(&dataset, Some(2)).unwrap(), users(), "{layout:?}");
        }
    }

    #[test]
    fn field_offsets_of_the_large_layout() {
        let mut raw = Vec::new();
        encode_user(UserLayout::Large, &users()[0], &mut raw);
        assert_eq!(&raw[11..15], b"Asha");
        assert_eq!(u32::from_le_bytes(raw[35..39].try_into().unwrap()), 0x00c0_ffee);
        assert_eq!(&raw[48..52], b"1001");
        let mut raw = Vec::new();
        encode_user(UserLayout::Small, &users()[0], &mut raw);
        assert_eq!(&raw[8..12], b"Asha");
        assert_eq!(u32::from_le_bytes(raw[24..28].try_into().unwrap()), 1001);
    }

    #[test]
    fn the_count_decides_between_layouts_that_both_divide() {
        // 504 bytes is 18 small or 7 large records.
        let dataset = encode_users(UserLayout::Large, &vec![users()[0].clone(); 7]);
        assert_eq!(parse_users(&dataset, Some(7)).unwrap().len(), 7);
        assert_eq!(parse_users(&dataset, Some(18)).unwrap().len(), 18);
        let err = parse_users(&dataset, Some(5)).unwrap_err().to_string();
        assert!(err.contains("does not divide into 5 records"), "{err}");
        assert!(parse_users(&dataset, None).is_err());
        assert!(parse_users(&[0, 0, 0, 0], None).unwrap().is_empty());
    }
}
