//! A child process for the buffer's crash test: appends numbered punches in a loop and prints `ok <n>` after every
//! append that returned Ok (all punches below `n` are then durable). The test kills it with SIGKILL at random moments.
//!
//! Usage: `buffer-crash-child <buffer dir> <first number> <per append>`.

use std::io::Write;
use std::time::Duration;

use edge_agent::buffer::{Buffer, BufferOptions, OpenError};
use edge_agent::faults::Faults;
use system_tests::punches;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, first, per] = args.as_slice() else {
        anyhow::bail!("usage: buffer-crash-child <buffer dir> <first number> <per append>");
    };
    let mut next: u64 = first.parse()?;
    let per: u64 = per.parse()?;
    let options = BufferOptions {
        path: dir.into(),
        max_disk_bytes: 1 << 34,
        cache_bytes: 8 << 20,
        key_retention: Duration::from_secs(86_400),
    };
    // The checker's own handle on the store may hold sled's file lock for a moment after it is dropped (sled finishes
    // a flush on a helper thread); wait for it rather than fail.
    let mut attempts = 0;
    let buffer = loop {
        match Buffer::open(options.clone(), Faults::new()) {
            Err(OpenError::Locked { .. }) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    let device: protocol::DeviceSerial = "CRASH-1".parse()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    loop {
        buffer.append(punches::range("CRASH-1", next, next + per)).await?;
        next += per;
        buffer.put_cursor(&device, "next", next.to_be_bytes().to_vec()).await?;
        writeln!(out, "ok {next}")?;
        out.flush()?;
    }
}
