//! The durable buffer against its contract: sequence, deduplication, acknowledgement, limits, recovery, cursors.

use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use edge_agent::buffer::{Buffer, BufferError, BufferOptions, OpenError};
use edge_agent::faults::{self, Faults};
use edge_agent::sink::{PunchSink, SinkError};
use protocol::{Direction, Punch, PunchSource, PunchState, VerifyMode};

fn punch(device: &str, pin: u32, second: u32) -> Punch {
    let local = NaiveDate::from_ymd_opt(2026, 11, 21)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .map(|t| t + chrono::Duration::seconds(i64::from(second)))
        .expect("time");
    Punch::from_device(
        "plant-1".parse().expect("site"),
        device.parse().expect("serial"),
        pin.to_string().parse().expect("pin"),
        local,
        chrono_tz::Asia::Kolkata,
        PunchState::CheckIn,
        VerifyMode::Fingerprint,
        0,
        PunchSource::ZkPull,
        Direction::Both,
    )
}

fn options(dir: &Path) -> BufferOptions {
    BufferOptions {
        path: dir.join("buffer"),
        max_disk_bytes: 1 << 30,
        cache_bytes: 4 << 20,
        key_retention: Duration::from_secs(7 * 86_400),
    }
}

fn open(dir: &Path) -> Buffer {
    Buffer::open(options(dir), Faults::new()).expect("open")
}

fn seqs(buffer: &Buffer, after: u64) -> Vec<u64> {
    buffer.read_after(after, 1_000_000).expect("read").into_iter().map(|(seq, _)| seq).collect()
}

#[tokio::test]
async fn sequence_numbers_are_monotonic_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let buffer = open(dir.path());
        let appended = buffer.append((0..3).map(|i| punch("A1", 1, i)).collect()).await.expect("append");
        assert_eq!((appended.new, appended.duplicates), (3, 0));
        buffer.acknowledge(3).await.expect("ack");
    }
    let buffer = open(dir.path());
    assert_eq!(buffer.acked_up_to(), 3);
    buffer.append((3..5).map(|i| punch("A1", 1, i)).collect()).await.expect("append");
    assert_eq!(seqs(&buffer, 0), [4, 5], "numbering continues after the acknowledged ones");
    let stored = buffer.read_after(0, 10).expect("read");
    assert_eq!(stored[0].1.punch, punch("A1", 1, 3));
    assert!(stored[0].1.appended_at <= Utc::now());
}

#[tokio::test]
async fn a_key_seen_before_is_not_stored_twice_even_after_its_ack_within_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open(dir.path());
    let first = buffer.append(vec![punch("A1", 7, 0), punch("A1", 7, 0), punch("A1", 8, 0)]).await.expect("append");
    assert_eq!((first.new, first.duplicates), (2, 1), "a duplicate inside one append is caught");
    // The same punch read again with another state and source is the same physical punch.
    let mut reread = punch("A1", 7, 0);
    reread.state = PunchState::CheckOut;
    reread.source = PunchSource::ZkRealtime;
    let again = buffer.append(vec![reread, punch("A1", 9, 0)]).await.expect("append");
    assert_eq!((again.new, again.duplicates), (1, 1));
    buffer.acknowledge(3).await.expect("ack");
    let after_ack = buffer.append(vec![punch("A1", 7, 0)]).await.expect("append");
    assert_eq!((after_ack.new, after_ack.duplicates), (0, 1), "still known after the ack, within retention");
    assert_eq!(buffer.depth(), 0);
    let stats = buffer.stats().expect("stats");
    assert_eq!((stats.new_total, stats.duplicates_total), (3, 3));
}

#[tokio::test]
async fn keys_are_forgotten_only_after_retention_and_then_stored_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open(dir.path());
    // Keys are kept per append; an append wholly acknowledged before the cutoff is forgotten.
    buffer.append(vec![punch("A1", 1, 0), punch("A1", 2, 0)]).await.expect("append");
    buffer.append(vec![punch("A1", 3, 0)]).await.expect("append");
    buffer.acknowledge(2).await.expect("ack");
    let now = Utc::now();
    assert_eq!(buffer.prune_keys(now + chrono::Duration::days(6)).expect("prune"), 0, "within retention");
    assert_eq!(buffer.prune_keys(now + chrono::Duration::days(8)).expect("prune"), 2, "only the acknowledged keys");
    let again = buffer.append(vec![punch("A1", 1, 0), punch("A1", 3, 0)]).await.expect("append");
    assert_eq!((again.new, again.duplicates), (1, 1), "the unacknowledged punch's key is kept");
    assert_eq!(seqs(&buffer, 0), [3, 4]);
}

