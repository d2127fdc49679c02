//! The poller shared by the HTTP terminal drivers: one task per device.
//!
//! A session identifies the device (refusing one that reports another serial), measures its clock, opens the
//! realtime stream, then reads the history from the stored cursor (so nothing that happened before the stream
//! opened is missed), then takes stream events as they come. Every `poll_interval` the identity, clock and history
//! are read again as a backstop. A stream that ends, breaks, or stays silent past the driver's idle limit is opened
//! again (at once, or with backoff when it lived only briefly or the device refuses it, noted as `stream_down`), and
//! every reopening is followed by a history read, which fills the gap. A device that cannot be reached or refuses
//! the credentials ends the session; the next one starts after a backoff.
//!
//! Durability: punches are appended to the sink before the cursor moves past them, page by page. A stream event
//! moves the cursor only when it directly follows it in the device's numbering; otherwise the next history read
//! covers it. A device without history search works from the stream alone and says so in its status
//! (`history_not_supported`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use protocol::{DeviceSerial, Punch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::cursor::{EventCursor, HistoryJudge};
use super::digest::HttpError;
use super::stream::{EventStream, StreamItem};
use super::terminal::{DeviceClock, DeviceEvent, Identity, Terminal, TerminalError};
use super::{faults, CURSOR_NAME};
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::forward::backoff::Backoff;
use crate::sink::{PunchSink, SinkError};

/// How long a restarted numbering stays visible in the device status.
const RESET_VISIBLE: Duration = Duration::from_secs(600);
/// Guard against a device that keeps saying "more" forever.
const MAX_PAGES: usize = 1_000_000;

/// The session's settings for one device.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub serial: DeviceSerial,
    pub zone: Tz,
    pub poll_interval: Duration,
    pub max_clock_drift_secs: u64,
    pub overlap: Duration,
    pub auth_retry: Duration,
    pub realtime: bool,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Device(#[from] TerminalError),
    #[error("buffer refused punches: {0}")]
    Sink(#[from] SinkError),
    #[error("expected device {expected} but {found} answered at this address")]
    WrongDevice { expected: DeviceSerial, found: String },
}

impl SessionError {
    fn code(&self) -> &'static str {
        match self {
            Self::Device(TerminalError::Http(e)) if e.is_unreachable() => faults::UNREACHABLE,
            Self::Device(TerminalError::Http(HttpError::Unauthorized { .. })) => faults::AUTH_FAILED,
            Self::Device(TerminalError::StreamIdle(_) | TerminalError::Stream(_)) => faults::UNREACHABLE,
            Self::Device(_) => faults::PROTOCOL_ERROR,
            Self::Sink(_) => "buffer_refused",
            Self::WrongDevice { .. } => faults::WRONG_DEVICE,
        }
    }
}

/// Standing remarks about the device, raised again after every success (a success clears faults).
#[derive(Debug, Default)]
struct Notes {
    history_unsupported: Option<String>,
    realtime_unsupported: Option<String>,
    reset: Option<(Instant, String)>,
    stream_down: Option<String>,
    clock: Option<String>,
    zone: Option<String>,
}

struct Session<T: Terminal, S: PunchSink> {
    terminal: T,
    config: SessionConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
    notes: Notes,
    cursor: Option<EventCursor>,
    history_supported: bool,
    realtime_supported: bool,
}

/// The realtime stream of a session: open, or down with the time of the next try.
struct Link {
    stream: Option<EventStream>,
    retry_at: Option<Instant>,
    opened_at: Instant,
    backoff: Backoff,
}

impl Link {
    /// A link to open at once (`wanted`) or never.
    fn new(wanted: bool) -> Self {
        Self {
            stream: None,
            retry_at: wanted.then(Instant::now),
            opened_at: Instant::now(),
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(30)),
        }
    }

    fn opened(&mut self, stream: EventStream) {
        self.stream = Some(stream);
        self.retry_at = None;
        self.opened_at = Instant::now();
    }

    /// The stream ended: reopen at once, unless it lived only briefly (then back off, so a device that closes
    /// every stream at once is not hammered).
    fn dropped(&mut self) {
        self.stream = None;
        let delay = if self.opened_at.elapsed() < STABLE_STREAM {
            self.backoff.next_delay()
        } else {
            self.backoff.reset();
            Duration::from_millis(100)
        };
        self.retry_at = Some(Instant::now() + delay);
    }

    fn failed(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff.next_delay());
    }
}

