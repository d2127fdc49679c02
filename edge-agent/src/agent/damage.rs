//! What the agent does when its buffer was found damaged at start (see `buffer::startup`): ask every source that
//! can resend to do so, and say in the `buffer_damaged` fault which ones cannot.
//!
//! - ZKTeco binary-protocol devices: nothing to reset; each poller reads the device's whole log on its first
//!   session, and the fresh buffer's empty dedup index stores every record again.
//! - Push (ADMS) devices: their stamps are set back to 0, so the next handshake asks for the whole log, and a
//!   re-upload of everything is queued for their next command poll.
//! - Modbus terminals: the counter cursor is forgotten, so the next poll reads the whole ring; events the ring
//!   already overwrote are gone.
//! - Serial terminals print each punch once: what the buffer lost from them cannot be read again.
//!
//! Central's deduplication absorbs every repeat.

use chrono::{NaiveDate, Utc};

use crate::adms::receiver::stamp_cursor;
use crate::adms::{AdmsCommand, CommandQueue};
use crate::buffer::Buffer;
use crate::config::DeviceConfig;
use crate::faults::{self, Faults};

/// Asks the devices to resend and raises the full fault; does nothing for an intact buffer.
pub async fn recover(devices: &[DeviceConfig], buffer: &Buffer, faults: &Faults, push_commands: &CommandQueue) {
    let Some(damage) = buffer.damage() else { return };
    let mut reread = Vec::new();
    let mut rewound = Vec::new();
    let mut ring = Vec::new();
    let mut lost = Vec::new();
    for device in devices {
        let serial = &device.serial;
        let done = match device.settings.kind() {
            "zk" => {
                reread.push(serial.to_string());
                Ok(())
            }
            "adms" => {
                rewound.push(serial.to_string());
                let mut result = Ok(());
                for table in ["ATTLOG", "OPERLOG"] {
                    if let Err(e) = buffer.put_cursor(serial, &stamp_cursor(table), 0u64.to_be_bytes().to_vec()).await {
                        result = Err(e);
                    }
                }
                let from = NaiveDate::from_ymd_opt(2000, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
                let until = (Utc::now() + chrono::Duration::days(2)).naive_utc();
                if let Some(from) = from {
                    if let Err(e) = push_commands.enqueue(serial, AdmsCommand::ReuploadSince { from, until }) {
                        tracing::warn!(device = %serial, error = %e, "cannot queue the re-upload after damage");
                    }
                }
                result
            }
            "modbus" => {
                ring.push(serial.to_string());
                buffer.remove_cursor(serial, crate::modbus::poller::COUNTER_CURSOR).await
            }
            _ => {
                lost.push(serial.to_string());
                Ok(())
            }
        };
        if let Err(e) = done {
            tracing::error!(device = %serial, error = %e, "cannot reset the device's cursor after damage");
        }
    }
    let list = |names: &[String]| if names.is_empty() { "none".to_owned() } else { names.join(", ") };
    let message = format!(
        "{}. Recovery: ZKTeco devices re-read in full: {}; push devices asked to resend everything: {}; Modbus \
         devices re-read as far as their ring holds: {}; CANNOT RESEND (punches lost from them stay lost): {}",
        faults
            .snapshot()
            .into_iter()
            .find(|f| f.code == faults::BUFFER_DAMAGED)
            .map_or_else(|| damage.reason.clone(), |f| f.message),
        list(&reread),
        list(&rewound),
        list(&ring),
        list(&lost),
    );
    tracing::error!(%message, "buffer damaged");
    faults.raise(faults::BUFFER_DAMAGED, message, Utc::now());
}
