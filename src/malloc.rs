//! The allocator settings a sweep runs with. libtorch allocates each layer's
//! activations afresh on every forward pass (a ResNet-18's first block holds
//! 205 MB at batch 64) and frees them after it. glibc serves blocks above its
//! mmap threshold (at most 32 MB, however it adapts) with a fresh `mmap`, so every
//! batch pays for zero-filling those pages in the kernel and unmapping them again:
//! 10-15% of a 224x224 sweep's time (`perf record`: `clear_page_erms`,
//! `exc_page_fault`). Raising the mmap and trim thresholds to 1 GiB makes freed
//! blocks reusable by the next batch instead.
//!
//! The cost is memory: freed blocks stay mapped, so the peak RSS of a
//! ResNet-18 sweep at batch 64 rises from about 0.8 to 1.2 GB (the README's
//! Performance section has both, measured). A user's own `GLIBC_TUNABLES` malloc
//! settings win, and `ROTBENCH_MALLOC=default` keeps glibc's defaults.

/// What [`tune_for_inference`] did, for the timing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malloc {
    /// Thresholds raised to [`THRESHOLD`].
    Tuned,
    /// glibc's defaults or the user's `GLIBC_TUNABLES`: left alone.
    Default,
}

/// The mmap and trim thresholds a sweep sets: 1 GiB.
pub const THRESHOLD: i32 = 1 << 30;

/// Raise glibc's mmap and trim thresholds for the forward passes to come, unless
/// the user chose otherwise (see the module header). Other C libraries: nothing.
pub fn tune_for_inference() -> Malloc {
    let user_set = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."))
        || std::env::var("ROTBENCH_MALLOC").is_ok_and(|v| v == "default");
    if user_set {
        return Malloc::Default;
    }
    set_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> Malloc {
    // SAFETY: mallopt only changes two parameters of the allocator; it is
    // thread-safe (it takes the arena lock) and reports failure as 0.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD) == 1
    };
    if ok {
        Malloc::Tuned
    } else {
        Malloc::Default
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> Malloc {
    Malloc::Default
}
