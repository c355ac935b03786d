//! A sweep of data without labels: a folder of images without class folders,
//! read under `--protocol imagenet-p-rotate`, whose figures compare a model's
//! predictions with each other. This module owns that run's summary.json
//! ([`UnlabelledSummary`]), its `per_angle.csv` and `predictions.csv`, and the
//! table printed after it. Nothing here reads a label: accuracy, precision,
//! recall, calibration, confusion and every comparison of two models' hits are
//! absent, not computed against the placeholder label the samples carry
//! ([`crate::dataset::UNLABELLED`]). Readers that need labels (the gate, the
//! report) refuse such a summary ([`crate::summary::require_labels`]).

use crate::dataset::DatasetInfo;
use crate::format::{format_angle, num, num32};
use crate::metrics::bootstrap::{self, AngleInput};
use crate::metrics::calibration::{Calibration, ECE_BINS};
use crate::report::csv as csvx;
use crate::results::{top_k_text, ModelId, ModelSweep, SweepResult};
use crate::summary::{
    flip_rate, mean_ranking_distance, next_angles, pair_mean, DatasetSummary, ProtocolFigures,
    Settings, SCHEMA_VERSION,
};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// summary.json of a sweep without labels (`dataset.labelled` is false).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlabelledSummary {
    pub schema: u32,
    pub rotbench_version: String,
    pub libtorch_version: String,
    pub settings: Settings,
    pub dataset: DatasetSummary,
    pub models: Vec<UnlabelledModel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolFigures>,
    /// sha256 of each result file written beside it (as [`crate::summary::Summary::files`]).
    pub files: std::collections::BTreeMap<String, String>,
}

/// One model's label-free figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlabelledModel {
    #[serde(flatten)]
    pub id: ModelId,
    pub nonfinite_logits: u64,
    /// The mean of `flip_next` over the sweep's pairs: ImageNet-P's flip
    /// probability at `settings.difficulty` (absent with fewer than two angles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_probability: Option<f64>,
    /// Its 95% bootstrap interval (absent with --bootstrap 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_probability_ci: Option<[f64; 2]>,
    /// The mean of `top_k_distance_next` over the pairs (ImageNet-P's top-5 distance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_top_k_distance: Option<f64>,
    pub angles: Vec<UnlabelledAngle>,
}

/// One model at one pose, without labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnlabelledAngle {
    pub angle: f64,
    pub dx: f64,
    pub dy: f64,
    pub reference: bool,
    pub in_sweep: bool,
    pub n: u64,
    /// Share of samples predicted as at the reference (0°).
    pub consistency: f64,
    /// Mean total-variation distance to the reference's softmax.
    pub prob_shift: f64,
    pub mean_confidence: f64,
    /// Samples whose logits held NaN or inf.
    pub nonfinite: u64,
    /// Share of samples whose top-1 prediction changes from this pose to the
    /// one `settings.difficulty` steps on (absent where there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_next: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k_distance_next: Option<f64>,
    /// 95% bootstrap percentile intervals, resampled as a labelled sweep's are
    /// (absent with --bootstrap 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_next_ci: Option<[f64; 2]>,
}

/// The label-free summary of a sweep over data without labels.
pub fn build(
    result: &SweepResult,
    ids: &[ModelId],
    dataset: &DatasetInfo,
    settings: Settings,
    libtorch_version: &str,
) -> UnlabelledSummary {
    let next = next_angles(result, settings.difficulty);
    let n_classes = ids.first().map_or(0, |id| id.spec.classes.len());
    // Top-K distances only where the model has more than K classes.
    let top_k = n_classes > settings.top_k && settings.top_k > 0;
    let models = result
        .models
        .iter()
        .zip(ids)
        .map(|(ms, id)| model(result, ms, id, &next, top_k, &settings))
        .collect();
    UnlabelledSummary {
        schema: SCHEMA_VERSION,
        rotbench_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch_version: libtorch_version.to_string(),
        settings,
        dataset: DatasetSummary {
            n: result.indices.len(),
            ..dataset.into()
        },
        models,
        protocol: None,
        files: Default::default(),
    }
}

