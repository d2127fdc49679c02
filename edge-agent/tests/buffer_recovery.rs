//! The buffer's defences: a store that lost punches is noticed at open (the marker), and a refused batch moves to
//! the dead letters without blocking the rest or counting as acknowledged.

use std::path::Path;
use std::time::Duration;

use chrono::NaiveDate;
use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::{self, Faults};
use protocol::{Direction, Punch, PunchSource, PunchState, VerifyMode};

fn punch(pin: u32, second: u32) -> Punch {
    let local = NaiveDate::from_ymd_opt(2026, 11, 21)
        .and_then(|d| d.and_hms_opt(8, 0, 0))
        .map(|t| t + chrono::Duration::seconds(i64::from(second)))
        .expect("time");
    Punch::from_device(
        "plant-1".parse().expect("site"),
        "DEV-1".parse().expect("serial"),
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

fn punches(range: std::ops::Range<u32>) -> Vec<Punch> {
    range.map(|i| punch(1000 + i % 50, i)).collect()
}

fn options(dir: &Path) -> BufferOptions {
    BufferOptions {
        path: dir.join("buffer"),
        max_disk_bytes: 1 << 30,
        cache_bytes: 4 << 20,
        key_retention: Duration::from_secs(7 * 86_400),
    }
}

/// Ways the issue damaged a stopped agent's store.
#[derive(Debug, Clone, Copy)]
enum Damage {
    TruncateHalf,
    TruncateZero,
    Delete,
    GarbleNearEnd,
}

fn damage(store: &Path, how: Damage) {
    let db = store.join("db");
    let len = std::fs::metadata(&db).expect("db file").len();
    match how {
        Damage::TruncateHalf => std::fs::File::options().write(true).open(&db).unwrap().set_len(len / 2).unwrap(),
        Damage::TruncateZero => std::fs::File::options().write(true).open(&db).unwrap().set_len(0).unwrap(),
        Damage::Delete => std::fs::remove_dir_all(store).unwrap(),
        Damage::GarbleNearEnd => {
            use std::os::unix::fs::FileExt;
            let file = std::fs::File::options().write(true).open(&db).unwrap();
            let at = len.saturating_sub(8192);
            let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
            file.write_all_at(&noise, at).unwrap();
        }
    }
}

#[tokio::test]
async fn each_damage_is_detected_and_the_sequence_goes_on() {
    for how in [Damage::TruncateHalf, Damage::TruncateZero, Damage::Delete, Damage::GarbleNearEnd] {
        let dir = tempfile::tempdir().unwrap();
        let last = {
            let buffer = Buffer::open(options(dir.path()), Faults::new()).unwrap();
            for start in (0..20_000).step_by(1000) {
                buffer.append(punches(start..start + 1000)).await.unwrap();
            }
            buffer.acknowledge(500).await.unwrap();
            assert!(buffer.damage().is_none());
            buffer.flush().await.unwrap();
            buffer.stats().unwrap().last_seq
        };
        assert_eq!(last, 20_000);
        damage(&dir.path().join("buffer"), how);
        let faults = Faults::new();
        let buffer = Buffer::open(options(dir.path()), faults.clone()).unwrap();
        let Some(found) = buffer.damage() else {
            // Garbled bytes may land on what the store no longer needs (an older version of a node): then nothing
            // may be missing, which is what must hold when no damage is reported.
            let held = buffer.read_after(500, 100_000).unwrap();
            eprintln!("{how:?}: no damage reported; {} punches held", held.len());
            assert!(matches!(how, Damage::GarbleNearEnd), "{how:?}: damage not detected");
            assert_eq!(held.len(), 19_500, "{how:?}: no damage reported, yet punches are missing");
            assert_eq!(held.first().map(|(s, _)| *s), Some(501));
            assert_eq!(held.last().map(|(s, _)| *s), Some(20_000));
            continue;
        };
        assert!(found.missing > 0, "{how:?}: {found:?}");
        assert!(faults.is_raised(faults::BUFFER_DAMAGED), "{how:?}");
        assert!(buffer.stats().unwrap().damaged);
        // Re-read punches are stored again (the keys of lost punches are gone), under numbers after the old ones.
        let again = buffer.append(punches(0..20_000)).await.unwrap();
        assert!(again.new >= found.missing as usize, "{how:?}: {again:?} for {found:?}");
        let seqs: Vec<u64> = buffer.read_after(0, 100_000).unwrap().into_iter().map(|(s, _)| s).collect();
        assert!(seqs.iter().all(|&s| s > 500), "{how:?}: nothing at or below the old watermark");
        assert!(seqs.iter().rev().take(again.new).all(|&s| s > last), "{how:?}: new numbers continue after {last}");
        assert_eq!(buffer.depth() as usize, seqs.len(), "{how:?}: depth counts what is held");
        drop(buffer);
        // The next start finds the store and the marker in agreement.
        let faults = Faults::new();
        let reopened = Buffer::open(options(dir.path()), faults.clone()).unwrap();
        assert!(reopened.damage().is_none(), "{how:?}: damage is reported once: {:?}", reopened.damage());
    }
}

#[tokio::test]
async fn an_intact_store_is_not_reported_damaged() {
    let dir = tempfile::tempdir().unwrap();
    {
        let buffer = Buffer::open(options(dir.path()), Faults::new()).unwrap();
        buffer.append(punches(0..3000)).await.unwrap();
        buffer.acknowledge(3000).await.unwrap();
        buffer.append(punches(3000..4000)).await.unwrap();
    }
    let faults = Faults::new();
    let buffer = Buffer::open(options(dir.path()), faults.clone()).unwrap();
    assert!(buffer.damage().is_none());
    assert!(!faults.is_raised(faults::BUFFER_DAMAGED));
    assert_eq!(buffer.depth(), 1000);
}

#[tokio::test]
async fn a_refused_batch_moves_to_the_dead_letters_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let buffer = Buffer::open(options(dir.path()), Faults::new()).unwrap();
    let all = punches(0..2500);
    buffer.append(all.clone()).await.unwrap();
    buffer.acknowledge(300).await.unwrap();
    // The head batch 301..=1700 splits two chunks.
    let moved = buffer.dead_letter(301, 1700, "HTTP 422: punch time out of range").await.unwrap();
    assert_eq!(moved, 1400);
    assert_eq!(buffer.depth(), 800);
    assert_eq!(buffer.acked_up_to(), 1700);
    let rest: Vec<u64> = buffer.read_after(0, 10_000).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(rest, (1701..=2500).collect::<Vec<_>>());
    let letters = buffer.dead_letters().unwrap();
    assert_eq!(letters.iter().map(|l| l.punches).sum::<u64>(), 1400);
    assert!(letters.iter().all(|l| l.reason == "HTTP 422: punch time out of range"));
    assert_eq!(buffer.stats().unwrap().dead_letters, 1400);
    // Dead letters are not acknowledged: a device log must not be cleared on their strength.
    let keys: Vec<_> = all[300..1700].iter().map(Punch::key).collect();
    assert_eq!(buffer.unacknowledged_count(&keys).unwrap(), 1400);
    let acked: Vec<_> = all[..300].iter().map(Punch::key).collect();
    assert_eq!(buffer.unacknowledged_count(&acked).unwrap(), 0);
    // A device re-reading them does not store them twice.
    assert_eq!(buffer.append(all[300..1700].to_vec()).await.unwrap().new, 0);
    // Kept across a restart.
    drop(buffer);
    let buffer = Buffer::open(options(dir.path()), Faults::new()).unwrap();
    assert!(buffer.damage().is_none(), "moving to the dead letters is not a loss");
    assert_eq!(buffer.stats().unwrap().dead_letters, 1400);
    let exported = buffer.dead_letter_punches(None).unwrap();
    assert_eq!(exported.len(), 1400);
    assert_eq!(exported[0].0, 301);
    assert_eq!(exported[0].2, all[300]);
    // A retry sends them again after the rest, and they are still not acknowledged until central says so.
    assert_eq!(buffer.retry_dead_letters(None).await.unwrap(), 1400);
    assert_eq!(buffer.stats().unwrap().dead_letters, 0);
    assert_eq!(buffer.depth(), 2200);
    let order: Vec<u64> = buffer.read_after(0, 10_000).unwrap().into_iter().map(|(s, _)| s).collect();
    assert_eq!(order.len(), 2200);
    assert_eq!(order[800], 2501);
    assert_eq!(buffer.unacknowledged_count(&keys).unwrap(), 1400);
    buffer.acknowledge(3900).await.unwrap();
    assert_eq!(buffer.unacknowledged_count(&keys).unwrap(), 0);
    assert_eq!(buffer.depth(), 0);
}
