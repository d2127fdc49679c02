//! Decoders refuse what is too big, from another version, or inconsistent, with an error naming the problem.

mod samples;

use protocol::limits::{MAX_ENVELOPE_BYTES, MAX_PUNCHES_PER_BATCH};
use protocol::*;

#[test]
fn unknown_version_is_refused_in_both_encodings() {
    let mut batch = samples::batch();
    batch.version = 3;
    // Encode bypassing `encode`'s checks is not possible, so write the bytes by hand from a valid batch.
    let mut bin = encode(&samples::batch(), Encoding::Bincode).unwrap();
    assert_eq!(bin[0], 2, "version is the first byte (varint 2)");
    bin[0] = 3;
    assert_eq!(
        decode::<PunchBatch>(&bin, Encoding::Bincode).unwrap_err(),
        DecodeError::UnsupportedVersion { found: 3, supported: 2 }
    );
    assert_eq!(
        decode_upgrading::<PunchBatch>(&bin, Encoding::Bincode).unwrap_err(),
        DecodeError::UnsupportedVersion { found: 3, supported: 2 }
    );
    let json = serde_json::to_vec(&batch).unwrap();
    let err = decode::<PunchBatch>(&json, Encoding::Json).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 3, supported: 2 });
    assert_eq!(err.to_string(), "unsupported protocol version 3; this build speaks version 2");
    batch.version = 0;
    let json = serde_json::to_vec(&batch).unwrap();
    let err = decode_upgrading::<PunchBatch>(&json, Encoding::Json).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: 0, supported: 2 });
}

#[test]
fn a_current_batch_with_the_previous_version_number_is_malformed_not_misread() {
    // Version 1 has no batch id and no raw codes: a version 2 body labelled 1 must fail to parse, not decode into
    // something else.
    let mut bin = encode(&samples::batch(), Encoding::Bincode).unwrap();
    bin[0] = 1;
    let err = decode_upgrading::<PunchBatch>(&bin, Encoding::Bincode).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { .. }), "{err}");
}

#[test]
fn too_many_punches_are_refused_on_both_sides() {
    let mut batch = samples::batch();
    let template = batch.punches[0].clone();
    batch.punches = (0..=MAX_PUNCHES_PER_BATCH as u64)
        .map(|i| SequencedPunch { seq: i + 1, punch: template.punch.clone() })
        .collect();
    batch.first_seq = 1;
    batch.last_seq = MAX_PUNCHES_PER_BATCH as u64 + 1;
    let expected =
        DecodeError::TooMany { what: "punches", count: MAX_PUNCHES_PER_BATCH + 1, limit: MAX_PUNCHES_PER_BATCH };
    assert_eq!(encode(&batch, Encoding::Bincode).unwrap_err(), EncodeError::Invalid(expected.clone()));
    let bytes = serde_json::to_vec(&batch).unwrap();
    let err = decode::<PunchBatch>(&bytes, Encoding::Json).unwrap_err();
    assert_eq!(err, expected);
    assert!(err.is_size_limit());
}

#[test]
fn oversize_payload_is_refused_before_parsing() {
    let bytes = vec![b' '; MAX_ENVELOPE_BYTES + 1];
    let err = decode::<PunchBatch>(&bytes, Encoding::Json).unwrap_err();
    assert_eq!(err, DecodeError::TooLarge { size: MAX_ENVELOPE_BYTES + 1, limit: MAX_ENVELOPE_BYTES });
    assert!(err.is_size_limit());
}

#[test]
fn huge_length_prefix_does_not_allocate() {
    // version 2, agent id with a claimed length of 2^62 bytes.
    let mut bytes = vec![2u8, 0xff];
    bytes.extend_from_slice(&(1u64 << 62).to_le_bytes());
    let err = decode::<PunchBatch>(&bytes, Encoding::Bincode).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed { encoding: "bincode", kind: "batch", .. }), "{err}");
}

