//! A ZKTeco device simulator speaking the binary protocol over TCP and UDP, with true checksums, for tests, benches
//! and by hand (`cargo run -p system-tests --bin zk-sim`).
//!
//! It holds a deterministic set of users and records ([`data`]), answers the commands a real device answers
//! ([`device`]), pushes realtime punches at a configured rate, and injects faults on demand ([`Faults`]): a
//! connection dropped half-way through a transfer, corrupt checksums, slow answers, a wrong clock, buffered reads
//! refused (forcing the legacy path), DATA split into 1024-byte packets over TCP, the size-at-byte-0 answer, and
//! chunks answered by a single DATA packet. It also behaves like the firmware and implementations the driver must
//! tolerate: DISABLEDEVICE / ENABLEDEVICE refused, data answered as ACK_DATA, reply checksums off by one, and
//! attendance reads that return fewer records than the count says (by function code, buffered reads only, or every
//! path). It learns users and fingerprint templates written to it (USER_WRQ, DELETE_USER, the PREPARE_DATA / DATA
//! upload and SAVE_USER_TEMPLATES) in either user record size, and serves them back to reads. Tests read back what it
//! holds with [`ZkSim::records`], [`ZkSim::users`], [`ZkSim::templates`] and friends.

pub mod data;
pub mod device;
mod server;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use edge_agent::zk::records::{AttendanceRecord, DeviceUser};
use edge_agent::zk::templates::{Template, TemplateRecord};
use edge_agent::zk::users::UserRecord;
use edge_agent::zk::{RecordLayout, UserLayout};
use tokio_util::sync::CancellationToken;

use device::{Counters, DeviceState};

/// What the simulated device is.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub serial: String,
    pub platform: String,
    pub firmware: String,
    pub device_name: String,
    /// 0: no comm key.
    pub comm_key: u32,
    pub record_layout: RecordLayout,
    pub user_layout: UserLayout,
    pub users: usize,
    pub records: usize,
    pub seed: u64,
    /// When the generated log starts.
    pub start: NaiveDateTime,
    /// The zone of the device's wall clock.
    pub time_zone: Tz,
    /// The device clock's error against the true time in its zone.
    pub clock_offset_secs: i64,
    /// Realtime punches per second (0: none).
    pub realtime_rate: f64,
    /// Realtime event payload size; `None` picks the one matching the record layout (10, 12 or 32).
    pub event_size: Option<usize>,
    pub record_capacity: u32,
    pub user_capacity: u32,
    /// Length of the GET_FREE_SIZES answer (68, 80 and 92 are seen).
    pub sizes_len: usize,
    pub faults: FaultSettings,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            serial: "SIM0000000001".to_owned(),
            platform: "ZMM220_TFT".to_owned(),
            firmware: "Ver 6.60 Apr 28 2017".to_owned(),
            device_name: "K40 Sim".to_owned(),
            comm_key: 0,
            record_layout: RecordLayout::Long,
            user_layout: UserLayout::Large,
            users: 20,
            records: 100,
            seed: 1,
            start: data::default_start(),
            time_zone: chrono_tz::Asia::Kolkata,
            clock_offset_secs: 0,
            realtime_rate: 0.0,
            event_size: None,
            record_capacity: 200_000,
            user_capacity: 10_000,
            sizes_len: 92,
            faults: FaultSettings::default(),
        }
    }
}

/// Initial fault settings.
#[derive(Debug, Clone, Default)]
pub struct FaultSettings {
    pub drop_mid_transfer: u32,
    pub bad_checksum: u32,
    pub reply_delay_ms: u64,
    pub refuse_buffer_read: bool,
    pub split_data: bool,
    pub size_at_zero: bool,
    pub single_data_packet: bool,
    /// Datasets up to this many bytes are answered inline; `None`: 1000 (real devices inline about 1 KB).
    pub inline_max: Option<usize>,
    /// Answer DISABLEDEVICE and ENABLEDEVICE with this code (ACK_ERROR or ACK_UNKNOWN) instead of ACK_OK.
    pub refuse_disable: Option<u16>,
    /// Answer READ_BUFFER chunks, ATTLOG_RRQ and USERTEMP_RRQ with one ACK_DATA packet carrying the payload.
    pub ack_data: bool,
    /// Send every reply with its checksum off by one.
    pub checksum_off_by_one: bool,
    /// Buffered attendance reads return the log only with function code FCT_ATTLOG (1); with 0 (what pyzk sends) an
    /// empty dataset.
    pub attlog_by_fct: bool,
    /// Buffered attendance reads return an empty dataset; only ATTLOG_RRQ returns the log.
    pub buffered_empty: bool,
    /// Every attendance read returns at most this many records, while the count reports them all.
    pub serve_records: Option<usize>,
    /// Refuse every read of the user table (PREPARE_BUFFER for users and USERTEMP_RRQ) with ACK_ERROR.
    pub refuse_users: bool,
    /// Apply `reply_delay_ms` only after the session is open (CONNECT and AUTH answered at once): a slow device,
    /// as opposed to a silent listener.
    pub delay_after_connect: bool,
}

