//! Signed frames: golden vectors (the exact bytes of the sample envelopes signed with a fixed token, and the keys
//! derived from it), and property tests: a frame opens only with the right keys, agent and kind, any changed byte is
//! refused, and no byte string makes the reader panic.

mod samples;

use std::path::PathBuf;

use proptest::prelude::*;
use protocol::signed::{is_signed_frame, token_secret_hash, MAC_LEN};
use protocol::*;

/// A fixed token for the vectors (never a real one).
const TOKEN: &str = "agt_gate-pc-01_5f2c0e1a9b7d4c3e8f6a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

fn keys() -> AgentKeys {
    let (agent, keys) = AgentKeys::from_token(TOKEN).unwrap();
    assert_eq!(agent, samples::agent());
    keys
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

/// Compares `actual` (as hex lines) with the committed file; writes it only when `BLESS_GOLDEN=1` and it is missing.
fn check_golden(name: &str, rendered: &str) {
    let path = golden_path(name);
    match std::fs::read_to_string(&path) {
        Ok(committed) => {
            assert!(committed == rendered, "wire format changed for {name}.\ncommitted:\n{committed}\nnow:\n{rendered}")
        }
        Err(_) if std::env::var_os("BLESS_GOLDEN").is_some() => std::fs::write(&path, rendered).unwrap(),
        Err(e) => {
            panic!("golden vector {} missing ({e}); run with BLESS_GOLDEN=1 to create it.\n{rendered}", path.display())
        }
    }
}

fn hex_lines(bytes: &[u8]) -> String {
    hex::encode(bytes).as_bytes().chunks(64).map(|c| format!("{}\n", std::str::from_utf8(c).unwrap())).collect()
}

/// The frame of `envelope` is frozen, reads back, and opens to the envelope's own bytes.
fn check_frame<E: Envelope + PartialEq + std::fmt::Debug>(name: &str, envelope: &E) {
    let keys = keys();
    let bytes = keys.seal_envelope(&samples::agent(), envelope).unwrap();
    check_golden(&format!("signed_{name}.bincode.hex"), &hex_lines(&bytes));
    let frame = SignedFrame::from_bytes(&bytes).unwrap();
    let payload = keys.open(&frame, &samples::agent(), FrameKind::of::<E>()).unwrap();
    assert_eq!(payload, encode(envelope, Encoding::Bincode).unwrap().as_slice(), "{name}: the payload is the envelope");
    assert_eq!(&decode::<E>(payload, Encoding::Bincode).unwrap(), envelope);
}

#[test]
fn signed_frames_are_frozen() {
    check_frame("batch", &samples::batch());
    check_frame("ack_stored", &samples::ack_stored());
    check_frame("ack_rejected", &samples::ack_rejected());
    check_frame("status", &samples::status());
    check_frame("command", &samples::commands()[0]);
    check_frame("command_set_users", &samples::commands()[10]);
    check_frame("config", &samples::config());
}

/// The derived keys, checked against values computed outside this code (Python's `hashlib` and `hmac`):
/// `h = sha256(secret)`, `password = hmac_sha256(h, "attendance/mqtt/v1/broker-password").hex()`.
#[test]
fn derived_keys_are_frozen() {
    let (_, hash) = token_secret_hash(TOKEN).unwrap();
    let rendered = format!("secret_hash {}\nbroker_password {}\n", hex::encode(hash), keys().broker_password());
    check_golden("signed_keys.txt", &rendered);
}

#[test]
fn a_bare_envelope_is_not_a_frame() {
    let bare = encode(&samples::batch(), Encoding::Bincode).unwrap();
    assert!(!is_signed_frame(&bare));
    let err = SignedFrame::from_bytes(&bare).unwrap_err();
    assert_eq!(err, DecodeError::UnsupportedVersion { found: PROTOCOL_VERSION, supported: SIGNED_FRAME_VERSION });
    // A peer of the previous release reads a frame as a version it does not speak.
    let frame = keys().seal_envelope(&samples::agent(), &samples::batch()).unwrap();
    let err = decode_upgrading::<PunchBatch>(&frame, Encoding::Bincode).unwrap_err();
    assert!(matches!(err, DecodeError::UnsupportedVersion { found: SIGNED_FRAME_VERSION, .. }), "{err}");
}

#[test]
fn oversized_frames_are_refused_before_parsing() {
    let bytes = vec![0u8; signed::MAX_FRAME_BYTES + 1];
    assert!(matches!(SignedFrame::from_bytes(&bytes), Err(DecodeError::TooLarge { .. })));
    let frame = keys().seal(&samples::agent(), FrameKind::Batch, vec![0; limits::MAX_ENVELOPE_BYTES + 1]);
    assert!(frame.to_bytes().is_err());
}

fn agent() -> impl Strategy<Value = AgentId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| s.parse().unwrap())
}

fn token() -> impl Strategy<Value = String> {
    (agent(), prop::array::uniform32(any::<u8>()))
        .prop_map(|(agent, secret)| format!("agt_{agent}_{}", hex::encode(secret)))
}

fn kind() -> impl Strategy<Value = FrameKind> {
    prop::sample::select(FrameKind::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_sealed_frame_opens_with_its_keys_only(
        token in token(), other in token(), kind in kind(), payload in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        let (agent, keys) = AgentKeys::from_token(&token).unwrap();
        let bytes = keys.seal(&agent, kind, payload.clone()).to_bytes().unwrap();
        let frame = SignedFrame::from_bytes(&bytes).unwrap();
        prop_assert_eq!(keys.open(&frame, &agent, kind).unwrap(), payload.as_slice());
        let (_, other_keys) = AgentKeys::from_token(&other).unwrap();
        if other != token {
            prop_assert!(other_keys.open(&frame, &agent, kind).is_err(), "another token's keys open the frame");
        }
    }

    #[test]
    fn any_changed_byte_is_refused(
        kind in kind(),
        payload in prop::collection::vec(any::<u8>(), 1..300),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let keys = keys();
        let agent = samples::agent();
        let mut bytes = keys.seal(&agent, kind, payload).to_bytes().unwrap();
        let at = at.index(bytes.len());
        bytes[at] ^= flip;
        let opened = SignedFrame::from_bytes(&bytes).map(|frame| keys.open(&frame, &agent, kind).map(<[u8]>::to_vec));
        prop_assert!(!matches!(opened, Ok(Ok(_))), "byte {} changed and the frame still opened", at);
    }

    #[test]
    fn cut_or_extended_frames_are_refused(payload in prop::collection::vec(any::<u8>(), 0..300), cut in 1usize..40) {
        let keys = keys();
        let bytes = keys.seal(&samples::agent(), FrameKind::Ack, payload).to_bytes().unwrap();
        let short = &bytes[..bytes.len().saturating_sub(cut)];
        prop_assert!(SignedFrame::from_bytes(short).is_err());
        let mut long = bytes.clone();
        long.extend(std::iter::repeat_n(0u8, cut));
        prop_assert!(SignedFrame::from_bytes(&long).is_err());
        prop_assert_eq!(bytes.len() >= MAC_LEN, true);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in prop::collection::vec(any::<u8>(), 0..512), frame_like in any::<bool>()) {
        if frame_like {
            // Start like a frame so the parser goes past the version.
            bytes.splice(0..0, [0xfb, 0x00, 0x01]);
        }
        if let Ok(frame) = SignedFrame::from_bytes(&bytes) {
            let _ = keys().open(&frame, &samples::agent(), frame.kind);
        }
    }
}
