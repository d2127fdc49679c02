//! Backup test and bench support: a database holding every kind a backup carries (sites, week-off rules, shifts,
//! employees, devices, holidays, agents, administrators with their sites, punches, manual logs, leave, and the
//! attendance and ManDays rows computed from them), and the record lines of a backup file for comparisons.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use central_api::attendance::engine::{Holiday, HolidayKind};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::store::admin::NewDevice;
use central_api::store::attendance::requests::{NewLeave, NewManualLog};
use central_api::store::Store;
use chrono::{NaiveDate, TimeZone, Utc};
use protocol::PunchState;

use crate::attendance::{add_employee, at, date, ingest, punch, setup_site};

/// The days [`seed`] fills: 2026-03-02 (Monday) to 2026-03-07.
pub fn seed_days() -> (NaiveDate, NaiveDate) {
    (date(3, 2), date(3, 7))
}

/// Fills `store` with every kind of record: sites A and B, the test shifts and week-off rule, employees 1001 (GEN)
/// and 1002 (MD, ManDays) at A and 2001 (GEN) at B, a device per site, a global and a site holiday, an agent per
/// site, an admin of A and a viewer of B, a week of punches, a manual log (approved), a leave (approved), and the
/// week's attendance computed. Returns the number of punches stored.
///
/// # Errors
/// When the store refuses.
pub async fn seed(store: &Store) -> anyhow::Result<u32> {
    for site in ["A", "B"] {
        setup_site(store, site).await?;
        store
            .add_device(&NewDevice {
                serial: format!("DEV-{site}"),
                site_id: site.to_owned(),
                name: format!("Gate {site}"),
                model: Some("SpeedFace".into()),
                ip: Some("10.0.0.5".into()),
                port: Some(4370),
                kind: "zk-tcp".into(),
                time_zone: crate::attendance::ZONE.into(),
                direction: "BOTH".into(),
            })
            .await?;
        store.create_agent(&format!("agent-{site}"), site, &[7u8; 32]).await?;
    }
    add_employee(store, "1001", "A", "GEN").await?;
    add_employee(store, "1002", "A", "MD").await?;
    add_employee(store, "2001", "B", "GEN").await?;
    store
        .add_holiday(&Holiday {
            date: date(3, 4),
            name: "Founders' day".into(),
            kind: HolidayKind::Company,
            site: None,
        })
        .await?;
    store
        .add_holiday(&Holiday {
            date: date(3, 6),
            name: "Local fair".into(),
            kind: HolidayKind::Public,
            site: Some("A".parse()?),
        })
        .await?;
    store.create_admin("alice", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "admin").await?;
    store.grant_site("alice", "A").await?;
    store.create_admin("victor", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaB", "viewer").await?;
    store.grant_site("victor", "B").await?;
    let (first, last) = seed_days();
    let mut stored = 0;
    for (site, pins) in [("A", ["1001", "1002"]), ("B", ["2001", "2999"])] {
        let mut punches = Vec::new();
        let mut day = first;
        while day <= last {
            for pin in pins {
                punches.push(punch(site, pin, at(day, 8, 55), PunchState::CheckIn));
                punches.push(punch(site, pin, at(day, 13, 0), PunchState::BreakOut));
                punches.push(punch(site, pin, at(day, 13, 30), PunchState::BreakIn));
                punches.push(punch(site, pin, at(day, 18, 5), PunchState::CheckOut));
            }
            day = day.succ_opt().context("next day")?;
        }
        stored += ingest(store, site, 1, punches).await?;
    }
    let log = store
        .request_manual_log(&NewManualLog {
            employee_id: "2001".into(),
            local_time: at(date(3, 3), 21, 0),
            state: PunchState::CheckOut,
            reason: "forgot to punch".into(),
            requested_by: "alice".into(),
        })
        .await?;
    store.decide_manual_log(log, true, "root").await?;
    let leave = store
        .request_leave(&NewLeave {
            employee_id: "1001".into(),
            from: date(3, 5),
            to: date(3, 5),
            kind: "casual".into(),
            paid: true,
            requested_by: "alice".into(),
        })
        .await?;
    store.decide_leave(leave, true, "root").await?;
    let now = Utc.with_ymd_and_hms(2026, 3, 9, 0, 0, 0).single().context("now")?;
    reprocess(store, &Target::All, first, last, now, None).await?;
    Ok(stored)
}

/// The record lines of a backup file (plain or gzip), without the header and the end: what two backups of the same
/// data share.
///
/// # Errors
/// When the file cannot be read.
pub fn record_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let input = central_api::backup::reader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines = Vec::new();
    for line in input.lines() {
        let line = line?;
        if line.starts_with("{\"kind\"") {
            lines.push(line.trim_end_matches(',').to_owned());
        }
    }
    Ok(lines)
}

/// Records per kind in a backup's record lines.
pub fn kinds_in(lines: &[String]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for line in lines {
        let kind = line.split('"').nth(3).unwrap_or_default().to_owned();
        *counts.entry(kind).or_default() += 1;
    }
    counts
}
