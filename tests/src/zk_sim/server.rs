//! The simulator's sockets: a TCP listener with one task per connection, one UDP socket serving every peer, and the
//! realtime punch generator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use edge_agent::zk::event::{encode_attlog, AttlogEvent};
use edge_agent::zk::packet::{Framing, Packet, PacketError, TcpFrameDecoder};
use edge_agent::zk::records::{AttendanceRecord, DeviceUser};
use edge_agent::zk::{command, RecordLayout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::data::{record_for, Rng};
use super::device::{Out, Session};
use super::Shared;

/// Binds TCP and UDP on one port and starts serving. Returns both addresses.
pub(crate) async fn spawn(
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let mut attempt = 0;
    let (listener, udp) = loop {
        let listener = TcpListener::bind(addr).await?;
        let tcp_addr = listener.local_addr()?;
        match UdpSocket::bind(tcp_addr).await {
            Ok(udp) => break (listener, udp),
            Err(e) if addr.port() == 0 && attempt < 10 => {
                debug!(error = %e, "UDP port taken; trying another");
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    };
    let addrs = (listener.local_addr()?, udp.local_addr()?);
    tokio::spawn(accept(shared.clone(), listener, shutdown.clone()));
    tokio::spawn(serve_udp(shared.clone(), udp, shutdown.clone()));
    if shared.config.realtime_rate > 0.0 {
        tokio::spawn(generate(shared, shutdown));
    }
    Ok(addrs)
}

async fn accept(shared: Arc<Shared>, listener: TcpListener, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => { tokio::spawn(serve_tcp(shared.clone(), stream, shutdown.clone())); }
                Err(e) => warn!(error = %e, "zk-sim: accept failed"),
            },
        }
    }
}

async fn serve_tcp(shared: Arc<Shared>, mut stream: TcpStream, shutdown: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let mut decoder = TcpFrameDecoder::new();
    let mut session = Session::default();
    let mut events = shared.events.subscribe();
    'connection: loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            read = stream.read_buf(decoder.buffer_mut()) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            event = events.recv() => {
                match event {
                    Ok(record) if session.events => {
                        let mut bytes = Vec::new();
                        encode_reply(&shared, &event_packet(&shared, &record), Framing::Tcp, &mut bytes);
                        shared.state().counters.events_sent += 1;
                        if stream.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
                continue;
            }
        }
        loop {
            let packet = match decoder.next_frame() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(e @ (PacketError::BadChecksum { .. } | PacketError::TooShort { .. })) => {
                    warn!(error = %e, "zk-sim: ignoring a bad packet");
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "zk-sim: closing a connection that lost framing");
                    break 'connection;
                }
            };
            let code = packet.command;
            let outs = shared.state().handle(&shared.config, &shared.faults, Framing::Tcp, &mut session, packet);
            delay(&shared, code).await;
            let mut bytes = Vec::new();
            let mut close = false;
            for out in outs {
                match out {
                    Out::Packet(p) => encode_reply(&shared, &p, Framing::Tcp, &mut bytes),
                    Out::Corrupt(p) => p.encode_with_checksum(Framing::Tcp, p.checksum() ^ 0x5a5a, &mut bytes),
                    Out::Half(p) => {
                        let full = p.encode(Framing::Tcp);
                        bytes.extend_from_slice(&full[..full.len() / 2]);
                    }
                    Out::Drop => close = true,
                }
            }
            if stream.write_all(&bytes).await.is_err() || close {
                break 'connection;
            }
        }
    }
    shared.state().end_session(&session);
}

