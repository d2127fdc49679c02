//! Arbitrary bytes into the other envelope decoders (ack, status, command) in both encodings: no panic, and accepted
//! values survive a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{decode, encode, AgentCommand, AgentStatus, BatchAck, Encoding, Envelope};

fn round_trip<E: Envelope + PartialEq + std::fmt::Debug>(data: &[u8], encoding: Encoding) {
    if let Ok(value) = decode::<E>(data, encoding) {
        let bytes = encode(&value, encoding).expect("a decoded envelope encodes again");
        let again: E = decode(&bytes, encoding).expect("a re-encoded envelope decodes");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        round_trip::<BatchAck>(data, encoding);
        round_trip::<AgentStatus>(data, encoding);
        round_trip::<AgentCommand>(data, encoding);
    }
});
