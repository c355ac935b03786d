//! The evaluation of a [`Summary`] against the checks and an optional baseline
//! into a [`Verdict`]: thresholds per angle, and regressions that count only when
//! the exact McNemar test on paired per-sample correctness is significant.

use super::baseline::{Baseline, Predictions};
use super::config::Checks;
use super::{DEFAULT_SIGNIFICANCE, EPSILON};
use crate::format::{apart, deg, format_angle, format_p, plain};
use crate::metrics::Paired;
use crate::summary::{AngleMetrics, ModelSummary, Summary};
use anyhow::{anyhow, bail, Result};
use serde::Serialize;

/// One failing angle and the value that failed there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AngleValue {
    pub angle: f64,
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

pub(super) fn at_least(value: f64, min: f64) -> bool {
    value >= min - EPSILON
}

pub(super) fn at_most(value: f64, max: f64) -> bool {
    value <= max + EPSILON
}

/// How many failing angles the one-line detail lists (JUnit's body lists all).
pub(super) const LIST_MAX: usize = 24;

pub(super) fn list(failing: &[AngleValue]) -> String {
    let mut s: Vec<String> = failing
        .iter()
        .take(LIST_MAX)
        .map(|f| format!("{} {}", deg(f.angle), f.text))
        .collect();
    if failing.len() > LIST_MAX {
        s.push(format!("and {} more", failing.len() - LIST_MAX));
    }
    s.join(", ")
}

pub(super) fn frac(a: &AngleMetrics, value: f64, threshold: f64) -> String {
    format!(
        "{} ({}/{})",
        apart(value, threshold, EPSILON),
        a.correct,
        a.n
    )
}

/// A per-angle check over the checked angles: `max-*` checks are upper bounds,
/// the others lower bounds.
pub(super) fn per_angle(
    model: &str,
    check: &str,
    threshold: f64,
    angles: &[&AngleMetrics],
    value: impl Fn(&AngleMetrics) -> f64,
    text: impl Fn(&AngleMetrics, f64) -> String,
) -> CheckResult {
    let upper = check.starts_with("max-");
    let what = check.trim_start_matches("max-").trim_start_matches("min-");
    let title = format!(
        "{check} {} {}",
        if upper { "≤" } else { "≥" },
        plain(threshold)
    );
    let ok = |v: f64| {
        if upper {
            at_most(v, threshold)
        } else {
            at_least(v, threshold)
        }
    };
    let failing: Vec<AngleValue> = angles
        .iter()
        .filter(|a| !ok(value(a)))
        .map(|a| AngleValue {
            angle: a.angle,
            value: value(a),
            text: text(a, value(a)),
        })
        .collect();
    // The angle that decided it: the worst one (NaN counts as worst).
    let worst = angles
        .iter()
        .copied()
        .fold(None::<&AngleMetrics>, |w, a| match w {
            None => Some(a),
            Some(w) => {
                let (va, vw) = (value(a), value(w));
                let worse = va.is_nan() || (!vw.is_nan() && if upper { va > vw } else { va < vw });
                Some(if worse { a } else { w })
            }
        });
    let n = angles.len();
    let detail = if failing.is_empty() {
        match worst {
            Some(w) => format!(
                "{} {what} {} at {} ({n} angle{} checked)",
                if upper { "largest" } else { "lowest" },
                text(w, value(w)),
                deg(w.angle),
                if n == 1 { "" } else { "s" }
            ),
            None => "no angle to check".into(),
        }
    } else {
        format!(
            "{what} {} {} at {} of {n} angles: {}",
            if upper { "above" } else { "below" },
            plain(threshold),
            failing.len(),
            list(&failing)
        )
    };
    CheckResult {
        model: model.to_string(),
        check: check.to_string(),
        threshold,
        title,
        passed: failing.is_empty(),
        detail,
        failing,
        notes: Vec::new(),
    }
}

/// The angles to check for one model: the swept ones, limited by `--angles`.
pub(super) fn checked_angles<'a>(
    m: &'a ModelSummary,
    sel: Option<&[f64]>,
) -> Result<Vec<&'a AngleMetrics>> {
    match sel {
        None => Ok(m.angles.iter().filter(|a| a.in_sweep).collect()),
        Some(sel) => {
            let missing: Vec<String> = sel
                .iter()
                .filter(|s| !m.angles.iter().any(|a| a.angle == **s))
                .map(|a| format_angle(*a))
                .collect();
            if !missing.is_empty() {
                let swept: Vec<String> = m
                    .angles
                    .iter()
                    .filter(|a| a.in_sweep)
                    .map(|a| format_angle(a.angle))
                    .collect();
                bail!(
                    "--angles: {} not in the sweep of {} (swept: {}); check only swept angles, or sweep them",
                    missing.join(", "),
                    m.id.name,
                    swept.join(", ")
                );
            }
            // An added reference is checked only when named explicitly.
            Ok(m.angles.iter().filter(|a| sel.contains(&a.angle)).collect())
        }
    }
}

