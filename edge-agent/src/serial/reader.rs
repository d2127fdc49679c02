//! The serial port task: open, read lines, append, reconnect.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};
use tokio::io::AsyncReadExt;
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, SerialStream, StopBits};
use tokio_util::sync::CancellationToken;

use super::format::{RecordFormat, MAX_LINE_BYTES};
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::{PunchSink, SinkError};

/// Punches held in memory while the buffer refuses; past this, reading pauses.
const MAX_HELD: usize = 100_000;
/// Malformed lines logged one by one per connection; later ones are counted.
const LOGGED_BAD_LINES: u64 = 20;

/// Everything the reader needs for one port.
#[derive(Debug, Clone)]
pub struct SerialDeviceConfig {
    pub site: SiteId,
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    /// The port path, such as `/dev/ttyUSB0` (a stable `/dev/serial/by-id/...` link survives replugging).
    pub port: String,
    pub baud_rate: u32,
    pub parity: Parity,
    pub data_bits: DataBits,
    pub stop_bits: StopBits,
    pub format: RecordFormat,
    /// Wait between attempts to open a port that is missing or failed.
    pub reconnect: Duration,
}

/// Reads the port until `shutdown`, reconnecting whenever it disappears.
pub async fn run<S: PunchSink>(
    config: SerialDeviceConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    let mut held: Vec<Punch> = Vec::new();
    let mut reported_down = false;
    while !shutdown.is_cancelled() {
        match open(&config) {
            Ok(port) => {
                tracing::info!(device = %config.serial, port = %config.port, "serial port open");
                reported_down = false;
                board.success(&config.serial, Utc::now(), Contact::default());
                let reason = read_port(&config, port, sink.as_ref(), &board, &mut held, &shutdown).await;
                if let Some(reason) = reason {
                    tracing::warn!(device = %config.serial, port = %config.port, reason = %reason, "serial port lost");
                    board.failure(&config.serial, Utc::now(), "device_unreachable", reason);
                }
            }
            Err(e) => {
                if !reported_down {
                    tracing::warn!(device = %config.serial, port = %config.port, error = %e, "cannot open serial port");
                    reported_down = true;
                }
                board.failure(&config.serial, Utc::now(), "device_unreachable", format!("{}: {e}", config.port));
            }
        }
        // Whatever is held is retried while waiting to reconnect.
        flush_held(&config, sink.as_ref(), &board, &mut held).await;
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(config.reconnect) => {}
        }
    }
    if !held.is_empty() {
        tracing::error!(device = %config.serial, held = held.len(), "stopping with punches the buffer refused");
    }
}

fn open(config: &SerialDeviceConfig) -> Result<SerialStream, tokio_serial::Error> {
    tokio_serial::new(&config.port, config.baud_rate)
        .parity(config.parity)
        .data_bits(config.data_bits)
        .stop_bits(config.stop_bits)
        .open_native_async()
}

/// Reads until the port fails (returns why) or `shutdown` (returns `None`).
async fn read_port<S: PunchSink>(
    config: &SerialDeviceConfig,
    mut port: SerialStream,
    sink: &S,
    board: &DeviceStatusBoard,
    held: &mut Vec<Punch>,
    shutdown: &CancellationToken,
) -> Option<String> {
    let mut chunk = [0u8; 1024];
    let mut line = Vec::with_capacity(MAX_LINE_BYTES);
    let mut overlong = false;
    let mut bad_lines = 0u64;
    loop {
        while held.len() >= MAX_HELD && !shutdown.is_cancelled() {
            // Back-pressure: stop reading until the buffer takes punches again.
            flush_held(config, sink, board, held).await;
            if held.len() >= MAX_HELD {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let n = tokio::select! {
            () = shutdown.cancelled() => return None,
            read = port.read(&mut chunk) => match read {
                Ok(0) => return Some("the port was closed (end of file)".into()),
                Ok(n) => n,
                Err(e) => return Some(format!("read failed: {e}")),
            },
        };
        for &byte in &chunk[..n] {
            if byte == b'\n' || byte == b'\r' {
                if overlong {
                    bad_line(config, &mut bad_lines, &format!("line longer than {MAX_LINE_BYTES} bytes"));
                } else if !line.is_empty() {
                    match convert(config, &line) {
                        Ok(punch) => held.push(punch),
                        Err(reason) => bad_line(config, &mut bad_lines, &reason),
                    }
                }
                line.clear();
                overlong = false;
            } else if line.len() < MAX_LINE_BYTES {
                line.push(byte);
            } else {
                overlong = true;
            }
        }
        flush_held(config, sink, board, held).await;
    }
}

fn bad_line(config: &SerialDeviceConfig, count: &mut u64, reason: &str) {
    *count += 1;
    if *count <= LOGGED_BAD_LINES {
        tracing::warn!(device = %config.serial, reason, "serial line skipped");
    } else if *count == LOGGED_BAD_LINES + 1 {
        tracing::warn!(device = %config.serial, "more serial lines skipped; no longer logging each");
    }
}

fn convert(config: &SerialDeviceConfig, raw: &[u8]) -> Result<Punch, String> {
    let text = std::str::from_utf8(raw).map_err(|e| format!("not UTF-8 text ({e})"))?;
    let record = config.format.parse(text.trim())?;
    let pin: Pin = record.pin.parse().map_err(|e| format!("PIN {:?}: {e}", record.pin))?;
    Ok(Punch::from_device(
        config.site.clone(),
        config.serial.clone(),
        pin,
        record.time,
        config.zone,
        PunchState::from_code(record.state),
        VerifyMode::from_code(record.verify),
        0,
        PunchSource::Serial,
        config.direction,
    )
    .with_raw_codes(Some(u32::from(record.state)), Some(u32::from(record.verify))))
}

async fn flush_held<S: PunchSink>(
    config: &SerialDeviceConfig,
    sink: &S,
    board: &DeviceStatusBoard,
    held: &mut Vec<Punch>,
) {
    if held.is_empty() {
        return;
    }
    match sink.append(held.clone()).await {
        Ok(appended) => {
            board.punches_read(&config.serial, appended.new as u64);
            board.success(&config.serial, Utc::now(), Contact::default());
            held.clear();
        }
        Err(e @ (SinkError::Full(_) | SinkError::Storage(_))) => {
            tracing::warn!(device = %config.serial, held = held.len(), error = %e, "buffer refused serial punches");
        }
    }
}
