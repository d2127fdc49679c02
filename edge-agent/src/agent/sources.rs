//! Starting the punch sources for the configured devices.
//!
//! Every device is registered on the status board first, so it shows as unreachable until it is reached. Drivers
//! plug in here, one arm per kind; each gets the buffer as its [`crate::sink::PunchSink`], the board and the shutdown
//! token. ZKTeco devices (`kind = "zk"`) are polled by [`crate::zk::poller`], serial lines read by
//! [`crate::serial`], Modbus terminals polled by [`crate::modbus`], Hikvision and Dahua terminals read by
//! [`crate::hikvision`] and [`crate::dahua`], vendor databases (`kind = "sql"`) read by [`crate::sql`].
//!
//! Push (ADMS) devices share one HTTP receiver on `adms.listen`, started when at least one is configured; it announces
//! itself on stdout as `edge-agent adms listening on http://<addr>` (after the agent's own announcement).

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::adms::{AdmsDevice, AdmsOptions, AdmsReceiver, CommandQueue};
use crate::buffer::Buffer;
use crate::config::{Config, DeviceConfig, DeviceSettings, ZkSettings};
use crate::device_status::DeviceStatusBoard;
use crate::zk::{poller, TransportKind, ZkDeviceConfig};

/// Starts a task per device that has a driver (one receiver for all push devices); returns their handles.
///
/// # Errors
/// When the push receiver's address cannot be bound.
pub async fn start_sources(
    config: &Config,
    buffer: &Buffer,
    board: &DeviceStatusBoard,
    push_commands: &Arc<CommandQueue>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::new();
    let mut push_devices = Vec::new();
    for device in &config.devices {
        board.register(&device.serial);
        match &device.settings {
            DeviceSettings::Adms(settings) => push_devices.push(AdmsDevice {
                serial: device.serial.clone(),
                zone: device.time_zone,
                direction: device.direction,
                allow_from: settings
                    .allowed_networks()
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {} allow_from", device.serial))?,
            }),
            DeviceSettings::Serial(settings) => {
                let reader = crate::serial::settings::device_config(&config.agent.site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {}", device.serial))?;
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(crate::serial::run(reader, sink, board.clone(), shutdown.clone())));
            }
            DeviceSettings::Modbus(settings) => {
                let poller = crate::modbus::settings::device_config(&config.agent.site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {}", device.serial))?;
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(crate::modbus::run(poller, sink, board.clone(), shutdown.clone())));
            }
            DeviceSettings::Hikvision(settings) => {
                let (terminal, session) = crate::hikvision::build(&config.agent.site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {}", device.serial))?;
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(crate::hikvision::run(
                    terminal,
                    session,
                    sink,
                    board.clone(),
                    shutdown.clone(),
                )));
            }
            DeviceSettings::Dahua(settings) => {
                let (terminal, session) = crate::dahua::build(&config.agent.site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {}", device.serial))?;
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(crate::dahua::run(terminal, session, sink, board.clone(), shutdown.clone())));
            }
            DeviceSettings::Sql(settings) => {
                let source = crate::sql::build(&config.agent.site, device, settings)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("device {}", device.serial))?;
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(crate::sql::run(source, sink, board.clone(), shutdown.clone())));
            }
            DeviceSettings::Zk(settings) => {
                let zk = zk_config(device, settings);
                let sink = Arc::new(buffer.clone());
                handles.push(tokio::spawn(poller::run(
                    config.agent.site.clone(),
                    zk,
                    sink,
                    board.clone(),
                    shutdown.clone(),
                )));
            }
        }
    }
    if !push_devices.is_empty() {
        let adms = &config.adms;
        let listener = TcpListener::bind(adms.listen)
            .await
            .with_context(|| format!("binding the push receiver address {} (adms.listen)", adms.listen))?;
        let address = listener.local_addr()?;
        let receiver = Arc::new(AdmsReceiver::new(
            Arc::new(buffer.clone()),
            board.clone(),
            AdmsOptions {
                site: config.agent.site.clone(),
                devices: push_devices,
                max_body_bytes: adms.max_body_bytes,
                unknown_log_interval: adms.unknown_log_interval,
                poll_delay_secs: adms.poll_delay_secs,
                error_delay_secs: adms.error_delay_secs,
            },
            push_commands.clone(),
        ));
        let stop = shutdown.clone();
        handles.push(tokio::spawn(async move {
            if let Err(e) = crate::adms::server::serve(listener, receiver, stop).await {
                tracing::error!(error = %e, "push receiver stopped");
            }
        }));
        println!("edge-agent adms listening on http://{address}");
    }
    Ok(handles)
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
    if let Some(strict) = settings.strict_checksum {
        config.strict_checksum = strict;
    }
    if let Some(max) = settings.max_clock_drift_secs {
        config.max_clock_drift_secs = max;
    }
    config
}
