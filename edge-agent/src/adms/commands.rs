//! The per-device command queue of the push receiver.
//!
//! A push device cannot be called; it asks for work on `GET /iclock/getrequest` every `Delay` seconds. Commands wait
//! here until then, are handed out as `C:<id>:<command>` lines, and their results come back on `/iclock/devicecmd`
//! as `ID=<id>&Return=<code>&CMD=<command>`; the result is recorded against the command and logged.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDateTime, Utc};
use protocol::DeviceSerial;

use super::attlog::CommandReturn;

/// Most commands handed out on one `getrequest`.
pub const MAX_PER_POLL: usize = 16;
/// Most commands waiting (or waiting for a result) per device; older results are forgotten past [`MAX_RESULTS`].
pub const MAX_PENDING: usize = 256;
/// Results kept per device.
pub const MAX_RESULTS: usize = 100;

/// What the agent can ask a push device to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmsCommand {
    /// Set the device clock to this local wall-clock time.
    SetTime(NaiveDateTime),
    /// Send the attendance log again from `from` to `until` (local times); the rows arrive as ordinary `ATTLOG`
    /// posts, and the buffer's key index drops the ones it already has.
    ReuploadSince { from: NaiveDateTime, until: NaiveDateTime },
    /// Report the device's identity and counts.
    Info,
    /// Look for new data and upload it now.
    Check,
    /// Add or replace a user (`DATA UPDATE USERINFO`); a privilege or card central does not know is left out of the
    /// command, so the device keeps its own.
    UpdateUser { pin: String, name: String, privilege: Option<u8>, card: Option<u32> },
    /// Add or replace one fingerprint template of a user (`DATA UPDATE FINGERTMP`): finger 0-9, the valid flag
    /// (1 ordinary, 3 duress) and the template's bytes, sent in base64.
    FingerTemplate { pin: String, finger: u8, valid: u8, template: Vec<u8> },
    /// Delete a user and their templates (`DATA DELETE USERINFO`).
    DeleteUser { pin: String },
}

impl AdmsCommand {
    /// The command text sent after `C:<id>:`.
    pub fn text(&self) -> String {
        let fmt = |t: &NaiveDateTime| t.format("%Y-%m-%d %H:%M:%S").to_string();
        match self {
            // The DateTime option takes the same packed value as the binary protocol's time fields.
            Self::SetTime(t) => format!("SET OPTIONS DateTime={}", crate::zk::time::encode(*t)),
            Self::ReuploadSince { from, until } => {
                format!("DATA QUERY ATTLOG StartTime={}\tEndTime={}", fmt(from), fmt(until))
            }
            Self::Info => "INFO".to_owned(),
            Self::Check => "CHECK".to_owned(),
            Self::UpdateUser { pin, name, privilege, card } => {
                let mut text = format!("DATA UPDATE USERINFO PIN={pin}\tName={name}");
                if let Some(privilege) = privilege {
                    text.push_str(&format!("\tPri={privilege}"));
                }
                if let Some(card) = card {
                    text.push_str(&format!("\tCard={card}"));
                }
                text
            }
            Self::FingerTemplate { pin, finger, valid, template } => {
                use base64::Engine as _;
                // Size is the length of the base64 text (REFERENCE.md, "Fingerprint templates to push terminals").
                let encoded = base64::engine::general_purpose::STANDARD.encode(template);
                format!(
                    "DATA UPDATE FINGERTMP PIN={pin}\tFID={finger}\tSize={}\tValid={valid}\tTMP={encoded}",
                    encoded.len()
                )
            }
            Self::DeleteUser { pin } => format!("DATA DELETE USERINFO PIN={pin}"),
        }
    }
}

/// A command's recorded result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub id: u64,
    pub command: AdmsCommand,
    /// The device's return code; 0 is success.
    pub code: i64,
    pub finished_at: DateTime<Utc>,
}

