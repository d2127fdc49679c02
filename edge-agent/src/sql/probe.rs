//! `edge-agent probe --sql DEVICE --config FILE`: one look at a configured SQL source for the technician. Prints the
//! server, the columns as matched, the row count, the newest rows mapped to punches (or why they cannot be), and
//! the stored cursor. Reads only.
//!
//! The cursor is in the agent's buffer: read from it directly when the agent is stopped, else from the running
//! agent's `/metrics` (`edge_sql_last_id`), since the running agent holds the buffer's lock.

use std::fmt::Write;

use anyhow::Context;

use super::check::columns_text;
use super::client::SqlClient;
use super::poller::CURSOR;
use super::row::Mapped;
use super::schema::resolve;
use super::settings::{build, describe};
use crate::buffer::{Buffer, BufferOptions, OpenError};
use crate::config::{Config, DeviceSettings};
use crate::faults::Faults;

/// Probes the SQL source `serial` of `config` and returns the report, listing `last` rows.
///
/// # Errors
/// When the device is not a SQL source of the file, or the database cannot be read (the message names the fault).
pub async fn probe(config: &Config, serial: &str, last: usize) -> anyhow::Result<String> {
    let device = config
        .devices
        .iter()
        .find(|d| d.serial.as_str() == serial)
        .with_context(|| format!("no device with serial {serial:?} in the configuration"))?;
    let DeviceSettings::Sql(settings) = &device.settings else {
        anyhow::bail!("device {serial} is of kind {:?}, not \"sql\"", device.settings.kind());
    };
    let source = build(&config.agent.site, device, settings).map_err(anyhow::Error::msg)?;
    let failed = |e: super::client::SqlError| anyhow::anyhow!("{}: {e}", e.fault());
    let mut client = SqlClient::connect(&source.connection).await.map_err(failed)?;
    let mut out = String::new();
    let c = &source.connection;
    let _ = writeln!(out, "source   {serial}: {} at {}:{}/{}", describe(&source), c.host, c.port, c.database);
    let result = async {
        let version = client.server_version().await.map_err(failed)?;
        let _ = writeln!(out, "server   {version}");
        let resolved = resolve(&mut client, &source).await.map_err(failed)?;
        let _ = writeln!(out, "columns  {}", columns_text(&resolved));
        let count = client
            .fetch(&resolved.plan.count(), 1, |v| v[0].and_then(|b| std::str::from_utf8(b).ok()?.parse::<u64>().ok()))
            .await
            .map_err(failed)?;
        let _ = writeln!(out, "rows     {}", count.into_iter().flatten().next().unwrap_or(0));
        let newest = client
            .fetch(&resolved.plan.newest(u32::try_from(last).unwrap_or(u32::MAX)), resolved.positions.count, |v| {
                resolved.mapper.map(&resolved.fields(v))
            })
            .await
            .map_err(failed)?;
        let _ = writeln!(out, "newest {} rows:", newest.len());
        for row in newest {
            match row {
                Ok(Mapped::Punch { id, punch }) => {
                    let _ = writeln!(
                        out,
                        "  id {id:<10} pin {:<12} {}  {:<10} {:<12} device {}",
                        punch.pin, punch.local_time, punch.state, punch.verify, punch.device
                    );
                }
                Ok(Mapped::Unmappable { id, reason }) => {
                    let _ = writeln!(out, "  id {id:<10} cannot become a punch: {reason}");
                }
                Err(e) => {
                    let _ = writeln!(out, "  a row the agent cannot read: {e}");
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    client.close().await;
    result?;
    let _ = writeln!(out, "cursor   {}", cursor_text(config, &device.serial, source.start_after_id).await);
    Ok(out)
}

/// The stored cursor, from the buffer or the running agent.
async fn cursor_text(config: &Config, serial: &protocol::DeviceSerial, start: Option<i64>) -> String {
    let not_yet = || match start {
        Some(id) => format!("none stored yet (the agent starts after id {id})"),
        None => "none stored yet (the agent starts at the first row)".into(),
    };
    if !config.buffer_path().exists() {
        return not_yet();
    }
    let options = BufferOptions {
        path: config.buffer_path(),
        max_disk_bytes: config.buffer.max_disk_bytes,
        cache_bytes: config.buffer.cache_bytes,
        key_retention: config.buffer.key_retention,
    };
    match tokio::task::spawn_blocking(move || Buffer::open(options, Faults::new())).await {
        Ok(Ok(buffer)) => {
            use crate::sink::PunchSink;
            let stored = buffer.cursor(serial, CURSOR).await;
            let _ = buffer.flush().await;
            match stored {
                Ok(Some(bytes)) => <[u8; 8]>::try_from(bytes.as_slice())
                    .map_or_else(|_| "unreadable".into(), |b| format!("{} (last id read)", i64::from_be_bytes(b))),
                Ok(None) => not_yet(),
                Err(e) => format!("unreadable: {e}"),
            }
        }
        Ok(Err(OpenError::Locked { .. })) => from_running_agent(config, serial).await,
        Ok(Err(e)) => format!("unreadable: {e}"),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// `edge_sql_last_id{device="..."}` from the running agent's `/metrics`.
async fn from_running_agent(config: &Config, serial: &protocol::DeviceSerial) -> String {
    let mut addr = config.metrics.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{addr}/metrics");
    let text = match reqwest::get(&url).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(e) => return format!("the agent is running but {url} did not answer: {e}"),
    };
    let prefix = format!("edge_sql_last_id{{device=\"{serial}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).map_or_else(
        || "none reported by the running agent yet".into(),
        |id| format!("{id} (last id read, from the running agent)"),
    )
}
