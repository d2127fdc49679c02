//! An employee's privilege on the terminals: the four levels ZKTeco terminals know, by name in central's API and
//! database, by code on the wire. The codes and their sources are in `edge-agent/src/zk/REFERENCE.md` ("Card number
//! and privilege"): the binary protocol's user record and the push protocol's `Pri=` field use the same numbers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A level on the terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DevicePrivilege {
    /// Punches only (code 0).
    User,
    /// May enrol people at the terminal (code 2).
    Enroller,
    /// The terminal's administrator (code 6).
    Admin,
    /// Super administrator, every menu (code 14).
    Superadmin,
}

/// The names, in the order of their codes.
pub const PRIVILEGE_NAMES: [&str; 4] = ["user", "enroller", "admin", "superadmin"];

impl DevicePrivilege {
    /// Every level, lowest first.
    pub const ALL: [Self; 4] = [Self::User, Self::Enroller, Self::Admin, Self::Superadmin];

    /// The name stored and shown (`user`, `enroller`, `admin`, `superadmin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Enroller => "enroller",
            Self::Admin => "admin",
            Self::Superadmin => "superadmin",
        }
    }

    /// The code the terminals keep.
    pub fn code(self) -> u8 {
        match self {
            Self::User => 0,
            Self::Enroller => 2,
            Self::Admin => 6,
            Self::Superadmin => 14,
        }
    }

    /// The level of a name, or of its code written as a number (`"6"`).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        Self::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(text) || p.code().to_string() == text)
    }

    /// The level of a code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }
}

/// Checks a card number as the API and the form take it: digits only, 1 to 4294967295 (the terminals keep a u32).
///
/// # Errors
/// Why it is refused, to be named under the field `card_number`.
pub fn parse_card(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a card number: digits only"));
    }
    match text.parse::<u64>() {
        Ok(n) if (1..=u64::from(u32::MAX)).contains(&n) => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
        _ => Err(format!("{text} is out of range: a card number is 1 to {} (what the terminals keep)", u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_map_both_ways() {
        for p in DevicePrivilege::ALL {
            assert_eq!(DevicePrivilege::parse(p.as_str()), Some(p));
            assert_eq!(DevicePrivilege::from_code(p.code()), Some(p));
        }
        assert_eq!(DevicePrivilege::parse("14"), Some(DevicePrivilege::Superadmin));
        assert_eq!(DevicePrivilege::parse("3"), None);
        assert_eq!(PRIVILEGE_NAMES, DevicePrivilege::ALL.map(DevicePrivilege::as_str));
    }

    #[test]
    fn card_numbers_are_digits_within_a_u32() {
        assert_eq!(parse_card("0004822257"), Ok(4_822_257));
        assert_eq!(parse_card("4294967295"), Ok(u32::MAX));
        for bad in ["", "0", "12a", "-5", "4294967296", "99999999999999999999"] {
            assert!(parse_card(bad).is_err(), "{bad}");
        }
    }
}
