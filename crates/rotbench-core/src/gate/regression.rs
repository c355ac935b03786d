//! The regression check against a baseline: per model and angle, the fall in
//! accuracy on the same samples, which fails only when it exceeds
//! `max_regression` and the exact McNemar test on the paired per-sample
//! correctness is significant; and what the baseline holds that the results
//! do not (a model, an angle), which fails unless `allow_missing` says so.

use super::baseline::{Baseline, Predictions};
use super::config::Checks;
use super::verdict::{at_most, list, AngleValue, CheckResult};
use super::verdict::{AngleRow, Mark};
use super::{DEFAULT_SIGNIFICANCE, EPSILON};
use crate::format::{apart, format_p, plain};
use crate::metrics::Paired;
use crate::poses::Pose;
use crate::summary::{AngleMetrics, Summary};
use anyhow::{anyhow, bail, Result};

/// The regression check of a baseline model that is not in the results: a
/// failure, or a note with `allow_missing`.
pub(super) fn missing_model(
    model: &str,
    b: &Baseline,
    summary: &Summary,
    checks: &Checks,
) -> CheckResult {
    let have = summary
        .models
        .iter()
        .map(|m| m.id.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let allowed = checks.allow_missing == Some(true);
    let detail = if allowed {
        format!(
            "model {model} is in baseline {} but not in these results (models: {have}); not compared (allow_missing)",
            b.label
        )
    } else {
        format!(
            "model {model} is in baseline {} but not in these results (models: {have}), so it was never compared; \
             sweep it too, or if it left on purpose pass --allow-missing (allow_missing = true under [gate]), \
             or name the models to check with --model",
            b.label
        )
    };
    CheckResult {
        rows: Vec::new(),
        baseline_failed: None,
        model: model.into(),
        check: "max-regression".into(),
        threshold: checks.max_regression.unwrap_or(0.0),
        title: format!("max-regression vs baseline {}", b.label),
        passed: allowed,
        notes: if allowed {
            vec![detail.clone()]
        } else {
            vec![]
        },
        detail,
        failing: Vec::new(),
    }
}

/// One model against the baseline, angle by angle. `swept_all`: every angle of
/// the model's results when the user did not narrow them (`--angles`); then a
/// baseline angle missing from them fails the check (or, with `allow_missing`,
/// is noted).
pub(super) fn regression(
    model: &str,
    angles: &[&AngleMetrics],
    swept_all: Option<&[Pose]>,
    b: &Baseline,
    cur: &Predictions,
    checks: &Checks,
) -> Result<CheckResult> {
    let r = checks.max_regression.unwrap_or(0.0);
    let alpha = checks.significance.unwrap_or(DEFAULT_SIGNIFICANCE);
    let mut res = CheckResult {
        rows: Vec::new(),
        baseline_failed: None,
        model: model.into(),
        check: "max-regression".into(),
        threshold: r,
        title: format!(
            "max-regression ≤ {} vs baseline {} (McNemar α={})",
            plain(r),
            b.label,
            plain(alpha)
        ),
        passed: true,
        detail: String::new(),
        failing: Vec::new(),
        notes: Vec::new(),
    };
    if !b.predictions.models.iter().any(|m| m.name == model) {
        new_model(&mut res, b, checks);
        return Ok(res);
    }
    let falls = compare(&mut res, angles, b, cur, r, alpha)?;
    // An angle with nothing to compare against is a failure, not a pass: a gate
    // that compared nothing must not say the model did not regress.
    for &pose in &falls.not_in_base {
        res.failing.push(AngleValue {
            pose,
            value: f64::NAN,
            text: format!("not in baseline {}: nothing to compare", b.label),
        });
    }
    // A baseline angle that left the results: never compared.
    let not_in_results = not_in_results(model, swept_all, b);
    if !not_in_results.is_empty() {
        if checks.allow_missing == Some(true) {
            res.notes.push(format!(
                "baseline {} also has {} for {model}, not in these results; not compared (allow_missing)",
                b.label,
                angle_list_text(&not_in_results)
            ));
        } else {
            for &pose in &not_in_results {
                res.failing.push(AngleValue {
                    pose,
                    value: f64::NAN,
                    text: format!(
                        "in baseline {}, not in these results: never compared",
                        b.label
                    ),
                });
            }
        }
    }
    res.passed = res.failing.is_empty();
    res.detail = detail(&res, &falls, &not_in_results, b, checks, r, alpha);
    Ok(res)
}

/// A model the baseline does not hold: nothing to compare, which fails unless
/// `allow_new_models` expects it.
fn new_model(res: &mut CheckResult, b: &Baseline, checks: &Checks) {
    let model = res.model.as_str();
    let have = b
        .predictions
        .models
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if checks.allow_new_models == Some(true) {
        res.detail = format!(
            "model {model} is not in baseline {} (models: {have}); a new model, nothing to compare (allow_new_models)",
            b.label
        );
        res.notes.push(res.detail.clone());
    } else {
        res.passed = false;
        res.detail = format!(
            "model {model} is not in baseline {} (models: {have}), so nothing was compared; \
             if the model was renamed, save a new baseline; if new models are expected, pass --allow-new-models \
             (allow_new_models = true under [gate])",
            b.label
        );
    }
}

/// What comparing the checked angles with the baseline found, beyond the
/// failing angles and notes it added to the check.
struct Falls {
    /// The largest fall: (fall, pose, McNemar p).
    worst: Option<(f64, Pose, f64)>,
    /// How many checked angles the baseline has.
    compared: usize,
    /// The checked angles the baseline lacks.
    not_in_base: Vec<Pose>,
}

/// Pair the baseline's and the current per-sample correctness at each checked
/// angle: a fall beyond `r` with McNemar p < `alpha` fails that angle, one
/// within the noise is noted.
fn compare(
    res: &mut CheckResult,
    angles: &[&AngleMetrics],
    b: &Baseline,
    cur: &Predictions,
    r: f64,
    alpha: f64,
) -> Result<Falls> {
    let model = res.model.clone();
    let labels = &cur.labels;
    let n = labels.len();
    let mut falls = Falls {
        worst: None,
        compared: 0,
        not_in_base: Vec::new(),
    };
    for a in angles {
        let pose = a.pose();
        let now = cur.get(&model, pose).ok_or_else(|| {
            anyhow!("the results have no predictions for model {model} at {}; rerun the sweep without --no-predictions", pose.label())
        })?;
        let Some(base) = b.predictions.get(&model, pose) else {
            falls.not_in_base.push(pose);
            continue;
        };
        falls.compared += 1;
        let mut p = Paired::default();
        if base.len() != n || now.len() != n {
            bail!("baseline {}: model {model} at {} has {} predictions for {n} samples; save it again", b.label, pose.label(), base.len());
        }
        for ((&l, &bp), &np) in labels.iter().zip(base).zip(now) {
            p.add(bp == l as i32, np == l as i32);
        }
        let acc_base = (p.both + p.only_a) as f64 / n as f64;
        let acc_now = (p.both + p.only_b) as f64 / n as f64;
        // Exact from the counts: (only_base − only_now) / n.
        let fall = (p.only_a as f64 - p.only_b as f64) / n as f64;
        let pv = p.mcnemar();
        let significant = pv < alpha;
        if falls.worst.is_none_or(|(f, _, _)| fall > f) {
            falls.worst = Some((fall, pose, pv));
        }
        let fails = !at_most(fall, r) && significant;
        res.rows.push(AngleRow {
            pose,
            baseline: Some(acc_base),
            now: acc_now,
            p: Some(pv),
            mark: if fails { Mark::New } else { Mark::Pass },
        });
        if !at_most(fall, r) {
            if significant {
                res.failing.push(AngleValue {
                    pose,
                    value: fall,
                    text: format!(
                        "{:.4} → {:.4} (fell {}, McNemar p={})",
                        acc_base,
                        acc_now,
                        apart(fall, r, EPSILON),
                        format_p(pv)
                    ),
                });
            } else {
                res.notes.push(format!(
                    "fell {} at {} ({:.4} → {:.4}) but McNemar p={} ≥ {}: within noise",
                    apart(fall, r, EPSILON),
                    pose.label(),
                    acc_base,
                    acc_now,
                    format_p(pv),
                    plain(alpha)
                ));
            }
        }
    }
    Ok(falls)
}

/// The baseline's angles for `model` that are not among `swept_all` (none when
/// the user narrowed the angles).
fn not_in_results(model: &str, swept_all: Option<&[Pose]>, b: &Baseline) -> Vec<Pose> {
    let mut out = Vec::new();
    if let (Some(all), Some(bm)) = (
        swept_all,
        b.predictions.models.iter().find(|m| m.name == model),
    ) {
        out.extend(
            bm.angles
                .iter()
                .map(|a| a.pose)
                .filter(|a| !all.contains(a)),
        );
    }
    out
}

/// The check's one-line detail: what was compared, and why it failed.
fn detail(
    res: &CheckResult,
    falls: &Falls,
    not_in_results: &[Pose],
    b: &Baseline,
    checks: &Checks,
    r: f64,
    alpha: f64,
) -> String {
    let (compared, not_in_base) = (falls.compared, &falls.not_in_base);
    let missing_here = if checks.allow_missing == Some(true) {
        0
    } else {
        not_in_results.len()
    };
    let fell = res.failing.len() - not_in_base.len() - missing_here;
    if compared == 0 {
        format!(
            "no checked angle is in baseline {} ({}), so nothing was compared; save a new baseline over these angles, or narrow --angles to the baseline's",
            b.label,
            angle_list_text(not_in_base)
        )
    } else if !res.passed {
        let mut parts = Vec::new();
        if fell > 0 {
            parts.push(format!(
                "fell more than {} with McNemar p < {} at {fell} of {compared} angles",
                plain(r),
                plain(alpha)
            ));
        }
        if !not_in_base.is_empty() {
            parts.push(format!(
                "{} checked angle{} not in baseline {} ({}); save a new baseline over these angles, or narrow --angles",
                not_in_base.len(),
                if not_in_base.len() == 1 { " is" } else { "s are" },
                b.label,
                angle_list_text(not_in_base)
            ));
        }
        if missing_here > 0 {
            parts.push(format!(
                "{} baseline angle{} not in these results ({}), so never compared; sweep {} too, \
                 or if {} left on purpose pass --allow-missing (allow_missing = true under [gate]) or narrow --angles",
                missing_here,
                if missing_here == 1 { " is" } else { "s are" },
                angle_list_text(not_in_results),
                if missing_here == 1 { "it" } else { "them" },
                if missing_here == 1 { "it" } else { "they" },
            ));
        }
        format!("{}: {}", parts.join("; "), list(&res.failing))
    } else {
        // Here compared > 0, so `worst` is set; a missing one reads as no fall.
        match falls.worst.unwrap_or((0.0, Pose::rotation(0.0), 1.0)) {
            (f, _, _) if f <= 0.0 => format!(
                "no fall at any of {compared} angles against baseline {}",
                b.label
            ),
            (f, pose, pv) => format!(
                "largest fall {} at {} (McNemar p={}), {compared} angles compared",
                apart(f, r, EPSILON),
                pose.label(),
                format_p(pv)
            ),
        }
    }
}

fn angle_list_text(poses: &[Pose]) -> String {
    poses.iter().map(Pose::label).collect::<Vec<_>>().join(", ")
}
