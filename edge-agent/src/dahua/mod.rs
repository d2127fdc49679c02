//! Dahua access-control and face terminals (ASI...) over their HTTP CGI API, with digest authentication.
//!
//! - codec (no I/O, bounded, fuzzed in `tests/terminal_fuzz.rs`): `records` (`key=value` answers, the
//!   `AccessControlCardRec` records of `recordFinder`), `event` (a part of the `eventManager` stream), `access`
//!   (a record or event to a punch: `Method` to verification, `AttendanceState` / `Type` to state, epoch times);
//! - client: `client::CgiClient`, the requests over one digest client;
//! - poller: `poller::Dahua`, the [`Terminal`](crate::http_terminal::terminal::Terminal) the shared session runs
//!   (history by `recordFinder` finds advancing by `CreateTime`, realtime by `eventManager` attach); `probe` is
//!   `edge-agent probe --kind dahua`.
//!
//! The protocol facts and their public sources are in `REFERENCE.md` beside this file.

pub mod access;
pub mod client;
pub mod event;
pub mod poller;
pub mod records;

pub use poller::{build, run, Dahua};
