//! Giving back to the kernel the 21 MB sled 0.34 takes for metrics it never records.
//!
//! sled's process-wide metrics (`sled::M`, a lazy static) are created on the first operation of the first opened
//! store even when metrics are compiled out (the default `no_metrics` feature): 41 histograms of 65,536 counters, each
//! a 512 KiB vector written with zeros, so 21 MB of resident memory that stays zero for the life of the process (with
//! `no_metrics`, `Histogram::measure` does nothing). That was 40% of the agent's 50 MB budget while draining a backlog.
//!
//! [`TrimmingAllocator`] (the `edge-agent` binary's global allocator; the system allocator underneath) notes the
//! address of every allocation of exactly that size and alignment made by a thread while it runs
//! [`release_zeroed_after`]. Afterwards each noted allocation that is still alive and still all zeros gets
//! `madvise(MADV_DONTNEED)` on the whole pages inside it: the kernel drops the pages and maps zero pages back on the
//! next access, so the contents (zeros) are unchanged and nothing else is touched. Without the allocator installed
//! (tests, other programs using the library) nothing is noted and nothing is released.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size of one sled histogram: 65,536 `AtomicUsize` counters.
const HISTOGRAM_BYTES: usize = 65_536 * std::mem::size_of::<usize>();
const HISTOGRAM_ALIGN: usize = std::mem::align_of::<usize>();
/// More than the 41 histograms sled makes; further candidates are not noted.
const SLOTS: usize = 64;

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: AtomicUsize = AtomicUsize::new(0);
static NOTED: [AtomicUsize; SLOTS] = [EMPTY; SLOTS];

thread_local! {
    static NOTING: Cell<bool> = const { Cell::new(false) };
}

/// The system allocator, noting candidate allocations for [`release_zeroed_after`].
pub struct TrimmingAllocator;

fn is_candidate(layout: Layout) -> bool {
    layout.size() == HISTOGRAM_BYTES && layout.align() == HISTOGRAM_ALIGN && NOTING.with(Cell::get)
}

fn note(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    for slot in &NOTED {
        if slot.compare_exchange(0, ptr as usize, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return;
        }
    }
}

fn forget(ptr: *mut u8) {
    for slot in &NOTED {
        let _ = slot.compare_exchange(ptr as usize, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the noting only records addresses in atomics and never
// allocates.
unsafe impl GlobalAlloc for TrimmingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc(layout) };
        if is_candidate(layout) {
            note(ptr);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if is_candidate(layout) {
            note(ptr);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() == HISTOGRAM_BYTES {
            forget(ptr);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() == HISTOGRAM_BYTES {
            forget(ptr);
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` (which opens the sled store) noting candidate allocations made by this thread, then releases the pages of
/// those still all zeros. Returns `f`'s result and the bytes released.
pub fn release_zeroed_after<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = NOTING.with(|n| n.replace(true));
    let result = f();
    NOTING.with(|n| n.set(before));
    let mut released = 0;
    for slot in &NOTED {
        let addr = slot.swap(0, Ordering::AcqRel);
        if addr != 0 {
            released += release_if_zero(addr);
        }
    }
    (result, released)
}

#[cfg(target_os = "linux")]
fn release_if_zero(addr: usize) -> usize {
    // SAFETY: `addr` is a live allocation of HISTOGRAM_BYTES: it was noted at allocation and its slot is cleared when
    // it is freed (we took the slot above, so a free from now on finds nothing to clear). Its bytes were initialised
    // by its owner before `f` returned; reading them is sound.
    let bytes = unsafe { std::slice::from_raw_parts(addr as *const u8, HISTOGRAM_BYTES) };
    if bytes.iter().any(|&b| b != 0) {
        return 0;
    }
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096).max(1);
    let start = addr.div_ceil(page) * page;
    let end = (addr + HISTOGRAM_BYTES) / page * page;
    if end <= start {
        return 0;
    }
    // SAFETY: [start, end) is whole pages inside the allocation, all zeros; MADV_DONTNEED on private anonymous memory
    // makes later reads see zeros, which is what the pages hold, so the allocation's contents do not change.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if rc == 0 {
        end - start
    } else {
        0
    }
}

#[cfg(not(target_os = "linux"))]
fn release_if_zero(_addr: usize) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the slots are process-wide, and two tests releasing at once would take each other's.
    #[cfg(target_os = "linux")]
    #[test]
    fn noted_zero_allocations_are_released_and_read_zero_and_others_are_kept() {
        // Without the allocator installed (as in this test binary) nothing is noted.
        let (value, released) = release_zeroed_after(|| vec![0usize; 65_536]);
        assert_eq!(value.len(), 65_536);
        assert_eq!(released, 0);

        // Drive the noting by hand, as the allocator does.
        let zero = vec![0usize; 65_536];
        let mut written = vec![0usize; 65_536];
        written[1000] = 7;
        note(zero.as_ptr() as *mut u8);
        note(written.as_ptr() as *mut u8);
        let ((), released) = release_zeroed_after(|| ());
        assert!(released >= HISTOGRAM_BYTES - 2 * 4096 && released <= HISTOGRAM_BYTES, "released {released}");
        assert!(zero.iter().all(|&v| v == 0), "released pages read back as zeros");
        assert_eq!(written[1000], 7, "an allocation holding data is left alone");
        assert_eq!(written.iter().sum::<usize>(), 7);
    }
}
