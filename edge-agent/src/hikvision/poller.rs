//! The Hikvision driver's side of the shared [`session`](crate::http_terminal::session): a [`Terminal`] over an
//! [`IsapiClient`], and [`run`], one task per `[[device]]` of kind `hikvision`.
//!
//! A history read is one search (one `searchID`) over the window from the cursor's time (less the overlap) to a day
//! past now, `major` and `minor` 0 (every event, so the cursor follows every serial number), paged by
//! `searchResultPosition` until `responseStatusStrg` is not `MORE`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use protocol::{DeviceInfo, PunchSource, SiteId};
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::acs_event::AcsEvent;
use super::alert::Alert;
use super::client::IsapiClient;
use super::search::{SearchCondition, SearchStatus};
use crate::config::DeviceConfig;
use crate::device_status::DeviceStatusBoard;
use crate::http_terminal::context::EventContext;
use crate::http_terminal::cursor::Mark;
use crate::http_terminal::digest::DigestClient;
use crate::http_terminal::session::{self, SessionConfig};
use crate::http_terminal::settings::{client_options, session_config, TerminalSettings};
use crate::http_terminal::stream::{EventStream, StreamItem};
use crate::http_terminal::terminal::{DeviceEvent, Identity, Terminal, TerminalError};
use crate::sink::PunchSink;

/// Events asked for per page unless configured (the `maxResults` maximum many terminals report).
pub const DEFAULT_PAGE_SIZE: u32 = 30;
/// Stream silence taken as a dead connection unless configured.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(120);

/// One Hikvision terminal.
#[derive(Debug)]
pub struct Hikvision {
    client: IsapiClient,
    context: EventContext,
    page_size: u32,
    idle: Duration,
}

/// The state of one history read.
#[derive(Debug)]
pub struct Search {
    id: String,
    position: u64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    done: bool,
}

impl Hikvision {
    pub fn new(client: IsapiClient, context: EventContext, page_size: u32, idle: Duration) -> Self {
        Self { client, context, page_size, idle }
    }

    /// The client, for the probe.
    pub fn client(&self) -> &IsapiClient {
        &self.client
    }

    /// An event in the session's terms.
    pub fn device_event(context: &EventContext, event: &AcsEvent) -> DeviceEvent {
        let (_, at) = event.time.resolve(context.zone);
        let (punch, not_punch) = match event.authentication() {
            Ok(auth) => match context.punch(&auth) {
                Ok(punch) => (Some(punch), None),
                Err(reason) => (None, Some(reason)),
            },
            Err(reason) => (None, Some(reason.to_string())),
        };
        DeviceEvent { mark: Mark { seq: event.serial_no, at }, front: event.front_serial_no, punch, not_punch }
    }
}

/// The earliest time a first read asks for (the device's whole log).
fn beginning() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().unwrap_or_default()
}

impl Terminal for Hikvision {
    const KIND: &'static str = "hikvision";
    type Search = Search;

    async fn identify(&self) -> Result<Identity, TerminalError> {
        let description = self.client.device_info().await?;
        let clock = self.client.time().await?;
        let counts = self.client.user_counts().await;
        let info = DeviceInfo {
            model: description.model.clone(),
            firmware: description.firmware.clone(),
            platform: description.device_type.clone(),
            reported_serial: description.serial_number.clone(),
            user_capacity: counts.capacity,
            face_count: counts.faces,
            ..DeviceInfo::default()
        };
        Ok(Identity { serial: description.serial_number, info, users: counts.users, records: None, clock: Some(clock) })
    }

    fn start_search(&self, since: Option<DateTime<Utc>>) -> Search {
        let id: u128 = rand::rng().random();
        Search {
            id: format!("{id:032x}"),
            position: 0,
            start: since.unwrap_or_else(beginning).max(beginning()),
            end: Utc::now() + chrono::Duration::days(1),
            done: false,
        }
    }

    async fn next_page(&self, search: &mut Search) -> Result<Option<Vec<DeviceEvent>>, TerminalError> {
        if search.done {
            return Ok(None);
        }
        let cond = SearchCondition {
            search_id: search.id.clone(),
            position: search.position,
            max_results: self.page_size,
            start: search.start,
            end: search.end,
        };
        let page = self.client.search(&cond, self.context.zone).await?;
        let received = page.events.len() as u64;
        search.position += received;
        search.done = page.status != SearchStatus::More;
        if !search.done && received == 0 {
            return Err(TerminalError::Protocol("event search said MORE but returned no events".into()));
        }
        let events = page
            .events
            .iter()
            .filter_map(|entry| match entry {
                Ok(event) => Some(Self::device_event(&self.context, event)),
                Err(reason) => {
                    tracing::warn!(reason, "unreadable event in the search answer skipped");
                    None
                }
            })
            .collect();
        Ok(Some(events))
    }

    async fn open_stream(&self) -> Result<EventStream, TerminalError> {
        let context = self.context.clone();
        self.client
            .alert_stream(move |alert| match alert {
                Alert::Access(event) => vec![StreamItem::Event(Self::device_event(&context, &event))],
                Alert::Other(kind) => {
                    tracing::trace!(kind, "notification that is not an access event");
                    vec![StreamItem::Heartbeat]
                }
                Alert::Unreadable(reason) => vec![StreamItem::Gap(format!("unreadable notification: {reason}"))],
            })
            .await
    }

    fn stream_idle(&self) -> Duration {
        self.idle
    }
}

/// The driver and session settings of a `[[device]]` of kind `hikvision`.
///
/// # Errors
/// A message for settings that cannot be used (a checked configuration has none but an unreadable password file).
pub fn build(site: &SiteId, device: &DeviceConfig, s: &TerminalSettings) -> Result<(Hikvision, SessionConfig), String> {
    let http = DigestClient::new(client_options(s)?).map_err(|e| e.to_string())?;
    let context = EventContext {
        site: site.clone(),
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        source: PunchSource::Hikvision,
    };
    let idle = s.stream_idle_secs.map_or(DEFAULT_STREAM_IDLE, Duration::from_secs);
    let terminal = Hikvision::new(IsapiClient::new(http), context, s.page_size.unwrap_or(DEFAULT_PAGE_SIZE), idle);
    Ok((terminal, session_config(device, s)))
}

/// Reads the device until `shutdown`.
pub async fn run<S: PunchSink>(
    terminal: Hikvision,
    config: SessionConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    session::run(terminal, config, sink, board, shutdown).await;
}
