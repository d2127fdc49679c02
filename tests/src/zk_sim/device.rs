//! The simulated device's state and its answers to each command, without I/O: a packet in, the packets out (and
//! whether to drop the connection). Faults are applied here so both transports get them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use chrono::{NaiveDateTime, Utc};
use edge_agent::zk::buffer::{self, prepare_data_body};
use edge_agent::zk::packet::{Framing, Packet};
use edge_agent::zk::records::{encode_attendance, AttendanceRecord};
use edge_agent::zk::sizes::DeviceSizes;
use edge_agent::zk::templates::{self, TemplateRecord};
use edge_agent::zk::users::{decode_user, encode_users, UserLayout, UserRecord};
use edge_agent::zk::{auth, command, options, time};

use super::{Faults, SimConfig};

/// Bytes per DATA packet when the device splits a transfer (UDP always; TCP with the split fault).
pub const SPLIT_PACKET: usize = 1024;

/// What the transport must do with an answer.
#[derive(Debug)]
pub enum Out {
    Packet(Packet),
    /// A packet with a wrong checksum.
    Corrupt(Packet),
    /// The first half of a packet's bytes (then the connection drops).
    Half(Packet),
    /// Close the connection (TCP) or forget the session (UDP).
    Drop,
}

/// Everything the device holds, shared by its sessions.
#[derive(Debug)]
pub struct DeviceState {
    pub records: Vec<AttendanceRecord>,
    pub users: Vec<UserRecord>,
    /// Fingerprint templates by uid, learned from uploads (or enrolled by a test).
    pub templates: Vec<TemplateRecord>,
    pub clock_offset_secs: i64,
    next_session: u16,
    /// Sessions currently holding the device disabled.
    pub disabled_by: HashMap<u16, ()>,
    pub counters: Counters,
}

/// What happened, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub sessions: u64,
    pub auth_failures: u64,
    pub disables: u64,
    pub enables: u64,
    pub clears: u64,
    pub set_times: u64,
    pub exits: u64,
    pub events_sent: u64,
    pub events_acked: u64,
    pub legacy_reads: u64,
    pub chunk_reads: u64,
    pub drops: u64,
    /// Sessions that ended (connection gone) while they still held the device disabled.
    pub ended_disabled: u64,
    /// DISABLEDEVICE / ENABLEDEVICE answered with an error (the refuse_disable switch).
    pub disables_refused: u64,
    /// The function code of every buffered attendance read (PREPARE_BUFFER for ATTLOG_RRQ), in order.
    pub attendance_fcts: Vec<u32>,
    /// Users written (USER_WRQ), users deleted (DELETE_USER), user-and-template uploads stored.
    pub user_writes: u64,
    pub user_deletes: u64,
    pub template_uploads: u64,
}

/// One client's session.
#[derive(Debug, Default)]
pub struct Session {
    pub id: u16,
    pub authed: bool,
    pub events: bool,
    staged: Option<Vec<u8>>,
    /// An upload in progress: the size PREPARE_DATA announced and the DATA received so far.
    upload: Option<(usize, Vec<u8>)>,
}

