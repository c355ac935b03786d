//! The results data model: everything `summary.json` holds, built purely from a
//! [`SweepResult`]. The report, the gate and `rotbench report` read it back.

use crate::dataset::DatasetInfo;
use crate::hash::content_hash;
use crate::metrics::bootstrap::{self, AngleInput, Stats};
use crate::metrics::calibration::{nll_term, top_k_hit, Calibration, Reliability, ECE_BINS};
use crate::metrics::stability::ranking_distance;
use crate::metrics::{self, confusion_similarity, report, ClassScores, Paired};
use crate::poses::Pose;
use crate::results::{right_at_all, AngleCounts, ModelId, ModelSweep, RotateOn, SweepResult};
use crate::rotate::{Fill, Interpolation};
use crate::spec::Inference;
use serde::{Deserialize, Serialize};

/// Bumped when the layout of summary.json changes incompatibly.
/// 2: `files` (the sha256 of every result file written beside it), `settings.backend`,
/// and `dataset.n` counts decoded samples (skipped images excluded).
/// 3: calibration, stability and bootstrap fields (issue 18); older files read
/// with those fields at their defaults.
/// 4: `confusion` holds the non-zero cells `[true, pred, count]`, `per_class` only
/// the classes with samples or predictions (each with its `class`), and
/// `invalid_per_class` is absent when no prediction was invalid (issue 20).
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub angles: Vec<f64>,
    /// `--translate`: the offsets as given, and in pixels on each axis (absent
    /// for a rotation-only sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translate: Option<crate::poses::Shifts>,
    /// `--worst-of K --seed S`: the draws and the ranges they span (absent without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_of: Option<crate::poses::Draws>,
    /// `--grid-early-stop`: a sample's remaining grid points were skipped after its
    /// first mistake (see each model's `sweep.early_stop`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grid_early_stop: bool,
    pub reference_angle: f64,
    /// True when 0 was not among the requested angles and was added as the reference.
    pub reference_added: bool,
    pub interpolation: Interpolation,
    pub fill: Fill,
    pub mask_circle: bool,
    /// A number, or `"auto"` (the size chosen and what was timed are in timing.json,
    /// since they vary between runs while the results do not).
    pub batch_size: BatchSetting,
    pub limit: Option<usize>,
    pub device: String,
    /// `optimized` (freeze + optimize_for_inference) or `exact` (the module as loaded).
    pub inference: Inference,
    /// Where rotation ran: `host` (CPU) or `device` (libtorch ops on the model's device).
    #[serde(default)]
    pub rotate_on: RotateOn,
    /// The inference backend that ran the models (`torchscript`: libtorch's JIT).
    pub backend: String,
    /// `--top-k`: the K of top-K accuracy and the top-K ranking distance.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// `--bootstrap`: replicates behind every interval (0: no intervals).
    #[serde(default)]
    pub bootstrap: usize,
    /// `--seed`: the key of the bootstrap's resampling and of `--sample`'s draw.
    #[serde(default)]
    pub seed: u64,
    /// `--sample N`: a class-stratified random sample of N samples, drawn with `seed`
    /// (absent when the whole dataset, or its first `--limit`, was used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<usize>,
    /// `--difficulty D`: flips and ranking distances compare each angle with the
    /// one D places on in the sweep (ImageNet-P's difficulty; 1, the next angle, is
    /// absent from the JSON).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub difficulty: usize,
    /// `--protocol NAME`: the published protocol that set the sweep, and what the
    /// user's flags changed of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolUse>,
}

fn one() -> usize {
    1
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

impl Settings {
    /// The user's poses: the angles at every translation of `translate` (dx outer),
    /// or the angles alone.
    pub fn poses(&self) -> Vec<Pose> {
        match &self.translate {
            Some(t) => crate::poses::grid(&self.angles, &t.dx, &t.dy),
            None => self.angles.iter().map(|&a| Pose::rotation(a)).collect(),
        }
    }
}

fn all_zero(v: &[u64]) -> bool {
    v.iter().all(|&x| x == 0)
}

impl AngleMetrics {
    /// The confusion count of (true `t`, predicted `p`).
    pub fn count(&self, t: usize, p: usize) -> u64 {
        self.confusion
            .binary_search_by(|c| (c[0], c[1]).cmp(&(t as u64, p as u64)))
            .map_or(0, |i| self.confusion[i][2])
    }

    /// The scores of class `c` (zeros, support 0, for a class that is not listed).
    pub fn class_scores(&self, c: usize) -> ClassScores {
        self.per_class.binary_search_by_key(&c, |s| s.class).map_or(
            ClassScores {
                class: c,
                precision: 0.0,
                recall: 0.0,
                f1: 0.0,
                support: 0,
            },
            |i| self.per_class[i],
        )
    }

    /// Predictions of class `t` lost to NaN/inf logits.
    pub fn invalid_of(&self, t: usize) -> u64 {
        self.invalid_per_class.get(t).copied().unwrap_or(0)
    }
}

fn default_top_k() -> usize {
    5
}

/// `--batch-size` as recorded: a number, or a name (`auto`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchSetting {
    Fixed(usize),
    Named(String),
}

