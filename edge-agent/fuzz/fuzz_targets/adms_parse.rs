//! Arbitrary bytes as a pushed body and query string: every ADMS parser must return without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = edge_agent::adms::attlog::fuzz_all(data);
});