/// Run every check on every selected model. `baseline` pairs a loaded baseline
/// with the current per-sample predictions. Errors are configuration errors
/// (an unknown model or angle, a mismatched baseline), not failed checks.
pub fn evaluate(
    summary: &Summary,
    checks: &Checks,
    baseline: Option<(&Baseline, &Predictions)>,
    results: &str,
) -> Result<Verdict> {
    checks.validate_merged()?;
    if checks.baseline.is_some() && baseline.is_none() {
        bail!("internal: a baseline was named but not loaded");
    }
    let sel = checks.angle_list();
    let models: Vec<&ModelSummary> = match &checks.models {
        None => summary.models.iter().collect(),
        Some(names) => {
            let mut out: Vec<&ModelSummary> = Vec::new();
            for n in names {
                match summary.models.iter().find(|m| &m.id.name == n) {
                    Some(m) if out.iter().any(|o| o.id.name == m.id.name) => {}
                    Some(m) => out.push(m),
                    None => bail!(
                        "{} `{n}`: no such model in {results} (models: {}); name a swept model",
                        checks.models_from.as_deref().unwrap_or("--model"),
                        summary
                            .models
                            .iter()
                            .map(|m| m.id.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            out
        }
    };
    let mut verdict = Verdict {
        results: results.to_string(),
        samples: summary.dataset.n,
        checks: Vec::new(),
        notes: Vec::new(),
    };
    if let Some((b, cur)) = baseline {
        b.check_compatible(summary, cur)?;
        verdict.notes.extend(b.setting_notes(summary));
        // A baseline model that left the results is a regression nobody would see,
        // unless the user narrowed the models on purpose (--model).
        if checks.models.is_none() {
            for gone in b
                .predictions
                .models
                .iter()
                .filter(|bm| !summary.models.iter().any(|m| m.id.name == bm.name))
            {
                verdict.checks.push(missing_model(&gone.name, b, summary, checks));
            }
        }
    }
    for m in models {
        let angles = checked_angles(m, sel.as_deref())?;
        let name = m.id.name.as_str();
        // Whether --angles checks other angles than the sweep's: the sweep-wide
        // checks (worst-of-sweep, flip probability) ignore it and say so.
        let swept = m.angles.iter().filter(|a| a.in_sweep).count();
        let narrowed = angles.len() != swept || angles.iter().any(|a| !a.in_sweep);
        if let Some(t) = checks.min_accuracy {
            verdict.checks.push(per_angle(
                name,
                "min-accuracy",
                t,
                &angles,
                |a| a.accuracy,
                |a, v| frac(a, v, t),
            ));
        }
        if let Some(t) = checks.min_mean_accuracy {
            let mean = if angles.is_empty() {
                f64::NAN
            } else {
                angles.iter().map(|a| a.accuracy).sum::<f64>() / angles.len() as f64
            };
            let passed = at_least(mean, t);
            verdict.checks.push(CheckResult {
                model: name.into(),
                check: "min-mean-accuracy".into(),
                threshold: t,
                title: format!("min-mean-accuracy ≥ {}", plain(t)),
                passed,
                detail: format!(
                    "mean accuracy {}{} over {} angle{}",
                    apart(mean, t, EPSILON),
                    if passed {
                        String::new()
                    } else {
                        format!(" < {}", plain(t))
                    },
                    angles.len(),
                    if angles.len() == 1 { "" } else { "s" }
                ),
                failing: Vec::new(),
                notes: Vec::new(),
            });
        }
        if let Some(t) = checks.max_drop {
            verdict.checks.push(per_angle(
                name,
                "max-drop",
                t,
                &angles,
                |a| a.accuracy_drop,
                |_, v| apart(v, t, EPSILON),
            ));
        }
        if let Some(t) = checks.min_consistency {
            verdict.checks.push(per_angle(
                name,
                "min-consistency",
                t,
                &angles,
                |a| a.consistency,
                |_, v| apart(v, t, EPSILON),
            ));
        }
        if let Some(t) = checks.min_worst_of_sweep {
            let s = &m.sweep;
            let passed = at_least(s.worst_of_sweep_accuracy, t);
            let mut notes = Vec::new();
            if narrowed {
                notes.push(
                    "worst-of-sweep covers every swept angle; --angles does not narrow it".into(),
                );
            }
            verdict.checks.push(CheckResult {
                model: name.into(),
                check: "min-worst-of-sweep".into(),
                threshold: t,
                title: format!("min-worst-of-sweep ≥ {}", plain(t)),
                passed,
                detail: format!(
                    "worst-of-sweep accuracy {} ({}/{}, correct at all {swept} swept angles){}",
                    apart(s.worst_of_sweep_accuracy, t, EPSILON),
                    s.worst_of_sweep_correct,
                    summary.dataset.n,
                    if passed {
                        String::new()
                    } else {
                        format!(" < {}", plain(t))
                    }
                ),
                failing: Vec::new(),
                notes,
            });
        }
        if let Some(t) = checks.max_ece {
            verdict.checks.push(per_angle(
                name,
                "max-ece",
                t,
                &angles,
                |a| a.ece,
                |_, v| apart(v, t, EPSILON),
            ));
        }
        if let Some(t) = checks.min_top_k_accuracy {
            let k = summary.settings.top_k;
            if angles.iter().any(|a| a.top_k_accuracy.is_none()) {
                bail!(
                    "--min-top-k-accuracy: {name} has no top-{k} accuracy in {results}: it has {} classes, \
                     not more than K = {k}; sweep again with a smaller --top-k, or drop the check",
                    m.id.spec.n_classes()
                );
            }
            verdict.checks.push(per_angle(
                name,
                &format!("min-top{k}-accuracy"),
                t,
                &angles,
                |a| a.top_k_accuracy.unwrap_or(f64::NAN),
                |_, v| apart(v, t, EPSILON),
            ));
        }
        if let Some(t) = checks.max_flip_probability {
            let s = &m.sweep;
            let Some(fp) = s.flip_probability else {
                bail!(
                    "--max-flip-probability: {results} swept {name} at one angle, so no prediction can flip; \
                     sweep two or more angles (e.g. --angles 0:360:15)"
                );
            };
            let passed = at_most(fp, t);
            let pairs = m
                .angles
                .iter()
                .filter(|a| a.in_sweep && a.flip_next.is_some())
                .count();
            let mut notes = Vec::new();
            if narrowed {
                notes.push(
                    "flip probability covers every neighbouring pair of the sweep; --angles does not narrow it"
                        .into(),
                );
            }
            verdict.checks.push(CheckResult {
                model: name.into(),
                check: "max-flip-probability".into(),
                threshold: t,
                title: format!("max-flip-probability ≤ {}", plain(t)),
                passed,
                detail: format!(
                    "flip probability {}{} (mean share of samples whose prediction changes to the next angle, over {} pair{}{})",
                    apart(fp, t, EPSILON),
                    if passed {
                        String::new()
                    } else {
                        format!(" > {}", plain(t))
                    },
                    pairs,
                    if pairs == 1 { "" } else { "s" },
                    match s.flip_probability_ci {
                        Some([lo, hi]) => format!("; 95% bootstrap interval {lo:.4}–{hi:.4}"),
                        None => String::new(),
                    }
                ),
                failing: Vec::new(),
                notes,
            });
        }
        if let Some((b, cur)) = baseline {
            // Without --angles, every baseline angle must be in the results.
            let swept_all: Option<Vec<f64>> = sel
                .is_none()
                .then(|| m.angles.iter().map(|a| a.angle).collect());
            verdict.checks.push(regression(
                name,
                &angles,
                swept_all.as_deref(),
                b,
                cur,
                checks,
            )?);
        }
    }
    Ok(verdict)
}

/// The regression check of a baseline model that is not in the results: a
/// failure, or a note with `allow_missing`.
fn missing_model(model: &str, b: &Baseline, summary: &Summary, checks: &Checks) -> CheckResult {
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
        model: model.into(),
        check: "max-regression".into(),
        threshold: checks.max_regression.unwrap_or(0.0),
        title: format!("max-regression vs baseline {}", b.label),
        passed: allowed,
        notes: if allowed { vec![detail.clone()] } else { vec![] },
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
    swept_all: Option<&[f64]>,
    b: &Baseline,
    cur: &Predictions,
    checks: &Checks,
) -> Result<CheckResult> {
    let r = checks.max_regression.unwrap_or(0.0);
    let alpha = checks.significance.unwrap_or(DEFAULT_SIGNIFICANCE);
    let mut res = CheckResult {
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
        return Ok(res);
    }
    let labels = &cur.labels;
    let n = labels.len();
    let mut not_in_base = Vec::new();
    let mut worst: Option<(f64, f64, f64)> = None; // (fall, angle, p)
    let mut compared = 0;
    for a in angles {
        let now = cur.get(model, a.angle).ok_or_else(|| {
            anyhow!("the results have no predictions for model {model} at {}; rerun the sweep without --no-predictions", deg(a.angle))
        })?;
        let Some(base) = b.predictions.get(model, a.angle) else {
            not_in_base.push(a.angle);
            continue;
        };
        compared += 1;
        let mut p = Paired::default();
        if base.len() != n || now.len() != n {
            bail!("baseline {}: model {model} at {} has {} predictions for {n} samples; save it again", b.label, deg(a.angle), base.len());
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
        if worst.is_none_or(|(f, _, _)| fall > f) {
            worst = Some((fall, a.angle, pv));
        }
        if !at_most(fall, r) {
            if significant {
                res.failing.push(AngleValue {
                    angle: a.angle,
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
                    deg(a.angle),
                    acc_base,
                    acc_now,
                    format_p(pv),
                    plain(alpha)
                ));
            }
        }
    }
    // An angle with nothing to compare against is a failure, not a pass: a gate
    // that compared nothing must not say the model did not regress.
    for &angle in &not_in_base {
        res.failing.push(AngleValue {
            angle,
            value: f64::NAN,
            text: format!("not in baseline {}: nothing to compare", b.label),
        });
    }
    // A baseline angle that left the results: never compared.
    let mut not_in_results = Vec::new();
    if let (Some(all), Some(bm)) = (
        swept_all,
        b.predictions.models.iter().find(|m| m.name == model),
    ) {
        not_in_results.extend(
            bm.angles
                .iter()
                .map(|a| a.angle)
                .filter(|a| !all.contains(a)),
        );
    }
    if !not_in_results.is_empty() {
        if checks.allow_missing == Some(true) {
            res.notes.push(format!(
                "baseline {} also has {} for {model}, not in these results; not compared (allow_missing)",
                b.label,
                angle_list_text(&not_in_results)
            ));
        } else {
            for &angle in &not_in_results {
                res.failing.push(AngleValue {
                    angle,
                    value: f64::NAN,
                    text: format!("in baseline {}, not in these results: never compared", b.label),
                });
            }
        }
    }
    res.passed = res.failing.is_empty();
    let missing_here = if checks.allow_missing == Some(true) {
        0
    } else {
        not_in_results.len()
    };
    let fell = res.failing.len() - not_in_base.len() - missing_here;
    res.detail = if compared == 0 {
        format!(
            "no checked angle is in baseline {} ({}), so nothing was compared; save a new baseline over these angles, or narrow --angles to the baseline's",
            b.label,
            angle_list_text(&not_in_base)
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
                angle_list_text(&not_in_base)
            ));
        }
        if missing_here > 0 {
            parts.push(format!(
                "{} baseline angle{} not in these results ({}), so never compared; sweep {} too, \
                 or if {} left on purpose pass --allow-missing (allow_missing = true under [gate]) or narrow --angles",
                missing_here,
                if missing_here == 1 { " is" } else { "s are" },
                angle_list_text(&not_in_results),
                if missing_here == 1 { "it" } else { "them" },
                if missing_here == 1 { "it" } else { "they" },
            ));
        }
        format!("{}: {}", parts.join("; "), list(&res.failing))
    } else {
        // Here compared > 0, so `worst` is set; a missing one reads as no fall.
        match worst.unwrap_or((0.0, 0.0, 1.0)) {
            (f, _, _) if f <= 0.0 => format!(
                "no fall at any of {compared} angles against baseline {}",
                b.label
            ),
            (f, angle, pv) => format!(
                "largest fall {} at {} (McNemar p={}), {compared} angles compared",
                apart(f, r, EPSILON),
                deg(angle),
                format_p(pv)
            ),
        }
    };
    Ok(res)
}

pub(super) fn angle_list_text(angles: &[f64]) -> String {
    angles
        .iter()
        .map(|&a| deg(a))
        .collect::<Vec<_>>()
        .join(", ")
}
