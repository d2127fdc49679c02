//! The in-memory side of the key index: 8 bytes per key, a filter that says where in the store a key may be.
//!
//! sled's cost is per entry: one index entry per punch capped appends at a few tens of thousands of punches per
//! second. So the index is stored as one entry of packed keys per append (see `layout`), and looked up here instead.
//! Holding the 16-byte keys themselves took 16 MB per million keys, a third of the agent's memory with a large backlog.
//! Each key is held instead as one `u64`: a 32-bit fingerprint (the key's first four bytes; keys are SHA-256 output)
//! and the low 32 bits of the key's sequence number. A lookup returns the sequence numbers whose fingerprint matches,
//! and the caller reads the key stored there (one key chunk) to decide: a fingerprint match is never taken as a
//! duplicate by itself, so a distinct punch is never dropped. With a million keys a new key matches another's
//! fingerprint with probability 1/4,300, so the extra reads cost nothing measurable; a true duplicate costs one read.
//!
//! A sequence number is recovered from its low 32 bits within the window `[floor, next_seq)` that holds every indexed
//! key; when the window is wider than 2^32 (four billion punches within the retention) every candidate is returned,
//! so lookups stay exact, only slower.
//!
//! Entries sit in a sorted vector searched by bisection, plus a B-tree of recent entries merged into it in bulk.

use std::collections::BTreeSet;

use protocol::PunchKey;

/// Recent entries are merged into the sorted vector in batches of this size, in linear time.
const MERGE_AT: usize = 64 * 1024;
/// Sequence numbers repeat their low 32 bits every this many.
const WRAP: u64 = 1 << 32;

#[derive(Default)]
pub struct KeySet {
    sorted: Vec<u64>,
    recent: BTreeSet<u64>,
    /// Every indexed key has a sequence number at or above this.
    floor: u64,
}

fn fingerprint(raw: &[u8; 16]) -> u64 {
    u64::from(u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]))
}

fn entry(raw: &[u8; 16], seq: u64) -> u64 {
    (fingerprint(raw) << 32) | (seq & (WRAP - 1))
}

impl KeySet {
    /// A set of `(key, sequence)` pairs (any order); every sequence number is at or above `floor`.
    pub fn from_entries(pairs: impl Iterator<Item = ([u8; 16], u64)>, capacity: usize, floor: u64) -> Self {
        let mut sorted = Vec::with_capacity(capacity);
        sorted.extend(pairs.map(|(raw, seq)| entry(&raw, seq)));
        sorted.sort_unstable();
        sorted.dedup();
        sorted.shrink_to_fit();
        Self { sorted, recent: BTreeSet::new(), floor }
    }

    /// The sequence numbers below `next_seq` at which `key` may be stored, in no particular order; the key is stored
    /// at most at one of them, and nowhere else.
    pub fn candidates(&self, key: &PunchKey, next_seq: u64) -> Vec<u64> {
        let fp = fingerprint(key.as_bytes());
        let low = fp << 32;
        let high = low | (WRAP - 1);
        let start = self.sorted.partition_point(|&e| e < low);
        let matching = self.sorted[start..].iter().take_while(|&&e| e <= high);
        let mut out = Vec::new();
        for &e in matching.chain(self.recent.range(low..=high)) {
            let mut seq = self.first_seq_with_low_bits(e);
            while seq < next_seq {
                out.push(seq);
                seq = match seq.checked_add(WRAP) {
                    Some(next) => next,
                    None => break,
                };
            }
        }
        out
    }

    /// Adds `key`, stored at `seq` (not yet in the set).
    pub fn insert(&mut self, key: &PunchKey, seq: u64) {
        self.recent.insert(entry(key.as_bytes(), seq));
        if self.recent.len() >= MERGE_AT {
            self.merge();
        }
    }

