//! The Dahua driver's side of the shared [`session`](crate::http_terminal::session): a [`Terminal`] over a
//! [`CgiClient`], and [`run`], one task per `[[device]]` of kind `dahua`.
//!
//! A history read asks `recordFinder` for the records from the window's start to a day past now, `count` at a
//! time. The device answers the oldest first, may return fewer than asked, and has no offset parameter, so the next
//! find starts at the last record's `CreateTime` (records of that second already taken are recognised by `RecNo`);
//! the read ends when a find brings nothing new. A full find that brings nothing new (more records in one second
//! than a find returns) is asked again with a larger count.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use protocol::{DeviceInfo, PunchSource, SiteId};
use tokio_util::sync::CancellationToken;

use super::access::Access;
use super::client::CgiClient;
use super::event::StreamEvent;
use crate::config::DeviceConfig;
use crate::device_status::DeviceStatusBoard;
use crate::http_terminal::context::EventContext;
use crate::http_terminal::cursor::Mark;
use crate::http_terminal::digest::DigestClient;
use crate::http_terminal::session::{self, SessionConfig};
use crate::http_terminal::settings::{client_options, session_config, TerminalSettings};
use crate::http_terminal::stream::{EventStream, StreamItem};
use crate::http_terminal::terminal::{DeviceClock, DeviceEvent, Identity, Terminal, TerminalError};
use crate::sink::PunchSink;

/// Records asked for per find unless configured.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest count asked for when a full find brings nothing new.
const MAX_COUNT: u32 = 4_096;
/// Stream silence taken as a dead connection unless configured (the stream has a 5 s heartbeat).
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(30);

/// One Dahua terminal.
#[derive(Debug)]
pub struct Dahua {
    client: CgiClient,
    context: EventContext,
    page_size: u32,
    idle: Duration,
    epoch_is_local: bool,
}

/// The state of one history read.
#[derive(Debug)]
pub struct Search {
    start: i64,
    end: i64,
    count: u32,
    seen: HashSet<u64>,
    done: bool,
}

impl Dahua {
    pub fn new(client: CgiClient, context: EventContext, page_size: u32, idle: Duration, epoch_is_local: bool) -> Self {
        Self { client, context, page_size, idle, epoch_is_local }
    }

    /// The client, for the probe.
    pub fn client(&self) -> &CgiClient {
        &self.client
    }

    /// An access in the session's terms.
    pub fn device_event(context: &EventContext, access: &Access) -> DeviceEvent {
        let (_, at) = access.time.resolve(context.zone);
        let (punch, not_punch) = match access.authentication() {
            Ok(auth) => match context.punch(&auth) {
                Ok(punch) => (Some(punch), None),
                Err(reason) => (None, Some(reason)),
            },
            Err(reason) => (None, Some(reason)),
        };
        DeviceEvent { mark: Mark { seq: access.rec_no, at }, front: None, punch, not_punch }
    }

    /// An instant as the device's epoch (its wall clock written as UTC when `epoch_is_local`).
    fn epoch(&self, at: DateTime<Utc>) -> i64 {
        if self.epoch_is_local {
            at.with_timezone(&self.context.zone).naive_local().and_utc().timestamp()
        } else {
            at.timestamp()
        }
    }
}

impl Terminal for Dahua {
    const KIND: &'static str = "dahua";
    type Search = Search;

    async fn identify(&self) -> Result<Identity, TerminalError> {
        let system = self.client.system_info().await?;
        let clock = self.client.current_time().await?;
        let users = self.client.user_count().await;
        let info = DeviceInfo {
            model: system.device_type.clone(),
            firmware: system.software_version.clone(),
            platform: system.hardware_version.clone(),
            reported_serial: system.serial_number.clone(),
            ..DeviceInfo::default()
        };
        Ok(Identity {
            serial: system.serial_number,
            info,
            users,
            records: None,
            clock: Some(DeviceClock::Local(clock)),
        })
    }

