//! The verdict as Markdown (`--markdown FILE`, `$GITHUB_STEP_SUMMARY`).

use crate::format::format_p;
use crate::gate::{CheckResult, Mark, Verdict};
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
    for c in v.checks.iter().filter(|c| !c.rows.is_empty()) {
        angle_table(&mut out, c);
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

/// One check's angles as a table: the baseline's value, this run's, the change,
/// the paired McNemar p (accuracy checks against a baseline) and each failure's
/// mark, new against the baseline or already failing there. Open when the check
/// has failures, folded otherwise.
fn angle_table(out: &mut String, c: &CheckResult) {
    let count = |m: Mark| c.rows.iter().filter(|r| r.mark == m).count();
    let (new, old, fail) = (count(Mark::New), count(Mark::Old), count(Mark::Fail));
    let mut tally = vec![];
    if new > 0 {
        tally.push(format!("{new} new"));
    }
    if old > 0 {
        tally.push(format!("{old} already failing on the baseline"));
    }
    if fail > 0 {
        tally.push(format!("{fail} failing"));
    }
    let tally = if tally.is_empty() {
        "every angle passes".to_string()
    } else {
        tally.join(", ")
    };
    let open = if new + old + fail > 0 { " open" } else { "" };
    let _ = writeln!(
        out,
        "\n<details{open}><summary>{} {}: {} ({tally})</summary>\n",
        if c.passed { "✅" } else { "❌" },
        md_cell(&c.model),
        md_cell(&c.title)
    );
    let base = c.rows.iter().any(|r| r.baseline.is_some());
    let p = c.rows.iter().any(|r| r.p.is_some());
    out.push_str("| Angle |");
    if base {
        out.push_str(" Baseline |");
    }
    out.push_str(" Now |");
    if base {
        out.push_str(" Change |");
    }
    if p {
        out.push_str(" p |");
    }
    out.push_str(" |\n|---|");
    // Angle, Now and the mark, with Baseline and Change, and p.
    let cols = 3 + usize::from(base) * 2 + usize::from(p);
    out.push_str(&"---|".repeat(cols - 1));
    out.push('\n');
    let num = |v: Option<f64>| {
        v.filter(|x| x.is_finite())
            .map_or(String::new(), |x| format!("{x:.4}"))
    };
    for r in &c.rows {
        let _ = write!(out, "| {} |", md_cell(&r.pose.label()));
        if base {
            let _ = write!(out, " {} |", num(r.baseline));
        }
        let _ = write!(out, " {} |", num(Some(r.now)));
        if base {
            let change = r.baseline.map(|b| r.now - b).filter(|d| d.is_finite());
            let _ = write!(
                out,
                " {} |",
                change.map_or(String::new(), |d| format!("{d:+.4}"))
            );
        }
        if p {
            let _ = write!(out, " {} |", r.p.map_or(String::new(), format_p));
        }
        let mark = match r.mark {
            Mark::Pass => "",
            Mark::Fail => "❌ fails",
            Mark::New => "❌ **new**",
            Mark::Old => "⚠️ already failing on the baseline",
        };
        let _ = writeln!(out, " {mark} |");
    }
    out.push_str("\n</details>\n");
}
