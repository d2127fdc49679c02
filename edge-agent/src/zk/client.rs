//! A small async client owning one connection to a device: connect and authenticate, send a command and wait for the
//! reply carrying its reply id (within a timeout), receive realtime events, and leave with EXIT.
//!
//! Design: everything about bytes lives in the codec modules; this type only sequences requests. Any packet that
//! arrives while a reply is awaited is either a realtime event (acknowledged at once and queued for
//! [`ZkClient::next_event`]) or a leftover of an earlier request (another reply id), which is dropped. The bulk read
//! is in [`super::bulk`].

use std::collections::VecDeque;
use std::io;
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

/// Why a device operation failed. The texts are read by site technicians (`edge-agent probe`, device faults): each
/// says what was seen, once, without repeating its cause.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{}", connect_text(addr, transport, *kind, detail))]
    Connect { addr: String, transport: &'static str, kind: io::ErrorKind, detail: String },
    /// UDP: CONNECT got no answer (`refused`: the host said nothing listens on the port).
    #[error("no ZKTeco device answered on UDP port {port} of {host}{}", if *refused {
        " (the host says nothing listens on that port)".to_owned()
    } else {
        format!(" within {after:?}")
    })]
    NoUdpAnswer { host: String, port: u16, refused: bool, after: Duration },
    /// TCP: the port accepted the connection, but what came back is not a ZKTeco packet.
    #[error("{addr}: this port does not speak the ZKTeco protocol (it answered like {looks_like})")]
    NotZk { addr: String, looks_like: String },
    /// TCP: the port accepted the connection and never answered CONNECT.
    #[error(
        "{addr} accepts TCP connections but nothing answered the ZKTeco CONNECT within {after:?}: a listener that is \
         not a ZKTeco device, or a device busy with another client"
    )]
    Silent { addr: String, after: Duration },
    /// TCP: the port accepted the connection and closed it without a word.
    #[error(
        "{addr} accepted the TCP connection and closed it without answering CONNECT: not a ZKTeco device, or a \
         device that serves one client at a time and is busy"
    )]
    ClosedSilently { addr: String },
    #[error("{command}: {source}")]
    Link { command: &'static str, source: LinkError },
    /// No answer to a request on a connection that answered earlier ones: a slow or busy device.
    #[error("{command}: no answer within {after:?}")]
    Timeout { command: &'static str, after: Duration },
    #[error("{}", if *key == 0 {
        "the device requires a comm key and none was given".to_owned()
    } else {
        format!("the device rejected comm key {key}")
    })]
    Unauthorized { key: u32 },
    #[error("device refused {command}: answered {} ({code})", command::name(*code))]
    Refused { command: &'static str, code: u16 },
    #[error("{command}: answer of {len} bytes is too short")]
    ShortReply { command: &'static str, len: usize },
    /// A request retried until the tries ran out; `last` is the last failure.
    #[error("{last} (tried {tries} times)")]
    Retried { tries: u32, last: Box<ClientError> },
    #[error(transparent)]
    Buffer(#[from] BufferError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("device clock: {0}")]
    Time(#[from] TimeError),
    /// Fingerprint templates read or to be written that do not add up.
    #[error("fingerprint templates: {0}")]
    Templates(String),
}

/// The text of a failed connection, naming the likely cause once.
fn connect_text(addr: &str, transport: &str, kind: io::ErrorKind, detail: &str) -> String {
    let port = addr.rsplit_once(':').map_or("4370", |(_, port)| port);
    match kind {
        io::ErrorKind::ConnectionRefused => {
            format!("cannot connect to {addr} over {transport}: connection refused (nothing listens on port {port})")
        }
        io::ErrorKind::TimedOut => format!(
            "cannot connect to {addr} over {transport}: {detail} (no host answers at that address, or a firewall \
             drops the traffic)"
        ),
        _ => format!("cannot connect to {addr} over {transport}: {detail}"),
    }
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

    /// The failure behind retries.
    pub fn root(&self) -> &ClientError {
        match self {
            Self::Retried { last, .. } => last.root(),
            other => other,
        }
    }

    /// Whether the device could not be reached or stopped answering (as opposed to answering something wrong).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.root(),
            Self::Connect { .. }
                | Self::NoUdpAnswer { .. }
                | Self::NotZk { .. }
                | Self::Silent { .. }
                | Self::ClosedSilently { .. }
                | Self::Timeout { .. }
                | Self::Link { .. }
        )
    }

    /// Whether the connection is dead (nothing more can be sent on it).
    pub fn connection_lost(&self) -> bool {
        matches!(
            self.root(),
            Self::Connect { .. }
                | Self::NoUdpAnswer { .. }
                | Self::NotZk { .. }
                | Self::Silent { .. }
                | Self::ClosedSilently { .. }
                | Self::Link { source: LinkError::Io(_) | LinkError::Closed | LinkError::Foreign { .. }, .. }
                | Self::Link {
                    source: LinkError::Packet(PacketError::BadMagic { .. } | PacketError::TooLong { .. }),
                    ..
                }
        )
    }

    /// Whether a reply failed its checksum (over UDP with `strict_checksum`).
    pub fn is_bad_checksum(&self) -> bool {
        matches!(self.root(), Self::Link { source: LinkError::Packet(PacketError::BadChecksum { .. }), .. })
    }
}

/// Whether a reply code says "this device does not have that command": ACK_ERROR, ACK_UNKNOWN or ACK_ERROR_CMD.
pub fn is_not_supported(code: u16) -> bool {
    matches!(code, command::ACK_ERROR | command::ACK_UNKNOWN | command::ACK_ERROR_CMD)
}

/// Whether a reply code carries the answer of a command answered with data: ACK_OK, DATA, or ACK_DATA (some
/// implementations answer data with it).
pub fn is_data_answer(code: u16) -> bool {
    matches!(code, command::ACK_OK | command::DATA | command::ACK_DATA)
}

/// How to open a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    pub transport: TransportKind,
    /// The comm key; 0 when none is set.
    pub comm_key: u32,
    pub timeouts: Timeouts,
    /// UDP only: refuse replies with a wrong checksum (the default). Over TCP the length prefix frames every packet,
    /// so a wrong checksum (some implementations compute it off by one) is always accepted and counted.
    pub strict_checksum: bool,
}

