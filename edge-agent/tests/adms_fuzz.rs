//! Arbitrary bytes into the ADMS push parsers (the cargo-fuzz target `adms_parse` in `edge-agent/fuzz` runs the same
//! entry point for longer): no panic, bounded output, and valid rows survive any junk around them.

use edge_agent::adms::attlog::{fuzz_all, parse_attlog, MAX_SKIPPED_KEPT};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = fuzz_all(&data);
        let parsed = parse_attlog(&data);
        prop_assert!(parsed.skipped.len() <= MAX_SKIPPED_KEPT);
        prop_assert!(parsed.rows.len() + parsed.skipped_total <= data.len());
    }

    #[test]
    fn valid_rows_are_kept_whatever_lines_surround_them(
        junk in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..60), 0..20),
        pins in proptest::collection::vec(1u32..100_000, 1..20),
        crlf: bool,
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut body = Vec::new();
        for (i, pin) in pins.iter().enumerate() {
            if let Some(line) = junk.get(i) {
                // A junk line that happens to be a valid row would be counted; make it invalid for sure.
                body.extend_from_slice(b"#");
                body.extend_from_slice(line);
                body.extend_from_slice(b"\n");
            }
            body.extend_from_slice(format!("{pin}\t2026-03-02 08:{:02}:00\t0\t1\t0\t0\t0{end}", i % 60).as_bytes());
        }
        let parsed = parse_attlog(&body);
        let got: Vec<String> = parsed.rows.iter().map(|r| r.pin.clone()).collect();
        let want: Vec<String> = pins.iter().map(u32::to_string).collect();
        prop_assert_eq!(got, want);
    }
}
