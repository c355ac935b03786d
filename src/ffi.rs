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

/// libtorch's error text cut to its message: the first lines before the C++
/// backtrace, and, for an error raised inside TorchScript (whose first lines are
/// the TorchScript traceback), the final `RuntimeError: ...` line that says why.
pub(crate) fn first_line(s: &str) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let before_backtrace: Vec<&str> = lines
        .iter()
        .take_while(|l| !l.contains("Exception raised from") && !l.starts_with("frame #"))
        .copied()
        .collect();
    let mut keep: Vec<&str> = before_backtrace.iter().take(6).copied().collect();
    // The reason is the last `SomethingError: ...` line of the interpreter's report.
    let reason = before_backtrace.iter().rev().find(|l| {
        let t = l.trim_start();
        t.split_once(": ").is_some_and(|(kind, _)| {
            kind.ends_with("Error") && kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        })
    });
    if let Some(r) = reason.filter(|r| !keep.contains(r)) {
        keep.push("...");
        keep.push(r);
    }
    keep.join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_lose_their_backtrace() {
        let e = "shape mismatch\nException raised from foo at bar.cpp:1\nframe #0: x";
        assert_eq!(first_line(e), "shape mismatch");
    }

    #[test]
    fn a_torchscript_error_keeps_the_line_that_says_why() {
        // Issue #33: the traceback's first lines, then the RuntimeError that explains.
        let e = "The following operation failed in the TorchScript interpreter.\n\
                 Traceback of TorchScript, serialized code (most recent call last):\n\
                 File \"code/__torch__.py\", line 12, in forward\n  fc = self.fc\n  conv = self.conv\n\
                 _0 = torch.mean((conv).forward(x, ), [2, 3])\n  ~~~~ <--- HERE\n\
                 RuntimeError: Given groups=1, weight of size [8, 3, 3, 3], expected input[4, 1, 28, 28] to have 3 channels, but got 1 channels instead\n";
        let m = first_line(e);
        assert!(m.starts_with("The following operation failed"), "{m}");
        assert!(
            m.ends_with(
                "expected input[4, 1, 28, 28] to have 3 channels, but got 1 channels instead"
            ),
            "{m}"
        );
    }
}