impl DeviceState {
    pub fn new(config: &SimConfig, records: Vec<AttendanceRecord>, users: Vec<UserRecord>) -> Self {
        Self {
            records,
            users,
            templates: Vec::new(),
            clock_offset_secs: config.clock_offset_secs,
            next_session: 0x45cf,
            disabled_by: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The device's wall clock now.
    pub fn clock(&self, config: &SimConfig) -> NaiveDateTime {
        Utc::now().with_timezone(&config.time_zone).naive_local() + chrono::Duration::seconds(self.clock_offset_secs)
    }

    pub fn is_enabled(&self) -> bool {
        self.disabled_by.is_empty()
    }

    /// A session's connection is gone; a device re-enables itself when the session that disabled it leaves.
    pub fn end_session(&mut self, session: &Session) {
        if self.disabled_by.remove(&session.id).is_some() {
            self.counters.ended_disabled += 1;
        }
    }

    fn sizes(&self, config: &SimConfig) -> Vec<u8> {
        let records = self.records.len() as u32;
        DeviceSizes {
            users: Some(self.users.len() as u32),
            fingerprints: Some(self.templates.len() as u32),
            records: Some(records),
            op_log: Some(12),
            admins: Some(1),
            passwords: Some(0),
            fingerprint_capacity: Some(3_000),
            user_capacity: Some(config.user_capacity),
            record_capacity: Some(config.record_capacity),
            fingerprints_remaining: Some(3_000 - self.templates.len().min(3_000) as u32),
            users_remaining: Some(config.user_capacity.saturating_sub(self.users.len() as u32)),
            records_remaining: Some(config.record_capacity.saturating_sub(records)),
            faces: Some(0),
            face_capacity: Some(400),
        }
        .encode(config.sizes_len)
    }

    /// Answers one packet from a client.
    pub fn handle(
        &mut self,
        config: &SimConfig,
        faults: &Faults,
        framing: Framing,
        session: &mut Session,
        p: Packet,
    ) -> Vec<Out> {
        let reply = |code: u16, data: Vec<u8>| Out::Packet(Packet::new(code, session.id, p.reply_id, data));
        match p.command {
            command::CONNECT => {
                session.id = self.next_session;
                self.next_session = self.next_session.wrapping_add(1);
                self.counters.sessions += 1;
                session.authed = config.comm_key == 0;
                let code = if session.authed { command::ACK_OK } else { command::ACK_UNAUTH };
                return vec![Out::Packet(Packet::new(code, session.id, p.reply_id, Vec::new()))];
            }
            command::AUTH => {
                session.authed = auth::verify(&p.data, config.comm_key, session.id);
                if !session.authed {
                    self.counters.auth_failures += 1;
                }
                return vec![reply(if session.authed { command::ACK_OK } else { command::ACK_UNAUTH }, Vec::new())];
            }
            command::EXIT => {
                self.counters.exits += 1;
                self.end_session(session);
                return vec![reply(command::ACK_OK, Vec::new()), Out::Drop];
            }
            command::ACK_OK => {
                // A client acknowledging a realtime event: no answer.
                self.counters.events_acked += 1;
                return Vec::new();
            }
            _ if !session.authed => return vec![reply(command::ACK_UNAUTH, Vec::new())],
            _ => {}
        }
        match p.command {
            command::DISABLE_DEVICE | command::ENABLE_DEVICE if faults.refuse_disable.load(Ordering::SeqCst) != 0 => {
                self.counters.disables_refused += 1;
                let code = u16::try_from(faults.refuse_disable.load(Ordering::SeqCst)).unwrap_or(command::ACK_ERROR);
                vec![reply(code, Vec::new())]
            }
            command::DISABLE_DEVICE => {
                self.disabled_by.insert(session.id, ());
                self.counters.disables += 1;
                vec![reply(command::ACK_OK, Vec::new())]
            }
            command::ENABLE_DEVICE => {
                self.disabled_by.remove(&session.id);
                self.counters.enables += 1;
                vec![reply(command::ACK_OK, Vec::new())]
            }
            command::REFRESH_DATA
            | command::REFRESH_OPTION
            | command::OPTIONS_WRQ
            | command::CANCEL_CAPTURE
            | command::START_VERIFY => vec![reply(command::ACK_OK, Vec::new())],
            command::GET_VERSION => vec![reply(command::ACK_OK, format!("{}\0", config.firmware).into_bytes())],
            command::OPTIONS_RRQ => {
                let key = options::requested_key(&p.data);
                let value = match key.as_str() {
                    options::SERIAL_NUMBER => Some(config.serial.as_str()),
                    options::PLATFORM => Some(config.platform.as_str()),
                    options::DEVICE_NAME => Some(config.device_name.as_str()),
                    options::OEM_VENDOR => Some("ZKTeco Inc."),
                    "~ZKFPVersion" => Some("10"),
                    _ => None,
                };
                match value {
                    Some(v) => vec![reply(command::ACK_OK, options::reply(&key, v))],
                    None => vec![reply(command::ACK_ERROR, Vec::new())],
                }
            }
            command::GET_FREE_SIZES => vec![reply(command::ACK_OK, self.sizes(config))],
            command::GET_TIME => vec![reply(command::ACK_OK, time::encode(self.clock(config)).to_le_bytes().to_vec())],
            command::SET_TIME => match p.data.first_chunk::<4>().map(|b| time::decode(u32::from_le_bytes(*b))) {
                Some(Ok(t)) => {
                    let now = Utc::now().with_timezone(&config.time_zone).naive_local();
                    self.clock_offset_secs = (t - now).num_seconds();
                    self.counters.set_times += 1;
                    vec![reply(command::ACK_OK, Vec::new())]
                }
                _ => vec![reply(command::ACK_ERROR, Vec::new())],
            },
            command::REG_EVENT => {
                let flags = p.data.first_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b));
                session.events = flags & u32::from(command::EF_ATTLOG) != 0;
                vec![reply(command::ACK_OK, Vec::new())]
            }
            command::CLEAR_ATTLOG => {
                self.records.clear();
                self.counters.clears += 1;
                vec![reply(command::ACK_OK, Vec::new())]
            }
            command::PREPARE_BUFFER => {
                if faults.refuse_buffer_read.load(Ordering::SeqCst) {
                    return vec![reply(command::ACK_ERROR, Vec::new())];
                }
                let request = buffer::parse_prepare_buffer_request(&p.data);
                if let Some((command::ATTLOG_RRQ, fct)) = request {
                    self.counters.attendance_fcts.push(fct);
                }
                let Some(dataset) = request.and_then(|t| self.dataset(config, faults, t, true)) else {
                    return vec![reply(command::ACK_ERROR, Vec::new())];
                };
                if dataset.len() <= faults.inline_max.load(Ordering::SeqCst) {
                    return vec![reply(command::DATA, dataset)];
                }
                let body = buffer::staged_reply(dataset.len(), faults.size_at_zero.load(Ordering::SeqCst));
                session.staged = Some(dataset);
                vec![reply(command::ACK_OK, body)]
            }
            command::READ_BUFFER => {
                let Some(staged) = &session.staged else { return vec![reply(command::ACK_ERROR, Vec::new())] };
                let range = buffer::parse_read_buffer_request(&p.data)
                    .filter(|(start, size)| start.checked_add(*size).is_some_and(|end| end <= staged.len()));
                let Some((start, size)) = range else { return vec![reply(command::ACK_ERROR, Vec::new())] };
                self.counters.chunk_reads += 1;
                let past_middle = start + size > staged.len() / 2;
                let chunk = staged[start..start + size].to_vec();
                if faults.ack_data.load(Ordering::SeqCst) {
                    return vec![reply(command::ACK_DATA, chunk)];
                }
                let single = faults.single_data_packet.load(Ordering::SeqCst);
                self.transfer(faults, framing, session.id, p.reply_id, chunk, past_middle, single)
            }
            command::FREE_DATA => {
                session.staged = None;
                session.upload = None;
                vec![reply(command::ACK_OK, Vec::new())]
            }
            command::USER_WRQ => match UserLayout::from_size(p.data.len()) {
                Some(layout) => {
                    self.store_user(decode_user(layout, &p.data));
                    self.counters.user_writes += 1;
                    vec![reply(command::ACK_OK, Vec::new())]
                }
                None => vec![reply(command::ACK_ERROR, Vec::new())],
            },
            command::DELETE_USER => {
                let uid = p.data.first_chunk::<2>().map(|b| u16::from_le_bytes(*b));
                match uid.filter(|uid| self.users.iter().any(|u| u.uid == *uid)) {
                    Some(uid) => {
                        self.users.retain(|u| u.uid != uid);
                        self.templates.retain(|t| t.uid != uid);
                        self.counters.user_deletes += 1;
                        vec![reply(command::ACK_OK, Vec::new())]
                    }
                    None => vec![reply(command::ACK_ERROR, Vec::new())],
                }
            }
            command::PREPARE_DATA => {
                let size = p.data.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
                match size.filter(|s| *s <= templates::MAX_UPLOAD_LEN) {
                    Some(size) => {
                        session.upload = Some((size, Vec::with_capacity(size)));
                        vec![reply(command::ACK_OK, Vec::new())]
                    }
                    None => vec![reply(command::ACK_ERROR, Vec::new())],
                }
            }
            command::DATA => match &mut session.upload {
                Some((size, data)) if data.len() + p.data.len() <= *size => {
                    data.extend_from_slice(&p.data);
                    vec![reply(command::ACK_OK, Vec::new())]
                }
                _ => vec![reply(command::ACK_ERROR, Vec::new())],
            },
            command::SAVE_USER_TEMPLATES => {
                let upload = session.upload.take().filter(|(size, data)| *size == data.len());
                let decoded = upload
                    .filter(|_| p.data == templates::SAVE_USER_TEMPLATES_BODY)
                    .and_then(|(_, data)| templates::decode_upload(&data).ok());
                match decoded {
                    Some((_, user, fingers)) => {
                        let uid = user.uid;
                        self.store_user(user);
                        for template in fingers {
                            self.templates.retain(|t| !(t.uid == uid && t.template.finger == template.finger));
                            self.templates.push(TemplateRecord { uid, template });
                        }
                        self.counters.template_uploads += 1;
                        vec![reply(command::ACK_OK, Vec::new())]
                    }
                    None => vec![reply(command::ACK_ERROR, Vec::new())],
                }
            }
            command::ATTLOG_RRQ | command::USERTEMP_RRQ => {
                let table = if p.command == command::ATTLOG_RRQ {
                    (command::ATTLOG_RRQ, 0)
                } else {
                    (command::USERTEMP_RRQ, command::FCT_USER)
                };
                self.counters.legacy_reads += 1;
                let Some(dataset) = self.dataset(config, faults, table, false) else {
                    return vec![reply(command::ACK_ERROR, Vec::new())];
                };
                if faults.ack_data.load(Ordering::SeqCst) {
                    return vec![reply(command::ACK_DATA, dataset)];
                }
                if dataset.len() <= faults.inline_max.load(Ordering::SeqCst) {
                    return vec![reply(command::DATA, dataset)];
                }
                self.transfer(faults, framing, session.id, p.reply_id, dataset, true, false)
            }
            _ => vec![reply(command::ACK_UNKNOWN, Vec::new())],
        }
    }