fn model(
    result: &SweepResult,
    ms: &ModelSweep,
    id: &ModelId,
    next: &[Option<usize>],
    top_k: bool,
    settings: &Settings,
) -> UnlabelledModel {
    let reps = replicates(result, ms, next, settings);
    let angles: Vec<UnlabelledAngle> = result
        .poses
        .iter()
        .enumerate()
        .map(|(a, pose)| {
            let c = &ms.counts[a];
            let n = ms.preds(a).len() as u64;
            let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
            // Mean confidence as the labelled summary computes it; the
            // correctness argument feeds only ECE, which is not read here.
            let mut conf = Calibration::new(ECE_BINS);
            for &p in &ms.cols[a].confidence {
                conf.add(p as f64, false, 1.0);
            }
            UnlabelledAngle {
                angle: pose.angle,
                dx: pose.dx,
                dy: pose.dy,
                reference: a == result.reference,
                in_sweep: result.user_poses().contains(&a),
                n,
                consistency: per(c.consistent as f64),
                prob_shift: per(c.prob_shift_sum),
                mean_confidence: conf.mean_confidence(),
                nonfinite: c.nonfinite,
                flip_next: next[a].map(|b| flip_rate(ms, a, b)),
                top_k_distance_next: next[a]
                    .filter(|_| top_k)
                    .map(|b| mean_ranking_distance(ms, a, b)),
                consistency_ci: reps.get(a).map(|r| interval(r.iter().map(|x| x.0))),
                flip_next_ci: reps
                    .get(a)
                    .filter(|_| next[a].is_some())
                    .map(|r| interval(r.iter().map(|x| x.1))),
            }
        })
        .collect();
    let swept: Vec<&UnlabelledAngle> = result.user_poses().map(|i| &angles[i]).collect();
    // Per replicate, the mean flip rate over the pairs (as a labelled sweep's).
    let pairs: Vec<usize> = result.user_poses().filter(|&a| next[a].is_some()).collect();
    let flip_probability_ci = (!reps.is_empty() && !pairs.is_empty()).then(|| {
        interval(
            (0..settings.bootstrap)
                .map(|k| pairs.iter().map(|&a| reps[a][k].1).sum::<f64>() / pairs.len() as f64),
        )
    });
    UnlabelledModel {
        id: id.clone(),
        nonfinite_logits: ms.counts.iter().map(|c| c.nonfinite).sum(),
        flip_probability: pair_mean(swept.iter().map(|a| a.flip_next)),
        flip_probability_ci,
        mean_top_k_distance: pair_mean(swept.iter().map(|a| a.top_k_distance_next)),
        angles,
    }
}

/// `[angle][replicate]` (consistency, flip rate) of one model, resampled with
/// the labelled sweep's draws ([`bootstrap::weights`]); empty with --bootstrap 0.
fn replicates(
    result: &SweepResult,
    ms: &ModelSweep,
    next: &[Option<usize>],
    settings: &Settings,
) -> Vec<Vec<(f64, f64)>> {
    let n = result.indices.len();
    if settings.bootstrap == 0 || n == 0 {
        return vec![];
    }
    let inputs: Vec<AngleInput> = (0..result.poses.len())
        .map(|a| AngleInput {
            preds: ms.preds(a),
            reference: ms.preds(result.reference),
            next: next[a].map(|b| ms.preds(b)),
            confidence: &[],
        })
        .collect();
    let per_rep: Vec<Vec<(f64, f64)>> = (0..settings.bootstrap as u64)
        .into_par_iter()
        .map(|r| {
            let w = bootstrap::weights(settings.seed, r, n);
            inputs.iter().map(|i| bootstrap::agreement(i, &w)).collect()
        })
        .collect();
    (0..inputs.len())
        .map(|a| per_rep.iter().map(|rep| rep[a]).collect())
        .collect()
}

fn interval(values: impl Iterator<Item = f64>) -> [f64; 2] {
    bootstrap::interval(&values.collect::<Vec<_>>())
}

