//! `buffer-drain-central [punches] [cache-mb]`: the drain proof against the real central service. Fills an agent's
//! buffer with 1,000,000 punches (default), starts the real `edge-agent` on it while central is down, then starts the
//! real `central-api` (SQLite, HTTPS with a throwaway CA from [`crate::tls`]) and times the drain until the agent's
//! buffer is empty, sampling the agent's RSS from /proc all along. Targets: drained in < 30 s, agent RSS < 50 MB.
//!
//! Build first in the same profile: `cargo build --release -p edge-agent -p central-api`.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::buffer::{agent_config, cpu_seconds, dir_size, fill, proc_status_kb};
use super::Bench;
use crate::central::{Backend, CentralDb};
use crate::harness::Spawned;
use crate::{pipeline, punches, tls};

pub const BENCH: Bench = Bench {
    name: "buffer-drain-central",
    about: "edge-agent draining 1M buffered punches to a real central-api (HTTPS, SQLite)",
    run,
};

/// RSS samples of one process.
#[derive(Default)]
struct Rss {
    peak_kb: u64,
    sum_kb: u64,
    samples: u64,
}

impl Rss {
    fn sample(&mut self, pid: u32) {
        let kb = proc_status_kb(pid, "VmRSS:").unwrap_or(0);
        self.peak_kb = self.peak_kb.max(kb);
        self.sum_kb += kb;
        self.samples += 1;
    }

    fn mean_mb(&self) -> f64 {
        self.sum_kb as f64 / self.samples.max(1) as f64 / 1024.0
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let number = |index: usize, default: u64| -> anyhow::Result<u64> {
        match args.get(index) {
            Some(a) => a.replace('_', "").parse().with_context(|| format!("argument {a:?}")),
            None => Ok(default),
        }
    };
    let (total, cache_mb) = (number(0, 1_000_000)?, number(1, 8)?);
    tokio::runtime::Runtime::new()?.block_on(drain(total, cache_mb))
}

async fn drain(total: u64, cache_mb: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pki = tls::make_pki(dir.path())?;
    let data_dir = dir.path().join("data");
    println!("buffer-drain-central: filling a buffer with {total} punches...");
    let fill_time = fill(&data_dir.join("buffer"), total, 5000).await?;
    println!("  filled in {:.1} s; {:.1} MB on disk", fill_time.as_secs_f64(), dir_size(&data_dir) as f64 / 1e6);

    let db = CentralDb::new(Backend::Sqlite).await;
    db.create_site(punches::SITE).await?;
    let token = db.create_agent("bench-agent", punches::SITE).await?;
    let central_addr = pipeline::free_addr()?;
    let config = dir.path().join("agent.toml");
    let text = agent_config(&data_dir, &format!("https://127.0.0.1:{}", central_addr.port()), 0)
        .replace("token = \"bench-token\"", &format!("token = \"{token}\"\nca_file = \"{}\"", pki.ca.display()))
        .replace("linger_ms = 200\n", "linger_ms = 200\ninitial_backoff_ms = 100\nmax_backoff_secs = 1\n")
        .replace("cache_mb = 8\n", &format!("cache_mb = {cache_mb}\n"));
    std::fs::write(&config, text)?;

    // Central is down: the agent opens its buffer and retries.
    let mut agent =
        Spawned::start("edge-agent", &["run", "--config", &config.to_string_lossy()], &[("RUST_LOG", "error")])?;
    let pid = agent.pid().context("agent pid")?;
    let agent_url = agent.listening_url().await?;
    let mut rss = Rss::default();
    for _ in 0..20 {
        rss.sample(pid);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_central_down = proc_status_kb(pid, "VmRSS:").unwrap_or(0);

    let tls_env = vec![
        ("CENTRAL_API_TLS__CERT_FILE".to_owned(), pki.server_cert.display().to_string()),
        ("CENTRAL_API_TLS__KEY_FILE".to_owned(), pki.server_key.display().to_string()),
    ];
    let mut central = pipeline::serve_central(&db, central_addr, &tls_env).await?;
    let central_pid = central.pid().context("central pid")?;
    let start = Instant::now();
    let client = reqwest::Client::new();
    let mut central_peak_kb = 0;
    loop {
        rss.sample(pid);
        central_peak_kb = central_peak_kb.max(proc_status_kb(central_pid, "VmRSS:").unwrap_or(0));
        if buffer_depth(&client, &agent_url).await == Some(0) {
            break;
        }
        anyhow::ensure!(start.elapsed() < Duration::from_secs(600), "not drained after 600 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed();
    let hwm = proc_status_kb(pid, "VmHWM:").unwrap_or(0);
    let cpu = cpu_seconds(pid).unwrap_or(0.0);
    let central_cpu = cpu_seconds(central_pid).unwrap_or(0.0);
    agent.kill().await?;
    central.kill().await?;
    let stored = db.all_logs().await;
    anyhow::ensure!(stored == i64::try_from(total)?, "AllLogs holds {stored} rows, not {total}");

    println!("  drained {total} punches to central-api (HTTPS, bincode, SQLite) in {:.2} s", elapsed.as_secs_f64());
    println!("  rate             {:.0} punches/s; AllLogs holds {stored} rows", total as f64 / elapsed.as_secs_f64());
    println!(
        "  agent RSS        peak sampled {:.1} MB, high-water {:.1} MB, mean {:.1} MB (target < 50 MB)",
        mb(rss.peak_kb),
        mb(hwm),
        rss.mean_mb()
    );
    println!("  agent RSS        {:.1} MB with its buffer open and central down", mb(rss_central_down));
    println!("  agent config     sled cache_mb = {cache_mb}, max_batch = 5000");
    println!(
        "  agent CPU        {cpu:.1} s; central CPU {central_cpu:.1} s, central RSS peak {:.1} MB",
        mb(central_peak_kb)
    );
    Ok(())
}

/// The agent's `edge_buffer_depth`, from its /metrics.
async fn buffer_depth(client: &reqwest::Client, agent_url: &str) -> Option<u64> {
    let text = client.get(format!("{agent_url}/metrics")).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix("edge_buffer_depth ")).and_then(|v| v.trim().parse().ok())
}
