//! A small async client owning one connection to a device: connect and authenticate, send a command and wait for the
//! reply carrying its reply id (within a timeout), receive realtime events, and leave with EXIT.
//!
//! Design: everything about bytes lives in the codec modules; this type only sequences requests. Any packet that
//! arrives while a reply is awaited is either a realtime event (acknowledged at once and queued for
//! [`ZkClient::next_event`]) or a leftover of an earlier request (another reply id), which is dropped. The bulk read
//! is in [`super::bulk`].

use std::collections::VecDeque;
use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::buffer::BufferError;
use super::event::{self, AttlogEvent, EventError};
use super::packet::{Packet, PacketError};
use super::records::{c_string, DatasetError};
use super::sizes::DeviceSizes;
use super::time::{self, TimeError};
use super::transport::{Link, LinkError, TransportKind};
use super::{auth, command, options};

/// Time limits of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the connection.
    pub connect: Duration,
    /// Waiting for each reply packet.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), request: Duration::from_secs(5) }
    }
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr} over {transport}: {source}")]
    Connect { addr: String, transport: &'static str, source: std::io::Error },
    #[error("{command}: {source}")]
    Link { command: &'static str, source: LinkError },
    #[error("{command}: no answer within {after:?}")]
    Timeout { command: &'static str, after: Duration },
    #[error("the device requires a comm key and rejected key {key}")]
    Unauthorized { key: u32 },
    #[error("device refused {command}: answered {} ({code})", command::name(*code))]
    Refused { command: &'static str, code: u16 },
    #[error("{command}: answer of {len} bytes is too short")]
    ShortReply { command: &'static str, len: usize },
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("device clock: {0}")]
    Time(#[from] TimeError),
}

impl ClientError {
    /// Whether the connection is still usable and the same request may be tried again (a corrupt or missing packet,
    /// as opposed to a dead connection or a refusal).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Link {
                source: LinkError::Packet(PacketError::BadChecksum { .. } | PacketError::TooShort { .. }),
                ..
            } => true,
            Self::Timeout { .. } => true,
            Self::Buffer(e) => matches!(
                e,
                BufferError::Incomplete { .. } | BufferError::Overrun { .. } | BufferError::Unexpected { .. }
            ),
            _ => false,
        }
    }
}

/// What [`ZkClient::next_event`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventWait {
    Punch(AttlogEvent),
    /// Nothing arrived within the wait.
    Idle,
    /// The cancellation token fired.
    Cancelled,
}

/// Most realtime events held while a long request runs; beyond it the oldest are dropped (the device keeps them in its
/// log, and the next bulk read brings them).
const MAX_QUEUED_EVENTS: usize = 10_000;

/// One connection to one device.
#[derive(Debug)]
pub struct ZkClient {
    link: Link,
    transport: TransportKind,
    session: u16,
    next_reply: u16,
    timeouts: Timeouts,
    events: VecDeque<Packet>,
}

impl ZkClient {
    /// Connects to `addr` (`host:port`) and opens a session, answering the comm-key challenge when the device asks.
    ///
    /// # Errors
    /// When the device is unreachable, does not answer, refuses, or rejects `comm_key`.
    pub async fn connect(
        addr: &str,
        transport: TransportKind,
        comm_key: u32,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let link = Link::connect(addr, transport, timeouts.connect).await.map_err(|source| ClientError::Connect {
            addr: addr.to_owned(),
            transport: transport.as_str(),
            source,
        })?;
        let mut client = Self { link, transport, session: 0, next_reply: 0, timeouts, events: VecDeque::new() };
        let reply = client.request(command::CONNECT, &[]).await?;
        client.session = reply.session;
        match reply.command {
            command::ACK_OK => {}
            command::ACK_UNAUTH => {
                let answer = auth::comm_key(comm_key, client.session, auth::DEFAULT_TICKS);
                let reply = client.request(command::AUTH, &answer).await?;
                if reply.command != command::ACK_OK {
                    return Err(ClientError::Unauthorized { key: comm_key });
                }
            }
            code => return Err(ClientError::Refused { command: "CONNECT", code }),
        }
        debug!(addr, session = client.session, "connected");
        Ok(client)
    }

