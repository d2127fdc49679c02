//! The backup file: one JSON document, written as a stream.
//!
//! ```text
//! {"format":"attendance-backup","format_version":1,"metadata":{...},"records":[
//! {"kind":"site","data":{...},"sha256":"..."},
//! ...
//! ],"end":{"records":N}}
//! ```
//!
//! `metadata` comes before `records` (a reader checks the version before reading any record) and holds the format
//! version again, when the backup was made, its type (`full` or `incremental` with `since`), the number of records
//! of every kind, who made it, the database it was made from and the canonical form of the checksums. Records come
//! in the order of [`KINDS`](super::schema::KINDS), one per line, each with its checksum; `end` repeats the number
//! of records, so a file cut short is told from a complete one. A file whose name ends in `.gz` is gzip-compressed.
//!
//! [`Writer`] writes it: records are encoded into 64 KiB chunks that a thread of its own compresses and writes, so
//! memory stays flat whatever the number of records.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::schema::{canonical_data, checksum_of, KindDef, Val};

/// The `format` member of every backup.
pub const FORMAT: &str = "attendance-backup";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// How checksums are computed, as stated in every file.
pub const CHECKSUM_FORM: &str =
    "sha256 of kind + LF + canonical JSON of data (members in byte order, no whitespace, times to the microsecond)";

/// Full or incremental.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupType {
    /// Everything.
    Full,
    /// Records added or changed since a date (deletions are not carried).
    Incremental,
}

impl BackupType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }

    /// Parses `full` or `incremental`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Self::Full),
            "incremental" => Ok(Self::Incremental),
            other => Err(format!("type {other:?} is not full or incremental")),
        }
    }
}

/// What a backup says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    /// Incremental: records changed at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Records of each kind.
    pub counts: BTreeMap<String, u64>,
    pub created_by: String,
    /// `sqlite` or `postgres`.
    pub source_database: String,
    /// The program that wrote it.
    pub generator: String,
    /// How record checksums are computed.
    pub checksum: String,
}

/// The document's last member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    pub records: u64,
}

const CHUNK: usize = 64 * 1024;

/// Writes a backup file as a stream (see the module documentation). The file is written under a temporary name
/// beside its final one and renamed by [`Writer::finish`]; dropped unfinished, it removes the temporary file.
pub struct Writer {
    buf: Vec<u8>,
    data: Vec<u8>,
    records: u64,
    tx: Option<tokio::sync::mpsc::Sender<Vec<u8>>>,
    thread: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    temp: PathBuf,
    path: PathBuf,
    finished: bool,
}

impl Writer {
    /// Creates the file's temporary sibling and writes the header.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn create(path: &Path, metadata: &Metadata) -> std::io::Result<Self> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.partial"));
        let file = std::fs::File::create(&temp)?;
        let gzip = name.ends_with(".gz");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
        let thread = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let file = std::io::BufWriter::with_capacity(CHUNK, file);
            let mut out: Box<dyn Write> = if gzip {
                Box::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()))
            } else {
                Box::new(file)
            };
            while let Some(chunk) = rx.blocking_recv() {
                out.write_all(&chunk)?;
            }
            drop(out);
            Ok(())
        });
        let mut buf = Vec::with_capacity(CHUNK * 2);
        let header = serde_json::json!({
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "metadata": metadata,
        });
        let header = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        // The header object without its closing brace, then the records array.
        buf.extend_from_slice(&header[..header.len() - 1]);
        buf.extend_from_slice(b",\"records\":[\n");
        Ok(Self {
            buf,
            data: Vec::with_capacity(1024),
            records: 0,
            tx: Some(tx),
            thread: Some(thread),
            temp,
            path: path.to_owned(),
            finished: false,
        })
    }

    /// Appends one record.
    ///
    /// # Errors
    /// When the writing thread failed.
    pub async fn record(&mut self, def: &KindDef, vals: &[Val]) -> std::io::Result<()> {
        if self.encode(def, vals) {
            self.flush().await?;
        }
        Ok(())
    }

    /// Appends one record from synchronous code (a reader stepping SQLite's rows on a blocking thread): as
    /// [`Writer::record`], waiting on the calling thread while the writing thread is behind.
    ///
    /// # Errors
    /// When the writing thread failed.
    pub fn record_blocking(&mut self, def: &KindDef, vals: &[Val]) -> std::io::Result<()> {
        if self.encode(def, vals) {
            // The writing thread is a blocking thread of its own, not a task of this runtime, so waiting here for
            // room in its channel cannot wait for ourselves.
            futures::executor::block_on(self.flush())?;
        }
        Ok(())
    }

    /// Encodes one record into the buffer; `true` when a chunk is full and should be flushed.
    fn encode(&mut self, def: &KindDef, vals: &[Val]) -> bool {
        self.data.clear();
        canonical_data(def, vals, &mut self.data);
        let sum = checksum_of(def.kind, &self.data);
        if self.records > 0 {
            self.buf.extend_from_slice(b",\n");
        }
        self.buf.extend_from_slice(b"{\"kind\":\"");
        self.buf.extend_from_slice(def.kind.name().as_bytes());
        self.buf.extend_from_slice(b"\",\"data\":");
        self.buf.extend_from_slice(&self.data);
        self.buf.extend_from_slice(b",\"sha256\":\"");
        let mut hex_sum = [0u8; 64];
        // The output is exactly twice the checksum's length, all encode_to_slice needs.
        let _ = hex::encode_to_slice(sum, &mut hex_sum);
        self.buf.extend_from_slice(&hex_sum);
        self.buf.extend_from_slice(b"\"}");
        self.records += 1;
        self.buf.len() >= CHUNK
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK * 2));
        let Some(tx) = &self.tx else { return Err(std::io::Error::other("the backup writer is closed")) };
        if tx.send(chunk).await.is_err() {
            return Err(self.writer_error().await);
        }
        Ok(())
    }

    async fn writer_error(&mut self) -> std::io::Error {
        self.tx = None;
        match self.thread.take() {
            Some(t) => match t.await {
                Ok(Err(e)) => e,
                Ok(Ok(())) => std::io::Error::other("the backup writer stopped"),
                Err(e) => std::io::Error::other(format!("the backup writer failed: {e}")),
            },
            None => std::io::Error::other("the backup writer stopped"),
        }
    }

    /// Writes the end, flushes to disk and renames the file to its final name.
    ///
    /// # Errors
    /// When writing, syncing or renaming fails.
    pub async fn finish(mut self) -> std::io::Result<u64> {
        if self.records > 0 {
            self.buf.push(b'\n');
        }
        let end = serde_json::to_string(&End { records: self.records }).map_err(std::io::Error::other)?;
        self.buf.extend_from_slice(format!("],\"end\":{end}}}\n").as_bytes());
        self.flush().await?;
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            thread.await.map_err(|e| std::io::Error::other(format!("the backup writer failed: {e}")))??;
        }
        let file = std::fs::OpenOptions::new().write(true).open(&self.temp)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.temp, &self.path)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.finished = true;
        Ok(self.records)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.finished {
            self.tx = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}
