//! Benches of the edge buffer and agent:
//!
//! - `buffer-append [punches] [per-append]`: durable append rate into a fresh buffer (default 1,000,000 in appends of
//!   1,000). Target: >= 100,000 punches/s.
//! - `buffer-drain [punches]`: fills a buffer with 1,000,000 punches, starts the real `edge-agent` binary on it against
//!   a fake acking central over HTTP, and times the drain while sampling the agent's RSS from /proc. Targets (against
//!   the real central on SQLite, after merge): < 30 s, RSS < 50 MB.
//! - `agent-idle [seconds]`: the real agent connected to 20 simulated terminals, after reading their logs, with nothing
//!   more to forward; RSS and CPU from /proc.
//!   Target: < 30 MB, near-zero CPU.
//!
//! The agent binary must be built in the same profile: `cargo build --release -p edge-agent` first.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use edge_agent::buffer::{Buffer, BufferOptions};
use edge_agent::faults::Faults;

use super::Bench;
use crate::fake_central::FakeCentral;
use crate::harness::Spawned;
use crate::punches;
use crate::zk_sim::{SimConfig, ZkSim};

pub const APPEND: Bench =
    Bench { name: "buffer-append", about: "durable append rate into the sled buffer", run: append };
pub const DRAIN: Bench =
    Bench { name: "buffer-drain", about: "edge-agent draining 1M buffered punches to a fake central", run: drain };
pub const IDLE: Bench =
    Bench { name: "agent-idle", about: "RSS and CPU of an idle edge-agent with 20 devices", run: idle };

fn arg(args: &[String], index: usize, default: u64) -> anyhow::Result<u64> {
    args.get(index).map_or(Ok(default), |a| a.replace('_', "").parse().with_context(|| format!("argument {a:?}")))
}

fn buffer_options(path: &Path) -> BufferOptions {
    BufferOptions {
        path: path.to_owned(),
        max_disk_bytes: 8 << 30,
        cache_bytes: 16 << 20,
        key_retention: Duration::from_secs(45 * 86_400),
    }
}

/// Fills a buffer at `path` with `total` punches in appends of `per`; returns the elapsed time.
pub(crate) async fn fill(path: &Path, total: u64, per: u64) -> anyhow::Result<Duration> {
    let buffer = Buffer::open(buffer_options(path), Faults::new())?;
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        let end = (n + per).min(total);
        let batch = punches::range("BENCH-1", n, end);
        buffer.append(batch).await?;
        n = end;
    }
    let elapsed = start.elapsed();
    buffer.flush().await?;
    Ok(elapsed)
}

/// Reopens the buffer at `path` (loading its key index) and appends the same `total` punches again; returns the time
/// to open and the time to append. Every punch must come back a duplicate.
async fn append_again(path: &Path, total: u64, per: u64) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    let buffer = Buffer::open(buffer_options(path), Faults::new())?;
    let opened = start.elapsed();
    let start = Instant::now();
    let mut n = 0;
    while n < total {
        let end = (n + per).min(total);
        let appended = buffer.append(punches::range("BENCH-1", n, end)).await?;
        anyhow::ensure!(appended.new == 0, "{} punches of {n}..{end} were taken as new", appended.new);
        n = end;
    }
    Ok((opened, start.elapsed()))
}

fn append(args: &[String]) -> anyhow::Result<()> {
    let total = arg(args, 0, 1_000_000)?;
    let per = arg(args, 1, 1_000)?.max(1);
    let runtime = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("buffer");
    // Making the punches is part of no agent's append; time it separately to report the buffer alone.
    let make_start = Instant::now();
    let _ = punches::range("BENCH-1", 0, per);
    let make_per_append = make_start.elapsed();
    let elapsed = runtime.block_on(fill(&path, total, per))?;
    let (open_time, again) = runtime.block_on(append_again(&path, total, per))?;
    let appends = total.div_ceil(per);
    let buffer_only = elapsed.saturating_sub(make_per_append * u32::try_from(appends).unwrap_or(u32::MAX));
    let size = dir_size(&path);
    println!("buffer-append: {total} punches in appends of {per} ({appends} flushed appends)");
    println!(
        "  elapsed          {:.2} s (of which ~{:.2} s making punches)",
        elapsed.as_secs_f64(),
        (elapsed - buffer_only).as_secs_f64()
    );
    println!(
        "  rate             {:.0} punches/s (buffer only: {:.0} punches/s)",
        total as f64 / elapsed.as_secs_f64(),
        total as f64 / buffer_only.as_secs_f64().max(1e-9)
    );
    println!("  per append       {:.2} ms", elapsed.as_secs_f64() * 1000.0 / appends as f64);
    println!(
        "  reopen + again   opened in {:.2} s; the same punches appended again (all duplicates, each confirmed \
         against its stored key) at {:.0} punches/s",
        open_time.as_secs_f64(),
        total as f64 / again.as_secs_f64()
    );
    println!("  size on disk     {:.1} MB ({:.0} bytes/punch)", size as f64 / 1e6, size as f64 / total as f64);
    println!("  bench RSS peak   {:.1} MB", proc_status_kb(std::process::id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0);
    Ok(())
}

fn drain(args: &[String]) -> anyhow::Result<()> {
    let total = arg(args, 0, 1_000_000)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let data_dir = dir.path().join("data");
        println!("buffer-drain: filling a buffer with {total} punches...");
        let fill_time = fill(&data_dir.join("buffer"), total, 5000).await?;
        println!("  filled in {:.1} s; {:.1} MB on disk", fill_time.as_secs_f64(), dir_size(&data_dir) as f64 / 1e6);
        let central = FakeCentral::start_with("bench-token", false).await?;
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, agent_config(&data_dir, &central.url(), 0))?;
        let start = Instant::now();
        let mut agent =
            Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "warn")])?;
        let pid = agent.pid().context("agent pid")?;
        let _ = agent.listening_url().await?;
        let rss_after_open = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
        let mut peak_rss_kb = 0;
        let mut samples = 0u64;
        let mut sum_rss_kb = 0;
        while (central.stored_count() as u64) < total {
            if start.elapsed() > Duration::from_secs(600) {
                anyhow::bail!("not drained after 600 s: {} of {total}", central.stored_count());
            }
            let rss = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
            peak_rss_kb = peak_rss_kb.max(rss);
            sum_rss_kb += rss;
            samples += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let elapsed = start.elapsed();
        let hwm = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
        let cpu = cpu_seconds(pid).unwrap_or(0.0);
        agent.kill().await?;
        println!(
            "  drained {total} punches to a fake acking central (HTTP, bincode) in {:.2} s",
            elapsed.as_secs_f64()
        );
        println!("  rate             {:.0} punches/s", total as f64 / elapsed.as_secs_f64());
        println!(
            "  deliveries       {} (re-sent: {})",
            central.deliveries(),
            central.deliveries().saturating_sub(total)
        );
        println!(
            "  agent RSS        peak sampled {:.1} MB, high-water {:.1} MB, mean {:.1} MB",
            peak_rss_kb as f64 / 1024.0,
            hwm as f64 / 1024.0,
            sum_rss_kb as f64 / samples.max(1) as f64 / 1024.0
        );
        println!("  agent CPU        {cpu:.1} s");
        println!("  agent RSS        {:.1} MB right after opening the buffer", rss_after_open as f64 / 1024.0);
        Ok(())
    })
}