    pub fn transport(&self) -> TransportKind {
        self.transport
    }

    pub fn session(&self) -> u16 {
        self.session
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Sends `command` and returns the reply carrying its reply id, whatever its code.
    ///
    /// # Errors
    /// On a link failure or when no reply arrives within the request timeout.
    pub async fn request(&mut self, command: u16, data: &[u8]) -> Result<Packet, ClientError> {
        let reply_id = self.send(command, data).await?;
        self.reply(command::name(command), reply_id).await
    }

    /// Sends `command` and expects ACK_OK (or DATA, for commands answered with data).
    ///
    /// # Errors
    /// As [`ZkClient::request`], and [`ClientError::Refused`] for any other answer.
    pub async fn request_ok(&mut self, command: u16, data: &[u8]) -> Result<Packet, ClientError> {
        let reply = self.request(command, data).await?;
        match reply.command {
            command::ACK_OK | command::DATA => Ok(reply),
            code => Err(ClientError::Refused { command: command::name(command), code }),
        }
    }

    /// Sends a packet with the next reply id and returns that id.
    pub(crate) async fn send(&mut self, command: u16, data: &[u8]) -> Result<u16, ClientError> {
        let reply_id = self.next_reply;
        // pyzk and the vendor SDK count 0..=65534 and wrap; 65535 is never used.
        self.next_reply = if reply_id >= 65_534 { 0 } else { reply_id + 1 };
        let packet = Packet::new(command, self.session, reply_id, data.to_vec());
        self.link
            .send(&packet)
            .await
            .map_err(|e| ClientError::Link { command: command::name(command), source: e.into() })?;
        Ok(reply_id)
    }

    /// Waits for the next packet carrying `reply_id`, queueing events and dropping leftovers of earlier requests.
    pub(crate) async fn reply(&mut self, command: &'static str, reply_id: u16) -> Result<Packet, ClientError> {
        let after = self.timeouts.request;
        let deadline = Instant::now() + after;
        loop {
            let received = tokio::time::timeout_at(deadline, self.link.recv())
                .await
                .map_err(|_| ClientError::Timeout { command, after })?;
            let packet = match received {
                Ok(packet) => packet,
                Err(LinkError::Packet(PacketError::BadChecksum { reply_id: id, .. })) if id != reply_id => {
                    debug!(command, stale = id, "dropping a corrupt leftover packet");
                    continue;
                }
                Err(source) => return Err(ClientError::Link { command, source }),
            };
            if packet.command == command::REG_EVENT {
                self.take_event(packet).await?;
                continue;
            }
            if packet.reply_id != reply_id {
                debug!(command, expected = reply_id, got = packet.reply_id, "dropping a leftover packet");
                continue;
            }
            return Ok(packet);
        }
    }

    /// Acknowledges a realtime event and queues it if it is a punch.
    async fn take_event(&mut self, packet: Packet) -> Result<(), ClientError> {
        let ack = Packet::new(command::ACK_OK, self.session, packet.reply_id, Vec::new());
        self.link.send(&ack).await.map_err(|e| ClientError::Link { command: "ACK_OK", source: e.into() })?;
        if packet.session & command::EF_ATTLOG != 0 {
            if self.events.len() >= MAX_QUEUED_EVENTS {
                warn!("realtime event queue full; the oldest event is left to the next bulk read");
                self.events.pop_front();
            }
            self.events.push_back(packet);
        }
        Ok(())
    }

    /// The next realtime punch: waits up to `wait`, returning early when `cancel` fires.
    ///
    /// # Errors
    /// When the link fails. An event that cannot be parsed is logged and skipped (it stays in the device log).
    pub async fn next_event(&mut self, wait: Duration, cancel: &CancellationToken) -> Result<EventWait, ClientError> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(packet) = self.events.pop_front() {
                match event::parse_attlog(&packet.data) {
                    Ok(punch) => return Ok(EventWait::Punch(punch)),
                    Err(e @ (EventError::UnknownSize { .. } | EventError::Time(_))) => {
                        warn!(error = %e, "skipping an unreadable realtime event; the next bulk read brings its record");
                    }
                }
            }
            let received = tokio::select! {
                () = cancel.cancelled() => return Ok(EventWait::Cancelled),
                r = tokio::time::timeout_at(deadline, self.link.recv()) => r,
            };
            let Ok(received) = received else { return Ok(EventWait::Idle) };
            let packet = received.map_err(|source| ClientError::Link { command: "REG_EVENT", source })?;
            if packet.command == command::REG_EVENT {
                self.take_event(packet).await?;
            } else {
                debug!(reply_id = packet.reply_id, "dropping a leftover packet while waiting for events");
            }
        }
    }

    /// Asks for realtime events (`flags`: EF_ATTLOG for punches).
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn register_events(&mut self, flags: u32) -> Result<(), ClientError> {
        self.request_ok(command::REG_EVENT, &flags.to_le_bytes()).await.map(|_| ())
    }

    /// Locks the keypad and readers so the log does not change under a read.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn disable(&mut self) -> Result<(), ClientError> {
        self.request_ok(command::DISABLE_DEVICE, &[]).await.map(|_| ())
    }

    /// Unlocks the device again.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn enable(&mut self) -> Result<(), ClientError> {
        self.request_ok(command::ENABLE_DEVICE, &[]).await.map(|_| ())
    }

    /// An option's value, `None` when the device does not know the key.
    ///
    /// # Errors
    /// On a link failure or timeout.
    pub async fn read_option(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        let reply = self.request(command::OPTIONS_RRQ, &options::request(key)).await?;
        Ok((reply.command == command::ACK_OK).then(|| options::parse_reply(&reply.data)).filter(|v| !v.is_empty()))
    }

    /// The firmware version string, `None` when the device does not answer it.
    ///
    /// # Errors
    /// On a link failure or timeout.
    pub async fn firmware_version(&mut self) -> Result<Option<String>, ClientError> {
        let reply = self.request(command::GET_VERSION, &[]).await?;
        Ok((reply.command == command::ACK_OK).then(|| c_string(&reply.data[..reply.data.len().min(256)])))
    }

    /// Counts and capacities.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn read_sizes(&mut self) -> Result<DeviceSizes, ClientError> {
        let reply = self.request_ok(command::GET_FREE_SIZES, &[]).await?;
        Ok(DeviceSizes::parse(&reply.data))
    }

    /// The device's wall-clock time.
    ///
    /// # Errors
    /// When the device refuses or answers an impossible time.
    pub async fn get_time(&mut self) -> Result<NaiveDateTime, ClientError> {
        let reply = self.request_ok(command::GET_TIME, &[]).await?;
        let raw = reply
            .data
            .first_chunk::<4>()
            .ok_or(ClientError::ShortReply { command: "GET_TIME", len: reply.data.len() })?;
        Ok(time::decode(u32::from_le_bytes(*raw))?)
    }

    /// Sets the device's wall-clock time.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn set_time(&mut self, local: NaiveDateTime) -> Result<(), ClientError> {
        self.request_ok(command::SET_TIME, &time::encode(local).to_le_bytes()).await.map(|_| ())
    }

    /// Deletes every attendance record on the device. Only [`super::poller`] calls it, under the clear-log rule.
    ///
    /// # Errors
    /// When the device refuses.
    pub async fn clear_attendance(&mut self) -> Result<(), ClientError> {
        self.request_ok(command::CLEAR_ATTLOG, &[]).await?;
        self.request_ok(command::REFRESH_DATA, &[]).await.map(|_| ())
    }

    /// Ends the session with EXIT and closes the connection. Failures are logged, not returned: the connection is
    /// going away either way.
    pub async fn exit(mut self) {
        if let Err(e) = self.request(command::EXIT, &[]).await {
            debug!(error = %e, "EXIT was not answered");
        }
        self.link.close().await;
    }
}