#[test]
fn over_long_strings_are_named() {
    let mut json = serde_json::to_value(samples::batch()).unwrap();
    json["punches"][0]["punch"]["pin"] = serde_json::Value::String("9".repeat(40));
    let err = decode::<PunchBatch>(&serde_json::to_vec(&json).unwrap(), Encoding::Json).unwrap_err();
    assert!(err.to_string().contains("PIN is 40 bytes long, over the limit of 32"), "{err}");

    let mut ack = samples::ack_rejected();
    ack.outcome = AckOutcome::Rejected { reason: "x".repeat(5_000), kind: RejectionKind::Permanent };
    let err = decode::<BatchAck>(&serde_json::to_vec(&ack).unwrap(), Encoding::Json).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { field: "outcome.reason", .. }), "{err}");
    // The constructor cuts long reasons, so central can always send one.
    let ack = BatchAck::rejected(&samples::batch(), RejectionKind::Retry, "é".repeat(5_000));
    assert!(encode(&ack, Encoding::Bincode).is_ok());
}

#[test]
fn inconsistent_batches_are_refused() {
    let mut batch = samples::batch();
    batch.punches.swap(0, 1);
    let err = decode::<PunchBatch>(&serde_json::to_vec(&batch).unwrap(), Encoding::Json).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { field: "punches.seq", .. }), "{err}");

    let mut batch = samples::batch();
    batch.last_seq = 100;
    let err = decode::<PunchBatch>(&serde_json::to_vec(&batch).unwrap(), Encoding::Json).unwrap_err();
    assert!(err.to_string().contains("punch 2 has seq 300 outside 41..=100"), "{err}");

    let mut batch = samples::batch();
    batch.punches[1].punch.site = "plant-2".parse().unwrap();
    let err = decode::<PunchBatch>(&serde_json::to_vec(&batch).unwrap(), Encoding::Json).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { field: "punches.site", .. }), "{err}");

    let mut batch = samples::batch();
    batch.punches.clear();
    let err = decode::<PunchBatch>(&serde_json::to_vec(&batch).unwrap(), Encoding::Json).unwrap_err();
    assert!(matches!(err, DecodeError::Invalid { field: "punches", .. }), "{err}");
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bin = encode(&samples::ack_stored(), Encoding::Bincode).unwrap();
    bin.push(0);
    let err = decode::<BatchAck>(&bin, Encoding::Bincode).unwrap_err();
    assert!(err.to_string().contains("1 trailing bytes after the ack"), "{err}");
}

#[test]
fn content_types() {
    assert_eq!(Encoding::from_content_type("application/x-bincode"), Some(Encoding::Bincode));
    assert_eq!(Encoding::from_content_type("Application/JSON; charset=utf-8"), Some(Encoding::Json));
    assert_eq!(Encoding::from_content_type("text/plain"), None);
}

/// Issue 12: a bincode batch over the punch limit is a size refusal (413) like the JSON one, not a malformed body.
#[test]
fn too_many_punches_in_bincode_are_a_size_refusal() {
    let mut batch = samples::batch();
    let template = batch.punches[0].clone();
    for count in [MAX_PUNCHES_PER_BATCH + 1, 20_000, 60_000] {
        batch.punches =
            (0..count as u64).map(|i| SequencedPunch { seq: i + 1, punch: template.punch.clone() }).collect();
        batch.first_seq = 1;
        batch.last_seq = count as u64;
        let bytes = bincode::serde::encode_to_vec(&batch, bincode::config::standard()).unwrap();
        assert!(bytes.len() <= MAX_ENVELOPE_BYTES, "{} bytes", bytes.len());
        for err in [
            decode::<PunchBatch>(&bytes, Encoding::Bincode).unwrap_err(),
            decode_upgrading::<PunchBatch>(&bytes, Encoding::Bincode).unwrap_err(),
        ] {
            assert!(err.is_size_limit(), "{count} punches: {err:?}");
            assert!(err.to_string().contains("punches"), "{err}");
        }
    }
}
