//! The stored side of the key index: loading the in-memory filter (`keyset`) from the key chunks, and reading a key
//! back at a sequence number to confirm what the filter suggests.

use protocol::PunchKey;

use super::keyset::KeySet;
use super::layout::{chunk_start, decode_keys, read_u64, seq_key, KEY};
use super::scan;

/// Keys a key chunk's value holds.
pub fn key_count(value: &[u8]) -> u64 {
    (value.len() / 16) as u64
}

/// The filter over every key in the index. Counted first, so the vector is allocated once at its final size: a
/// growing vector would briefly need twice the memory, and the agent's peak memory is what matters.
///
/// # Errors
/// When sled fails.
pub fn load(db: &sled::Db, next_seq: u64) -> Result<KeySet, sled::Error> {
    let mut count = 0;
    let mut floor = None;
    for item in scan::touching(db, db.scan_prefix([KEY])) {
        let (key, value) = item?;
        floor = floor.or_else(|| read_u64(&key));
        count += value.len() / 16;
    }
    let mut failure = None;
    let entries = scan::touching(db, db.scan_prefix([KEY])).map_while(|item| match item {
        Ok(pair) => Some(pair),
        Err(e) => {
            failure = Some(e);
            None
        }
    });
    let keys = entries.flat_map(|(key, value)| {
        let first = read_u64(&key).unwrap_or(0);
        (first..).zip(decode_keys(&value)).map(|(seq, raw)| (raw, seq)).collect::<Vec<_>>()
    });
    let set = KeySet::from_entries(keys, count, floor.unwrap_or(next_seq));
    match failure {
        Some(e) => Err(e),
        None => Ok(set),
    }
}

/// Reads keys back from the key chunks, keeping the last chunk read (candidates of one append are usually close).
pub struct StoredKeys<'a> {
    db: &'a sled::Db,
    last: Option<(u64, sled::IVec)>,
}

impl<'a> StoredKeys<'a> {
    pub fn new(db: &'a sled::Db) -> Self {
        Self { db, last: None }
    }

    /// The first of `candidates` at which `key` is stored, if any.
    ///
    /// # Errors
    /// When sled fails.
    pub fn find(&mut self, key: &PunchKey, candidates: &[u64]) -> Result<Option<u64>, sled::Error> {
        for &seq in candidates {
            if self.is_at(key, seq)? {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    /// Whether `key` is stored at `seq`.
    fn is_at(&mut self, key: &PunchKey, seq: u64) -> Result<bool, sled::Error> {
        let holds = |first: u64, value: &[u8]| seq >= first && seq - first < key_count(value);
        if !matches!(&self.last, Some((first, value)) if holds(*first, value)) {
            let first = chunk_start(self.db, KEY, seq, key_count)?;
            self.last = self.db.get(seq_key(KEY, first))?.map(|value| (first, value));
        }
        let Some((first, value)) = &self.last else { return Ok(false) };
        if !holds(*first, value) {
            return Ok(false);
        }
        let at = usize::try_from((seq - first) * 16).unwrap_or(usize::MAX);
        Ok(value.get(at..at.saturating_add(16)) == Some(key.as_bytes().as_slice()))
    }
}
