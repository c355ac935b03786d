//! The verdict: each check's outcome on one model ([`CheckResult`], with its
//! failing angles), every outcome together ([`Verdict`]), and what every check
//! shares: the comparisons that hold at equality and the one-line list of
//! failing angles.

use super::EPSILON;
use crate::poses::Pose;
use serde::Serialize;

/// One failing pose (an angle, and its translation if any) and the value that
/// failed there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AngleValue {
    pub pose: Pose,
    pub value: f64,
    /// The value as shown, e.g. `0.1120 (56/500)`.
    pub text: String,
}

/// The outcome of one check on one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub model: String,
    /// The flag name without dashes: `min-accuracy`, `max-drop`, `max-regression`, ...
    pub check: String,
    pub threshold: f64,
    /// `max-drop ≤ 0.05`
    pub title: String,
    pub passed: bool,
    /// The numbers that decided it.
    pub detail: String,
    pub failing: Vec<AngleValue>,
    pub notes: Vec<String>,
    /// A per-angle check's every checked angle, for the pull-request table.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rows: Vec<AngleRow>,
    /// A whole-sweep check against a baseline: whether it failed there too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline_failed: Option<bool>,
}

/// How an angle of a check came out, against the baseline when there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mark {
    Pass,
    /// Failing, with no baseline to tell new from old.
    Fail,
    /// Failing here, passing (or absent) on the baseline: this change's doing.
    New,
    /// Failing here and on the baseline already.
    Old,
}

/// One checked angle of a per-angle check: the baseline's value and this run's,
/// the paired McNemar p of the accuracy there (when a baseline was compared), and
/// the mark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AngleRow {
    pub pose: Pose,
    pub baseline: Option<f64>,
    pub now: f64,
    pub p: Option<f64>,
    pub mark: Mark,
}

/// Every check on every model, plus notes about the run as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub results: String,
    pub samples: usize,
    pub checks: Vec<CheckResult>,
    pub notes: Vec<String>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
    pub fn failures(&self) -> usize {
        self.checks.iter().filter(|c| !c.passed).count()
    }
}

/// `value` meets the lower bound `min`, equality included (up to [`EPSILON`]).
pub(super) fn at_least(value: f64, min: f64) -> bool {
    value >= min - EPSILON
}

/// `value` meets the upper bound `max`, equality included (up to [`EPSILON`]).
pub(super) fn at_most(value: f64, max: f64) -> bool {
    value <= max + EPSILON
}

/// How many failing angles the one-line detail lists (JUnit's body lists all).
const LIST_MAX: usize = 24;

/// The failing angles as one line: `15° 0.1120 (56/500), 30° ...`.
pub(super) fn list(failing: &[AngleValue]) -> String {
    let mut s: Vec<String> = failing
        .iter()
        .take(LIST_MAX)
        .map(|f| format!("{} {}", f.pose.label(), f.text))
        .collect();
    if failing.len() > LIST_MAX {
        s.push(format!("and {} more", failing.len() - LIST_MAX));
    }
    s.join(", ")
}
