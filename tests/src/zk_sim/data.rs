//! The simulated device's users and records, generated deterministically from a seed, so a test (or pyzk) can be
//! checked against exactly what the device holds.

use chrono::{Duration, NaiveDate, NaiveDateTime};
use edge_agent::zk::records::{AttendanceRecord, DeviceUser};
use edge_agent::zk::users::UserRecord;
use edge_agent::zk::{RecordLayout, UserLayout};

/// A small deterministic generator (xorshift64*); the exact sequence is part of what tests compare against.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

const FIRST_NAMES: [&str; 10] = ["Asha", "Ravi", "Meena", "Arjun", "Siti", "Budi", "Linh", "Priya", "Karim", "Dewi"];
const LAST_NAMES: [&str; 6] = ["Rao", "Kumar", "Nair", "Santoso", "Tran", "Das"];

/// `count` users numbered 1..=count. PINs are numeric where the layouts can only carry numbers (28-byte users,
/// 16-byte records); otherwise every fifth PIN is alphanumeric.
pub fn users(count: usize, user_layout: UserLayout, record_layout: RecordLayout, seed: u64) -> Vec<UserRecord> {
    let mut rng = Rng::new(seed ^ 0x5553_4552);
    let numeric_only = user_layout == UserLayout::Small || record_layout == RecordLayout::Medium;
    (1..=count.min(usize::from(u16::MAX)))
        .map(|n| {
            let uid = n as u16;
            let user_id =
                if !numeric_only && n % 5 == 0 { format!("E{:05}", 7 * n) } else { (1000 + 3 * n).to_string() };
            let full = format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
            let name = match user_layout {
                UserLayout::Small => full.chars().take(8).collect::<String>().trim().to_owned(),
                UserLayout::Large => full,
            };
            UserRecord {
                uid,
                privilege: if n == 1 { 14 } else { 0 },
                password: String::new(),
                name,
                card: if n % 3 == 0 { 1_000_000 + n as u32 } else { 0 },
                group: "1".to_owned(),
                user_id,
            }
        })
        .collect()
}

/// When generated logs start.
pub fn default_start() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 5).and_then(|d| d.and_hms_opt(7, 0, 0)).unwrap_or_default()
}

/// `count` records by `users`, strictly increasing in time (so no two share a punch key), with realistic codes and
/// a few unknown ones.
pub fn records(
    count: usize,
    users: &[UserRecord],
    layout: RecordLayout,
    start: NaiveDateTime,
    seed: u64,
) -> Vec<AttendanceRecord> {
    let mut rng = Rng::new(seed ^ 0x4154_544c);
    let mut time = start;
    (0..count)
        .map(|_| {
            time += Duration::seconds(20 + rng.below(70) as i64);
            let user = &users[rng.below(users.len() as u64) as usize];
            record_for(user, layout, time, &mut rng)
        })
        .collect()
}

/// One record by `user` at `time` in `layout`.
pub fn record_for(user: &UserRecord, layout: RecordLayout, time: NaiveDateTime, rng: &mut Rng) -> AttendanceRecord {
    let (user_ref, uid) = match layout {
        RecordLayout::Short => (DeviceUser::Uid(user.uid), Some(user.uid)),
        RecordLayout::Medium => (DeviceUser::Pin(user.user_id.clone()), None),
        RecordLayout::Long => (DeviceUser::Pin(user.user_id.clone()), Some(user.uid)),
    };
    AttendanceRecord {
        user: user_ref,
        uid,
        time,
        verify: rng.pick(&[1, 1, 1, 2, 15, 0, 25]),
        state: rng.pick(&[0, 1, 0, 1, 2, 3, 4, 5, 7]),
        work_code: if layout == RecordLayout::Medium && rng.below(5) == 0 { rng.below(100) as u32 } else { 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_keys_are_unique() {
        let u = users(20, UserLayout::Large, RecordLayout::Long, 7);
        assert_eq!(u, users(20, UserLayout::Large, RecordLayout::Long, 7));
        assert!(u.iter().any(|u| u.user_id.starts_with('E')));
        assert!(users(20, UserLayout::Small, RecordLayout::Long, 7).iter().all(|u| u.user_id.parse::<u32>().is_ok()));
        let r = records(500, &u, RecordLayout::Long, default_start(), 7);
        assert_eq!(r, records(500, &u, RecordLayout::Long, default_start(), 7));
        assert!(r.windows(2).all(|w| w[0].time < w[1].time));
        assert!(r.iter().any(|r| r.state == 7), "some unknown state codes are generated");
    }
}
