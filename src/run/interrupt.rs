//! Ctrl-C during a sweep. While the engine runs, the first SIGINT asks it to
//! stop after the batch in hand (which the checkpoint then holds), and the sweep
//! ends with exit 130 saying how far it got and how to continue; a second SIGINT,
//! or one outside the engine, ends the process at once (130), which loses
//! nothing either: results are written as one set, and a killed run's swap is
//! rolled back by the next.

use std::sync::atomic::{AtomicBool, Ordering};

static ENGINE_RUNNING: AtomicBool = AtomicBool::new(false);
static STOP: AtomicBool = AtomicBool::new(false);

const STOPPING: &[u8] =
    b"\nrotbench: stopping after the current batch (Ctrl-C again to stop at once)\n";
const STOPPED: &[u8] = b"\nrotbench: interrupted\n";

extern "C" fn on_sigint(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), _exit(2).
    if ENGINE_RUNNING.load(Ordering::SeqCst) && !STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: write(2) on stderr with a static buffer.
        unsafe { libc::write(2, STOPPING.as_ptr().cast(), STOPPING.len()) };
        return;
    }
    // SAFETY: as above; _exit ends the process without running Rust code.
    unsafe {
        libc::write(2, STOPPED.as_ptr().cast(), STOPPED.len());
        libc::_exit(130);
    }
}

/// Handle SIGINT as above, for this process (a sweep).
pub fn install() {
    // SAFETY: installs a handler that only touches atomics and async-signal-safe calls.
    unsafe {
        libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t);
    }
}

/// The engine is running: a first SIGINT asks it to stop, no longer ends the process.
pub fn engine_started() {
    ENGINE_RUNNING.store(true, Ordering::SeqCst);
}

pub fn engine_ended() {
    ENGINE_RUNNING.store(false, Ordering::SeqCst);
}

/// Whether a SIGINT asked the engine to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The error a stopped engine returns, recognised by `main` for exit 130.
#[derive(Debug)]
pub struct Interrupted {
    /// Samples finished (checkpointed) and all the run's samples.
    pub done: usize,
    pub total: usize,
    pub out: std::path::PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted after {} of {} samples (kept in {}); rerun the same command with --resume to continue",
            self.done,
            self.total,
            self.out.join(".rotbench-checkpoint").display()
        )
    }
}

impl std::error::Error for Interrupted {}