/// Faults, adjustable while the simulator runs. Counters are "the next N times".
#[derive(Debug, Default)]
pub struct Faults {
    /// Transfers to cut half-way (the connection drops).
    pub drop_mid_transfer: AtomicU32,
    /// DATA packets to send with a wrong checksum.
    pub bad_checksum: AtomicU32,
    /// Delay before every answer.
    pub reply_delay_ms: AtomicU64,
    /// Answer PREPARE_BUFFER with ACK_ERROR (legacy path).
    pub refuse_buffer_read: AtomicBool,
    /// Split DATA into 1024-byte packets over TCP too.
    pub split_data: AtomicBool,
    /// Announce a staged dataset's size in a 4-byte body (size at byte 0).
    pub size_at_zero: AtomicBool,
    /// Answer READ_BUFFER with one DATA packet, without PREPARE_DATA or ACK_OK.
    pub single_data_packet: AtomicBool,
    pub inline_max: AtomicUsize,
    /// Code answering DISABLEDEVICE / ENABLEDEVICE; 0: ACK_OK.
    pub refuse_disable: AtomicU32,
    pub ack_data: AtomicBool,
    pub checksum_off_by_one: AtomicBool,
    pub attlog_by_fct: AtomicBool,
    pub buffered_empty: AtomicBool,
    /// usize::MAX: every record.
    pub serve_records: AtomicUsize,
    pub refuse_users: AtomicBool,
    pub delay_after_connect: AtomicBool,
}

impl Faults {
    fn from_settings(s: &FaultSettings) -> Self {
        Self {
            drop_mid_transfer: AtomicU32::new(s.drop_mid_transfer),
            bad_checksum: AtomicU32::new(s.bad_checksum),
            reply_delay_ms: AtomicU64::new(s.reply_delay_ms),
            refuse_buffer_read: AtomicBool::new(s.refuse_buffer_read),
            split_data: AtomicBool::new(s.split_data),
            size_at_zero: AtomicBool::new(s.size_at_zero),
            single_data_packet: AtomicBool::new(s.single_data_packet),
            inline_max: AtomicUsize::new(s.inline_max.unwrap_or(1000)),
            refuse_disable: AtomicU32::new(s.refuse_disable.map_or(0, u32::from)),
            ack_data: AtomicBool::new(s.ack_data),
            checksum_off_by_one: AtomicBool::new(s.checksum_off_by_one),
            attlog_by_fct: AtomicBool::new(s.attlog_by_fct),
            buffered_empty: AtomicBool::new(s.buffered_empty),
            serve_records: AtomicUsize::new(s.serve_records.unwrap_or(usize::MAX)),
            refuse_users: AtomicBool::new(s.refuse_users),
            delay_after_connect: AtomicBool::new(s.delay_after_connect),
        }
    }
}

pub(crate) struct Shared {
    config: SimConfig,
    faults: Faults,
    state: Mutex<DeviceState>,
    /// New punches, for the sessions that registered for realtime events.
    events: tokio::sync::broadcast::Sender<AttendanceRecord>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running simulator; stops when dropped.
pub struct ZkSim {
    shared: Arc<Shared>,
    tcp: SocketAddr,
    udp: SocketAddr,
    shutdown: CancellationToken,
}

impl ZkSim {
    /// Starts on 127.0.0.1 with a free port (TCP and UDP on the same port number).
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start(config: SimConfig) -> std::io::Result<Self> {
        Self::start_on(config, "127.0.0.1:0".parse().expect("a valid address")).await
    }

    /// Starts on `addr`; port 0 picks a free one.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start_on(config: SimConfig, addr: SocketAddr) -> std::io::Result<Self> {
        let users = data::users(config.users.max(1), config.user_layout, config.record_layout, config.seed);
        let records = data::records(config.records, &users, config.record_layout, config.start, config.seed);
        let state = DeviceState::new(&config, records, users);
        let faults = Faults::from_settings(&config.faults);
        let (events, _) = tokio::sync::broadcast::channel(1024);
        let shared = Arc::new(Shared { config, faults, state: Mutex::new(state), events });
        let shutdown = CancellationToken::new();
        let (tcp, udp) = server::spawn(shared.clone(), addr, shutdown.clone()).await?;
        Ok(Self { shared, tcp, udp, shutdown })
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every record the device holds, in log order.
    pub fn records(&self) -> Vec<AttendanceRecord> {
        self.shared.state().records.clone()
    }

