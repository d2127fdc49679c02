//! `bench attendance-latency`: how long a punch takes from the ingest request to the employee's updated attendance
//! row, through a real central-api with its default worker settings (issue 7: under 2 s).
//!
//! ```text
//! cargo build --release -p central-api
//! cargo run --release -p system-tests --bin bench -- attendance-latency --backend postgres --samples 30
//! ```
//!
//! Each sample posts one batch (an in and an out punch on a new working day) over HTTP, then polls the attendance
//! table every 5 ms until the day's row carries both punches. The figures are the time from sending the request to
//! seeing the row: minimum, median, 95th percentile and maximum. `--background` employees punching on other days at
//! the same time show the latency when the worker is not idle.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{Datelike, NaiveDate, Weekday};
use clap::Parser;
use protocol::{Encoding, PunchState};

use super::Bench;
use crate::attendance::{add_employee, at, punch, setup_site, store_of};
use crate::central::{batch, client, Backend, CentralDb};

pub const BENCH: Bench = Bench {
    name: "attendance-latency",
    about: "ingest to updated attendance row through a real central-api (min/median/p95/max)",
    run,
};

const SITE: &str = "plant-1";
const EMPLOYEE: &str = "1001";

#[derive(Debug, Parser)]
#[command(name = "bench attendance-latency")]
struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    backend: Backend,
    /// Punch pairs to time, one working day each.
    #[arg(long, default_value_t = 30)]
    samples: usize,
    /// Other employees whose punches arrive in the same batch, so the worker has more than one day to compute.
    #[arg(long, default_value_t = 200)]
    background: usize,
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let args =
        Args::try_parse_from(std::iter::once("bench attendance-latency".to_owned()).chain(args.iter().cloned()))?;
    if args.samples == 0 {
        bail!("--samples must be at least 1");
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(args))
}

/// The next `n` days from 2026-01-05 that are not Sundays (the test week-off).
fn working_days(n: usize) -> Vec<NaiveDate> {
    let mut days = Vec::with_capacity(n);
    let mut day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or(NaiveDate::MIN);
    while days.len() < n {
        if day.weekday() != Weekday::Sun {
            days.push(day);
        }
        day = day.succ_opt().unwrap_or(day);
    }
    days
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let db = CentralDb::new(args.backend).await;
    let store = store_of(&db, 2).await?;
    setup_site(&store, SITE).await?;
    let token = db.create_agent("agent-1", SITE).await?;
    add_employee(&store, EMPLOYEE, SITE, "GEN").await?;
    let background: Vec<String> = (0..args.background).map(|i| format!("{}", 5000 + i)).collect();
    for pin in &background {
        add_employee(&store, pin, SITE, "GEN").await?;
    }
    let central = db.serve(&[("RUST_LOG", "warn")]).await?;
    let http = client(None);
    println!(
        "attendance-latency bench: backend={:?} samples={} background employees={} (default worker settings)",
        args.backend, args.samples, args.background
    );

    let mut seq = 1;
    let mut timings = Vec::with_capacity(args.samples);
    for day in working_days(args.samples) {
        let (in_at, out_at) = (at(day, 9, 1), at(day, 18, 7));
        let mut punches = vec![
            punch(SITE, EMPLOYEE, in_at, PunchState::CheckIn),
            punch(SITE, EMPLOYEE, out_at, PunchState::CheckOut),
        ];
        punches.extend(background.iter().map(|pin| punch(SITE, pin, at(day, 8, 55), PunchState::CheckIn)));
        let count = punches.len() as u64;
        let body = batch("agent-1", SITE, seq, punches);
        seq += count;

        let started = Instant::now();
        let response = central.post_batch(&http, &token, &body, Encoding::Bincode).await?;
        if !response.status().is_success() {
            bail!("ingest refused: {}", response.status());
        }
        let deadline = started + Duration::from_secs(30);
        loop {
            let rows = store.attendance(Some(EMPLOYEE), day, day).await.context("reading attendance")?;
            if rows.iter().any(|r| r.in_time == Some(in_at) && r.out_time == Some(out_at)) {
                break;
            }
            if Instant::now() > deadline {
                bail!("no attendance row for {EMPLOYEE} on {day} within 30 s of the ingest");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        timings.push(started.elapsed());
    }

    timings.sort();
    let pick = |q: f64| timings[((timings.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "ingest to attendance row: min {:.0} ms, median {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} samples \
         (target: under 2000 ms)",
        pick(0.0),
        pick(0.5),
        pick(0.95),
        pick(1.0),
        timings.len()
    );
    drop(central);
    store.close().await;
    db.cleanup().await;
    Ok(())
}
