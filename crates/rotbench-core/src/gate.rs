//! The CI regression gate, pure logic: the checks (from flags or the `[gate]`
//! table of a TOML file), baselines (what `sweep --save-baseline` stores and
//! how `gate --baseline` reads it back and refuses a mismatched one), the
//! evaluation of a [`Summary`] into a [`Verdict`], and its three renderings
//! (human text, JUnit XML, Markdown). Nothing here writes a file or prints:
//! `src/commands/gate.rs` does, through [`crate::output`].
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

use crate::angles::{self, format_angle};
use crate::metrics::Paired;
use crate::results::SweepResult;
use crate::summary::{content_hash, AngleMetrics, ModelSummary, Summary, SCHEMA_VERSION};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Slack on the passing side of every comparison (see the module docs).
pub const EPSILON: f64 = 1e-12;

/// Default significance level for the McNemar test against a baseline.
pub const DEFAULT_SIGNIFICANCE: f64 = 0.05;

/// Default folder for named baselines (relative to the working directory).
pub const DEFAULT_BASELINE_DIR: &str = ".rotbench/baselines";

/// Version of the baseline's `predictions.json` layout.
pub const BASELINE_SCHEMA: u32 = 1;

// ---------------------------------------------------------------------------
// Checks

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
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
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
    /// Minimum worst-of-sweep accuracy (always over the whole sweep).
    pub min_worst_of_sweep: Option<f64>,
    /// Limit the checked angles.
    pub angles: Option<AngleSel>,
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
}

/// Where a set of checks came from, to name the flag or the file key in errors.
#[derive(Debug, Clone)]
pub enum Origin {
    Flags,
    File(PathBuf),
}

impl Origin {
    fn name(&self, key: &str) -> String {
        match self {
            Origin::Flags => format!("--{}", key.replace('_', "-")),
            Origin::File(p) => format!("{}: [gate] {key}", p.display()),
        }
    }
}

impl Checks {
    /// Flags override the file, field by field.
    pub fn merge(file: Checks, flags: Checks) -> Checks {
        Checks {
            min_accuracy: flags.min_accuracy.or(file.min_accuracy),
            min_mean_accuracy: flags.min_mean_accuracy.or(file.min_mean_accuracy),
            max_drop: flags.max_drop.or(file.max_drop),
            min_consistency: flags.min_consistency.or(file.min_consistency),
            min_worst_of_sweep: flags.min_worst_of_sweep.or(file.min_worst_of_sweep),
            angles: flags.angles.or(file.angles),
            models: flags.models.filter(|m| !m.is_empty()).or(file.models),
            baseline: flags.baseline.or(file.baseline),
            baseline_dir: flags.baseline_dir.or(file.baseline_dir),
            max_regression: flags.max_regression.or(file.max_regression),
            significance: flags.significance.or(file.significance),
            allow_new_models: flags.allow_new_models.or(file.allow_new_models),
        }
    }

    /// True when at least one threshold or a baseline is set.
    pub fn any(&self) -> bool {
        self.min_accuracy.is_some()
            || self.min_mean_accuracy.is_some()
            || self.max_drop.is_some()
            || self.min_consistency.is_some()
            || self.min_worst_of_sweep.is_some()
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
        if let Some(AngleSel::Spec(s)) = &self.angles {
            angles::parse(s).map_err(|e| anyhow!("{}: {e}", origin.name("angles")))?;
        }
        if let Some(AngleSel::List(v)) = &self.angles {
            if v.is_empty() || v.iter().any(|a| !a.is_finite()) {
                bail!(
                    "{}: give a non-empty list of finite angles, or a spec like \"0:360:30\"",
                    origin.name("angles")
                );
            }
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
        if self.max_regression.is_some() && self.baseline.is_none() {
            bail!("--max-regression needs a baseline to compare with: add --baseline NAME (saved by `rotbench sweep ... --save-baseline NAME`)");
        }
        if !self.any() {
            bail!(
                "no checks given: add at least one of --min-accuracy, --min-mean-accuracy, --max-drop, \
                 --min-consistency, --min-worst-of-sweep or --baseline, or --config FILE with a [gate] table"
            );
        }
        Ok(())
    }

    fn angle_list(&self) -> Option<Vec<f64>> {
        match &self.angles {
            None => None,
            Some(AngleSel::Spec(s)) => angles::parse(s).ok(),
            Some(AngleSel::List(v)) => Some(v.clone()),
        }
    }
}

#[derive(Deserialize)]
struct ConfigFile {
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
    let checks: Checks = table.try_into().map_err(|e: toml::de::Error| {
        anyhow!(
            "{}: [gate]: {}; the keys are min_accuracy, min_mean_accuracy, max_drop, min_consistency, \
             min_worst_of_sweep, angles, models, baseline, baseline_dir, max_regression, significance",
            path.display(),
            e.message().trim()
        )
    })?;
    checks.validate(&Origin::File(path.to_path_buf()))?;
    Ok(checks)
}

/// Read and parse a config file (`--config` / `--gate-config`).
pub fn read_config(path: &Path, flag: &str) -> Result<Checks> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow!(
            "{flag} {}: cannot read ({e}); give a TOML file with a [gate] table",
            path.display()
        )
    })?;
    parse_config(&text, path)
}

// ---------------------------------------------------------------------------
// Per-sample predictions and baselines

/// One model's predictions at one angle, aligned with [`Predictions::indices`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnglePredictions {
    pub angle: f64,
    /// Predicted class per sample; -1 for an invalid prediction (counts as wrong).
    pub preds: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPredictions {
    pub name: String,
    pub angles: Vec<AnglePredictions>,
}

/// Per-sample predictions of a sweep: what a paired comparison needs. A
/// baseline stores this as `predictions.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Predictions {
    pub schema: u32,
    pub dataset_sha256: String,
    /// Dataset sample indices, in sweep order.
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    pub models: Vec<ModelPredictions>,
}

