//! The server's backups: files in `<data_dir>/backups`, named by the server (made by a backup job) or by the
//! uploader (checked: letters, digits, `.`, `_`, `-`, ending in `.json` or `.json.gz`, so a name never leaves the
//! directory). Uploads are streamed to a temporary file under a size limit and renamed when complete.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::format::BackupType;

/// Largest upload accepted by default (bytes).
pub const MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// `[backup]` in the configuration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Largest backup file an upload may carry, in bytes (default 2 GiB). A request declaring a larger
    /// `Content-Length` is refused before its body is read; a body that grows past it is cut off there.
    pub max_upload_bytes: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self { max_upload_bytes: MAX_UPLOAD_BYTES }
    }
}

/// The directory backups live in.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

/// Checks a backup file name.
///
/// # Errors
/// A message saying what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 128 {
        return Err(format!("file name {name:?} must be 1 to 128 characters"));
    }
    if name.starts_with('.') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        return Err(format!("file name {name:?} may hold only letters, digits, '.', '_' and '-', not first '.'"));
    }
    if !(name.ends_with(".json") || name.ends_with(".json.gz")) {
        return Err(format!("file name {name:?} must end in .json or .json.gz"));
    }
    Ok(())
}

/// The path of backup `name` in the backups directory, after checking the name.
///
/// # Errors
/// As [`check_name`].
pub fn path_of(data_dir: &Path, name: &str) -> Result<PathBuf, String> {
    check_name(name)?;
    Ok(dir(data_dir).join(name))
}

/// A fresh name for a backup made now.
pub fn new_name(backup_type: BackupType) -> String {
    format!(
        "backup-{}-{}-{:04x}.json.gz",
        backup_type.as_str(),
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        rand::random::<u16>()
    )
}

/// A backup on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BackupFile {
    pub name: String,
    pub bytes: u64,
    pub modified: Option<DateTime<Utc>>,
}

/// The backups in the directory, newest first.
///
/// # Errors
/// When the directory exists but cannot be read.
pub fn list(data_dir: &Path) -> std::io::Result<Vec<BackupFile>> {
    let dir = dir(data_dir);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_err() {
            continue;
        }
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        files.push(BackupFile { name, bytes: meta.len(), modified: meta.modified().ok().map(DateTime::<Utc>::from) });
    }
    files.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| a.name.cmp(&b.name)));
    Ok(files)
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0}")]
    Name(String),
    #[error("a backup named {0:?} already exists")]
    Exists(String),
    #[error("the upload broke off: {0}")]
    Body(String),
    #[error("storing the upload failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Streams `body` into backup `name` (at most `limit` bytes); a refused or broken upload leaves no file.
///
/// # Errors
/// [`UploadError`].
pub async fn store_upload<S, E>(data_dir: &Path, name: &str, body: S, limit: u64) -> Result<BackupFile, UploadError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let path = path_of(data_dir, name).map_err(UploadError::Name)?;
    if path.exists() {
        return Err(UploadError::Exists(name.to_owned()));
    }
    std::fs::create_dir_all(dir(data_dir))?;
    let temp = path.with_file_name(format!(".{name}.upload-{:08x}", rand::random::<u32>()));
    let result = write_limited(&temp, body, limit).await;
    let outcome = match result {
        Ok(bytes) => match tokio::fs::rename(&temp, &path).await {
            Ok(()) => Ok(BackupFile { name: name.to_owned(), bytes, modified: Some(Utc::now()) }),
            Err(e) => Err(UploadError::Io(e)),
        },
        Err(e) => Err(e),
    };
    if outcome.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    outcome
}

async fn write_limited<S, E>(temp: &Path, mut body: S, limit: u64) -> Result<u64, UploadError>
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(temp).await?;
    let mut written = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(UploadError::TooLarge { limit });
        }
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_in_the_directory() {
        assert!(check_name("backup-full-20260101T000000Z-0a1b.json.gz").is_ok());
        assert!(check_name("site-a.json").is_ok());
        for bad in ["../x.json", "a/b.json", ".hidden.json", "x.txt", "", "x y.json", "x.json.gz.exe"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
