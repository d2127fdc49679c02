//! What the demo puts into central before it starts, so the dashboard has something to show: a shift placed
//! around the current local time (so the simulated terminals' punches fall inside today's window whenever the demo
//! is run), Sundays off, every employee on them, three weeks of punch history (mostly on time, some late, some half
//! days, some absences) stored through the ingest path as agent [`HISTORY_AGENT`] and computed, and a root login
//! `admin` with a random password.

use anyhow::Context;
use argon2::password_hash::{rand_core::OsRng, SaltString};
use argon2::{Argon2, PasswordHasher};
use central_api::attendance::engine::{Shift, WeekOffRule};
use central_api::attendance::jobs::bulk::{reprocess, Target};
use central_api::attendance::jobs::worker::drain;
use central_api::store::attendance::masters::EmployeeProfile;
use central_api::store::rows::BatchRows;
use central_api::store::Store;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc, Weekday};
use protocol::{Direction, Punch, PunchBatch, PunchSource, PunchState, SequencedPunch, VerifyMode};
use rand::distr::{Alphanumeric, SampleString};

use super::{SITE, ZONE};

/// The demo's shift code.
pub const SHIFT: &str = "DEMO";
/// The demo's week-off rule code.
pub const WEEK_OFF: &str = "SUN";
/// The agent id the history punches are stored under (the live ones come from the demo's real agent).
pub const HISTORY_AGENT: &str = "demo-history";
/// Days of history before today.
pub const HISTORY_DAYS: i64 = 21;

