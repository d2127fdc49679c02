//! A buffer written by an earlier version, in chunks of up to [`MAX_CHUNK_PUNCHES`] punches, opens and works with
//! this one, which writes chunks of [`CHUNK_PUNCHES`]: its backlog reads back in order, its keys still catch
//! duplicates, a watermark inside one of its chunks is honoured, and new punches follow it in small chunks.

use std::time::Duration;

use chrono::NaiveDate;
use protocol::{Direction, Punch, PunchSource, PunchState, VerifyMode};

use super::layout::{
    encode_chunk, encode_keys, entry_bytes, seq_key, CHUNK_PUNCHES, KEY, MAX_CHUNK_PUNCHES, META_LIVE_BYTES,
    META_NEXT_SEQ, PUNCH,
};
use super::{Buffer, BufferOptions};
use crate::faults::Faults;

fn punch(n: u32) -> Punch {
    let local = NaiveDate::from_ymd_opt(2026, 3, 1)
        .and_then(|d| d.and_hms_opt(6, 0, 0))
        .map(|t| t + chrono::Duration::seconds(i64::from(n)))
        .expect("time");
    Punch::from_device(
        "plant-1".parse().expect("site"),
        "OLD-LAYOUT".parse().expect("serial"),
        (1000 + n % 300).to_string().parse().expect("pin"),
        local,
        chrono_tz::Asia::Kolkata,
        PunchState::CheckIn,
        VerifyMode::Fingerprint,
        0,
        PunchSource::Sql,
        Direction::Both,
    )
}

fn options(dir: &std::path::Path) -> BufferOptions {
    BufferOptions {
        path: dir.join("buffer"),
        max_disk_bytes: 1 << 30,
        cache_bytes: 4 << 20,
        key_retention: Duration::from_secs(7 * 86_400),
    }
}

/// Writes `punches` from sequence 1 the way the earlier version's append did: one atomic batch of chunks of up to
/// 1,000 punches with their key chunks, the next sequence number and the live-bytes count.
fn write_old_layout(db: &sled::Db, punches: &[Punch]) {
    let keyed: Vec<_> = punches.iter().map(|p| (p.key(), p.clone())).collect();
    let mut batch = sled::Batch::default();
    let (mut seq, mut live) = (1u64, 0u64);
    for chunk in keyed.chunks(MAX_CHUNK_PUNCHES) {
        let value = encode_chunk(1_772_000_000_000, chunk).expect("encode");
        let keys = encode_keys(chunk);
        live += entry_bytes(9, value.len()) + entry_bytes(9, keys.len());
        batch.insert(&seq_key(PUNCH, seq), value);
        batch.insert(&seq_key(KEY, seq), keys);
        seq += chunk.len() as u64;
    }
    batch.insert(META_NEXT_SEQ, &seq.to_be_bytes());
    batch.insert(META_LIVE_BYTES, &live.to_be_bytes());
    db.apply_batch(batch).expect("apply");
    db.flush().expect("flush");
}

#[tokio::test]
async fn a_buffer_of_thousand_punch_chunks_opens_reads_dedups_and_acknowledges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old: Vec<Punch> = (0..2_500).map(punch).collect();
    {
        let buffer = Buffer::open(options(dir.path()), Faults::new()).expect("open fresh");
        write_old_layout(&buffer.db().expect("db"), &old);
    }
    let buffer = Buffer::open(options(dir.path()), Faults::new()).expect("reopen the old layout");
    assert!(buffer.damage().is_none(), "an old layout is not damage");
    assert_eq!(buffer.depth(), 2_500);
    let backlog = buffer.read_after(0, 10_000).expect("read");
    let seqs: Vec<u64> = backlog.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, (1..=2_500).collect::<Vec<_>>(), "read back in order across 1,000-punch chunks");
    assert!(backlog.iter().zip(&old).all(|((_, stored), punch)| stored.punch == *punch && stored.key == punch.key()));

    let again = buffer.append(old[900..1_100].to_vec()).await.expect("append again");
    assert_eq!((again.new, again.duplicates), (0, 200), "keys stored in the old key chunks catch duplicates");

    // A watermark inside the second old chunk: its unacknowledged part is still read, from the right number.
    assert_eq!(buffer.acknowledge(1_500).await.expect("ack"), 1_500);
    assert_eq!(buffer.read_after(0, 10).expect("read").first().map(|(seq, _)| *seq), Some(1_501));

    let fresh: Vec<Punch> = (10_000..10_000 + 3 * CHUNK_PUNCHES as u32 + 5).map(punch).collect();
    let appended = buffer.append(fresh.clone()).await.expect("append new");
    assert_eq!(appended.new, fresh.len());
    drop(buffer);

    let buffer = Buffer::open(options(dir.path()), Faults::new()).expect("reopen mixed chunks");
    assert!(buffer.damage().is_none());
    assert_eq!(buffer.depth(), 1_000 + fresh.len() as u64);
    let rest = buffer.read_after(1_500, 10_000).expect("read");
    let expected: Vec<u64> = (1_501..=2_500 + fresh.len() as u64).collect();
    assert_eq!(rest.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(), expected);
    assert!(rest[1_000..].iter().zip(&fresh).all(|((_, stored), punch)| stored.punch == *punch));
    let last = 2_500 + fresh.len() as u64;
    assert_eq!(buffer.acknowledge(last).await.expect("ack all"), last - 1_500);
    assert_eq!(buffer.depth(), 0);
    let repeat = buffer.append(vec![old[0].clone(), fresh[0].clone()]).await.expect("append after ack");
    assert_eq!(repeat.duplicates, 2, "acknowledged keys are kept for the retention, in old and new chunks alike");
}