/// A stream that lived this long is reopened at once when it drops.
const STABLE_STREAM: Duration = Duration::from_secs(10);

/// Sleeps until `at`, or forever when there is none.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Polls the device until `shutdown`. Never returns early: failures are retried with backoff (refused
/// credentials after `auth_retry`, so the device does not lock the account).
pub async fn run<T: Terminal, S: PunchSink>(
    terminal: T,
    config: SessionConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    board.register(&config.serial);
    board.identify(&config.serial, T::KIND, None);
    let span = tracing::info_span!("terminal", kind = T::KIND, device = %config.serial);
    let mut session = Session {
        terminal,
        config,
        sink,
        board,
        shutdown,
        notes: Notes::default(),
        cursor: None,
        history_supported: true,
        realtime_supported: true,
    };
    tracing::Instrument::instrument(session.run(), span).await;
}

impl<T: Terminal, S: PunchSink> Session<T, S> {
    async fn run(&mut self) {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        loop {
            let delay = match self.session().await {
                Ok(()) => return,
                Err(SessionError::Sink(e)) => {
                    warn!(error = %e, "buffer refused punches; reading again later");
                    Duration::from_secs(5)
                }
                Err(e) => {
                    let code = e.code();
                    warn!(code, error = %e, "device session failed");
                    self.board.failure(&self.config.serial, Utc::now(), code, e.to_string());
                    if code == faults::AUTH_FAILED {
                        self.config.auth_retry
                    } else {
                        backoff.next_delay()
                    }
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// One session, until shutdown (`Ok`) or a failure.
    async fn session(&mut self) -> Result<(), SessionError> {
        self.contact().await?;
        self.cursor = self.load_cursor().await?;
        let mut link = Link::new(self.config.realtime && self.realtime_supported);
        self.open_stream(&mut link).await?;
        self.read_history().await?;
        if link.stream.is_none() && link.retry_at.is_none() && !self.history_supported {
            return Err(TerminalError::Protocol(
                "the device supports neither history search nor a realtime stream".into(),
            )
            .into());
        }
        let mut next_poll = Instant::now() + self.config.poll_interval;
        let idle = self.terminal.stream_idle();
        loop {
            let retry_at = link.retry_at;
            let item = async {
                match link.stream.as_mut() {
                    Some(s) => s.next(idle).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(next_poll) => {
                    next_poll = Instant::now() + self.config.poll_interval;
                    self.contact().await?;
                    self.read_history().await?;
                }
                () = sleep_until_some(retry_at) => {
                    self.open_stream(&mut link).await?;
                    if link.stream.is_some() {
                        // Whatever happened while the stream was down.
                        self.read_history().await?;
                    }
                }
                item = item => match item {
                    Ok(Some(StreamItem::Event(event))) => self.take_realtime(event).await?,
                    Ok(Some(StreamItem::Heartbeat)) => debug!("stream heartbeat"),
                    Ok(Some(StreamItem::Gap(reason))) => {
                        warn!(reason, "event stream lost something; reading the history");
                        self.read_history().await?;
                    }
                    Ok(None) => {
                        info!("the device closed the event stream; reopening it");
                        link.dropped();
                    }
                    Err(e) => {
                        warn!(error = %e, "event stream dropped; reopening it");
                        link.dropped();
                    }
                }
            }
        }
    }

    /// Opens the stream if it is due. A device that cannot be reached or refuses the credentials ends the session;
    /// any other refusal leaves the stream down (noted in the status) and schedules another try.
    async fn open_stream(&mut self, link: &mut Link) -> Result<(), SessionError> {
        if link.retry_at.is_none() {
            return Ok(());
        }
        match self.terminal.open_stream().await {
            Ok(stream) => {
                link.opened(stream);
                if self.notes.stream_down.take().is_some() {
                    info!("event stream open again");
                    // A fresh contact clears the fault.
                    self.contact().await?;
                }
                Ok(())
            }
            Err(TerminalError::RealtimeNotSupported(reason)) => {
                warn!(reason, "the device has no realtime stream; reading its history every poll");
                self.realtime_supported = false;
                link.retry_at = None;
                self.notes.realtime_unsupported =
                    Some(format!("no realtime event stream ({reason}); events arrive with each history read"));
                self.raise_notes();
                Ok(())
            }
            Err(TerminalError::Http(e)) if e.is_unreachable() || matches!(e, HttpError::Unauthorized { .. }) => {
                Err(TerminalError::Http(e).into())
            }
            Err(e) => {
                warn!(error = %e, "cannot open the event stream; trying again later");
                link.failed();
                self.notes.stream_down = Some(format!("realtime event stream unavailable ({e}); retrying"));
                self.raise_notes();
                Ok(())
            }
        }
    }

    /// Identity, clock and counts into the board.
    async fn contact(&mut self) -> Result<(), SessionError> {
        let identity = self.terminal.identify().await?;
        if let Some(found) = &identity.serial {
            if found != self.config.serial.as_str() {
                return Err(SessionError::WrongDevice { expected: self.config.serial.clone(), found: found.clone() });
            }
        }
        let drift = identity.clock.map(|clock| self.drift(clock));
        let Identity { info, users, records, .. } = identity;
        self.board.identify(&self.config.serial, T::KIND, Some(info));
        let contact = Contact { record_count: records, user_count: users, clock_drift_secs: drift };
        self.board.success(&self.config.serial, Utc::now(), contact);
        self.raise_notes();
        Ok(())
    }

    /// Seconds the device clock is ahead of ours; notes a drift past the limit and an offset that is not the
    /// configured zone's.
    fn drift(&mut self, clock: DeviceClock) -> i64 {
        let now = Utc::now();
        let drift = match clock {
            DeviceClock::Zoned(at) => {
                let device_offset = at.offset().local_minus_utc();
                let zone_offset = chrono::Offset::fix(now.with_timezone(&self.config.zone).offset()).local_minus_utc();
                self.notes.zone = (device_offset != zone_offset).then(|| {
                    format!(
                        "the device runs at UTC{} but its zone {} is at UTC{} now; punches use the configured zone",
                        offset_text(device_offset),
                        self.config.zone.name(),
                        offset_text(zone_offset)
                    )
                });
                (at.with_timezone(&Utc) - now).num_seconds()
            }
            DeviceClock::Local(local) => (local - now.with_timezone(&self.config.zone).naive_local()).num_seconds(),
        };
        let max = i64::try_from(self.config.max_clock_drift_secs).unwrap_or(i64::MAX);
        self.notes.clock = (drift.abs() > max).then(|| format!("device clock is {drift:+} s off (limit {max} s)"));
        drift
    }

    fn raise_notes(&mut self) {
        let now = Utc::now();
        let serial = &self.config.serial;
        if let Some(note) = &self.notes.history_unsupported {
            self.board.fault(serial, now, faults::HISTORY_NOT_SUPPORTED, note.clone());
        }
        if let Some(note) = &self.notes.realtime_unsupported {
            self.board.fault(serial, now, faults::REALTIME_NOT_SUPPORTED, note.clone());
        }
        if let Some(note) = &self.notes.stream_down {
            self.board.fault(serial, now, faults::STREAM_DOWN, note.clone());
        }
        if let Some(note) = &self.notes.clock {
            self.board.fault(serial, now, faults::CLOCK_DRIFT, note.clone());
        }
        if let Some(note) = &self.notes.zone {
            self.board.fault(serial, now, faults::TIME_ZONE_MISMATCH, note.clone());
        }
        match &self.notes.reset {
            Some((at, note)) if at.elapsed() < RESET_VISIBLE => {
                self.board.fault(serial, now, faults::NUMBERING_RESET, note.clone());
            }
            _ => self.notes.reset = None,
        }
    }

    async fn load_cursor(&self) -> Result<Option<EventCursor>, SessionError> {
        let stored = self.sink.cursor(&self.config.serial, CURSOR_NAME).await?;
        Ok(stored.and_then(|bytes| EventCursor::decode(&bytes)))
    }

    async fn store_cursor(&mut self, cursor: EventCursor) -> Result<(), SessionError> {
        if self.cursor != Some(cursor) {
            self.sink.set_cursor(&self.config.serial, CURSOR_NAME, cursor.encode()).await?;
            self.cursor = Some(cursor);
        }
        Ok(())
    }

    /// Reads the events since the cursor, page by page: append, then move the cursor.
    async fn read_history(&mut self) -> Result<(), SessionError> {
        if !self.history_supported {
            return Ok(());
        }
        if !self.sink.accepting() {
            debug!("buffer is not accepting; history read deferred");
            return Ok(());
        }
        let start = self.cursor;
        let overlap = chrono::Duration::from_std(self.config.overlap).unwrap_or_default();
        let since = self.cursor.map(|c| c.time() - overlap);
        let mut judge = HistoryJudge::new(self.cursor);
        let mut search = self.terminal.start_search(since);
        let (mut read, mut new) = (0usize, 0usize);
        for _ in 0..MAX_PAGES {
            let page = match self.terminal.next_page(&mut search).await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(TerminalError::HistoryNotSupported(reason)) => {
                    warn!(reason, "the device does not search its history; working from the realtime stream alone");
                    self.history_supported = false;
                    self.notes.history_unsupported = Some(format!(
                        "history search not supported ({reason}); events come from the realtime stream alone, and \
                         those made while it is down are not recovered"
                    ));
                    self.raise_notes();
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            read += page.len();
            let punches: Vec<Punch> =
                page.into_iter().filter(|event| judge.judge(event.mark)).filter_map(|event| event.punch).collect();
            new += self.append(punches).await?;
            if let Some(cursor) = judge.cursor() {
                self.store_cursor(cursor).await?;
            }
        }
        if judge.reset_seen() {
            let note = format!(
                "the device's event numbering restarted (reset or replaced unit); events after {} were read by time",
                start.map_or_else(|| "the start".to_owned(), |c| c.time().format("%Y-%m-%d %H:%M:%SZ").to_string())
            );
            warn!(note, "event numbering restarted");
            self.notes.reset = Some((Instant::now(), note));
            self.raise_notes();
        }
        debug!(read, new, cursor = ?self.cursor, "history read");
        Ok(())
    }

    /// One stream event: append its punch, then move the cursor if it directly follows.
    async fn take_realtime(&mut self, event: DeviceEvent) -> Result<(), SessionError> {
        if let Some(reason) = &event.not_punch {
            debug!(reason, "stream event is not a punch");
        }
        let DeviceEvent { mark, front, punch, .. } = event;
        let appended = self.append(punch.into_iter().collect()).await?;
        let at = mark.at.timestamp();
        let next = match (self.cursor, mark.seq) {
            // Without history search the stream is the only source; the cursor only records the position.
            (_, Some(seq)) if !self.history_supported => Some(EventCursor { seq, at }),
            (Some(c), Some(seq)) if c.followed_by(seq, front) => Some(EventCursor { seq, at }),
            _ => None,
        };
        if let Some(cursor) = next {
            self.store_cursor(cursor).await?;
        }
        debug!(appended, seq = ?mark.seq, "stream event taken");
        Ok(())
    }

    /// Appends punches (durably) and counts them on the board; returns how many were new.
    async fn append(&self, punches: Vec<Punch>) -> Result<usize, SessionError> {
        if punches.is_empty() {
            return Ok(0);
        }
        let newest: Option<DateTime<Utc>> = punches.iter().map(|p| p.utc_time).max();
        let appended = self.sink.append(punches).await?;
        self.board.punches_read(&self.config.serial, appended.new as u64);
        if let Some(at) = newest {
            self.board.last_punch(&self.config.serial, at);
        }
        Ok(appended.new)
    }
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}