/// Two distinct punches whose keys share the first four bytes, the fingerprint the in-memory key index holds.
fn fingerprint_twins() -> (Punch, Punch) {
    let mut seen = std::collections::HashMap::new();
    for n in 0..2_000_000u32 {
        let candidate = punch("TWIN1", 1000 + n % 5000, n / 5000);
        let key = candidate.key();
        let fingerprint: [u8; 4] = key.as_bytes()[..4].try_into().expect("four bytes");
        if let Some(earlier) = seen.insert(fingerprint, candidate.clone()) {
            return (earlier, candidate);
        }
    }
    panic!("no two keys share a fingerprint among two million");
}

#[tokio::test]
async fn a_punch_whose_key_shares_a_fingerprint_with_another_is_still_stored() {
    let (first, twin) = fingerprint_twins();
    assert_ne!(first.key(), twin.key());
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let buffer = open(dir.path());
        assert_eq!(buffer.append(vec![first.clone()]).await.expect("append").new, 1);
        let appended = buffer.append(vec![twin.clone()]).await.expect("append");
        assert_eq!((appended.new, appended.duplicates), (1, 0), "a fingerprint match is not a duplicate");
        let again = buffer.append(vec![twin.clone(), first.clone()]).await.expect("append");
        assert_eq!((again.new, again.duplicates), (0, 2), "both keys are known");
        buffer.acknowledge(1).await.expect("ack");
        let keys = [first.key(), twin.key()];
        assert_eq!(PunchSink::unacknowledged(&buffer, &keys).await.expect("count"), 1, "only the twin is unacked");
    }
    // The same after loading the index from the store.
    let buffer = open(dir.path());
    let again = buffer.append(vec![first.clone(), twin.clone()]).await.expect("append");
    assert_eq!((again.new, again.duplicates), (0, 2));
    assert_eq!(PunchSink::unacknowledged(&buffer, &[twin.key()]).await.expect("count"), 1);
    assert_eq!(PunchSink::unacknowledged(&buffer, &[first.key()]).await.expect("count"), 0);
    assert_eq!(buffer.stats().expect("stats").index_keys, 2);
}

#[tokio::test]
async fn acknowledge_deletes_exactly_up_to_the_watermark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open(dir.path());
    buffer.append((0..10).map(|i| punch("A1", 1, i)).collect()).await.expect("append");
    assert_eq!(buffer.acknowledge(6).await.expect("ack"), 6);
    assert_eq!(seqs(&buffer, 0), [7, 8, 9, 10]);
    assert_eq!(buffer.depth(), 4);
    assert_eq!(buffer.acknowledge(3).await.expect("ack"), 0, "an older watermark changes nothing");
    assert_eq!(seqs(&buffer, 0), [7, 8, 9, 10]);
    assert_eq!(buffer.acknowledge(100).await.expect("ack"), 4, "cut to the last sequence given out");
    assert_eq!(buffer.acked_up_to(), 10);
    assert!(seqs(&buffer, 0).is_empty());
    buffer.append(vec![punch("A1", 2, 0)]).await.expect("append");
    assert_eq!(seqs(&buffer, 0), [11]);
}

#[tokio::test]
async fn unacknowledged_counts_unknown_and_unacked_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open(dir.path());
    let punches: Vec<Punch> = (0..4).map(|i| punch("A1", 1, i)).collect();
    let keys: Vec<_> = punches.iter().map(Punch::key).collect();
    buffer.append(punches[..3].to_vec()).await.expect("append");
    assert_eq!(PunchSink::unacknowledged(&buffer, &keys).await.expect("count"), 4);
    buffer.acknowledge(2).await.expect("ack");
    assert_eq!(PunchSink::unacknowledged(&buffer, &keys).await.expect("count"), 2, "seq 3 and the unknown key");
    assert_eq!(PunchSink::unacknowledged(&buffer, &keys[..2]).await.expect("count"), 0);
}

#[tokio::test]
async fn read_after_streams_in_order_a_batch_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let buffer = open(dir.path());
    for chunk in 0..20u32 {
        buffer.append((0..1000).map(|i| punch("A1", chunk, i)).collect()).await.expect("append");
    }
    let mut after = 0;
    let mut batches = 0;
    loop {
        let batch = buffer.read_after(after, 3000).expect("read");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3000);
        let expected: Vec<u64> = (after + 1..=after + batch.len() as u64).collect();
        assert_eq!(batch.iter().map(|(s, _)| *s).collect::<Vec<_>>(), expected, "in order, no gaps");
        after = batch.last().map(|(s, _)| *s).expect("last");
        batches += 1;
    }
    assert_eq!((after, batches), (20_000, 7));
}