fn idle(args: &[String]) -> anyhow::Result<()> {
    let seconds = arg(args, 0, 30)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let central = FakeCentral::start("bench-token").await?;
        // 20 simulated terminals, each holding 500 records: the agent reads them once, then waits for realtime punches.
        let mut sims = Vec::new();
        for i in 0..20 {
            let config = SimConfig { serial: format!("BENCH-{i:02}"), records: 500, seed: i, ..SimConfig::default() };
            sims.push(ZkSim::start(config).await?);
        }
        let mut text = agent_config(&dir.path().join("data"), &central.url(), 0);
        for sim in &sims {
            text.push_str(&format!(
                "\n[[device]]\nkind = \"zk\"\nserial = \"{}\"\ntime_zone = \"Asia/Kolkata\"\nhost = \"127.0.0.1\"\n\
                 port = {}\n",
                sim.config().serial,
                sim.tcp_addr().port()
            ));
        }
        let config = dir.path().join("agent.toml");
        std::fs::write(&config, text)?;
        let mut agent =
            Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "warn")])?;
        let pid = agent.pid().context("agent pid")?;
        let _ = agent.listening_url().await?;
        // Until every terminal's log is read and forwarded.
        let start = Instant::now();
        while central.stored_count() < 20 * 500 {
            anyhow::ensure!(start.elapsed() < Duration::from_secs(60), "the 20 logs were not forwarded in 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let cpu_before = cpu_seconds(pid).unwrap_or(0.0);
        let mut peak = 0;
        for _ in 0..seconds {
            tokio::time::sleep(Duration::from_secs(1)).await;
            peak = peak.max(proc_status_kb(pid, "VmRSS:").unwrap_or(0));
        }
        let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
        let hwm = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
        agent.kill().await?;
        println!("agent-idle: edge-agent with 20 configured devices, idle for {seconds} s");
        println!(
            "  RSS              peak sampled {:.1} MB, high-water {:.1} MB",
            peak as f64 / 1024.0,
            hwm as f64 / 1024.0
        );
        println!("  CPU              {:.3} s over {seconds} s ({:.3}% of one core)", cpu, cpu * 100.0 / seconds as f64);
        println!("  statuses sent    {}", central.statuses().len());
        println!(
            "  devices          20 simulated terminals connected, {} punches read and forwarded",
            central.stored_count()
        );
        Ok(())
    })
}

/// An agent configuration for benches: HTTP to `url`, metrics on a free port, `devices` zk devices at 127.0.0.1:1,
/// where nothing answers (the connection is refused; the poller backs off).
pub fn agent_config(data_dir: &Path, url: &str, devices: usize) -> String {
    let mut text = format!(
        "[agent]\nid = \"bench-agent\"\nsite = \"{}\"\ndata_dir = \"{}\"\n\n\
         [central]\ntransport = \"https\"\nurl = \"{url}\"\ntoken = \"bench-token\"\n\n\
         [buffer]\nmax_disk_mb = 8192\ncache_mb = 8\n\n[forward]\nmax_batch = 5000\nlinger_ms = 200\n\n\
         [status]\ninterval_secs = 5\n\n[metrics]\nlisten = \"127.0.0.1:0\"\n",
        punches::SITE,
        data_dir.display()
    );
    for i in 0..devices {
        text.push_str(&format!(
            "\n[[device]]\nkind = \"zk\"\nserial = \"BENCH-{i:02}\"\ntime_zone = \"Asia/Kolkata\"\nhost = \"127.0.0.1\"\n\
             port = 1\n"
        ));
    }
    text
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU seconds of a process, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
