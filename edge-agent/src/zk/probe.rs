//! `edge-agent probe`: one read of one device for the technician installing a site. Prints each step on its own
//! line (connect, auth, identity, time, counts, users, log), then identity, counts and capacities, clock drift and
//! the last punches; it changes nothing on the device (it is disabled only while its log is read, and re-enabled
//! after).
//!
//! A step the agent cannot do without (connect, auth, identity, time, counts, log; users when the records name
//! users by uid) fails the probe, saying which; the others are reported and the probe goes on. Each failure comes
//! with what to try next ([`advice`]).

use std::fmt;

use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;
use protocol::time::local_to_utc;
use protocol::{PunchState, VerifyMode};

use super::bulk::{pin_table, AttendanceRead, CountMismatch, ReadPath};
use super::client::{ClientError, ConnectOptions, Timeouts, ZkClient};
use super::config::socket_address;
use super::convert::PunchContext;
use super::info::DeviceInfo;
use super::records::{AttendanceRecord, DeviceUser, RecordLayout};
use super::sizes::DeviceSizes;
use super::transport::TransportKind;
use super::users::UserRecord;
use super::{command, human, options};

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    /// `host` or `host:port`.
    pub address: String,
    pub port: u16,
    pub transport: TransportKind,
    pub comm_key: u32,
    pub zone: Tz,
    /// How many of the newest punches to list.
    pub last: usize,
    pub timeouts: Timeouts,
    /// UDP: refuse replies with a wrong checksum (`--no-strict-checksum` turns it off).
    pub strict_checksum: bool,
}

/// One listed punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePunch {
    pub pin: String,
    pub name: Option<String>,
    pub local_time: NaiveDateTime,
    pub state: PunchState,
    pub verify: VerifyMode,
    /// The device's own codes, as stored.
    pub raw_state: u8,
    pub raw_verify: u8,
}

/// The steps of a probe, in the order they are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepName {
    Connect,
    Auth,
    Identity,
    Time,
    Counts,
    Users,
    Log,
}

impl StepName {
    pub const ALL: [StepName; 7] =
        [Self::Connect, Self::Auth, Self::Identity, Self::Time, Self::Counts, Self::Users, Self::Log];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Auth => "auth",
            Self::Identity => "identity",
            Self::Time => "time",
            Self::Counts => "counts",
            Self::Users => "users",
            Self::Log => "log",
        }
    }
}

/// How one step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Done; the text says what was found.
    Ok(String),
    /// Failed; `needed` says whether the agent needs this step (the probe fails), `error` what happened.
    Failed { needed: bool, error: String, advice: Option<String> },
    /// Not tried, because an earlier needed step failed.
    Skipped,
}

/// One step and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub name: StepName,
    pub outcome: StepOutcome,
}

/// Everything the probe learned; the parts after a failed needed step are missing.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub address: String,
    pub transport: TransportKind,
    pub zone: Tz,
    pub steps: Vec<Step>,
    pub info: Option<DeviceInfo>,
    /// Our clock in the device's zone when the device's clock was read.
    pub agent_time: Option<NaiveDateTime>,
    pub layout: Option<RecordLayout>,
    pub records_read: usize,
    pub undecodable: usize,
    pub users_read: Option<usize>,
    pub last: Vec<ProbePunch>,
    /// The read path the log came by.
    pub path: Option<ReadPath>,
    pub mismatch: Option<CountMismatch>,
    /// The answer to DISABLEDEVICE when the device refused it.
    pub cannot_disable: Option<&'static str>,
    /// Replies accepted with a wrong checksum.
    pub checksum_mismatches: u64,
}

impl ProbeReport {
    /// Seconds the device is ahead of us (negative: behind).
    pub fn drift_secs(&self) -> Option<i64> {
        Some((self.info.as_ref()?.time - self.agent_time?).num_seconds())
    }

    /// The first failed step the agent needs, if any.
    pub fn failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| matches!(s.outcome, StepOutcome::Failed { needed: true, .. }))
    }

    fn step(&self, name: StepName) -> Option<&StepOutcome> {
        self.steps.iter().find(|s| s.name == name).map(|s| &s.outcome)
    }
}

