//! Random datasets for the backup properties (`tests/tests/backup_properties.rs`): a proptest strategy choosing
//! sites, employees on random shifts, devices, holidays, agents, administrators, punches (of employees and of PINs
//! nobody registered), manual logs and leave (pending, approved or rejected), and whether attendance is computed;
//! [`build`] stores one through the store's own functions (the ingest path for punches), and [`Built`] says what
//! it stored, so a property can compare a backup with what was put in.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use central_api::attendance::engine::{Holiday, HolidayKind};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::fleet::privilege::DevicePrivilege;
use central_api::store::admin::NewDevice;
use central_api::store::attendance::requests::{NewLeave, NewManualLog};
use central_api::store::Store;
use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use protocol::PunchState;

use crate::attendance::{add_employee, punch, setup_site, ZONE};

/// Site ids, in order.
pub const SITES: [&str; 3] = ["A", "B", "C"];
const SHIFTS: [&str; 3] = ["GEN", "NIGHT", "MD"];
const STATES: [PunchState; 6] = [
    PunchState::CheckIn,
    PunchState::CheckOut,
    PunchState::BreakOut,
    PunchState::BreakIn,
    PunchState::OvertimeIn,
    PunchState::OvertimeOut,
];
const HOLIDAY_KINDS: [HolidayKind; 3] = [HolidayKind::Public, HolidayKind::Company, HolidayKind::Optional];

/// Punches by (day index, minute of the day), with a state index.
pub type Punches = BTreeMap<(u8, u16), u8>;

/// One employee.
#[derive(Debug, Clone)]
pub struct EmployeeData {
    pub shift: u8,
    pub punches: Punches,
    /// (first day, extra days, decision: none = pending).
    pub leave: Option<(u8, u8, Option<bool>)>,
    /// (day, minute, decision).
    pub manual_log: Option<(u8, u16, Option<bool>)>,
}

/// One site.
#[derive(Debug, Clone)]
pub struct SiteData {
    pub employees: Vec<EmployeeData>,
    /// (day, kind index).
    pub holiday: Option<(u8, u8)>,
    /// Punches of a PIN no employee has.
    pub stranger: Punches,
    pub admin: bool,
}

/// A whole dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub sites: Vec<SiteData>,
    /// A holiday of every site.
    pub global_holiday: Option<(u8, u8)>,
    /// Compute attendance for the week.
    pub compute: bool,
}

fn punches(max: usize) -> impl Strategy<Value = Punches> {
    btree_map((0u8..7, 0u16..1440), 0u8..6, 0..max)
}

fn employee() -> impl Strategy<Value = EmployeeData> {
    (
        0u8..3,
        punches(8),
        option::of((0u8..7, 0u8..3, option::of(any::<bool>()))),
        option::of((0u8..7, 0u16..1440, option::of(any::<bool>()))),
    )
        .prop_map(|(shift, punches, leave, manual_log)| EmployeeData { shift, punches, leave, manual_log })
}

fn site() -> impl Strategy<Value = SiteData> {
    (vec(employee(), 0..4), option::of((0u8..7, 0u8..3)), punches(3), any::<bool>())
        .prop_map(|(employees, holiday, stranger, admin)| SiteData { employees, holiday, stranger, admin })
}

/// Datasets of 1 to `max_sites` sites.
pub fn dataset(max_sites: usize) -> impl Strategy<Value = Dataset> {
    (vec(site(), 1..=max_sites.clamp(1, SITES.len())), option::of((0u8..7, 0u8..3)), any::<bool>())
        .prop_map(|(sites, global_holiday, compute)| Dataset { sites, global_holiday, compute })
}

/// The first day of a dataset's week (a Monday).
pub fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or(NaiveDate::MIN)
}

/// Day `d` of the week at minute `m`.
pub fn local(d: u8, m: u16) -> NaiveDateTime {
    (first_day() + Duration::days(i64::from(d))).and_time(chrono::NaiveTime::MIN) + Duration::minutes(i64::from(m))
}

/// Employee `e` of site index `s`.
pub fn employee_id(s: usize, e: usize) -> String {
    format!("{}{:03}", s + 1, e)
}

/// The PIN of site index `s`'s stranger.
pub fn stranger_pin(s: usize) -> String {
    format!("9{}99", s + 1)
}

/// What [`build`] stored.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// Per site: its employees.
    pub employees: BTreeMap<String, BTreeSet<String>>,
    /// Per site: its punches as (pin, local time).
    pub punches: BTreeMap<String, BTreeSet<(String, NaiveDateTime)>>,
    pub devices: BTreeMap<String, String>,
    pub manual_logs: usize,
    pub leaves: usize,
    pub holidays: usize,
}

impl Built {
    /// Every punch stored.
    pub fn punch_count(&self) -> usize {
        self.punches.values().map(BTreeSet::len).sum()
    }
}

/// Stores `data` in `store` (empty, migrated) through the store's functions.
///
/// # Errors
/// When the store refuses.
pub async fn build(store: &Store, data: &Dataset) -> anyhow::Result<Built> {
    build_from(store, data, 0).await
}

