//! CPU and memory of the soak's processes, read from `/proc` once a second: CPU seconds (user + system, summed over
//! every life of a role, e.g. a replica killed and started again) and peak resident memory. A role may name a
//! process tree (PostgreSQL's postmaster and its backends), whose memory is the sum of proportional set sizes (PSS,
//! shared buffers split between the processes that map them rather than counted in each).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Which processes a role is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Process,
    Tree,
}

/// What the sampler reads: role name -> (pid, scope); the soak updates it as processes restart.
pub type Watched = Arc<Mutex<BTreeMap<String, (u32, Scope)>>>;

/// One role's figures.
#[derive(Debug, Clone, Default)]
pub struct RoleUsage {
    pub cpu_secs: f64,
    pub peak_rss_kib: u64,
    pub samples: u64,
    pub rss_sum_kib: u64,
}

impl RoleUsage {
    /// Mean resident memory over the samples.
    pub fn mean_rss_kib(&self) -> u64 {
        self.rss_sum_kib.checked_div(self.samples).unwrap_or(0)
    }
}

/// Samples until `stop`; returns the figures by role.
pub async fn sample(watched: Watched, every: Duration, stop: CancellationToken) -> BTreeMap<String, RoleUsage> {
    // SAFETY: sysconf(3) has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut last_ticks: HashMap<u32, u64> = HashMap::new();
    let mut usage: BTreeMap<String, RoleUsage> = BTreeMap::new();
    let mut ticker = tokio::time::interval(every);
    // CPU used before sampling starts (setup) is not counted; a process first seen later counts from its start.
    let mut first = true;
    loop {
        let stopping = tokio::select! {
            () = stop.cancelled() => true,
            _ = ticker.tick() => false,
        };
        let roles: Vec<(String, (u32, Scope))> =
            watched.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (role, (pid, scope)) in roles {
            let pids = match scope {
                Scope::Process => vec![pid],
                Scope::Tree => tree(pid),
            };
            let entry = usage.entry(role).or_default();
            let mut rss = 0;
            for p in pids {
                if let Some(t) = cpu_ticks(p) {
                    let before = last_ticks.insert(p, t).unwrap_or(if first { t } else { 0 });
                    entry.cpu_secs += t.saturating_sub(before) as f64 / ticks;
                }
                rss += match scope {
                    Scope::Process => status_kib(p, "VmRSS:"),
                    Scope::Tree => rollup_kib(p, "Pss:"),
                };
            }
            if rss > 0 {
                entry.peak_rss_kib = entry.peak_rss_kib.max(rss);
                entry.rss_sum_kib += rss;
                entry.samples += 1;
            }
        }
        first = false;
        if stopping {
            return usage;
        }
    }
}

/// `pid` and its descendants.
fn tree(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            if let Some(ppid) = stat_field(pid, 4).and_then(|f| f.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`.
fn stat_field(pid: u32, n: usize) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    after.split_whitespace().nth(n.checked_sub(3)?).map(str::to_owned)
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let utime: u64 = stat_field(pid, 14)?.parse().ok()?;
    let stime: u64 = stat_field(pid, 15)?.parse().ok()?;
    Some(utime + stime)
}

fn status_kib(pid: u32, key: &str) -> u64 {
    kib_line(&format!("/proc/{pid}/status"), key)
}

fn rollup_kib(pid: u32, key: &str) -> u64 {
    kib_line(&format!("/proc/{pid}/smaps_rollup"), key)
}

fn kib_line(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| l.strip_prefix(key).and_then(|v| v.split_whitespace().next()?.parse().ok()))
        })
        .unwrap_or(0)
}

/// The 1-, 5- and 15-minute load averages, as `uptime` prints them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
