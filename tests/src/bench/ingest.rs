//! `bench ingest`: HTTP ingest throughput of a real central-api into SQLite or PostgreSQL, then a full replay.
//!
//! ```text
//! cargo build --release -p central-api
//! cargo run --release -p system-tests --bin bench -- ingest --backend postgres --punches 1000000 --batch 1000
//! ```
//!
//! Starts central-api (the release binary next to `bench`), creates a site and an agent, encodes every batch up front
//! (bincode), posts them with `--concurrency` requests in flight, and prints punches per second, with central-api's
//! own figures of its ingest writers over that pass (`/metrics`: group transactions, batches per group, time in
//! them and in commits, dirty rows written and skipped). Then it posts every
//! batch again and prints how many rows the replay added (it must be 0). Targets from issue 3: 100,000 punches/s into
//! PostgreSQL and 50,000/s into SQLite on the 2-core reference machine.
//!
//! Then the database's own limit on the same rows, in the same run ([`super::ingest_peer`]: PostgreSQL's `COPY`, or
//! SQLite's single-transaction prepared insert, into a scratch table shaped like `all_logs`), our first pass as a
//! share of it (issue 19: at least 80%), the load average, and a checksum of `all_logs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use central_api::store::rows::BatchRows;
use chrono::{Duration, NaiveDate};
use clap::Parser;
use protocol::{AckOutcome, BatchAck, Direction, Encoding, Punch, PunchBatch, PunchSource, PunchState, VerifyMode};

use super::ingest_peer;
use super::Bench;
use crate::central::{batch, metric_in, Backend, Central, CentralDb};

/// How many times the peer runs; its median is the reference.
const PEER_RUNS: usize = 3;

pub const BENCH: Bench = Bench {
    name: "ingest",
    about: "HTTP ingest into SQLite or PostgreSQL: punches/s, then a replay that must add 0 rows",
    run,
};

#[derive(Debug, Parser)]
#[command(name = "bench ingest")]
struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    backend: Backend,
    #[arg(long, default_value_t = 1_000_000)]
    punches: usize,
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let args = Args::try_parse_from(std::iter::once("bench ingest".to_owned()).chain(args.iter().cloned()))?;
    if args.batch == 0 || args.batch > protocol::limits::MAX_PUNCHES_PER_BATCH {
        bail!("--batch must be 1..={}", protocol::limits::MAX_PUNCHES_PER_BATCH);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = CentralDb::new(args.backend).await;
    db.create_site("bench-site").await?;
    let token = db.create_agent("bench-agent", "bench-site").await?;
    let connections = (args.concurrency + 2).to_string();
    let central =
        db.serve(&[("CENTRAL_API_DATABASE_MAX_CONNECTIONS", connections.as_str()), ("RUST_LOG", "warn")]).await?;

    let started = Instant::now();
    let batches = make_batches(args.punches, args.batch)?;
    let bodies = batches.iter().map(|b| protocol::encode(b, Encoding::Bincode)).collect::<Result<Vec<_>, _>>()?;
    let bodies = Arc::new(bodies);
    let rows = batches.iter().map(BatchRows::from_batch).collect::<Result<Vec<_>, _>>()?;
    drop(batches);
    println!(
        "ingest bench: backend={:?} punches={} batch={} concurrency={} ({} batches encoded in {:.1?})",
        args.backend,
        args.punches,
        args.batch,
        args.concurrency,
        bodies.len(),
        started.elapsed()
    );

    ingest_peer::settle(&db).await?;
    println!("load average before the first pass: {}", ingest_peer::load_average());
    let writer_before = WriterFigures::read(&central).await?;
    let first = send_all(&central, &token, &bodies, args.concurrency).await?;
    let rate = args.punches as f64 / first.seconds;
    println!(
        "first pass: {} punches in {:.2} s = {:.0} punches/s ({} new, {} duplicates)",
        args.punches, first.seconds, rate, first.new, first.duplicates
    );
    WriterFigures::read(&central).await?.since(&writer_before).print(first.seconds);
    let rows_after_first = db.all_logs().await;

    let replay = send_all(&central, &token, &bodies, args.concurrency).await?;
    let rows_after_replay = db.all_logs().await;
    println!(
        "replay: {} punches in {:.2} s = {:.0} punches/s ({} new, {} duplicates); rows added by the replay: {}",
        args.punches,
        replay.seconds,
        args.punches as f64 / replay.seconds,
        replay.new,
        replay.duplicates,
        rows_after_replay - rows_after_first
    );
    println!("all_logs rows: {rows_after_replay}; load average: {}", ingest_peer::load_average());
    drop(central);
    let (checksum, counted) = ingest_peer::all_logs_checksum(&db).await?;
    println!("all_logs checksum: {checksum} ({counted} rows; everything but id and received_at)");
    // The peer runs several times (each from a checkpoint, as the first pass did) and its median counts: one run
    // of it moved by a quarter from one minute to the next.
    let mut peer_rates = Vec::with_capacity(PEER_RUNS);
    for run in 1..=PEER_RUNS {
        ingest_peer::settle(&db).await?;
        let peer = ingest_peer::measure(&db, &rows).await?;
        let peer_rate = peer.rows as f64 / peer.seconds;
        println!(
            "peer run {run} of {PEER_RUNS}: {}: {} rows in {:.2} s = {:.0} rows/s; load average: {}",
            peer.what,
            peer.rows,
            peer.seconds,
            peer_rate,
            ingest_peer::load_average()
        );
        peer_rates.push(peer_rate);
    }
    peer_rates.sort_by(f64::total_cmp);
    let peer_rate = peer_rates[PEER_RUNS / 2];
    println!(
        "first pass as a share of the peer's median ({peer_rate:.0} rows/s): {:.0}% (target: at least 80%; against \
         its slowest and fastest run: {:.0}% to {:.0}%)",
        100.0 * rate / peer_rate,
        100.0 * rate / peer_rates[PEER_RUNS - 1],
        100.0 * rate / peer_rates[0]
    );
    db.cleanup().await;
    if first.new as usize != args.punches || replay.new != 0 || rows_after_replay as usize != args.punches {
        bail!("wrong counts: the bench's punches are all distinct, so the first pass must store each once");
    }
    Ok(())
}

