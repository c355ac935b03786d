//! The evaluation of a [`Summary`] against the checks and an optional baseline
//! into a [`Verdict`]: the threshold checks (per angle, or over the sweep), one
//! function each, and the regression check of [`super::regression`].

use super::baseline::{Baseline, Predictions};
use super::config::Checks;
use super::regression::{missing_model, regression};
use super::verdict::{at_least, at_most, list, AngleRow, AngleValue, CheckResult, Mark, Verdict};
use super::EPSILON;
use crate::format::{apart, format_angle, plain};
use crate::poses::Pose;
use crate::summary::{AngleMetrics, ModelSummary, Summary};
use anyhow::{bail, Result};

fn frac(a: &AngleMetrics, value: f64, threshold: f64) -> String {
    format!(
        "{} ({}/{})",
        apart(value, threshold, EPSILON),
        a.correct,
        a.n
    )
}

/// A per-angle check over the checked angles: `max-*` checks are upper bounds,
/// the others lower bounds.
fn per_angle(
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
            pose: a.pose(),
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
    let rows = angles
        .iter()
        .map(|a| AngleRow {
            pose: a.pose(),
            baseline: None,
            now: value(a),
            p: None,
            mark: if ok(value(a)) { Mark::Pass } else { Mark::Fail },
        })
        .collect();
    let n = angles.len();
    let detail = if failing.is_empty() {
        match worst {
            Some(w) => format!(
                "{} {what} {} at {} ({n} angle{} checked)",
                if upper { "largest" } else { "lowest" },
                text(w, value(w)),
                w.pose().label(),
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
        rows,
        baseline_failed: None,
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
fn checked_angles<'a>(m: &'a ModelSummary, sel: Option<&[f64]>) -> Result<Vec<&'a AngleMetrics>> {
    match sel {
        None => Ok(m.angles.iter().filter(|a| a.in_sweep).collect()),
        Some(sel) => {
            let missing: Vec<String> = sel
                .iter()
                .filter(|s| !m.angles.iter().any(|a| a.angle == **s))
                .map(|a| format_angle(*a))
                .collect();
            if !missing.is_empty() {
                let mut swept: Vec<String> = m
                    .angles
                    .iter()
                    .filter(|a| a.in_sweep)
                    .map(|a| format_angle(a.angle))
                    .collect();
                swept.dedup();
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
    let models = selected_models(summary, checks, results)?;
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
                verdict
                    .checks
                    .push(missing_model(&gone.name, b, summary, checks));
            }
        }
    }
    for m in models {
        let model = ModelChecks::new(summary, results, m, checked_angles(m, sel.as_deref())?);
        let mut mine = model.thresholds(checks)?;
        if let Some((b, _)) = baseline {
            against_baseline(&mut mine, b, m, checks, sel.as_deref(), results);
        }
        let first = verdict.checks.len();
        verdict.checks.extend(mine);
        if let Some((b, cur)) = baseline {
            let own = checks.angles_of("max_regression");
            let model = ModelChecks::new(summary, results, m, checked_angles(m, own.as_deref())?);
            // Without --angles, every baseline pose must be in the results.
            let swept_all: Option<Vec<Pose>> = own
                .is_none()
                .then(|| m.angles.iter().map(|a| a.pose()).collect());
            let reg = regression(
                model.name,
                &model.angles,
                swept_all.as_deref(),
                b,
                cur,
                checks,
            )?;
            // The paired p of each angle's accuracy, beside min-accuracy's values.
            for c in verdict.checks[first..]
                .iter_mut()
                .filter(|c| c.check == "min-accuracy")
            {
                for row in &mut c.rows {
                    row.p = reg
                        .rows
                        .iter()
                        .find(|r| r.pose == row.pose)
                        .and_then(|r| r.p);
                }
            }
            verdict.checks.push(reg);
        }
    }
    Ok(verdict)
}

/// Mark each threshold check's failures as new or already failing on the
/// baseline (the same checks run on the baseline's summary), with the baseline's
/// value at each angle; with `only_new_failures`, a check that fails only where
/// the baseline fails too passes, with a note. A baseline that cannot be checked
/// the same way (an angle it lacks) leaves the marks unset.
fn against_baseline(
    mine: &mut [CheckResult],
    b: &Baseline,
    m: &ModelSummary,
    checks: &Checks,
    sel: Option<&[f64]>,
    results: &str,
) {
    let Some(bm) = b.summary.models.iter().find(|x| x.id.name == m.id.name) else {
        return;
    };
    let Ok(angles) = checked_angles(bm, sel) else {
        return;
    };
    let Ok(theirs) = ModelChecks::new(&b.summary, results, bm, angles).thresholds(checks) else {
        return;
    };
    for c in mine.iter_mut() {
        let Some(t) = theirs.iter().find(|t| t.check == c.check) else {
            continue;
        };
        c.baseline_failed = Some(!t.passed);
        for row in &mut c.rows {
            let base = t.rows.iter().find(|r| r.pose == row.pose);
            row.baseline = base.map(|r| r.now);
            if row.mark == Mark::Fail {
                row.mark = match base.map(|r| r.mark) {
                    Some(Mark::Fail) => Mark::Old,
                    _ => Mark::New,
                };
            }
        }
        if checks.only_new_failures != Some(true) || c.passed {
            continue;
        }
        let old = c.rows.iter().filter(|r| r.mark == Mark::Old).count();
        let new = c.rows.iter().any(|r| r.mark == Mark::New);
        let whole_sweep_old = c.rows.is_empty() && !t.passed;
        if (!new && old > 0) || whole_sweep_old {
            c.passed = true;
            c.notes.push(format!(
                "fails only where baseline {} fails too{}; passed (only_new_failures)",
                b.label,
                if old > 0 {
                    format!(" ({old} angle{})", if old == 1 { "" } else { "s" })
                } else {
                    String::new()
                }
            ));
        }
    }
}

/// The models to check: all of them, or those `--model` names (each once).
fn selected_models<'a>(
    summary: &'a Summary,
    checks: &Checks,
    results: &str,
) -> Result<Vec<&'a ModelSummary>> {
    let Some(names) = &checks.models else {
        return Ok(summary.models.iter().collect());
    };
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
    Ok(out)
}