#[tokio::test]
async fn cursors_are_durable_and_per_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = ("A1".parse().expect("serial"), "B2".parse().expect("serial"));
    {
        let buffer = open(dir.path());
        PunchSink::set_cursor(&buffer, &a, "zk.last", b"100".to_vec()).await.expect("set");
        PunchSink::set_cursor(&buffer, &b, "adms.stamp", b"9".to_vec()).await.expect("set");
    }
    let buffer = open(dir.path());
    assert_eq!(PunchSink::cursor(&buffer, &a, "zk.last").await.expect("get"), Some(b"100".to_vec()));
    assert_eq!(PunchSink::cursor(&buffer, &b, "zk.last").await.expect("get"), None);
    assert_eq!(PunchSink::cursor(&buffer, &b, "adms.stamp").await.expect("get"), Some(b"9".to_vec()));
}

#[tokio::test]
async fn at_the_disk_limit_appends_are_refused_until_it_drains() {
    let dir = tempfile::tempdir().expect("tempdir");
    let faults = Faults::new();
    let mut options = options(dir.path());
    options.max_disk_bytes = 4 * 1024 * 1024;
    let buffer = Buffer::open(options, faults.clone()).expect("open");
    let mut refused = None;
    for chunk in 0..500u32 {
        match buffer.append((0..1000).map(|i| punch("A1", chunk, i)).collect()).await {
            Ok(_) => {}
            Err(e) => {
                refused = Some((chunk, e));
                break;
            }
        }
    }
    let (chunk, error) = refused.expect("the limit is reached");
    assert!(matches!(error, BufferError::Full(ref m) if m.contains("limit 4 MB")), "{error}");
    assert!(!buffer.accepting());
    assert!(faults.is_raised(faults::BUFFER_FULL));
    let sink_error = PunchSink::append(&buffer, vec![punch("B1", 1, 1)]).await.expect_err("still full");
    assert!(matches!(sink_error, SinkError::Full(_)));
    let depth = buffer.depth();
    assert_eq!(depth, u64::from(chunk) * 1000, "everything before the refusal is kept");

    // Drain: acknowledge everything and let the keys expire; then punches are taken again.
    buffer.acknowledge(depth).await.expect("ack");
    buffer.prune_keys(Utc::now() + chrono::Duration::days(8)).expect("prune");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(buffer.accepting(), "space returns after the drain: {:?}", buffer.stats());
    assert!(!faults.is_raised(faults::BUFFER_FULL));
    buffer.append(vec![punch("B1", 1, 1)]).await.expect("taking punches again");
    let stats = buffer.stats().expect("stats");
    assert!(stats.live_bytes < 1000, "only the new punch is live: {stats:?}");
}

#[tokio::test]
async fn a_corrupt_buffer_is_moved_aside_intact_and_a_fresh_one_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("buffer");
    std::fs::create_dir_all(&path).expect("mkdir");
    std::fs::write(path.join("conf"), b"segment_size: banana\n").expect("write");
    std::fs::write(path.join("db"), vec![0xAB; 4096]).expect("write");
    let faults = Faults::new();
    let buffer = Buffer::open(options(dir.path()), faults.clone()).expect("starts anyway");
    assert!(faults.is_raised(faults::BUFFER_MOVED_ASIDE));
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("buffer.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside once");
    assert_eq!(std::fs::read(aside[0].path().join("db")).expect("kept"), vec![0xAB; 4096], "kept intact");
    buffer.append(vec![punch("A1", 1, 1)]).await.expect("the fresh buffer works");
    assert_eq!(seqs(&buffer, 0), [1]);
}

#[tokio::test]
async fn a_store_that_is_not_ours_is_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let foreign = sled::open(dir.path().join("buffer")).expect("sled");
        foreign.insert(b"hello", b"world").expect("insert");
        foreign.flush().expect("flush");
    }
    let faults = Faults::new();
    // sled releases its file lock from a background thread after the last handle drops; until then the store is
    // (rightly) reported as in use, never moved aside.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let buffer = loop {
        match Buffer::open(options(dir.path()), faults.clone()) {
            Err(edge_agent::buffer::OpenError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            other => break other.expect("starts anyway"),
        }
    };
    assert!(faults.snapshot().iter().any(|f| f.code == faults::BUFFER_MOVED_ASIDE && f.message.contains("marker")));
    assert_eq!(buffer.depth(), 0);
}

#[tokio::test]
async fn a_buffer_in_use_is_not_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = open(dir.path());
    first.append(vec![punch("A1", 1, 1)]).await.expect("append");
    let second = Buffer::open(options(dir.path()), Faults::new());
    assert!(matches!(second, Err(OpenError::Locked { .. })), "{:?}", second.err());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into())
        .collect();
    assert!(names.iter().all(|n| !n.contains("corrupt")), "nothing renamed: {names:?}");
    assert_eq!(first.depth(), 1);
}
