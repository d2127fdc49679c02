//! Scanning a whole range of the store without keeping it in memory (the reads at open).
//!
//! sled 0.34's page cache hears of each page access through a queue per cache shard (256 shards, by page id) and
//! looks at a shard's queue only when it holds 64 accesses; a page whose accesses sit in a queue not yet looked at is
//! neither counted against `cache_bytes` nor paged out. A range scan accesses each leaf once, so reading a store of
//! fewer than 256 × 64 leaves from end to end paged out nothing: after the reads at open a 1,000,000-punch backlog
//! (about 7,400 leaves) was wholly in memory (`bench buffer-drain`: 101 MB RSS right after open, 70 MB of it sled's
//! nodes, measured with heaptrack). [`touching`] accesses the leaf of each entry it yields [`TOUCHES`] more times (a
//! `get` of the entry's key), so the leaf's shard queue fills while the leaf is the one being read and the cache
//! pages out what it holds beyond its capacity as the scan goes.

use sled::IVec;

/// Extra accesses of an entry's leaf per entry read. At 8, the accesses left in a shard's queue (fewer than 64)
/// stand for at most 8 entries, so what sits in memory uncounted is bounded by a few leaves per shard whatever the
/// store holds; more costs time for no memory (measured with 1,000,000 punches, see the commit).
pub const TOUCHES: usize = 8;

/// The entries `entries` yields (a range or prefix scan of `db`), each accessed [`TOUCHES`] more times.
pub fn touching(db: &sled::Db, entries: sled::Iter) -> impl Iterator<Item = sled::Result<(IVec, IVec)>> + '_ {
    entries.map(move |item| {
        let (key, value) = item?;
        for _ in 0..TOUCHES {
            db.get(&key)?;
        }
        Ok((key, value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yields_what_the_plain_scan_yields_in_order() {
        let db = sled::Config::new().temporary(true).open().expect("temporary store");
        for n in 0u32..500 {
            db.insert([b'p', (n >> 8) as u8, n as u8], &n.to_be_bytes()).expect("insert");
            db.insert([b'q', (n >> 8) as u8, n as u8], b"other prefix").expect("insert");
        }
        let plain: Vec<_> = db.scan_prefix([b'p']).collect::<Result<_, _>>().expect("plain scan");
        let touched: Vec<_> = touching(&db, db.scan_prefix([b'p'])).collect::<Result<_, _>>().expect("touching scan");
        assert_eq!(plain.len(), 500);
        assert_eq!(touched, plain);
    }
}
