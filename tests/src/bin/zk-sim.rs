//! The ZKTeco device simulator as a program: `cargo run -p system-tests --bin zk-sim -- --records 1000 ...`.
//! Prints `zk-sim listening on <addr>` (TCP and UDP on that port) and serves until Ctrl-C.

use std::net::SocketAddr;

use clap::Parser;
use edge_agent::zk::{command, RecordLayout, UserLayout};
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
    /// Answer DISABLEDEVICE and ENABLEDEVICE with `error` (ACK_ERROR) or `unknown` (ACK_UNKNOWN).
    #[arg(long)]
    refuse_disable: Option<String>,
    /// Answer READ_BUFFER chunks, ATTLOG_RRQ and USERTEMP_RRQ with one ACK_DATA packet carrying the data.
    #[arg(long)]
    ack_data: bool,
    /// Send every reply with its checksum off by one.
    #[arg(long)]
    checksum_off_by_one: bool,
    /// Return the attendance log to buffered reads only with function code 1 (FCT_ATTLOG); 0 gets an empty log.
    #[arg(long)]
    attlog_by_fct: bool,
    /// Return an empty attendance log to buffered reads; only ATTLOG_RRQ returns it.
    #[arg(long)]
    buffered_empty: bool,
    /// Return at most this many records to every attendance read, while the count reports them all.
    #[arg(long)]
    serve_records: Option<usize>,
    /// Refuse every read of the user table.
    #[arg(long)]
    refuse_users: bool,
    /// Answer CONNECT at once and only delay later answers (a slow device rather than a silent listener).
    #[arg(long)]
    delay_after_connect: bool,
    /// Length of the GET_FREE_SIZES answer (68, 80 or 92).
    #[arg(long, default_value_t = 92)]
    sizes_len: usize,
    /// User capacity reported (0: not reported).
    #[arg(long, default_value_t = 10_000)]
    user_capacity: u32,
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
        sizes_len: args.sizes_len,
        user_capacity: args.user_capacity,
        faults: FaultSettings {
            drop_mid_transfer: args.drop_mid_transfer,
            bad_checksum: args.bad_checksum,
            reply_delay_ms: args.delay_ms,
            refuse_buffer_read: args.refuse_buffer,
            split_data: args.split_data,
            size_at_zero: args.size_at_zero,
            single_data_packet: args.single_data,
            inline_max: args.inline_max,
            refuse_disable: match args.refuse_disable.as_deref() {
                None => None,
                Some("error") => Some(command::ACK_ERROR),
                Some("unknown") => Some(command::ACK_UNKNOWN),
                Some(other) => anyhow::bail!("--refuse-disable takes error or unknown, not {other:?}"),
            },
            ack_data: args.ack_data,
            checksum_off_by_one: args.checksum_off_by_one,
            attlog_by_fct: args.attlog_by_fct,
            buffered_empty: args.buffered_empty,
            serve_records: args.serve_records,
            refuse_users: args.refuse_users,
            delay_after_connect: args.delay_after_connect,
        },
        ..SimConfig::default()
    };
    let sim = ZkSim::start_on(config, args.listen).await?;
    println!("zk-sim listening on {}", sim.tcp_addr());
    tokio::signal::ctrl_c().await?;
    sim.stop();
    Ok(())
}
