//! Benchmarks run by the `bench` binary. Each module adds one [`Bench`] to [`ALL`].

pub mod attendance;
pub mod backup;
pub mod buffer;
pub mod drain_central;
pub mod engine;
pub mod ingest;
pub mod ingest_peer;
pub mod latency;
pub mod login_storm;
pub mod soak;
pub mod sql_backlog;
pub mod zk_read;

/// One named benchmark.
pub struct Bench {
    pub name: &'static str,
    pub about: &'static str,
    /// Runs with the remaining command-line arguments and prints figures.
    pub run: fn(&[String]) -> anyhow::Result<()>,
}

/// Every benchmark, in the order `bench` lists them.
pub const ALL: &[Bench] = &[
    ingest::BENCH,
    zk_read::BENCH,
    engine::BENCH,
    attendance::BENCH,
    latency::BENCH,
    buffer::APPEND,
    buffer::DRAIN,
    drain_central::BENCH,
    buffer::IDLE,
    sql_backlog::BENCH,
    backup::BENCH,
    login_storm::BENCH,
    soak::BENCH,
];

/// The benchmark called `name`.
pub fn find(name: &str) -> Option<&'static Bench> {
    ALL.iter().find(|b| b.name == name)
}
