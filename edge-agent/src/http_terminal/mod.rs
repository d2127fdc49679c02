//! What the drivers of terminals spoken to over HTTP (Hikvision ISAPI in [`crate::hikvision`], Dahua CGI in
//! [`crate::dahua`]) share:
//!
//! - `digest`: the client, one reqwest pool per device with digest authentication (`digest_auth` crate);
//! - `multipart`: the incremental reader of the long-lived multipart event streams (codec, no I/O, bounded);
//! - `cursor`: the durable position of a history read and which events of a read are new (pure);
//! - `stream`: an open event stream, parts turned into events by the driver;
//! - `terminal`: the [`terminal::Terminal`] trait a driver implements;
//! - `session`: the poller (identify, clock, stream, history backfill, cursor), one task per device;
//! - `settings`: the `[[device]]` keys both kinds take.

pub mod context;
pub mod cursor;
pub mod digest;
pub mod fuzzing;
pub mod multipart;
pub mod probe;
pub mod session;
pub mod settings;
pub mod stream;
pub mod terminal;

/// The buffer-store name of a terminal's history cursor.
pub const CURSOR_NAME: &str = "terminal.cursor";

/// The fault codes HTTP terminals raise in their device status.
pub mod faults {
    /// The device does not answer (connection refused, timeout, stream broken).
    pub const UNREACHABLE: &str = "unreachable";
    /// The device refused the configured credentials.
    pub const AUTH_FAILED: &str = "auth_failed";
    /// The device clock is off by more than `max_clock_drift_secs`.
    pub const CLOCK_DRIFT: &str = "clock_drift";
    /// The device's UTC offset is not the configured zone's.
    pub const TIME_ZONE_MISMATCH: &str = "time_zone_mismatch";
    /// The device answered something the driver cannot read.
    pub const PROTOCOL_ERROR: &str = "protocol_error";
    /// Another device answered at the configured address.
    pub const WRONG_DEVICE: &str = "wrong_device";
    /// The device answers history searches with "not supported": realtime stream only.
    pub const HISTORY_NOT_SUPPORTED: &str = "history_not_supported";
    /// The device has no realtime event stream: history reads only.
    pub const REALTIME_NOT_SUPPORTED: &str = "realtime_not_supported";
    /// The realtime stream cannot be opened for now (the device refuses it); history reads go on.
    pub const STREAM_DOWN: &str = "stream_down";
    /// The device's event numbering restarted (reset, replaced unit).
    pub const NUMBERING_RESET: &str = "event_numbering_reset";
}
