//! Arbitrary bytes into the batch decoder, in both encodings. It must refuse or accept without panicking, and what it
//! accepts must encode again and decode to the same value (so an acknowledged batch is exactly what was sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{decode, encode, Encoding, PunchBatch};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Bincode, Encoding::Json] {
        if let Ok(batch) = decode::<PunchBatch>(data, encoding) {
            let bytes = encode(&batch, encoding).expect("a decoded batch encodes again");
            let again: PunchBatch = decode(&bytes, encoding).expect("a re-encoded batch decodes");
            assert_eq!(again, batch);
            for item in &batch.punches {
                let _ = item.punch.key();
            }
        }
    }
});