/// As [`build`], with `data`'s sites taking the ids and numbers from `offset` on (sites before it may exist).
///
/// # Errors
/// When the store refuses, or there are more than [`SITES`] sites.
pub async fn build_from(store: &Store, data: &Dataset, offset: usize) -> anyhow::Result<Built> {
    anyhow::ensure!(offset + data.sites.len() <= SITES.len(), "at most {} sites", SITES.len());
    let mut built = Built::default();
    for (i, site) in data.sites.iter().enumerate() {
        let s = offset + i;
        let id = SITES[s];
        setup_site(store, id).await?;
        let serial = format!("DEV-{id}");
        store
            .add_device(&NewDevice {
                serial: serial.clone(),
                site_id: id.to_owned(),
                name: format!("Gate {id}"),
                model: Some("SpeedFace".into()),
                ip: Some(format!("10.0.0.{}", s + 5)),
                port: Some(4370),
                kind: "zk-tcp".into(),
                time_zone: ZONE.into(),
                direction: "BOTH".into(),
            })
            .await?;
        built.devices.insert(serial, id.to_owned());
        store.create_agent(&format!("agent-{id}"), id, &[s as u8 + 1; 32]).await?;
        if site.admin {
            let name = format!("admin-{id}");
            store.create_admin(&name, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "admin").await?;
            store.grant_site(&name, id).await?;
        }
        if let Some((day, kind)) = site.holiday {
            store
                .add_holiday(&Holiday {
                    date: first_day() + Duration::days(i64::from(day)),
                    name: format!("Holiday of {id}"),
                    kind: HOLIDAY_KINDS[usize::from(kind) % 3],
                    site: Some(id.parse()?),
                })
                .await?;
            built.holidays += 1;
        }
        let mut batch = Vec::new();
        let mut stored = BTreeSet::new();
        for (e, employee) in site.employees.iter().enumerate() {
            let who = employee_id(s, e);
            add_employee(store, &who, id, SHIFTS[usize::from(employee.shift) % 3]).await?;
            // Every other employee carries a card and a device privilege (columns added after the first backups).
            if e % 2 == 0 {
                let privilege = [DevicePrivilege::User, DevicePrivilege::Enroller, DevicePrivilege::Admin][e % 3];
                let card = u32::try_from(10_000 + s * 100 + e).unwrap_or(1);
                store.set_employee_device_fields(&who, Some(card), Some(privilege)).await?;
            }
            built.employees.entry(id.to_owned()).or_default().insert(who.clone());
            for ((d, m), state) in &employee.punches {
                batch.push(punch(id, &who, local(*d, *m), STATES[usize::from(*state) % 6]));
                stored.insert((who.clone(), local(*d, *m)));
            }
        }
        let stranger = stranger_pin(s);
        for ((d, m), state) in &site.stranger {
            batch.push(punch(id, &stranger, local(*d, *m), STATES[usize::from(*state) % 6]));
            stored.insert((stranger.clone(), local(*d, *m)));
        }
        if !batch.is_empty() {
            let expected = batch.len();
            let new = crate::attendance::ingest(store, id, 1, batch).await?;
            anyhow::ensure!(new as usize == expected, "{new} of {expected} punches stored at {id}");
        }
        built.punches.insert(id.to_owned(), stored);
    }
    if let Some((day, kind)) = data.global_holiday {
        store
            .add_holiday(&Holiday {
                date: first_day() + Duration::days(i64::from(day)),
                name: "Company day".into(),
                kind: HOLIDAY_KINDS[usize::from(kind) % 3],
                site: None,
            })
            .await?;
        built.holidays += 1;
    }
    requests(store, data, offset, &mut built).await?;
    if data.compute {
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).single().context("now")?;
        reprocess(store, &Target::All, first_day(), first_day() + Duration::days(6), now, None).await?;
    }
    Ok(built)
}

async fn requests(store: &Store, data: &Dataset, offset: usize, built: &mut Built) -> anyhow::Result<()> {
    for (i, site) in data.sites.iter().enumerate() {
        let s = offset + i;
        for (e, employee) in site.employees.iter().enumerate() {
            let who = employee_id(s, e);
            if let Some((day, minute, decision)) = employee.manual_log {
                let id = store
                    .request_manual_log(&NewManualLog {
                        employee_id: who.clone(),
                        local_time: local(day, minute),
                        state: if minute < 720 { PunchState::CheckIn } else { PunchState::CheckOut },
                        reason: format!("forgot, day {day}"),
                        requested_by: "root".into(),
                    })
                    .await?;
                if let Some(approve) = decision {
                    store.decide_manual_log(id, approve, "root").await?;
                }
                built.manual_logs += 1;
            }
            if let Some((day, extra, decision)) = employee.leave {
                let from = first_day() + Duration::days(i64::from(day));
                let id = store
                    .request_leave(&NewLeave {
                        employee_id: who.clone(),
                        from,
                        to: from + Duration::days(i64::from(extra)),
                        kind: "casual".into(),
                        paid: extra % 2 == 0,
                        requested_by: "root".into(),
                    })
                    .await?;
                if let Some(approve) = decision {
                    store.decide_leave(id, approve, "root").await?;
                }
                built.leaves += 1;
            }
        }
    }
    Ok(())
}
