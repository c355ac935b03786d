//! Baselines: what `sweep --save-baseline` stores (summary.json and the sweep's
//! own predictions.csv, which that summary names by hash), reading them back
//! through [`PredictionRow`], and refusing one that does not belong to its
//! summary or to the current run.

use crate::hash::content_hash;
use crate::poses::Pose;
use crate::results::{PredictionRow, SweepResult};
use crate::summary::{Summary, SCHEMA_VERSION};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// One model's predictions at one pose, aligned with [`Predictions::indices`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnglePredictions {
    pub pose: Pose,
    /// Predicted class per sample; -1 for an invalid prediction (counts as wrong).
    pub preds: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelPredictions {
    pub name: String,
    pub angles: Vec<AnglePredictions>,
}

/// Per-sample predictions of a sweep: what a paired comparison needs, held in
/// memory; on disk they are `predictions.csv` rows ([`Predictions::from_csv`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
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
            dataset_sha256: summary.dataset.sha256.clone(),
            indices: result.indices.clone(),
            labels: result.labels.clone(),
            models: summary
                .models
                .iter()
                .zip(&result.models)
                .map(|(m, ms)| ModelPredictions {
                    name: m.id.name.clone(),
                    angles: result
                        .poses
                        .iter()
                        .zip(&ms.cols)
                        .map(|(&pose, c)| AnglePredictions {
                            pose,
                            preds: c.preds.clone(),
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
        for name in ["model", "angle", "index", "label", "pred"] {
            if !headers.iter().any(|h| h == name) {
                return Err(bad(format!("has no `{name}` column")));
            }
        }
        let mut out = Predictions {
            dataset_sha256: summary.dataset.sha256.clone(),
            indices: Vec::new(),
            labels: Vec::new(),
            models: Vec::new(),
        };
        // (model, angle) of the block being filled, and whether it is the first block.
        let mut cur: Option<(usize, usize)> = None;
        let mut first_block: Option<(usize, usize)> = None;
        let mut rec = csv::StringRecord::new();
        for line in 2.. {
            match r.read_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(bad(format!("line {line}: {e}"))),
            }
            let row: PredictionRow = rec.deserialize(Some(&headers)).map_err(|e| {
                let what = match e.kind() {
                    csv::ErrorKind::Deserialize { err, .. } => match err.field() {
                        Some(f) => format!(
                            "{} `{}`: {}",
                            headers.get(f as usize).unwrap_or("a field"),
                            rec.get(f as usize).unwrap_or(""),
                            err.kind()
                        ),
                        None => err.kind().to_string(),
                    },
                    _ => e.to_string(),
                };
                bad(format!("line {line}: {what}"))
            })?;
            let PredictionRow {
                model,
                angle,
                dx,
                dy,
                index,
                label,
                pred,
                draw,
                ..
            } = row;
            if draw.is_some() {
                continue; // a --worst-of draw: the gate compares the grid's points
            }
            let model: &str = &model;
            let pose = Pose { angle, dx, dy };
            let key = match cur {
                Some((m, a))
                    if out.models[m].name == model && out.models[m].angles[a].pose == pose =>
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
                    if out.models[m].angles.iter().any(|x| x.pose == pose) {
                        return Err(bad(format!(
                            "line {line}: the rows of model {model} at {} are not contiguous",
                            pose.label()
                        )));
                    }
                    out.models[m].angles.push(AnglePredictions {
                        pose,
                        preds: Vec::new(),
                    });
                    let k = (m, out.models[m].angles.len() - 1);
                    if let Some(done) = cur {
                        let n = out.models[done.0].angles[done.1].preds.len();
                        if n != out.indices.len() {
                            return Err(bad(format!(
                                "model {} at {} has {n} rows, not {}",
                                out.models[done.0].name,
                                out.models[done.0].angles[done.1].pose.label(),
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
                    "line {line}: sample {pos} of model {model} at {} is index {index} label {label}, unlike the first block",
                    pose.label()
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
    pub(crate) fn check_shape(&self, path: &Path) -> Result<()> {
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
                        "{}: model {} at {} has {} predictions for {} samples; the baseline is damaged, save it again",
                        path.display(),
                        m.name,
                        a.pose.label(),
                        a.preds.len(),
                        self.indices.len()
                    );
                }
            }
        }
        Ok(())
    }

    pub(crate) fn get(&self, model: &str, pose: Pose) -> Option<&[i32]> {
        self.models
            .iter()
            .find(|m| m.name == model)?
            .angles
            .iter()
            .find(|a| a.pose == pose)
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
    /// Where it came from (`origin.json`; absent from baselines saved before it).
    pub origin: Option<BaselineOrigin>,
}

/// Where a baseline came from: when it was saved, and the git commit of the
/// working directory (inside a repository) with whether it had uncommitted
/// changes. rotbench's version and the run's settings are in its summary.json.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BaselineOrigin {
    pub saved_utc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_dirty: Option<bool>,
}

/// The gate's note on the baseline it compared with: its name, where it came
/// from, and the settings its sweep ran with.
pub fn describe_baseline(b: &Baseline) -> String {
    let s = &b.summary;
    let mut text = format!("baseline `{}`", b.label);
    match &b.origin {
        Some(o) => {
            text.push_str(&format!(": saved {}", o.saved_utc));
            if let Some(c) = &o.git_commit {
                let dirty = if o.git_dirty == Some(true) {
                    " with uncommitted changes"
                } else {
                    ""
                };
                text.push_str(&format!(" at git commit {}{dirty}", &c[..c.len().min(12)]));
            }
        }
        None => text.push_str(": saved before baselines recorded their origin"),
    }
    let set = &s.settings;
    let samples = match (set.sample, set.limit) {
        (Some(n), _) => format!("{n} samples drawn with --sample, seed {}", set.seed),
        (None, Some(n)) => format!("the first {n} samples (--limit)"),
        (None, None) => format!("all {} samples", s.dataset.n),
    };
    text.push_str(&format!(
        ", by rotbench {}; {} angles, {samples}, interpolation {}, fill {}",
        s.rotbench_version,
        set.angles.len(),
        set.interpolation.name(),
        set.fill
    ));
    text
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
pub const BASELINE_FILES: &[&str] = &["summary.json", "predictions.csv", "origin.json"];

/// The files of a baseline folder: `summary.json`, bound to the sweep's
/// `predictions.csv` bytes ([`crate::report::csv::predictions_csv`]).
pub fn baseline_files(
    summary: &Summary,
    predictions_csv: Vec<u8>,
    origin: &BaselineOrigin,
) -> Result<Vec<(String, Vec<u8>)>> {
    // The baseline's summary.json names its own companion, so that a
    // predictions.csv from another baseline is never read with it.
    let mut bound = summary.clone();
    bound.files = [(
        "predictions.csv".to_string(),
        content_hash(&predictions_csv),
    )]
    .into();
    let mut s = serde_json::to_vec_pretty(&bound)?;
    s.push(b'\n');
    let mut o = serde_json::to_vec_pretty(origin)?;
    o.push(b'\n');
    Ok(vec![
        ("summary.json".into(), s),
        ("predictions.csv".into(), predictions_csv),
        ("origin.json".into(), o),
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
    let pred_path = path.join("predictions.csv");
    let sum_path = path.join("summary.json");
    if path.join("predictions.json").is_file() && !pred_path.is_file() {
        bail!(
            "--baseline {value}: {} was saved by an earlier rotbench (predictions.json; baselines now keep the sweep's predictions.csv); {}",
            path.display(),
            how(if is_name { value } else { "NAME" })
        );
    }
    if !pred_path.is_file() || !sum_path.is_file() {
        bail!(
            "--baseline {value}: {} is not a rotbench baseline (it needs summary.json and predictions.csv); {}",
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
        .check_file(&sum_path, "predictions.csv", &pred_path, &bytes)
        .map_err(|e| anyhow!("--baseline {value}: {e:#}; save the baseline again"))?;
    let predictions = Predictions::from_csv(&bytes, &pred_path, &summary)
        .map_err(|e| anyhow!("--baseline {value}: {e:#}"))?;
    predictions.check_shape(&pred_path)?;
    let origin_path = path.join("origin.json");
    let origin = match std::fs::read(&origin_path) {
        Err(_) => None,
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
            anyhow!(
                "--baseline {value}: {}: not a baseline origin ({e}); save the baseline again",
                origin_path.display()
            )
        })?),
    };
    Ok(Baseline {
        label: value.to_string(),
        path,
        summary,
        predictions,
        origin,
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
    crate::summary::require_labels(&v, path, "the gate")?;
    serde_json::from_value(v).map_err(|e| {
        anyhow!(
            "{}: not a rotbench summary.json ({e}); rerun the sweep with this version of rotbench",
            path.display()
        )
    })
}

pub(super) fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

pub(super) fn index_range(ix: &[u64]) -> String {
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
            let limit = match (self.summary.settings.limit, self.summary.settings.sample) {
                (Some(l), _) => format!("rerun the sweep with --limit {l} as the baseline did"),
                (None, Some(n)) => format!(
                    "rerun the sweep with --sample {n} --seed {} as the baseline did",
                    self.summary.settings.seed
                ),
                (None, None) => {
                    "rerun the sweep on all samples (without --limit or --sample) as the baseline did"
                        .into()
                }
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
    pub(crate) fn setting_notes(&self, summary: &Summary) -> Vec<String> {
        let (b, c) = (&self.summary.settings, &summary.settings);
        let mut out = Vec::new();
        let mut cmp =
            |what: &str, same: bool, x: &dyn std::fmt::Display, y: &dyn std::fmt::Display| {
                if !same {
                    out.push(format!("the baseline used {what} {x}, these results {y}"));
                }
            };
        cmp(
            "interpolation",
            b.interpolation == c.interpolation,
            &b.interpolation,
            &c.interpolation,
        );
        cmp("fill", b.fill == c.fill, &b.fill, &c.fill);
        cmp(
            "mask_circle",
            b.mask_circle == c.mask_circle,
            &b.mask_circle,
            &c.mask_circle,
        );
        cmp(
            "inference",
            b.inference == c.inference,
            &b.inference.name(),
            &c.inference.name(),
        );
        out
    }
}