    fn start_search(&self, since: Option<DateTime<Utc>>) -> Search {
        let beginning = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).single().unwrap_or_default();
        Search {
            start: self.epoch(since.unwrap_or(beginning).max(beginning)),
            end: self.epoch(Utc::now() + chrono::Duration::days(1)),
            count: self.page_size,
            seen: HashSet::new(),
            done: false,
        }
    }

    async fn next_page(&self, search: &mut Search) -> Result<Option<Vec<DeviceEvent>>, TerminalError> {
        if search.done {
            return Ok(None);
        }
        let answer = self.client.find(search.start, search.end, search.count).await?;
        let asked_full = answer.records.len() >= search.count as usize;
        let mut events = Vec::new();
        let mut latest = search.start;
        for record in &answer.records {
            if let Some(time) = record.create_time {
                latest = latest.max(time);
            }
            if let Some(rec_no) = record.rec_no {
                if !search.seen.insert(rec_no) {
                    continue;
                }
            }
            match Access::from_record(record, self.epoch_is_local) {
                Ok(access) => events.push(Self::device_event(&self.context, &access)),
                Err(reason) => tracing::warn!(reason, "unreadable access record skipped"),
            }
        }
        // The device may cap a find below `count`, so a short answer does not end the read; a find that brings
        // nothing new does (the next one would start at the same second again).
        if answer.records.is_empty() {
            search.done = true;
        } else if events.is_empty() && latest == search.start {
            if !asked_full {
                search.done = true;
            } else if search.count >= MAX_COUNT {
                // More records in one second than a find returns: ask for more at once.
                return Err(TerminalError::Protocol(format!(
                    "over {MAX_COUNT} records at one second ({}); cannot page past them",
                    search.start
                )));
            } else {
                search.count = (search.count * 2).min(MAX_COUNT);
            }
        } else if events.is_empty() {
            search.start = latest;
        } else {
            search.start = latest;
            search.count = self.page_size;
        }
        Ok(Some(events))
    }

    async fn open_stream(&self) -> Result<EventStream, TerminalError> {
        let context = self.context.clone();
        let epoch_is_local = self.epoch_is_local;
        self.client
            .attach(move |event| match event {
                StreamEvent::Heartbeat => vec![StreamItem::Heartbeat],
                StreamEvent::Event { code, data, .. } if code == "AccessControl" => {
                    match Access::from_event(&data, epoch_is_local) {
                        Ok(access) => vec![StreamItem::Event(Self::device_event(&context, &access))],
                        Err(reason) => vec![StreamItem::Gap(format!("unreadable access event: {reason}"))],
                    }
                }
                StreamEvent::Event { .. } => vec![StreamItem::Heartbeat],
                StreamEvent::Unreadable(reason) => vec![StreamItem::Gap(reason)],
            })
            .await
    }

    fn stream_idle(&self) -> Duration {
        self.idle
    }
}

/// The driver and session settings of a `[[device]]` of kind `dahua`.
///
/// # Errors
/// A message for settings that cannot be used.
pub fn build(site: &SiteId, device: &DeviceConfig, s: &TerminalSettings) -> Result<(Dahua, SessionConfig), String> {
    let http = DigestClient::new(client_options(s)?).map_err(|e| e.to_string())?;
    let context = EventContext {
        site: site.clone(),
        serial: device.serial.clone(),
        zone: device.time_zone,
        direction: device.direction,
        source: PunchSource::Dahua,
    };
    let idle = s.stream_idle_secs.map_or(DEFAULT_STREAM_IDLE, Duration::from_secs);
    let page = s.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    let terminal = Dahua::new(CgiClient::new(http), context, page, idle, s.epoch_is_local);
    Ok((terminal, session_config(device, s)))
}

/// Reads the device until `shutdown`.
pub async fn run<S: PunchSink>(
    terminal: Dahua,
    config: SessionConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    session::run(terminal, config, sink, board, shutdown).await;
}
