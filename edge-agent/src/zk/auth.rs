//! The comm-key answer to `ACK_UNAUTH`: what `CMD_AUTH` carries when a device has a communication password.
//!
//! From the vendor SDK's `MakeKey` (as pyzk's `make_commkey` reproduces it): reverse the key's 32 bits, add the
//! session id, XOR the four little-endian bytes with `"ZKSO"`, swap the two 16-bit halves, then XOR with a "ticks"
//! byte B and put B itself in the third place.

/// The ticks byte every known client sends.
pub const DEFAULT_TICKS: u8 = 50;

/// The 4-byte `CMD_AUTH` payload for comm key `key` in session `session`.
pub fn comm_key(key: u32, session: u16, ticks: u8) -> [u8; 4] {
    let k = key.reverse_bits().wrapping_add(u32::from(session)).to_le_bytes();
    let x = [k[0] ^ b'Z', k[1] ^ b'K', k[2] ^ b'S', k[3] ^ b'O'];
    let swapped = [x[2], x[3], x[0], x[1]];
    [swapped[0] ^ ticks, swapped[1] ^ ticks, ticks, swapped[3] ^ ticks]
}

/// Whether `payload` is a valid `CMD_AUTH` answer for `key` in `session`, whatever ticks byte the client chose.
pub fn verify(payload: &[u8], key: u32, session: u16) -> bool {
    match payload {
        [_, _, ticks, _] => comm_key(key, session, *ticks) == payload,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_from_pyzk_fixtures() {
        // test.py test_tcp_unauth: key 12 in session 0x45cf sends 61 4d 32 3c.
        assert_eq!(comm_key(12, 0x45cf, DEFAULT_TICKS), [0x61, 0x4d, 0x32, 0x3c]);
        // test.py test_tcp_auth: key 45 in session 0x45cf sends 61 c9 32 3c.
        assert_eq!(comm_key(45, 0x45cf, DEFAULT_TICKS), [0x61, 0xc9, 0x32, 0x3c]);
    }

    #[test]
    fn verify_accepts_the_right_key_only() {
        let payload = comm_key(123_456, 77, DEFAULT_TICKS);
        assert!(verify(&payload, 123_456, 77));
        assert!(!verify(&payload, 123_457, 77));
        // The session's low byte is replaced by the ticks byte, so only a change above it shows.
        assert!(!verify(&payload, 123_456, 77 + 0x100));
        assert!(!verify(&payload[..3], 123_456, 77));
        assert!(verify(&comm_key(0, 0, 7), 0, 0));
    }

    #[test]
    fn large_keys_do_not_overflow() {
        // bitreverse(0xFFFFFFFF) + session overflows 32 bits; the device keeps the low 32 bits.
        let _ = comm_key(u32::MAX, u16::MAX, DEFAULT_TICKS);
        assert!(verify(&comm_key(u32::MAX, u16::MAX, 9), u32::MAX, u16::MAX));
    }
}
