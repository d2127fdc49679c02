//! Every ZKTeco decoder over arbitrary bytes (see `edge_agent::zk::fuzzing::decode_all`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    edge_agent::zk::fuzzing::decode_all(data);
});
