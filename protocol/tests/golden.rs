//! Golden vectors: the exact bytes of fixed sample values, committed under `tests/golden/`.
//!
//! If one of these fails, the wire format changed: agents and central services of different builds would no longer
//! understand each other. Restore the old bytes, or introduce a new protocol version on purpose.
//!
//! A missing vector is written only when `BLESS_GOLDEN=1` is set (never overwritten); otherwise a missing or
//! different vector fails the test.

mod samples;

use std::path::PathBuf;

use protocol::{decode, decode_upgrading, encode, encode_ack, BatchAck, Encoding, Envelope, Upgradable};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn to_hex_lines(bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let mut out = String::new();
    for chunk in hex.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out
}

/// Compares `actual` with the committed file, or writes it when blessed and missing.
fn check_golden(name: &str, actual: &[u8], as_hex: bool) -> Vec<u8> {
    let path = golden_path(name);
    let rendered =
        if as_hex { to_hex_lines(actual) } else { format!("{}\n", String::from_utf8(actual.to_vec()).unwrap()) };
    match std::fs::read_to_string(&path) {
        Ok(committed) => {
            let committed_bytes = if as_hex {
                let digits: String = committed.chars().filter(|c| !c.is_whitespace()).collect();
                hex::decode(digits).expect("golden file holds hex")
            } else {
                committed.trim_end().as_bytes().to_vec()
            };
            assert!(
                committed_bytes == actual,
                "wire format changed for {name}.\ncommitted:\n{committed}\nnow:\n{rendered}"
            );
            committed_bytes
        }
        Err(_) if std::env::var_os("BLESS_GOLDEN").is_some() => {
            std::fs::write(&path, &rendered).unwrap();
            actual.to_vec()
        }
        Err(e) => {
            panic!("golden vector {} missing ({e}); run with BLESS_GOLDEN=1 to create it.\n{rendered}", path.display())
        }
    }
}

fn check<E: Envelope + PartialEq + std::fmt::Debug>(name: &str, value: &E) {
    let bin = encode(value, Encoding::Bincode).unwrap();
    let committed = check_golden(&format!("{name}.bincode.hex"), &bin, true);
    assert_eq!(&decode::<E>(&committed, Encoding::Bincode).unwrap(), value, "{name}: committed bincode decodes");

    let json = encode(value, Encoding::Json).unwrap();
    let committed = check_golden(&format!("{name}.json"), &json, false);
    assert_eq!(&decode::<E>(&committed, Encoding::Json).unwrap(), value, "{name}: committed JSON decodes");
}

/// A committed version 1 vector still decodes, upgraded to `expected`, in both encodings.
fn check_v1_upgrade<E: Upgradable + PartialEq + std::fmt::Debug>(name: &str, expected: &E) {
    for (file, encoding) in
        [(format!("v1_{name}.bincode.hex"), Encoding::Bincode), (format!("v1_{name}.json"), Encoding::Json)]
    {
        let committed = std::fs::read_to_string(golden_path(&file)).expect("the version 1 vectors are committed");
        let bytes = if encoding == Encoding::Bincode {
            hex::decode(committed.chars().filter(|c| !c.is_whitespace()).collect::<String>()).unwrap()
        } else {
            committed.trim_end().as_bytes().to_vec()
        };
        let read = decode_upgrading::<E>(&bytes, encoding).unwrap();
        assert_eq!(read.wire_version, 1, "{file}");
        assert_eq!(&read.value, expected, "{file} upgrades to the expected value");
        assert!(decode::<E>(&bytes, encoding).is_err(), "{file}: plain decode reads only the current version");
    }
}

/// An acknowledgement answered to a version 1 agent has exactly the bytes version 1 wrote.
fn check_v1_ack(name: &str, ack: &BatchAck) {
    let bin = encode_ack(ack, Encoding::Bincode, 1).unwrap();
    check_golden(&format!("v1_{name}.bincode.hex"), &bin, true);
    let json = encode_ack(ack, Encoding::Json, 1).unwrap();
    check_golden(&format!("v1_{name}.json"), &json, false);
}

#[test]
fn batch_bytes_are_frozen() {
    check("batch", &samples::batch());
    check_v1_upgrade("batch", &samples::batch_v1_upgraded());
    let current = encode(&samples::batch(), Encoding::Bincode).unwrap();
    let read = decode_upgrading::<protocol::PunchBatch>(&current, Encoding::Bincode).unwrap();
    assert_eq!((read.wire_version, read.value), (protocol::PROTOCOL_VERSION, samples::batch()));
}

#[test]
fn ack_bytes_are_frozen() {
    check("ack_stored", &samples::ack_stored());
    check("ack_rejected", &samples::ack_rejected());
    check("ack_unauthorized", &samples::ack_unauthorized());
    check_v1_ack("ack_stored", &samples::ack_stored_v1());
    check_v1_ack("ack_rejected", &samples::ack_rejected_v1());
    assert_eq!(
        encode_ack(&samples::ack_stored(), Encoding::Bincode, 2).unwrap(),
        encode(&samples::ack_stored(), Encoding::Bincode).unwrap()
    );
    assert!(encode_ack(&samples::ack_stored(), Encoding::Bincode, 3).is_err());
}

#[test]
fn status_bytes_are_frozen() {
    check("status", &samples::status());
    check_v1_upgrade("status", &samples::status_v1_upgraded());
}

#[test]
fn command_bytes_are_frozen() {
    for (i, command) in samples::commands().iter().enumerate() {
        check(&format!("command_{i}"), command);
    }
}

#[test]
fn fleet_bytes_are_frozen() {
    check("config", &samples::config());
    check("inbox", &samples::inbox());
    let empty = protocol::AgentInbox { config: None, commands: Vec::new(), ..samples::inbox() };
    check("inbox_empty", &empty);
}

#[test]
fn punch_keys_are_frozen() {
    // The keys of version 1's sample punches: the key covers device, PIN and local time only, so it never changes
    // with the protocol version.
    let batch = samples::batch_v1_upgraded();
    let keys: Vec<String> = batch.punches.iter().map(|p| p.punch.key().to_hex()).collect();
    let text = keys.join("\n");
    check_golden("punch_keys.txt", text.as_bytes(), false);
}