/// Why a command was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("{0} already has {MAX_PENDING} commands waiting")]
    Full(DeviceSerial),
    #[error("{0} is not a push device of this agent")]
    UnknownDevice(DeviceSerial),
}

#[derive(Default)]
struct DeviceQueue {
    pending: VecDeque<(u64, AdmsCommand)>,
    sent: BTreeMap<u64, AdmsCommand>,
    results: VecDeque<CommandOutcome>,
}

/// The queues of every push device. Shared between the HTTP handlers and whoever queues commands.
#[derive(Default)]
pub struct CommandQueue {
    devices: Mutex<HashMap<DeviceSerial, DeviceQueue>>,
    next_id: AtomicU64,
    /// When set, only these devices take commands.
    known: std::sync::RwLock<Option<HashSet<DeviceSerial>>>,
}

impl CommandQueue {
    /// A queue taking commands for any serial (tests).
    pub fn new() -> Self {
        // Ids start from the clock so a restarted agent does not reuse the ids a device may still report on.
        let start = u64::try_from(Utc::now().timestamp()).unwrap_or(1);
        Self { devices: Mutex::default(), next_id: AtomicU64::new(start), known: std::sync::RwLock::new(None) }
    }

    /// A queue taking commands only for `devices` (the agent's configured push devices).
    pub fn for_devices(devices: impl IntoIterator<Item = DeviceSerial>) -> Self {
        let queue = Self::new();
        queue.set_known(devices);
        queue
    }

    /// From now on, only `devices` take commands (a managed configuration changed the push devices); the queues of
    /// devices no longer known are dropped.
    pub fn set_known(&self, devices: impl IntoIterator<Item = DeviceSerial>) {
        let known: HashSet<DeviceSerial> = devices.into_iter().collect();
        self.lock().retain(|serial, _| known.contains(serial));
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = Some(known);
    }

