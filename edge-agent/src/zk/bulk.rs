//! The bulk read on [`ZkClient`]: PREPARE_BUFFER, READ_BUFFER chunks (each retried a few times when a packet is
//! corrupt or missing), FREE_DATA; the inline answer; and the legacy requests for devices that refuse buffered reads.

use std::collections::HashMap;

use tracing::{debug, warn};

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
}

impl Table {
    fn prepare_buffer_body(self) -> Vec<u8> {
        match self {
            Self::Attendance => buffer::prepare_buffer_request(command::ATTLOG_RRQ, 0, 0),
            Self::Users => buffer::prepare_buffer_request(command::USERTEMP_RRQ, command::FCT_USER, 0),
        }
    }

    fn legacy_request(self) -> (u16, Vec<u8>) {
        match self {
            Self::Attendance => (command::ATTLOG_RRQ, Vec::new()),
            Self::Users => (command::USERTEMP_RRQ, vec![command::FCT_USER as u8]),
        }
    }
}

/// Everything one read of a device's log brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSnapshot {
    pub sizes: DeviceSizes,
    pub log: AttendanceLog,
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
    /// Fetches a whole table's dataset (the u32 length and the records).
    ///
    /// # Errors
    /// On link failures, timeouts, a chunk that stays corrupt after retries, or limits exceeded.
    pub async fn read_dataset(&mut self, table: Table) -> Result<Vec<u8>, ClientError> {
        let reply = self.request(command::PREPARE_BUFFER, &table.prepare_buffer_body()).await?;
        match buffer::parse_prepare_buffer_reply(reply) {
            Ok(BufferReply::Inline(dataset)) => Ok(dataset),
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
                Ok(dataset)
            }
            Err(BufferError::Refused { code, .. }) => {
                debug!(?table, refused = command::name(code), "buffered read refused; using the legacy request");
                let (request, body) = table.legacy_request();
                let reply_id = self.send(request, &body).await?;
                self.transfer(command::name(request), reply_id, buffer::MAX_DATASET_LEN).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One READ_BUFFER chunk, retried when a packet was corrupt or missing.
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
                    warn!(start, len, attempt, error = %e, "chunk failed; asking again");
                    attempt += 1;
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
    /// disabled, so it matches); `configured` overrides the record size.
    ///
    /// # Errors
    /// As [`ZkClient::read_dataset`], and when the dataset cannot be decoded.
    pub async fn read_attendance(
        &mut self,
        count: Option<u32>,
        configured: Option<RecordLayout>,
    ) -> Result<AttendanceLog, ClientError> {
        let dataset = self.read_dataset(Table::Attendance).await?;
        Ok(records::parse_attendance(&dataset, count, configured)?)
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
        let sizes = self.read_sizes().await?;
        let log = self.read_attendance(sizes.records, configured).await?;
        let users = if log.records.iter().any(|r| matches!(r.user, DeviceUser::Uid(_))) {
            Some(self.read_users(sizes.users).await?)
        } else {
            None
        };
        Ok(LogSnapshot { sizes, log, users })
    }
}
