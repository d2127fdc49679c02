//! Packets: the 8-byte header, the checksum, UDP datagrams and the TCP stream framing. No I/O.
//!
//! A packet is `command u16, checksum u16, session u16, reply id u16` (little-endian) followed by its data. Over UDP
//! one datagram is one packet. Over TCP each packet is prefixed by `50 50 82 7D` and a u32 length of header + data;
//! the stream may split a packet across reads or put several packets in one read, so [`TcpFrameDecoder`] frames
//! strictly by that length.

use bytes::{Buf, BytesMut};

use super::command;

/// Length of the packet header.
pub const HEADER_LEN: usize = 8;
/// The TCP prefix's magic bytes.
pub const TCP_MAGIC: [u8; 4] = [0x50, 0x50, 0x82, 0x7D];
/// Length of the TCP prefix (magic + u32 length).
pub const TCP_PREFIX_LEN: usize = 8;
/// Largest packet (header + data) accepted from a peer. The biggest legitimate packet is a whole attendance log sent
/// inline by a device without buffered reads; 32 MiB covers 800,000 40-byte records.
pub const MAX_PACKET_LEN: usize = 32 * 1024 * 1024 + HEADER_LEN + 4;

/// How packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each packet behind the `50 50 82 7D` + length prefix.
    Tcp,
    /// One packet per datagram, no prefix.
    Udp,
}

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("packet of {len} bytes is shorter than the 8-byte header")]
    TooShort { len: usize },
    #[error("TCP frame declares {len} bytes, over the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("TCP stream lost framing: expected 50 50 82 7D, got {}", hex(found))]
    BadMagic { found: [u8; 4] },
    #[error("bad checksum on {} (code {command}) reply id {reply_id}: carried {carried:#06x}, computed {computed:#06x}", command::name(*command))]
    BadChecksum { command: u16, reply_id: u16, carried: u16, computed: u16 },
}

/// Bytes as space-separated hex, the way the protocol's magic is written (`50 50 82 7D`).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
}

/// What a peer that is not a ZKTeco device looks like from the first bytes it sent, for the technician: "an HTTP
/// server", "an SSH server", "a TLS server", or the bytes themselves.
pub fn describe_foreign(first: &[u8]) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || *b == b' ';
    if first.starts_with(b"HTTP") || first.starts_with(b"<") {
        "an HTTP server".to_owned()
    } else if first.starts_with(b"SSH-") {
        "an SSH server".to_owned()
    } else if first.first() == Some(&0x16) || first.first() == Some(&0x15) {
        "a TLS server".to_owned()
    } else if first.starts_with(b"220") {
        "an FTP or mail server".to_owned()
    } else if !first.is_empty() && first.iter().all(printable) {
        format!("with text {:?}", String::from_utf8_lossy(first))
    } else {
        format!("with bytes {}", hex(first))
    }
}

/// A packet as received, with the checksum it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub packet: Packet,
    /// The checksum field as sent.
    pub carried: u16,
}

impl Received {
    /// Parses header + data without judging the checksum.
    ///
    /// # Errors
    /// [`PacketError::TooShort`] below 8 bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, PacketError> {
        let packet = Packet::parse_unverified(bytes)?;
        Ok(Self { packet, carried: u16::from_le_bytes([bytes[2], bytes[3]]) })
    }

    /// The checksum the packet should carry.
    pub fn computed(&self) -> u16 {
        self.packet.checksum()
    }

    /// Whether the carried checksum is right (either spelling of zero).
    pub fn checksum_ok(&self) -> bool {
        checksum_matches(self.carried, self.computed())
    }

    /// The packet if its checksum is right.
    ///
    /// # Errors
    /// [`PacketError::BadChecksum`] naming both values.
    pub fn verified(self) -> Result<Packet, PacketError> {
        if self.checksum_ok() {
            return Ok(self.packet);
        }
        let computed = self.computed();
        Err(PacketError::BadChecksum {
            command: self.packet.command,
            reply_id: self.packet.reply_id,
            carried: self.carried,
            computed,
        })
    }
}

