//! One task per device: connect, identify, check the clock, read the whole log into the sink, then take realtime
//! punches until the connection drops; reconnect with backoff and read the log again (the sink drops what it already
//! holds, so a re-read only fills gaps).
//!
//! The clear-log rule: the device log is deleted only when `clear_log_when_acknowledged` is set and, with the device
//! disabled from the read to the clear, every record read was converted, every resulting punch is acknowledged by
//! the central service (`sink.unacknowledged(keys) == 0`) and the device's record count still equals the number
//! read. Otherwise the log stays. A device that answers DISABLEDEVICE with ACK_ERROR or ACK_UNKNOWN is read anyway
//! and remembered as one that cannot be disabled: its log is never cleared.
//!
//! Faults, each with its reason and cleared when healed: `unreachable`, `auth_failed`, `serial_mismatch`,
//! `protocol_error` (a failed contact); `clock_drift` (beyond `max_clock_drift_secs`), `record_count_mismatch`
//! (every read path returned fewer records than the device reports), `bad_records`, `log_not_cleared` (standing
//! faults, set again after each good contact).

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use protocol::{DeviceSerial, Punch, SiteId};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, info_span, warn, Instrument};

use super::bulk::{pin_table, CountMismatch, ReadPath};
use super::client::{ClientError, ConnectOptions, EventWait, ZkClient};
use super::command;
use super::config::ZkDeviceConfig;
use super::convert::PunchContext;
use super::jobs::{ZkJob, ZkJobInbox, ZkJobOutput};
pub use super::user_jobs::JobFailure;
use crate::device_status::{Contact, DeviceStatusBoard};
use crate::sink::{PunchSink, SinkError};

/// Punches per `append` call during a bulk read.
const APPEND_BATCH: usize = 5_000;

/// The fault codes of a ZKTeco device.
pub mod faults {
    /// Nothing answers, or what answers is not a ZKTeco device.
    pub const UNREACHABLE: &str = "unreachable";
    /// The device refused the comm key (or needs one and none is configured).
    pub const AUTH_FAILED: &str = "auth_failed";
    /// Another serial answered at the configured address.
    pub const SERIAL_MISMATCH: &str = "serial_mismatch";
    /// The device clock is off by more than `max_clock_drift_secs`.
    pub const CLOCK_DRIFT: &str = "clock_drift";
    /// Every read path returned fewer records than the device reports.
    pub const RECORD_COUNT_MISMATCH: &str = "record_count_mismatch";
    /// The device answered something the driver cannot read.
    pub const PROTOCOL_ERROR: &str = "protocol_error";
    /// Records whose user or time cannot be read; they stay on the device.
    pub const BAD_RECORDS: &str = "bad_records";
    /// `clear_log_when_acknowledged` is set but the device cannot be disabled, so its log is never cleared.
    pub const LOG_NOT_CLEARED: &str = "log_not_cleared";
    /// The sink refused punches.
    pub const BUFFER_REFUSED: &str = "buffer_refused";
}

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
    #[error(
        "expected device {expected} but {found} answered at this address: fix `serial` in its [[device]] entry, or \
         the address"
    )]
    WrongDevice { expected: DeviceSerial, found: DeviceSerial },
    #[error(
        "the device accepted DISABLEDEVICE but answered ENABLEDEVICE with {}; disconnecting so that it re-enables \
         itself, and reading it without disabling it from now on", command::name(*code)
    )]
    EnableRefused { code: u16 },
}

