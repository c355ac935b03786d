//! The CI regression gate, pure logic: the checks (from flags or the `[gate]`
//! table of a TOML file), baselines (what `sweep --save-baseline` stores and
//! how `gate --baseline` reads it back and refuses a mismatched one), the
//! evaluation of a [`Summary`] into a [`Verdict`], and its three renderings
//! (human text, JUnit XML, Markdown). Nothing here writes a file or prints:
//! the binary's `commands/gate.rs` does.
//!
//! One file per concern: [`config`] (the checks), [`baseline`], [`verdict`]
//! (the outcome of each check), [`evaluate`] (the threshold checks),
//! [`regression`] (the check against a baseline) and [`render`] (text, JUnit,
//! Markdown).
//!
//! Thresholds hold at equality: an accuracy exactly at the minimum passes, a
//! drop exactly at the maximum passes. "Exactly" means the computed f64 equals
//! the threshold's f64 up to [`EPSILON`] (1e-12) on the passing side. The
//! tolerance only absorbs rounding in differences and means (1.0 − 0.9 is
//! 0.09999999999999998 in f64); it is far below 1/n, the smallest real change
//! in an accuracy, for any dataset under 10^11 samples, so it never passes a
//! sample that should fail.
//!
//! Against a baseline, an angle fails only when both hold: the accuracy fell by
//! more than `max_regression`, and the exact McNemar test on the paired
//! per-sample correctness is significant (p < `significance`). A fall within
//! the noise passes, with a note.

mod baseline;
mod config;
mod evaluate;
mod regression;
mod render;
mod verdict;

pub use baseline::{
    baseline_files, check_baseline_name, describe_baseline, load_baseline, read_summary,
    resolve_baseline, AnglePredictions, Baseline, BaselineOrigin, ModelPredictions, Predictions,
    BASELINE_FILES,
};
pub use config::{parse_config, read_config, AngleSel, Checks, Origin};
pub use evaluate::evaluate;
pub use render::{render_junit, render_markdown, render_text, xml_escape};
pub use verdict::{AngleRow, AngleValue, CheckResult, Mark, Verdict};

/// Slack on the passing side of every comparison (see the module docs).
pub const EPSILON: f64 = 1e-12;

/// Default significance level for the McNemar test against a baseline.
pub const DEFAULT_SIGNIFICANCE: f64 = 0.05;

/// Default folder for named baselines (relative to the working directory).
pub const DEFAULT_BASELINE_DIR: &str = ".rotbench/baselines";

#[cfg(test)]
mod tests;
