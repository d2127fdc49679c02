//! Arbitrary bytes into every ZKTeco decoder: no panic, and no allocation driven by a length field (the cargo-fuzz
//! target in `edge-agent/fuzz` runs the same entry point for longer).

use edge_agent::zk::buffer::{ChunkAssembler, ChunkProgress};
use edge_agent::zk::fuzzing::{allocation_bound, decode_all};
use edge_agent::zk::packet::{Framing, Packet, TcpFrameDecoder};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        decode_all(&data);
    }

    #[test]
    fn frames_with_arbitrary_headers_and_lengths(
        command in any::<u16>(),
        declared in any::<u32>(),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        // A well-formed prefix with a hostile length: the decoder waits or refuses, and never reserves the claim.
        let mut bytes = vec![0x50, 0x50, 0x82, 0x7d];
        bytes.extend_from_slice(&declared.to_le_bytes());
        bytes.extend_from_slice(&command.to_le_bytes());
        bytes.extend_from_slice(&body);
        let mut decoder = TcpFrameDecoder::new();
        decoder.extend(&bytes);
        let _ = decoder.next_frame();
        prop_assert!(decoder.buffer_mut().capacity() <= allocation_bound(bytes.len()));
        decode_all(&bytes);
    }

    #[test]
    fn valid_packets_survive_any_split(
        packets in proptest::collection::vec((any::<u16>(), any::<u16>(), proptest::collection::vec(any::<u8>(), 0..300)), 1..8),
        step in 1usize..64,
    ) {
        let packets: Vec<Packet> = packets.into_iter().map(|(c, r, d)| Packet::new(c, 7, r, d)).collect();
        let mut stream = Vec::new();
        for p in &packets {
            p.encode_into(Framing::Tcp, &mut stream);
        }
        let mut decoder = TcpFrameDecoder::new();
        let mut out = Vec::new();
        for piece in stream.chunks(step) {
            decoder.extend(piece);
            while let Some(p) = decoder.next_frame().unwrap() {
                out.push(p);
            }
        }
        prop_assert_eq!(out, packets);
    }

    #[test]
    fn the_chunk_assembler_never_holds_more_than_its_limit(
        sizes in proptest::collection::vec((any::<u16>(), 0usize..3000), 1..20),
        limit in 0usize..5000,
    ) {
        let mut assembler = ChunkAssembler::new("READ_BUFFER", limit);
        for (code, len) in sizes {
            let data = if code % 3 == 0 { (len as u32).to_le_bytes().to_vec() } else { vec![0; len] };
            let command = [1500u16, 1501, 2000, code][usize::from(code % 4)];
            match assembler.push(Packet::new(command, 0, 0, data)) {
                Ok(ChunkProgress::NeedMore) => prop_assert!(assembler.received() <= limit),
                Ok(ChunkProgress::Complete(d)) => {
                    prop_assert!(d.len() <= limit);
                    assembler = ChunkAssembler::new("READ_BUFFER", limit);
                }
                Err(_) => assembler = ChunkAssembler::new("READ_BUFFER", limit),
            }
        }
    }
}
