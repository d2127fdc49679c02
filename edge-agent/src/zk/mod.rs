//! The ZKTeco "standalone" binary protocol (port 4370, TCP or UDP): the agent's driver for most terminals on site.
//!
//! Layers, bottom up:
//! - codec, no I/O: [`packet`] (header, checksum, TCP framing), [`command`], [`auth`], [`time`], [`records`]
//!   (attendance 8/16/40 bytes), [`users`] (28/72 bytes), [`event`] (realtime payloads), [`sizes`], [`options`],
//!   [`buffer`] (bulk-read steps and the chunk state machine), [`templates`] (the template table and the upload),
//!   [`user_write`] (user records to write, uid choice);
//! - [`client::ZkClient`]: one async connection (socket in [`transport`]), requests with timeouts and reply-id
//!   matching, realtime events, the bulk read ([`bulk`]), device info ([`info`]) and user and template writes
//!   ([`user_calls`]); [`jobs`] / [`user_jobs`] are remote commands carried out on the poller's connection;
//! - [`poller`]: one task per device turning its log and events into [`protocol::Punch`]es ([`convert`]) for a
//!   [`crate::sink::PunchSink`], per [`config::ZkDeviceConfig`]; [`probe`] is the technician's one-shot read.
//!
//! Facts about the protocol are in `shared/reference/zk-binary-protocol.md`, the sources of how the driver tolerates
//! firmware variants in `REFERENCE.md` beside this file; every value read from a device is bounded before anything is
//! allocated for it.

pub mod auth;
pub mod buffer;
pub mod bulk;
pub mod client;
pub mod command;
pub mod config;
pub mod convert;
pub mod event;
pub mod fuzzing;
pub mod human;
pub mod info;
pub mod jobs;
pub mod options;
pub mod packet;
pub mod poller;
pub mod probe;
pub mod records;
pub mod sizes;
pub mod templates;
pub mod time;
pub mod transport;
pub mod user_calls;
pub mod user_jobs;
pub mod user_write;
pub mod users;

pub use client::{ClientError, ConnectOptions, EventWait, Timeouts, ZkClient};
pub use config::ZkDeviceConfig;
pub use records::RecordLayout;
pub use transport::TransportKind;
pub use users::UserLayout;
