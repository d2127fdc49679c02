//! The bulk read on [`ZkClient`]: PREPARE_BUFFER, READ_BUFFER chunks (each retried a few times when a packet is
//! corrupt or missing), FREE_DATA; the inline answer; and the legacy requests for devices that refuse buffered reads.

use std::collections::HashMap;

use tracing::{debug, info, warn};

use super::buffer::{self, BufferError, BufferReply, ChunkAssembler, ChunkProgress};
use super::client::{ClientError, ZkClient};
use super::command;
use super::records::{self, AttendanceLog, DeviceUser, RecordLayout};
use super::sizes::DeviceSizes;
use super::transport::TransportKind;
use super::users::{self, UserRecord};

/// Attempts per chunk before the read fails.
const CHUNK_ATTEMPTS: u32 = 3;

/// The tables a bulk read fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Attendance,
    Users,
    /// Fingerprint templates (DB_RRQ with FCT_FINGERTMP); no legacy request is known for it.
    Templates,
}

impl Table {
    fn prepare_buffer_body(self, fct: u32) -> Vec<u8> {
        match self {
            Self::Attendance => buffer::prepare_buffer_request(command::ATTLOG_RRQ, fct, 0),
            Self::Users => buffer::prepare_buffer_request(command::USERTEMP_RRQ, fct, 0),
            Self::Templates => buffer::prepare_buffer_request(command::DB_RRQ, fct, 0),
        }
    }

    /// The function code pyzk and the vendor SDK send.
    fn default_fct(self) -> u32 {
        match self {
            Self::Attendance => 0,
            Self::Users => command::FCT_USER,
            Self::Templates => command::FCT_FINGERTMP,
        }
    }

    fn legacy_request(self) -> Option<(u16, Vec<u8>)> {
        match self {
            Self::Attendance => Some((command::ATTLOG_RRQ, Vec::new())),
            Self::Users => Some((command::USERTEMP_RRQ, vec![command::FCT_USER as u8])),
            Self::Templates => None,
        }
    }
}

/// How a table was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReadPath {
    /// PREPARE_BUFFER / READ_BUFFER (or its inline answer) with this function code.
    Buffered { fct: u32 },
    /// The legacy request (ATTLOG_RRQ, USERTEMP_RRQ).
    Legacy,
}

impl ReadPath {
    /// The paths to the attendance log, in the order tried when one comes back short: the usual buffered read, the
    /// buffered read with the other function code, the legacy request.
    pub const ATTENDANCE: [ReadPath; 3] =
        [ReadPath::Buffered { fct: 0 }, ReadPath::Buffered { fct: command::FCT_ATTLOG }, ReadPath::Legacy];
}

impl std::fmt::Display for ReadPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Buffered { fct } => write!(f, "buffered read (function code {fct})"),
            Self::Legacy => f.write_str("ATTLOG_RRQ"),
        }
    }
}

/// The device reports more records than any read path returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountMismatch {
    /// The record count from GET_FREE_SIZES.
    pub reported: u32,
    /// Records kept (the most any path returned).
    pub read: usize,
    /// Each path tried, with the records it returned or why it failed.
    pub tried: Vec<(ReadPath, Result<usize, String>)>,
}

impl std::fmt::Display for CountMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the device reports {} records but the read returned {}", self.reported, self.read)?;
        let tried: Vec<String> = self
            .tried
            .iter()
            .map(|(path, outcome)| match outcome {
                Ok(n) => format!("{path}: {n}"),
                Err(e) => format!("{path}: failed ({e})"),
            })
            .collect();
        write!(f, " (tried {}); the {} read are kept", tried.join(", "), self.read)
    }
}

/// What reading the attendance log brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceRead {
    pub log: AttendanceLog,
    /// The path the kept log came by.
    pub path: ReadPath,
    /// Set when every path returned fewer records than the device reports.
    pub mismatch: Option<CountMismatch>,
}

/// Everything one read of a device's log brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    pub sizes: DeviceSizes,
    pub log: AttendanceLog,
    /// The path the log came by (pass it back as the next read's first try).
    pub path: ReadPath,
    /// Set when the device reports more records than any read path returned.
    pub mismatch: Option<CountMismatch>,
    /// Read only when some record names its user by uid (the 8-byte layout).
    pub users: Option<Vec<UserRecord>>,
}

impl LogSnapshot {
    /// uid -> PIN, from the users read with the log.
    pub fn pin_table(&self) -> HashMap<u16, String> {
        pin_table(self.users.as_deref().unwrap_or_default())
    }
}

