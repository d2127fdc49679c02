//! What the simulated workforce does: shift-change bursts, in which half of each site's workforce punches within
//! `burst`, one burst every `burst_every` (all sites at once, as a shift change is), plus a background trickle.
//!
//! The k-th punch of a site belongs to employee `order[k % workforce]`, the even employees first and then the odd
//! ones, so each burst is (about) one half of the workforce; an employee always punches on the same terminal, in
//! and out alternately. Punch times are a simulated day: the run maps onto 07:00-18:00 of [`World::day`] (a closed
//! day), so every punch key is distinct (a collision moves the punch on by a second) and the attendance engine sees
//! whole days.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use protocol::{Direction, Punch, PunchKey, PunchSource, PunchState, VerifyMode};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::generator::AgentHandle;

/// The load's shape in time.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub duration: Duration,
    pub burst: Duration,
    pub burst_every: Duration,
    /// Background punches per second per site.
    pub background_per_site: f64,
}

impl Load {
    /// Punches a site of `workforce` has made by `t` seconds into the run.
    fn cumulative(&self, workforce: usize, t: f64) -> f64 {
        let half = workforce as f64 / 2.0;
        let (burst, every) = (self.burst.as_secs_f64().max(0.001), self.burst_every.as_secs_f64().max(0.001));
        let mut total = self.background_per_site * t;
        let mut start = 0.0;
        while start < self.duration.as_secs_f64() && start <= t {
            total += half * ((t - start) / burst).clamp(0.0, 1.0);
            start += every;
        }
        total
    }
}

/// A punch picked for the attendance-latency sampler.
#[derive(Debug, Clone)]
pub struct Sample {
    pub device: String,
    pub pin: String,
    pub local_time: NaiveDateTime,
    pub generated: chrono::DateTime<Utc>,
}

/// What the producer made.
#[derive(Debug, Default)]
pub struct Produced {
    pub keys: HashSet<PunchKey>,
    /// Bursts started during the run.
    pub bursts: usize,
}

/// Appends punches to the agents' buffers until the load's duration has passed or `stop` fires; every second one
/// of the punches of that tick is offered to `samples`.
pub async fn produce(
    agents: Vec<Arc<AgentHandle>>,
    load: Load,
    day: chrono::NaiveDate,
    samples: mpsc::UnboundedSender<Sample>,
    stop: CancellationToken,
) -> Produced {
    let zone = chrono_tz::Asia::Kolkata;
    let start = tokio::time::Instant::now();
    let day_start = day.and_hms_opt(7, 0, 0).unwrap_or_default();
    let speed = (11.0 * 3600.0) / load.duration.as_secs_f64().max(1.0);
    let mut produced = Produced::default();
    let mut emitted = vec![0usize; agents.len()];
    let mut punched = vec![Vec::<u32>::new(); agents.len()];
    let mut ticker = tokio::time::interval(Duration::from_millis(100));
    let mut last_sample = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let t = start.elapsed().as_secs_f64().min(load.duration.as_secs_f64());
        let now = Utc::now();
        let sim = day_start + chrono::Duration::milliseconds((t * speed * 1000.0) as i64);
        let mut offered = None;
        for (a, agent) in agents.iter().enumerate() {
            let world = &agent.world;
            let workforce = world.pins.len();
            if workforce == 0 || world.devices.is_empty() {
                continue;
            }
            if punched[a].is_empty() {
                punched[a] = vec![0; workforce];
            }
            // Each site's phase is its own, so the sites' background punches do not all fall on the same tick.
            let phase = a as f64 / agents.len() as f64;
            let due = (load.cumulative(workforce, t) + phase) as usize;
            while emitted[a] < due {
                let k = emitted[a] % workforce;
                let half = workforce.div_ceil(2);
                let employee = if k < half { 2 * k } else { 2 * (k - half) + 1 }.min(workforce - 1);
                let pin = &world.pins[employee];
                let device = &world.devices[employee % world.devices.len()];
                let mut local = sim;
                while !produced.keys.insert(PunchKey::of(device, pin, truncate(local))) {
                    local += chrono::Duration::seconds(1);
                }
                let state = if punched[a][employee] % 2 == 0 { PunchState::CheckIn } else { PunchState::CheckOut };
                punched[a][employee] += 1;
                let punch = Punch::from_device(
                    world.site.clone(),
                    device.clone(),
                    pin.clone(),
                    truncate(local),
                    zone,
                    state,
                    VerifyMode::Fingerprint,
                    0,
                    PunchSource::ZkPull,
                    Direction::Both,
                );
                agent.append(punch, now.timestamp_micros());
                emitted[a] += 1;
                if offered.is_none() {
                    offered = Some(Sample {
                        device: device.to_string(),
                        pin: pin.to_string(),
                        local_time: truncate(local),
                        generated: now,
                    });
                }
            }
        }
        let second = start.elapsed().as_secs();
        if second > last_sample {
            if let Some(sample) = offered {
                last_sample = second;
                let _ = samples.send(sample);
            }
        }
        if start.elapsed() >= load.duration {
            break;
        }
    }
    produced.bursts = (load.duration.as_secs_f64() / load.burst_every.as_secs_f64().max(0.001)).ceil() as usize;
    produced
}

fn truncate(t: NaiveDateTime) -> NaiveDateTime {
    t.with_nanosecond(0).unwrap_or(t)
}

use chrono::Timelike;
