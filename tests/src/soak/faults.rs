//! The faults injected in the middle of a soak, in this order, each at a fixed fraction of the load's duration:
//! a replica killed with SIGKILL (and started again after `replica_down`), Mosquitto restarted, PostgreSQL
//! restarted (fast shutdown), the network between the replicas and PostgreSQL stalled through the chaos proxy for
//! `stall`, then the network between the agents and the broker likewise.
//!
//! A stall drops the open connections and holds every new one without forwarding a byte (what a dead route looks
//! like to both ends), then lets connections through again.

use std::time::Duration;

use tokio::time::Instant;

use super::broker::PrivateBroker;
use super::figures::FaultMark;
use super::postgres::PrivatePostgres;
use super::replicas::Replicas;
use crate::proxy::{ChaosProxy, ProxyMode};

/// Which fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillReplica,
    RestartBroker,
    RestartPostgres,
    StallDatabase,
    StallBroker,
}

impl Fault {
    pub fn label(self) -> &'static str {
        match self {
            Self::KillReplica => "kill -9 replica",
            Self::RestartBroker => "restart Mosquitto",
            Self::RestartPostgres => "restart PostgreSQL",
            Self::StallDatabase => "stall replicas-PostgreSQL",
            Self::StallBroker => "stall agents-broker",
        }
    }
}

/// The schedule: each fault with the fraction of the load's duration at which it starts.
pub const SCHEDULE: [(f64, Fault); 5] = [
    (0.15, Fault::KillReplica),
    (0.30, Fault::RestartBroker),
    (0.45, Fault::RestartPostgres),
    (0.60, Fault::StallDatabase),
    (0.75, Fault::StallBroker),
];

/// What the faults act on.
pub struct Targets<'a> {
    pub replicas: &'a mut Replicas,
    pub broker: &'a mut PrivateBroker,
    pub postgres: &'a mut PrivatePostgres,
    pub database_proxy: &'a ChaosProxy,
    pub broker_proxy: &'a ChaosProxy,
}

/// How long the faults last.
#[derive(Debug, Clone, Copy)]
pub struct FaultSettings {
    pub replica_down: Duration,
    pub stall: Duration,
}

/// Injects `fault` and returns when the system is whole again (the outage is in the mark).
///
/// # Errors
/// When a process does not come back.
pub async fn inject(
    fault: Fault,
    targets: &mut Targets<'_>,
    settings: FaultSettings,
    run_start: Instant,
) -> anyhow::Result<FaultMark> {
    let at = run_start.elapsed().as_secs_f64();
    let started = Instant::now();
    tracing::warn!("soak fault: {}", fault.label());
    let pid_change = |before: Option<u32>, after: Option<u32>| match (before, after) {
        (Some(b), Some(a)) if a != b => Some(format!("pid {b} -> {a}")),
        _ => None,
    };
    let evidence = match fault {
        Fault::KillReplica => {
            let before = targets.replicas.pids().first().map(|(_, pid)| *pid);
            targets.replicas.kill(0).await?;
            tokio::time::sleep(settings.replica_down).await;
            targets.replicas.restart(0).await?;
            pid_change(before, targets.replicas.pids().first().map(|(_, pid)| *pid))
        }
        Fault::RestartBroker => {
            let before = targets.broker.pid();
            tokio::task::block_in_place(|| targets.broker.restart())?;
            pid_change(before, targets.broker.pid())
        }
        Fault::RestartPostgres => {
            let before = targets.postgres.pid();
            tokio::task::block_in_place(|| targets.postgres.restart_fast())?;
            pid_change(before, targets.postgres.pid())
        }
        Fault::StallDatabase => stall(targets.database_proxy, settings.stall).await,
        Fault::StallBroker => stall(targets.broker_proxy, settings.stall).await,
    };
    Ok(FaultMark {
        at_secs: at,
        label: fault.label().to_owned(),
        outage_secs: started.elapsed().as_secs_f64(),
        evidence,
    })
}

/// Stalls the proxy's traffic for `how_long`; the evidence is how many open connections it cut.
async fn stall(proxy: &ChaosProxy, how_long: Duration) -> Option<String> {
    let before = proxy.forced_cuts();
    proxy.set_mode(ProxyMode::Stall);
    proxy.cut_all();
    tokio::time::sleep(how_long).await;
    // Let the connections now held go, and let the cut ones be counted.
    proxy.set_mode(ProxyMode::Pass);
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cut = proxy.forced_cuts() - before;
    (cut > 0).then(|| format!("{cut} connections cut or held"))
}
