//! The socket under a client: a TCP stream framed by [`TcpFrameDecoder`], or a connected UDP socket with one packet
//! per datagram. Both `recv`s are cancel-safe, so callers can race them against timers and shutdown.

use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{lookup_host, TcpStream, UdpSocket};

use super::packet::{describe_foreign, Framing, Packet, PacketError, Received, TcpFrameDecoder, TCP_MAGIC};

/// Which transport a device speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Tcp,
    Udp,
}

impl TransportKind {
    pub fn framing(self) -> Framing {
        match self {
            Self::Tcp => Framing::Tcp,
            Self::Udp => Framing::Udp,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// Why the link failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the device closed the connection")]
    Closed,
    #[error("{0}")]
    Packet(#[from] PacketError),
    /// The peer's first bytes are not a ZKTeco packet.
    #[error("this port does not speak the ZKTeco protocol (it answered like {looks_like})")]
    Foreign { looks_like: String },
}

impl LinkError {
    /// The I/O error kind, when the link failed on I/O.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Self::Io(e) => Some(e.kind()),
            _ => None,
        }
    }
}

/// Largest UDP datagram.
const MAX_DATAGRAM: usize = 65_536;

#[derive(Debug)]
pub(crate) enum Link {
    Tcp { stream: TcpStream, decoder: TcpFrameDecoder },
    Udp { socket: UdpSocket, buf: Vec<u8> },
}

impl Link {
    /// Opens a link to `addr` (`host:port`) within `timeout`.
    pub(crate) async fn connect(addr: &str, kind: TransportKind, timeout: Duration) -> io::Result<Self> {
        let open = async {
            match kind {
                TransportKind::Tcp => {
                    let stream = TcpStream::connect(addr).await?;
                    stream.set_nodelay(true)?;
                    Ok(Self::Tcp { stream, decoder: TcpFrameDecoder::new() })
                }
                TransportKind::Udp => {
                    let peer = lookup_host(addr).await?.next().ok_or_else(|| {
                        io::Error::new(io::ErrorKind::NotFound, format!("{addr} resolves to nothing"))
                    })?;
                    let local = if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                    let socket = UdpSocket::bind(local).await?;
                    socket.connect(peer).await?;
                    Ok(Self::Udp { socket, buf: vec![0; MAX_DATAGRAM] })
                }
            }
        };
        tokio::time::timeout(timeout, open)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}")))?
    }

    pub(crate) fn framing(&self) -> Framing {
        match self {
            Self::Tcp { .. } => Framing::Tcp,
            Self::Udp { .. } => Framing::Udp,
        }
    }

    pub(crate) async fn send(&mut self, packet: &Packet) -> io::Result<()> {
        let bytes = packet.encode(self.framing());
        match self {
            Self::Tcp { stream, .. } => stream.write_all(&bytes).await,
            Self::Udp { socket, .. } => socket.send(&bytes).await.map(|_| ()),
        }
    }

    /// The next packet with the checksum it carried (judged by the caller). Cancel-safe: bytes already read stay
    /// buffered. `first` says no packet came before on this link: bytes that are not a packet then describe the peer
    /// ([`LinkError::Foreign`]) instead of a lost framing.
    pub(crate) async fn recv(&mut self, first: bool) -> Result<Received, LinkError> {
        match self {
            Self::Tcp { stream, decoder } => loop {
                match decoder.next_received() {
                    Ok(Some(received)) => return Ok(received),
                    Ok(None) => {}
                    Err(PacketError::BadMagic { .. }) if first => {
                        return Err(LinkError::Foreign { looks_like: describe_foreign(decoder.peek(64)) });
                    }
                    Err(e) => return Err(e.into()),
                }
                let buf = decoder.buffer_mut();
                if buf.capacity() - buf.len() < 16 * 1024 {
                    buf.reserve(64 * 1024);
                }
                if stream.read_buf(buf).await? == 0 {
                    let partial = decoder.peek(64);
                    if first && !partial.is_empty() && !TCP_MAGIC.starts_with(&partial[..partial.len().min(4)]) {
                        return Err(LinkError::Foreign { looks_like: describe_foreign(partial) });
                    }
                    return Err(LinkError::Closed);
                }
            },
            Self::Udp { socket, buf } => {
                let n = socket.recv(buf).await?;
                Ok(Received::parse(&buf[..n])?)
            }
        }
    }

    pub(crate) async fn close(&mut self) {
        if let Self::Tcp { stream, .. } = self {
            let _ = stream.shutdown().await;
        }
    }
}
