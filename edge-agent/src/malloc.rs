//! The allocator's settings for the daemon, applied first thing in `main`, before any thread starts, and the release
//! of free heap pages the buffer asks for while it takes a backlog.
//!
//! glibc's malloc gives each thread that contends for the heap an arena of its own (up to eight per core), and an
//! arena keeps the pages it once used: while a backlog drains, the forwarder, the HTTP client and sled allocate on
//! different tokio threads, and each arena grew by megabytes that were never returned (measured with
//! `bench buffer-drain-central`: a 1,000,000-punch drain ended with two extra arenas of 5 to 6 MB each). The agent does
//! little work per byte and never needs parallel allocation, so one arena for every thread keeps its resident memory at
//! what it actually holds, at no measurable cost in drain time.

/// Makes every thread allocate from the main arena (`M_ARENA_MAX = 1`). A no-op where the C library is not glibc.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes malloc's tuning parameters; it is called before any other thread exists.
        let applied = unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
        if applied != 1 {
            eprintln!("edge-agent: could not limit malloc to one arena; memory use may be higher");
        }
    }
}

/// Hands the free pages of the heap back to the kernel (`malloc_trim`). A no-op where the C library is not glibc.
///
/// glibc returns memory to the kernel only from the top of the heap, and only past a threshold; pages freed below a
/// block still in use stay resident. Reading a 1,000,000-row SQL backlog frees megabytes a second in blocks of every
/// size (sled's replaced tree nodes and write buffers, encoded chunks, the SQL pages), so without this the agent's
/// RSS stayed about 35 MB above what it held (`bench sql-backlog`: 94 MB instead of 58 MB with 100-punch chunks).
/// The buffer calls it every few tens of thousands of punches appended (`buffer::Buffer::append`); one call walks
/// the free lists of the one arena, well under a millisecond.
pub fn release_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only returns free memory of the allocator's own to the kernel; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
