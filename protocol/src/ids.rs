//! Validated identifiers: sites, agents, device serial numbers and employee PINs.
//!
//! Each is a newtype over `String` that can only be built through [`std::str::FromStr`] / `TryFrom<String>`, so a
//! value in hand is always valid: ids are safe to put into MQTT topics and file names, PINs contain no control
//! characters (they end up in tab-separated rows and CSV exports), and every one is bounded in length.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_ID_LEN, MAX_PIN_LEN, MAX_SERIAL_LEN};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} bytes long, over the limit of {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("{what} {value:?} contains {ch:?}, which is not allowed ({allowed})")]
    BadChar { what: &'static str, value: String, ch: char, allowed: &'static str },
}

fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

fn serial_char(c: char) -> bool {
    id_char(c) || c == '.'
}

fn pin_char(c: char) -> bool {
    !c.is_control()
}

/// Checks `value` against a length limit and a character class, naming `what` in the error.
fn check(
    what: &'static str,
    value: &str,
    max: usize,
    allowed_char: fn(char) -> bool,
    allowed: &'static str,
) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > max {
        return Err(IdError::TooLong { what, len: value.len(), max });
    }
    if let Some(ch) = value.chars().find(|c| !allowed_char(*c)) {
        return Err(IdError::BadChar { what, value: value.to_owned(), ch, allowed });
    }
    Ok(())
}

macro_rules! validated_string {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $pred:expr, $allowed:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, IdError> {
                check($what, &value, $max, $pred, $allowed)?;
                Ok(Self(value))
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, IdError> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

validated_string!(
    /// A site (factory, office, construction site): 1-64 of `A-Z a-z 0-9 - _`, safe inside an MQTT topic.
    SiteId, "site id", MAX_ID_LEN, id_char, "letters, digits, '-' and '_'"
);
validated_string!(
    /// An edge agent, unique across all sites: 1-64 of `A-Z a-z 0-9 - _`, also its MQTT client id.
    AgentId, "agent id", MAX_ID_LEN, id_char, "letters, digits, '-' and '_'"
);
validated_string!(
    /// A device's serial number as the device reports it (`~SerialNumber`, the push `SN=`): 1-64 of
    /// `A-Z a-z 0-9 - _ .`.
    DeviceSerial, "device serial", MAX_SERIAL_LEN, serial_char, "letters, digits, '-', '_' and '.'"
);
validated_string!(
    /// An employee's id on the device (numeric or alphanumeric), exactly as the device reports it: 1-32 bytes, no
    /// control characters. No normalisation happens here: `"0012"` and `"12"` are different PINs.
    Pin, "PIN", MAX_PIN_LEN, pin_char, "any character except control characters"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_typical_values() {
        assert_eq!("plant-3_a".parse::<SiteId>().unwrap().as_str(), "plant-3_a");
        assert!("CDQ9192960006".parse::<DeviceSerial>().is_ok());
        assert!("OIN7.030067".parse::<DeviceSerial>().is_ok());
        assert!("4822257".parse::<Pin>().is_ok());
        assert!("EMP 007/b".parse::<Pin>().is_ok());
    }

    #[test]
    fn rejects_topic_breaking_and_control_characters() {
        assert!(matches!("a/b".parse::<SiteId>(), Err(IdError::BadChar { ch: '/', .. })));
        assert!(matches!("a+".parse::<AgentId>(), Err(IdError::BadChar { ch: '+', .. })));
        assert!(matches!("12\t3".parse::<Pin>(), Err(IdError::BadChar { ch: '\t', .. })));
        assert!(matches!("".parse::<Pin>(), Err(IdError::Empty { what: "PIN" })));
        let long = "9".repeat(MAX_PIN_LEN + 1);
        assert!(matches!(long.parse::<Pin>(), Err(IdError::TooLong { len: 33, max: 32, .. })));
    }

    #[test]
    fn error_names_the_field() {
        let err = "a b".parse::<DeviceSerial>().unwrap_err().to_string();
        assert!(err.starts_with("device serial \"a b\" contains ' '"), "{err}");
    }

    #[test]
    fn serde_refuses_invalid_values() {
        let err = serde_json::from_str::<SiteId>("\"a#b\"").unwrap_err().to_string();
        assert!(err.contains("site id"), "{err}");
    }
}
