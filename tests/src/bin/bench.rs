//! The bench binary: `cargo run --release -p system-tests --bin bench -- <name> [options]`.
//!
//! Each bench prints its figures (and the peer's, where the issue names one) to stdout. Speed targets are judged from
//! these figures, never asserted in tests.

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match system_tests::bench::find(&name) {
        Some(bench) => (bench.run)(&rest),
        None => {
            eprintln!("usage: bench <name> [options]\n\nbenches:");
            for bench in system_tests::bench::ALL {
                eprintln!("  {:<16} {}", bench.name, bench.about);
            }
            std::process::exit(2);
        }
    }
}
