//! A filesystem of a fixed small size for disk-full tests: a tmpfs mounted on a fresh temporary directory (the tests
//! run as root), grown or shrunk in place with a remount, and unmounted when dropped.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// A mounted tmpfs of a given size.
pub struct SmallFs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `bytes` on a new temporary directory.
    ///
    /// # Errors
    /// When the mount is refused (the test is not root, or mounting is not allowed here); the message says so.
    pub fn mount(bytes: u64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("a mount point")?;
        let path = dir.path().to_owned();
        mount_tmpfs(&path, bytes, false).context("mounting a tmpfs for the disk-full test (needs root)")?;
        Ok(Self { path, _dir: dir })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the size in place (the files stay).
    ///
    /// # Errors
    /// When the remount is refused (for example shrinking below what is used).
    pub fn resize(&self, bytes: u64) -> anyhow::Result<()> {
        mount_tmpfs(&self.path, bytes, true).context("resizing the tmpfs")
    }

    /// Bytes free on it.
    ///
    /// # Errors
    /// When statvfs fails.
    pub fn free_bytes(&self) -> anyhow::Result<u64> {
        let path = CString::new(self.path.as_os_str().as_bytes())?;
        // SAFETY: `path` is a valid NUL-terminated string and `stat` a plain struct statvfs fills.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::statvfs(path.as_ptr(), &raw mut stat) } != 0 {
            bail!("statvfs: {}", std::io::Error::last_os_error());
        }
        Ok(stat.f_bavail * stat.f_frsize)
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if let Ok(path) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: a valid path; MNT_DETACH unmounts even while a killed child's files are being closed.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

fn mount_tmpfs(path: &Path, bytes: u64, remount: bool) -> anyhow::Result<()> {
    let target = CString::new(path.as_os_str().as_bytes())?;
    let source = CString::new("tmpfs")?;
    let data = CString::new(format!("size={bytes},mode=0755"))?;
    let flags = if remount { libc::MS_REMOUNT } else { 0 };
    // SAFETY: every pointer is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::mount(source.as_ptr(), target.as_ptr(), source.as_ptr(), flags, data.as_ptr().cast()) };
    if rc != 0 {
        bail!("mount tmpfs size={bytes} on {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(())
}