    pub fn users(&self) -> Vec<UserRecord> {
        self.shared.state().users.clone()
    }

    /// The user whose PIN is `pin`, if the device holds one.
    pub fn user_by_pin(&self, pin: &str) -> Option<UserRecord> {
        self.shared.state().users.iter().find(|u| u.user_id == pin).cloned()
    }

    /// Every fingerprint template the device holds, with its owner's uid.
    pub fn templates(&self) -> Vec<TemplateRecord> {
        self.shared.state().templates.clone()
    }

    /// The templates of the user with `pin`, by finger.
    pub fn templates_of(&self, pin: &str) -> Vec<Template> {
        let state = self.shared.state();
        let Some(uid) = state.users.iter().find(|u| u.user_id == pin).map(|u| u.uid) else { return Vec::new() };
        let mut out: Vec<Template> =
            state.templates.iter().filter(|t| t.uid == uid).map(|t| t.template.clone()).collect();
        out.sort_by_key(|t| t.finger);
        out
    }

    /// Enrols fingers for the user with `uid`, as a person at the terminal would.
    pub fn enroll_fingers(&self, uid: u16, fingers: &[Template]) {
        let mut state = self.shared.state();
        for template in fingers {
            state.templates.retain(|t| !(t.uid == uid && t.template.finger == template.finger));
            state.templates.push(TemplateRecord { uid, template: template.clone() });
        }
    }

    /// The PIN a record belongs to (through the user table for uid records).
    pub fn pin_of(&self, record: &AttendanceRecord) -> String {
        match &record.user {
            DeviceUser::Pin(pin) => pin.clone(),
            DeviceUser::Uid(uid) => self
                .shared
                .state()
                .users
                .iter()
                .find(|u| u.uid == *uid)
                .map_or_else(|| uid.to_string(), |u| u.user_id.clone()),
        }
    }

    /// `(PIN, local time, verify, state, work code)` of every record, the way tests compare punch sets.
    pub fn expected(&self) -> Vec<(String, NaiveDateTime, u8, u8, u32)> {
        self.records().iter().map(|r| (self.pin_of(r), r.time, r.verify, r.state, r.work_code)).collect()
    }

    /// The device's wall clock now.
    pub fn clock(&self) -> NaiveDateTime {
        self.shared.state().clock(&self.shared.config)
    }

    pub fn set_clock_offset(&self, secs: i64) {
        self.shared.state().clock_offset_secs = secs;
    }

    pub fn is_enabled(&self) -> bool {
        self.shared.state().is_enabled()
    }

    pub fn counters(&self) -> Counters {
        self.shared.state().counters.clone()
    }

    /// Makes a user punch now (stored and pushed as a realtime event), as the rate generator does. Returns the
    /// record, or `None` when the device is disabled (nobody can punch then).
    pub fn punch_now(&self) -> Option<AttendanceRecord> {
        server::punch_now(&self.shared)
    }

    /// Stores `count` new punches without pushing realtime events (as when events are lost), returning them.
    pub fn add_records_silently(&self, count: usize) -> Vec<AttendanceRecord> {
        let mut state = self.shared.state();
        let config = &self.shared.config;
        let mut rng = data::Rng::new(config.seed ^ 0x51_1e47 ^ state.records.len() as u64);
        let mut time = state.records.last().map_or(config.start, |r| r.time);
        let mut added = Vec::with_capacity(count);
        for _ in 0..count {
            time += chrono::Duration::seconds(1 + rng.below(30) as i64);
            let user = state.users[rng.below(state.users.len() as u64) as usize].clone();
            added.push(data::record_for(&user, config.record_layout, time, &mut rng));
        }
        state.records.extend(added.iter().cloned());
        added
    }

    /// Enrols a new user (the next uid, PIN `1000 + 3 * uid` as [`data::users`] numbers them) who punches from now
    /// on like the others. Returns it.
    pub fn add_user(&self, name: &str) -> UserRecord {
        let mut state = self.shared.state();
        let uid = state.users.iter().map(|u| u.uid).max().unwrap_or(0).saturating_add(1);
        let user = UserRecord {
            uid,
            privilege: 0,
            password: String::new(),
            name: name.to_owned(),
            card: 0,
            group: "1".to_owned(),
            user_id: (1000 + 3 * u32::from(uid)).to_string(),
        };
        state.users.push(user.clone());
        user
    }

    /// Stops serving; connections are closed.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for ZkSim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Reads the current value of a fault counter (tests check that faults were consumed).
pub fn remaining(counter: &AtomicU32) -> u32 {
    counter.load(Ordering::SeqCst)
}
