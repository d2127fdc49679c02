//! What `edge-agent check-config` does for SQL sources: connect, and check that the table (or query) and every
//! named column exist with a usable type. Each source gets one line: what was found, or everything that is wrong.

use super::client::SqlClient;
use super::schema::{resolve, Resolved};
use super::settings::{build, describe, SqlSource};
use crate::config::{Config, DeviceSettings};

/// The outcome for one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceCheck {
    /// `device[2]` (the index in the file) and the serial.
    pub device: String,
    /// A summary when usable, else what is wrong (naming the fault it would raise).
    pub outcome: Result<String, String>,
}

/// Checks every `kind = "sql"` device of a loaded configuration against its database.
pub async fn check_sources(config: &Config) -> Vec<SourceCheck> {
    let mut checks = Vec::new();
    for (index, device) in config.devices.iter().enumerate() {
        let DeviceSettings::Sql(settings) = &device.settings else { continue };
        let name = format!("device[{index}] ({})", device.serial);
        let outcome = match build(&config.agent.site, device, settings) {
            Ok(source) => check_source(&source).await,
            Err(e) => Err(e),
        };
        checks.push(SourceCheck { device: name, outcome });
    }
    checks
}

/// Connects to one source and resolves its columns.
///
/// # Errors
/// What is wrong, prefixed with the fault the running agent would raise.
pub async fn check_source(source: &SqlSource) -> Result<String, String> {
    let failed = |e: super::client::SqlError| format!("{}: {e}", e.fault());
    let mut client = SqlClient::connect(&source.connection).await.map_err(failed)?;
    let result = async {
        let version = client.server_version().await.map_err(failed)?;
        let resolved = resolve(&mut client, source).await.map_err(failed)?;
        Ok(format!("{} on {version}: {}", describe(source), columns_text(&resolved)))
    }
    .await;
    client.close().await;
    result
}

/// `id=id employee=emp_code time=punch_time (naive) ...`.
pub fn columns_text(resolved: &Resolved) -> String {
    let kind = match resolved.plan.time_kind {
        super::row::TimeKind::Naive => format!("wall-clock in {}", resolved.mapper.zone),
        super::row::TimeKind::Instant => format!("moments, placed in {}", resolved.mapper.zone),
        super::row::TimeKind::Text => "text".into(),
    };
    let named: Vec<String> =
        resolved.plan.columns.named().iter().map(|(role, name)| format!("{role}={name}")).collect();
    format!("{} (time: {kind})", named.join(" "))
}
