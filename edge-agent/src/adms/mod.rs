//! The ZKTeco PUSH ("ADMS", `/iclock/...`) receiver: terminals that push their punches over HTTP to the agent.
//!
//! The device is the HTTP client. It shakes hands (`GET /iclock/cdata?options=all`) and learns the stamps the agent
//! stored, so it sends only what the agent lacks; it posts its attendance rows (`table=ATTLOG`), which are answered
//! `OK` only once [`crate::sink::PunchSink::append`] returned, that is once they are durable; it polls for commands.
//!
//! - `attlog`: the body parsers (no I/O; fuzzed by `fuzz_all`);
//! - `commands`: the per-device command queue (set time, re-upload the log since a date, info) and their results;
//! - `receiver`: what each request does (known serials only, stamps and the PIN->name map kept as sink cursors);
//! - `server`: the axum routes.
//!
//! Stamps live in the buffer's cursor entries (`c <serial> 0 adms.stamp.ATTLOG`), written after the rows they cover
//! were appended: after a restart the device is told the same stamp and does not send those rows again.

pub mod attlog;
pub mod commands;
pub mod receiver;
pub mod server;

pub use commands::{AdmsCommand, CommandOutcome, CommandQueue};
pub use receiver::{AdmsDevice, AdmsOptions, AdmsReceiver, Reply};
