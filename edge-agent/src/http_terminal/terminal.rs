//! What a driver of an HTTP terminal provides to the shared [`session`](super::session): identity and clock, a
//! paged history read, and the realtime stream, with events already converted to punches.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use protocol::{DeviceInfo, Punch};

use super::cursor::Mark;
use super::digest::HttpError;
use super::stream::EventStream;

/// One device event: its place in the device's numbering and time, and its punch when it is an attendance event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEvent {
    pub mark: Mark,
    /// The number of the event the device sent before this one, when it tells (Hikvision `frontSerialNo`).
    pub front: Option<u64>,
    /// The punch, when the event is a successful authentication of a person.
    pub punch: Option<Punch>,
    /// Why it is not a punch (a door event, a failed verification, no person), for logs and the probe.
    pub not_punch: Option<String>,
}

/// The device's clock as it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceClock {
    /// A time with its UTC offset (Hikvision `localTime`).
    Zoned(DateTime<FixedOffset>),
    /// A wall-clock time in the device's zone (Dahua `getCurrentTime`).
    Local(NaiveDateTime),
}

/// What the device says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The serial number it reports.
    pub serial: Option<String>,
    pub info: DeviceInfo,
    pub users: Option<u32>,
    pub records: Option<u32>,
    pub clock: Option<DeviceClock>,
}

/// Why talking to the device failed.
#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The device answers event searches with "not supported".
    #[error("history search not supported: {0}")]
    HistoryNotSupported(String),
    /// The device has no event stream.
    #[error("realtime stream not supported: {0}")]
    RealtimeNotSupported(String),
    #[error("the device answered something unexpected: {0}")]
    Protocol(String),
    #[error("no data on the event stream for {0:?}")]
    StreamIdle(Duration),
    #[error("{0}")]
    Stream(String),
}

/// A driver's view of one terminal.
pub trait Terminal: Send + Sync + 'static {
    /// The `kind` in the configuration and the device status.
    const KIND: &'static str;
    /// The state of one history read (position, window).
    type Search: Send;

    /// Identity, counts and clock.
    fn identify(&self) -> impl Future<Output = Result<Identity, TerminalError>> + Send;

    /// Starts a history read of the events from `since` (`None`: everything the device holds) up to now.
    fn start_search(&self, since: Option<DateTime<Utc>>) -> Self::Search;

    /// The next page of the read, in the device's order; `None` when the read is complete.
    fn next_page(
        &self,
        search: &mut Self::Search,
    ) -> impl Future<Output = Result<Option<Vec<DeviceEvent>>, TerminalError>> + Send;

    /// Opens the realtime event stream.
    fn open_stream(&self) -> impl Future<Output = Result<EventStream, TerminalError>> + Send;

    /// How long the stream may stay silent before it is taken as dead.
    fn stream_idle(&self) -> Duration;
}
