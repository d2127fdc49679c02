//! One task per device: connect, identify, check the clock, read the whole log into the sink, then take realtime
//! punches until the connection drops; reconnect with backoff and read the log again (the sink drops what it already
//! holds, so a re-read only fills gaps).
//!
//! The clear-log rule: the device log is deleted only when `clear_log_when_acknowledged` is set and, with the device
//! disabled from the read to the clear, every record read was converted, every resulting punch is acknowledged by
//! the central service (`sink.unacknowledged(keys) == 0`) and the device's record count still equals the number
//! read. Otherwise the log stays.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use protocol::{DeviceSerial, Punch, SiteId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use super::bulk::pin_table;
use super::client::{ClientError, EventWait, ZkClient};
use super::command;
use super::config::ZkDeviceConfig;
use super::convert::PunchContext;
use super::jobs::{ZkJob, ZkJobInbox, ZkJobOutput};
pub use super::user_jobs::JobFailure;
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::{PunchSink, SinkError};

/// Punches per `append` call during a bulk read.
const APPEND_BATCH: usize = 5_000;

/// Why a contact with the device ended badly.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Device(#[from] ClientError),
    #[error("sink refused punches: {0}")]
    Sink(#[from] SinkError),
    #[error("the device did not report its serial number")]
    NoSerial,
    #[error("the device reports serial {found:?}, which is not a valid serial: {reason}")]
    BadSerial { found: String, reason: String },
    #[error("expected device {expected} but {found} answered at this address")]
    WrongDevice { expected: DeviceSerial, found: DeviceSerial },
}

impl PollError {
    /// The fault code shown in the device status.
    fn code(&self) -> &'static str {
        match self {
            Self::Device(ClientError::Connect { .. } | ClientError::Timeout { .. } | ClientError::Link { .. }) => {
                "device_unreachable"
            }
            Self::Device(ClientError::Unauthorized { .. }) => "device_auth_failed",
            Self::Device(_) | Self::NoSerial | Self::BadSerial { .. } => "device_protocol_error",
            Self::Sink(_) => "buffer_refused",
            Self::WrongDevice { .. } => "wrong_device",
        }
    }

    /// Whether EXIT is worth sending (the connection is still up).
    fn connection_alive(&self) -> bool {
        !matches!(
            self,
            Self::Device(ClientError::Connect { .. } | ClientError::Link { .. } | ClientError::Timeout { .. })
        )
    }
}

/// How a session ended without error.
enum SessionEnd {
    Shutdown,
    /// The sink stopped accepting; wait for it before reading again.
    SinkPaused,
}

/// What one bulk read did.
#[derive(Debug, Clone, Copy, Default)]
struct BulkOutcome {
    device_records: u32,
    users: Option<u32>,
    new: usize,
    cleared: bool,
}

/// Polls one device until `shutdown` fires, reporting into `board`. Never returns early: failures are retried with
/// exponential backoff and jitter.
pub async fn run<S: PunchSink>(
    site: SiteId,
    config: ZkDeviceConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
) {
    run_with_jobs(site, config, sink, board, shutdown, None).await;
}

/// As [`run`], also carrying out the jobs that arrive on `jobs` ([`super::jobs`]) on the poller's connection,
/// between reads.
pub async fn run_with_jobs<S: PunchSink>(
    site: SiteId,
    config: ZkDeviceConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
    jobs: Option<ZkJobInbox>,
) {
    let span = info_span!("zk", device = %config.socket_address());
    // Until the device tells its serial, failures are reported under a provisional key made from its address.
    let status_key = match &config.expected_serial {
        Some(serial) => {
            board.register(serial);
            serial.clone()
        }
        None => placeholder_serial(&config),
    };
    let mut poller = Poller { site, config, sink, board, shutdown, status_key, pins: Default::default(), jobs };
    poller.run().instrument(span).await;
}

