//! `bench login-storm`: simultaneous wrong logins against a real central-api (issue 12, finding 2). Prints, per
//! scenario, how many answers were 401 (a guess checked), 429 (refused by the limiter), 503 (hashing at capacity)
//! or anything else, the wall time, and central's peak resident memory (`VmHWM`) and its resident memory once the
//! storm is over (`VmRSS`). Then the time an unknown and a known username take to be refused.
//!
//! ```text
//! cargo build -p central-api
//! cargo run -p system-tests --bin bench -- login-storm --attempts 300
//! ```
//!
//! Scenarios, each on a fresh central-api:
//! - `one-user`: every attempt for the same username from one address;
//! - `one-user-many-addresses`: the same username from as many loopback addresses (127.0.1.x, 127.0.2.x, ...);
//! - `spray`: one password over as many usernames (a few of them real) from one address;
//! - `spray-many-addresses`: one password, a username and an address per attempt.
//!
//! Targets: at most 5 guesses per username and per address get a 401, peak RSS under 300 MB.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use reqwest::StatusCode;

use super::Bench;
use crate::central::{Backend, Central, CentralDb};

pub const BENCH: Bench =
    Bench { name: "login-storm", about: "simultaneous wrong logins: 401/429/503 counts and central's peak RSS", run };

const PASSWORD: &str = "correct horse battery";
/// Usernames that exist in the spray scenarios.
const REAL_USERS: usize = 3;

#[derive(Debug, Parser)]
#[command(name = "bench login-storm")]
struct Args {
    /// sqlite or postgres.
    #[arg(long, default_value = "sqlite")]
    backend: Backend,
    /// Simultaneous attempts per scenario.
    #[arg(long, default_value_t = 300)]
    attempts: usize,
    /// Run only this scenario.
    #[arg(long)]
    only: Option<String>,
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let args = Args::try_parse_from(std::iter::once("bench login-storm".to_owned()).chain(args.iter().cloned()))?;
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(bench(args))
}

/// The loopback address of attempt `i` (127.0.1.1, 127.0.1.2, ..., 127.0.2.1, ...).
fn address(i: usize) -> IpAddr {
    let (hi, lo) = (1 + i / 250, 1 + i % 250);
    IpAddr::V4(Ipv4Addr::new(127, 0, u8::try_from(hi).unwrap_or(u8::MAX), u8::try_from(lo).unwrap_or(u8::MAX)))
}

/// `VmHWM` and `VmRSS` of a process, in MiB.
fn memory_of(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

#[derive(Debug, Default)]
struct Counts {
    unauthorized: usize,
    limited: usize,
    busy: usize,
    other: usize,
    retry_after_missing: usize,
}

async fn login(central: &Central, http: &reqwest::Client, username: &str) -> anyhow::Result<reqwest::Response> {
    let body = serde_json::json!({ "username": username, "password": "wrong password" });
    Ok(http.post(format!("{}/api/v1/login", central.url)).json(&body).send().await?)
}

fn client(from: Option<IpAddr>) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().local_address(from).timeout(Duration::from_secs(600)).build()?)
}

async fn scenario(args: &Args, name: &str, user_of: fn(usize) -> String, many_addresses: bool) -> anyhow::Result<()> {
    let db = CentralDb::new(args.backend).await;
    for i in 0..REAL_USERS {
        let user = if i == 0 { "admin".to_owned() } else { format!("user{i}") };
        db.cli_with_stdin(
            &["create-admin", &user, "--role", "root", "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await?;
    }
    let central = db.serve(&[("RUST_LOG", "error")]).await?;
    let pid = central.process.pid().context("central's pid")?;
    // One request first, so the idle figure includes a warm server.
    let _ = login(&central, &client(None)?, "nobody").await?;
    let (_, idle) = memory_of(pid)?;
    let central = Arc::new(central);
    let start = Arc::new(tokio::sync::Barrier::new(args.attempts));
    let began = Instant::now();
    let mut tasks = Vec::with_capacity(args.attempts);
    for i in 0..args.attempts {
        let http = client(many_addresses.then(|| address(i)))?;
        let (central, start, user) = (central.clone(), start.clone(), user_of(i));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            login(&central, &http, &user).await
        }));
    }
    let mut counts = Counts::default();
    for task in tasks {
        let response = task.await??;
        let retry_after = response.headers().contains_key("retry-after");
        match response.status() {
            StatusCode::UNAUTHORIZED => counts.unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => counts.limited += 1,
            StatusCode::SERVICE_UNAVAILABLE => counts.busy += 1,
            _ => counts.other += 1,
        }
        if matches!(response.status(), StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) && !retry_after
        {
            counts.retry_after_missing += 1;
        }
    }
    let elapsed = began.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (peak, after) = memory_of(pid)?;
    println!(
        "{name:<24} attempts {:>4}  401 {:>4}  429 {:>4}  503 {:>4}  other {:>3}  (429/503 without Retry-After: {})  \
         {:>6.2} s  RSS idle {idle} MiB, peak {peak} MiB, 2 s after {after} MiB",
        args.attempts,
        counts.unauthorized,
        counts.limited,
        counts.busy,
        counts.other,
        counts.retry_after_missing,
        elapsed.as_secs_f64()
    );
    if name == "one-user" {
        timing(&central).await?;
    }
    drop(central);
    db.cleanup().await;
    Ok(())
}

/// Median time to refuse an unknown and a known username (5 tries each, each from its own address, below every
/// limit).
async fn timing(central: &Central) -> anyhow::Result<()> {
    let mut figures = Vec::new();
    for (what, user, first) in [("unknown", "nobody-at-all", 2000), ("known", "user1", 2100)] {
        let mut times = Vec::new();
        for i in 0..5 {
            let http = client(Some(address(first + i)))?;
            let began = Instant::now();
            let status = login(central, &http, user).await?.status();
            times.push((began.elapsed(), status));
        }
        times.sort();
        figures.push(format!("{what} username: median {:.1} ms ({})", times[2].0.as_secs_f64() * 1000.0, times[2].1));
    }
    println!("{:<24} {}", "refusal time", figures.join(", "));
    Ok(())
}

/// A scenario's name, the username of attempt `i`, and whether each attempt has its own address.
type Scenario = (&'static str, fn(usize) -> String, bool);

/// The username of attempt `i` in a spray: the real ones first, then guesses.
fn sprayed(i: usize) -> String {
    match i {
        0 => "admin".to_owned(),
        i if i < REAL_USERS => format!("user{i}"),
        i => format!("guess{i}"),
    }
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let scenarios: [Scenario; 4] = [
        ("one-user", |_| "admin".to_owned(), false),
        ("one-user-many-addresses", |_| "admin".to_owned(), true),
        ("spray", sprayed, false),
        ("spray-many-addresses", sprayed, true),
    ];
    for (name, user_of, many) in scenarios {
        if args.only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        scenario(&args, name, user_of, many).await?;
    }
    Ok(())
}
