//! From the `[[device]]` keys of a Modbus terminal to the poller's configuration, with the checks serde cannot do.

use std::time::Duration;

use protocol::SiteId;

use super::poller::{ModbusDeviceConfig, ModbusTarget};
use super::ring::{RegisterKind, RegisterMap};
use crate::config::{DeviceConfig, ModbusSettings};

fn register_map(m: &ModbusSettings) -> Result<RegisterMap, Vec<(&'static str, String)>> {
    let mut wrong = Vec::new();
    let kind = match m.register_kind.as_str() {
        "holding" => RegisterKind::Holding,
        "input" => RegisterKind::Input,
        other => {
            wrong.push(("register_kind", format!("{other:?} is not \"holding\" or \"input\"")));
            RegisterKind::Holding
        }
    };
    if !matches!(m.counter_words, 1 | 2) {
        wrong.push(("counter_words", format!("{} is not 1 or 2", m.counter_words)));
    }
    if !m.ring_slots.is_power_of_two() || m.ring_slots > 4096 {
        wrong.push(("ring_slots", format!("{} is not a power of two up to 4096", m.ring_slots)));
    }
    if m.slot_registers == 0 || m.slot_registers > super::ring::MAX_READ {
        wrong.push(("slot_registers", format!("{} is outside 1..={}", m.slot_registers, super::ring::MAX_READ)));
    }
    let mut fits = |key: &'static str, offset: u16, width: u16| {
        if u32::from(offset) + u32::from(width) > u32::from(m.slot_registers) {
            wrong.push((
                key,
                format!("offset {offset} (+{width} registers) does not fit a slot of {}", m.slot_registers),
            ));
        }
    };
    fits("pin_offset", m.pin_offset, 2);
    fits("time_offset", m.time_offset, 2);
    fits("state_offset", m.state_offset, 1);
    if let Some(offset) = m.verify_offset {
        fits("verify_offset", offset, 1);
    }
    let end = u32::from(m.ring_start) + u32::from(m.ring_slots) * u32::from(m.slot_registers);
    if end > 65_536 {
        wrong.push(("ring_slots", format!("the ring ends at register {end}, past 65535")));
    }
    if !wrong.is_empty() {
        return Err(wrong);
    }
    Ok(RegisterMap {
        kind,
        counter_register: m.counter_register,
        counter_words: m.counter_words,
        ring_start: m.ring_start,
        ring_slots: m.ring_slots,
        slot_registers: m.slot_registers,
        pin_offset: m.pin_offset,
        time_offset: m.time_offset,
        state_offset: m.state_offset,
        verify_offset: m.verify_offset,
    })
}

fn target(m: &ModbusSettings) -> Result<ModbusTarget, Vec<(&'static str, String)>> {
    if m.address.starts_with('/') {
        let (parity, data_bits, stop_bits) =
            crate::serial::settings::line_options(&m.parity, m.data_bits, m.stop_bits)?;
        return Ok(ModbusTarget::Rtu { port: m.address.clone(), baud_rate: m.baud_rate, parity, data_bits, stop_bits });
    }
    m.address
        .parse()
        .map(ModbusTarget::Tcp)
        .map_err(|e| vec![("address", format!("{:?} is neither ip:port ({e}) nor a serial port path", m.address))])
}

/// Everything wrong with the settings.
pub fn check(m: &ModbusSettings) -> Vec<(&'static str, String)> {
    let mut wrong = register_map(m).err().unwrap_or_default();
    wrong.extend(target(m).err().unwrap_or_default());
    if !(100..=60_000).contains(&m.timeout_ms) {
        wrong.push(("timeout_ms", format!("{} is outside 100..=60000", m.timeout_ms)));
    }
    if !(1..=86_400).contains(&m.poll_interval_secs) {
        wrong.push(("poll_interval_secs", format!("{} is outside 1..=86400", m.poll_interval_secs)));
    }
    wrong
}

/// The poller's configuration for a device (whose settings passed [`check`]).
///
/// # Errors
/// The first problem, as text (cannot happen for a validated configuration).
pub fn device_config(site: &SiteId, device: &DeviceConfig, m: &ModbusSettings) -> Result<ModbusDeviceConfig, String> {
    let first = |w: Vec<(&'static str, String)>| w.first().map(|(k, v)| format!("{k}: {v}")).unwrap_or_default();
    Ok(ModbusDeviceConfig {
        site: site.clone(),
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        target: target(m).map_err(first)?,
        unit_id: m.unit_id,
        map: register_map(m).map_err(first)?,
        poll_interval: Duration::from_secs(m.poll_interval_secs),
        timeout: Duration::from_millis(m.timeout_ms),
    })
}
