//! The punch: one employee presenting a finger, card, face or PIN at one device at one moment.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceSerial, Pin, SiteId};
use crate::key::PunchKey;
use crate::time::{local_to_utc, truncate_to_second};

/// One punch as read from a device, with everything the central service needs to store and interpret it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Punch {
    /// The site the device belongs to.
    pub site: SiteId,
    /// The device's serial number.
    pub device: DeviceSerial,
    /// The employee's id on the device.
    pub pin: Pin,
    /// Wall-clock time on the device, in its configured zone, whole seconds. Attendance is computed on this.
    #[serde(with = "crate::time::wire_local")]
    pub local_time: NaiveDateTime,
    /// The same moment in UTC, derived from `local_time` and the device's zone by [`crate::time::local_to_utc`].
    #[serde(with = "crate::time::wire_utc")]
    pub utc_time: DateTime<Utc>,
    /// The in/out state the employee chose (or the device assigned).
    pub state: PunchState,
    /// How the employee was verified.
    pub verify: VerifyMode,
    /// The work code entered with the punch, 0 when none.
    pub work_code: u32,
    /// Which path brought the punch to the agent.
    pub source: PunchSource,
    /// What the site configured the device to mean.
    pub direction: Direction,
    /// The state code exactly as the device sent it (before any mapping to [`PunchState`]), when the source has one.
    /// Since protocol version 2.
    #[serde(default)]
    pub raw_state: Option<u32>,
    /// The verification code exactly as the device sent it (before any mapping to [`VerifyMode`]), when the source
    /// has one: ZKTeco's 4 (card on push firmware) is kept here while `verify` says `card`. Since protocol version 2.
    #[serde(default)]
    pub raw_verify: Option<u32>,
}

impl Punch {
    /// Builds a punch from a device reading, deriving the UTC instant from the device's zone.
    #[allow(clippy::too_many_arguments)]
    pub fn from_device(
        site: SiteId,
        device: DeviceSerial,
        pin: Pin,
        local_time: NaiveDateTime,
        zone: Tz,
        state: PunchState,
        verify: VerifyMode,
        work_code: u32,
        source: PunchSource,
        direction: Direction,
    ) -> Self {
        let local_time = truncate_to_second(local_time);
        Self {
            site,
            device,
            pin,
            local_time,
            utc_time: local_to_utc(local_time, zone),
            state,
            verify,
            work_code,
            source,
            direction,
            raw_state: None,
            raw_verify: None,
        }
    }

    /// The same punch carrying the device's raw state and verification codes.
    #[must_use]
    pub fn with_raw_codes(mut self, raw_state: Option<u32>, raw_verify: Option<u32>) -> Self {
        self.raw_state = raw_state;
        self.raw_verify = raw_verify;
        self
    }

    /// The punch's deduplication key; see [`PunchKey`] for exactly what it covers.
    pub fn key(&self) -> PunchKey {
        PunchKey::of(&self.device, &self.pin, self.local_time)
    }
}

/// Declares an enum of named device codes plus a catch-all that keeps any other code.
///
/// On the wire the value is its numeric code in bincode (one byte) and its name in JSON (`"check_in"`, or
/// `"unknown(7)"` / `"other(7)"` for the catch-all). [`from_code`] is the only constructor from a number, so a known
/// code never hides inside the catch-all and every value has exactly one encoding.
macro_rules! device_code_enum {
    (
        $(#[$doc:meta])* $name:ident, catch_all = $other:ident($other_name:literal),
        { $($(#[$vdoc:meta])* $variant:ident = $code:literal as $text:literal),+ $(,)? }
        $(aliases { $($alias:literal => $alias_variant:ident),* })?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// Any other code, kept as the device sent it.
            $other(u8),
        }

        impl $name {
            /// The value for a device code; codes without a name become the catch-all.
            pub fn from_code(code: u8) -> Self {
                match code {
                    $($code => Self::$variant,)+
                    $($($alias => Self::$alias_variant,)*)?
                    other => Self::$other(other),
                }
            }

            /// The device code (the canonical one where several codes share a name).
            pub fn code(self) -> u8 {
                match self {
                    $(Self::$variant => $code,)+
                    Self::$other(code) => code,
                }
            }

            /// The name used in JSON and in the API.
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(Self::$variant => std::borrow::Cow::Borrowed($text),)+
                    Self::$other(code) => std::borrow::Cow::Owned(format!(concat!($other_name, "({})"), code)),
                }
            }

            /// Parses a name produced by [`Self::name`].
            pub fn from_name(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => text
                        .strip_prefix(concat!($other_name, "("))
                        .and_then(|rest| rest.strip_suffix(')'))
                        .and_then(|n| n.parse::<u8>().ok())
                        .map(Self::from_code),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&self.name())
                } else {
                    s.serialize_u8(self.code())
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    Self::from_name(&text).ok_or_else(|| {
                        serde::de::Error::custom(format!(concat!("unknown ", stringify!($name), " {:?}"), text))
                    })
                } else {
                    u8::deserialize(d).map(Self::from_code)
                }
            }
        }
    };
}

