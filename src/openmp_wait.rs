//! How long libtorch's idle OpenMP workers spin before they sleep, set before
//! libgomp reads it.
//!
//! After each parallel region, libgomp's workers spin 300,000 times by default
//! before they sleep on a futex. On a runner whose cores other jobs share, those
//! spinning workers hold the cores the working thread waits for: a 2-core sweep
//! beside two busy processes took 17.9 s against 6.96 s at `--threads 1`.
//! `GOMP_SPINCOUNT=10000` brought it to 6.46 s and left an idle machine as fast
//! as before (docs/performance.md, "A busy machine", has the measurements).
//!
//! libgomp reads the variable once, in its initialiser, which runs before `main`,
//! and glibc sets `environ` only after the executable's `.preinit_array` has run.
//! So the one place to set it is a `.preinit_array` entry that starts the
//! executable again (`/proc/self/exe`, same arguments, same process id) with the
//! variable added. At that point the libraries are mapped but none of their
//! initialisers has run, so the second start costs the dynamic loader's few
//! milliseconds, not libtorch's start-up. The entry only reads its arguments and
//! a static array, and calls `readlink` and `execve`; if that fails, or if the
//! executable was started through the dynamic loader by hand, the run goes on
//! with libgomp's default.
//!
//! A user's own `GOMP_SPINCOUNT` or `OMP_WAIT_POLICY` wins and nothing restarts;
//! `GOMP_SPINCOUNT=300000` restores libgomp's default. [`setting`] says which
//! applied, for `timing.json`.

/// The spin count rotbench sets (a macro, so that the pre-`main` entry's string
/// literal is built from it).
macro_rules! spincount {
    () => {
        "10000"
    };
}

/// Put beside the spin count when rotbench set it, so that [`setting`] can tell
/// it from the user's.
macro_rules! marker {
    () => {
        "ROTBENCH_SET_GOMP_SPINCOUNT"
    };
}

/// The spin count rotbench sets.
pub const SPINCOUNT: &str = spincount!();
const MARKER: &str = marker!();

/// The OpenMP wait setting this process runs with, for `timing.json`.
pub fn setting() -> String {
    let spin = std::env::var("GOMP_SPINCOUNT").ok();
    let policy = std::env::var("OMP_WAIT_POLICY").ok();
    match (spin, policy) {
        (Some(s), None) if std::env::var_os(MARKER).is_some() && s == SPINCOUNT => {
            format!("GOMP_SPINCOUNT={s} (set by rotbench)")
        }
        (None, None) => "libgomp's default".to_string(),
        (s, p) => {
            let set: Vec<String> = [("GOMP_SPINCOUNT", s), ("OMP_WAIT_POLICY", p)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect();
            format!("{} (environment)", set.join(" "))
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod restart {
    use std::ffi::{c_char, c_int};
    use std::ptr;

    /// The most environment entries the restart handles; with more it does nothing.
    const MAX_ENV: usize = 4096;

    /// The new environment: the old entries, the two added, and the terminating null.
    /// Only the pre-`main` entry below touches it, once, on one thread.
    static mut ENV: [*const c_char; MAX_ENV + 3] = [ptr::null(); MAX_ENV + 3];

    static SPIN: &str = concat!("GOMP_SPINCOUNT=", spincount!(), "\0");
    static MARK: &str = concat!(marker!(), "=1\0");
    static EXE: &str = "/proc/self/exe\0";

    /// Whether the NUL-terminated `entry` starts with `prefix`.
    ///
    /// SAFETY: `entry` must point at a NUL-terminated string.
    unsafe fn starts_with(entry: *const c_char, prefix: &[u8]) -> bool {
        for (i, &b) in prefix.iter().enumerate() {
            let c = *entry.add(i) as u8;
            if c != b {
                return false;
            }
        }
        true
    }

    /// Whether `/proc/self/exe` is the dynamic loader (`ld-linux-x86-64.so.2
    /// rotbench ...`): starting it again with these arguments would run the wrong
    /// program, so such a run keeps libgomp's default.
    fn run_by_the_loader() -> bool {
        let mut buf = [0u8; 4096];
        // SAFETY: readlink writes at most buf.len() bytes into buf.
        let n = unsafe { libc::readlink(EXE.as_ptr().cast(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return true;
        }
        let path = &buf[..n as usize];
        let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
        name.starts_with(b"ld-") || name.starts_with(b"ld.so")
    }

    extern "C" fn preinit(_argc: c_int, argv: *const *const c_char, envp: *const *const c_char) {
        if argv.is_null() || envp.is_null() {
            return;
        }
        // SAFETY: the loader passes the process's argument and environment
        // vectors, NULL-terminated arrays of NUL-terminated strings; ENV is
        // written here only, before any other thread exists.
        unsafe {
            let env = &raw mut ENV;
            let mut n = 0;
            while !(*envp.add(n)).is_null() {
                let e = *envp.add(n);
                if starts_with(e, b"GOMP_SPINCOUNT=") || starts_with(e, b"OMP_WAIT_POLICY=") {
                    return;
                }
                if n == MAX_ENV {
                    return;
                }
                (*env)[n] = e;
                n += 1;
            }
            if run_by_the_loader() {
                return;
            }
            (*env)[n] = SPIN.as_ptr().cast();
            (*env)[n + 1] = MARK.as_ptr().cast();
            (*env)[n + 2] = ptr::null();
            // Returns only on failure: then go on with libgomp's default.
            libc::execve(EXE.as_ptr().cast(), argv, (*env).as_ptr());
        }
    }

    #[used]
    #[link_section = ".preinit_array"]
    static PREINIT: extern "C" fn(c_int, *const *const c_char, *const *const c_char) = preinit;
}
