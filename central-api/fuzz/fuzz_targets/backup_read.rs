//! Arbitrary bytes (plain or gzip) as a backup file: the reader must return, never panic, and stay within its
//! byte budgets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = central_api::backup::reader::fuzz_read(data);
});
