//! Arbitrary bytes as Hikvision and Dahua answers and event streams: every decoder must return without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = edge_agent::http_terminal::fuzzing::decode_all(data);
});