/// One model with its checked angles: what every threshold check reads.
struct ModelChecks<'a> {
    summary: &'a Summary,
    results: &'a str,
    m: &'a ModelSummary,
    name: &'a str,
    angles: Vec<&'a AngleMetrics>,
    /// How many angles the sweep swept.
    swept: usize,
    /// Whether --angles checks other angles than the sweep's: the sweep-wide
    /// checks (worst-of-sweep, flip probability) ignore it and say so.
    narrowed: bool,
}

impl<'a> ModelChecks<'a> {
    fn new(
        summary: &'a Summary,
        results: &'a str,
        m: &'a ModelSummary,
        angles: Vec<&'a AngleMetrics>,
    ) -> ModelChecks<'a> {
        let swept = m.angles.iter().filter(|a| a.in_sweep).count();
        let narrowed = angles.len() != swept || angles.iter().any(|a| !a.in_sweep);
        ModelChecks {
            summary,
            results,
            m,
            name: m.id.name.as_str(),
            angles,
            swept,
            narrowed,
        }
    }

    /// The same model with the angles of check `key` when `[gate.check_angles]`
    /// gives it its own.
    fn for_check(&self, checks: &Checks, key: &str) -> Result<ModelChecks<'a>> {
        let angles = match checks.own_angles(key) {
            None => self.angles.clone(),
            Some(own) => checked_angles(self.m, Some(&own))
                .map_err(|e| anyhow::anyhow!("[gate.check_angles] {key}: {e:#}"))?,
        };
        Ok(ModelChecks::new(self.summary, self.results, self.m, angles))
    }

    /// Every threshold check that `checks` sets, in a fixed order.
    fn thresholds(&self, checks: &Checks) -> Result<Vec<CheckResult>> {
        let mut out = Vec::new();
        if let Some(t) = checks.min_accuracy {
            out.push(per_angle(
                self.name,
                "min-accuracy",
                t,
                &self.for_check(checks, "min_accuracy")?.angles,
                |a| a.accuracy,
                |a, v| frac(a, v, t),
            ));
        }
        if let Some(t) = checks.min_mean_accuracy {
            out.push(
                self.for_check(checks, "min_mean_accuracy")?
                    .min_mean_accuracy(t),
            );
        }
        if let Some(t) = checks.max_drop {
            let c = self.for_check(checks, "max_drop")?;
            out.push(c.each_angle("max-drop", t, |a| a.accuracy_drop));
        }
        if let Some(t) = checks.min_consistency {
            let c = self.for_check(checks, "min_consistency")?;
            out.push(c.each_angle("min-consistency", t, |a| a.consistency));
        }
        if let Some(t) = checks.min_worst_of_sweep {
            out.push(self.min_worst_of_sweep(t));
        }
        if let Some(t) = checks.min_worst_of_k_accuracy {
            out.push(self.min_worst_of_k(t)?);
        }
        if let Some(t) = checks.max_ece {
            let c = self.for_check(checks, "max_ece")?;
            out.push(c.each_angle("max-ece", t, |a| a.ece));
        }
        if let Some(t) = checks.min_top_k_accuracy {
            out.push(
                self.for_check(checks, "min_top_k_accuracy")?
                    .min_top_k_accuracy(t)?,
            );
        }
        if let Some(t) = checks.max_flip_probability {
            out.push(self.max_flip_probability(t)?);
        }
        Ok(out)
    }

    /// A per-angle check whose values show with the decimals that tell them from `t`.
    fn each_angle(&self, check: &str, t: f64, value: impl Fn(&AngleMetrics) -> f64) -> CheckResult {
        per_angle(self.name, check, t, &self.angles, value, |_, v| {
            apart(v, t, EPSILON)
        })
    }

    fn min_mean_accuracy(&self, t: f64) -> CheckResult {
        let angles = &self.angles;
        let mean = if angles.is_empty() {
            f64::NAN
        } else {
            angles.iter().map(|a| a.accuracy).sum::<f64>() / angles.len() as f64
        };
        let passed = at_least(mean, t);
        CheckResult {
            rows: Vec::new(),
            baseline_failed: None,
            model: self.name.into(),
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
        }
    }

    fn min_worst_of_sweep(&self, t: f64) -> CheckResult {
        let s = &self.m.sweep;
        let passed = at_least(s.worst_of_sweep_accuracy, t);
        let mut notes = Vec::new();
        if self.narrowed {
            notes.push(
                "worst-of-sweep covers every swept angle; --angles does not narrow it".into(),
            );
        }
        CheckResult {
            rows: Vec::new(),
            baseline_failed: None,
            model: self.name.into(),
            check: "min-worst-of-sweep".into(),
            threshold: t,
            title: format!("min-worst-of-sweep ≥ {}", plain(t)),
            passed,
            detail: format!(
                "worst-of-sweep (grid) accuracy {} ({}/{}, correct at all {} swept {}){}",
                apart(s.worst_of_sweep_accuracy, t, EPSILON),
                s.worst_of_sweep_correct,
                self.summary.dataset.n,
                s.early_stop.as_ref().map_or(self.swept, |e| e.points),
                if s.worst_shift.is_some() || s.early_stop.is_some() {
                    "points of the grid"
                } else {
                    "angles"
                },
                if passed {
                    String::new()
                } else {
                    format!(" < {}", plain(t))
                }
            ),
            failing: Vec::new(),
            notes,
        }
    }

    fn min_worst_of_k(&self, t: f64) -> Result<CheckResult> {
        let (name, results) = (self.name, self.results);
        let Some(w) = &self.m.sweep.worst_of_k else {
            bail!(
                "--min-worst-of-k-accuracy: {name} has no worst-of-K accuracy in {results}: \
                 sweep with --worst-of K (e.g. --worst-of 10), or drop the check"
            );
        };
        let passed = at_least(w.accuracy, t);
        Ok(CheckResult {
            rows: Vec::new(),
            baseline_failed: None,
            model: name.into(),
            check: "min-worst-of-k-accuracy".into(),
            threshold: t,
            title: format!("min-worst-of-k-accuracy ≥ {}", plain(t)),
            passed,
            detail: format!(
                "worst-of-{} accuracy {} ({}/{}, right at all {} random poses){}",
                w.k,
                apart(w.accuracy, t, EPSILON),
                w.correct,
                self.summary.dataset.n,
                w.k,
                if passed {
                    String::new()
                } else {
                    format!(" < {}", plain(t))
                }
            ),
            failing: Vec::new(),
            notes: Vec::new(),
        })
    }

    fn min_top_k_accuracy(&self, t: f64) -> Result<CheckResult> {
        let (name, results) = (self.name, self.results);
        let k = self.summary.settings.top_k;
        if self.angles.iter().any(|a| a.top_k_accuracy.is_none()) {
            bail!(
                "--min-top-k-accuracy: {name} has no top-{k} accuracy in {results}: it has {} classes, \
                 not more than K = {k}; sweep again with a smaller --top-k, or drop the check",
                self.m.id.spec.n_classes()
            );
        }
        Ok(self.each_angle(&format!("min-top{k}-accuracy"), t, |a| {
            a.top_k_accuracy.unwrap_or(f64::NAN)
        }))
    }

    fn max_flip_probability(&self, t: f64) -> Result<CheckResult> {
        let (name, results) = (self.name, self.results);
        let s = &self.m.sweep;
        let Some(fp) = s.flip_probability else {
            bail!(
                "--max-flip-probability: {results} swept {name} at one angle, so no prediction can flip; \
                 sweep two or more angles (e.g. --angles 0:360:15)"
            );
        };
        let passed = at_most(fp, t);
        let pairs = self
            .m
            .angles
            .iter()
            .filter(|a| a.in_sweep && a.flip_next.is_some())
            .count();
        let mut notes = Vec::new();
        if self.narrowed {
            notes.push(
                "flip probability covers every neighbouring pair of the sweep; --angles does not narrow it"
                    .into(),
            );
        }
        Ok(CheckResult {
            rows: Vec::new(),
            baseline_failed: None,
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
        })
    }
}
