//! One entry point that runs every decoder over untrusted bytes, shared by the cargo-fuzz target
//! (`edge-agent/fuzz`) and the proptest run in CI. It must never panic and never let a length field from the input
//! make it allocate beyond the limits.

use super::buffer::{self, ChunkAssembler, ChunkProgress};
use super::event::parse_attlog;
use super::packet::{Packet, TcpFrameDecoder};
use super::records::{parse_attendance, RecordLayout};
use super::sizes::DeviceSizes;
use super::templates::{decode_upload, parse_templates};
use super::users::parse_users;
use super::{options, time};

/// Largest number of bytes a decoder may hold for one input of `len` bytes: what it was given, plus the bounded step
/// the TCP decoder reserves ahead.
pub fn allocation_bound(len: usize) -> usize {
    len + 2 * 1024 * 1024
}

/// Runs every decoder over `data`. The first byte picks the read sizes and counts so that all branches are reached.
/// Returns how many packets the TCP decoder framed (for tests that want to see it do something).
pub fn decode_all(data: &[u8]) -> usize {
    let selector = data.first().copied().unwrap_or(0);
    let count = data.get(1).map(|b| u32::from(*b));

    let _ = Packet::parse(data);
    let _ = DeviceSizes::parse(data);
    let _ = options::parse_reply(data);
    let _ = parse_attlog(data);
    let layout = RecordLayout::ALL.get(usize::from(selector % 4)).copied();
    let _ = parse_attendance(data, count, layout);
    let _ = parse_users(data, count);
    let _ = parse_templates(data);
    let _ = decode_upload(data);
    if let Some(raw) = data.first_chunk::<4>() {
        let _ = time::decode(u32::from_le_bytes(*raw));
    }
    if let Some(raw) = data.first_chunk::<6>() {
        let _ = time::decode_bytes(*raw);
    }

    // The TCP stream, fed in pieces of a size the input picks.
    let step = usize::from(selector).max(1);
    let mut decoder = TcpFrameDecoder::new();
    let mut framed = 0;
    let mut assembler = ChunkAssembler::new("READ_BUFFER", buffer::MAX_CHUNK_TCP);
    for piece in data.chunks(step) {
        decoder.extend(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(packet)) => {
                    framed += 1;
                    let _ = buffer::parse_prepare_buffer_reply(packet.clone());
                    if let Ok(ChunkProgress::Complete(_)) | Err(_) = assembler.push(packet) {
                        assembler = ChunkAssembler::new("READ_BUFFER", buffer::MAX_CHUNK_TCP);
                    }
                }
                Ok(None) => break,
                Err(_) => return framed,
            }
            assert!(decoder.buffer_mut().capacity() <= allocation_bound(data.len()), "TCP decoder over-allocated");
        }
    }
    framed
}