    /// The dataset of a table; `buffered` for PREPARE_BUFFER (else the legacy request), where the short-read
    /// switches apply.
    fn dataset(
        &self,
        config: &SimConfig,
        faults: &Faults,
        (table, fct): (u16, u32),
        buffered: bool,
    ) -> Option<Vec<u8>> {
        match (table, fct) {
            (command::ATTLOG_RRQ, _) => {
                let empty = buffered
                    && (faults.buffered_empty.load(Ordering::SeqCst)
                        || (faults.attlog_by_fct.load(Ordering::SeqCst) && fct != command::FCT_ATTLOG));
                let served =
                    if empty { 0 } else { faults.serve_records.load(Ordering::SeqCst).min(self.records.len()) };
                Some(encode_attendance(config.record_layout, &self.records[..served]))
            }
            (command::USERTEMP_RRQ, _) if faults.refuse_users.load(Ordering::SeqCst) => None,
            (command::USERTEMP_RRQ, command::FCT_USER) => Some(encode_users(config.user_layout, &self.users)),
            (command::DB_RRQ, command::FCT_FINGERTMP) => Some(templates::encode_templates(&self.templates)),
            _ => None,
        }
    }

    /// Adds a user, or replaces the one with its uid (as a device keys its table by uid), keeping uid order.
    pub fn store_user(&mut self, user: UserRecord) {
        match self.users.iter_mut().find(|u| u.uid == user.uid) {
            Some(slot) => *slot = user,
            None => {
                let at = self.users.partition_point(|u| u.uid < user.uid);
                self.users.insert(at, user);
            }
        }
    }