/// What the technician should try after `error`, when there is something to try.
pub fn advice(error: &ClientError, request: &ProbeRequest) -> Option<String> {
    let advice = match error.root() {
        ClientError::Unauthorized { key: 0 } => {
            "pass the device's comm key with --key <number> (on the device: Menu > Comm. > Connection > Comm Key)"
                .to_owned()
        }
        ClientError::Unauthorized { .. } => {
            "check the comm key on the device (Menu > Comm. > Connection > Comm Key) and pass it with --key".to_owned()
        }
        ClientError::Connect { kind: std::io::ErrorKind::ConnectionRefused, .. }
            if request.transport == TransportKind::Tcp =>
        {
            "check the address and port (ZKTeco devices listen on 4370); older units speak UDP only: try --udp"
                .to_owned()
        }
        ClientError::Connect { .. } => {
            "check the address, the cable and the network between here and the device".to_owned()
        }
        ClientError::NoUdpAnswer { .. } => {
            "check the address and port (ZKTeco devices listen on 4370); newer units speak TCP: try without --udp"
                .to_owned()
        }
        ClientError::NotZk { .. } => "check the port: ZKTeco devices listen on 4370".to_owned(),
        ClientError::Silent { .. } | ClientError::ClosedSilently { .. } => {
            "check the port (ZKTeco devices listen on 4370); if it is the device, another program (attendance \
             software, another agent) may hold its only connection: stop it and try again"
                .to_owned()
        }
        ClientError::Timeout { .. } => "the device is slow or busy: try again with a longer --timeout".to_owned(),
        _ if error.is_bad_checksum() => "the device computes reply checksums wrongly: pass --no-strict-checksum \
                                         (strict_checksum = false in the agent's [[device]] entry)"
            .to_owned(),
        _ => return None,
    };
    Some(advice)
}

fn failed(needed: bool, error: &ClientError, request: &ProbeRequest) -> StepOutcome {
    StepOutcome::Failed { needed, error: error.to_string(), advice: advice(error, request) }
}

/// Connects, takes each step, and leaves with EXIT. Never fails as a whole: a failed step is in the report
/// ([`ProbeReport::failure`]).
pub async fn probe(request: &ProbeRequest) -> ProbeReport {
    let address = socket_address(&request.address, request.port);
    let mut report = ProbeReport {
        address: address.clone(),
        transport: request.transport,
        zone: request.zone,
        steps: Vec::new(),
        info: None,
        agent_time: None,
        layout: None,
        records_read: 0,
        undecodable: 0,
        users_read: None,
        last: Vec::new(),
        path: None,
        mismatch: None,
        cannot_disable: None,
        checksum_mismatches: 0,
    };
    let options = ConnectOptions {
        strict_checksum: request.strict_checksum,
        ..ConnectOptions::new(request.transport, request.comm_key, request.timeouts)
    };
    let mut client = match ZkClient::connect_with(&address, options).await {
        Ok(client) => {
            report.push(StepName::Connect, StepOutcome::Ok("a ZKTeco device answered".to_owned()));
            let auth = if client.used_comm_key() {
                "comm key accepted"
            } else if request.comm_key != 0 {
                "the device has no comm key (--key is not needed)"
            } else {
                "no comm key needed"
            };
            report.push(StepName::Auth, StepOutcome::Ok(auth.to_owned()));
            client
        }
        Err(e @ ClientError::Unauthorized { .. }) => {
            report.push(StepName::Connect, StepOutcome::Ok("a ZKTeco device answered".to_owned()));
            report.push(StepName::Auth, failed(true, &e, request));
            report.skip_rest();
            return report;
        }
        Err(e) => {
            report.push(StepName::Connect, failed(true, &e, request));
            report.skip_rest();
            return report;
        }
    };
    let alive = report.read(&mut client, request).await;
    report.checksum_mismatches = client.checksum_mismatches();
    if alive {
        client.exit().await;
    }
    report
}

impl ProbeReport {
    fn push(&mut self, name: StepName, outcome: StepOutcome) {
        self.steps.push(Step { name, outcome });
    }