impl PollError {
    /// The fault code shown in the device status.
    fn code(&self) -> &'static str {
        match self {
            Self::Device(e) if e.is_bad_checksum() => faults::PROTOCOL_ERROR,
            Self::Device(e) if e.is_unreachable() => faults::UNREACHABLE,
            Self::Device(e) if matches!(e.root(), ClientError::Unauthorized { .. }) => faults::AUTH_FAILED,
            Self::Device(_) | Self::NoSerial | Self::BadSerial { .. } | Self::EnableRefused { .. } => {
                faults::PROTOCOL_ERROR
            }
            Self::Sink(_) => faults::BUFFER_REFUSED,
            Self::WrongDevice { .. } => faults::SERIAL_MISMATCH,
        }
    }

    /// The fault's text: the error, and what to change when the configuration can fix it.
    fn message(&self) -> String {
        let hint = match self {
            Self::Device(e) => match e.root() {
                ClientError::Unauthorized { key: 0 } => {
                    ": set comm_key (the device's Comm Key) in its [[device]] entry"
                }
                ClientError::Unauthorized { .. } => {
                    ": check comm_key in its [[device]] entry against the device's Comm Key"
                }
                _ if e.is_bad_checksum() => {
                    ": the device computes reply checksums wrongly; set strict_checksum = false in its [[device]] entry"
                }
                _ => "",
            },
            _ => "",
        };
        format!("{self}{hint}")
    }

    /// Whether EXIT is worth sending (the connection is still up).
    fn connection_alive(&self) -> bool {
        !matches!(self, Self::Device(e) if e.is_unreachable())
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
    let mut poller = Poller {
        site,
        config,
        sink,
        board,
        shutdown,
        status_key,
        pins: Default::default(),
        path: ReadPath::ATTENDANCE[0],
        cannot_disable: None,
        mismatch: None,
        unreadable: 0,
        counted_mismatches: 0,
        jobs,
    };
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
    /// The attendance read path that worked last.
    path: ReadPath,
    /// Set once the device answered DISABLEDEVICE or ENABLEDEVICE with an error (the answer's name): it is read
    /// without disabling it from then on, and its log is never cleared.
    cannot_disable: Option<&'static str>,
    /// The last read's record count mismatch.
    mismatch: Option<CountMismatch>,
    /// Records of the last read that stay on the device unread.
    unreadable: usize,
    /// Checksum mismatches of the current connection already added to the board.
    counted_mismatches: u64,
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
                    self.board.failure(&self.status_key, Utc::now(), e.code(), e.message());
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
        let options = ConnectOptions {
            strict_checksum: self.config.strict_checksum,
            ..ConnectOptions::new(self.config.transport, self.config.comm_key, self.config.timeouts())
        };
        let mut client = ZkClient::connect_with(&addr, options).await?;
        self.counted_mismatches = 0;
        let outcome = self.session_on(&mut client).await;
        self.count_checksum_mismatches(&client);
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
            self.count_checksum_mismatches(client);
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
        let info = self.read_identity(client, &serial).await?;
        // The kind in central's terms: `zk-tcp` or `zk-udp`.
        let kind = match self.config.transport {
            super::transport::TransportKind::Tcp => "zk-tcp",
            super::transport::TransportKind::Udp => "zk-udp",
        };
        self.board.identify(&serial, kind, Some(info));
        Ok(serial)
    }

    /// What the device says it is, for the inventory: model (`~DeviceName`), firmware, platform and capacities.
    /// Each answer is optional (older firmware refuses some options); only a link failure ends the session.
    async fn read_identity(
        &self,
        client: &mut ZkClient,
        serial: &DeviceSerial,
    ) -> Result<protocol::DeviceInfo, PollError> {
        let model = client.read_option(super::options::DEVICE_NAME).await?;
        let firmware = client.firmware_version().await?;
        let platform = client.read_option(super::options::PLATFORM).await?;
        let sizes = match client.read_sizes().await {
            Ok(sizes) => sizes,
            Err(e @ (ClientError::Refused { .. } | ClientError::ShortReply { .. })) => {
                debug!(error = %e, "device did not report its sizes; capacities unknown");
                super::sizes::DeviceSizes::default()
            }
            Err(e) => return Err(e.into()),
        };
        Ok(protocol::DeviceInfo {
            model,
            firmware,
            platform,
            reported_serial: Some(serial.to_string()),
            user_capacity: sizes.user_capacity,
            fingerprint_count: sizes.fingerprints,
            fingerprint_capacity: sizes.fingerprint_capacity,
            face_count: sizes.faces,
            face_capacity: sizes.face_capacity,
            record_capacity: sizes.record_capacity,
        })
    }

    /// Measures the device clock against ours (in the device's zone); sets it when configured and too far off.
    /// Returns the drift in seconds, positive when the device is ahead.
    async fn check_clock(&self, client: &mut ZkClient, _device: &DeviceSerial) -> Result<i64, PollError> {
        let mut drift = (client.get_time().await? - self.agent_local_now()).num_seconds();
        if drift.unsigned_abs() > self.config.max_clock_drift_secs && self.config.set_clock {
            let now = self.agent_local_now();
            client.set_time(now).await?;
            info!(drift, set_to = %now, "device clock was off; set it");
            drift = (client.get_time().await? - self.agent_local_now()).num_seconds();
        }
        Ok(drift)
    }

    fn agent_local_now(&self) -> NaiveDateTime {
        Utc::now().with_timezone(&self.config.time_zone).naive_local()
    }

    /// Adds the connection's new checksum mismatches to the board's counter.
    fn count_checksum_mismatches(&mut self, client: &ZkClient) {
        let now = client.checksum_mismatches();
        if now > self.counted_mismatches {
            self.board.checksum_mismatches(&self.status_key, now - self.counted_mismatches);
            self.counted_mismatches = now;
        }
    }

    /// A good contact: the counts, and the standing faults (every other fault is cleared; a standing one keeps its
    /// `since`).
    fn report_success(&self, device: &DeviceSerial, records: Option<u32>, users: Option<u32>, drift: i64) {
        let contact = Contact { record_count: records, user_count: users, clock_drift_secs: Some(drift) };
        self.board.success_with(device, Utc::now(), contact, &self.standing_faults(drift));
    }

    /// The problems that do not stop a contact, with their reasons.
    fn standing_faults(&self, drift: i64) -> Vec<(&'static str, String)> {
        let mut faults = Vec::new();
        let max = self.config.max_clock_drift_secs;
        if drift.unsigned_abs() > max {
            let side = if drift > 0 { "ahead of" } else { "behind" };
            let mut message = format!(
                "device clock is {} {side} the agent's ({drift:+} s; limit {})",
                super::human::duration(drift.unsigned_abs()),
                super::human::duration(max)
            );
            if !self.config.set_clock {
                message.push_str("; set_clock is off");
            }
            faults.push((faults::CLOCK_DRIFT, message));
        }
        if let Some(mismatch) = &self.mismatch {
            faults.push((faults::RECORD_COUNT_MISMATCH, mismatch.to_string()));
        }
        if self.unreadable > 0 {
            let message = format!("{} records on the device cannot be read; they stay on it", self.unreadable);
            faults.push((faults::BAD_RECORDS, message));
        }
        if let (Some(answer), true) = (self.cannot_disable, self.config.clear_log_when_acknowledged) {
            let message = format!(
                "the device answers DISABLEDEVICE with {answer}: its log can change under a read, so it is never \
                 cleared (clear_log_when_acknowledged is ignored)"
            );
            faults.push((faults::LOG_NOT_CLEARED, message));
        }
        faults
    }

    /// The whole log into the sink, with the device disabled; re-enabled afterwards whatever happened. A device
    /// that cannot be disabled is read as it is.
    async fn bulk_read(&mut self, client: &mut ZkClient, device: &DeviceSerial) -> Result<BulkOutcome, PollError> {
        let disabled = match self.cannot_disable {
            Some(_) => false,
            None => {
                let reply = client.request(command::DISABLE_DEVICE, &[]).await?;
                match reply.command {
                    command::ACK_OK => true,
                    code if super::client::is_not_supported(code) => {
                        warn!(
                            answer = command::name(code),
                            "the device cannot be disabled (DISABLEDEVICE refused); reading it anyway, and never \
                             clearing its log"
                        );
                        self.cannot_disable = Some(command::name(code));
                        false
                    }
                    code => return Err(ClientError::Refused { command: "DISABLEDEVICE", code }.into()),
                }
            }
        };
        let outcome = self.read_store_clear(client, device, disabled).await;
        if !disabled {
            return outcome;
        }
        let enabled = client.enable().await;
        match (outcome, enabled) {
            (Ok(outcome), Ok(true)) => Ok(outcome),
            (Ok(_), Ok(false)) => {
                self.cannot_disable = Some("an error to ENABLEDEVICE");
                Err(PollError::EnableRefused { code: command::ACK_ERROR })
            }
            (Err(e), Err(enable_error)) => {
                warn!(error = %enable_error, "could not re-enable the device after a failed read");
                Err(e)
            }
            (Err(e), Ok(_)) => Err(e),
            (Ok(_), Err(e)) => Err(e.into()),
        }
    }

    async fn read_store_clear(
        &mut self,
        client: &mut ZkClient,
        device: &DeviceSerial,
        disabled: bool,
    ) -> Result<BulkOutcome, PollError> {
        let snapshot = client.read_log_from(self.config.record_size, self.path).await?;
        self.path = snapshot.path;
        self.mismatch = snapshot.mismatch.clone();
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
        self.unreadable = unreadable;
        let mut new = 0;
        for batch in punches.chunks(APPEND_BATCH) {
            new += self.sink.append(batch.to_vec()).await?.new;
        }
        self.board.punches_read(device, new as u64);
        let device_records = snapshot.sizes.records.unwrap_or(snapshot.log.total() as u32);
        let mut outcome = BulkOutcome { device_records, users: snapshot.sizes.users, new, cleared: false };
        let clearable = disabled && unreadable == 0 && snapshot.mismatch.is_none() && !punches.is_empty();
        if self.config.clear_log_when_acknowledged && clearable {
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
                    self.count_checksum_mismatches(client);
                    self.report_success(device, sizes.records, sizes.users, *drift);
                    if self.mismatch.is_some() {
                        // Short last time: read again rather than trust the count from now on.
                        return Ok(None);
                    }
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
            path: ReadPath::ATTENDANCE[0],
            cannot_disable: None,
            mismatch: None,
            unreadable: 0,
            counted_mismatches: 0,
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
