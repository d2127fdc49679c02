//! Starting the punch sources for the configured devices.
//!
//! Every device is registered on the status board first, so it shows as unreachable until it is reached. Drivers
//! plug in here, one arm per kind; each gets the buffer as its [`crate::sink::PunchSink`], the board and the shutdown
//! token. This build has no driver yet for any kind: such devices are reported (log and a `no_driver` device fault)
//! instead of silently ignored.

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::config::{DeviceConfig, DeviceSettings};
use crate::device_status::DeviceStatusBoard;

/// Starts a task per device that has a driver; returns their handles.
pub fn start_sources(
    devices: &[DeviceConfig],
    _buffer: &Buffer,
    board: &DeviceStatusBoard,
    _shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let handles = Vec::new();
    for device in devices {
        board.register(&device.serial);
        match &device.settings {
            // The ZKTeco poller (edge-agent/src/zk/) starts here once merged; likewise the ADMS receiver, the serial
            // reader and the Modbus poller.
            DeviceSettings::Zk(_) | DeviceSettings::Adms(_) | DeviceSettings::Serial(_) | DeviceSettings::Modbus(_) => {
                let kind = device.settings.kind();
                tracing::warn!(device = %device.serial, kind, "no driver for this device kind in this build");
                board.fault(
                    &device.serial,
                    Utc::now(),
                    "no_driver",
                    format!("this agent build has no {kind} driver; the device is not read"),
                );
            }
        }
    }
    handles
}
