//! The punch key: one value per physical punch, however many times and by whichever path it is read.
//!
//! # What it covers
//!
//! The key is the first 16 bytes of SHA-256 over
//!
//! ```text
//! "punch-key/v1\n" <device serial> "\n" <PIN> "\n" <local time as YYYY-MM-DDTHH:MM:SS>
//! ```
//!
//! and nothing else. Neither a serial nor a PIN can contain a newline, so the input is unambiguous.
//!
//! Deliberately left out, because they can differ between two reads of the same punch:
//! - the state, verify mode and work code: firmware has been seen to report a different state in the realtime event
//!   than in the stored log, and one person cannot make two punches on one reader within the same second;
//! - the source (`zk-realtime` first, `zk-pull` later for the same record);
//! - the UTC instant and the site and direction: they come from configuration, which may be corrected later;
//! - anything below a second: devices record whole seconds.
//!
//! Consequence: two punches by the same PIN on the same device within the same second are one punch. That is a
//! double tap, which attendance would collapse anyway.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{DeviceSerial, Pin};

/// A 128-bit deduplication key, shown as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PunchKey([u8; 16]);

impl PunchKey {
    /// The key of the punch by `pin` on `device` at wall-clock `local_time` (fractions of a second ignored).
    pub fn of(device: &DeviceSerial, pin: &Pin, local_time: NaiveDateTime) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"punch-key/v1\n");
        hasher.update(device.as_str().as_bytes());
        hasher.update(b"\n");
        hasher.update(pin.as_str().as_bytes());
        hasher.update(b"\n");
        match wall_clock_digits(local_time) {
            Some(digits) => hasher.update(digits),
            None => hasher.update(local_time.format("%Y-%m-%dT%H:%M:%S").to_string().as_bytes()),
        }
        let digest = hasher.finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    /// The raw bytes, for database columns and sled keys.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Rebuilds a key from its raw bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// `local_time` as `YYYY-MM-DDTHH:MM:SS`, the bytes chrono's `%Y-%m-%dT%H:%M:%S` writes, without its format-string
/// interpreter (which costs more than the hash: central computes a key per punch received). `None` for what the
/// fast form does not cover (a year outside 0..=9999, a leap second), which goes through chrono.
fn wall_clock_digits(local_time: NaiveDateTime) -> Option<[u8; 19]> {
    let year = u32::try_from(local_time.year()).ok().filter(|year| *year <= 9999)?;
    if local_time.nanosecond() >= 1_000_000_000 {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            // `value % 10` is below 10, so the digit fits in a byte.
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, local_time.month());
    put(8, 2, local_time.day());
    put(11, 2, local_time.hour());
    put(14, 2, local_time.minute());
    put(17, 2, local_time.second());
    Some(out)
}

impl FromStr for PunchKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut key = [0u8; 16];
        hex::decode_to_slice(s, &mut key).map_err(|e| format!("punch key {s:?} is not 32 hex digits: {e}"))?;
        Ok(Self(key))
    }
}

impl fmt::Display for PunchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PunchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PunchKey({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn t(h: u32, m: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 21).unwrap().and_hms_opt(h, m, s).unwrap()
    }

    #[test]
    fn frozen_value() {
        // Changing this value silently splits every stored punch from its re-reads: never do it within v1.
        let key = PunchKey::of(&"CDQ9192960006".parse().unwrap(), &"1001".parse().unwrap(), t(9, 5, 0));
        assert_eq!(key.to_hex(), "79778a1c8464893afecca25a687148f1");
    }

    #[test]
    fn differs_by_each_covered_field_and_ignores_subseconds() {
        let dev: DeviceSerial = "A1".parse().unwrap();
        let pin: Pin = "7".parse().unwrap();
        let base = PunchKey::of(&dev, &pin, t(9, 0, 0));
        assert_ne!(base, PunchKey::of(&"A2".parse().unwrap(), &pin, t(9, 0, 0)));
        assert_ne!(base, PunchKey::of(&dev, &"07".parse().unwrap(), t(9, 0, 0)));
        assert_ne!(base, PunchKey::of(&dev, &pin, t(9, 0, 1)));
        let with_millis = t(9, 0, 0) + chrono::Duration::milliseconds(400);
        assert_eq!(base, PunchKey::of(&dev, &pin, with_millis));
    }

    #[test]
    fn fast_digits_are_chronos_format() {
        let chrono_form = |t: NaiveDateTime| t.format("%Y-%m-%dT%H:%M:%S").to_string();
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_milli_opt(23, 59, 59, 1_500).unwrap();
        let far = NaiveDate::from_ymd_opt(12_345, 1, 2).unwrap().and_hms_opt(3, 4, 5).unwrap();
        let early = NaiveDate::from_ymd_opt(7, 8, 9).unwrap().and_hms_opt(0, 0, 1).unwrap();
        for time in [t(0, 0, 0), t(23, 59, 59), t(9, 5, 7) + chrono::Duration::milliseconds(999), early] {
            let digits = wall_clock_digits(time).expect("fast form");
            assert_eq!(std::str::from_utf8(&digits).unwrap(), chrono_form(time));
        }
        assert_eq!(wall_clock_digits(leap), None, "a leap second is chrono's to write (:60)");
        assert_eq!(wall_clock_digits(far), None);
        let dev: DeviceSerial = "A1".parse().unwrap();
        let pin: Pin = "7".parse().unwrap();
        assert_ne!(PunchKey::of(&dev, &pin, leap), PunchKey::of(&dev, &pin, t(23, 59, 59)));
    }

    #[test]
    fn hex_round_trip() {
        let key = PunchKey::from_bytes([0xab; 16]);
        assert_eq!(key.to_hex().parse::<PunchKey>().unwrap(), key);
        assert!("zz".parse::<PunchKey>().is_err());
    }
}
