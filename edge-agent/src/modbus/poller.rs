//! The Modbus poller: one task per device. Connect, then every `poll_interval`: read the counter, read the new
//! events' slots, append them, store the counter. Every Modbus call (and the connect) is under `timeout`; a failed
//! call drops the connection, marks the device unreachable and reconnects at the next poll.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use protocol::{DeviceSerial, Direction, Pin, Punch, PunchSource, PunchState, SiteId, VerifyMode};
use tokio_modbus::client::{Context, Reader};
use tokio_modbus::Slave;
use tokio_serial::{DataBits, Parity, SerialPortBuilderExt, StopBits};
use tokio_util::sync::CancellationToken;

use super::ring::{RegisterKind, RegisterMap};
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::PunchSink;

/// The cursor holding the last counter value whose events are stored.
pub const COUNTER_CURSOR: &str = "modbus.counter";
/// The device fault raised when events were overwritten in the ring before they were read.
pub const OVERRUN_FAULT: &str = "events_overrun";
/// How long an overrun stays raised after it happened.
const OVERRUN_VISIBLE: Duration = Duration::from_secs(600);

/// Where the device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModbusTarget {
    Tcp(SocketAddr),
    Rtu { port: String, baud_rate: u32, parity: Parity, data_bits: DataBits, stop_bits: StopBits },
}

