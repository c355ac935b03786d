//! The edge between Rust and the C++ shim (src/shim/): messages the shim hands
//! over, paths it takes, and libtorch's error text cut to its message. A leaf:
//! the backends and `libtorch` use it, it uses neither.

use anyhow::{anyhow, Result};
use std::ffi::{c_char, CStr, CString};
use std::path::Path;

extern "C" {
    /// src/shim/optimized.cpp: free a string the shim allocated.
    fn rb_free_message(s: *mut c_char);
}

/// Take ownership of a message from the shim.
pub(crate) fn shim_message(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown libtorch error".into();
    }
    // SAFETY: the shim returns a NUL-terminated malloc'd string, freed here once.
    let s = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { rb_free_message(err) };
    s
}

/// A path as the C string the shim takes.
pub(crate) fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| anyhow!("{}: the path holds a NUL byte", path.display()))
}

pub(crate) fn first_line(s: &str) -> String {
    // libtorch errors carry C++ backtraces after the first lines; keep the message.
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let keep: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.contains("Exception raised from") && !l.starts_with("frame #"))
        .take(6)
        .copied()
        .collect();
    keep.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parse `--device cpu|cuda|cuda:N|auto`. Anything but `cpu` first opens

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_lose_their_backtrace() {
        let e = "shape mismatch\nException raised from foo at bar.cpp:1\nframe #0: x";
        assert_eq!(first_line(e), "shape mismatch");
    }
}
