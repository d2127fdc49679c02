//! Starting the punch sources for the configured devices.
//!
//! Every device is registered on the status board first, so it shows as unreachable until it is reached. Drivers
//! plug in here, one arm per kind; each gets the buffer as its [`crate::sink::PunchSink`], the board and the shutdown
//! token. ZKTeco devices (`kind = "zk"`) are polled by [`crate::zk::poller`]; kinds without a driver in this build
//! are reported (log and a `no_driver` device fault) instead of silently ignored.

use std::sync::Arc;

use chrono::Utc;
use protocol::SiteId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::buffer::Buffer;
use crate::config::{DeviceConfig, DeviceSettings, ZkSettings};
use crate::device_status::DeviceStatusBoard;
use crate::zk::{poller, TransportKind, ZkDeviceConfig};

/// Starts a task per device that has a driver; returns their handles.
pub fn start_sources(
    site: &SiteId,
    devices: &[DeviceConfig],
    buffer: &Buffer,
    board: &DeviceStatusBoard,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    let sink = Arc::new(buffer.clone());
    for device in devices {
        board.register(&device.serial);
        match &device.settings {
            DeviceSettings::Zk(settings) => {
                let config = zk_config(device, settings);
                handles.push(tokio::spawn(poller::run(
                    site.clone(),
                    config,
                    sink.clone(),
                    board.clone(),
                    shutdown.clone(),
                )));
            }
            // The ADMS receiver, the serial reader and the Modbus poller start here once merged.
            DeviceSettings::Adms(_) | DeviceSettings::Serial(_) | DeviceSettings::Modbus(_) => {
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

/// The poller's settings for a `[[device]]` of kind `zk`. The configured serial is the expected one: a device
/// answering with another serial at that address is refused rather than filed under the wrong name.
fn zk_config(device: &DeviceConfig, settings: &ZkSettings) -> ZkDeviceConfig {
    let mut config = ZkDeviceConfig::new(settings.host.clone(), device.time_zone);
    config.port = settings.port;
    config.comm_key = settings.comm_key;
    config.poll_interval_secs = settings.poll_interval_secs.max(1);
    config.transport =
        if settings.protocol.as_deref() == Some("udp") { TransportKind::Udp } else { TransportKind::Tcp };
    config.direction = device.direction;
    config.expected_serial = Some(device.serial.clone());
    config
}