impl Predictions {
    /// From a sweep held in memory (its models named as in the summary).
    pub fn from_sweep(summary: &Summary, result: &SweepResult) -> Predictions {
        Predictions {
            schema: BASELINE_SCHEMA,
            dataset_sha256: summary.dataset.sha256.clone(),
            indices: result.indices.clone(),
            labels: result.labels.clone(),
            models: summary
                .models
                .iter()
                .zip(&result.models)
                .map(|(m, ms)| ModelPredictions {
                    name: m.name.clone(),
                    angles: result
                        .angles
                        .iter()
                        .zip(&ms.preds)
                        .map(|(&angle, p)| AnglePredictions {
                            angle,
                            preds: p.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// From the `predictions.csv` a sweep wrote (columns model, angle, index, label, pred).
    pub fn from_csv(bytes: &[u8], path: &Path, summary: &Summary) -> Result<Predictions> {
        let bad = |what: String| {
            anyhow!(
                "{}: {what}; rerun `rotbench sweep` to write it again",
                path.display()
            )
        };
        let mut r = csv::Reader::from_reader(bytes);
        let headers = r
            .headers()
            .map_err(|e| bad(format!("cannot read the header ({e})")))?
            .clone();
        let col = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| bad(format!("has no `{name}` column")))
        };
        let (cm, ca, ci, cl, cp) = (
            col("model")?,
            col("angle")?,
            col("index")?,
            col("label")?,
            col("pred")?,
        );
        let mut out = Predictions {
            schema: BASELINE_SCHEMA,
            dataset_sha256: summary.dataset.sha256.clone(),
            indices: Vec::new(),
            labels: Vec::new(),
            models: Vec::new(),
        };
        // (model, angle) of the block being filled, and whether it is the first block.
        let mut cur: Option<(usize, usize)> = None;
        let mut first_block: Option<(usize, usize)> = None;
        for (line, rec) in r.records().enumerate() {
            let line = line + 2;
            let rec = rec.map_err(|e| bad(format!("line {line}: {e}")))?;
            let field = |i: usize| rec.get(i).unwrap_or("");
            let model = field(cm);
            let angle: f64 = field(ca).parse().map_err(|_| {
                bad(format!(
                    "line {line}: angle `{}` is not a number",
                    field(ca)
                ))
            })?;
            let index: u64 = field(ci).parse().map_err(|_| {
                bad(format!(
                    "line {line}: index `{}` is not a whole number",
                    field(ci)
                ))
            })?;
            let label: u32 = field(cl).parse().map_err(|_| {
                bad(format!(
                    "line {line}: label `{}` is not a whole number",
                    field(cl)
                ))
            })?;
            let pred: i32 = field(cp).parse().map_err(|_| {
                bad(format!(
                    "line {line}: pred `{}` is not a whole number",
                    field(cp)
                ))
            })?;
            let key = match cur {
                Some((m, a))
                    if out.models[m].name == model && out.models[m].angles[a].angle == angle =>
                {
                    (m, a)
                }
                _ => {
                    let m = match out.models.iter().position(|x| x.name == model) {
                        Some(m) => m,
                        None => {
                            out.models.push(ModelPredictions {
                                name: model.to_string(),
                                angles: Vec::new(),
                            });
                            out.models.len() - 1
                        }
                    };
                    if out.models[m].angles.iter().any(|x| x.angle == angle) {
                        return Err(bad(format!(
                            "line {line}: the rows of model {model} at {}° are not contiguous",
                            format_angle(angle)
                        )));
                    }
                    out.models[m].angles.push(AnglePredictions {
                        angle,
                        preds: Vec::new(),
                    });
                    let k = (m, out.models[m].angles.len() - 1);
                    if let Some(done) = cur {
                        let n = out.models[done.0].angles[done.1].preds.len();
                        if n != out.indices.len() {
                            return Err(bad(format!(
                                "model {} at {}° has {n} rows, not {}",
                                out.models[done.0].name,
                                format_angle(out.models[done.0].angles[done.1].angle),
                                out.indices.len()
                            )));
                        }
                    }
                    first_block.get_or_insert(k);
                    cur = Some(k);
                    k
                }
            };
            let preds = &mut out.models[key.0].angles[key.1].preds;
            let pos = preds.len();
            if first_block == Some(key) {
                out.indices.push(index);
                out.labels.push(label);
            } else if out.indices.get(pos) != Some(&index) || out.labels.get(pos) != Some(&label) {
                return Err(bad(format!(
                    "line {line}: sample {pos} of model {model} at {}° is index {index} label {label}, unlike the first block",
                    format_angle(angle)
                )));
            }
            preds.push(pred);
        }
        if let Some(done) = cur {
            let n = out.models[done.0].angles[done.1].preds.len();
            if n != out.indices.len() {
                return Err(bad(format!(
                    "the last block has {n} rows, not {}",
                    out.indices.len()
                )));
            }
        }
        if out.indices.is_empty() {
            return Err(bad("holds no predictions".into()));
        }
        Ok(out)
    }

    /// Every prediction list has one entry per sample.
    fn check_shape(&self, path: &Path) -> Result<()> {
        if self.labels.len() != self.indices.len() {
            bail!(
                "{}: {} labels for {} indices; the baseline is damaged, save it again",
                path.display(),
                self.labels.len(),
                self.indices.len()
            );
        }
        for m in &self.models {
            for a in &m.angles {
                if a.preds.len() != self.indices.len() {
                    bail!(
                        "{}: model {} at {}° has {} predictions for {} samples; the baseline is damaged, save it again",
                        path.display(),
                        m.name,
                        format_angle(a.angle),
                        a.preds.len(),
                        self.indices.len()
                    );
                }
            }
        }
        Ok(())
    }

    fn get(&self, model: &str, angle: f64) -> Option<&[i32]> {
        self.models
            .iter()
            .find(|m| m.name == model)?
            .angles
            .iter()
            .find(|a| a.angle == angle)
            .map(|a| a.preds.as_slice())
    }
}

/// A baseline read back from disk.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// How the user named it (`main` or a path), for messages.
    pub label: String,
    pub path: PathBuf,
    pub summary: Summary,
    pub predictions: Predictions,
}

/// Is `name` usable as a baseline name (a single folder name, no separators)?
pub fn check_baseline_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || !ok_chars || name.chars().all(|c| c == '.') || name.len() > 100 {
        bail!(
            "--save-baseline `{name}`: a baseline name uses only letters, digits, `-`, `_` and `.` \
             (no path separators, at most 100 characters), e.g. `main` or `v1.2`"
        );
    }
    Ok(())
}

/// The names a baseline folder holds.
pub const BASELINE_FILES: &[&str] = &["summary.json", "predictions.json"];

/// The files of a baseline folder: `summary.json` and `predictions.json`.
pub fn baseline_files(
    summary: &Summary,
    predictions: &Predictions,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut p = serde_json::to_vec(predictions)?;
    p.push(b'\n');
    // The baseline's summary.json names its own companion, so that a
    // predictions.json from another baseline is never read with it.
    let mut bound = summary.clone();
    bound.files = [("predictions.json".to_string(), content_hash(&p))].into();
    let mut s = serde_json::to_vec_pretty(&bound)?;
    s.push(b'\n');
    Ok(vec![
        ("summary.json".into(), s),
        ("predictions.json".into(), p),
    ])
}

/// Where `--baseline VALUE` points: a valid name is a folder under `dir`; anything else is a path.
pub fn resolve_baseline(value: &str, dir: &Path) -> PathBuf {
    if check_baseline_name(value).is_ok() {
        dir.join(value)
    } else {
        PathBuf::from(value)
    }
}

/// Load `--baseline VALUE` (a name under `dir`, or a folder path).
pub fn load_baseline(value: &str, dir: &Path) -> Result<Baseline> {
    let is_name = check_baseline_name(value).is_ok();
    let path = resolve_baseline(value, dir);
    let how = |name: &str| format!("create one with `rotbench sweep ... --save-baseline {name}`");
    if !path.is_dir() {
        if is_name {
            bail!(
                "--baseline {value}: no baseline `{value}` in {}; {}",
                dir.display(),
                how(value)
            );
        }
        bail!(
            "--baseline {value}: no such folder; give a baseline name (under --baseline-dir {}) or the folder of one; {}",
            dir.display(),
            how("NAME")
        );
    }
    let pred_path = path.join("predictions.json");
    let sum_path = path.join("summary.json");
    if !pred_path.is_file() || !sum_path.is_file() {
        bail!(
            "--baseline {value}: {} is not a rotbench baseline (it needs summary.json and predictions.json); {}",
            path.display(),
            how(if is_name { value } else { "NAME" })
        );
    }
    let summary = read_summary(&sum_path)
        .with_context(|| format!("--baseline {value}: cannot use the baseline"))?;
    let bytes = std::fs::read(&pred_path).map_err(|e| {
        anyhow!(
            "--baseline {value}: {}: cannot read ({e})",
            pred_path.display()
        )
    })?;
    summary
        .check_file(&sum_path, "predictions.json", &pred_path, &bytes)
        .map_err(|e| anyhow!("--baseline {value}: {e:#}; save the baseline again"))?;
    let predictions: Predictions = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("--baseline {value}: {}: not a rotbench baseline ({e}); save it again with --save-baseline", pred_path.display()))?;
    if predictions.schema != BASELINE_SCHEMA {
        bail!(
            "--baseline {value}: {} has layout version {}, this rotbench reads {BASELINE_SCHEMA}; save the baseline again",
            pred_path.display(),
            predictions.schema
        );
    }
    predictions.check_shape(&pred_path)?;
    Ok(Baseline {
        label: value.to_string(),
        path,
        summary,
        predictions,
    })
}

/// Read a `summary.json` written by `rotbench sweep`.
pub fn read_summary(path: &Path) -> Result<Summary> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow!("{}: cannot read ({e}); give the summary.json written by `rotbench sweep --out DIR` (or DIR)", path.display())
    })?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}: not JSON ({e}); give the summary.json written by `rotbench sweep`",
            path.display()
        )
    })?;
    match v.get("schema").and_then(|s| s.as_u64()) {
        Some(s) if s == SCHEMA_VERSION as u64 => {}
        Some(s) => bail!("{}: summary schema {s}, this rotbench reads {SCHEMA_VERSION}; rerun the sweep with this version", path.display()),
        None => bail!("{}: not a rotbench summary.json (no `schema`); give the summary.json written by `rotbench sweep`", path.display()),
    }
    serde_json::from_value(v).map_err(|e| {
        anyhow!(
            "{}: not a rotbench summary.json ({e}); rerun the sweep with this version of rotbench",
            path.display()
        )
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn index_range(ix: &[u64]) -> String {
    match (ix.first(), ix.last()) {
        (Some(a), Some(b)) => format!("indices {a}..{b}"),
        _ => "no indices".into(),
    }
}

impl Baseline {
    /// Refuse a baseline from another dataset or another set of samples.
    pub fn check_compatible(&self, summary: &Summary, current: &Predictions) -> Result<()> {
        let (b, c) = (&self.summary.dataset, &summary.dataset);
        if self.predictions.dataset_sha256 != current.dataset_sha256 || b.sha256 != c.sha256 {
            bail!(
                "--baseline {}: refused, it comes from a different dataset: baseline {} (sha256 {}…, {} samples), \
                 results {} (sha256 {}…, {} samples); compare on the same data, or save a new baseline from this \
                 dataset with `rotbench sweep ... --save-baseline NAME`",
                self.label,
                b.path,
                short(&self.predictions.dataset_sha256),
                b.n,
                c.path,
                short(&current.dataset_sha256),
                c.n
            );
        }
        if self.predictions.indices != current.indices || self.predictions.labels != current.labels
        {
            let (bi, ci) = (&self.predictions.indices, &current.indices);
            let first = bi.iter().zip(ci).position(|(x, y)| x != y);
            let diff = match first {
                _ if bi.len() != ci.len() => format!(
                    "baseline {} samples ({}), results {} samples ({})",
                    bi.len(),
                    index_range(bi),
                    ci.len(),
                    index_range(ci)
                ),
                Some(k) => format!(
                    "sample {k} is index {} in the baseline, {} in the results",
                    bi[k], ci[k]
                ),
                None => "the same indices carry different labels".into(),
            };
            let limit = match self.summary.settings.limit {
                Some(l) => format!("rerun the sweep with --limit {l} as the baseline did"),
                None => "rerun the sweep without --limit as the baseline did".into(),
            };
            bail!(
                "--baseline {}: refused, it covers different samples of dataset {}: {diff}; {limit}, or save a new \
                 baseline with `rotbench sweep ... --save-baseline NAME`",
                self.label,
                c.path
            );
        }
        Ok(())
    }

    /// Settings that differ between the baseline and these results (notes, not refusals).
    fn setting_notes(&self, summary: &Summary) -> Vec<String> {
        let (b, c) = (&self.summary.settings, &summary.settings);
        let mut out = Vec::new();
        let mut cmp = |what: &str, x: String, y: String| {
            if x != y {
                out.push(format!("the baseline used {what} {x}, these results {y}"));
            }
        };
        cmp(
            "interpolation",
            b.interpolation.clone(),
            c.interpolation.clone(),
        );
        cmp("fill", b.fill.clone(), c.fill.clone());
        cmp(
            "mask_circle",
            b.mask_circle.to_string(),
            c.mask_circle.to_string(),
        );
        cmp("inference", b.inference.clone(), c.inference.clone());
        out
    }
}

// ---------------------------------------------------------------------------
// Evaluation

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

fn at_least(value: f64, min: f64) -> bool {
    value >= min - EPSILON
}

fn at_most(value: f64, max: f64) -> bool {
    value <= max + EPSILON
}

/// A value with enough decimals (4 at least) to tell it apart from `threshold`.
fn fmt_vs(value: f64, threshold: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    for d in 4..=17 {
        let s = format!("{value:.d$}");
        if (value - threshold).abs() <= EPSILON || s != format!("{threshold:.d$}") {
            return s;
        }
    }
    format!("{value}")
}

fn deg(a: f64) -> String {
    format!("{}°", format_angle(a))
}

/// How many failing angles the one-line detail lists (JUnit's body lists all).
const LIST_MAX: usize = 24;

fn list(failing: &[AngleValue]) -> String {
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

fn frac(a: &AngleMetrics, value: f64, threshold: f64) -> String {
    format!("{} ({}/{})", fmt_vs(value, threshold), a.correct, a.n)
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
        fmt_num(threshold)
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
            fmt_num(threshold),
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

/// A threshold as the user wrote it (shortest round-trip form).
fn fmt_num(v: f64) -> String {
    format!("{v}")
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
                let swept: Vec<String> = m
                    .angles
                    .iter()
                    .filter(|a| a.in_sweep)
                    .map(|a| format_angle(a.angle))
                    .collect();
                bail!(
                    "--angles: {} not in the sweep of {} (swept: {}); check only swept angles, or sweep them",
                    missing.join(", "),
                    m.name,
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
                match summary.models.iter().find(|m| &m.name == n) {
                    Some(m) if out.iter().any(|o| o.name == m.name) => {}
                    Some(m) => out.push(m),
                    None => bail!(
                        "--model {n}: no such model in {results} (models: {}); name a swept model",
                        summary
                            .models
                            .iter()
                            .map(|m| m.name.as_str())
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
    }
    for m in models {
        let angles = checked_angles(m, sel.as_deref())?;
        let name = m.name.as_str();
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
                title: format!("min-mean-accuracy ≥ {}", fmt_num(t)),
                passed,
                detail: format!(
                    "mean accuracy {}{} over {} angle{}",
                    fmt_vs(mean, t),
                    if passed {
                        String::new()
                    } else {
                        format!(" < {}", fmt_num(t))
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
                |_, v| fmt_vs(v, t),
            ));
        }
        if let Some(t) = checks.min_consistency {
            verdict.checks.push(per_angle(
                name,
                "min-consistency",
                t,
                &angles,
                |a| a.consistency,
                |_, v| fmt_vs(v, t),
            ));
        }
        if let Some(t) = checks.min_worst_of_sweep {
            let s = &m.sweep;
            let passed = at_least(s.worst_of_sweep_accuracy, t);
            let swept = m.angles.iter().filter(|a| a.in_sweep).count();
            let mut notes = Vec::new();
            let narrowed = angles.len() != swept || angles.iter().any(|a| !a.in_sweep);
            if narrowed {
                notes.push(
                    "worst-of-sweep covers every swept angle; --angles does not narrow it".into(),
                );
            }
            verdict.checks.push(CheckResult {
                model: name.into(),
                check: "min-worst-of-sweep".into(),
                threshold: t,
                title: format!("min-worst-of-sweep ≥ {}", fmt_num(t)),
                passed,
                detail: format!(
                    "worst-of-sweep accuracy {} ({}/{}, correct at all {swept} swept angles){}",
                    fmt_vs(s.worst_of_sweep_accuracy, t),
                    s.worst_of_sweep_correct,
                    summary.dataset.n,
                    if passed {
                        String::new()
                    } else {
                        format!(" < {}", fmt_num(t))
                    }
                ),
                failing: Vec::new(),
                notes,
            });
        }
        if let Some((b, cur)) = baseline {
            verdict
                .checks
                .push(regression(name, &angles, b, cur, checks)?);
        }
    }
    Ok(verdict)
}

/// One model against the baseline, angle by angle.
fn regression(
    model: &str,
    angles: &[&AngleMetrics],
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
            fmt_num(r),
            b.label,
            fmt_num(alpha)
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
                        fmt_vs(fall, r),
                        fmt_p(pv)
                    ),
                });
            } else {
                res.notes.push(format!(
                    "fell {} at {} ({:.4} → {:.4}) but McNemar p={} ≥ {}: within noise",
                    fmt_vs(fall, r),
                    deg(a.angle),
                    acc_base,
                    acc_now,
                    fmt_p(pv),
                    fmt_num(alpha)
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
    res.passed = res.failing.is_empty();
    let fell = res.failing.len() - not_in_base.len();
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
                fmt_num(r),
                fmt_num(alpha)
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
                fmt_vs(f, r),
                deg(angle),
                fmt_p(pv)
            ),
        }
    };
    Ok(res)
}

fn angle_list_text(angles: &[f64]) -> String {
    angles
        .iter()
        .map(|&a| deg(a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A p-value with 2 significant digits (exact 1 shown as 1).
fn fmt_p(p: f64) -> String {
    if p >= 1.0 {
        "1".into()
    } else if p >= 0.01 {
        format!("{p:.2}")
    } else {
        format!("{p:.2e}")
    }
}

// ---------------------------------------------------------------------------
// Renderers

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
                    let _ = writeln!(body, "{}: {}", deg(f.angle), f.text);
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

fn md_cell(s: &str) -> String {
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

// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::DatasetInfo;
    use crate::results::{AnglePlan, Examples, ModelSweep};
    use crate::spec::{ModelSpec, Provenance};
    use crate::summary::{self, ModelMeta, Settings};

    const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    /// A real SweepResult and Summary from hand-made predictions:
    /// `preds[model][angle][sample]`, angles in `user` order (0 added if absent).
    fn fake(
        user: &[f64],
        labels: &[u32],
        preds: &[(&str, Vec<Vec<i32>>)],
        sha: &str,
    ) -> (Summary, SweepResult) {
        let AnglePlan {
            angles,
            reference_added,
            reference,
        } = AnglePlan::new(user);
        let nc = 10;
        let n = labels.len();
        let models: Vec<ModelSweep> = preds
            .iter()
            .map(|(_, p)| {
                // An added 0° reference: every sample correct there.
                let p: Vec<Vec<i32>> = if reference_added {
                    std::iter::once(labels.iter().map(|&l| l as i32).collect())
                        .chain(p.iter().cloned())
                        .collect()
                } else {
                    p.clone()
                };
                let ones = p.iter().map(|v| vec![1.0; v.len()]).collect();
                let tv = p.iter().map(|v| vec![0.0; v.len()]).collect();
                ModelSweep::tallied(p, ones, tv, labels, reference, nc)
            })
            .collect();
        let result = SweepResult {
            angles: angles.clone(),
            reference_added,
            reference,
            indices: (0..n as u64).collect(),
            labels: labels.to_vec(),
            models,
            examples: Examples::default(),
        };
        let spec = ModelSpec {
            input: [1, 28, 28],
            mean: vec![0.0],
            std: vec![1.0],
            classes: (0..nc).map(|c| c.to_string()).collect(),
            preprocess: Default::default(),
        };
        let prov = Provenance::new();
        let metas: Vec<ModelMeta<'_>> = preds
            .iter()
            .map(|(name, _)| ModelMeta {
                name,
                path: format!("{name}.pt"),
                sha256: SHA,
                spec: &spec,
                provenance: &prov,
            })
            .collect();
        let info = DatasetInfo {
            format: "idx".into(),
            path: "data".into(),
            len: n,
            start: 0,
            total: n,
            sha256: sha.into(),
            class_names: None,
            class_order: "model".into(),
            class_map: vec![],
            skipped: vec![],
        };
        let settings = Settings {
            angles: user.to_vec(),
            reference_angle: 0.0,
            reference_added,
            interpolation: "bilinear".into(),
            fill: "0".into(),
            mask_circle: false,
            batch_size: crate::summary::BatchSetting::Fixed(1),
            limit: None,
            device: "cpu".into(),
            inference: "exact".into(),
            rotate_on: "host".into(),
            backend: "torchscript".into(),
        };
        let s = summary::build(&result, &metas, &info, settings, "test");
        (s, result)
    }

    /// `k` of `n` samples correct: labels all 0 and the first `k` predictions 0.
    fn k_of(n: usize, k: usize) -> Vec<i32> {
        (0..n).map(|s| if s < k { 0 } else { 1 }).collect()
    }

    /// Ten samples: 10/10 correct at 0°, 9/10 at 90°, 7/10 at 180°.
    fn ten() -> Summary {
        let labels = vec![0u32; 10];
        fake(
            &[0.0, 90.0, 180.0],
            &labels,
            &[("net", vec![k_of(10, 10), k_of(10, 9), k_of(10, 7)])],
            SHA,
        )
        .0
    }

    fn run(s: &Summary, c: Checks) -> Verdict {
        evaluate(s, &c, None, "r/summary.json").unwrap()
    }

    fn one(s: &Summary, c: Checks) -> CheckResult {
        let v = run(s, c);
        assert_eq!(v.checks.len(), 1, "{v:?}");
        v.checks[0].clone()
    }

    #[test]
    fn min_accuracy_holds_at_equality_and_fails_just_below() {
        let s = ten();
        let at = one(
            &s,
            Checks {
                min_accuracy: Some(0.7),
                ..Default::default()
            },
        );
        assert!(at.passed, "{at:?}");
        assert!(at.detail.contains("0.7000 (7/10) at 180°"), "{}", at.detail);
        let beyond = one(
            &s,
            Checks {
                min_accuracy: Some(0.7 + 1e-9),
                ..Default::default()
            },
        );
        assert!(!beyond.passed);
        assert_eq!(beyond.failing.len(), 1);
        assert_eq!(beyond.failing[0].angle, 180.0);
        let one_sample = one(
            &s,
            Checks {
                min_accuracy: Some(0.9),
                ..Default::default()
            },
        );
        assert!(!one_sample.passed);
        assert_eq!(
            one_sample
                .failing
                .iter()
                .map(|f| f.angle)
                .collect::<Vec<_>>(),
            vec![180.0]
        );
        assert!(
            one_sample.detail.contains("180° 0.7000 (7/10)"),
            "{}",
            one_sample.detail
        );
    }

    #[test]
    fn max_drop_holds_at_equality_despite_float_rounding() {
        // 1.0 − 0.9 is 0.09999999999999998 and 1.0 − 0.7 is 0.30000000000000004 in f64.
        let s = ten();
        assert_eq!(s.models[0].angles[2].accuracy_drop, 1.0 - 0.7);
        assert!(s.models[0].angles[2].accuracy_drop > 0.3);
        let at = one(
            &s,
            Checks {
                max_drop: Some(0.3),
                ..Default::default()
            },
        );
        assert!(at.passed, "{at:?}");
        let beyond = one(
            &s,
            Checks {
                max_drop: Some(0.3 - 1e-9),
                ..Default::default()
            },
        );
        assert!(!beyond.passed);
        let tenth = one(
            &s,
            Checks {
                max_drop: Some(0.1),
                ..Default::default()
            },
        );
        assert!(!tenth.passed);
        assert_eq!(tenth.failing.len(), 1);
        assert!(
            tenth
                .detail
                .contains("drop above 0.1 at 1 of 3 angles: 180° 0.3000"),
            "{}",
            tenth.detail
        );
        let v = one(
            &s,
            Checks {
                max_drop: Some(0.1),
                angles: Some(AngleSel::Spec("0,90".into())),
                ..Default::default()
            },
        );
        assert!(v.passed, "{v:?}");
    }

    #[test]
    fn min_mean_accuracy_holds_at_equality() {
        // (1.0 + 0.9 + 0.7) / 3 = 0.8666…
        let s = ten();
        let mean = (1.0 + 0.9 + 0.7) / 3.0;
        assert!(
            one(
                &s,
                Checks {
                    min_mean_accuracy: Some(mean),
                    ..Default::default()
                }
            )
            .passed
        );
        assert!(
            one(
                &s,
                Checks {
                    min_mean_accuracy: Some(0.8666666666666667),
                    ..Default::default()
                }
            )
            .passed
        );
        let f = one(
            &s,
            Checks {
                min_mean_accuracy: Some(mean + 1e-9),
                ..Default::default()
            },
        );
        assert!(!f.passed);
        assert!(f.detail.contains("over 3 angles"), "{}", f.detail);
        // Limited to 90 and 180: (0.9 + 0.7) / 2 = 0.8.
        let c = Checks {
            min_mean_accuracy: Some(0.8),
            angles: Some(AngleSel::List(vec![90.0, 180.0])),
            ..Default::default()
        };
        assert!(one(&s, c.clone()).passed);
        assert!(
            !one(
                &s,
                Checks {
                    min_mean_accuracy: Some(0.8 + 1e-9),
                    ..c
                }
            )
            .passed
        );
    }

    #[test]
    fn min_consistency_holds_at_equality() {
        let s = ten();
        assert_eq!(s.models[0].angles[1].consistency, 0.9);
        assert!(
            one(
                &s,
                Checks {
                    min_consistency: Some(0.7),
                    ..Default::default()
                }
            )
            .passed
        );
        let f = one(
            &s,
            Checks {
                min_consistency: Some(0.8),
                ..Default::default()
            },
        );
        assert!(!f.passed);
        assert_eq!(f.failing[0].angle, 180.0);
    }

    #[test]
    fn min_worst_of_sweep_holds_at_equality() {
        // Samples 0..7 are correct everywhere: 7/10.
        let s = ten();
        assert_eq!(s.models[0].sweep.worst_of_sweep_correct, 7);
        let at = one(
            &s,
            Checks {
                min_worst_of_sweep: Some(0.7),
                ..Default::default()
            },
        );
        assert!(at.passed, "{at:?}");
        assert!(at.detail.contains("(7/10"), "{}", at.detail);
        assert!(
            !one(
                &s,
                Checks {
                    min_worst_of_sweep: Some(0.7 + 1e-9),
                    ..Default::default()
                }
            )
            .passed
        );
    }

    #[test]
    fn an_added_reference_is_not_gated_unless_named() {
        // 0 added as reference; 90 swept. All wrong at 90.
        let labels = vec![0u32; 4];
        let (s, _) = fake(&[90.0], &labels, &[("net", vec![vec![1; 4]])], SHA);
        let v = one(
            &s,
            Checks {
                min_accuracy: Some(0.5),
                ..Default::default()
            },
        );
        assert_eq!(v.failing.len(), 1);
        assert!(v.detail.contains("of 1 angles"), "{}", v.detail);
        let only0 = one(
            &s,
            Checks {
                min_accuracy: Some(0.5),
                angles: Some(AngleSel::Spec("0".into())),
                ..Default::default()
            },
        );
        assert!(only0.passed);
    }

    #[test]
    fn unknown_angles_and_models_are_errors_not_passes() {
        let s = ten();
        let e = evaluate(
            &s,
            &Checks {
                min_accuracy: Some(0.5),
                angles: Some(AngleSel::Spec("45".into())),
                ..Default::default()
            },
            None,
            "r",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--angles") && e.contains("45") && e.contains("swept: 0, 90, 180"),
            "{e}"
        );
        let e = evaluate(
            &s,
            &Checks {
                min_accuracy: Some(0.5),
                models: Some(vec!["other".into()]),
                ..Default::default()
            },
            None,
            "r",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--model other") && e.contains("net"), "{e}");
        let e = evaluate(&s, &Checks::default(), None, "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no checks given"), "{e}");
    }

    #[test]
    fn model_filter_limits_the_checked_models() {
        let labels = vec![0u32; 10];
        let (s, _) = fake(
            &[0.0, 90.0],
            &labels,
            &[
                ("a", vec![k_of(10, 10), k_of(10, 2)]),
                ("b", vec![k_of(10, 10), k_of(10, 10)]),
            ],
            SHA,
        );
        let v = run(
            &s,
            Checks {
                min_accuracy: Some(0.5),
                ..Default::default()
            },
        );
        assert_eq!(v.checks.len(), 2);
        assert!(!v.passed());
        let v = run(
            &s,
            Checks {
                min_accuracy: Some(0.5),
                models: Some(vec!["b".into()]),
                ..Default::default()
            },
        );
        assert_eq!(v.checks.len(), 1);
        assert!(v.passed());
    }

    #[test]
    fn thresholds_out_of_range_are_refused_naming_the_flag_or_key() {
        let e = Checks {
            min_accuracy: Some(1.5),
            ..Default::default()
        }
        .validate(&Origin::Flags)
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--min-accuracy 1.5"), "{e}");
        let e = Checks {
            max_drop: Some(f64::NAN),
            ..Default::default()
        }
        .validate(&Origin::Flags)
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--max-drop"), "{e}");
        let e = parse_config("[gate]\nsignificance = 0\n", Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("g.toml: [gate] significance"), "{e}");
        let e = Checks {
            max_regression: Some(0.1),
            min_accuracy: Some(0.1),
            ..Default::default()
        }
        .validate_merged()
        .unwrap_err()
        .to_string();
        assert!(e.contains("--max-regression needs a baseline"), "{e}");
    }

    // --- TOML

    #[test]
    fn the_gate_table_parses_with_the_flag_names_in_snake_case() {
        let text = r#"
            [other]
            ignored = true

            [gate]
            min_accuracy = 0        # an integer is fine
            min_mean_accuracy = 0.5
            max_drop = 0.05
            min_consistency = 0.25
            min_worst_of_sweep = 0.01
            angles = "0:360:30"
            models = ["mnist-cnn"]
            baseline = "main"
            baseline_dir = "ci/baselines"
            max_regression = 0.01
            significance = 0.01
        "#;
        let c = parse_config(text, Path::new("rotbench.toml")).unwrap();
        assert_eq!(c.min_accuracy, Some(0.0));
        assert_eq!(c.max_drop, Some(0.05));
        assert_eq!(c.min_worst_of_sweep, Some(0.01));
        assert_eq!(c.angles, Some(AngleSel::Spec("0:360:30".into())));
        assert_eq!(c.models, Some(vec!["mnist-cnn".to_string()]));
        assert_eq!(c.baseline.as_deref(), Some("main"));
        assert_eq!(c.baseline_dir, Some(PathBuf::from("ci/baselines")));
        assert_eq!(c.significance, Some(0.01));
        let c = parse_config(
            "[gate]\nangles = [0, 90, 180]\nmodel = \"x\"\n",
            Path::new("r.toml"),
        )
        .unwrap();
        assert_eq!(c.angles, Some(AngleSel::List(vec![0.0, 90.0, 180.0])));
        assert_eq!(c.models, Some(vec!["x".to_string()]));
    }

    #[test]
    fn the_committed_example_config_parses() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rotbench.example.toml");
        let c = read_config(&p, "--config").unwrap();
        assert!(c.any());
        assert!(c.max_drop.is_some());
    }

    #[test]
    fn bad_config_files_name_the_file_and_the_problem() {
        let p = Path::new("rotbench.toml");
        let e = parse_config("[gate]\nmin_acuracy = 0.5\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("rotbench.toml: [gate]") && e.contains("min_acuracy"),
            "{e}"
        );
        let e = parse_config("[tool]\nx = 1\n", p).unwrap_err().to_string();
        assert!(e.starts_with("rotbench.toml: has no [gate] table"), "{e}");
        let e = parse_config("[gate\n", p).unwrap_err().to_string();
        assert!(e.starts_with("rotbench.toml: not valid TOML"), "{e}");
        let e = parse_config("[gate]\nmax_drop = \"0.05\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rotbench.toml: [gate]"), "{e}");
        let e = parse_config("[gate]\nangles = \"0:360:0\"\n", p)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("rotbench.toml: [gate] angles"), "{e}");
        let e = read_config(Path::new("/nonexistent/rotbench.toml"), "--config")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--config /nonexistent/rotbench.toml: cannot read"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_the_file_field_by_field() {
        let file = parse_config(
            "[gate]\nmin_accuracy = 0.5\nmax_drop = 0.1\nmodels = [\"a\"]\nsignificance = 0.01\n",
            Path::new("f"),
        )
        .unwrap();
        let flags = Checks {
            max_drop: Some(0.2),
            models: Some(vec![]),
            ..Default::default()
        };
        let m = Checks::merge(file.clone(), flags);
        assert_eq!(m.min_accuracy, Some(0.5));
        assert_eq!(m.max_drop, Some(0.2));
        assert_eq!(
            m.models,
            Some(vec!["a".to_string()]),
            "an empty flag list keeps the file's models"
        );
        assert_eq!(m.significance, Some(0.01));
        let m = Checks::merge(
            file,
            Checks {
                models: Some(vec!["b".into()]),
                significance: Some(0.1),
                ..Default::default()
            },
        );
        assert_eq!(m.models, Some(vec!["b".to_string()]));
        assert_eq!(m.significance, Some(0.1));
    }

    // --- baselines

    /// Baseline and current predictions on 100 samples (label 0) at 0° and 90°.
    /// At 90°: `both` correct in both, `b` only in the baseline, `c` only now.
    /// Write files into a folder (the core never writes; its tests may).
    fn put(dir: &Path, files: &[(String, Vec<u8>)]) {
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    fn pair(both: usize, b: usize, c: usize) -> (Summary, Predictions, Baseline) {
        let n = 100;
        let labels = vec![0u32; n];
        // Label 0 is right, 1 wrong: `both` right in both, then `b` only in the baseline, then `c` only now.
        let base: Vec<i32> = (0..n).map(|s| if s < both + b { 0 } else { 1 }).collect();
        let now: Vec<i32> = (0..n)
            .map(|s| {
                if s < both || (both + b..both + b + c).contains(&s) {
                    0
                } else {
                    1
                }
            })
            .collect();
        let (bs, br) = fake(
            &[0.0, 90.0],
            &labels,
            &[("net", vec![k_of(n, n), base])],
            SHA,
        );
        let (cs, cr) = fake(
            &[0.0, 90.0],
            &labels,
            &[("net", vec![k_of(n, n), now])],
            SHA,
        );
        let bp = Predictions::from_sweep(&bs, &br);
        let cp = Predictions::from_sweep(&cs, &cr);
        let baseline = Baseline {
            label: "main".into(),
            path: PathBuf::from("b/main"),
            summary: bs,
            predictions: bp,
        };
        (cs, cp, baseline)
    }

    fn vs_baseline(
        both: usize,
        b: usize,
        c: usize,
        r: Option<f64>,
        alpha: Option<f64>,
    ) -> CheckResult {
        let (s, cur, base) = pair(both, b, c);
        let checks = Checks {
            baseline: Some("main".into()),
            max_regression: r,
            significance: alpha,
            ..Default::default()
        };
        let v = evaluate(&s, &checks, Some((&base, &cur)), "r").unwrap();
        assert_eq!(v.checks.len(), 1);
        v.checks[0].clone()
    }

    #[test]
    fn exact_mcnemar_p_values_of_the_constructed_sets_are_known() {
        // b=10, c=0: 2 * P(X <= 0), X ~ Bin(10, 1/2) = 2/1024 exactly.
        assert_eq!(crate::metrics::mcnemar_exact(10, 0), 0.001953125);
        // b=7, c=3: 2 * (1 + 10 + 45 + 120) / 1024 = 352/1024.
        assert!((crate::metrics::mcnemar_exact(7, 3) - 0.34375).abs() < 1e-15);
        assert!((crate::metrics::mcnemar_exact(3, 7) - 0.34375).abs() < 1e-15);
    }

    #[test]
    fn a_significant_fall_beyond_the_tolerance_fails() {
        // 80 correct in both, 10 only in the baseline: 0.90 -> 0.80, p = 0.00195.
        let r = vs_baseline(80, 10, 0, Some(0.05), None);
        assert!(!r.passed, "{r:?}");
        assert_eq!(r.failing.len(), 1);
        assert_eq!(r.failing[0].angle, 90.0);
        assert!((r.failing[0].value - 0.1).abs() < 1e-15);
        assert!(
            r.failing[0].text.contains("0.9000 → 0.8000")
                && r.failing[0].text.contains("p=1.95e-3"),
            "{}",
            r.failing[0].text
        );
        assert!(r.detail.contains("at 1 of 2 angles"), "{}", r.detail);
    }

    #[test]
    fn a_fall_within_the_noise_passes_with_a_note() {
        // 7 only in the baseline, 3 only now: fall 0.04, p = 0.34375.
        let r = vs_baseline(80, 7, 3, Some(0.01), None);
        assert!(r.passed, "{r:?}");
        assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
        assert!(
            r.notes[0].contains("fell 0.0400 at 90°")
                && r.notes[0].contains("p=0.34 ≥ 0.05: within noise"),
            "{}",
            r.notes[0]
        );
        // With a lenient alpha the same fall is significant.
        assert!(!vs_baseline(80, 7, 3, Some(0.01), Some(0.5)).passed);
    }

    #[test]
    fn the_regression_tolerance_holds_at_equality() {
        // Fall exactly 0.1, significant: passes at R = 0.1, fails just below.
        assert!(vs_baseline(80, 10, 0, Some(0.1), None).passed);
        assert!(!vs_baseline(80, 10, 0, Some(0.1 - 1e-9), None).passed);
        // Without --max-regression, any significant fall fails.
        assert!(!vs_baseline(80, 10, 0, None, None).passed);
    }

    #[test]
    fn significance_is_strict_p_below_alpha() {
        // p = 2^-9 exactly; at alpha = p the fall is not significant.
        assert!(vs_baseline(80, 10, 0, Some(0.0), Some(0.001953125)).passed);
        assert!(!vs_baseline(80, 10, 0, Some(0.0), Some(0.001953125 + 1e-9)).passed);
    }

    #[test]
    fn an_improvement_passes() {
        let r = vs_baseline(80, 0, 10, Some(0.0), None);
        assert!(r.passed);
        assert!(r.detail.contains("no fall"), "{}", r.detail);
    }

    #[test]
    fn a_baseline_from_another_dataset_or_other_samples_is_refused() {
        let (s, cur, mut base) = pair(80, 10, 0);
        let checks = Checks {
            baseline: Some("main".into()),
            ..Default::default()
        };
        base.predictions.dataset_sha256 = "b".repeat(64);
        let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--baseline main: refused, it comes from a different dataset")
                && e.contains("bbbbbbbbbbbb"),
            "{e}"
        );
        let (s, cur, mut base) = pair(80, 10, 0);
        base.predictions.indices.truncate(50);
        base.predictions.labels.truncate(50);
        let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("different samples")
                && e.contains("baseline 50 samples")
                && e.contains("results 100 samples"),
            "{e}"
        );
        let (s, cur, mut base) = pair(80, 10, 0);
        base.predictions.labels[3] = 4;
        let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("different labels"), "{e}");
    }

    #[test]
    fn a_baseline_whose_predictions_come_from_another_baseline_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let (_, _, a) = pair(80, 10, 0);
        let (_, _, b) = pair(80, 20, 0);
        for (name, base) in [("a", &a), ("b", &b)] {
            let dir = d.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            put(
                &dir,
                &baseline_files(&base.summary, &base.predictions).unwrap(),
            );
        }
        std::fs::copy(
            d.path().join("b/predictions.json"),
            d.path().join("a/predictions.json"),
        )
        .unwrap();
        let e = format!("{:#}", load_baseline("a", d.path()).unwrap_err());
        assert!(
            e.contains("does not belong to") && e.contains("save the baseline again"),
            "{e}"
        );
    }

    #[test]
    fn baselines_round_trip_through_their_files() {
        let d = tempfile::tempdir().unwrap();
        let (s, cur, base) = pair(80, 10, 0);
        let files = baseline_files(&base.summary, &base.predictions).unwrap();
        let dir = d.path().join("main");
        std::fs::create_dir_all(&dir).unwrap();
        put(&dir, &files);
        let loaded = load_baseline("main", d.path()).unwrap();
        assert_eq!(loaded.predictions, base.predictions);
        let by_path = load_baseline(dir.to_str().unwrap(), Path::new("/nowhere")).unwrap();
        let mut unbound = by_path.summary.clone();
        assert_eq!(
            unbound.files.keys().collect::<Vec<_>>(),
            ["predictions.json"],
            "the baseline's summary names its companion"
        );
        unbound.files.clear();
        assert_eq!(unbound, base.summary);
        let checks = Checks {
            baseline: Some("main".into()),
            max_regression: Some(0.05),
            ..Default::default()
        };
        assert!(!evaluate(&s, &checks, Some((&loaded, &cur)), "r")
            .unwrap()
            .passed());
        let e = load_baseline("nope", d.path()).unwrap_err().to_string();
        assert!(
            e.contains("no baseline `nope` in") && e.contains("--save-baseline nope"),
            "{e}"
        );
    }

    #[test]
    fn predictions_read_back_from_csv_match_the_sweep() {
        let labels: Vec<u32> = vec![3, 1, 4, 1, 5];
        let (s, r) = fake(
            &[90.0, 180.0],
            &labels,
            &[
                ("a", vec![vec![3, 1, 4, 0, 5], vec![-1, 1, 2, 1, 5]]),
                ("b", vec![vec![0; 5], vec![1; 5]]),
            ],
            SHA,
        );
        let mut csv = String::from("model,angle,index,label,pred,confidence\n");
        for m in &Predictions::from_sweep(&s, &r).models {
            for a in &m.angles {
                for (i, p) in a.preds.iter().enumerate() {
                    csv.push_str(&format!(
                        "{},{},{},{},{},0.5\n",
                        m.name,
                        format_angle(a.angle),
                        r.indices[i],
                        labels[i],
                        p
                    ));
                }
            }
        }
        let back = Predictions::from_csv(csv.as_bytes(), Path::new("p.csv"), &s).unwrap();
        assert_eq!(back, Predictions::from_sweep(&s, &r));
        let broken = csv.replacen("a,0,1,1,", "a,0,9,1,", 1);
        let e = Predictions::from_csv(broken.as_bytes(), Path::new("p.csv"), &s)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.csv: line"), "{e}");
    }

    #[test]
    fn baseline_names_are_single_folder_names() {
        for ok in ["main", "v1.2", "pr-17_b"] {
            check_baseline_name(ok).unwrap();
        }
        for bad in ["", "a/b", "..", ".", "a\\b", "x y", "ü"] {
            let e = check_baseline_name(bad).unwrap_err().to_string();
            assert!(e.starts_with("--save-baseline"), "{e}");
        }
        assert_eq!(
            resolve_baseline("main", Path::new("d")),
            PathBuf::from("d/main")
        );
        assert_eq!(
            resolve_baseline("./x/main", Path::new("d")),
            PathBuf::from("./x/main")
        );
    }

    // --- renderers

    fn failing_verdict() -> Verdict {
        let labels = vec![0u32; 10];
        let (s, _) = fake(
            &[0.0, 90.0, 180.0],
            &labels,
            &[
                ("a<&>\"'", vec![k_of(10, 10), k_of(10, 9), k_of(10, 7)]),
                ("b", vec![k_of(10, 10); 3]),
            ],
            SHA,
        );
        run(
            &s,
            Checks {
                min_accuracy: Some(0.8),
                max_drop: Some(0.05),
                ..Default::default()
            },
        )
    }

    #[test]
    fn junit_has_one_testcase_per_model_and_check_with_consistent_counts() {
        let v = failing_verdict();
        let xml = String::from_utf8(render_junit(&v)).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        assert_eq!(root.attribute("tests"), Some("4"));
        assert_eq!(root.attribute("failures"), Some("2"));
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 2);
        let mut total = 0;
        let mut failed = 0;
        for s in &suites {
            let cases: Vec<_> = s
                .children()
                .filter(|n| n.has_tag_name("testcase"))
                .collect();
            let fails = cases
                .iter()
                .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
                .count();
            assert_eq!(s.attribute("tests"), Some(cases.len().to_string().as_str()));
            assert_eq!(s.attribute("failures"), Some(fails.to_string().as_str()));
            total += cases.len();
            failed += fails;
        }
        assert_eq!((total, failed), (4, 2));
        assert_eq!(suites[0].attribute("name"), Some("rotbench gate: a<&>\"'"));
        let failure = suites[0]
            .descendants()
            .find(|n| n.has_tag_name("failure") && n.attribute("type") == Some("max-drop"))
            .unwrap();
        let msg = failure.attribute("message").unwrap();
        assert!(
            msg.contains("90° 0.1000") && msg.contains("180° 0.3000"),
            "{msg}"
        );
        assert!(failure.text().unwrap().contains("180°: 0.3000"));
        let names: Vec<_> = suites[1]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|c| c.attribute("name").unwrap())
            .collect();
        assert_eq!(names, vec!["min-accuracy ≥ 0.8", "max-drop ≤ 0.05"]);
    }

    #[test]
    fn xml_escaping_drops_forbidden_control_characters() {
        assert_eq!(xml_escape("a\u{1}b<"), "a\u{FFFD}b&lt;");
        let v = Verdict {
            results: "r".into(),
            samples: 1,
            checks: vec![CheckResult {
                model: "m\u{0}".into(),
                check: "c".into(),
                threshold: 0.0,
                title: "t]]>".into(),
                passed: false,
                detail: "d\u{1b}".into(),
                failing: vec![],
                notes: vec![],
            }],
            notes: vec![],
        };
        roxmltree::Document::parse(std::str::from_utf8(&render_junit(&v)).unwrap()).unwrap();
    }

    #[test]
    fn text_and_markdown_say_pass_or_fail_for_every_check() {
        let v = failing_verdict();
        let t = render_text(&v);
        assert_eq!(
            t.lines()
                .filter(|l| l.starts_with("  FAIL") || l.starts_with("  PASS"))
                .count(),
            4,
            "{t}"
        );
        assert!(
            !t.contains("FAIL  b") && t.contains("gate FAILED: 2 of 4 checks failed"),
            "{t}"
        );
        let md = render_markdown(&v);
        assert!(
            md.starts_with("### rotbench gate: ❌ failed (2 of 4 checks failed)"),
            "{md}"
        );
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| ")).count(),
            5,
            "{md}"
        );
        assert!(md.contains("a&lt;&amp;&gt;\"'"), "{md}");
        let ok = run(
            &ten(),
            Checks {
                min_accuracy: Some(0.0),
                ..Default::default()
            },
        );
        assert!(render_text(&ok).contains("gate passed: all 1 check passed"));
        assert!(render_markdown(&ok).contains("✅ passed"));
    }
}
