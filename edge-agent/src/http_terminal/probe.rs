//! `edge-agent probe --kind hikvision|dahua URL --user U`: one look at an HTTP terminal for the technician. Prints
//! identity, counts, the device clock against ours, and the last punches of the recent history; changes nothing on
//! the device.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use protocol::{Direction, PunchSource, PunchState};

use super::context::EventContext;
use super::digest::{ClientOptions, DigestClient};
use super::terminal::{DeviceClock, DeviceEvent, Identity, Terminal, TerminalError};
use crate::dahua::{client::CgiClient, Dahua};
use crate::hikvision::{client::IsapiClient, Hikvision};

/// Which family to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Hikvision,
    Dahua,
}

impl std::str::FromStr for ProbeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hikvision" => Ok(Self::Hikvision),
            "dahua" => Ok(Self::Dahua),
            other => Err(format!("{other:?} is not hikvision or dahua")),
        }
    }
}

/// What to probe.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub kind: ProbeKind,
    pub client: ClientOptions,
    pub zone: Tz,
    /// How many of the newest punches to list.
    pub last: usize,
    /// How far back the history is read.
    pub days: u32,
    /// Dahua: `CreateTime` is the wall clock written as UTC.
    pub epoch_is_local: bool,
}

/// Everything the probe learned.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    pub kind: ProbeKind,
    pub url: String,
    pub zone: Tz,
    pub identity: Identity,
    /// Our clock when the device's was read.
    pub agent_time: DateTime<Utc>,
    /// Events read in the window, how many were punches, or why the history could not be read.
    pub history: Result<(usize, usize), String>,
    pub last: Vec<DeviceEvent>,
    pub days: u32,
}

impl ProbeReport {
    /// Seconds the device clock is ahead of ours.
    pub fn drift_secs(&self) -> Option<i64> {
        self.identity.clock.map(|clock| match clock {
            DeviceClock::Zoned(at) => (at.with_timezone(&Utc) - self.agent_time).num_seconds(),
            DeviceClock::Local(local) => {
                (local - self.agent_time.with_timezone(&self.zone).naive_local()).num_seconds()
            }
        })
    }
}

/// Identifies the device and reads its recent history.
///
/// # Errors
/// [`TerminalError`] when the device cannot be identified (unreachable, refused credentials); a failed history read
/// is reported inside the report.
pub async fn probe(request: &ProbeRequest) -> Result<ProbeReport, TerminalError> {
    let url = request.client.base_url.to_string();
    let http = DigestClient::new(request.client.clone())?;
    let context = |source| EventContext {
        site: "probe".parse().expect("a constant valid site"),
        serial: "probe".parse().expect("a constant valid serial"),
        zone: request.zone,
        direction: Direction::default(),
        source,
    };
    let idle = Duration::from_secs(30);
    let (identity, agent_time, history, last) = match request.kind {
        ProbeKind::Hikvision => {
            let terminal = Hikvision::new(IsapiClient::new(http), context(PunchSource::Hikvision), 30, idle);
            look(&terminal, request).await?
        }
        ProbeKind::Dahua => {
            let terminal =
                Dahua::new(CgiClient::new(http), context(PunchSource::Dahua), 100, idle, request.epoch_is_local);
            look(&terminal, request).await?
        }
    };
    Ok(ProbeReport {
        kind: request.kind,
        url,
        zone: request.zone,
        identity,
        agent_time,
        history,
        last,
        days: request.days,
    })
}

type Look = (Identity, DateTime<Utc>, Result<(usize, usize), String>, Vec<DeviceEvent>);

