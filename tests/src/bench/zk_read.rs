//! `bench zk-read [--records N] [--layout 8|16|40] [--udp]`: a bulk read of N records (default 100,000) from the
//! simulator over loopback with our client, then with pyzk 0.9 against the same simulator in the same run; prints
//! both times and the ratio. Targets (issue 4): ours under 0.5 s, at least 10x faster than pyzk.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use edge_agent::zk::{RecordLayout, Timeouts, TransportKind, UserLayout, ZkClient};

use super::Bench;
use crate::zk_sim::{SimConfig, ZkSim};

pub const BENCH: Bench =
    Bench { name: "zk-read", about: "bulk read of N records from the ZKTeco simulator: our client vs pyzk 0.9", run };

struct Options {
    records: usize,
    layout: RecordLayout,
    udp: bool,
    runs: usize,
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options { records: 100_000, layout: RecordLayout::Long, udp: false, runs: 3 };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => options.records = value()?.parse().context("--records")?,
            "--runs" => options.runs = value()?.parse::<usize>().context("--runs")?.max(1),
            "--layout" => {
                options.layout =
                    RecordLayout::try_from(value()?.parse::<u16>().context("--layout")?).map_err(anyhow::Error::msg)?
            }
            "--udp" => options.udp = true,
            other => bail!("unknown option {other:?}; use --records N, --layout 8|16|40, --udp, --runs N"),
        }
    }
    Ok(options)
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let user_layout = if options.layout == RecordLayout::Long { UserLayout::Large } else { UserLayout::Small };
    let config = SimConfig {
        records: options.records,
        users: 50,
        record_layout: options.layout,
        user_layout,
        ..SimConfig::default()
    };
    let sim = runtime.block_on(ZkSim::start(config))?;
    let (addr, transport) =
        if options.udp { (sim.udp_addr(), TransportKind::Udp) } else { (sim.tcp_addr(), TransportKind::Tcp) };
    println!(
        "zk-read: {} records of {} bytes over loopback {} ({} bytes)",
        options.records,
        options.layout.size(),
        transport.as_str(),
        options.records * options.layout.size() + 4
    );

    let mut ours = Vec::new();
    for _ in 0..options.runs {
        let (read, total, count) = runtime.block_on(read_with_our_client(&addr.to_string(), transport))?;
        if count != options.records {
            bail!("our client read {count} records, expected {}", options.records);
        }
        println!(
            "  ours: read_log {:.3} s (connect + disable + read + enable + exit {:.3} s)",
            read.as_secs_f64(),
            total.as_secs_f64()
        );
        ours.push(read);
    }
    let best = ours.iter().min().copied().unwrap_or_default();

    let json = crate::pyzk::read_device(addr, 0, options.udp, true)?;
    let pyzk_count = json["attendance"].as_array().map_or(0, Vec::len);
    if pyzk_count != options.records {
        bail!("pyzk read {pyzk_count} records, expected {}", options.records);
    }
    let pyzk = json["seconds"].as_f64().context("pyzk's timing")?;
    println!("  pyzk 0.9: get_attendance {pyzk:.3} s");
    println!(
        "result: ours {:.3} s (best of {}), pyzk {pyzk:.3} s, ratio {:.1}x; targets: < 0.5 s and >= 10x",
        best.as_secs_f64(),
        options.runs,
        pyzk / best.as_secs_f64()
    );
    drop(sim);
    Ok(())
}

/// Connects, disables, reads sizes + attendance (+ users for uid layouts), enables, exits. Returns the read's time,
/// the whole session's time and the record count.
async fn read_with_our_client(addr: &str, transport: TransportKind) -> anyhow::Result<(Duration, Duration, usize)> {
    let timeouts = Timeouts { connect: Duration::from_secs(5), request: Duration::from_secs(10) };
    let start = Instant::now();
    let mut client = ZkClient::connect(addr, transport, 0, timeouts).await?;
    client.disable().await?;
    let read_start = Instant::now();
    let snapshot = client.read_log(None).await?;
    let read = read_start.elapsed();
    client.enable().await?;
    client.exit().await;
    Ok((read, start.elapsed(), snapshot.log.records.len()))
}
