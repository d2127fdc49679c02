//! The ZKTeco device simulator as a program: `cargo run -p system-tests --bin zk-sim -- --records 1000 ...`.
//! Prints `zk-sim listening on <addr>` (TCP and UDP on that port) and serves until Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use edge_agent::zk::{RecordLayout, UserLayout};
use system_tests::zk_sim::{FaultSettings, SimConfig, ZkSim};

/// A simulated ZKTeco terminal (binary protocol, TCP and UDP).
#[derive(Parser)]
#[command(about)]
struct Args {
    /// Address to listen on (TCP and UDP); port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:4370")]
    listen: SocketAddr,
    #[arg(long, default_value = "SIM0000000001")]
    serial: String,
    /// Comm key (communication password); 0 for none.
    #[arg(long, default_value_t = 0)]
    key: u32,
    /// Stored attendance records.
    #[arg(long, default_value_t = 1000)]
    records: usize,
    #[arg(long, default_value_t = 50)]
    users: usize,
    /// Attendance record size: 8, 16 or 40.
    #[arg(long, default_value_t = 40)]
    record_size: u16,
    /// User record size: 28 or 72.
    #[arg(long, default_value_t = 72)]
    user_size: u16,
    /// Seed of the generated users and records.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// IANA zone of the device clock.
    #[arg(long, default_value = "Asia/Kolkata")]
    zone: String,
    /// Realtime punches per second.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Realtime event payload size (10, 12, 14, 32, 36, 37, 52); default matches the record size.
    #[arg(long)]
    event_size: Option<usize>,
    /// Wrong clock: seconds the device clock is off.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    clock_offset: i64,
    /// Cut this many transfers half-way by dropping the connection.
    #[arg(long, default_value_t = 0)]
    drop_mid_transfer: u32,
    /// Send this many DATA packets with a wrong checksum.
    #[arg(long, default_value_t = 0)]
    bad_checksum: u32,
    /// Delay every answer by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Refuse buffered reads (clients must use the legacy request).
    #[arg(long)]
    refuse_buffer: bool,
    /// Split DATA into 1024-byte packets over TCP too.
    #[arg(long)]
    split_data: bool,
    /// Announce staged sizes at byte 0 of a 4-byte answer.
    #[arg(long)]
    size_at_zero: bool,
    /// Answer each chunk with a single DATA packet.
    #[arg(long)]
    single_data: bool,
    /// Answer datasets up to this many bytes inline.
    #[arg(long)]
    inline_max: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args = Args::parse();
    let config = SimConfig {
        serial: args.serial,
        comm_key: args.key,
        records: args.records,
        users: args.users,
        record_layout: RecordLayout::try_from(args.record_size).map_err(anyhow::Error::msg)?,
        user_layout: UserLayout::try_from(args.user_size).map_err(anyhow::Error::msg)?,
        seed: args.seed,
        time_zone: protocol::time::parse_zone(&args.zone).map_err(anyhow::Error::msg)?,
        clock_offset_secs: args.clock_offset,
        realtime_rate: args.rate,
        event_size: args.event_size,
        faults: FaultSettings {
            drop_mid_transfer: args.drop_mid_transfer,
            bad_checksum: args.bad_checksum,
            reply_delay_ms: args.delay_ms,
            refuse_buffer_read: args.refuse_buffer,
            split_data: args.split_data,
            size_at_zero: args.size_at_zero,
            single_data_packet: args.single_data,
            inline_max: args.inline_max,
        },
        ..SimConfig::default()
    };
    let sim = ZkSim::start_on(config, args.listen).await?;
    println!("zk-sim listening on {}", sim.tcp_addr());
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}