    /// Forgets the keys stored at sequence numbers in `from..to` (their chunks were deleted). With a window wider than
    /// 2^32 an entry whose sequence number is ambiguous is kept: a stale entry only costs a read that finds nothing.
    pub fn forget(&mut self, from: u64, to: u64, next_seq: u64) {
        let window_unique = next_seq.saturating_sub(self.floor) <= WRAP;
        let floor = self.floor;
        let keep = |e: &u64| {
            let seq = floor + ((*e).wrapping_sub(floor) & (WRAP - 1));
            !(window_unique && (from..to).contains(&seq))
        };
        self.sorted.retain(keep);
        self.recent.retain(keep);
        if from <= self.floor && to > self.floor {
            self.floor = to;
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// The smallest sequence number at or above the floor with the entry's low 32 bits.
    fn first_seq_with_low_bits(&self, entry: u64) -> u64 {
        self.floor + (entry.wrapping_sub(self.floor) & (WRAP - 1))
    }

    /// Merges the recent entries into the sorted vector from the back, without a second vector.
    fn merge(&mut self) {
        let add: Vec<u64> = std::mem::take(&mut self.recent).into_iter().collect();
        let old = self.sorted.len();
        self.sorted.reserve_exact(add.len());
        self.sorted.resize(old + add.len(), 0);
        let (mut i, mut j, mut k) = (old, add.len(), self.sorted.len());
        while j > 0 {
            if i > 0 && self.sorted[i - 1] > add[j - 1] {
                self.sorted[k - 1] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k - 1] = add[j - 1];
                j -= 1;
            }
            k -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> PunchKey {
        let mut raw = [0u8; 16];
        // Spread the keys so merges interleave.
        raw[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
        raw[8..].copy_from_slice(&n.to_be_bytes());
        PunchKey::from_bytes(raw)
    }

    #[test]
    fn finds_each_key_at_its_sequence_across_merges() {
        let total = 1000 + 3 * MERGE_AT as u64 + 17;
        let mut set = KeySet::from_entries((1..=1000).map(|n| (*key(n).as_bytes(), n)), 1000, 1);
        for n in 1001..=total {
            set.insert(&key(n), n);
        }
        assert_eq!(set.len() as u64, total);
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]), "the merged vector stays sorted");
        assert!((1..=total).all(|n| set.candidates(&key(n), total + 1).contains(&n)));
        let unknown = (0..100u64).filter(|n| !set.candidates(&key(u64::MAX - n), total + 1).is_empty()).count();
        assert!(unknown <= 1, "an unknown key rarely matches a fingerprint ({unknown} of 100 did)");
    }

    #[test]
    fn a_fingerprint_collision_returns_both_sequences() {
        let mut a = [7u8; 16];
        let mut b = [7u8; 16];
        a[15] = 1;
        b[15] = 2;
        let mut set = KeySet::from_entries([(a, 5)].into_iter(), 1, 5);
        set.insert(&PunchKey::from_bytes(b), 9);
        let mut found = set.candidates(&PunchKey::from_bytes(a), 10);
        found.sort_unstable();
        assert_eq!(found, vec![5, 9], "the caller tells them apart by reading the stored keys");
    }

    #[test]
    fn sequences_past_the_32_bit_wrap_are_recovered() {
        let floor = WRAP - 10;
        let mut set = KeySet::from_entries([(*key(1).as_bytes(), floor)].into_iter(), 1, floor);
        set.insert(&key(2), WRAP + 5);
        assert_eq!(set.candidates(&key(1), WRAP + 6), vec![floor]);
        assert_eq!(set.candidates(&key(2), WRAP + 6), vec![WRAP + 5]);
        // A window wider than 2^32 returns every sequence with the same low bits.
        assert_eq!(set.candidates(&key(1), floor + WRAP + 1), vec![floor, floor + WRAP]);
    }

    #[test]
    fn forget_drops_a_range_and_raises_the_floor() {
        let mut set = KeySet::from_entries((1..=10).map(|n| (*key(n).as_bytes(), n)), 10, 1);
        set.insert(&key(11), 11);
        set.forget(1, 6, 12);
        assert_eq!(set.len(), 6);
        assert!((1..6).all(|n| set.candidates(&key(n), 12).is_empty()));
        assert!((6..=11).all(|n| set.candidates(&key(n), 12) == vec![n]));
        set.forget(8, 9, 12);
        assert!(set.candidates(&key(8), 12).is_empty() && set.candidates(&key(9), 12) == vec![9]);
        assert_eq!(KeySet::default().len(), 0);
    }
}