device_code_enum!(
    /// The in/out state recorded with a punch (ZKTeco "punch"/"status" field).
    PunchState, catch_all = Unknown("unknown"),
    {
        CheckIn = 0 as "check_in",
        CheckOut = 1 as "check_out",
        BreakOut = 2 as "break_out",
        BreakIn = 3 as "break_in",
        OvertimeIn = 4 as "ot_in",
        OvertimeOut = 5 as "ot_out",
    }
);

device_code_enum!(
    /// How the employee was verified, in the binary protocol's numbering. Push devices use 3 for password and 4 for
    /// card as well; those map to the same names, so the code returned by [`VerifyMode::code`] is the binary one.
    VerifyMode, catch_all = Other("other"),
    {
        Password = 0 as "password",
        Fingerprint = 1 as "fingerprint",
        Card = 2 as "card",
        Face = 15 as "face",
        Palm = 25 as "palm",
    }
    aliases { 3 => Password, 4 => Card }
);

/// The path by which a punch reached the agent (or the central service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PunchSource {
    /// Bulk read of the device log over the ZKTeco binary protocol.
    ZkPull,
    /// A realtime event over the ZKTeco binary protocol.
    ZkRealtime,
    /// Pushed by the device over ZKTeco PUSH / ADMS.
    AdmsPush,
    /// Read from a serial (RS-232/485) line.
    Serial,
    /// Read from a Modbus terminal.
    Modbus,
    /// Read from a vendor's SQL database.
    Sql,
    /// Entered by an administrator.
    Manual,
    /// Read from a Hikvision access-control terminal over ISAPI. Since protocol version 2.
    Hikvision,
    /// Read from a Dahua access-control terminal over its HTTP API. Since protocol version 2.
    Dahua,
}

impl PunchSource {
    /// The name used in JSON, the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ZkPull => "zk-pull",
            Self::ZkRealtime => "zk-realtime",
            Self::AdmsPush => "adms-push",
            Self::Serial => "serial",
            Self::Modbus => "modbus",
            Self::Sql => "sql",
            Self::Manual => "manual",
            Self::Hikvision => "hikvision",
            Self::Dahua => "dahua",
        }
    }
}

/// What the site configured a device to mean: an entry reader, an exit reader, or both (the state decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Direction {
    In,
    Out,
    #[default]
    Both,
}

impl Direction {
    /// `IN`, `OUT` or `BOTH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "IN",
            Self::Out => "OUT",
            Self::Both => "BOTH",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_are_kept_not_dropped() {
        assert_eq!(PunchState::from_code(9), PunchState::Unknown(9));
        assert_eq!(PunchState::from_code(9).code(), 9);
        assert_eq!(PunchState::from_code(255).name(), "unknown(255)");
        assert_eq!(VerifyMode::from_code(200), VerifyMode::Other(200));
    }

    #[test]
    fn known_codes_never_hide_in_the_catch_all() {
        assert_eq!(PunchState::from_name("unknown(1)"), Some(PunchState::CheckOut));
        assert_eq!(VerifyMode::from_code(3), VerifyMode::Password);
        assert_eq!(VerifyMode::from_code(4), VerifyMode::Card);
        assert_eq!(VerifyMode::from_code(15), VerifyMode::Face);
    }

    #[test]
    fn names_round_trip_for_every_code() {
        for code in 0..=255u8 {
            let state = PunchState::from_code(code);
            assert_eq!(PunchState::from_name(&state.name()), Some(state));
            let verify = VerifyMode::from_code(code);
            assert_eq!(VerifyMode::from_name(&verify.name()), Some(verify));
        }
        assert_eq!(PunchState::from_name("checkin"), None);
        assert_eq!(PunchState::from_name("unknown(256)"), None);
    }

    #[test]
    fn json_uses_names() {
        assert_eq!(serde_json::to_string(&PunchState::OvertimeIn).unwrap(), "\"ot_in\"");
        assert_eq!(serde_json::to_string(&PunchSource::AdmsPush).unwrap(), "\"adms-push\"");
        assert_eq!(serde_json::to_string(&Direction::Both).unwrap(), "\"BOTH\"");
        let err = serde_json::from_str::<PunchState>("\"sideways\"").unwrap_err().to_string();
        assert!(err.contains("unknown PunchState \"sideways\""), "{err}");
    }
}
