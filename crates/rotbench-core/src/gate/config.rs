//! The checks a gate applies, from flags or the `[gate]` table of a TOML file,
//! and how the two layer (flags win, each check remembers its [`Origin`]).

use super::DEFAULT_BASELINE_DIR;
use crate::angles;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `angles` in the `[gate]` table: a spec string (`"0:360:30"`) or a list of numbers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum AngleSel {
    Spec(String),
    List(Vec<f64>),
}

/// `models` in the `[gate]` table: one name or a list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

pub(super) fn one_or_many<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<OneOrMany>::deserialize(d)?.map(|v| match v {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

/// The checks of one gate run. Every field is optional; the names are the
/// flags' in snake_case, so the `[gate]` table reads like the command line.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Minimum accuracy at every checked angle.
    pub min_accuracy: Option<f64>,
    /// Minimum mean accuracy over the checked angles.
    pub min_mean_accuracy: Option<f64>,
    /// Maximum acc(0) − acc(θ) at every checked angle.
    pub max_drop: Option<f64>,
    /// Minimum consistency (same prediction as at 0°) at every checked angle.
    pub min_consistency: Option<f64>,
    /// Minimum worst-of-sweep accuracy (always over the whole sweep): with
    /// `--translate`, the grid accuracy (`min_grid_accuracy` is the same key).
    #[serde(alias = "min_grid_accuracy")]
    pub min_worst_of_sweep: Option<f64>,
    /// Minimum worst-of-K accuracy (`sweep --worst-of K`).
    pub min_worst_of_k_accuracy: Option<f64>,
    /// Maximum expected calibration error at every checked angle.
    pub max_ece: Option<f64>,
    /// Maximum flip probability (always over the whole sweep's neighbouring pairs).
    pub max_flip_probability: Option<f64>,
    /// Minimum top-K accuracy (K as swept, `--top-k`) at every checked angle.
    pub min_top_k_accuracy: Option<f64>,
    /// Limit the checked angles.
    pub angles: Option<AngleSel>,
    /// Angles of single checks (`[gate.check_angles]`, e.g. `min_accuracy = [0]`),
    /// instead of `angles`: "0° at least 0.85, and no regression at any angle" in
    /// one file. Keys are the per-angle checks ([`PER_ANGLE_CHECKS`]).
    pub check_angles: Option<std::collections::BTreeMap<String, AngleSel>>,
    /// Limit the checked models (`model` is accepted too).
    #[serde(default, alias = "model", deserialize_with = "one_or_many")]
    pub models: Option<Vec<String>>,
    /// Baseline name (under `baseline_dir`) or folder path.
    pub baseline: Option<String>,
    pub baseline_dir: Option<PathBuf>,
    /// Largest tolerated significant accuracy fall against the baseline (default 0).
    pub max_regression: Option<f64>,
    /// Significance level of the McNemar test (default 0.05).
    pub significance: Option<f64>,
    /// A model that is not in the baseline passes the regression check (with a
    /// note) instead of failing it: new models are expected.
    pub allow_new_models: Option<bool>,
    /// A baseline model missing from the results, or a baseline angle missing from
    /// a model's results, passes with a note instead of failing the regression
    /// check: the user says that part of the baseline is expected to drop out.
    pub allow_missing: Option<bool>,
    /// Against a baseline, a threshold check fails only where the baseline
    /// passes: failures the baseline has too are marked and noted, not counted
    /// (pull requests are judged on what they change).
    pub only_new_failures: Option<bool>,
    /// Where `models` was set (`--model`, or the file and key), for messages.
    #[serde(skip)]
    pub models_from: Option<String>,
}

/// Where a set of checks came from, to name the flag or the file key in errors.
#[derive(Debug, Clone)]
pub enum Origin {
    Flags,
    File(PathBuf),
}

impl Origin {
    pub(crate) fn name(&self, key: &str) -> String {
        match self {
            Origin::Flags => format!("--{}", key.replace('_', "-")),
            Origin::File(p) => format!("{}: [gate] {key}", p.display()),
        }
    }
}

impl Checks {
    /// Flags override the file, field by field, by the one precedence rule the
    /// model spec uses too ([`crate::spec::layered`]: a flag, else the file).
    pub fn merge(file: Checks, flags: Checks) -> Checks {
        fn over<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
            crate::spec::layered(flag, file, None).map(|(v, _)| v)
        }
        let flag_models = flags.models.filter(|m| !m.is_empty());
        Checks {
            min_accuracy: over(flags.min_accuracy, file.min_accuracy),
            min_mean_accuracy: over(flags.min_mean_accuracy, file.min_mean_accuracy),
            max_drop: over(flags.max_drop, file.max_drop),
            min_consistency: over(flags.min_consistency, file.min_consistency),
            min_worst_of_sweep: over(flags.min_worst_of_sweep, file.min_worst_of_sweep),
            min_worst_of_k_accuracy: over(
                flags.min_worst_of_k_accuracy,
                file.min_worst_of_k_accuracy,
            ),
            max_ece: over(flags.max_ece, file.max_ece),
            max_flip_probability: over(flags.max_flip_probability, file.max_flip_probability),
            min_top_k_accuracy: over(flags.min_top_k_accuracy, file.min_top_k_accuracy),
            angles: over(flags.angles, file.angles),
            check_angles: over(flags.check_angles, file.check_angles),
            models_from: if flag_models.is_some() {
                flags.models_from
            } else {
                file.models_from
            },
            models: over(flag_models, file.models),
            baseline: over(flags.baseline, file.baseline),
            baseline_dir: over(flags.baseline_dir, file.baseline_dir),
            max_regression: over(flags.max_regression, file.max_regression),
            significance: over(flags.significance, file.significance),
            allow_new_models: over(flags.allow_new_models, file.allow_new_models),
            allow_missing: over(flags.allow_missing, file.allow_missing),
            only_new_failures: over(flags.only_new_failures, file.only_new_failures),
        }
    }

    /// True when at least one threshold or a baseline is set.
    pub fn any(&self) -> bool {
        self.min_accuracy.is_some()
            || self.min_mean_accuracy.is_some()
            || self.max_drop.is_some()
            || self.min_consistency.is_some()
            || self.min_worst_of_sweep.is_some()
            || self.min_worst_of_k_accuracy.is_some()
            || self.max_ece.is_some()
            || self.max_flip_probability.is_some()
            || self.min_top_k_accuracy.is_some()
            || self.baseline.is_some()
    }

    /// Range checks on each value, naming the flag or file key.
    pub fn validate(&self, origin: &Origin) -> Result<()> {
        let unit = [
            ("min_accuracy", self.min_accuracy, "an accuracy"),
            ("min_mean_accuracy", self.min_mean_accuracy, "an accuracy"),
            ("max_drop", self.max_drop, "an accuracy difference"),
            (
                "min_consistency",
                self.min_consistency,
                "a share of samples",
            ),
            ("min_worst_of_sweep", self.min_worst_of_sweep, "an accuracy"),
            (
                "min_worst_of_k_accuracy",
                self.min_worst_of_k_accuracy,
                "an accuracy",
            ),
            ("max_ece", self.max_ece, "a calibration error"),
            (
                "max_flip_probability",
                self.max_flip_probability,
                "a share of samples",
            ),
            ("min_top_k_accuracy", self.min_top_k_accuracy, "an accuracy"),
            (
                "max_regression",
                self.max_regression,
                "an accuracy difference",
            ),
        ];
        for (key, v, what) in unit {
            if let Some(v) = v {
                if !(0.0..=1.0).contains(&v) {
                    bail!(
                        "{} {v}: must be between 0 and 1 ({what}, e.g. 0.05 for 5 points)",
                        origin.name(key)
                    );
                }
            }
        }
        if let Some(a) = self.significance {
            if !(a > 0.0 && a <= 1.0) {
                bail!(
                    "{} {a}: must be above 0 and at most 1 (e.g. 0.05)",
                    origin.name("significance")
                );
            }
        }
        if let Some(sel) = &self.angles {
            sel_angles(sel, &origin.name("angles"))?;
        }
        for (key, sel) in self.check_angles.iter().flatten() {
            let name = origin.name(&format!("check_angles.{key}"));
            if !PER_ANGLE_CHECKS.contains(&key.as_str()) {
                bail!(
                    "{name}: not a per-angle check; check_angles takes {} (the others cover the whole sweep)",
                    PER_ANGLE_CHECKS.join(", ")
                );
            }
            sel_angles(sel, &name)?;
        }
        if let Some(b) = &self.baseline {
            if b.trim().is_empty() {
                bail!(
                    "{}: is empty; give a baseline name such as `main` or a folder path",
                    origin.name("baseline")
                );
            }
        }
        Ok(())
    }

    /// Checks that only make sense once flags and file are merged.
    pub fn validate_merged(&self) -> Result<()> {
        self.check_angles_set()?;
        if self.only_new_failures == Some(true) && self.baseline.is_none() {
            bail!("--only-new-failures (only_new_failures) tells new failures from the baseline's: add --baseline NAME");
        }
        if self.max_regression.is_some() && self.baseline.is_none() {
            bail!("--max-regression needs a baseline to compare with: add --baseline NAME (saved by `rotbench sweep ... --save-baseline NAME`)");
        }
        if !self.any() {
            bail!(
                "no checks given: add at least one of --min-accuracy, --min-mean-accuracy, --max-drop, \
                 --min-consistency, --min-worst-of-sweep, --max-ece, --max-flip-probability, \
                 --min-top-k-accuracy or --baseline, or --config FILE with a [gate] table"
            );
        }
        Ok(())
    }

    /// The folder named baselines live in: `baseline_dir` as layered (flags over
    /// the table), else [`DEFAULT_BASELINE_DIR`].
    pub fn baseline_folder(&self) -> PathBuf {
        self.baseline_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_BASELINE_DIR))
    }

    pub(crate) fn angle_list(&self) -> Option<Vec<f64>> {
        self.angles
            .as_ref()
            .and_then(|a| sel_angles(a, "angles").ok())
    }

    /// The angles of check `key` (snake_case): its own `check_angles`, else `angles`.
    pub(crate) fn angles_of(&self, key: &str) -> Option<Vec<f64>> {
        self.own_angles(key).or_else(|| self.angle_list())
    }

    /// The angles `[gate.check_angles]` gives check `key`, if any.
    pub(crate) fn own_angles(&self, key: &str) -> Option<Vec<f64>> {
        let sel = self.check_angles.as_ref()?.get(key)?;
        sel_angles(sel, key).ok()
    }

    /// A `check_angles` key for a check that is not set is a typo or a leftover.
    fn check_angles_set(&self) -> Result<()> {
        let set = [
            ("min_accuracy", self.min_accuracy.is_some()),
            ("min_mean_accuracy", self.min_mean_accuracy.is_some()),
            ("max_drop", self.max_drop.is_some()),
            ("min_consistency", self.min_consistency.is_some()),
            ("max_ece", self.max_ece.is_some()),
            ("min_top_k_accuracy", self.min_top_k_accuracy.is_some()),
            ("max_regression", self.baseline.is_some()),
        ];
        for key in self.check_angles.iter().flat_map(|c| c.keys()) {
            if !set.iter().any(|(k, on)| k == key && *on) {
                bail!("[gate.check_angles] {key}: that check is not set; set `{key}` too, or drop its angles");
            }
        }
        Ok(())
    }
}