/// Distinct punches: 16 devices, 2,000 PINs, one second apart.
fn make_batches(total: usize, size: usize) -> anyhow::Result<Vec<PunchBatch>> {
    let base = NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(6, 0, 0)).context("base time")?;
    let devices: Vec<protocol::DeviceSerial> =
        (0..16).map(|d| format!("BENCH-{d:02}").parse()).collect::<Result<_, _>>()?;
    let pins: Vec<protocol::Pin> = (0..2000).map(|p| format!("{}", 10_000 + p).parse()).collect::<Result<_, _>>()?;
    let site: protocol::SiteId = "bench-site".parse()?;
    let mut bodies = Vec::with_capacity(total.div_ceil(size));
    let mut seq = 1u64;
    for start in (0..total).step_by(size) {
        let list: Vec<Punch> = (start..(start + size).min(total))
            .map(|i| {
                Punch::from_device(
                    site.clone(),
                    devices[i % devices.len()].clone(),
                    pins[i % pins.len()].clone(),
                    base + Duration::seconds(i as i64),
                    chrono_tz::Asia::Kolkata,
                    if i % 2 == 0 { PunchState::CheckIn } else { PunchState::CheckOut },
                    VerifyMode::Fingerprint,
                    0,
                    PunchSource::ZkPull,
                    Direction::Both,
                )
            })
            .collect();
        let n = list.len() as u64;
        bodies.push(batch("bench-agent", "bench-site", seq, list));
        seq += n;
    }
    Ok(bodies)
}

/// central-api's own figures of its ingest writers (`/metrics`: `central_ingest_*`).
#[derive(Debug, Default)]
struct WriterFigures {
    groups: f64,
    batches: f64,
    busy: f64,
    commit: f64,
    written: f64,
    skipped: f64,
}

impl WriterFigures {
    async fn read(central: &Central) -> anyhow::Result<Self> {
        let text = reqwest::get(format!("{}/metrics", central.url)).await?.error_for_status()?.text().await?;
        let value = |series: &str| metric_in::<f64>(&text, series);
        Ok(Self {
            groups: value("central_ingest_groups_total ")?,
            batches: value("central_ingest_group_batches_total ")?,
            busy: value("central_ingest_writer_busy_seconds_total ")?,
            commit: value("central_ingest_commit_seconds_total ")?,
            written: value("central_ingest_dirty_marks_total{outcome=\"written\"} ")?,
            skipped: value("central_ingest_dirty_marks_total{outcome=\"skipped\"} ")?,
        })
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            groups: self.groups - before.groups,
            batches: self.batches - before.batches,
            busy: self.busy - before.busy,
            commit: self.commit - before.commit,
            written: self.written - before.written,
            skipped: self.skipped - before.skipped,
        }
    }

    fn print(&self, seconds: f64) {
        println!(
            "  central's writers: {:.0} group transactions of {:.1} batches on average; in them {:.2} s (summed over \
             writers, of the pass's {seconds:.2} s), of which commits {:.2} s ({:.2} ms each); dirty rows written \
             {:.0}, skipped as marked already {:.0}",
            self.groups,
            self.batches / self.groups.max(1.0),
            self.busy,
            self.commit,
            1000.0 * self.commit / self.groups.max(1.0),
            self.written,
            self.skipped
        );
    }
}

struct Pass {
    seconds: f64,
    new: u64,
    duplicates: u64,
}

async fn send_all(
    central: &Central,
    token: &str,
    bodies: &Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> anyhow::Result<Pass> {
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let url = format!("{}/api/v1/ingest", central.url);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, bodies, http, url, token) =
            (next.clone(), bodies.clone(), http.clone(), url.clone(), token.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut new, mut duplicates) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", Encoding::BINCODE_CONTENT_TYPE)
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                let bytes = response.bytes().await?;
                if !status.is_success() {
                    bail!("batch {i}: {status} {}", String::from_utf8_lossy(&bytes));
                }
                let ack: BatchAck = protocol::decode(&bytes, Encoding::Bincode)?;
                match ack.outcome {
                    AckOutcome::Stored { new: n, duplicates: d, .. } => {
                        new += u64::from(n);
                        duplicates += u64::from(d);
                    }
                    AckOutcome::Rejected { reason, .. } => bail!("batch {i} rejected: {reason}"),
                }
            }
            anyhow::Ok((new, duplicates))
        }));
    }
    let (mut new, mut duplicates) = (0, 0);
    for task in tasks {
        let (n, d) = task.await??;
        new += n;
        duplicates += d;
    }
    Ok(Pass { seconds: started.elapsed().as_secs_f64(), new, duplicates })
}