    /// PREPARE_DATA, DATA packet(s), ACK_OK under one reply id, with the transfer faults applied.
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        faults: &Faults,
        framing: Framing,
        session: u16,
        reply_id: u16,
        data: Vec<u8>,
        may_drop: bool,
        single: bool,
    ) -> Vec<Out> {
        let packet = |code: u16, data: Vec<u8>| Packet::new(code, session, reply_id, data);
        let split = framing == Framing::Udp || faults.split_data.load(Ordering::SeqCst);
        let drop = may_drop && take_one(&faults.drop_mid_transfer);
        let mut out = Vec::new();
        if !single {
            out.push(Out::Packet(packet(command::PREPARE_DATA, prepare_data_body(data.len(), SPLIT_PACKET))));
        }
        let pieces: Vec<Vec<u8>> =
            if split && !single { data.chunks(SPLIT_PACKET).map(<[u8]>::to_vec).collect() } else { vec![data] };
        let half = pieces.len() / 2;
        for (i, piece) in pieces.into_iter().enumerate() {
            let p = packet(command::DATA, piece);
            if drop && i == half {
                self.counters.drops += 1;
                out.push(Out::Half(p));
                out.push(Out::Drop);
                return out;
            }
            out.push(if take_one(&faults.bad_checksum) { Out::Corrupt(p) } else { Out::Packet(p) });
        }
        if !single {
            out.push(Out::Packet(packet(command::ACK_OK, Vec::new())));
        }
        out
    }
}

/// Decrements a fault counter if it is positive; true when it was.
fn take_one(counter: &std::sync::atomic::AtomicU32) -> bool {
    counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
}
