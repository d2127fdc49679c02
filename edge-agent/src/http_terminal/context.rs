//! Turning a device reading into a [`Punch`]: the device's site, serial, zone and direction, and the time rules
//! (an instant is placed on the configured zone's wall clock; a wall-clock time is taken as it is).

use chrono::{DateTime, NaiveDateTime, Utc};
use chrono_tz::Tz;
use protocol::time::local_to_utc;
use protocol::{DeviceSerial, Direction, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};
use serde_json::Value;

/// A device time as the device wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceTime {
    /// An instant (a time with an offset, or an epoch).
    Instant(DateTime<Utc>),
    /// A wall-clock time without an offset, in the device's zone.
    Local(NaiveDateTime),
}

impl DeviceTime {
    /// The wall-clock time in `zone` and the UTC instant.
    pub fn resolve(self, zone: Tz) -> (NaiveDateTime, DateTime<Utc>) {
        match self {
            Self::Instant(at) => (at.with_timezone(&zone).naive_local(), at),
            Self::Local(local) => (local, local_to_utc(local, zone)),
        }
    }
}

/// Where a device's punches belong.
#[derive(Debug, Clone)]
pub struct EventContext {
    pub site: SiteId,
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    pub source: PunchSource,
}

/// A successful authentication, before it becomes a punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub pin: String,
    pub time: DeviceTime,
    pub state: PunchState,
    pub verify: VerifyMode,
    pub raw_state: Option<u32>,
    pub raw_verify: Option<u32>,
}

impl EventContext {
    /// The punch of an authentication, or why it cannot be one (a PIN the protocol refuses).
    ///
    /// # Errors
    /// A reason naming the PIN.
    pub fn punch(&self, auth: &Authentication) -> Result<Punch, String> {
        let pin: Pin = auth.pin.parse().map_err(|e| format!("employee {:?}: {e}", auth.pin))?;
        let (local, _) = auth.time.resolve(self.zone);
        let punch = Punch::from_device(
            self.site.clone(),
            self.serial.clone(),
            pin,
            local,
            self.zone,
            auth.state,
            auth.verify,
            0,
            self.source,
            self.direction,
        );
        Ok(punch.with_raw_codes(auth.raw_state, auth.raw_verify))
    }
}

/// A non-negative integer given as a JSON number or a numeric string.
pub fn uint(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty string given as a JSON string or number, trimmed, at most `max` bytes (longer is refused).
pub fn text(value: Option<&Value>, max: usize) -> Option<String> {
    let s = match value? {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty() && s.len() <= max).then_some(s)
}
