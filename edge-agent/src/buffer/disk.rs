//! Measuring the disk under the buffer: the configured budget, and the free space of the filesystem itself.
//!
//! sled needs free space to record acknowledgements (a delete is a write to its log) and to rewrite segments. A
//! buffer that filled the filesystem to the last byte could therefore never drain, and sled, once a write fails
//! for lack of space, refuses everything until reopened (see `store`). So appends stop while the filesystem has less
//! than a reserve free ([`reserve_bytes`]); the reserve is left for acknowledgements, which then free room inside
//! sled's file for new punches.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Free and total bytes of the filesystem holding `path` (for an unprivileged process).
pub fn filesystem_space(path: &Path) -> Option<(u64, u64)> {
    let path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `stat` is a plain C struct that statvfs fills; `path` is a valid NUL-terminated string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statvfs(path.as_ptr(), &raw mut stat) } != 0 {
        return None;
    }
    #[allow(clippy::useless_conversion)] // the field types differ between targets
    let (block, free, total) = (u64::from(stat.f_frsize), u64::from(stat.f_bavail), u64::from(stat.f_blocks));
    Some((free.saturating_mul(block), total.saturating_mul(block)))
}

/// Free space kept for acknowledgements and sled's housekeeping: a sixteenth of the filesystem, at least 2 MiB and
/// at most 64 MiB.
pub fn reserve_bytes(total: u64) -> u64 {
    (total / 16).clamp(2 << 20, 64 << 20)
}

/// Whether the buffer must refuse appends. `live`: bytes of live punches and keys; `size`: sled's file size;
/// `limit`: the configured budget; `space`: the filesystem's free and total bytes, when known.
///
/// - Budget: live data at half the budget (the other half is room for sled's rewriting), or the file at the
///   budget while live data is above an eighth of it (below that, sled writes into the space it freed).
/// - Filesystem: less than the reserve free, unless sled's own file has room (live data under a quarter of it).
pub fn is_full(live: u64, size: u64, limit: u64, space: Option<(u64, u64)>) -> bool {
    let budget = live >= limit / 2 || (size >= limit && live >= limit / 8);
    let filesystem = space.is_some_and(|(free, total)| free < reserve_bytes(total) && live >= size / 4);
    budget || filesystem
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn a_nearly_full_filesystem_stops_appends_until_sled_has_room_of_its_own() {
        let roomy = Some((100 * MB, 1000 * MB));
        assert!(!is_full(10 * MB, 30 * MB, 2048 * MB, roomy));
        // 8 MB filesystem: the reserve is 2 MiB.
        assert!(is_full(5 * MB, 6 * MB, 2048 * MB, Some((MB, 8 * MB))));
        assert!(!is_full(5 * MB, 6 * MB, 2048 * MB, Some((3 * MB, 8 * MB))));
        // Drained: live data is small inside a big file, sled reuses its own space.
        assert!(!is_full(MB, 6 * MB, 2048 * MB, Some((MB, 8 * MB))));
        assert!(is_full(1024 * MB, 1100 * MB, 2048 * MB, roomy), "budget");
        assert_eq!(reserve_bytes(8 * MB), 2 * MB);
        assert_eq!(reserve_bytes(100_000 * MB), 64 * MB);
    }
}