/// The columns of a label-free `per_angle.csv`.
pub fn per_angle_columns(top_k: usize) -> Vec<String> {
    let mut c: Vec<String> = [
        "model",
        "angle",
        "dx",
        "dy",
        "reference",
        "in_sweep",
        "n",
        "consistency",
        "prob_shift",
        "mean_confidence",
        "nonfinite",
        "flip_next",
    ]
    .map(String::from)
    .to_vec();
    c.push(format!("top{top_k}_distance_next"));
    for m in ["consistency", "flip_next"] {
        c.push(format!("{m}_ci_low"));
        c.push(format!("{m}_ci_high"));
    }
    c
}

/// `per_angle.csv` of a sweep without labels: a row per model and pose.
pub fn per_angle_csv(s: &UnlabelledSummary) -> Result<Vec<u8>> {
    let mut w = csvx::writer();
    w.write_record(per_angle_columns(s.settings.top_k))?;
    for m in &s.models {
        for a in &m.angles {
            let mut row = vec![
                m.id.name.clone(),
                format_angle(a.angle),
                format_angle(a.dx),
                format_angle(a.dy),
                a.reference.to_string(),
                a.in_sweep.to_string(),
                a.n.to_string(),
                num(a.consistency),
                num(a.prob_shift),
                num(a.mean_confidence),
                a.nonfinite.to_string(),
                csvx::opt(a.flip_next),
                csvx::opt(a.top_k_distance_next),
            ];
            row.extend(csvx::ci(a.consistency_ci));
            row.extend(csvx::ci(a.flip_next_ci));
            w.write_record(&row)?;
        }
    }
    csvx::finish(w)
}

/// The columns of a label-free `predictions.csv`: [`crate::results::PREDICTION_COLUMNS`]
/// less the label and what is scored against it.
pub const PREDICTION_COLUMNS: [&str; 8] = [
    "model",
    "angle",
    "dx",
    "dy",
    "index",
    "source",
    "pred",
    "confidence",
];

/// `predictions.csv` of a sweep without labels, streamed into `out`: a row per
/// model, pose and sample, with the top-k list as the last column.
pub fn write_predictions(
    s: &UnlabelledSummary,
    sweep: &SweepResult,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(out);
    let mut head: Vec<&str> = PREDICTION_COLUMNS.to_vec();
    head.push("top_k");
    w.write_record(head)?;
    for (m, ms) in s.models.iter().zip(&sweep.models) {
        for (a, pose) in sweep.poses.iter().enumerate() {
            let col = &ms.cols[a];
            for i in 0..sweep.indices.len() {
                w.write_record([
                    m.id.name.clone(),
                    format_angle(pose.angle),
                    format_angle(pose.dx),
                    format_angle(pose.dy),
                    sweep.indices[i].to_string(),
                    sweep.sources[i].clone(),
                    col.preds[i].to_string(),
                    num32(col.confidence[i]),
                    top_k_text(ms.top_k_list(a, i)),
                ])?;
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// The table printed after a sweep without labels.
pub fn table(s: &UnlabelledSummary) -> String {
    let mut out = String::new();
    let k = s.settings.top_k;
    for m in &s.models {
        let _ = writeln!(
            out,
            "model {}  ({} samples without labels, {})",
            m.id.name, s.dataset.n, s.dataset.path
        );
        let _ = writeln!(
            out,
            "  {:>8}  {:>11}  {:>10}  {:>6}  {:>12}",
            "angle",
            "consistency",
            "confidence",
            "flip",
            format!("top-{k} dist")
        );
        let dash = |v: Option<f64>| v.map_or("-".to_string(), |f| format!("{f:.4}"));
        for a in &m.angles {
            let mark = if a.reference && !a.in_sweep {
                " (reference)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:>8}  {:>11.4}  {:>10.4}  {:>6}  {:>12}{mark}",
                format_angle(a.angle),
                a.consistency,
                a.mean_confidence,
                dash(a.flip_next),
                dash(a.top_k_distance_next),
            );
        }
        let _ = writeln!(
            out,
            "  flip probability {}, top-{k} distance {}  (no labels: accuracy and calibration are not computed)",
            dash(m.flip_probability),
            dash(m.mean_top_k_distance)
        );
    }
    out
}