impl ConnectOptions {
    pub fn new(transport: TransportKind, comm_key: u32, timeouts: Timeouts) -> Self {
        Self { transport, comm_key, timeouts, strict_checksum: true }
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
    strict_checksum: bool,
    /// Replies accepted with a wrong checksum on this connection.
    checksum_mismatches: u64,
    /// Whether any packet came from the peer yet.
    answered: bool,
    /// Whether the device asked for the comm key (and accepted it).
    keyed: bool,
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
        Self::connect_with(addr, ConnectOptions::new(transport, comm_key, timeouts)).await
    }

    /// [`ZkClient::connect`] with every option.
    ///
    /// # Errors
    /// As [`ZkClient::connect`]; what did not answer is named (nothing listening, a silent listener, another
    /// protocol, UDP without an answer).
    pub async fn connect_with(addr: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let ConnectOptions { transport, comm_key, timeouts, strict_checksum } = options;
        let link = Link::connect(addr, transport, timeouts.connect).await.map_err(|e| ClientError::Connect {
            addr: addr.to_owned(),
            transport: transport.as_str(),
            kind: e.kind(),
            detail: e.to_string(),
        })?;
        let mut client = Self {
            link,
            transport,
            session: 0,
            next_reply: 0,
            timeouts,
            events: VecDeque::new(),
            strict_checksum,
            checksum_mismatches: 0,
            answered: false,
            keyed: false,
        };
        let reply = client.request(command::CONNECT, &[]).await.map_err(|e| client.first_contact(addr, e))?;
        client.session = reply.session;
        match reply.command {
            command::ACK_OK => {}
            command::ACK_UNAUTH => {
                let answer = auth::comm_key(comm_key, client.session, auth::DEFAULT_TICKS);
                let reply = client.request(command::AUTH, &answer).await?;
                if reply.command != command::ACK_OK {
                    return Err(ClientError::Unauthorized { key: comm_key });
                }
                client.keyed = true;
            }
            code => return Err(ClientError::Refused { command: "CONNECT", code }),
        }
        debug!(addr, session = client.session, "connected");
        Ok(client)
    }

