//! GET_FREE_SIZES: the device's counts and capacities, a run of little-endian i32 fields.
//!
//! users @16, fingerprints @24, records @32, op-log entries @40, admins @48, passwords @52, fingerprint / user /
//! record capacity @56 / @60 / @64, remaining @68 / @72 / @76, faces @80, face capacity @88. Firmware sends
//! different lengths (68 bytes seen, 80 and 92 common): every field that is present is read and the others are
//! `None`, never zero.

/// What GET_FREE_SIZES reported. `None`: the reply was too short to carry the field (or it was negative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceSizes {
    pub users: Option<u32>,
    pub fingerprints: Option<u32>,
    pub records: Option<u32>,
    pub op_log: Option<u32>,
    pub admins: Option<u32>,
    pub passwords: Option<u32>,
    pub fingerprint_capacity: Option<u32>,
    pub user_capacity: Option<u32>,
    pub record_capacity: Option<u32>,
    pub fingerprints_remaining: Option<u32>,
    pub users_remaining: Option<u32>,
    pub records_remaining: Option<u32>,
    pub faces: Option<u32>,
    pub face_capacity: Option<u32>,
}

/// The length of the fullest reply this module knows (up to face capacity).
pub const FULL_LEN: usize = 92;

impl DeviceSizes {
    /// Reads whatever fields `data` carries; longer replies' extra bytes are ignored.
    pub fn parse(data: &[u8]) -> Self {
        let field = |at: usize| -> Option<u32> {
            let bytes = data.get(at..at + 4)?;
            u32::try_from(i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])).ok()
        };
        Self {
            users: field(16),
            fingerprints: field(24),
            records: field(32),
            op_log: field(40),
            admins: field(48),
            passwords: field(52),
            fingerprint_capacity: field(56),
            user_capacity: field(60),
            record_capacity: field(64),
            fingerprints_remaining: field(68),
            users_remaining: field(72),
            records_remaining: field(76),
            faces: field(80),
            face_capacity: field(88),
        }
    }

    /// The reply bytes for these sizes (the simulator uses it); absent fields are written as 0, over `len` bytes.
    pub fn encode(&self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len.max(FULL_LEN)];
        let fields = [
            (16, self.users),
            (24, self.fingerprints),
            (32, self.records),
            (40, self.op_log),
            (48, self.admins),
            (52, self.passwords),
            (56, self.fingerprint_capacity),
            (60, self.user_capacity),
            (64, self.record_capacity),
            (68, self.fingerprints_remaining),
            (72, self.users_remaining),
            (76, self.records_remaining),
            (80, self.faces),
            (88, self.face_capacity),
        ];
        for (at, value) in fields {
            let value = value.map_or(0, |v| i32::try_from(v).unwrap_or(i32::MAX));
            out[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_replies_keep_what_they_carry() {
        let full = DeviceSizes {
            users: Some(7),
            records: Some(605),
            user_capacity: Some(10_000),
            record_capacity: Some(100_000),
            records_remaining: Some(99_395),
            faces: Some(3),
            face_capacity: Some(400),
            ..DeviceSizes::default()
        };
        let bytes = full.encode(FULL_LEN);
        let parsed = DeviceSizes::parse(&bytes);
        assert_eq!((parsed.users, parsed.records, parsed.face_capacity), (Some(7), Some(605), Some(400)));
        let short = DeviceSizes::parse(&bytes[..68]);
        assert_eq!((short.users, short.records, short.record_capacity), (Some(7), Some(605), Some(100_000)));
        assert_eq!((short.records_remaining, short.faces), (None, None), "absent fields are unknown, not zero");
        assert_eq!(DeviceSizes::parse(&[]), DeviceSizes::default());
        let mut negative = bytes.clone();
        negative[32..36].copy_from_slice(&(-1i32).to_le_bytes());
        assert_eq!(DeviceSizes::parse(&negative).records, None);
    }
}
