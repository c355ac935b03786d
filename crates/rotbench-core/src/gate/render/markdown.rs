//! The verdict as Markdown (`--markdown FILE`, `$GITHUB_STEP_SUMMARY`).

use crate::gate::Verdict;
use std::fmt::Write as _;

pub(super) fn md_cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], "<br>")
}

/// A Markdown section for a pull-request comment or `$GITHUB_STEP_SUMMARY`.
pub fn render_markdown(v: &Verdict) -> String {
    let mut out = String::new();
    let total = v.checks.len();
    if v.passed() {
        let _ = writeln!(
            out,
            "### rotbench gate: ✅ passed ({total} of {total} checks)\n"
        );
    } else {
        let _ = writeln!(
            out,
            "### rotbench gate: ❌ failed ({} of {total} checks failed)\n",
            v.failures()
        );
    }
    let _ = writeln!(
        out,
        "Results: `{}` ({} samples)\n",
        v.results.replace('`', "'"),
        v.samples
    );
    out.push_str("| Model | Check | Result | Decided by |\n|---|---|---|---|\n");
    for c in &v.checks {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            md_cell(&c.model),
            md_cell(&c.title),
            if c.passed { "✅ pass" } else { "❌ **fail**" },
            md_cell(&c.detail)
        );
    }
    let notes: Vec<String> = v
        .checks
        .iter()
        .flat_map(|c| {
            c.notes
                .iter()
                .filter(|n| *n != &c.detail)
                .map(move |n| format!("{}: {n}", c.model))
        })
        .chain(v.notes.iter().cloned())
        .collect();
    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for n in notes {
            let _ = writeln!(out, "- {}", md_cell(&n));
        }
    }
    out.push('\n');
    out
}
