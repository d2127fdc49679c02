//! From the `[[device]]` keys of a serial terminal to the reader's configuration, with the checks serde cannot do.

use std::time::Duration;

use protocol::SiteId;
use tokio_serial::{DataBits, Parity, StopBits};

use super::format::{Layout, RecordFormat};
use super::reader::SerialDeviceConfig;
use crate::config::{DeviceConfig, SerialSettings};

/// Problems with settings, as `(key, message)`.
pub type KeyProblems = Vec<(&'static str, String)>;

/// Parity, data bits and stop bits from their configuration values.
///
/// # Errors
/// Every value that is wrong, by key.
pub fn line_options(parity: &str, data_bits: u8, stop_bits: u8) -> Result<(Parity, DataBits, StopBits), KeyProblems> {
    let mut wrong = Vec::new();
    let parity = match parity.to_ascii_lowercase().as_str() {
        "none" => Some(Parity::None),
        "even" => Some(Parity::Even),
        "odd" => Some(Parity::Odd),
        other => {
            wrong.push(("parity", format!("{other:?} is not \"none\", \"even\" or \"odd\"")));
            None
        }
    };
    let data = match data_bits {
        5 => Some(DataBits::Five),
        6 => Some(DataBits::Six),
        7 => Some(DataBits::Seven),
        8 => Some(DataBits::Eight),
        other => {
            wrong.push(("data_bits", format!("{other} is not 5, 6, 7 or 8")));
            None
        }
    };
    let stop = match stop_bits {
        1 => Some(StopBits::One),
        2 => Some(StopBits::Two),
        other => {
            wrong.push(("stop_bits", format!("{other} is not 1 or 2")));
            None
        }
    };
    match (parity, data, stop) {
        (Some(p), Some(d), Some(s)) => Ok((p, d, s)),
        _ => Err(wrong),
    }
}

/// The line format from `delimiter` + field positions or `pattern`.
///
/// # Errors
/// `(key, message)` naming the key that is wrong.
pub fn record_format(s: &SerialSettings) -> Result<RecordFormat, (&'static str, String)> {
    if s.time_format.is_empty() {
        return Err(("time_format", "must not be empty".into()));
    }
    match (&s.delimiter, &s.pattern) {
        (Some(_), Some(_)) => Err(("pattern", "give either pattern or delimiter, not both".into())),
        (None, None) => Err(("delimiter", "give delimiter with pin_field and time_field, or pattern".into())),
        (None, Some(pattern)) => {
            if s.pin_field.or(s.time_field).or(s.state_field).or(s.verify_field).is_some() {
                return Err(("pattern", "field positions are for delimiter, not pattern".into()));
            }
            RecordFormat::pattern(pattern, &s.time_format).map_err(|e| ("pattern", e))
        }
        (Some(delimiter), None) => {
            let text = if delimiter == "\\t" { "\t" } else { delimiter.as_str() };
            let mut chars = text.chars();
            let (Some(delimiter), None) = (chars.next(), chars.next()) else {
                return Err(("delimiter", format!("{text:?} is not one character")));
            };
            let pin = s.pin_field.ok_or(("pin_field", "needed with delimiter".to_owned()))?;
            let time = s.time_field.ok_or(("time_field", "needed with delimiter".to_owned()))?;
            if pin == time {
                return Err(("time_field", "is the same position as pin_field".into()));
            }
            Ok(RecordFormat {
                layout: Layout::Delimited { delimiter, pin, time, state: s.state_field, verify: s.verify_field },
                time_format: s.time_format.clone(),
            })
        }
    }
}

/// Everything wrong with the settings.
pub fn check(s: &SerialSettings) -> Vec<(&'static str, String)> {
    let mut wrong = line_options(&s.parity, s.data_bits, s.stop_bits).err().unwrap_or_default();
    if let Err(problem) = record_format(s) {
        wrong.push(problem);
    }
    if s.baud_rate == 0 || s.baud_rate > 4_000_000 {
        wrong.push(("baud_rate", format!("{} is outside 1..=4000000", s.baud_rate)));
    }
    if s.reconnect_secs == 0 || s.reconnect_secs > 3600 {
        wrong.push(("reconnect_secs", format!("{} is outside 1..=3600", s.reconnect_secs)));
    }
    if s.port.is_empty() {
        wrong.push(("port", "must not be empty".into()));
    }
    wrong
}

/// The reader's configuration for a device (whose settings passed [`check`]).
///
/// # Errors
/// The first problem, as text (cannot happen for a validated configuration).
pub fn device_config(site: &SiteId, device: &DeviceConfig, s: &SerialSettings) -> Result<SerialDeviceConfig, String> {
    let (parity, data_bits, stop_bits) =
        line_options(&s.parity, s.data_bits, s.stop_bits).map_err(|w| format!("{}: {}", w[0].0, w[0].1))?;
    let format = record_format(s).map_err(|(k, m)| format!("{k}: {m}"))?;
    Ok(SerialDeviceConfig {
        site: site.clone(),
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        port: s.port.clone(),
        baud_rate: s.baud_rate,
        parity,
        data_bits,
        stop_bits,
        format,
        reconnect: Duration::from_millis(s.reconnect_secs.saturating_mul(1000)),
    })
}