/// The checks that look at each angle, which `check_angles` may narrow.
pub const PER_ANGLE_CHECKS: &[&str] = &[
    "min_accuracy",
    "min_mean_accuracy",
    "max_drop",
    "min_consistency",
    "max_ece",
    "min_top_k_accuracy",
    "max_regression",
];

/// An angle selection's angles, or an error naming `name`.
fn sel_angles(sel: &AngleSel, name: &str) -> Result<Vec<f64>> {
    match sel {
        AngleSel::Spec(s) => angles::parse(s).map_err(|e| anyhow!("{name}: {e}")),
        AngleSel::List(v) if v.is_empty() || v.iter().any(|a| !a.is_finite()) => {
            bail!("{name}: give a non-empty list of finite angles, or a spec like \"0:360:30\"")
        }
        AngleSel::List(v) => Ok(v.clone()),
    }
}

#[derive(Deserialize)]
pub(super) struct ConfigFile {
    gate: Option<toml::Value>,
}

/// Parse the `[gate]` table of a TOML file's text; other tables are ignored.
pub fn parse_config(text: &str, path: &Path) -> Result<Checks> {
    let file: ConfigFile = toml::from_str(text)
        .map_err(|e| anyhow!("{}: not valid TOML; fix the syntax:\n{e}", path.display()))?;
    let Some(table) = file.gate else {
        bail!(
            "{}: has no [gate] table; add one, e.g.\n[gate]\nmax_drop = 0.05\nmin_accuracy = 0.5",
            path.display()
        );
    };
    if !table.is_table() {
        bail!(
            "{}: `gate` must be a table (a [gate] section)",
            path.display()
        );
    }
    let mut checks: Checks = table.try_into().map_err(|e: toml::de::Error| {
        anyhow!(
            "{}: [gate]: {}; the keys are min_accuracy, min_mean_accuracy, max_drop, min_consistency, \
             min_worst_of_sweep (or min_grid_accuracy), min_worst_of_k_accuracy, max_ece, max_flip_probability, min_top_k_accuracy, angles, check_angles, models, \
             baseline, baseline_dir, max_regression, significance, allow_new_models, allow_missing, only_new_failures",
            path.display(),
            e.message().trim()
        )
    })?;
    checks.validate(&Origin::File(path.to_path_buf()))?;
    if checks.models.is_some() {
        checks.models_from = Some(Origin::File(path.to_path_buf()).name("models"));
    }
    Ok(checks)
}

/// Read and parse a config file (`--config` / `--gate-config`).
pub fn read_config(path: &Path, flag: &str) -> Result<Checks> {
    let text = crate::spec::read_user_text(path).map_err(|e| {
        anyhow!(
            "{flag} {}: cannot read ({e}); give a TOML file with a [gate] table",
            path.display()
        )
    })?;
    parse_config(&text, path)
}
