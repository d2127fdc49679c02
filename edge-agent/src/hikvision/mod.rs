//! Hikvision access-control and face terminals (DS-K1T...) over ISAPI, HTTP(S) with digest authentication.
//!
//! - codec (no I/O, bounded, fuzzed in `tests/terminal_fuzz.rs`): `acs_event` (an event, which minor codes are
//!   attendance, `attendanceStatus` to the punch state, times with offsets), `search` (the `AcsEventCond` request,
//!   the `AcsEvent` page, `ResponseStatus`), `alert` (a part of `alertStream`), `xml` (`deviceInfo`, `time`);
//! - client: `client::IsapiClient`, the requests over one digest client;
//! - poller: `poller::Hikvision`, the [`Terminal`](crate::http_terminal::terminal::Terminal) the shared session
//!   runs (history by `searchResultPosition` pages until not `MORE`, realtime by `alertStream`); `probe` is
//!   `edge-agent probe --kind hikvision`.
//!
//! The protocol facts and their public sources are in `REFERENCE.md` beside this file.

pub mod acs_event;
pub mod alert;
pub mod client;
pub mod poller;
pub mod search;
pub mod xml;

pub use poller::{build, run, Hikvision};