/// uid -> PIN.
pub fn pin_table(users: &[UserRecord]) -> HashMap<u16, String> {
    users.iter().filter(|u| !u.user_id.is_empty()).map(|u| (u.uid, u.user_id.clone())).collect()
}

impl ZkClient {
    /// Fetches a whole table's dataset (the u32 length and the records) by the buffered read, or by the legacy
    /// request when the device refuses buffered reads.
    ///
    /// # Errors
    /// On link failures, timeouts, a chunk that stays corrupt after retries, or limits exceeded.
    pub async fn read_dataset(&mut self, table: Table) -> Result<Vec<u8>, ClientError> {
        self.read_dataset_by(table, ReadPath::Buffered { fct: table.default_fct() }, true).await.map(|(d, _)| d)
    }

    /// Fetches a dataset by `path`; a refused buffered read falls back to the legacy request when `fallback`.
    /// Returns the dataset and the path it came by.
    async fn read_dataset_by(
        &mut self,
        table: Table,
        path: ReadPath,
        fallback: bool,
    ) -> Result<(Vec<u8>, ReadPath), ClientError> {
        let ReadPath::Buffered { fct } = path else {
            return Ok((self.read_legacy(table).await?, ReadPath::Legacy));
        };
        let reply = self.request(command::PREPARE_BUFFER, &table.prepare_buffer_body(fct)).await?;
        match buffer::parse_prepare_buffer_reply(reply) {
            Ok(BufferReply::Inline(dataset)) => Ok((dataset, path)),
            Ok(BufferReply::Staged(size)) => {
                let max_chunk = match self.transport() {
                    TransportKind::Tcp => buffer::MAX_CHUNK_TCP,
                    TransportKind::Udp => buffer::MAX_CHUNK_UDP,
                };
                let mut dataset = Vec::with_capacity(size);
                for (start, len) in buffer::chunks(size, max_chunk) {
                    dataset.extend_from_slice(&self.read_chunk(start, len).await?);
                }
                if let Err(e) = self.request_ok(command::FREE_DATA, &[]).await {
                    debug!(error = %e, "FREE_DATA failed after a complete read");
                }
                Ok((dataset, path))
            }
            Err(BufferError::Refused { code, .. }) if fallback && table.legacy_request().is_some() => {
                debug!(?table, refused = command::name(code), "buffered read refused; using the legacy request");
                Ok((self.read_legacy(table).await?, ReadPath::Legacy))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The legacy request, answered like one chunk holding the whole dataset.
    async fn read_legacy(&mut self, table: Table) -> Result<Vec<u8>, ClientError> {
        let Some((request, body)) = table.legacy_request() else {
            return Err(ClientError::Refused { command: "PREPARE_BUFFER", code: command::ACK_ERROR });
        };
        let reply_id = self.send(request, &body).await?;
        self.transfer(command::name(request), reply_id, buffer::MAX_DATASET_LEN).await
    }

    /// One READ_BUFFER chunk, retried when a packet was corrupt or missing. The failure after the last try names
    /// the number of tries (and is the only one reported).
    async fn read_chunk(&mut self, start: usize, len: usize) -> Result<Vec<u8>, ClientError> {
        let mut attempt = 1;
        loop {
            let result: Result<Vec<u8>, ClientError> = async {
                let reply_id = self.send(command::READ_BUFFER, &buffer::read_buffer_request(start, len)).await?;
                let data = self.transfer("READ_BUFFER", reply_id, len).await?;
                if data.len() != len {
                    return Err(BufferError::Incomplete { got: data.len(), expected: len }.into());
                }
                Ok(data)
            }
            .await;
            match result {
                Err(e) if e.is_retryable() && attempt < CHUNK_ATTEMPTS => {
                    debug!(start, len, attempt, error = %e, "chunk failed; asking again");
                    attempt += 1;
                }
                Err(e) if attempt > 1 => return Err(ClientError::Retried { tries: attempt, last: Box::new(e) }),
                Ok(data) if attempt > 1 => {
                    info!(start, len, tries = attempt, "chunk read after a retry");
                    return Ok(data);
                }
                other => return other,
            }
        }
    }

    /// Collects one transfer answering the request sent with `reply_id`.
    async fn transfer(&mut self, request: &'static str, reply_id: u16, limit: usize) -> Result<Vec<u8>, ClientError> {
        let mut assembler = ChunkAssembler::new(request, limit);
        loop {
            let packet = self.reply(request, reply_id).await?;
            if let ChunkProgress::Complete(data) = assembler.push(packet)? {
                return Ok(data);
            }
        }
    }

    /// Reads and decodes the attendance log. `count` is the record count from GET_FREE_SIZES (read with the device
    /// disabled, so it matches); `configured` overrides the record size; `first` is the path tried first (the one
    /// that worked last time, else the usual buffered read).
    ///
    /// When the log comes back with fewer records than `count`, the other paths are tried (the buffered read with
    /// the other function code, then ATTLOG_RRQ); if every one is short, the longest is kept and
    /// [`AttendanceRead::mismatch`] names both counts. Never a silent short read.
    ///
    /// # Errors
    /// As [`ZkClient::read_dataset`], and when the dataset cannot be decoded.
    pub async fn read_attendance_log(
        &mut self,
        count: Option<u32>,
        configured: Option<RecordLayout>,
        first: ReadPath,
    ) -> Result<AttendanceRead, ClientError> {
        let (dataset, path) = self.read_dataset_by(Table::Attendance, first, true).await?;
        let log = records::parse_attendance(&dataset, count, configured)?;
        let Some(reported) = count.filter(|n| log.total() < *n as usize) else {
            return Ok(AttendanceRead { log, path, mismatch: None });
        };
        warn!(reported, read = log.total(), %path, "the device returned fewer records than it reports; trying the other read paths");
        let mut tried = vec![(path, Ok(log.total()))];
        let mut best = (log, path);
        for other in ReadPath::ATTENDANCE.into_iter().filter(|p| *p != path && *p != first) {
            let attempt = async {
                let (dataset, _) = self.read_dataset_by(Table::Attendance, other, false).await?;
                Ok::<_, ClientError>(records::parse_attendance(&dataset, count, configured)?)
            }
            .await;
            match attempt {
                Ok(log) => {
                    tried.push((other, Ok(log.total())));
                    let complete = log.total() >= reported as usize;
                    if log.total() > best.0.total() {
                        best = (log, other);
                    }
                    if complete {
                        info!(reported, path = %other, "the whole log came by another read path");
                        return Ok(AttendanceRead { log: best.0, path: other, mismatch: None });
                    }
                }
                Err(e) if e.connection_lost() || matches!(e.root(), ClientError::Timeout { .. }) => return Err(e),
                Err(e) => tried.push((other, Err(e.to_string()))),
            }
        }
        let (log, path) = best;
        let mismatch = CountMismatch { reported, read: log.total(), tried };
        warn!(%mismatch, "record count mismatch");
        Ok(AttendanceRead { log, path, mismatch: Some(mismatch) })
    }

    /// Reads and decodes the attendance log by the usual paths (see [`ZkClient::read_attendance_log`]).
    ///
    /// # Errors
    /// As [`ZkClient::read_attendance_log`].
    pub async fn read_attendance(
        &mut self,
        count: Option<u32>,
        configured: Option<RecordLayout>,
    ) -> Result<AttendanceLog, ClientError> {
        Ok(self.read_attendance_log(count, configured, ReadPath::ATTENDANCE[0]).await?.log)
    }

    /// Reads the user table. `count` is the user count from GET_FREE_SIZES.
    ///
    /// # Errors
    /// As [`ZkClient::read_dataset`], and when the dataset cannot be decoded.
    pub async fn read_users(&mut self, count: Option<u32>) -> Result<Vec<UserRecord>, ClientError> {
        if count == Some(0) {
            return Ok(Vec::new());
        }
        let dataset = self.read_dataset(Table::Users).await?;
        Ok(users::parse_users(&dataset, count)?)
    }

    /// Sizes, the attendance log, and the users when records name them by uid. Does not disable the device: the
    /// caller brackets it with [`ZkClient::disable`] / [`ZkClient::enable`].
    ///
    /// # Errors
    /// As [`ZkClient::read_attendance`].
    pub async fn read_log(&mut self, configured: Option<RecordLayout>) -> Result<LogSnapshot, ClientError> {
        self.read_log_from(configured, ReadPath::ATTENDANCE[0]).await
    }

    /// [`ZkClient::read_log`], trying `first` first for the attendance log.
    ///
    /// # Errors
    /// As [`ZkClient::read_attendance`].
    pub async fn read_log_from(
        &mut self,
        configured: Option<RecordLayout>,
        first: ReadPath,
    ) -> Result<LogSnapshot, ClientError> {
        let sizes = self.read_sizes().await?;
        let AttendanceRead { log, path, mismatch } = self.read_attendance_log(sizes.records, configured, first).await?;
        let users = if log.records.iter().any(|r| matches!(r.user, DeviceUser::Uid(_))) {
            Some(self.read_users(sizes.users).await?)
        } else {
            None
        };
        Ok(LogSnapshot { sizes, log, path, mismatch, users })
    }
}
