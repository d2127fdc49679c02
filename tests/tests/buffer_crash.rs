//! Crash safety of the buffer: a child process appends in a loop and is killed with SIGKILL at random moments; after
//! each kill the buffer is reopened and every append that had returned Ok must be there, exactly once, in order. The
//! checker then acknowledges what it verified (so each cycle checks only what is new, and acknowledgement and
//! deduplication across crashes are exercised too: punches re-sent by the restarted child must not be stored again).
//!
//! `BUFFER_CRASH_CYCLES` sets the number of kills (default 20; 200 by hand).

use std::collections::HashSet;
use std::process::Stdio;
use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::Faults;
use rand::Rng;
use system_tests::{harness, punches};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const PER_APPEND: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_append_survives_kill_minus_nine() {
    let cycles: u32 = std::env::var("BUFFER_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("buffer");
    let child_bin = harness::binary("buffer-crash-child").expect("the crash child is built with the workspace");
    let mut confirmed = 0u64; // every punch number below this was confirmed durable
    let mut checker = Checker::default();
    let mut total_kills_mid_append = 0;
    for cycle in 0..cycles {
        let mut child = Command::new(&child_bin)
            .args([path.to_string_lossy().as_ref(), &confirmed.to_string(), &PER_APPEND.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn child");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
        assert!(matches!(ready, Ok(Ok(Some(ref l))) if l == "ready"), "cycle {cycle}: child not ready: {ready:?}");
        let run_for = Duration::from_millis(rand::rng().random_range(5..300));
        let deadline = tokio::time::sleep(run_for);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                line = lines.next_line() => match line.expect("read") {
                    Some(line) => confirmed = confirmed.max(parse_ok(&line)),
                    None => panic!("cycle {cycle}: child exited early: {:?}", child.wait().await),
                },
                () = &mut deadline => break,
            }
        }
        child.start_kill().expect("SIGKILL");
        // Lines written before the kill count: the child printed them only after Ok.
        while let Ok(Some(line)) = lines.next_line().await {
            confirmed = confirmed.max(parse_ok(&line));
        }
        let status = child.wait().await.expect("reap");
        assert!(!status.success(), "killed, not exited");
        total_kills_mid_append += 1;

        let last_cursor = checker.verify(&path, confirmed, cycle).await;
        assert!(last_cursor >= confirmed, "cycle {cycle}: cursor {last_cursor} behind confirmed {confirmed}");
    }
    assert_eq!(total_kills_mid_append, cycles);
    assert!(confirmed > 0, "the child made progress");
    assert!(checker.verified >= confirmed);
    eprintln!("{cycles} kills; {confirmed} punches confirmed and all present");
}

fn parse_ok(line: &str) -> u64 {
    line.strip_prefix("ok ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("unexpected line {line:?}"))
}

/// What earlier cycles established.
#[derive(Default)]
struct Checker {
    /// Every punch number below this was verified present and then acknowledged.
    verified: u64,
    /// Every punch number below this was in a backlog that was acknowledged (stored, confirmed or not).
    acked_below: u64,
    last_seq: u64,
}

impl Checker {
    /// Reopens the buffer and checks: sequence numbers keep increasing; every punch below `confirmed` (and below the
    /// stored cursor, which is written only after its punches) is in the backlog or was acknowledged before; nothing
    /// acknowledged before was stored again. Then acknowledges the backlog. Returns the stored cursor.
    async fn verify(&mut self, path: &std::path::Path, confirmed: u64, cycle: u32) -> u64 {
        let faults = Faults::new();
        let buffer = Buffer::open(
            BufferOptions {
                path: path.to_owned(),
                max_disk_bytes: 1 << 34,
                cache_bytes: 8 << 20,
                key_retention: Duration::from_secs(86_400),
            },
            faults.clone(),
        )
        .expect("reopen after kill");
        assert!(faults.snapshot().is_empty(), "cycle {cycle}: reopen raised {:?}", faults.snapshot());
        let base = punches::numbered("CRASH-1", 0).local_time;
        let mut numbers = HashSet::new();
        let mut after = 0;
        loop {
            let batch = buffer.read_after(after, 10_000).expect("read");
            if batch.is_empty() {
                break;
            }
            for (seq, stored) in &batch {
                assert!(*seq > self.last_seq, "cycle {cycle}: seq {seq} not after {}", self.last_seq);
                self.last_seq = *seq;
                let n = u64::try_from((stored.punch.local_time - base).num_seconds()).expect("n");
                assert_eq!(stored.key, punches::numbered("CRASH-1", n).key(), "cycle {cycle}: punch {n} intact");
                assert!(n >= self.acked_below, "cycle {cycle}: punch {n}, acknowledged before, was stored again");
                assert!(numbers.insert(n), "cycle {cycle}: punch {n} stored twice");
            }
            after = self.last_seq;
        }
        let device: protocol::DeviceSerial = "CRASH-1".parse().expect("serial");
        let cursor = buffer
            .get_cursor(&device, "next")
            .expect("cursor")
            .map_or(0, |c| u64::from_be_bytes(c.as_slice().try_into().expect("8 bytes")));
        for n in self.verified..confirmed.max(cursor) {
            assert!(
                n < self.acked_below || numbers.contains(&n),
                "cycle {cycle}: punch {n} was confirmed durable (confirmed {confirmed}, cursor {cursor}) but is missing"
            );
        }
        self.verified = self.verified.max(confirmed.max(cursor));
        if let Some(max) = numbers.iter().max() {
            self.acked_below = self.acked_below.max(max + 1);
        }
        buffer.acknowledge(self.last_seq).await.expect("acknowledge the verified backlog");
        assert_eq!(buffer.depth(), 0);
        cursor
    }
}