async fn look<T: Terminal>(terminal: &T, request: &ProbeRequest) -> Result<Look, TerminalError> {
    let identity = terminal.identify().await?;
    let agent_time = Utc::now();
    let since = agent_time - chrono::Duration::days(i64::from(request.days));
    let mut search = terminal.start_search(Some(since));
    let mut punches: Vec<DeviceEvent> = Vec::new();
    let mut read = 0;
    let history = loop {
        match terminal.next_page(&mut search).await {
            Ok(Some(page)) => {
                read += page.len();
                punches.extend(page.into_iter().filter(|e| e.punch.is_some()));
                let keep = request.last.max(1) * 4;
                if punches.len() > keep {
                    punches.drain(..punches.len() - keep);
                }
            }
            Ok(None) => break Ok(read),
            Err(e) => break Err(e.to_string()),
        }
    };
    let total_punches = punches.len();
    punches.sort_by_key(|e| e.punch.as_ref().map(|p| p.utc_time));
    let start = punches.len().saturating_sub(request.last);
    let last = punches.split_off(start);
    Ok((identity, agent_time, history.map(|read| (read, total_punches)), last))
}

fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("(not reported)")
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ProbeKind::Hikvision => "Hikvision (ISAPI)",
            ProbeKind::Dahua => "Dahua (CGI)",
        };
        let i = &self.identity.info;
        writeln!(f, "{kind} device at {}", self.url)?;
        writeln!(f, "  serial number  {}", text(&self.identity.serial))?;
        writeln!(f, "  model          {}", text(&i.model))?;
        writeln!(f, "  firmware       {}", text(&i.firmware))?;
        writeln!(f, "  platform       {}", text(&i.platform))?;
        let users = match (self.identity.users, i.user_capacity) {
            (Some(u), Some(c)) => format!("{u} of {c}"),
            (Some(u), None) => u.to_string(),
            (None, Some(c)) => format!("? of {c}"),
            (None, None) => "(not reported)".into(),
        };
        writeln!(f, "  users          {users}")?;
        if let Some(faces) = i.face_count {
            writeln!(f, "  faces          {faces}")?;
        }
        let agent_local = self.agent_time.with_timezone(&self.zone).format("%Y-%m-%d %H:%M:%S");
        match self.identity.clock {
            Some(DeviceClock::Zoned(at)) => writeln!(f, "  device clock   {}", at.format("%Y-%m-%d %H:%M:%S %:z"))?,
            Some(DeviceClock::Local(local)) => {
                writeln!(f, "  device clock   {} ({})", local.format("%Y-%m-%d %H:%M:%S"), self.zone.name())?;
            }
            None => writeln!(f, "  device clock   (not reported)")?,
        }
        writeln!(f, "  agent clock    {agent_local} ({})", self.zone.name())?;
        if let Some(drift) = self.drift_secs() {
            let side = match drift {
                0 => "in step",
                d if d > 0 => "device ahead",
                _ => "device behind",
            };
            writeln!(f, "  clock drift    {drift:+} s ({side})")?;
        }
        match &self.history {
            Ok((read, punches)) => {
                writeln!(
                    f,
                    "  history        {read} events in the last {} days, {punches} of them punches",
                    self.days
                )?;
            }
            Err(reason) => writeln!(f, "  history        not readable: {reason}")?,
        }
        if self.last.is_empty() {
            return writeln!(f, "No punches in the last {} days.", self.days);
        }
        writeln!(f, "Last {} punches (local time, then UTC):", self.last.len())?;
        for event in &self.last {
            let Some(p) = &event.punch else { continue };
            let state = match p.state {
                PunchState::Unknown(_) => "-".to_owned(),
                state => state.to_string(),
            };
            let raw = format!(
                "raw {}/{}",
                p.raw_state.map_or("-".to_owned(), |c| c.to_string()),
                p.raw_verify.map_or("-".to_owned(), |c| c.to_string())
            );
            let seq = event.mark.seq.map_or("-".to_owned(), |s| s.to_string());
            writeln!(
                f,
                "  {}  {}Z  PIN {:<12} {:<10} {:<12} {raw:<12} #{seq}",
                p.local_time.format("%Y-%m-%d %H:%M:%S"),
                p.utc_time.format("%Y-%m-%dT%H:%M:%S"),
                p.pin.as_str(),
                state,
                p.verify.to_string(),
            )?;
        }
        Ok(())
    }
}
