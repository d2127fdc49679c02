//! The agent's live view of its devices, written by every source and read by the status envelope, `/metrics` and
//! `edge-agent status`.
//!
//! Sources call [`DeviceStatusBoard::success`] after each good contact and [`DeviceStatusBoard::failure`] after a
//! failed one; nothing here does I/O.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use protocol::{DeviceInfo, DeviceSerial, DeviceStatus, Fault};

/// What a source learned in one successful contact. `None` fields leave the previous value in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub record_count: Option<u32>,
    pub user_count: Option<u32>,
    pub clock_drift_secs: Option<i64>,
}

/// Per-device status plus error counters, shared between tasks.
#[derive(Debug, Clone, Default)]
pub struct DeviceStatusBoard {
    inner: Arc<Mutex<BTreeMap<DeviceSerial, Entry>>>,
}

#[derive(Debug, Clone)]
struct Entry {
    status: DeviceStatus,
    errors_total: u64,
    punches_total: u64,
    checksum_mismatches_total: u64,
}

impl DeviceStatusBoard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes a configured device known before its first contact, so it shows up as unreachable until it is reached.
    pub fn register(&self, device: &DeviceSerial) {
        let mut map = self.lock();
        map.entry(device.clone()).or_insert_with(|| Entry::new(device));
    }

    /// Records a successful contact at `now`; clears the device's faults.
    pub fn success(&self, device: &DeviceSerial, now: DateTime<Utc>, contact: Contact) {
        let mut map = self.lock();
        let entry = map.entry(device.clone()).or_insert_with(|| Entry::new(device));
        let status = &mut entry.status;
        status.reachable = true;
        status.last_success = Some(now);
        status.faults.clear();
        if contact.record_count.is_some() {
            status.record_count = contact.record_count;
        }
        if contact.user_count.is_some() {
            status.user_count = contact.user_count;
        }
        if contact.clock_drift_secs.is_some() {
            status.clock_drift_secs = contact.clock_drift_secs;
        }
    }

    /// Records a successful contact at `now` whose standing faults (`(code, message)`: problems that do not stop the
    /// contact, such as a clock drift) are `standing`, in one step: faults not among them are cleared, those that
    /// stay keep their first `since` and take the new message, new ones start now. A status read meanwhile never sees
    /// a standing fault vanish and come back.
    pub fn success_with(
        &self,
        device: &DeviceSerial,
        now: DateTime<Utc>,
        contact: Contact,
        standing: &[(&str, String)],
    ) {
        let mut map = self.lock();
        let entry = map.entry(device.clone()).or_insert_with(|| Entry::new(device));
        let status = &mut entry.status;
        status.reachable = true;
        status.last_success = Some(now);
        status.faults.retain(|f| standing.iter().any(|(code, _)| *code == f.code));
        for (code, message) in standing {
            raise(&mut status.faults, code, message.clone(), now);
        }
        if contact.record_count.is_some() {
            status.record_count = contact.record_count;
        }
        if contact.user_count.is_some() {
            status.user_count = contact.user_count;
        }
        if contact.clock_drift_secs.is_some() {
            status.clock_drift_secs = contact.clock_drift_secs;
        }
    }

    /// Records what the device is: its configured `kind` and, when it told, its identity and capacities.
    pub fn identify(&self, device: &DeviceSerial, kind: &str, info: Option<DeviceInfo>) {
        let mut map = self.lock();
        let status = &mut map.entry(device.clone()).or_insert_with(|| Entry::new(device)).status;
        kind.clone_into(&mut status.kind);
        if info.is_some() {
            status.info = info;
        }
    }

    /// Moves the device's newest punch time forward to `at` (never back).
    pub fn last_punch(&self, device: &DeviceSerial, at: DateTime<Utc>) {
        let mut map = self.lock();
        let status = &mut map.entry(device.clone()).or_insert_with(|| Entry::new(device)).status;
        if status.last_punch.is_none_or(|known| known < at) {
            status.last_punch = Some(at);
        }
    }

    /// Adds `count` punches read from the device to its counter.
    pub fn punches_read(&self, device: &DeviceSerial, count: u64) {
        let mut map = self.lock();
        map.entry(device.clone()).or_insert_with(|| Entry::new(device)).punches_total += count;
    }

    /// Adds `count` replies accepted with a wrong checksum (ZKTeco implementations that compute it off by one).
    pub fn checksum_mismatches(&self, device: &DeviceSerial, count: u64) {
        let mut map = self.lock();
        map.entry(device.clone()).or_insert_with(|| Entry::new(device)).checksum_mismatches_total += count;
    }

    /// `(serial, replies accepted with a wrong checksum)` per device that had any, for `/metrics`.
    pub fn checksum_counters(&self) -> Vec<(DeviceSerial, u64)> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.checksum_mismatches_total > 0)
            .map(|(k, e)| (k.clone(), e.checksum_mismatches_total))
            .collect()
    }

    /// Records a failed contact: marks the device unreachable and raises (or keeps) the fault `code`.
    pub fn failure(&self, device: &DeviceSerial, now: DateTime<Utc>, code: &str, message: impl Into<String>) {
        let mut map = self.lock();
        let entry = map.entry(device.clone()).or_insert_with(|| Entry::new(device));
        entry.errors_total += 1;
        entry.status.reachable = false;
        raise(&mut entry.status.faults, code, message.into(), now);
    }

    /// Raises a fault on a device without marking it unreachable (for example an unknown push serial, wrong clock).
    pub fn fault(&self, device: &DeviceSerial, now: DateTime<Utc>, code: &str, message: impl Into<String>) {
        let mut map = self.lock();
        let entry = map.entry(device.clone()).or_insert_with(|| Entry::new(device));
        raise(&mut entry.status.faults, code, message.into(), now);
    }

    /// Drops a device from the board (a source that learned a device's real serial forgets the provisional key it
    /// reported early failures under).
    pub fn forget(&self, device: &DeviceSerial) {
        self.lock().remove(device);
    }

    /// A copy of every device's status, ordered by serial.
    pub fn snapshot(&self) -> Vec<DeviceStatus> {
        self.lock().values().map(|e| e.status.clone()).collect()
    }

    /// `(serial, errors_total, punches_total)` per device, for `/metrics`.
    pub fn counters(&self) -> Vec<(DeviceSerial, u64, u64)> {
        self.lock().iter().map(|(k, e)| (k.clone(), e.errors_total, e.punches_total)).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<DeviceSerial, Entry>> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Entry {
    fn new(device: &DeviceSerial) -> Self {
        Self {
            status: DeviceStatus::new(device.clone()),
            errors_total: 0,
            punches_total: 0,
            checksum_mismatches_total: 0,
        }
    }
}

/// Keeps one fault per code: a repeated fault keeps its first `since` and takes the newest message.
fn raise(faults: &mut Vec<Fault>, code: &str, message: String, now: DateTime<Utc>) {
    let message = protocol::envelope::truncate_text(message);
    match faults.iter_mut().find(|f| f.code == code) {
        Some(existing) => existing.message = message,
        None => faults.push(Fault { code: code.to_owned(), message, since: now }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_then_success_clears_faults_and_keeps_counts() {
        let board = DeviceStatusBoard::new();
        let dev: DeviceSerial = "A1".parse().unwrap();
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        board.register(&dev);
        assert!(!board.snapshot()[0].reachable);
        board.failure(&dev, t0, "device_unreachable", "timeout");
        board.failure(&dev, t0 + chrono::Duration::seconds(5), "device_unreachable", "refused");
        let snap = board.snapshot();
        assert_eq!(snap[0].faults.len(), 1);
        assert_eq!(snap[0].faults[0].since, t0);
        assert_eq!(snap[0].faults[0].message, "refused");
        board.success(&dev, t0, Contact { record_count: Some(10), ..Contact::default() });
        board.success(&dev, t0, Contact { user_count: Some(3), ..Contact::default() });
        let snap = board.snapshot();
        assert!(snap[0].reachable && snap[0].faults.is_empty());
        assert_eq!((snap[0].record_count, snap[0].user_count), (Some(10), Some(3)));
        assert_eq!(board.counters()[0].1, 2);
        board.forget(&dev);
        assert!(board.snapshot().is_empty());
    }

    #[test]
    fn standing_faults_keep_their_since_and_the_others_clear() {
        let board = DeviceStatusBoard::new();
        let dev: DeviceSerial = "A1".parse().unwrap();
        let t0 = DateTime::from_timestamp(1_000, 0).unwrap();
        let t1 = t0 + chrono::Duration::seconds(60);
        board.failure(&dev, t0, "unreachable", "timeout");
        board.success_with(&dev, t0, Contact::default(), &[("clock_drift", "10 min".into())]);
        board.success_with(
            &dev,
            t1,
            Contact::default(),
            &[("clock_drift", "11 min".into()), ("bad_records", "2".into())],
        );
        let faults = &board.snapshot()[0].faults;
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert_eq!(
            (faults[0].code.as_str(), faults[0].message.as_str(), faults[0].since),
            ("clock_drift", "11 min", t0)
        );
        assert_eq!((faults[1].code.as_str(), faults[1].since), ("bad_records", t1));
        board.success_with(&dev, t1, Contact::default(), &[]);
        assert!(board.snapshot()[0].faults.is_empty() && board.snapshot()[0].reachable);
    }
}
