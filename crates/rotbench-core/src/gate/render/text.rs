//! The verdict as the text `rotbench gate` prints: one line per model × check, then the notes.

use crate::gate::Verdict;
use std::fmt::Write as _;

/// The summary printed to stdout: one line per model × check, then the notes.
pub fn render_text(v: &Verdict) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "rotbench gate: {} ({} samples)", v.results, v.samples);
    for c in &v.checks {
        let _ = writeln!(
            out,
            "  {}  {}  {}: {}",
            if c.passed { "PASS" } else { "FAIL" },
            c.model,
            c.title,
            c.detail
        );
        for n in &c.notes {
            if n != &c.detail {
                let _ = writeln!(out, "        note: {n}");
            }
        }
    }
    for n in &v.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    let total = v.checks.len();
    if v.passed() {
        let _ = writeln!(
            out,
            "gate passed: all {total} check{} passed",
            if total == 1 { "" } else { "s" }
        );
    } else {
        let _ = writeln!(
            out,
            "gate FAILED: {} of {total} check{} failed",
            v.failures(),
            if total == 1 { "" } else { "s" }
        );
    }
    out
}
