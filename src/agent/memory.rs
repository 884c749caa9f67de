//! Giving the allocator's freed memory back to the OS (glibc only; elsewhere these do nothing).
//!
//! glibc keeps freed heap pages in its arenas: after a pass of 10,000 extensions, or the quick
//! check's baseline read of the same collections, the idle agent would otherwise keep the
//! peak's pages (measured: 20 MB idle after the pass's trim, 92 MB once the baseline's lists
//! had been decoded and freed without one).

/// Return freed heap pages of every arena to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn release() {
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn release() {}

/// Fewer malloc arenas: less memory held in per-thread free lists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn limit_arenas() {
    // SAFETY: mallopt is called before the worker threads allocate much, with a valid option.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn limit_arenas() {}
