//! Attendance test and bench support: a [`Store`] on a [`CentralDb`], a site with shifts and employees set up
//! through the store's admin functions, punches stored through the ingest path (which marks days dirty), and
//! snapshots of the computed rows.

use anyhow::Context;
use central_api::attendance::engine::{PairingMode, Shift, WeekOffRule};
use central_api::config::Config;
use central_api::store::attendance::masters::EmployeeProfile;
use central_api::store::attendance::results::AttendanceRecord;
use central_api::store::rows::BatchRows;
use central_api::store::Store;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Utc};
use protocol::{Direction, Punch, PunchBatch, PunchSource, PunchState, SequencedPunch, VerifyMode};

use crate::central::CentralDb;

/// The zone every test site uses.
pub const ZONE: &str = "Asia/Kolkata";

/// A connected, migrated store on `db`.
///
/// # Errors
/// When the database cannot be reached or migrated.
pub async fn store_of(db: &CentralDb, max_connections: u32) -> anyhow::Result<Store> {
    let config = Config {
        database_url: Some(db.url.clone()),
        database_max_connections: max_connections,
        data_dir: db.dir().join("data"),
        ..Config::default()
    };
    let store = Store::connect(&config).await.context("connecting")?;
    store.migrate().await.context("migrating")?;
    Ok(store)
}

/// `hh:mm`.
pub fn hm(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
}

/// A date in 2026.
pub fn date(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, month, day).unwrap_or(NaiveDate::MIN)
}

/// `date` at `h:m`.
pub fn at(day: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    day.and_time(hm(h, m))
}

/// The test shifts: `GEN` 09:00-18:00 (first/last), `NIGHT` 22:00-06:00, `MD` 08:00-17:00 (ManDays).
pub fn test_shifts() -> Vec<Shift> {
    let general = Shift::new("GEN", hm(9, 0), hm(18, 0));
    let night = Shift::new("NIGHT", hm(22, 0), hm(6, 0));
    let mut man_days = Shift::new("MD", hm(8, 0), hm(17, 0));
    man_days.pairing = PairingMode::ManDays;
    vec![general, night, man_days]
}

/// Creates `site` (Asia/Kolkata), the [`test_shifts`] (once per database) and the week-off rule `SUN` if missing.
///
/// # Errors
/// When the store refuses.
pub async fn setup_site(store: &Store, site: &str) -> anyhow::Result<()> {
    store.create_site(site, &format!("Site {site}"), ZONE).await?;
    if store.shifts().await?.is_empty() {
        for shift in test_shifts() {
            store.create_shift(&format!("Shift {}", shift.code), &shift).await?;
        }
        store.create_week_off_rule("SUN", "Sundays", &WeekOffRule::weekly(&[chrono::Weekday::Sun])).await?;
    }
    Ok(())
}

/// Creates employee `id` at `site` on `shift` with Sundays off.
///
/// # Errors
/// When the store refuses.
pub async fn add_employee(store: &Store, id: &str, site: &str, shift: &str) -> anyhow::Result<()> {
    store.add_employee(id, &format!("Employee {id}"), Some(site)).await?;
    let profile = EmployeeProfile {
        employee_id: id.to_owned(),
        name: format!("Employee {id}"),
        department: "Production".into(),
        designation: "Operator".into(),
        site_id: Some(site.to_owned()),
        shift_code: Some(shift.to_owned()),
        week_off_rule: Some("SUN".into()),
        date_of_joining: None,
        date_of_leaving: None,
        active: true,
        card_number: None,
        device_privilege: None,
    };
    store.update_employee_profile(&profile, Utc::now().date_naive()).await?;
    Ok(())
}

/// A device punch of `pin` at local time `when` on device `DEV-<site>`.
///
/// # Panics
/// On ids that do not parse (tests pass valid ones).
pub fn punch(site: &str, pin: &str, when: NaiveDateTime, state: PunchState) -> Punch {
    Punch::from_device(
        site.parse().expect("site id"),
        format!("DEV-{site}").parse().expect("device serial"),
        pin.parse().expect("pin"),
        when,
        chrono_tz::Asia::Kolkata,
        state,
        VerifyMode::Fingerprint,
        0,
        PunchSource::ZkPull,
        Direction::Both,
    )
}

/// Stores `punches` through the ingest path as one batch of agent `agent-<site>` (which marks their days dirty).
///
/// # Errors
/// When the store refuses.
pub async fn ingest(store: &Store, site: &str, first_seq: u64, punches: Vec<Punch>) -> anyhow::Result<u32> {
    let items =
        punches.into_iter().enumerate().map(|(i, punch)| SequencedPunch { seq: first_seq + i as u64, punch }).collect();
    let batch = PunchBatch::new(format!("agent-{site}").parse().context("agent id")?, site.parse()?, Utc::now(), items);
    let rows = BatchRows::from_batch(&batch)?;
    Ok(store.insert_batch(rows).await?.new)
}

/// Every attendance row of `from..=to`, by employee and date.
///
/// # Errors
/// When the store refuses.
pub async fn snapshot(store: &Store, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<AttendanceRecord>> {
    Ok(store.attendance(None, from, to).await?)
}

/// The status code of `employee` on `day` (`None`: no row or pending).
///
/// # Errors
/// When the store refuses.
pub async fn status_of(store: &Store, employee: &str, day: NaiveDate) -> anyhow::Result<Option<String>> {
    Ok(store.attendance(Some(employee), day, day).await?.into_iter().next().and_then(|r| r.status))
}