/// Everything the poller needs for one device.
#[derive(Debug, Clone)]
pub struct ModbusDeviceConfig {
    pub site: SiteId,
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub direction: Direction,
    pub target: ModbusTarget,
    pub unit_id: u8,
    pub map: RegisterMap,
    pub poll_interval: Duration,
    pub timeout: Duration,
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("{what}: {reason}")]
    Modbus { what: &'static str, reason: String },
    #[error("buffer: {0}")]
    Sink(#[from] crate::sink::SinkError),
}

/// Polls the device until `shutdown`.
pub async fn run<S: PunchSink>(
    config: ModbusDeviceConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    let mut context: Option<Context> = None;
    let mut overrun: Option<(Instant, String)> = None;
    loop {
        if context.is_none() {
            match connect(&config).await {
                Ok(ctx) => {
                    tracing::info!(device = %config.serial, target = ?config.target, "modbus connected");
                    context = Some(ctx);
                }
                Err(e) => {
                    tracing::warn!(device = %config.serial, error = %e, "modbus connect failed");
                    board.failure(&config.serial, Utc::now(), "device_unreachable", e.to_string());
                }
            }
        }
        if let Some(ctx) = context.as_mut() {
            match poll(&config, ctx, sink.as_ref(), &board, &mut overrun).await {
                Ok(()) => {
                    // A success clears the device's faults; a recent overrun stays visible for a while.
                    match &overrun {
                        Some((at, message)) if at.elapsed() < OVERRUN_VISIBLE => {
                            board.fault(&config.serial, Utc::now(), OVERRUN_FAULT, message.clone());
                        }
                        _ => overrun = None,
                    }
                }
                Err(PollError::Sink(e)) => {
                    tracing::warn!(device = %config.serial, error = %e, "buffer refused modbus events; retrying later");
                }
                Err(e) => {
                    tracing::warn!(device = %config.serial, error = %e, "modbus poll failed; reconnecting");
                    board.failure(&config.serial, Utc::now(), "device_unreachable", e.to_string());
                    context = None;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(config.poll_interval) => {}
        }
    }
}

async fn connect(config: &ModbusDeviceConfig) -> Result<Context, PollError> {
    let slave = Slave(config.unit_id);
    let attempt = async {
        match &config.target {
            ModbusTarget::Tcp(address) => tokio_modbus::client::tcp::connect_slave(*address, slave).await,
            ModbusTarget::Rtu { port, baud_rate, parity, data_bits, stop_bits } => {
                let stream = tokio_serial::new(port, *baud_rate)
                    .parity(*parity)
                    .data_bits(*data_bits)
                    .stop_bits(*stop_bits)
                    .open_native_async()?;
                Ok(tokio_modbus::client::rtu::attach_slave(stream, slave))
            }
        }
    };
    tokio::time::timeout(config.timeout, attempt)
        .await
        .map_err(|_| PollError::Timeout("connect"))?
        .map_err(|e| PollError::Modbus { what: "connect", reason: e.to_string() })
}

async fn read(
    config: &ModbusDeviceConfig,
    ctx: &mut Context,
    what: &'static str,
    address: u16,
    quantity: u16,
) -> Result<Vec<u16>, PollError> {
    let call = async {
        match config.map.kind {
            RegisterKind::Holding => ctx.read_holding_registers(address, quantity).await,
            RegisterKind::Input => ctx.read_input_registers(address, quantity).await,
        }
    };
    let words = tokio::time::timeout(config.timeout, call)
        .await
        .map_err(|_| PollError::Timeout(what))?
        .map_err(|e| PollError::Modbus { what, reason: e.to_string() })?
        .map_err(|e| PollError::Modbus { what, reason: format!("exception {e}") })?;
    if words.len() != usize::from(quantity) {
        return Err(PollError::Modbus { what, reason: format!("{} registers for {quantity} asked", words.len()) });
    }
    Ok(words)
}

async fn poll<S: PunchSink>(
    config: &ModbusDeviceConfig,
    ctx: &mut Context,
    sink: &S,
    board: &DeviceStatusBoard,
    overrun: &mut Option<(Instant, String)>,
) -> Result<(), PollError> {
    let map = &config.map;
    let words = read(config, ctx, "reading the counter", map.counter_register, u16::from(map.counter_words)).await?;
    let now = map.counter(&words).unwrap_or(0);
    let contact = Contact { record_count: u32::try_from(now).ok(), ..Contact::default() };
    if !sink.accepting() {
        board.success(&config.serial, Utc::now(), contact);
        return Ok(());
    }
    let last = sink
        .cursor(&config.serial, COUNTER_CURSOR)
        .await?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map(u64::from_be_bytes);
    let plan = map.plan(last, now);
    if plan.count == 0 {
        board.success(&config.serial, Utc::now(), contact);
        return Ok(());
    }
    if plan.lost > 0 {
        tracing::warn!(device = %config.serial, lost = plan.lost, "events were overwritten before they were read");
        *overrun = Some((
            Instant::now(),
            format!("{} events were overwritten in the device's ring before they were read", plan.lost),
        ));
    }
    let mut registers = Vec::new();
    for (address, quantity) in map.reads(&plan) {
        registers.extend(read(config, ctx, "reading events", address, quantity).await?);
    }
    let mut punches = Vec::new();
    for (index, slot) in registers.chunks(usize::from(map.slot_registers)).enumerate() {
        match convert(config, slot) {
            Ok(Some(punch)) => punches.push(punch),
            // A slot never written (a ring not yet full on first contact).
            Ok(None) => tracing::debug!(device = %config.serial, event = plan.first + index as u64, "empty slot"),
            Err(reason) => {
                tracing::warn!(device = %config.serial, event = plan.first + index as u64, reason, "modbus event skipped");
            }
        }
    }
    let appended = sink.append(punches).await?;
    sink.set_cursor(&config.serial, COUNTER_CURSOR, (now % map.modulus()).to_be_bytes().to_vec()).await?;
    board.punches_read(&config.serial, appended.new as u64);
    board.success(&config.serial, Utc::now(), contact);
    tracing::debug!(device = %config.serial, counter = now, read = plan.count, new = appended.new, "modbus events stored");
    Ok(())
}

/// The slot's punch; `None` for an empty slot (all registers 0).
fn convert(config: &ModbusDeviceConfig, slot: &[u16]) -> Result<Option<Punch>, String> {
    if slot.iter().all(|w| *w == 0) {
        return Ok(None);
    }
    let event = config.map.decode(slot).ok_or("slot shorter than the register map")?;
    if event.pin == 0 {
        return Err("PIN 0".into());
    }
    let time = DateTime::from_timestamp(i64::from(event.time), 0)
        .filter(|_| event.time > 0)
        .ok_or_else(|| format!("timestamp {} is not a time", event.time))?
        .naive_utc();
    let pin: Pin = event.pin.to_string().parse().map_err(|e| format!("PIN {}: {e}", event.pin))?;
    Ok(Some(
        Punch::from_device(
            config.site.clone(),
            config.serial.clone(),
            pin,
            time,
            config.zone,
            PunchState::from_code(u8::try_from(event.state).unwrap_or(u8::MAX)),
            VerifyMode::from_code(u8::try_from(event.verify).unwrap_or(u8::MAX)),
            0,
            PunchSource::Modbus,
            config.direction,
        )
        .with_raw_codes(Some(u32::from(event.state)), Some(u32::from(event.verify))),
    ))
}
