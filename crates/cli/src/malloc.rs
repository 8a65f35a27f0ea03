//! The C allocator's settings for batch commands, applied before any other thread starts.
//!
//! glibc's malloc gives threads their own arenas (up to eight per core) and keeps what a
//! thread frees in that thread's arena. A run allocates its big structures in phases on
//! different threads: DataFusion aggregates on the runtime's workers, scoring runs on the
//! main thread, the output on writer threads. With an arena each, no phase could reuse what
//! the one before it freed: a million-customer run held 720 MiB of resident memory while at
//! most 280 MiB was ever allocated at once. With one arena the same run peaks at 440 MiB and
//! takes the same time (BENCHMARKS.md, "Memory"); glibc's per-thread caches still serve small
//! allocations without the arena lock.
//!
//! `stratum serve` keeps glibc's defaults: many request threads allocate at once there, and
//! a long-running server's memory is steady. `MALLOC_ARENA_MAX` in the environment wins.

/// Limits malloc to one arena unless `MALLOC_ARENA_MAX` is set. Call it first in `main`,
/// while the main thread is the only one.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn one_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets a malloc parameter; glibc takes its own lock, and no other
    // thread has started yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Other C libraries keep their own allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn one_arena() {}
