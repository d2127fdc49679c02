//! Punches made up for tests and benches, each determined by a number so a checker can recompute what a writer wrote.

use chrono::{NaiveDate, NaiveDateTime};
use protocol::{Direction, Punch, PunchSource, PunchState, VerifyMode};

/// The site every made-up punch belongs to.
pub const SITE: &str = "bench-site";

fn base() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0)).unwrap_or_default()
}

/// Punch number `n` on `device`: PIN `n % 5000`, one second apart per number, so every number has its own key.
///
/// # Panics
/// Never for a valid `device` (letters, digits, '-', '_', '.').
pub fn numbered(device: &str, n: u64) -> Punch {
    let local = base() + chrono::Duration::seconds(i64::try_from(n).unwrap_or(i64::MAX / 2));
    Punch::from_device(
        SITE.parse().expect("valid site"),
        device.parse().expect("valid serial"),
        (n % 5000).to_string().parse().expect("valid pin"),
        local,
        chrono_tz::Asia::Kolkata,
        if n % 2 == 0 { PunchState::CheckIn } else { PunchState::CheckOut },
        VerifyMode::Fingerprint,
        0,
        PunchSource::ZkPull,
        Direction::Both,
    )
}

/// Punches `from..to` on `device`.
pub fn range(device: &str, from: u64, to: u64) -> Vec<Punch> {
    (from..to).map(|n| numbered(device, n)).collect()
}