impl std::fmt::Display for BatchSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSetting::Fixed(n) => write!(f, "{n}"),
            BatchSetting::Named(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSummary {
    pub format: String,
    pub path: String,
    /// Samples evaluated: the selected samples that decoded (skipped images excluded).
    pub n: usize,
    pub total: usize,
    pub sha256: String,
    pub class_order: String,
    /// False for data without labels (a folder of images without class folders,
    /// under `--protocol imagenet-p-rotate`): its summary.json is a
    /// [`crate::unlabelled::UnlabelledSummary`], with no figure that needs a label.
    #[serde(default = "labelled", skip_serializing_if = "is_labelled")]
    pub labelled: bool,
    pub class_names: Option<Vec<String>>,
    /// Image folders: each class folder and its class index (absent for other formats).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_map: Vec<crate::dataset::ClassFolder>,
    #[serde(default)]
    pub skipped: Vec<crate::dataset::SkippedFile>,
    /// Image folders: files that are not samples (see `DatasetInfo::ignored`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<crate::dataset::SkippedFile>,
    /// Samples left out because their class is not scored (`--drop-unscored`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<crate::dataset::Dropped>,
    /// What the user should know about how the labels were read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl AngleMetrics {
    /// The pose these figures are for.
    pub fn pose(&self) -> Pose {
        Pose {
            angle: self.angle,
            dx: self.dx,
            dy: self.dy,
        }
    }
}

impl From<&DatasetInfo> for DatasetSummary {
    fn from(d: &DatasetInfo) -> Self {
        DatasetSummary {
            format: d.format.clone(),
            path: d.path.clone(),
            n: d.len,
            total: d.total,
            sha256: d.sha256.clone(),
            class_order: d.class_order.clone(),
            labelled: d.labelled,
            class_names: d.class_names.clone(),
            class_map: d.class_map.clone(),
            skipped: d.skipped.clone(),
            ignored: d.ignored.clone(),
            dropped: d.dropped.clone(),
            warnings: d.warnings.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AngleMetrics {
    pub angle: f64,
    /// The pose's translation after the rotation (pixels of the model's input,
    /// right and down; 0 for a rotation, and in summaries written before
    /// translations).
    #[serde(default)]
    pub dx: f64,
    #[serde(default)]
    pub dy: f64,
    /// The 0-degree reference every invariance measure compares with.
    pub reference: bool,
    /// False only for a reference that was added, not requested.
    pub in_sweep: bool,
    pub n: u64,
    pub correct: u64,
    pub accuracy: f64,
    pub accuracy_ci_low: f64,
    pub accuracy_ci_high: f64,
    pub precision_macro: f64,
    pub recall_macro: f64,
    pub f1_macro: f64,
    pub precision_micro: f64,
    pub recall_micro: f64,
    pub f1_micro: f64,
    pub precision_weighted: f64,
    pub recall_weighted: f64,
    pub f1_weighted: f64,
    pub consistency: f64,
    pub accuracy_drop: f64,
    pub prob_shift: f64,
    pub error_consistency: f64,
    pub confusion_similarity: f64,
    /// Exact McNemar p-value, this angle against the reference, same samples.
    pub mcnemar_p_vs_reference: f64,
    pub nonfinite: u64,
    /// The classes with samples or predictions at this angle (a class with
    /// neither scores 0 everywhere), each with its index.
    pub per_class: Vec<ClassScores>,
    pub zero_division_classes: Vec<usize>,
    /// The non-zero confusion counts `[true, predicted, count]`, row by row.
    pub confusion: Vec<[u64; 3]>,
    /// Per true class: predictions lost to NaN/inf logits (in no column); absent
    /// when there were none.
    #[serde(default, skip_serializing_if = "all_zero")]
    pub invalid_per_class: Vec<u64>,
    /// Top-K accuracy (K = `settings.top_k`); absent when the model has K classes or fewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k_accuracy: Option<f64>,
    /// Mean negative log-likelihood of the true class (probabilities clipped to
    /// [2.2e-16, 1 - 2.2e-16], as scikit-learn's log_loss).
    #[serde(default)]
    pub nll: f64,
    /// Multi-class Brier score, 0..2.
    #[serde(default)]
    pub brier: f64,
    /// Expected calibration error: 15 equal-width bins of top-1 confidence, L1.
    #[serde(default)]
    pub ece: f64,
    #[serde(default)]
    pub mean_confidence: f64,
    /// The reliability diagram behind `ece`.
    #[serde(default)]
    pub reliability: Reliability,
    /// Share of samples whose top-1 prediction changes from this angle to the next
    /// angle of the sweep; absent for the last angle of a sweep that is not a full
    /// turn, and for an added reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_next: Option<f64>,
    /// Mean top-K ranking distance (ImageNet-P) from this angle to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k_distance_next: Option<f64>,
    /// 95% bootstrap percentile intervals (absent with --bootstrap 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1_macro_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ece_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_next_ci: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStats {
    pub accuracy_at_reference: f64,
    pub mean_accuracy: f64,
    pub best_angle: f64,
    pub best_accuracy: f64,
    pub worst_angle: f64,
    pub worst_accuracy: f64,
    /// mean accuracy / accuracy at 0 degrees.
    pub relative_robustness: f64,
    /// Share of samples correct at every swept angle (Engstrom et al. 2019).
    pub worst_of_sweep_accuracy: f64,
    pub worst_of_sweep_correct: u64,
    /// Grid accuracy (Engstrom et al. 2019): the share of samples correct at every
    /// point of the grid of angles × translations, with its Wilson 95% interval.
    /// The same count as `worst_of_sweep_correct`, which is its rotation-only case.
    #[serde(default)]
    pub grid_accuracy: f64,
    #[serde(default)]
    pub grid_accuracy_ci: [f64; 2],
    /// The translation of the best and worst points, with `--translate` (pixels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_shift: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_shift: Option<[f64; 2]>,
    /// `--worst-of K`: worst-of-K accuracy and the first draw's ("random").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst_of_k: Option<WorstOfK>,
    /// `--grid-early-stop`: what was evaluated and what is left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStopSummary>,
    pub consistency_at_worst: f64,
    /// Mean of `flip_next` over consecutive angle pairs: ImageNet-P's flip
    /// probability at difficulty 1 (absent with fewer than two angles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_probability_ci: Option<[f64; 2]>,
    /// Mean of `top_k_distance_next` over consecutive angle pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_top_k_distance: Option<f64>,
    /// The largest ECE over the swept angles, and the first angle where it occurs.
    #[serde(default)]
    pub worst_ece: f64,
    #[serde(default)]
    pub worst_ece_angle: f64,
}

/// `--grid-early-stop`, as summary.json states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopSummary {
    /// The grid's points.
    pub points: usize,
    /// Evaluations made, and without the stop (points, and an added upright
    /// reference, x samples).
    pub evaluations: u64,
    pub evaluations_without_stop: u64,
    /// What the stop leaves out.
    pub left_out: String,
}

/// What `--grid-early-stop` leaves out, in summary.json's words.
pub const EARLY_STOP_LEFT_OUT: &str = "every figure of a grid point other than the upright one (accuracy, calibration, stability, per class, confusion, predictions): a sample is skipped after its first mistake, so those figures would count only survivors. angles[] holds the upright point alone, and mean, best and worst accuracy describe it; grid_accuracy (and worst_of_sweep_accuracy) cover the whole grid";

/// Engstrom et al.'s random attacks: K draws per sample, uniform over the
/// sweep's ranges. A sample counts for `accuracy` when every draw is right; the
/// first draw alone is the paper's "random" column. Intervals are Wilson 95%.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstOfK {
    pub k: usize,
    pub accuracy: f64,
    pub correct: u64,
    pub accuracy_ci: [f64; 2],
    pub random_accuracy: f64,
    pub random_correct: u64,
    pub random_accuracy_ci: [f64; 2],
}

impl WorstOfK {
    /// From each draw's predictions (`draws[d][sample]`) and the labels.
    pub fn of(draws: &[crate::results::Column], labels: &[u32]) -> Option<WorstOfK> {
        let first = draws.first()?;
        let n = labels.len() as u64;
        let right = |c: &crate::results::Column, s: usize| c.preds[s] == labels[s] as i32;
        let correct = (0..labels.len())
            .filter(|&s| draws.iter().all(|c| right(c, s)))
            .count() as u64;
        let random = (0..labels.len()).filter(|&s| right(first, s)).count() as u64;
        let ci = |k: u64| {
            let (lo, hi) = metrics::wilson(k, n);
            [lo, hi]
        };
        Some(WorstOfK {
            k: draws.len(),
            accuracy: div(correct as f64, n as f64),
            correct,
            accuracy_ci: ci(correct),
            random_accuracy: div(random as f64, n as f64),
            random_correct: random,
            random_accuracy_ci: ci(random),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Which model, with the spec it ran with: the one model identity type,
    /// its fields written inline (`name`, `path`, `sha256`, `spec`, ...).
    #[serde(flatten)]
    pub id: ModelId,
    pub nonfinite_logits: u64,
    pub sweep: SweepStats,
    pub angles: Vec<AngleMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairAngle {
    pub angle: f64,
    /// The pose's translation (pixels; 0 for a rotation).
    #[serde(default)]
    pub dx: f64,
    #[serde(default)]
    pub dy: f64,
    pub accuracy_a: f64,
    pub accuracy_b: f64,
    /// accuracy_a - accuracy_b
    pub accuracy_diff: f64,
    pub only_a_correct: u64,
    pub only_b_correct: u64,
    pub mcnemar_p: f64,
    #[serde(default)]
    pub f1_macro_a: f64,
    #[serde(default)]
    pub f1_macro_b: f64,
    /// f1_macro_a - f1_macro_b
    #[serde(default)]
    pub f1_macro_diff: f64,
    /// Paired 95% bootstrap intervals of the two differences (both models scored
    /// on the same resampled samples); absent with --bootstrap 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_diff_ci: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f1_macro_diff_ci: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub angles: Vec<PairAngle>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: u32,
    pub rotbench_version: String,
    pub libtorch_version: String,
    pub settings: Settings,
    pub dataset: DatasetSummary,
    pub models: Vec<ModelSummary>,
    pub comparisons: Vec<Comparison>,
    /// `--protocol`: each model's figures under it (the protocol itself and any
    /// override are in `settings.protocol`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtocolFigures>,
    /// sha256 of each deterministic result file written beside this summary.json
    /// (per_angle.csv, per_class.csv, confusion.csv, examples.json and, unless
    /// --no-predictions, predictions.csv). Readers check a file against it before
    /// using it, so a file left from another run is never mistaken for this one's.
    pub files: std::collections::BTreeMap<String, String>,
}

fn labelled() -> bool {
    true
}

fn is_labelled(l: &bool) -> bool {
    *l
}

/// Refuse a summary.json of data without labels where `what` needs a labelled
/// run, naming the file and what the run holds instead.
pub fn require_labels(
    v: &serde_json::Value,
    path: &std::path::Path,
    what: &str,
) -> anyhow::Result<()> {
    if v.pointer("/dataset/labelled") == Some(&serde_json::Value::Bool(false)) {
        anyhow::bail!(
            "{}: that sweep read a folder of images without labels, so it holds only the figures that need none (consistency, flip probability, top-5 distance); {what} needs a labelled run: sweep a folder with one subfolder per class, or an IDX, CIFAR or CSV dataset",
            path.display()
        );
    }
    Ok(())
}

fn div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Each angle's next angle in the sweep (indices into `result.angles`): the user's
/// angles in their order, closed into a circle when they cover the full turn in
/// equal steps; none for the last of an open sweep and for an added reference.
pub fn next_angles(result: &SweepResult, step: usize) -> Vec<Option<usize>> {
    let user: Vec<usize> = result.user_poses().collect();
    let user_poses: Vec<Pose> = user.iter().map(|&i| result.poses[i]).collect();
    let mut next = vec![None; result.poses.len()];
    for (pos, n) in crate::poses::next_positions(&user_poses, step)
        .into_iter()
        .enumerate()
    {
        next[user[pos]] = n.map(|q| user[q]);
    }
    next
}

/// The probabilistic and stability figures of one model at one angle, from its
/// per-sample values (the same arithmetic a reader can redo from predictions.csv).
struct Probabilistic {
    top_k_accuracy: Option<f64>,
    nll: f64,
    brier: f64,
    calibration: Calibration,
    flip_next: Option<f64>,
    top_k_distance_next: Option<f64>,
}

fn probabilistic(
    ms: &ModelSweep,
    labels: &[u32],
    a: usize,
    next: Option<usize>,
    top_k: Option<usize>,
) -> Probabilistic {
    let col = &ms.cols[a];
    let n = labels.len();
    let mean = |sum: f64| div(sum, n as f64);
    let mut calibration = Calibration::new(ECE_BINS);
    for (i, &l) in labels.iter().enumerate() {
        calibration.add(col.confidence[i] as f64, col.preds[i] == l as i32, 1.0);
    }
    Probabilistic {
        top_k_accuracy: top_k.map(|k| {
            mean(
                (0..n)
                    .filter(|&i| top_k_hit(ms.top_k_list(a, i), k, labels[i]))
                    .count() as f64,
            )
        }),
        nll: mean(col.p_true.iter().map(|&p| nll_term(p as f64)).sum()),
        brier: mean(col.brier.iter().map(|&b| b as f64).sum()),
        calibration,
        flip_next: next.map(|b| flip_rate(ms, a, b)),
        top_k_distance_next: next
            .zip(top_k)
            .map(|(b, _)| mean_ranking_distance(ms, a, b)),
    }
}

/// The share of samples whose top-1 prediction differs between angles `a` and
/// `b` (ImageNet-P's flip rate of one pair; labelled or not).
pub(crate) fn flip_rate(ms: &ModelSweep, a: usize, b: usize) -> f64 {
    let (pa, pb) = (ms.preds(a), ms.preds(b));
    let flips = pa.iter().zip(pb).filter(|(x, y)| x != y).count();
    div(flips as f64, pa.len() as f64)
}

/// The mean top-K ranking distance (ImageNet-P's `ranking_dist`) between the
/// samples' lists at angles `a` and `b`.
pub(crate) fn mean_ranking_distance(ms: &ModelSweep, a: usize, b: usize) -> f64 {
    let n = ms.preds(a).len();
    let sum: f64 = (0..n)
        .map(|i| ranking_distance(ms.top_k_list(a, i), ms.top_k_list(b, i)) as f64)
        .sum();
    div(sum, n as f64)
}

/// The mean over the pairs that have a next angle (the user's angles only).
pub(crate) fn pair_mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The warning for a model that predicts one class for every sample at the
/// reference angle (0°) of data that holds more than one class: its inputs are
/// most likely not what it was trained on (mean and std on the wrong scale, a
/// wrong channel order), and every figure says nothing about rotation.
fn one_class_warning(reference: &AngleCounts, id: &ModelId) -> Option<String> {
    let cm = &reference.confusion;
    let n: u64 = (0..cm.n_classes).map(|t| cm.true_sum(t)).sum();
    let predicted: Vec<usize> = (0..cm.n_classes).filter(|&p| cm.pred_sum(p) > 0).collect();
    let labelled = (0..cm.n_classes).filter(|&t| cm.true_sum(t) > 0).count();
    match predicted.as_slice() {
        [only] if n > 1 && labelled > 1 && cm.pred_sum(*only) == n => Some(format!(
            "{}: every prediction at 0° is class {} ({n} of {n} samples, which hold {labelled} classes): the model tells the images apart no more than a constant would, so its inputs are most likely not what it was trained on; check the spec's mean, std, value_range and channel_order (`rotbench inspect {}` shows each with where it came from)",
            id.name,
            id.spec.classes.get(*only).map_or("?", String::as_str),
            id.path
        )),
        _ => None,
    }
}

/// The summary of a sweep: each model's figures at every angle and over the
/// sweep, and each pair of models compared on the same samples.
pub fn build(
    result: &SweepResult,
    ids: &[ModelId],
    dataset: &DatasetInfo,
    settings: Settings,
    libtorch_version: &str,
) -> Summary {
    let n = result.labels.len();
    let next = next_angles(result, settings.difficulty);
    let n_classes = result
        .models
        .first()
        .and_then(|m| m.counts.first())
        .map_or(0, |c| c.confusion.n_classes);
    // Top-K figures only where the model has more than K classes.
    let top_k = (n_classes > settings.top_k && settings.top_k > 0).then_some(settings.top_k);
    let reps = replicates(result, &next, n_classes, &settings);
    let scoring = Scoring {
        result,
        next,
        top_k,
        reps,
        bootstrap: settings.bootstrap,
    };
    let models: Vec<ModelSummary> = result
        .models
        .iter()
        .zip(ids)
        .enumerate()
        .map(|(mi, (ms, id))| scoring.model(mi, ms, id))
        .collect();
    let comparisons = scoring.comparisons(&models);
    Summary {
        schema: SCHEMA_VERSION,
        rotbench_version: env!("CARGO_PKG_VERSION").to_string(),
        libtorch_version: libtorch_version.to_string(),
        settings,
        dataset: DatasetSummary {
            n,
            ..dataset.into()
        },
        models,
        comparisons,
        protocol: None,
        files: Default::default(),
    }
}

/// Bootstrap replicates: [model][angle][replicate], the same resamples for all;
/// none without `--bootstrap` or samples.
fn replicates(
    result: &SweepResult,
    next: &[Option<usize>],
    n_classes: usize,
    settings: &Settings,
) -> Vec<Vec<Vec<Stats>>> {
    if settings.bootstrap == 0 || result.labels.is_empty() {
        return vec![];
    }
    let confidence: Vec<Vec<Vec<f64>>> = result
        .models
        .iter()
        .map(|ms| {
            ms.cols
                .iter()
                .map(|c| c.confidence.iter().map(|&v| v as f64).collect())
                .collect()
        })
        .collect();
    let inputs: Vec<Vec<AngleInput>> = result
        .models
        .iter()
        .zip(&confidence)
        .map(|(ms, conf)| {
            (0..result.poses.len())
                .map(|a| AngleInput {
                    preds: ms.preds(a),
                    reference: ms.preds(result.reference),
                    next: next[a].map(|b| ms.preds(b)),
                    confidence: &conf[a],
                })
                .collect()
        })
        .collect();
    bootstrap::replicates(
        &inputs,
        &result.labels,
        n_classes,
        settings.seed,
        settings.bootstrap,
    )
}

/// What every figure of [`build`] is computed from: the sweep, each angle's
/// next angle, the K of top-K (when the models have more classes) and the
/// bootstrap replicates.
struct Scoring<'a> {
    result: &'a SweepResult,
    next: Vec<Option<usize>>,
    top_k: Option<usize>,
    /// [model][angle][replicate]; empty without `--bootstrap`.
    reps: Vec<Vec<Vec<Stats>>>,
    bootstrap: usize,
}

impl Scoring<'_> {
    /// The bootstrap interval of `f` for model `m` at angle `a`.
    fn ci(&self, m: usize, a: usize, f: fn(&Stats) -> f64) -> Option<[f64; 2]> {
        let r = self.reps.get(m)?.get(a)?;
        let v: Vec<f64> = r.iter().map(f).collect();
        (!v.is_empty() && v.iter().all(|x| !x.is_nan())).then(|| bootstrap::interval(&v))
    }

    /// ECE's interval accounts for the bias that resampling adds to it.
    fn ece_ci(&self, m: usize, a: usize, estimate: f64) -> Option<[f64; 2]> {
        let r = self.reps.get(m)?.get(a)?;
        let v: Vec<f64> = r.iter().map(|s| s.ece).collect();
        (!v.is_empty() && v.iter().all(|x| !x.is_nan()))
            .then(|| bootstrap::recentred_interval(&v, estimate, 0.0))
    }

    /// Model `mi`: its figures at every angle, over the sweep, and its warnings.
    fn model(&self, mi: usize, ms: &ModelSweep, id: &ModelId) -> ModelSummary {
        let result = self.result;
        let ref_counts = &ms.counts[result.reference];
        let ref_acc = report(&ref_counts.confusion).accuracy;
        let angles: Vec<AngleMetrics> = result
            .poses
            .iter()
            .enumerate()
            .map(|(ai, &pose)| self.angle(mi, ms, ai, pose, ref_counts, ref_acc))
            .collect();
        let mut id = id.clone();
        if let Some(w) = one_class_warning(ref_counts, &id) {
            id.warnings.push(w);
        }
        ModelSummary {
            id,
            nonfinite_logits: ms.counts.iter().map(|c| c.nonfinite).sum(),
            sweep: self.sweep_stats(mi, ms, &angles, ref_acc),
            angles,
        }
    }

    /// Model `mi`'s figures at angle `ai`, against its reference angle.
    fn angle(
        &self,
        mi: usize,
        ms: &ModelSweep,
        ai: usize,
        pose: Pose,
        ref_counts: &AngleCounts,
        ref_acc: f64,
    ) -> AngleMetrics {
        let result = self.result;
        let c = &ms.counts[ai];
        let r = report(&c.confusion);
        let (lo, hi) = metrics::wilson(r.correct, r.n);
        let p = probabilistic(ms, &result.labels, ai, self.next[ai], self.top_k);
        AngleMetrics {
            angle: pose.angle,
            dx: pose.dx,
            dy: pose.dy,
            reference: ai == result.reference,
            in_sweep: result.user_poses().contains(&ai),
            n: r.n,
            correct: r.correct,
            accuracy: r.accuracy,
            accuracy_ci_low: lo,
            accuracy_ci_high: hi,
            precision_macro: r.macro_avg.precision,
            recall_macro: r.macro_avg.recall,
            f1_macro: r.macro_avg.f1,
            precision_micro: r.micro_avg.precision,
            recall_micro: r.micro_avg.recall,
            f1_micro: r.micro_avg.f1,
            precision_weighted: r.weighted_avg.precision,
            recall_weighted: r.weighted_avg.recall,
            f1_weighted: r.weighted_avg.f1,
            consistency: div(c.consistent as f64, r.n as f64),
            accuracy_drop: ref_acc - r.accuracy,
            prob_shift: div(c.prob_shift_sum, r.n as f64),
            error_consistency: c.vs_reference.kappa(),
            confusion_similarity: confusion_similarity(&ref_counts.confusion, &c.confusion),
            mcnemar_p_vs_reference: c.vs_reference.mcnemar(),
            nonfinite: c.nonfinite,
            per_class: r
                .per_class
                .iter()
                .filter(|s| s.support > 0 || c.confusion.pred_sum(s.class) > 0)
                .copied()
                .collect(),
            zero_division_classes: r.zero_division_classes.clone(),
            confusion: c
                .confusion
                .cells()
                .map(|(t, p, k)| [t as u64, p as u64, k])
                .collect(),
            invalid_per_class: if c.nonfinite == 0 {
                vec![]
            } else {
                (0..c.confusion.n_classes)
                    .map(|t| c.confusion.invalid(t))
                    .collect()
            },
            top_k_accuracy: p.top_k_accuracy,
            nll: p.nll,
            brier: p.brier,
            ece: p.calibration.ece(),
            mean_confidence: p.calibration.mean_confidence(),
            reliability: p.calibration.reliability(),
            flip_next: p.flip_next,
            top_k_distance_next: p.top_k_distance_next,
            f1_macro_ci: self.ci(mi, ai, |s| s.f1_macro),
            consistency_ci: self.ci(mi, ai, |s| s.consistency),
            ece_ci: self.ece_ci(mi, ai, p.calibration.ece()),
            flip_next_ci: self.ci(mi, ai, |s| s.flip_next),
        }
    }

    /// Model `mi` over the user's angles: mean, best and worst, worst-of-sweep,
    /// flip probability and worst ECE.
    fn sweep_stats(
        &self,
        mi: usize,
        ms: &ModelSweep,
        angles: &[AngleMetrics],
        ref_acc: f64,
    ) -> SweepStats {
        let result = self.result;
        let n = result.labels.len();
        let user = result.user_poses();
        let swept: Vec<&AngleMetrics> = user.clone().map(|i| &angles[i]).collect();
        let mean = swept.iter().map(|a| a.accuracy).sum::<f64>() / swept.len() as f64;
        let best = swept
            .iter()
            .fold(swept[0], |b, a| if a.accuracy > b.accuracy { a } else { b });
        let worst = swept
            .iter()
            .fold(swept[0], |w, a| if a.accuracy < w.accuracy { a } else { w });
        let worst_ece = swept
            .iter()
            .fold(swept[0], |w, a| if a.ece > w.ece { a } else { w });
        let translated = swept.iter().any(|a| !a.pose().is_rotation());
        let stopped = result.early_stop.as_ref();
        let wos = match stopped {
            Some(e) => e.grid_correct[mi],
            None => right_at_all(&ms.cols, &user.clone().collect::<Vec<_>>(), &result.labels),
        };
        // Per replicate, the mean flip rate over the pairs.
        let flip_probability_ci = self.reps.get(mi).and_then(|r| {
            let pairs: Vec<usize> = user.clone().filter(|&a| self.next[a].is_some()).collect();
            if pairs.is_empty() {
                return None;
            }
            let per_rep: Vec<f64> = (0..self.bootstrap)
                .map(|k| pairs.iter().map(|&a| r[a][k].flip_next).sum::<f64>() / pairs.len() as f64)
                .collect();
            Some(bootstrap::interval(&per_rep))
        });
        SweepStats {
            accuracy_at_reference: ref_acc,
            mean_accuracy: mean,
            best_angle: best.angle,
            best_accuracy: best.accuracy,
            worst_angle: worst.angle,
            worst_accuracy: worst.accuracy,
            relative_robustness: div(mean, ref_acc),
            worst_of_sweep_accuracy: div(wos as f64, n as f64),
            worst_of_sweep_correct: wos,
            grid_accuracy: div(wos as f64, n as f64),
            grid_accuracy_ci: {
                let (lo, hi) = metrics::wilson(wos, n as u64);
                [lo, hi]
            },
            best_shift: translated.then_some([best.dx, best.dy]),
            worst_shift: translated.then_some([worst.dx, worst.dy]),
            worst_of_k: WorstOfK::of(&ms.draws, &result.labels),
            early_stop: stopped.map(|e| EarlyStopSummary {
                points: e.points,
                evaluations: e.evaluated[mi],
                evaluations_without_stop: e.full,
                left_out: EARLY_STOP_LEFT_OUT.into(),
            }),
            consistency_at_worst: worst.consistency,
            flip_probability: pair_mean(swept.iter().map(|a| a.flip_next)),
            flip_probability_ci,
            mean_top_k_distance: pair_mean(swept.iter().map(|a| a.top_k_distance_next)),
            worst_ece: worst_ece.ece,
            worst_ece_angle: worst_ece.angle,
        }
    }

    /// Every pair of models, compared angle by angle on the same samples.
    fn comparisons(&self, models: &[ModelSummary]) -> Vec<Comparison> {
        let mut comparisons = Vec::new();
        for a in 0..self.result.models.len() {
            for b in a + 1..self.result.models.len() {
                let angles = (0..self.result.poses.len())
                    .map(|ai| self.pair_angle(models, a, b, ai))
                    .collect();
                comparisons.push(Comparison {
                    a: models[a].id.name.clone(),
                    b: models[b].id.name.clone(),
                    angles,
                });
            }
        }
        comparisons
    }

    /// Models `a` and `b` at angle `ai`: the accuracy and macro-F1 differences,
    /// the exact McNemar test and the paired bootstrap intervals.
    fn pair_angle(&self, models: &[ModelSummary], a: usize, b: usize, ai: usize) -> PairAngle {
        let result = self.result;
        let mut p = Paired::default();
        for s in 0..result.labels.len() {
            let l = result.labels[s] as i32;
            p.add(
                result.models[a].preds(ai)[s] == l,
                result.models[b].preds(ai)[s] == l,
            );
        }
        let (ma, mb) = (&models[a].angles[ai], &models[b].angles[ai]);
        let paired = |f: fn(&Stats) -> f64| -> Option<[f64; 2]> {
            let (ra, rb) = (self.reps.get(a)?.get(ai)?, self.reps.get(b)?.get(ai)?);
            let d: Vec<f64> = ra.iter().zip(rb).map(|(x, y)| f(x) - f(y)).collect();
            (!d.is_empty()).then(|| bootstrap::interval(&d))
        };
        PairAngle {
            angle: result.poses[ai].angle,
            dx: result.poses[ai].dx,
            dy: result.poses[ai].dy,
            accuracy_a: ma.accuracy,
            accuracy_b: mb.accuracy,
            accuracy_diff: ma.accuracy - mb.accuracy,
            only_a_correct: p.only_a,
            only_b_correct: p.only_b,
            mcnemar_p: p.mcnemar(),
            f1_macro_a: ma.f1_macro,
            f1_macro_b: mb.f1_macro,
            f1_macro_diff: ma.f1_macro - mb.f1_macro,
            accuracy_diff_ci: paired(|s| s.accuracy),
            f1_macro_diff_ci: paired(|s| s.f1_macro),
        }
    }
}

impl Summary {
    /// Check that `bytes`, read from `file` beside `summary_path`, is the `name`
    /// this summary's run wrote. A file the run did not write, or another run's
    /// file, is refused with both paths named.
    pub fn check_file(
        &self,
        summary_path: &std::path::Path,
        name: &str,
        file: &std::path::Path,
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let Some(want) = self.files.get(name) else {
            let why = if name == "predictions.csv" {
                "the sweep ran with --no-predictions; rerun it without --no-predictions"
            } else {
                "rerun `rotbench sweep` to write the whole set again"
            };
            anyhow::bail!(
                "{}: {} records no {name}, so this file is not from the same run; {why}",
                file.display(),
                summary_path.display()
            );
        };
        if content_hash(bytes) != *want {
            anyhow::bail!(
                "{} does not belong to {}: its sha256 differs from the one recorded there (another run wrote it, or it was edited); rerun `rotbench sweep` to write the set again",
                file.display(),
                summary_path.display()
            );
        }
        Ok(())
    }
}

// `--protocol`'s records in summary.json (the protocols themselves are in
// `crate::protocols`).

/// What a run recorded of its protocol (summary.json `settings.protocol`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolUse {
    pub name: String,
    pub source: String,
    /// The protocol's settings that flags given beside it changed.
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// `--relative-to DIR`: the reference run the relative figures divide by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_to: Option<String>,
}

/// One protocol setting a user's flag changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    pub flag: String,
    pub protocol: String,
    pub given: String,
}

/// summary.json's `protocol`: the figures of every model, and the reference
/// model of `--relative-to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolFigures {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_to_model: Option<String>,
    pub models: Vec<ModelFigures>,
}

/// One figure a protocol reports for a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub value: f64,
}

/// A model's protocol figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFigures {
    pub model: String,
    pub figures: Vec<Figure>,
}
