//! The verdict as JUnit XML (`--junit FILE`): one test case per model × check.

use crate::gate::{CheckResult, Verdict};
use std::fmt::Write as _;

/// Escape text for XML attributes and content; drop characters XML 1.0 forbids.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` per model, one `<testcase>` per check; a failed
/// check carries `<failure message=...>` naming the angles and values.
pub fn render_junit(v: &Verdict) -> Vec<u8> {
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rotbench gate\" tests=\"{}\" failures=\"{}\" errors=\"0\">",
        v.checks.len(),
        v.failures()
    );
    let mut models: Vec<&str> = Vec::new();
    for c in &v.checks {
        if !models.contains(&c.model.as_str()) {
            models.push(&c.model);
        }
    }
    for m in models {
        let cases: Vec<&CheckResult> = v.checks.iter().filter(|c| c.model == m).collect();
        let fails = cases.iter().filter(|c| !c.passed).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"rotbench gate: {}\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" skipped=\"0\">",
            xml_escape(m),
            cases.len()
        );
        for c in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"rotbench.gate.{}\" name=\"{}\"",
                xml_escape(&c.model),
                xml_escape(&c.title)
            );
            let mut notes = c.notes.clone();
            notes.extend(v.notes.iter().cloned());
            if c.passed && notes.is_empty() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            if !c.passed {
                let mut body = format!("{}\n", c.detail);
                for f in &c.failing {
                    let _ = writeln!(body, "{}: {}", f.pose.label(), f.text);
                }
                let _ = writeln!(
                    out,
                    "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                    xml_escape(&c.detail),
                    xml_escape(&c.check),
                    xml_escape(&body)
                );
            }
            if c.passed {
                notes.insert(0, c.detail.clone());
            }
            if !notes.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    xml_escape(&notes.join("\n"))
                );
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out.into_bytes()
}
