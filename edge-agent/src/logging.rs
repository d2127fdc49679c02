//! Log output: plain text, coloured only when stderr is a terminal (never ANSI codes in files or the journal), or
//! one JSON object per line for log shippers (`--log-format json`). `RUST_LOG` filters either way (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; colour only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber writing to stderr. Colour follows `colour` (pass whether stderr is a terminal,
/// see [`stderr_is_terminal`]).
pub fn init(format: LogFormat, colour: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match format {
        LogFormat::Text => builder.with_ansi(colour).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}

/// Whether stderr is a terminal (and `NO_COLOR` is not set).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