/// The status key of a device whose serial is not known yet, e.g. `zk-10.0.0.5-4370`.
fn placeholder_serial(config: &ZkDeviceConfig) -> DeviceSerial {
    let mut cleaned = String::from("zk-");
    for c in config.socket_address().chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            cleaned.push(c);
        } else if !cleaned.ends_with('-') {
            cleaned.push('-');
        }
    }
    let cleaned: String = cleaned.trim_end_matches('-').chars().take(64).collect();
    cleaned.parse().unwrap_or_else(|_| "zk-unknown".parse().expect("a constant valid serial"))
}

struct Poller<S> {
    site: SiteId,
    config: ZkDeviceConfig,
    sink: Arc<S>,
    board: DeviceStatusBoard,
    shutdown: CancellationToken,
    /// The key the board knows this device by: the serial once known.
    status_key: DeviceSerial,
    pins: std::collections::HashMap<u16, String>,
    /// Remote work for this device, done between reads.
    jobs: Option<ZkJobInbox>,
}

impl<S: PunchSink> Poller<S> {
    async fn run(&mut self) {
        let mut failures: u32 = 0;
        loop {
            if !self.wait_until_accepting().await {
                break;
            }
            let delay = match self.session().await {
                Ok(SessionEnd::Shutdown) => break,
                Ok(SessionEnd::SinkPaused) => {
                    failures = 0;
                    continue;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    warn!(error = %e, failures, "device contact failed");
                    self.board.failure(&self.status_key, Utc::now(), e.code(), e.to_string());
                    self.backoff(failures)
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        info!("poller stopped");
    }

    /// Exponential backoff from `backoff_min_ms`, capped, times a random factor in [0.5, 1.0) so that many agents
    /// restarted together do not retry in step.
    fn backoff(&self, failures: u32) -> Duration {
        let base = self.config.backoff_min_ms.saturating_mul(1 << failures.saturating_sub(1).min(20));
        let capped = base.min(self.config.backoff_max_ms);
        Duration::from_millis(capped).mul_f64(rand::random_range(0.5..1.0))
    }

    /// Waits while the sink refuses punches; false when shutdown fired.
    async fn wait_until_accepting(&self) -> bool {
        let mut warned = false;
        while !self.sink.accepting() {
            if !warned {
                warn!("buffer is not accepting punches; pausing reads of this device");
                warned = true;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        !self.shutdown.is_cancelled()
    }

    async fn session(&mut self) -> Result<SessionEnd, PollError> {
        let addr = self.config.socket_address();
        let mut client =
            ZkClient::connect(&addr, self.config.transport, self.config.comm_key, self.config.timeouts()).await?;
        let outcome = self.session_on(&mut client).await;
        let alive = match &outcome {
            Ok(_) => true,
            Err(e) => e.connection_alive(),
        };
        if alive {
            client.exit().await;
        }
        outcome
    }

    async fn session_on(&mut self, client: &mut ZkClient) -> Result<SessionEnd, PollError> {
        let device = self.identify(client).await?;
        let mut drift = self.check_clock(client, &device).await?;
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(SessionEnd::Shutdown);
            }
            if !self.sink.accepting() {
                return Ok(SessionEnd::SinkPaused);
            }
            let outcome = self.bulk_read(client, &device).await?;
            self.report_success(&device, Some(outcome.device_records), outcome.users, drift);
            info!(records = outcome.device_records, new = outcome.new, cleared = outcome.cleared, "log read");
            if !self.config.realtime {
                let sleep = tokio::time::sleep(self.config.poll_interval());
                tokio::pin!(sleep);
                loop {
                    let wake = self.wake_token();
                    let woken = tokio::select! {
                        () = &mut sleep => false,
                        () = wake.cancelled() => true,
                    };
                    if self.shutdown.is_cancelled() {
                        return Ok(SessionEnd::Shutdown);
                    }
                    if !woken {
                        break;
                    }
                    self.do_jobs(client, &device).await?;
                }
                drift = self.check_clock(client, &device).await?;
                continue;
            }
            client.register_events(u32::from(command::EF_ATTLOG)).await?;
            match self.realtime(client, &device, outcome.device_records, &mut drift).await? {
                Some(end) => return Ok(end),
                None => debug!("realtime gap detected; reading the log again"),
            }
        }
    }

    /// Reads and checks the serial; from then on the device is known by it.
    async fn identify(&mut self, client: &mut ZkClient) -> Result<DeviceSerial, PollError> {
        let found = client.read_option(super::options::SERIAL_NUMBER).await?.ok_or(PollError::NoSerial)?;
        let serial: DeviceSerial =
            found.parse().map_err(|e: protocol::IdError| PollError::BadSerial { found, reason: e.to_string() })?;
        if let Some(expected) = &self.config.expected_serial {
            if *expected != serial {
                return Err(PollError::WrongDevice { expected: expected.clone(), found: serial });
            }
        }
        if serial != self.status_key {
            self.board.forget(&self.status_key);
            self.status_key = serial.clone();
            self.board.register(&serial);
        }
        Ok(serial)
    }

    /// Measures the device clock against ours (in the device's zone); sets it when configured and too far off.
    /// Returns the drift in seconds, positive when the device is ahead.
    async fn check_clock(&self, client: &mut ZkClient, device: &DeviceSerial) -> Result<i64, PollError> {
        let mut drift = (client.get_time().await? - self.agent_local_now()).num_seconds();
        let max = i64::try_from(self.config.max_clock_drift_secs).unwrap_or(i64::MAX);
        if drift.abs() > max && self.config.set_clock {
            let now = self.agent_local_now();
            client.set_time(now).await?;
            info!(drift, set_to = %now, "device clock was off; set it");
            drift = (client.get_time().await? - self.agent_local_now()).num_seconds();
        }
        if drift.abs() > max {
            let message = format!("device clock is {drift:+} s off (limit {max} s); set_clock is off");
            self.board.fault(device, Utc::now(), "clock_drift", message);
        }
        Ok(drift)
    }

    fn agent_local_now(&self) -> NaiveDateTime {
        Utc::now().with_timezone(&self.config.time_zone).naive_local()
    }

    fn report_success(&self, device: &DeviceSerial, records: Option<u32>, users: Option<u32>, drift: i64) {
        let contact = Contact { record_count: records, user_count: users, clock_drift_secs: Some(drift) };
        self.board.success(device, Utc::now(), contact);
        let max = i64::try_from(self.config.max_clock_drift_secs).unwrap_or(i64::MAX);
        if drift.abs() > max {
            let message = format!("device clock is {drift:+} s off (limit {max} s)");
            self.board.fault(device, Utc::now(), "clock_drift", message);
        }
    }

    /// The whole log into the sink, with the device disabled; re-enabled afterwards whatever happened.
    async fn bulk_read(&mut self, client: &mut ZkClient, device: &DeviceSerial) -> Result<BulkOutcome, PollError> {
        client.disable().await?;
        let outcome = self.read_store_clear(client, device).await;
        let enabled = client.enable().await;
        match (outcome, enabled) {
            (Ok(outcome), Ok(())) => Ok(outcome),
            (Err(e), Err(enable_error)) => {
                warn!(error = %enable_error, "could not re-enable the device after a failed read");
                Err(e)
            }
            (Err(e), Ok(())) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        }
    }

    async fn read_store_clear(
        &mut self,
        client: &mut ZkClient,
        device: &DeviceSerial,
    ) -> Result<BulkOutcome, PollError> {
        let snapshot = client.read_log(self.config.record_size).await?;
        if let Some(users) = &snapshot.users {
            self.pins = pin_table(users);
        }
        let ctx = self.context(device);
        let mut punches = Vec::with_capacity(snapshot.log.records.len());
        let mut rejected = 0usize;
        for record in &snapshot.log.records {
            match ctx.record(record) {
                Ok(punch) => punches.push(punch),
                Err(e) => {
                    rejected += 1;
                    warn!(error = %e, "record left on the device: its user id is not a valid PIN");
                }
            }
        }
        for bad in &snapshot.log.undecodable {
            warn!(index = bad.index, error = %bad.error, "record left on the device: undecodable time");
        }
        let unreadable = rejected + snapshot.log.undecodable.len();
        if unreadable > 0 {
            let message = format!("{unreadable} records on the device cannot be read; they stay on it");
            self.board.fault(device, Utc::now(), "bad_records", message);
        }
        let mut new = 0;
        for batch in punches.chunks(APPEND_BATCH) {
            new += self.sink.append(batch.to_vec()).await?.new;
        }
        self.board.punches_read(device, new as u64);
        let device_records = snapshot.sizes.records.unwrap_or(snapshot.log.total() as u32);
        let mut outcome = BulkOutcome { device_records, users: snapshot.sizes.users, new, cleared: false };
        if self.config.clear_log_when_acknowledged && unreadable == 0 && !punches.is_empty() {
            outcome.cleared = self.clear_if_acknowledged(client, &punches, snapshot.log.total()).await?;
            if outcome.cleared {
                outcome.device_records = 0;
            }
        }
        Ok(outcome)
    }

    /// The clear-log rule's last two checks, then the clear. The device is still disabled.
    async fn clear_if_acknowledged(
        &self,
        client: &mut ZkClient,
        punches: &[Punch],
        read: usize,
    ) -> Result<bool, PollError> {
        let keys: Vec<_> = punches.iter().map(Punch::key).collect();
        let unacknowledged = self.sink.unacknowledged(&keys).await?;
        if unacknowledged > 0 {
            debug!(unacknowledged, "not clearing the device log: punches await acknowledgement");
            return Ok(false);
        }
        let now = client.read_sizes().await?.records;
        if now != Some(read as u32) {
            info!(read, now = ?now, "not clearing the device log: its record count changed");
            return Ok(false);
        }
        client.clear_attendance().await?;
        info!(records = read, "device log cleared: every record on it is acknowledged");
        Ok(true)
    }

    /// A token cancelled by shutdown or by a job arriving (never cancelled by a job when there is no job inbox).
    fn wake_token(&self) -> CancellationToken {
        match &self.jobs {
            Some(jobs) => jobs.wake_token(&self.shutdown),
            None => self.shutdown.child_token(),
        }
    }

    /// Carries out the queued jobs on this connection. Returns the device's record count when a job read the log
    /// (the realtime gap check starts again from it). A job's own failure is its answer; a broken connection ends
    /// the session after the job is answered.
    async fn do_jobs(&mut self, client: &mut ZkClient, device: &DeviceSerial) -> Result<Option<u32>, PollError> {
        let mut records = None;
        while let Some(request) = self.jobs.as_mut().and_then(ZkJobInbox::take) {
            let job = request.job.clone();
            info!(?job, "carrying out a remote job");
            let (answer, broken) = match self.do_job(client, device, job).await {
                Ok((output, read)) => {
                    if read.is_some() {
                        records = read;
                    }
                    (Ok(output), None)
                }
                Err(JobFailure::Refused(message)) => (Err(message), None),
                Err(JobFailure::Poll(e)) => (Err(e.to_string()), Some(e)),
            };
            let _ = request.reply.send(answer);
            if let Some(e) = broken {
                return Err(e);
            }
        }
        Ok(records)
    }

    async fn do_job(
        &mut self,
        client: &mut ZkClient,
        device: &DeviceSerial,
        job: ZkJob,
    ) -> Result<(ZkJobOutput, Option<u32>), JobFailure> {
        match job {
            ZkJob::SetClock => {
                let before = (client.get_time().await? - self.agent_local_now()).num_seconds();
                let now = self.agent_local_now();
                client.set_time(now).await?;
                let after = (client.get_time().await? - self.agent_local_now()).num_seconds();
                Ok((
                    ZkJobOutput::Done(format!("device clock set to {now} (was {before:+} s off, now {after:+} s)")),
                    None,
                ))
            }
            ZkJob::ReadNow => {
                let outcome = self.bulk_read(client, device).await?;
                Ok((
                    ZkJobOutput::Done(format!(
                        "read {} records from the device, {} new",
                        outcome.device_records, outcome.new
                    )),
                    Some(outcome.device_records),
                ))
            }
            ZkJob::ClearLog => {
                if !self.config.clear_log_when_acknowledged {
                    return Err(JobFailure::Refused(
                        "clear_log_when_acknowledged is off for this device: its log is never cleared".into(),
                    ));
                }
                let outcome = self.bulk_read(client, device).await?;
                if outcome.cleared {
                    Ok((ZkJobOutput::Done("device log cleared: every record on it is acknowledged".into()), Some(0)))
                } else {
                    Err(JobFailure::Refused(format!(
                        "device log kept: of its {} records, not every one is acknowledged by central yet (or the \
                         log changed during the read); try again later",
                        outcome.device_records
                    )))
                }
            }
            other => super::user_jobs::run(client, other).await.map(|output| (output, None)),
        }
    }

    fn context<'a>(&'a self, device: &'a DeviceSerial) -> PunchContext<'a> {
        PunchContext {
            site: &self.site,
            device,
            zone: self.config.time_zone,
            direction: self.config.direction,
            pins: &self.pins,
        }
    }

    /// Takes realtime punches; every poll interval a heartbeat reads the record count, and a count beyond what was
    /// read plus what arrived means events were missed: `Ok(None)` asks for a bulk read.
    async fn realtime(
        &mut self,
        client: &mut ZkClient,
        device: &DeviceSerial,
        mut expected: u32,
        drift: &mut i64,
    ) -> Result<Option<SessionEnd>, PollError> {
        loop {
            let wake = self.wake_token();
            match client.next_event(self.config.poll_interval(), &wake).await? {
                EventWait::Cancelled if self.shutdown.is_cancelled() => return Ok(Some(SessionEnd::Shutdown)),
                EventWait::Cancelled => {
                    if let Some(records) = self.do_jobs(client, device).await? {
                        expected = records;
                    }
                }
                EventWait::Punch(event) => {
                    expected = expected.saturating_add(1);
                    let punch = match self.context(device).event(&event) {
                        Ok(punch) => punch,
                        Err(e) => {
                            warn!(error = %e, "realtime punch left to the device log: its user id is not a valid PIN");
                            continue;
                        }
                    };
                    match self.sink.append(vec![punch]).await {
                        Ok(appended) => self.board.punches_read(device, appended.new as u64),
                        Err(e) => {
                            // The punch is still in the device log; the next bulk read brings it.
                            warn!(error = %e, "sink refused a realtime punch");
                            return Ok(Some(SessionEnd::SinkPaused));
                        }
                    }
                }
                EventWait::Idle => {
                    let sizes = client.read_sizes().await?;
                    *drift = self.check_clock(client, device).await?;
                    self.report_success(device, sizes.records, sizes.users, *drift);
                    match sizes.records {
                        Some(now) if now > expected => return Ok(None),
                        Some(now) => expected = now,
                        None => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_serials_are_valid_and_readable() {
        let config = ZkDeviceConfig::new("10.0.0.5", chrono_tz::UTC);
        assert_eq!(placeholder_serial(&config).as_str(), "zk-10.0.0.5-4370");
        let config = ZkDeviceConfig::new("::1", chrono_tz::UTC);
        assert_eq!(placeholder_serial(&config).as_str(), "zk-1-4370");
        let config = ZkDeviceConfig::new("gate.local:99", chrono_tz::UTC);
        assert_eq!(placeholder_serial(&config).as_str(), "zk-gate.local-99");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let mut config = ZkDeviceConfig::new("a", chrono_tz::UTC);
        config.backoff_min_ms = 100;
        config.backoff_max_ms = 1_000;
        let poller = Poller {
            site: "s".parse().unwrap(),
            config,
            sink: Arc::new(crate::sink::memory::MemorySink::new()),
            board: DeviceStatusBoard::new(),
            shutdown: CancellationToken::new(),
            status_key: "x".parse().unwrap(),
            pins: Default::default(),
            jobs: None,
        };
        for _ in 0..50 {
            let first = poller.backoff(1).as_millis();
            assert!((50..100).contains(&first), "{first}");
            let third = poller.backoff(3).as_millis();
            assert!((200..400).contains(&third), "{third}");
            let capped = poller.backoff(30).as_millis();
            assert!((500..1000).contains(&capped), "{capped}");
        }
    }
}