async fn serve_udp(shared: Arc<Shared>, socket: UdpSocket, shutdown: CancellationToken) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut events = shared.events.subscribe();
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => {
                let Ok((n, peer)) = received else { continue };
                let packet = match Packet::parse(&buf[..n]) {
                    Ok(packet) => packet,
                    Err(e) => {
                        warn!(error = %e, "zk-sim: ignoring a bad datagram");
                        continue;
                    }
                };
                let session = sessions.entry(peer).or_default();
                let code = packet.command;
                let outs = shared.state().handle(&shared.config, &shared.faults, Framing::Udp, session, packet);
                delay(&shared, code).await;
                for out in outs {
                    let datagram = match out {
                        Out::Packet(p) => {
                            let mut bytes = Vec::new();
                            encode_reply(&shared, &p, Framing::Udp, &mut bytes);
                            bytes
                        }
                        Out::Corrupt(p) => {
                            let mut bytes = Vec::new();
                            p.encode_with_checksum(Framing::Udp, p.checksum() ^ 0x5a5a, &mut bytes);
                            bytes
                        }
                        // A datagram is whole or lost: a "dropped connection" is a device that stops answering.
                        Out::Half(_) => continue,
                        Out::Drop => {
                            if let Some(session) = sessions.remove(&peer) {
                                shared.state().end_session(&session);
                            }
                            break;
                        }
                    };
                    let _ = socket.send_to(&datagram, peer).await;
                }
            }
            event = events.recv() => {
                let Ok(record) = event else { continue };
                let mut packet = Vec::new();
                encode_reply(&shared, &event_packet(&shared, &record), Framing::Udp, &mut packet);
                for (peer, session) in &sessions {
                    if session.events {
                        shared.state().counters.events_sent += 1;
                        let _ = socket.send_to(&packet, *peer).await;
                    }
                }
            }
        }
    }
}

/// A reply's bytes: its true checksum, or one off by one with the `checksum_off_by_one` switch (never landing on
/// the other spelling of zero, which is a right checksum).
fn encode_reply(shared: &Shared, p: &Packet, framing: Framing, out: &mut Vec<u8>) {
    if !shared.faults.checksum_off_by_one.load(Ordering::SeqCst) {
        return p.encode_into(framing, out);
    }
    let mut wrong = p.checksum().wrapping_add(1);
    if edge_agent::zk::packet::checksum_matches(wrong, p.checksum()) {
        wrong = wrong.wrapping_add(1);
    }
    p.encode_with_checksum(framing, wrong, out);
}

/// The configured reply delay before answering `code` (none for CONNECT and AUTH with `delay_after_connect`).
async fn delay(shared: &Shared, code: u16) {
    if shared.faults.delay_after_connect.load(Ordering::SeqCst) && matches!(code, command::CONNECT | command::AUTH) {
        return;
    }
    let ms = shared.faults.reply_delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The realtime event for a new record, in the configured payload size.
fn event_packet(shared: &Shared, record: &AttendanceRecord) -> Packet {
    let size = shared.config.event_size.unwrap_or(match shared.config.record_layout {
        RecordLayout::Short => 10,
        RecordLayout::Medium => 12,
        RecordLayout::Long => 32,
    });
    let user = match (&record.user, size) {
        (DeviceUser::Pin(_), 10 | 14) => DeviceUser::Uid(record.uid.unwrap_or(0)),
        (user, _) => user.clone(),
    };
    let event = AttlogEvent { user, verify: record.verify, state: record.state, time: record.time };
    Packet::new(command::REG_EVENT, command::EF_ATTLOG, 0, encode_attlog(size, &event))
}

async fn generate(shared: Arc<Shared>, shutdown: CancellationToken) {
    let period = Duration::from_secs_f64(1.0 / shared.config.realtime_rate);
    let mut ticker = tokio::time::interval(period);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => { punch_now(&shared); }
        }
    }
}

/// A user punches now: the record is stored and broadcast. `None` while the device is disabled.
pub(crate) fn punch_now(shared: &Shared) -> Option<AttendanceRecord> {
    let record = {
        let mut state = shared.state();
        if !state.is_enabled() {
            return None;
        }
        let mut rng = Rng::new(shared.config.seed ^ (state.records.len() as u64).wrapping_mul(31));
        let now = chrono::Timelike::with_nanosecond(&state.clock(&shared.config), 0)?;
        let time = match state.records.last() {
            Some(last) if last.time >= now => last.time + chrono::Duration::seconds(1),
            _ => now,
        };
        let user = state.users[rng.below(state.users.len() as u64) as usize].clone();
        let record = record_for(&user, shared.config.record_layout, time, &mut rng);
        state.records.push(record.clone());
        record
    };
    let _ = shared.events.send(record.clone());
    Some(record)
}