    fn skip_rest(&mut self) {
        for name in StepName::ALL {
            if self.step(name).is_none() {
                self.push(name, StepOutcome::Skipped);
            }
        }
        self.steps.sort_by_key(|s| StepName::ALL.iter().position(|n| *n == s.name));
    }

    /// The steps after auth. Returns whether the connection is still usable.
    async fn read(&mut self, client: &mut ZkClient, request: &ProbeRequest) -> bool {
        macro_rules! needed {
            ($name:expr, $result:expr) => {
                match $result {
                    Ok(value) => value,
                    Err(e) => {
                        let alive = !e.connection_lost();
                        self.push($name, failed(true, &e, request));
                        self.skip_rest();
                        return alive;
                    }
                }
            };
        }
        let identity = needed!(StepName::Identity, identity(client).await);
        if identity.serial.is_none() {
            let error = "the device did not report its serial number (the agent needs it)".to_owned();
            self.push(StepName::Identity, StepOutcome::Failed { needed: true, error, advice: None });
            self.skip_rest();
            return true;
        }
        self.push(StepName::Identity, StepOutcome::Ok(format!("serial {}", identity.serial.as_deref().unwrap_or(""))));
        let time = needed!(StepName::Time, client.get_time().await);
        self.agent_time = Some(Utc::now().with_timezone(&request.zone).naive_local());
        self.push(StepName::Time, StepOutcome::Ok(time.format("%Y-%m-%d %H:%M:%S").to_string()));
        let sizes = needed!(StepName::Counts, client.read_sizes().await);
        self.push(StepName::Counts, StepOutcome::Ok(counts_summary(&sizes)));
        let (serial, platform, firmware, device_name, vendor) = identity.into_parts();
        self.info = Some(DeviceInfo { serial, platform, firmware, device_name, vendor, sizes, time });

        // The log and the users, with the device disabled when it can be.
        let disabled = match client.request(command::DISABLE_DEVICE, &[]).await {
            Ok(reply) if reply.command == command::ACK_OK => true,
            Ok(reply) if super::client::is_not_supported(reply.command) => {
                self.cannot_disable = Some(command::name(reply.command));
                false
            }
            Ok(reply) => {
                let e = ClientError::Refused { command: "DISABLEDEVICE", code: reply.command };
                self.push(StepName::Users, StepOutcome::Skipped);
                self.push(StepName::Log, failed(true, &e, request));
                return true;
            }
            Err(e) => {
                let alive = !e.connection_lost();
                self.push(StepName::Users, StepOutcome::Skipped);
                self.push(StepName::Log, failed(true, &e, request));
                return alive;
            }
        };
        let log = client.read_attendance_log(sizes.records, None, ReadPath::ATTENDANCE[0]).await;
        let lost = log.as_ref().err().is_some_and(ClientError::connection_lost);
        let users = if lost { None } else { Some(client.read_users(sizes.users).await) };
        let enabled = if disabled && !lost { Some(client.enable().await) } else { None };

        let uid_records =
            log.as_ref().is_ok_and(|l| l.log.records.iter().any(|r| matches!(r.user, DeviceUser::Uid(_))));
        let mut user_list: Vec<UserRecord> = Vec::new();
        match users {
            Some(Ok(list)) => {
                self.push(StepName::Users, StepOutcome::Ok(format!("{} users", list.len())));
                self.users_read = Some(list.len());
                user_list = list;
            }
            Some(Err(e)) => {
                let mut outcome = failed(uid_records, &e, request);
                if let StepOutcome::Failed { error, .. } = &mut outcome {
                    error.push_str(if uid_records {
                        " (needed: the records name users by their device number, the PINs come from the user table)"
                    } else {
                        " (not needed to read the log: its records carry the PINs)"
                    });
                }
                self.push(StepName::Users, outcome);
            }
            None => self.push(StepName::Users, StepOutcome::Skipped),
        }
        let alive = match log {
            Ok(AttendanceRead { log, path, mismatch }) => {
                self.layout = log.layout;
                self.records_read = log.records.len();
                self.undecodable = log.undecodable.len();
                self.path = Some(path);
                let mut text = format!("{} records", log.total());
                if let Some(layout) = log.layout {
                    text.push_str(&format!(" ({}-byte layout)", layout.size()));
                }
                if path != ReadPath::ATTENDANCE[0] {
                    text.push_str(&format!(" by {path}"));
                }
                match &mismatch {
                    Some(m) => self.push(
                        StepName::Log,
                        StepOutcome::Failed {
                            needed: true,
                            error: format!("record_count_mismatch: {m}"),
                            advice: Some(
                                "the agent keeps what it reads and raises record_count_mismatch; report the device's \
                                 model and firmware"
                                    .to_owned(),
                            ),
                        },
                    ),
                    None => self.push(StepName::Log, StepOutcome::Ok(text)),
                }
                self.mismatch = mismatch;
                self.last = last_punches(&log.records, &user_list, request);
                true
            }
            Err(e) => {
                self.push(StepName::Log, failed(true, &e, request));
                !e.connection_lost()
            }
        };
        if let Some(Err(e)) = enabled {
            tracing::warn!(error = %e, "could not re-enable the device; it re-enables itself when the probe leaves");
        }
        alive
    }
}

