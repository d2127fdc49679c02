//! The marker beside the store: a small file holding the highest sequence number appended durably and the
//! acknowledgement watermark, so that a store that lost punches (a truncated, deleted or garbled sled file opens
//! as a smaller or fresh store) is noticed at the next start instead of silently forwarding less.
//!
//! Layout: two slots of [`SLOT`] bytes, each `magic (8) | generation (8) | appended (8) | acked (8) | SHA-256 of the
//! previous 32 bytes, first 16 bytes`. A write goes to the slot the generation picks and is synced with
//! `fdatasync`; the other slot keeps the previous value, so a torn write leaves one valid slot. Reading takes the
//! valid slot with the higher generation. Overwriting in place allocates nothing after creation, so the marker can
//! still be written on a full disk.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"EABMARK1";
/// Bytes per slot: a slot per page, so a torn page write damages one slot only.
const SLOT: u64 = 4096;
const BODY: usize = 32;
const RECORD: usize = BODY + 16;

/// What the marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarkerValue {
    /// The highest sequence number appended and flushed.
    pub appended: u64,
    /// Everything up to here was acknowledged (or moved out of the backlog).
    pub acked: u64,
}

/// What was found when the marker was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerRead {
    /// No marker file: a new buffer (or one from before markers).
    Absent,
    Valid(MarkerValue),
    /// The file exists but no slot checks out.
    Unreadable(String),
}

/// The open marker file.
pub struct Marker {
    path: PathBuf,
    file: File,
    generation: u64,
    last: MarkerValue,
}

impl Marker {
    /// Where the marker of the store at `store` lives.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut name = store.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "buffer".into());
        name.push(".marker");
        store.with_file_name(name)
    }

    /// Reads the marker at `path`.
    pub fn read(path: &Path) -> MarkerRead {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return MarkerRead::Absent,
            Err(e) => return MarkerRead::Unreadable(format!("cannot open {}: {e}", path.display())),
        };
        match best_slot(&file) {
            Some((_, value)) => MarkerRead::Valid(value),
            None => MarkerRead::Unreadable(format!("{} holds no valid record", path.display())),
        }
    }

    /// Opens (or creates, with both slots allocated) the marker and writes `value` to it.
    ///
    /// # Errors
    /// When the file cannot be created or written.
    pub fn open(path: &Path, value: MarkerValue) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        if file.metadata()?.len() < 2 * SLOT {
            file.set_len(2 * SLOT)?;
            file.write_all_at(&vec![0u8; usize::try_from(2 * SLOT).unwrap_or(8192)], 0)?;
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let generation = best_slot(&file).map_or(0, |(g, _)| g);
        let mut marker = Self { path: path.to_owned(), file, generation, last: MarkerValue::default() };
        marker.write(value)?;
        Ok(marker)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value last written.
    pub fn last(&self) -> MarkerValue {
        self.last
    }

    /// Writes `value` into the next slot and syncs it.
    ///
    /// # Errors
    /// When writing or syncing fails.
    pub fn write(&mut self, value: MarkerValue) -> io::Result<()> {
        let generation = self.generation + 1;
        let record = encode(generation, value);
        self.file.write_all_at(&record, (generation % 2) * SLOT)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.last = value;
        Ok(())
    }
}

fn encode(generation: u64, value: MarkerValue) -> [u8; RECORD] {
    let mut out = [0u8; RECORD];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&generation.to_be_bytes());
    out[16..24].copy_from_slice(&value.appended.to_be_bytes());
    out[24..32].copy_from_slice(&value.acked.to_be_bytes());
    let digest = Sha256::digest(&out[..BODY]);
    out[BODY..].copy_from_slice(&digest[..16]);
    out
}

fn decode(raw: &[u8]) -> Option<(u64, MarkerValue)> {
    if raw.len() < RECORD || &raw[..8] != MAGIC {
        return None;
    }
    let digest = Sha256::digest(&raw[..BODY]);
    if raw[BODY..RECORD] != digest[..16] {
        return None;
    }
    let u64_at = |at: usize| raw.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    Some((u64_at(8)?, MarkerValue { appended: u64_at(16)?, acked: u64_at(24)? }))
}

fn best_slot(file: &File) -> Option<(u64, MarkerValue)> {
    (0..2u64)
        .filter_map(|slot| {
            let mut raw = [0u8; RECORD];
            file.read_exact_at(&mut raw, slot * SLOT).ok()?;
            decode(&raw)
        })
        .max_by_key(|(generation, _)| *generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = Marker::path_for(&dir.path().join("buffer"));
        assert_eq!(Marker::read(&path), MarkerRead::Absent);
        let mut marker = Marker::open(&path, MarkerValue { appended: 10, acked: 0 }).unwrap();
        marker.write(MarkerValue { appended: 20, acked: 5 }).unwrap();
        assert_eq!(Marker::read(&path), MarkerRead::Valid(MarkerValue { appended: 20, acked: 5 }));
        // Garble the slot holding the newest record: the previous one is read.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xAB; 20], (marker.generation % 2) * SLOT + 10).unwrap();
        assert_eq!(Marker::read(&path), MarkerRead::Valid(MarkerValue { appended: 10, acked: 0 }));
        // Both garbled: unreadable, not absent.
        file.write_all_at(&[0xAB; 20], ((marker.generation + 1) % 2) * SLOT + 10).unwrap();
        assert!(matches!(Marker::read(&path), MarkerRead::Unreadable(_)));
    }
}