    /// Queues `command` for `device`; returns its id.
    ///
    /// # Errors
    /// [`QueueError::Full`] when too many commands wait.
    pub fn enqueue(&self, device: &DeviceSerial, command: AdmsCommand) -> Result<u64, QueueError> {
        let unknown =
            self.known.read().unwrap_or_else(|p| p.into_inner()).as_ref().is_some_and(|k| !k.contains(device));
        if unknown {
            return Err(QueueError::UnknownDevice(device.clone()));
        }
        let mut devices = self.lock();
        let queue = devices.entry(device.clone()).or_default();
        if queue.pending.len() + queue.sent.len() >= MAX_PENDING {
            return Err(QueueError::Full(device.clone()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        tracing::info!(device = %device, id, command = %command.text(), "push command queued");
        queue.pending.push_back((id, command));
        Ok(id)
    }

    /// Hands out up to [`MAX_PER_POLL`] waiting commands as `(id, text)`; they then wait for their results.
    pub fn take(&self, device: &DeviceSerial) -> Vec<(u64, String)> {
        let mut devices = self.lock();
        let Some(queue) = devices.get_mut(device) else { return Vec::new() };
        let count = queue.pending.len().min(MAX_PER_POLL);
        let mut out = Vec::with_capacity(count);
        for (id, command) in queue.pending.drain(..count) {
            out.push((id, command.text()));
            queue.sent.insert(id, command);
        }
        out
    }

    /// Records a result the device reported; false when no such command was sent to it.
    pub fn record(&self, device: &DeviceSerial, result: &CommandReturn, now: DateTime<Utc>) -> bool {
        let mut devices = self.lock();
        let Some(queue) = devices.get_mut(device) else { return false };
        let Some(command) = queue.sent.remove(&result.id) else { return false };
        if result.code == 0 {
            tracing::info!(device = %device, id = result.id, command = %result.command, "push command done");
        } else {
            tracing::warn!(device = %device, id = result.id, command = %result.command, code = result.code,
                "push command failed on the device");
        }
        if queue.results.len() >= MAX_RESULTS {
            queue.results.pop_front();
        }
        queue.results.push_back(CommandOutcome { id: result.id, command, code: result.code, finished_at: now });
        true
    }

    /// The recorded result of command `id` of `device`, once the device reported it.
    pub fn outcome(&self, device: &DeviceSerial, id: u64) -> Option<CommandOutcome> {
        self.lock().get(device).and_then(|q| q.results.iter().find(|r| r.id == id).cloned())
    }

    /// The recorded results for `device`, oldest first.
    pub fn results(&self, device: &DeviceSerial) -> Vec<CommandOutcome> {
        self.lock().get(device).map(|q| q.results.iter().cloned().collect()).unwrap_or_default()
    }

    /// Commands waiting to be handed out or for a result.
    pub fn outstanding(&self, device: &DeviceSerial) -> usize {
        self.lock().get(device).map_or(0, |q| q.pending.len() + q.sent.len())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceSerial, DeviceQueue>> {
        self.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_go_out_once_and_results_are_matched_by_id() {
        let queue = CommandQueue::new();
        let dev: DeviceSerial = "OIN7030067".parse().unwrap();
        let other: DeviceSerial = "OTHER".parse().unwrap();
        let t = NaiveDateTime::parse_from_str("2026-03-02 09:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let info = queue.enqueue(&dev, AdmsCommand::Info).unwrap();
        let reload = queue.enqueue(&dev, AdmsCommand::ReuploadSince { from: t, until: t }).unwrap();
        let taken = queue.take(&dev);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0], (info, "INFO".to_owned()));
        assert_eq!(taken[1].1, "DATA QUERY ATTLOG StartTime=2026-03-02 09:00:00\tEndTime=2026-03-02 09:00:00");
        assert!(queue.take(&dev).is_empty(), "handed out once");
        assert_eq!(queue.outstanding(&dev), 2);
        let now = Utc::now();
        assert!(!queue.record(&other, &CommandReturn { id: info, code: 0, command: "INFO".into() }, now));
        assert!(queue.record(&dev, &CommandReturn { id: reload, code: -1, command: "DATA".into() }, now));
        assert!(!queue.record(&dev, &CommandReturn { id: reload, code: 0, command: "DATA".into() }, now));
        let results = queue.results(&dev);
        assert_eq!(results.len(), 1);
        assert_eq!((results[0].id, results[0].code), (reload, -1));
        assert_eq!(queue.outstanding(&dev), 1);
        assert!(AdmsCommand::SetTime(t).text().starts_with("SET OPTIONS DateTime="));
        let known =
            AdmsCommand::UpdateUser { pin: "7".into(), name: "Asha".into(), privilege: Some(14), card: Some(55) };
        assert_eq!(known.text(), "DATA UPDATE USERINFO PIN=7\tName=Asha\tPri=14\tCard=55");
        let unknown = AdmsCommand::UpdateUser { pin: "7".into(), name: "Asha".into(), privilege: None, card: None };
        assert_eq!(unknown.text(), "DATA UPDATE USERINFO PIN=7\tName=Asha", "the device keeps what is left out");
        let finger = AdmsCommand::FingerTemplate { pin: "7".into(), finger: 6, valid: 1, template: vec![0, 1, 2, 250] };
        assert_eq!(finger.text(), "DATA UPDATE FINGERTMP PIN=7\tFID=6\tSize=8\tValid=1\tTMP=AAEC+g==");
        for _ in 0..MAX_PENDING - 1 {
            queue.enqueue(&dev, AdmsCommand::Info).unwrap();
        }
        assert_eq!(queue.enqueue(&dev, AdmsCommand::Info), Err(QueueError::Full(dev.clone())));
        let only = CommandQueue::for_devices([dev.clone()]);
        assert_eq!(only.enqueue(&other, AdmsCommand::Info), Err(QueueError::UnknownDevice(other.clone())));
        assert!(only.enqueue(&dev, AdmsCommand::Info).is_ok());
    }
}