/// The identity options; only the serial is needed.
struct Identity {
    serial: Option<String>,
    platform: Option<String>,
    firmware: Option<String>,
    device_name: Option<String>,
    vendor: Option<String>,
}

impl Identity {
    #[allow(clippy::type_complexity)]
    fn into_parts(self) -> (Option<String>, Option<String>, Option<String>, Option<String>, Option<String>) {
        (self.serial, self.platform, self.firmware, self.device_name, self.vendor)
    }
}

async fn identity(client: &mut ZkClient) -> Result<Identity, ClientError> {
    Ok(Identity {
        serial: client.read_option(options::SERIAL_NUMBER).await?,
        platform: client.read_option(options::PLATFORM).await?,
        firmware: client.firmware_version().await?,
        device_name: client.read_option(options::DEVICE_NAME).await?,
        vendor: client.read_option(options::OEM_VENDOR).await?,
    })
}

fn counts_summary(sizes: &DeviceSizes) -> String {
    let part = |what: &str, v: Option<u32>| v.map_or(format!("{what} not reported"), |v| format!("{v} {what}"));
    format!("{}, {}", part("users", sizes.users), part("records", sizes.records))
}

fn last_punches(records: &[AttendanceRecord], users: &[UserRecord], request: &ProbeRequest) -> Vec<ProbePunch> {
    let pins = pin_table(users);
    let names: std::collections::HashMap<&str, &str> =
        users.iter().map(|u| (u.user_id.as_str(), u.name.as_str())).collect();
    let serial = "probe".parse().expect("a constant valid serial");
    let site = "probe".parse().expect("a constant valid site");
    let ctx =
        PunchContext { site: &site, device: &serial, zone: request.zone, direction: Default::default(), pins: &pins };
    let start = records.len().saturating_sub(request.last);
    records[start..]
        .iter()
        .map(|r| {
            let pin = ctx.pin_text(&r.user);
            ProbePunch {
                name: names.get(pin.as_str()).filter(|n| !n.is_empty()).map(|n| (*n).to_owned()),
                pin,
                local_time: r.time,
                state: PunchState::from_code(r.state),
                verify: VerifyMode::from_code(r.verify),
                raw_state: r.state,
                raw_verify: r.verify,
            }
        })
        .collect()
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("(not reported)")
}

