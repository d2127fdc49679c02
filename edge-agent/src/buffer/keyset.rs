//! The keys of the key index, held in memory for deduplication: 16 bytes per key.
//!
//! sled's cost is per entry: one index entry per punch capped appends at a few tens of thousands of punches per
//! second. So the index is stored as one entry of packed keys per append (see `layout`), and looked up here instead:
//! a sorted vector searched by bisection, plus a hash set of recent keys merged into it in bulk. A million keys (45 days
//! of a site with 5,000 people punching four times a day) take about 16 MB.

use std::collections::HashSet;

use protocol::PunchKey;

/// Recent keys are merged into the sorted vector in batches of this size, in linear time.
const MERGE_AT: usize = 64 * 1024;

#[derive(Default)]
pub struct KeySet {
    sorted: Vec<[u8; 16]>,
    recent: HashSet<[u8; 16]>,
}

impl KeySet {
    /// A set of `keys` (any order, duplicates dropped).
    pub fn from_keys(mut keys: Vec<[u8; 16]>) -> Self {
        keys.sort_unstable();
        keys.dedup();
        keys.shrink_to_fit();
        Self { sorted: keys, recent: HashSet::new() }
    }

    pub fn contains(&self, key: &PunchKey) -> bool {
        let raw = key.as_bytes();
        self.recent.contains(raw) || self.sorted.binary_search(raw).is_ok()
    }

    /// Adds a key not yet in the set.
    pub fn insert(&mut self, key: &PunchKey) {
        self.recent.insert(*key.as_bytes());
        if self.recent.len() >= MERGE_AT {
            self.merge();
        }
    }

    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Merges the recent keys into the sorted vector from the back, without a second vector.
    fn merge(&mut self) {
        let mut add: Vec<[u8; 16]> = self.recent.drain().collect();
        add.sort_unstable();
        let old = self.sorted.len();
        self.sorted.reserve_exact(add.len());
        self.sorted.resize(old + add.len(), [0; 16]);
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
    fn holds_exactly_what_was_inserted_across_merges() {
        let mut set = KeySet::from_keys((0..1000).map(|n| *key(n).as_bytes()).collect());
        for n in 1000..(1000 + 3 * MERGE_AT as u64 + 17) {
            assert!(!set.contains(&key(n)));
            set.insert(&key(n));
        }
        assert_eq!(set.len(), 1000 + 3 * MERGE_AT + 17);
        assert!(set.sorted.windows(2).all(|w| w[0] < w[1]), "the merged vector stays sorted");
        assert!((0..(1000 + 3 * MERGE_AT as u64 + 17)).all(|n| set.contains(&key(n))));
        assert!(!set.contains(&key(u64::MAX)));
    }

    #[test]
    fn from_keys_sorts_and_drops_duplicates() {
        let set = KeySet::from_keys(vec![*key(3).as_bytes(), *key(1).as_bytes(), *key(3).as_bytes()]);
        assert_eq!(set.len(), 2);
        assert!(set.contains(&key(1)) && set.contains(&key(3)) && !set.contains(&key(2)));
        assert_eq!(KeySet::default().len(), 0);
    }
}
