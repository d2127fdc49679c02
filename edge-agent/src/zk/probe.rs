//! `edge-agent probe`: one read of one device for the technician installing a site. Prints identity, counts and
//! capacities, clock drift and the last punches; it changes nothing on the device (it is disabled only while its
//! log is read, and re-enabled after).

use std::fmt;

use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;
use protocol::time::local_to_utc;
use protocol::{PunchState, VerifyMode};

use super::bulk::pin_table;
use super::client::{ClientError, Timeouts, ZkClient};
use super::config::socket_address;
use super::convert::PunchContext;
use super::info::DeviceInfo;
use super::records::{AttendanceRecord, RecordLayout};
use super::transport::TransportKind;

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
}

/// One listed punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePunch {
    pub pin: String,
    pub name: Option<String>,
    pub local_time: NaiveDateTime,
    pub state: PunchState,
    pub verify: VerifyMode,
}

/// Everything the probe learned.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub address: String,
    pub transport: TransportKind,
    pub zone: Tz,
    pub info: DeviceInfo,
    /// Our clock in the device's zone when the device's clock was read.
    pub agent_time: NaiveDateTime,
    pub layout: Option<RecordLayout>,
    pub records_read: usize,
    pub undecodable: usize,
    pub users_read: usize,
    pub last: Vec<ProbePunch>,
}

impl ProbeReport {
    /// Seconds the device is ahead of us (negative: behind).
    pub fn drift_secs(&self) -> i64 {
        (self.info.time - self.agent_time).num_seconds()
    }
}

/// Connects, reads everything, and leaves with EXIT.
///
/// # Errors
/// Whatever the device or the link did wrong, naming the step.
pub async fn probe(request: &ProbeRequest) -> Result<ProbeReport, ClientError> {
    let address = socket_address(&request.address, request.port);
    let mut client = ZkClient::connect(&address, request.transport, request.comm_key, request.timeouts).await?;
    let info = client.device_info().await?;
    let agent_time = Utc::now().with_timezone(&request.zone).naive_local();
    client.disable().await?;
    let read = async {
        let snapshot = client.read_log(None).await?;
        let users = client.read_users(snapshot.sizes.users).await?;
        Ok::<_, ClientError>((snapshot, users))
    }
    .await;
    let enabled = client.enable().await;
    let (snapshot, users) = read?;
    enabled?;
    client.exit().await;

    let pins = pin_table(&users);
    let names: std::collections::HashMap<&str, &str> =
        users.iter().map(|u| (u.user_id.as_str(), u.name.as_str())).collect();
    let serial = "probe".parse().expect("a constant valid serial");
    let site = "probe".parse().expect("a constant valid site");
    let ctx =
        PunchContext { site: &site, device: &serial, zone: request.zone, direction: Default::default(), pins: &pins };
    let start = snapshot.log.records.len().saturating_sub(request.last);
    let last = snapshot.log.records[start..].iter().map(|r: &AttendanceRecord| {
        let pin = ctx.pin_text(&r.user);
        ProbePunch {
            name: names.get(pin.as_str()).filter(|n| !n.is_empty()).map(|n| (*n).to_owned()),
            pin,
            local_time: r.time,
            state: PunchState::from_code(r.state),
            verify: VerifyMode::from_code(r.verify),
        }
    });
    Ok(ProbeReport {
        address,
        transport: request.transport,
        zone: request.zone,
        agent_time,
        layout: snapshot.log.layout,
        records_read: snapshot.log.records.len(),
        undecodable: snapshot.log.undecodable.len(),
        users_read: users.len(),
        last: last.collect(),
        info,
    })
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("(not reported)")
}

fn count(value: Option<u32>, capacity: Option<u32>) -> String {
    match (value, capacity) {
        (Some(v), Some(c)) => format!("{v} of {c}"),
        (Some(v), None) => v.to_string(),
        (None, Some(c)) => format!("? of {c}"),
        (None, None) => "(not reported)".to_owned(),
    }
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.info;
        let s = &i.sizes;
        writeln!(f, "Device at {} ({})", self.address, self.transport.as_str())?;
        writeln!(f, "  serial number  {}", text(&i.serial))?;
        writeln!(f, "  platform       {}", text(&i.platform))?;
        writeln!(f, "  firmware       {}", text(&i.firmware))?;
        writeln!(f, "  device name    {}", text(&i.device_name))?;
        writeln!(f, "  users          {}", count(s.users, s.user_capacity))?;
        writeln!(f, "  fingerprints   {}", count(s.fingerprints, s.fingerprint_capacity))?;
        writeln!(f, "  faces          {}", count(s.faces, s.face_capacity))?;
        writeln!(f, "  records        {}", count(s.records, s.record_capacity))?;
        let drift = self.drift_secs();
        let side = match drift {
            0 => "in step",
            d if d > 0 => "device ahead",
            _ => "device behind",
        };
        writeln!(f, "  device clock   {} ({})", i.time.format("%Y-%m-%d %H:%M:%S"), self.zone.name())?;
        writeln!(f, "  agent clock    {} ({})", self.agent_time.format("%Y-%m-%d %H:%M:%S"), self.zone.name())?;
        writeln!(f, "  clock drift    {drift:+} s ({side})")?;
        let layout = self.layout.map_or("none".to_owned(), |l| format!("{}-byte", l.size()));
        write!(f, "  log read       {} records ({layout} layout), {} users", self.records_read, self.users_read)?;
        if self.undecodable > 0 {
            write!(f, ", {} records with impossible dates", self.undecodable)?;
        }
        writeln!(f)?;
        if self.last.is_empty() {
            return writeln!(f, "No punches on the device.");
        }
        writeln!(f, "Last {} punches (local time, then UTC):", self.last.len())?;
        for p in &self.last {
            let utc = local_to_utc(p.local_time, self.zone);
            writeln!(
                f,
                "  {}  {}Z  PIN {:<10} {:<20} {:<10} {}",
                p.local_time.format("%Y-%m-%d %H:%M:%S"),
                utc.format("%Y-%m-%dT%H:%M:%S"),
                p.pin,
                p.name.as_deref().unwrap_or("-"),
                p.state.to_string(),
                p.verify,
            )?;
        }
        Ok(())
    }
}