/// A count against its capacity; a capacity of 0 or none is "not reported" (never "5 of 0").
pub fn count(value: Option<u32>, capacity: Option<u32>) -> String {
    match (value, capacity.filter(|c| *c > 0)) {
        (Some(v), Some(c)) => format!("{v} of {c}"),
        (Some(v), None) => format!("{v} (capacity not reported)"),
        (None, Some(c)) => format!("not reported (capacity {c})"),
        (None, None) => "(not reported)".to_owned(),
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Device at {} ({})", self.address, self.transport.as_str())?;
        for step in &self.steps {
            let line = match &step.outcome {
                StepOutcome::Ok(text) => format!("ok: {text}"),
                StepOutcome::Failed { needed: true, error, .. } => format!("FAILED: {error}"),
                StepOutcome::Failed { needed: false, error, .. } => format!("failed, not needed: {error}"),
                StepOutcome::Skipped => "skipped".to_owned(),
            };
            writeln!(f, "  {:<14} {line}", step.name.as_str())?;
            if let StepOutcome::Failed { advice: Some(advice), .. } = &step.outcome {
                writeln!(f, "  {:<14} try: {advice}", "")?;
            }
        }
        let Some(i) = &self.info else { return Ok(()) };
        let s = &i.sizes;
        writeln!(f, "  serial number  {}", text(&i.serial))?;
        writeln!(f, "  platform       {}", text(&i.platform))?;
        writeln!(f, "  firmware       {}", text(&i.firmware))?;
        writeln!(f, "  device name    {}", text(&i.device_name))?;
        writeln!(f, "  users          {}", count(s.users, s.user_capacity))?;
        writeln!(f, "  fingerprints   {}", count(s.fingerprints, s.fingerprint_capacity))?;
        writeln!(f, "  faces          {}", count(s.faces, s.face_capacity))?;
        writeln!(f, "  records        {}", count(s.records, s.record_capacity))?;
        writeln!(f, "  device clock   {} ({})", i.time.format("%Y-%m-%d %H:%M:%S"), self.zone.name())?;
        if let (Some(agent), Some(drift)) = (self.agent_time, self.drift_secs()) {
            writeln!(f, "  agent clock    {} ({})", agent.format("%Y-%m-%d %H:%M:%S"), self.zone.name())?;
            writeln!(f, "  clock drift    {} [{drift:+} s]", human::drift(drift))?;
        }
        match (self.transport, self.checksum_mismatches) {
            (_, 0) => writeln!(f, "  checksums      every reply correct")?,
            (TransportKind::Tcp, n) => {
                writeln!(f, "  checksums      {n} replies with a wrong checksum (accepted: TCP frames them by length)")?
            }
            (TransportKind::Udp, n) => {
                writeln!(f, "  checksums      {n} replies with a wrong checksum (accepted: --no-strict-checksum)")?
            }
        }
        if let Some(answer) = self.cannot_disable {
            writeln!(
                f,
                "  disable        refused ({answer}): the agent reads this device without disabling it and never \
                 clears its log"
            )?;
        }
        if !matches!(self.step(StepName::Log), Some(StepOutcome::Ok(_)) | Some(StepOutcome::Failed { .. })) {
            return Ok(());
        }
        let layout = self.layout.map_or("none".to_owned(), |l| format!("{}-byte", l.size()));
        write!(f, "  log read       {} records ({layout} layout)", self.records_read)?;
        if let Some(users) = self.users_read {
            write!(f, ", {users} users")?;
        }
        if self.undecodable > 0 {
            write!(f, ", {} records with impossible dates", self.undecodable)?;
        }
        writeln!(f)?;
        if self.last.is_empty() {
            return writeln!(f, "No punches on the device.");
        }
        writeln!(
            f,
            "Last {} punches (local time, then UTC; state and verify as the device codes them):",
            self.last.len()
        )?;
        for p in &self.last {
            let utc = local_to_utc(p.local_time, self.zone);
            writeln!(
                f,
                "  {}  {}Z  PIN {:<10} {:<20} {:<10} {:<12} [state {}, verify {}]",
                p.local_time.format("%Y-%m-%d %H:%M:%S"),
                utc.format("%Y-%m-%dT%H:%M:%S"),
                p.pin,
                p.name.as_deref().unwrap_or("-"),
                p.state.to_string(),
                p.verify.to_string(),
                p.raw_state,
                p.raw_verify,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_never_say_of_zero() {
        assert_eq!(count(Some(5), Some(0)), "5 (capacity not reported)");
        assert_eq!(count(Some(5), None), "5 (capacity not reported)");
        assert_eq!(count(Some(5), Some(100)), "5 of 100");
        assert_eq!(count(None, Some(100)), "not reported (capacity 100)");
        assert_eq!(count(None, None), "(not reported)");
    }
}