    /// Names what answered (or did not) when CONNECT failed.
    fn first_contact(&self, addr: &str, error: ClientError) -> ClientError {
        let (host, port) = match addr.rsplit_once(':') {
            Some((host, port)) => (host.trim_matches(['[', ']']).to_owned(), port.parse().unwrap_or(0)),
            None => (addr.to_owned(), 0),
        };
        match (self.transport, error) {
            (_, ClientError::Link { source: LinkError::Foreign { looks_like }, .. }) => {
                ClientError::NotZk { addr: addr.to_owned(), looks_like }
            }
            (TransportKind::Tcp, ClientError::Timeout { after, .. }) if !self.answered => {
                ClientError::Silent { addr: addr.to_owned(), after }
            }
            (TransportKind::Tcp, ClientError::Link { source: LinkError::Closed, .. }) if !self.answered => {
                ClientError::ClosedSilently { addr: addr.to_owned() }
            }
            (TransportKind::Udp, ClientError::Timeout { after, .. }) if !self.answered => {
                ClientError::NoUdpAnswer { host, port, refused: false, after }
            }
            (TransportKind::Udp, ClientError::Link { source, .. })
                if source.io_kind() == Some(io::ErrorKind::ConnectionRefused) =>
            {
                ClientError::NoUdpAnswer { host, port, refused: true, after: self.timeouts.request }
            }
            (_, other) => other,
        }
    }

    /// Whether the device asked for a comm key and accepted ours.
    pub fn used_comm_key(&self) -> bool {
        self.keyed
    }

    /// Replies accepted with a wrong checksum on this connection (over TCP, or over UDP without `strict_checksum`).
    pub fn checksum_mismatches(&self) -> u64 {
        self.checksum_mismatches
    }

    /// The next packet, its checksum judged: a wrong one is an error over UDP with `strict_checksum`, else counted
    /// (one warning per connection). Cancel-safe like [`Link::recv`].
    async fn recv(&mut self) -> Result<Packet, LinkError> {
        let received = self.link.recv(!self.answered).await?;
        self.answered = true;
        if received.checksum_ok() {
            return Ok(received.packet);
        }
        if self.transport == TransportKind::Udp && self.strict_checksum {
            return received.verified().map_err(LinkError::from);
        }
        self.checksum_mismatches += 1;
        if self.checksum_mismatches == 1 {
            warn!(
                command = command::name(received.packet.command),
                carried = received.carried,
                computed = received.computed(),
                transport = self.transport.as_str(),
                "the device sends wrong reply checksums; accepting them (counted in the device metrics)"
            );
        }
        Ok(received.packet)
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

    /// Sends `command` and expects ACK_OK (or DATA / ACK_DATA, for commands answered with data).
    ///
    /// # Errors
    /// As [`ZkClient::request`], and [`ClientError::Refused`] for any other answer.
    pub async fn request_ok(&mut self, command: u16, data: &[u8]) -> Result<Packet, ClientError> {
        let reply = self.request(command, data).await?;
        match reply.command {
            code if is_data_answer(code) => Ok(reply),
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
            let received = tokio::time::timeout_at(deadline, self.recv())
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
                r = tokio::time::timeout_at(deadline, self.recv()) => r,
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

    /// Locks the keypad and readers so the log does not change under a read. Returns false when the device answers
    /// that it has no such command (ACK_ERROR or ACK_UNKNOWN: some implementations): reading still works, but the
    /// log may change under the read, so it must never be cleared.
    ///
    /// # Errors
    /// On a link failure, a timeout, or another refusal.
    pub async fn disable(&mut self) -> Result<bool, ClientError> {
        self.lock_command(command::DISABLE_DEVICE).await
    }

    /// Unlocks the device again. Returns false when the device has no such command (see [`ZkClient::disable`]).
    ///
    /// # Errors
    /// As [`ZkClient::disable`].
    pub async fn enable(&mut self) -> Result<bool, ClientError> {
        self.lock_command(command::ENABLE_DEVICE).await
    }

    async fn lock_command(&mut self, code: u16) -> Result<bool, ClientError> {
        let reply = self.request(code, &[]).await?;
        match reply.command {
            command::ACK_OK => Ok(true),
            refused if is_not_supported(refused) => Ok(false),
            refused => Err(ClientError::Refused { command: command::name(code), code: refused }),
        }
    }

    /// An option's value, `None` when the device does not know the key.
    ///
    /// # Errors
    /// On a link failure or timeout.
    pub async fn read_option(&mut self, key: &str) -> Result<Option<String>, ClientError> {
        let reply = self.request(command::OPTIONS_RRQ, &options::request(key)).await?;
        Ok(is_data_answer(reply.command).then(|| options::parse_reply(&reply.data)).filter(|v| !v.is_empty()))
    }

    /// The firmware version string, `None` when the device does not answer it.
    ///
    /// # Errors
    /// On a link failure or timeout.
    pub async fn firmware_version(&mut self) -> Result<Option<String>, ClientError> {
        let reply = self.request(command::GET_VERSION, &[]).await?;
        Ok(is_data_answer(reply.command)
            .then(|| c_string(&reply.data[..reply.data.len().min(256)]))
            .filter(|v| !v.is_empty()))
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