/// One protocol packet.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    pub command: u16,
    pub session: u16,
    pub reply_id: u16,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Packet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packet")
            .field("command", &format_args!("{} ({})", self.command, command::name(self.command)))
            .field("session", &self.session)
            .field("reply_id", &self.reply_id)
            .field("data_len", &self.data.len())
            .finish()
    }
}

impl Packet {
    pub fn new(command: u16, session: u16, reply_id: u16, data: Vec<u8>) -> Self {
        Self { command, session, reply_id, data }
    }

    /// The true checksum of this packet (see [`checksum`]).
    pub fn checksum(&self) -> u16 {
        checksum(self.command, self.session, self.reply_id, &self.data)
    }

    /// The packet's bytes with its true checksum, with the TCP prefix when `framing` is TCP.
    pub fn encode(&self, framing: Framing) -> Vec<u8> {
        let mut out = Vec::with_capacity(TCP_PREFIX_LEN + HEADER_LEN + self.data.len());
        self.encode_into(framing, &mut out);
        out
    }

    /// Appends the packet's bytes to `out` (several packets can share one write).
    pub fn encode_into(&self, framing: Framing, out: &mut Vec<u8>) {
        self.encode_with_checksum(framing, self.checksum(), out);
    }

    /// Appends the packet with an explicit checksum value; the simulator uses it to inject corrupt packets.
    pub fn encode_with_checksum(&self, framing: Framing, checksum: u16, out: &mut Vec<u8>) {
        if framing == Framing::Tcp {
            out.extend_from_slice(&TCP_MAGIC);
            let len = u32::try_from(HEADER_LEN + self.data.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&self.command.to_le_bytes());
        out.extend_from_slice(&checksum.to_le_bytes());
        out.extend_from_slice(&self.session.to_le_bytes());
        out.extend_from_slice(&self.reply_id.to_le_bytes());
        out.extend_from_slice(&self.data);
    }

    /// Parses header + data (a UDP datagram, or a TCP frame without its prefix) and verifies the checksum.
    ///
    /// # Errors
    /// [`PacketError::TooShort`] below 8 bytes, [`PacketError::BadChecksum`] when the checksum does not match.
    pub fn parse(bytes: &[u8]) -> Result<Self, PacketError> {
        Received::parse(bytes)?.verified()
    }

    /// Parses header + data without looking at the checksum.
    ///
    /// # Errors
    /// [`PacketError::TooShort`] below 8 bytes.
    pub fn parse_unverified(bytes: &[u8]) -> Result<Self, PacketError> {
        if bytes.len() < HEADER_LEN {
            return Err(PacketError::TooShort { len: bytes.len() });
        }
        let word = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        Ok(Self { command: word(0), session: word(4), reply_id: word(6), data: bytes[HEADER_LEN..].to_vec() })
    }
}

/// The ZKTeco checksum: the little-endian u16 words of the header (checksum field taken as 0) and the data are summed,
/// an odd trailing byte counting as a low byte; the sum is folded (`while sum > 0xFFFF { sum -= 0xFFFF }`) and the
/// result is `0xFFFF - sum`.
pub fn checksum(command: u16, session: u16, reply_id: u16, data: &[u8]) -> u16 {
    let mut sum = u64::from(command) + u64::from(session) + u64::from(reply_id);
    let mut words = data.chunks_exact(2);
    for pair in &mut words {
        sum += u64::from(u16::from_le_bytes([pair[0], pair[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last);
    }
    // Subtracting 0xFFFF per overflow is the end-around carry of ones' complement addition.
    while sum > 0xFFFF {
        sum = (sum >> 16) + (sum & 0xFFFF);
    }
    0xFFFF - sum as u16
}

/// Whether a carried checksum agrees with the computed one. Ones' complement has two zeros (0x0000 and 0xFFFF), and
/// clients such as pyzk compute the value over the previous reply id and adjust it, which can land on the other
/// zero; both spellings are accepted.
pub fn checksum_matches(carried: u16, computed: u16) -> bool {
    carried == computed || (carried == 0 && computed == 0xFFFF) || (carried == 0xFFFF && computed == 0)
}

/// Frames packets out of a TCP byte stream.
///
/// Bytes are appended as they arrive ([`TcpFrameDecoder::buffer_mut`] or [`TcpFrameDecoder::extend`]); each call of
/// [`TcpFrameDecoder::next_frame`] returns one complete packet, or `None` until enough bytes are there. A declared
/// length over the limit is refused before anything is allocated for it.
#[derive(Debug)]
pub struct TcpFrameDecoder {
    buf: BytesMut,
    max_len: usize,
}

impl Default for TcpFrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TcpFrameDecoder {
    pub fn new() -> Self {
        Self::with_limit(MAX_PACKET_LEN)
    }

    /// A decoder refusing frames whose header + data exceed `max_len` bytes.
    pub fn with_limit(max_len: usize) -> Self {
        Self { buf: BytesMut::with_capacity(64 * 1024), max_len }
    }

    /// The receive buffer, for `AsyncReadExt::read_buf`.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete packet, if one is buffered.
    ///
    /// # Errors
    /// [`PacketError::BadMagic`] or [`PacketError::TooLong`] when the stream cannot be framed any more (the
    /// connection must be dropped); [`PacketError::TooShort`] or [`PacketError::BadChecksum`] for one bad packet,
    /// which is consumed so the stream stays in step.
    pub fn next_frame(&mut self) -> Result<Option<Packet>, PacketError> {
        self.next_received()?.map(Received::verified).transpose()
    }

    /// The next complete packet with the checksum it carried, not judged: over TCP the length prefix frames the
    /// packet, so a client may accept a wrong checksum (some implementations compute it off by one).
    ///
    /// # Errors
    /// As [`TcpFrameDecoder::next_frame`], without [`PacketError::BadChecksum`].
    pub fn next_received(&mut self) -> Result<Option<Received>, PacketError> {
        if self.buf.len() < TCP_PREFIX_LEN {
            return Ok(None);
        }
        let found = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
        if found != TCP_MAGIC {
            return Err(PacketError::BadMagic { found });
        }
        let len = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len > self.max_len {
            return Err(PacketError::TooLong { len, max: self.max_len });
        }
        if self.buf.len() < TCP_PREFIX_LEN + len {
            // Reserve at most a bounded step: the declared length is the peer's claim, not a reason to allocate.
            let missing = TCP_PREFIX_LEN + len - self.buf.len();
            self.buf.reserve(missing.min(1024 * 1024));
            return Ok(None);
        }
        self.buf.advance(TCP_PREFIX_LEN);
        let frame = self.buf.split_to(len);
        Received::parse(&frame).map(Some)
    }

    /// The first bytes buffered (at most `n`), to say what a peer that lost framing sent.
    pub fn peek(&self, n: usize) -> &[u8] {
        &self.buf[..self.buf.len().min(n)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn checksum_vectors_from_the_reference() {
        // adrobinoga/zk-protocol, test vector 1: payload without its checksum gives 0x175a.
        let p = unhex("0b00 f38d 0300 5a4b4661636556657273696f6e00");
        assert_eq!(checksum(0x000b, 0x8df3, 0x0003, &p[6..]), 0x175a);
        // Test vector 2: "d007 296a f38d 0a00 09", an odd trailing byte.
        assert_eq!(checksum(0x07d0, 0x8df3, 0x000a, &[0x09]), 0x6a29);
        // pyzk test.py: CONNECT with session 0 and reply id 0 is e8 03 17 fc 00 00 00 00.
        assert_eq!(checksum(command::CONNECT, 0, 0, &[]), 0xfc17);
    }

    #[test]
    fn golden_client_packets_encode_byte_for_byte() {
        // pyzk test.py, sent by the client: CONNECT, EXIT and GET_FREE_SIZES over TCP; CONNECT over UDP.
        let connect = Packet::new(command::CONNECT, 0, 0, vec![]);
        assert_eq!(connect.encode(Framing::Tcp), unhex("5050827d08000000e80317fc00000000"));
        assert_eq!(connect.encode(Framing::Udp), unhex("e80317fc00000000"));
        let exit = Packet::new(command::EXIT, 0xfb2f, 1, vec![]);
        assert_eq!(exit.encode(Framing::Tcp), unhex("5050827d08000000e903e6002ffb0100"));
        let sizes = Packet::new(command::GET_FREE_SIZES, 0x45cf, 2, vec![]);
        assert_eq!(sizes.encode(Framing::Tcp), unhex("5050827d080000003200fcb9cf450200"));
        let users = Packet::new(command::PREPARE_BUFFER, 0x45cf, 0x14, unhex("0109000500000000000000"));
        assert_eq!(users.encode(Framing::Tcp), unhex("5050827d13000000df053ca6cf4514000109000500000000000000"));
    }

    #[test]
    fn golden_device_replies_decode_with_valid_checksums() {
        let mut decoder = TcpFrameDecoder::new();
        // ACK_OK to CONNECT (session 0xfb2f) and ACK_UNAUTH (session 0x45cf), from pyzk test.py.
        decoder.extend(&unhex("5050827d08000000d007fffc2ffb0000 5050827d08000000d5075bb2cf450000"));
        let ok = decoder.next_frame().unwrap().unwrap();
        assert_eq!((ok.command, ok.session, ok.reply_id), (command::ACK_OK, 0xfb2f, 0));
        let unauth = decoder.next_frame().unwrap().unwrap();
        assert_eq!((unauth.command, unauth.session), (command::ACK_UNAUTH, 0x45cf));
        assert_eq!(decoder.next_frame().unwrap(), None);
    }

    #[test]
    fn frames_split_across_reads_and_glued_together() {
        let a = Packet::new(command::PREPARE_DATA, 7, 9, 1000u32.to_le_bytes().to_vec());
        let b = Packet::new(command::DATA, 7, 9, (0..1000u32).map(|i| i as u8).collect());
        let c = Packet::new(command::ACK_OK, 7, 9, vec![]);
        let mut stream = Vec::new();
        for p in [&a, &b, &c] {
            p.encode_into(Framing::Tcp, &mut stream);
        }
        for step in [1, 3, 7, 16, 500, stream.len()] {
            let mut decoder = TcpFrameDecoder::new();
            let mut out = Vec::new();
            for piece in stream.chunks(step) {
                decoder.extend(piece);
                while let Some(p) = decoder.next_frame().unwrap() {
                    out.push(p);
                }
            }
            assert_eq!(out, vec![a.clone(), b.clone(), c.clone()], "step {step}");
            assert_eq!(decoder.buffered(), 0);
        }
    }

    #[test]
    fn bad_checksum_is_reported_and_consumed() {
        let p = Packet::new(command::DATA, 1, 2, vec![1, 2, 3]);
        let mut bytes = Vec::new();
        p.encode_with_checksum(Framing::Tcp, p.checksum() ^ 0x0101, &mut bytes);
        p.encode_into(Framing::Tcp, &mut bytes);
        let mut decoder = TcpFrameDecoder::new();
        decoder.extend(&bytes);
        let err = decoder.next_frame().unwrap_err();
        assert!(matches!(err, PacketError::BadChecksum { command: command::DATA, reply_id: 2, .. }), "{err}");
        assert!(err.to_string().contains("bad checksum on DATA"), "{err}");
        assert_eq!(decoder.next_frame().unwrap(), Some(p), "the stream stays in step after a bad packet");
    }

    #[test]
    fn oversized_and_desynced_frames_are_refused_without_allocating() {
        let mut decoder = TcpFrameDecoder::with_limit(1024);
        decoder.extend(&unhex("5050827d ffffff7f"));
        assert_eq!(decoder.next_frame().unwrap_err(), PacketError::TooLong { len: 0x7fff_ffff, max: 1024 });
        assert!(decoder.buf.capacity() < 1024 * 1024);
        let mut decoder = TcpFrameDecoder::new();
        decoder.extend(b"GET / HTTP/1.1\r\n");
        let err = decoder.next_frame().unwrap_err();
        assert_eq!(err.to_string(), "TCP stream lost framing: expected 50 50 82 7D, got 47 45 54 20", "hex beside hex");
        assert_eq!(decoder.peek(4), b"GET ");
        assert_eq!(Packet::parse(&[1, 2, 3]).unwrap_err(), PacketError::TooShort { len: 3 });
    }

    #[test]
    fn foreign_peers_are_named() {
        assert_eq!(describe_foreign(b"HTTP/1.1 400 Bad Request\r\n"), "an HTTP server");
        assert_eq!(describe_foreign(b"SSH-2.0-OpenSSH_9.2"), "an SSH server");
        assert_eq!(describe_foreign(&[0x16, 0x03, 0x01, 0x00]), "a TLS server");
        assert_eq!(describe_foreign(b"+OK"), "with text \"+OK\"");
        assert_eq!(describe_foreign(&[0, 1, 0xfe]), "with bytes 00 01 FE");
    }

    #[test]
    fn wrong_checksums_can_be_accepted_over_tcp() {
        // An implementation that computes the checksum off by one: the stream stays framed by the length prefix.
        let p = Packet::new(command::ACK_OK, 9, 3, vec![1, 2, 3, 4, 5]);
        let mut bytes = Vec::new();
        p.encode_with_checksum(Framing::Tcp, p.checksum().wrapping_add(1), &mut bytes);
        p.encode_into(Framing::Tcp, &mut bytes);
        let mut decoder = TcpFrameDecoder::new();
        decoder.extend(&bytes);
        let first = decoder.next_received().unwrap().unwrap();
        assert!(!first.checksum_ok());
        assert_eq!((first.carried, first.computed()), (p.checksum().wrapping_add(1), p.checksum()));
        assert_eq!(first.packet, p);
        let second = decoder.next_received().unwrap().unwrap();
        assert!(second.checksum_ok());
        assert!(matches!(first.verified(), Err(PacketError::BadChecksum { command: command::ACK_OK, .. })));
    }

    #[test]
    fn pyzk_style_checksums_are_accepted() {
        // pyzk sums the packet with the previous reply id and returns 65534 - sum; for every reply id and a few
        // payloads its value must pass our check, or pyzk could not talk to our simulator.
        fn pyzk_checksum(command: u16, session: u16, old_reply: u16, data: &[u8]) -> u16 {
            let mut bytes = Vec::new();
            for w in [command, 0, session, old_reply] {
                bytes.extend_from_slice(&w.to_le_bytes());
            }
            bytes.extend_from_slice(data);
            let mut sum: i64 = 0;
            let mut chunks = bytes.chunks_exact(2);
            for c in &mut chunks {
                sum += i64::from(u16::from_le_bytes([c[0], c[1]]));
                if sum > 65535 {
                    sum -= 65535;
                }
            }
            if let [last] = chunks.remainder() {
                sum += i64::from(*last);
            }
            while sum > 65535 {
                sum -= 65535;
            }
            let mut c = !sum;
            while c < 0 {
                c += 65535;
            }
            c as u16
        }
        for old_reply in (0u16..65535).step_by(7).chain([65533, 65534]) {
            let new_reply = if old_reply == 65534 { 0 } else { old_reply + 1 };
            for data in [&b""[..], b"~SerialNumber\x00", &[0xff, 0xff, 0xff]] {
                let carried = pyzk_checksum(command::OPTIONS_RRQ, 0x1234, old_reply, data);
                let computed = checksum(command::OPTIONS_RRQ, 0x1234, new_reply, data);
                assert!(checksum_matches(carried, computed), "reply {old_reply}: {carried:#x} vs {computed:#x}");
            }
        }
    }
}