/// The demo shift: nine hours starting at the hour two hours before now (local time), so the simulated terminals'
/// punches (from two hours ago on) are inside today's window.
pub fn demo_shift(now_local: NaiveDateTime) -> Shift {
    let start_hour = (now_local - Duration::hours(2)).hour();
    let start = NaiveTime::from_hms_opt(start_hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let mut shift = Shift::new(SHIFT, start, start + Duration::hours(9));
    shift.grace_late_in = Duration::minutes(10);
    shift.grace_early_out = Duration::minutes(10);
    shift
}

/// Creates the shift and the week-off rule.
///
/// # Errors
/// When the store refuses.
pub async fn settings(store: &Store, now_local: NaiveDateTime) -> anyhow::Result<Shift> {
    let shift = demo_shift(now_local);
    store.create_shift("Demo general shift", &shift).await?;
    store.create_week_off_rule(WEEK_OFF, "Sundays", &WeekOffRule::weekly(&[Weekday::Sun])).await?;
    Ok(shift)
}

/// Puts employee `id` on the demo shift with Sundays off (a department by PIN, so the filters have something).
///
/// # Errors
/// When the store refuses.
pub async fn profile(store: &Store, id: &str, name: &str) -> anyhow::Result<()> {
    let departments = ["Production", "Packing", "Stores"];
    let department = departments[id.bytes().map(usize::from).sum::<usize>() % departments.len()];
    let profile = EmployeeProfile {
        employee_id: id.to_owned(),
        name: name.to_owned(),
        department: department.to_owned(),
        designation: "Operator".to_owned(),
        site_id: Some(SITE.to_owned()),
        shift_code: Some(SHIFT.to_owned()),
        week_off_rule: Some(WEEK_OFF.to_owned()),
        date_of_joining: None,
        date_of_leaving: None,
        active: true,
        card_number: None,
        device_privilege: None,
    };
    store.update_employee_profile(&profile, Utc::now().date_naive()).await?;
    Ok(())
}

/// A small deterministic generator (the history is the same for the same employees and days).
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

/// The history punches of `pin` on `day`: none on Sundays and on about one day in twelve; otherwise in and out
/// around the shift (some late arrivals, some half days).
fn day_punches(pin: &str, day: NaiveDate, shift: &Shift) -> Vec<(NaiveDateTime, PunchState)> {
    if day.weekday() == Weekday::Sun {
        return Vec::new();
    }
    let seed = mix(pin.bytes().fold(7, |h, b| mix(h, u64::from(b))), u64::from(day.num_days_from_ce().unsigned_abs()));
    let start = day.and_time(shift.start);
    let minutes = |n: u64| Duration::minutes(i64::try_from(n).unwrap_or(0));
    match seed % 100 {
        0..=7 => Vec::new(),
        8..=15 => vec![
            (start + minutes(20 + seed / 100 % 40), PunchState::CheckIn),
            (start + shift.length() + minutes(seed / 10_000 % 30), PunchState::CheckOut),
        ],
        16..=20 => vec![
            (start - minutes(seed / 100 % 15), PunchState::CheckIn),
            (start + Duration::hours(4) + minutes(40 + seed / 10_000 % 30), PunchState::CheckOut),
        ],
        _ => vec![
            (start - minutes(seed / 100 % 20), PunchState::CheckIn),
            (start + shift.length() + minutes(seed / 10_000 % 45), PunchState::CheckOut),
        ],
    }
}

/// Stores [`HISTORY_DAYS`] days of punches for `employees` (on the first device) and computes them, absences
/// included.
///
/// # Errors
/// When the store refuses.
pub async fn history(store: &Store, device: &str, employees: &[String], shift: &Shift) -> anyhow::Result<usize> {
    let today = Utc::now().with_timezone(&ZONE).date_naive();
    let first = today - Duration::days(HISTORY_DAYS);
    let site: protocol::SiteId = SITE.parse().map_err(|e| anyhow::anyhow!("site id: {e}"))?;
    let serial: protocol::DeviceSerial = device.parse().map_err(|e| anyhow::anyhow!("device serial: {e}"))?;
    let mut punches = Vec::new();
    for day in first.iter_days().take_while(|d| *d < today) {
        for pin in employees {
            let pin_id: protocol::Pin = pin.parse().map_err(|e| anyhow::anyhow!("pin {pin}: {e}"))?;
            for (at, state) in day_punches(pin, day, shift) {
                punches.push(Punch::from_device(
                    site.clone(),
                    serial.clone(),
                    pin_id.clone(),
                    at,
                    ZONE,
                    state,
                    VerifyMode::Fingerprint,
                    0,
                    PunchSource::ZkPull,
                    Direction::Both,
                ));
            }
        }
    }
    let stored = punches.len();
    let agent = HISTORY_AGENT.parse().map_err(|e| anyhow::anyhow!("agent id: {e}"))?;
    let items = punches.into_iter().enumerate().map(|(i, punch)| SequencedPunch { seq: i as u64 + 1, punch }).collect();
    let batch = PunchBatch::new(agent, site, Utc::now(), items);
    store.insert_batch(BatchRows::from_batch(&batch)?).await.context("storing the history")?;
    reprocess(store, &Target::Site(SITE.to_owned()), first, today, Utc::now(), None).await?;
    drain(store, 10_000).await?;
    Ok(stored)
}

/// Creates the root administrator `admin` with a random password, returned once.
///
/// # Errors
/// When the store refuses or hashing fails.
pub async fn admin_login(store: &Store) -> anyhow::Result<String> {
    let password = Alphanumeric.sample_string(&mut rand::rng(), 16);
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?
        .to_string();
    store.create_admin("admin", &hash, "root").await?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shift_covers_the_last_two_hours_and_history_varies() {
        let now = NaiveDate::from_ymd_opt(2026, 3, 4).and_then(|d| d.and_hms_opt(1, 30, 0)).expect("time");
        let shift = demo_shift(now);
        assert_eq!(shift.start, NaiveTime::from_hms_opt(23, 0, 0).expect("time"));
        assert!(shift.is_overnight());
        assert!(shift.validate().is_ok());
        let days: Vec<_> = NaiveDate::from_ymd_opt(2026, 3, 2).expect("day").iter_days().take(20).collect();
        let counts: Vec<usize> = days.iter().map(|d| day_punches("1003", *d, &shift).len()).collect();
        assert!(counts.contains(&0) && counts.contains(&2), "{counts:?}");
        assert!(days
            .iter()
            .filter(|d| d.weekday() == Weekday::Sun)
            .all(|d| day_punches("1003", *d, &shift).is_empty()));
    }
}
