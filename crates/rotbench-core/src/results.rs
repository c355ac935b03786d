//! The results model: what a sweep produces, independent of how it was computed.
//! Per-sample predictions ([`SampleData`], the unit that checkpoints, caches and
//! shards store), the per-model arrays and per-angle counts tallied from them
//! ([`ModelSweep`], [`AngleCounts`], [`tally`]), the whole result ([`SweepResult`]),
//! the reference-angle plan ([`PosePlan`]) and the run settings that are data
//! (batch size, where rotation runs). The engine fills these; summary, store,
//! shard, gate and report read them.

use crate::metrics::{Confusion, Paired, INVALID};
use crate::poses::{Draws, Pose};
use crate::spec::{ModelSpec, Provenance};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Images per forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Fixed(usize),
    /// Time [`AUTO_CANDIDATES`] on the first chunks of the sweep (their results are
    /// kept, so nothing is computed twice) and use the fastest for the rest.
    Auto,
}

impl std::str::FromStr for BatchSize {
    type Err = String;
    /// `auto`, or a whole number of at least 1.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "auto" => Ok(BatchSize::Auto),
            t => match t.parse::<usize>() {
                Ok(0) => Err("must be at least 1, or `auto`".into()),
                Ok(n) => Ok(BatchSize::Fixed(n)),
                Err(_) => Err("not a whole number; give a positive integer, or `auto`".into()),
            },
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Fixed(n) => write!(f, "{n}"),
            BatchSize::Auto => f.write_str("auto"),
        }
    }
}

/// The sizes `--batch-size auto` tries, in this order, one chunk each, stopping at the
/// first that is more than 2% slower than the best before it.
pub const AUTO_CANDIDATES: [usize; 4] = [64, 128, 256, 512];
/// What `auto` means where timing cannot decide (fewer than 2 angles, or shards,
/// which must all cut the data the same way).
pub const AUTO_FALLBACK: usize = 256;
/// The most float32 input one `auto` batch may hold: 64 MiB. Activations grow with the
/// input, so larger batches of large images only add memory (a ResNet-18 at 224x224
/// and batch 512 holds 1.6 GB in its first block) and no speed (its forward time per
/// image is flat from batch 16 to 128 on the machines measured). MNIST (3 KB an image)
/// and 32x32 RGB (12 KB) keep every candidate; 224x224 RGB (588 KB) keeps 64 only.
pub const AUTO_MAX_INPUT_BYTES: usize = 64 << 20;

/// `auto`'s candidates for images of `floats` input values each: [`AUTO_CANDIDATES`]
/// times `scale` (1, or a power of two for a run that splits its batches over many
/// threads), those whose batch fits [`AUTO_MAX_INPUT_BYTES`], and always the first.
pub fn auto_candidates(floats: usize, scale: usize) -> Vec<usize> {
    let fits = |b: usize| b.saturating_mul(floats).saturating_mul(4) <= AUTO_MAX_INPUT_BYTES;
    AUTO_CANDIDATES
        .iter()
        .map(|&b| b.saturating_mul(scale.max(1)))
        .enumerate()
        .filter(|&(i, b)| i == 0 || fits(b))
        .map(|(_, b)| b)
        .collect()
}

/// `auto`'s untimed size for such images: [`AUTO_FALLBACK`] times `scale`, or the
/// largest candidate below it that fits.
pub fn auto_fallback(floats: usize, scale: usize) -> usize {
    let candidates = auto_candidates(floats, scale);
    let first = candidates[0];
    candidates
        .into_iter()
        .filter(|&b| b <= AUTO_FALLBACK.saturating_mul(scale.max(1)))
        .max()
        .unwrap_or(first)
}

/// One candidate's measured forward throughput (all models together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchTiming {
    pub batch_size: usize,
    /// Images x models per second of forward pass (pre-processing included), over the
    /// chunk's timed calls.
    pub images_per_second: f64,
    /// Forward calls timed (the first calls of each chunk are warm-up and not counted).
    pub calls: usize,
}

/// Pick the fastest candidate; ties go to the larger batch. `None` when nothing was timed.
pub fn fastest(timings: &[BatchTiming]) -> Option<usize> {
    timings
        .iter()
        .filter(|t| t.images_per_second.is_finite() && t.images_per_second > 0.0)
        .max_by(|a, b| {
            a.images_per_second
                .total_cmp(&b.images_per_second)
                .then(a.batch_size.cmp(&b.batch_size))
        })
        .map(|t| t.batch_size)
}

/// Where rotation runs (in JSON: `"host"`, `"device"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RotateOn {
    /// On the CPU, on a producer thread, while the models run (the CPU default).
    #[default]
    Host,
    /// On the models' device with libtorch ops, from one upload of the raw chunk
    /// (the CUDA default). Images of differing sizes (rotate-then-crop from varied
    /// sizes) still rotate on the host.
    Device,
}

impl RotateOn {
    pub fn name(self) -> &'static str {
        match self {
            RotateOn::Host => "host",
            RotateOn::Device => "device",
        }
    }
}

/// Raw (unrotated, converted) pixels of the first samples, kept for the report;
/// a shard manifest stores them as they are (the pixels in base64).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Examples {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// How many samples: the first `count` of the sweep (absent in examples.json
    /// files from before it carried these images).
    #[serde(default)]
    pub count: usize,
    /// CHW u8 planes of the `count` samples, concatenated.
    #[serde(rename = "pixels_base64", with = "base64_bytes")]
    pub pixels: Vec<u8>,
}

impl Examples {
    /// The CHW pixels of kept sample `k`.
    pub fn sample(&self, k: usize) -> &[u8] {
        let n = self.channels * self.height * self.width;
        &self.pixels[k * n..(k + 1) * n]
    }

    /// Whether the pixels hold `count` images of the stated size.
    pub fn check(&self, what: &str) -> anyhow::Result<()> {
        let n = self.channels * self.height * self.width;
        if self.pixels.len() != self.count * n {
            anyhow::bail!(
                "{what}: pixel data does not match {} samples of {}x{}x{}",
                self.count,
                self.channels,
                self.height,
                self.width
            );
        }
        Ok(())
    }
}

/// Bytes as one base64 string in JSON.
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| serde::de::Error::custom(format!("pixels_base64 is not base64: {e}")))
    }
}

/// Per model, per angle running counts.
#[derive(Debug, Clone)]
pub struct AngleCounts {
    pub confusion: Confusion,
    /// Samples whose prediction equals their prediction at 0 degrees.
    pub consistent: u64,
    /// Sum over samples of the total-variation distance to the 0-degree softmax.
    pub prob_shift_sum: f64,
    /// Correctness at 0 degrees (a) against correctness at this angle (b).
    pub vs_reference: Paired,
    /// Samples whose logits held NaN or inf.
    pub nonfinite: u64,
}

#[derive(Debug, Clone)]
pub struct ModelSweep {
    /// Aligned with [`SweepResult::angles`]; derived from the per-sample arrays by [`tally`].
    pub counts: Vec<AngleCounts>,
    /// Per angle, the per-sample values ([`Column`]).
    pub cols: Vec<Column>,
    /// The length of each sample's top-k list in [`Column::top_k`].
    pub top_k: usize,
    /// `--worst-of K`: draw `d`'s per-sample values (each sample at its own pose,
    /// [`Draws::pose`]); empty without it.
    pub draws: Vec<Column>,
}

impl ModelSweep {
    /// Build from per-angle columns, tallying the counts (the one place counts are
    /// made, so a sweep, a cache hit, a resumed run and a merge of shards all agree
    /// bit for bit).
    pub fn tallied(
        cols: Vec<Column>,
        top_k: usize,
        labels: &[u32],
        reference: usize,
        n_classes: usize,
    ) -> ModelSweep {
        let counts = (0..cols.len())
            .map(|a| {
                tally(
                    &cols[a].preds,
                    &cols[reference].preds,
                    labels,
                    &cols[a].tv,
                    n_classes,
                )
            })
            .collect();
        ModelSweep {
            counts,
            cols,
            top_k,
            draws: vec![],
        }
    }

    /// `preds[sample]` at angle `a`.
    pub fn preds(&self, a: usize) -> &[i32] {
        &self.cols[a].preds
    }

    /// Sample `s`'s top-k list at angle `a`.
    pub fn top_k_list(&self, a: usize, s: usize) -> &[u32] {
        &self.cols[a].top_k[s * self.top_k..(s + 1) * self.top_k]
    }
}

/// Counts for one angle from per-sample predictions, in sample order.
pub fn tally(
    preds: &[i32],
    ref_preds: &[i32],
    labels: &[u32],
    tv: &[f32],
    n_classes: usize,
) -> AngleCounts {
    let mut c = AngleCounts {
        confusion: Confusion::new(n_classes),
        consistent: 0,
        prob_shift_sum: 0.0,
        vs_reference: Paired::default(),
        nonfinite: 0,
    };
    for i in 0..preds.len() {
        let (p, rp, l) = (preds[i], ref_preds[i], labels[i]);
        c.confusion.add(l, p);
        if p == INVALID {
            c.nonfinite += 1;
        } else if p == rp {
            c.consistent += 1;
        }
        c.prob_shift_sum += tv[i] as f64;
        c.vs_reference.add(rp == l as i32, p == l as i32);
    }
    c
}

#[derive(Debug, Clone)]
pub struct SweepResult {
    /// Every evaluated pose: the reference (upright) first when it was added, then
    /// the user's.
    pub poses: Vec<Pose>,
    /// `--worst-of K`: its draws (each model's [`ModelSweep::draws`]).
    pub draws: Option<Draws>,
    /// `--grid-early-stop`: the grid's counts; `poses` then holds the upright
    /// point alone (the others' figures were left incomplete, so they are left out).
    pub early_stop: Option<EarlyStopped>,
    /// True when 0 was not among the user's angles and was added as the reference.
    pub reference_added: bool,
    pub reference: usize,
    pub indices: Vec<u64>,
    /// Each sample's file or record ([`crate::dataset::Sources`]), beside `indices`.
    pub sources: Vec<String>,
    pub labels: Vec<u32>,
    pub models: Vec<ModelSweep>,
    pub examples: Examples,
}

impl SweepResult {
    /// Indices into `poses` of the user's own poses.
    pub fn user_poses(&self) -> std::ops::Range<usize> {
        if self.reference_added {
            1..self.poses.len()
        } else {
            0..self.poses.len()
        }
    }
}

/// A model's identity as results record it: its name, its file, the sha256 of
/// its bytes, the spec it ran with and where each spec field came from. A shard
/// manifest stores it and summary.json's models carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelId {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub spec: ModelSpec,
    pub spec_sources: Provenance,
    /// What makes its results less than they seem (a model run in training mode
    /// with --allow-training-mode); empty, and absent from the JSON, for most models.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What a run's predictions depend on besides the model and the angle: the data
/// and its selection, the rotation, where it ran and which code ran it. Part of
/// every prediction-cache key and of the checkpoint key, built once per run.
/// Hashed through `serde_json::Value`, whose maps keep their keys sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    pub device: String,
    pub backend: String,
    pub libtorch_version: String,
    pub rotbench_version: String,
    pub dataset_sha256: String,
    /// The first streamed sample and how many are streamed (`--limit`, `--shard`).
    pub start: usize,
    pub len: usize,
    pub interpolation: crate::rotate::Interpolation,
    pub fill: crate::rotate::Fill,
    pub mask_circle: bool,
    pub skip_bad_images: bool,
    pub coarse_labels: bool,
    pub rotate_on: RotateOn,
    /// `--top-k`: how many classes each sample's top-k list keeps.
    pub top_k: usize,
    /// `--sample N --seed S`: which samples were drawn (`start`/`len` then count
    /// positions among them).
    pub sample: Option<crate::dataset::SampleSpec>,
}

/// What `--grid-early-stop` leaves of a grid: per model, the samples right at
/// every point and the evaluations made, of `full` without the stop.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopped {
    /// The grid's points (the user's poses).
    pub points: usize,
    pub grid_correct: Vec<u64>,
    pub evaluated: Vec<u64>,
    pub full: u64,
}

/// A prediction `--grid-early-stop` did not make: the sample was already wrong
/// at an earlier point of the grid.
pub const SKIPPED: i32 = -2;

/// The poses a sweep evaluates: the user's grid, in its order, with the upright
/// pose (0°, no translation) added first when the grid lacks it, as the reference
/// every invariance measure compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct PosePlan {
    pub poses: Vec<Pose>,
    /// True when the upright pose was not among the user's and was added.
    pub reference_added: bool,
    /// Index of the upright pose in `poses`.
    pub reference: usize,
}

impl PosePlan {
    pub fn new(user: &[Pose]) -> PosePlan {
        match user.iter().position(Pose::is_upright) {
            Some(i) => PosePlan {
                poses: user.to_vec(),
                reference_added: false,
                reference: i,
            },
            None => PosePlan {
                poses: std::iter::once(Pose::rotation(0.0))
                    .chain(user.iter().copied())
                    .collect(),
                reference_added: true,
                reference: 0,
            },
        }
    }

    /// Rotations alone, at these angles.
    pub fn of_angles(angles: &[f64]) -> PosePlan {
        let poses: Vec<Pose> = angles.iter().map(|&a| Pose::rotation(a)).collect();
        PosePlan::new(&poses)
    }

    /// The policy "the reference computes whenever any angle does": every other
    /// angle compares with the reference's softmax, so a model (row of `compute`,
    /// one flag per angle) that computes anything computes its reference too.
    /// Returns the rows whose reference was switched on.
    pub fn with_reference(&self, compute: &mut [Vec<bool>]) -> Vec<usize> {
        let mut switched = vec![];
        for (m, row) in compute.iter_mut().enumerate() {
            if row.iter().any(|&c| c) && !row[self.reference] {
                row[self.reference] = true;
                switched.push(m);
            }
        }
        switched
    }
}

/// Example pixels kept for the report are capped at this many bytes, whatever the
/// image size.
pub const EXAMPLE_BYTES: usize = 8 << 20;

/// How many leading samples to keep as examples: `wanted`, within [`EXAMPLE_BYTES`].
pub fn examples_to_keep(wanted: usize, bytes_per_image: usize) -> usize {
    wanted.min(EXAMPLE_BYTES / bytes_per_image.max(1))
}

/// Softmax, argmax (first maximum, as torch.argmax) and the max probability of one row.
/// Returns `None` when any logit is NaN or infinite.
pub fn softmax_row(logits: &[f32], probs: &mut [f32]) -> Option<(usize, f32)> {
    if logits.iter().any(|v| !v.is_finite()) {
        probs.iter_mut().for_each(|p| *p = f32::NAN);
        return None;
    }
    let mut arg = 0;
    for (i, v) in logits.iter().enumerate() {
        if *v > logits[arg] {
            arg = i;
        }
    }
    let m = logits[arg] as f64;
    let mut sum = 0.0f64;
    for (p, v) in probs.iter_mut().zip(logits) {
        let e = (*v as f64 - m).exp();
        *p = e as f32;
        sum += e;
    }
    for p in probs.iter_mut() {
        *p = (*p as f64 / sum) as f32;
    }
    Some((arg, probs[arg]))
}

/// One row of `predictions.csv`: one model's prediction for one sample at one
/// angle. The report's CSV exporter writes these and the gate reads them back,
/// through this one type: the angle as [`crate::format::format_angle`] writes it (`90`, `137.5`),
/// the confidence in shortest round-trip form and empty for an invalid prediction
/// (`pred` is [`INVALID`], -1), read back as NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionRow<'a> {
    #[serde(borrow)]
    pub model: Cow<'a, str>,
    #[serde(serialize_with = "angle_text")]
    pub angle: f64,
    /// The translation of the pose (pixels; absent in files written before
    /// translations: read back as 0).
    #[serde(serialize_with = "angle_text", default)]
    pub dx: f64,
    #[serde(serialize_with = "angle_text", default)]
    pub dy: f64,
    pub index: u64,
    pub label: u32,
    pub pred: i32,
    #[serde(
        serialize_with = "confidence_text",
        deserialize_with = "confidence_value"
    )]
    pub confidence: f32,
    /// The sample's file or record (absent in files written before rotbench 0.1's
    /// issue 21 change: read back as empty).
    #[serde(borrow, default)]
    pub source: Cow<'a, str>,
    /// The true class's probability (0 for an invalid prediction). This and the
    /// next two are absent from files written before issue 18 (read back as NaN
    /// and empty).
    #[serde(
        serialize_with = "confidence_text",
        deserialize_with = "confidence_value",
        default = "nan"
    )]
    pub p_true: f32,
    /// The sample's Brier term, `sum_k (p_k - y_k)^2` (2 for an invalid prediction).
    #[serde(
        serialize_with = "confidence_text",
        deserialize_with = "confidence_value",
        default = "nan"
    )]
    pub brier: f32,
    /// The top-k classes, best first, separated by spaces (empty when invalid).
    #[serde(borrow, default)]
    pub top_k: Cow<'a, str>,
    /// `--worst-of K`: the draw (0-based) this row is, at the sample's own pose;
    /// empty for a row of the grid.
    #[serde(default)]
    pub draw: Option<u32>,
    /// `--worst-of K`: whether this draw is the sample's worst (the published
    /// selection, [`crate::poses::worst_draw`]); empty for a row of the grid.
    #[serde(default)]
    pub worst: Option<bool>,
}

fn nan() -> f32 {
    f32::NAN
}

/// A top-k list as `predictions.csv` writes it: the classes separated by single
/// spaces, best first; an invalid prediction's list is empty.
pub fn top_k_text(list: &[u32]) -> String {
    let mut text = String::new();
    push_top_k(&mut text, list);
    text
}

/// [`top_k_text`] appended to `out`.
pub fn push_top_k(out: &mut String, list: &[u32]) {
    use std::fmt::Write;
    let start = out.len();
    for c in list
        .iter()
        .take_while(|&&c| c != crate::metrics::calibration::NO_CLASS)
    {
        if out.len() > start {
            out.push(' ');
        }
        let _ = write!(out, "{c}");
    }
}

/// The column names of `predictions.csv`, in order.
pub const PREDICTION_COLUMNS: [&str; 14] = [
    "model",
    "angle",
    "dx",
    "dy",
    "index",
    "label",
    "pred",
    "confidence",
    "source",
    "p_true",
    "brier",
    "top_k",
    "draw",
    "worst",
];

fn angle_text<S: serde::Serializer>(a: &f64, s: S) -> std::result::Result<S::Ok, S::Error> {
    with_text(|t| crate::format::push_angle(t, *a), s)
}

fn confidence_text<S: serde::Serializer>(c: &f32, s: S) -> std::result::Result<S::Ok, S::Error> {
    with_text(|t| crate::format::push_num32(t, *c), s)
}

thread_local! {
    /// The text of a field being written: one buffer a thread, reused, so that a
    /// predictions.csv row allocates nothing for its numbers.
    static FIELD: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Serialise the text `fill` writes, made in this thread's field buffer.
fn with_text<S: serde::Serializer>(
    fill: impl FnOnce(&mut String),
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    FIELD.with(|cell| {
        // A new buffer only if a serialiser called back into a field of this kind.
        let (mut shared, mut own) = (cell.try_borrow_mut(), String::new());
        let text = match &mut shared {
            Ok(text) => text,
            Err(_) => &mut own,
        };
        text.clear();
        fill(text);
        s.serialize_str(text)
    })
}

fn confidence_value<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f32, D::Error> {
    let text: Cow<'de, str> = Deserialize::deserialize(d)?;
    if text.is_empty() {
        Ok(f32::NAN)
    } else {
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One model's per-sample values at one angle, in sample order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Column {
    /// The top-1 class; [`INVALID`] for non-finite logits.
    pub preds: Vec<i32>,
    /// Softmax probability of the predicted class (NaN when invalid).
    pub confidence: Vec<f32>,
    /// Total-variation distance between the softmax here and at 0 degrees
    /// (1 when exactly one side is invalid, 0 when both are).
    pub tv: Vec<f32>,
    /// Softmax probability of the true class (0 when invalid).
    pub p_true: Vec<f32>,
    /// `sum_k (p_k - y_k)^2`, the sample's Brier term (2 when invalid).
    pub brier: Vec<f32>,
    /// The top-k classes of each sample, best first, `k` values per sample
    /// ([`crate::metrics::calibration::NO_CLASS`] when invalid).
    pub top_k: Vec<u32>,
}

impl Column {
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Append `other`'s samples after these.
    pub fn append(&mut self, other: &Column) {
        self.preds.extend_from_slice(&other.preds);
        self.confidence.extend_from_slice(&other.confidence);
        self.tv.extend_from_slice(&other.tv);
        self.p_true.extend_from_slice(&other.p_true);
        self.brier.extend_from_slice(&other.brier);
        self.top_k.extend_from_slice(&other.top_k);
    }

    /// Samples `range` (of `k`-long top-k lists).
    pub fn slice(&self, range: std::ops::Range<usize>, k: usize) -> Column {
        Column {
            preds: self.preds[range.clone()].to_vec(),
            confidence: self.confidence[range.clone()].to_vec(),
            tv: self.tv[range.clone()].to_vec(),
            p_true: self.p_true[range.clone()].to_vec(),
            brier: self.brier[range.clone()].to_vec(),
            top_k: self.top_k[range.start * k..range.end * k].to_vec(),
        }
    }

    /// Whether every array holds `n` samples (and `n * k` top-k entries).
    pub fn holds(&self, n: usize, k: usize) -> bool {
        self.preds.len() == n
            && self.confidence.len() == n
            && self.tv.len() == n
            && self.p_true.len() == n
            && self.brier.len() == n
            && self.top_k.len() == n * k
    }
}

/// Per-sample results for a run of samples: the unit that checkpoints, caches and
/// shards store. `cols[model][angle]`; an empty column means "not computed here"
/// (filled from a cache by the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleData {
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    /// The length of each sample's top-k list (`--top-k`, at most the class count).
    pub top_k: usize,
    pub cols: Vec<Vec<Column>>,
}

impl SampleData {
    pub fn empty(models: usize, angles: usize, top_k: usize) -> Self {
        SampleData {
            indices: vec![],
            labels: vec![],
            top_k,
            cols: vec![vec![Column::default(); angles]; models],
        }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Append `other` (same models and angles) after these samples. Data with no
    /// samples yet takes `other`'s top-k length.
    pub fn append(&mut self, other: &SampleData) {
        if self.is_empty() {
            self.top_k = other.top_k;
        }
        self.indices.extend_from_slice(&other.indices);
        self.labels.extend_from_slice(&other.labels);
        for (mine, theirs) in self.cols.iter_mut().zip(&other.cols) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.append(b);
            }
        }
    }
}

/// The engine's raw output, before tallying.
#[derive(Debug, Clone)]
pub struct Evaluations {
    pub poses: Vec<Pose>,
    /// `--worst-of K`: the data's columns after the poses' are its K draws.
    pub draws: Option<Draws>,
    /// `--grid-early-stop`: the grid's columns hold [`SKIPPED`] after a sample's
    /// first mistake.
    pub early_stop: bool,
    pub reference_added: bool,
    pub reference: usize,
    pub data: SampleData,
    pub examples: Examples,
    /// The batch size used after calibration (or the fixed one).
    pub batch_size: usize,
    /// What `--batch-size auto` measured (empty for a fixed size).
    pub batch_timings: Vec<BatchTiming>,
}

impl Evaluations {
    /// Tally the counts. Every (model, angle) must hold one value per sample.
    /// `sources` names each sample's file or record.
    pub fn tally(self, n_classes: usize, sources: &crate::dataset::Sources) -> Result<SweepResult> {
        let Evaluations {
            mut poses,
            draws,
            early_stop,
            mut reference_added,
            mut reference,
            mut data,
            examples,
            ..
        } = self;
        let n = data.len();
        let k = data.top_k;
        for (m, per) in data.cols.iter().enumerate() {
            for (a, c) in per.iter().enumerate() {
                if !c.holds(n, k) {
                    bail!(
                        "internal: model {m} in column {a} ({} poses) has {} of {n} predictions",
                        poses.len(),
                        c.len()
                    );
                }
            }
        }
        let stopped = early_stop.then(|| {
            let user: Vec<usize> = if reference_added {
                (1..poses.len()).collect()
            } else {
                (0..poses.len()).collect()
            };
            let s = grid_counts(&data, &user, poses.len());
            // Keep the upright column alone (the draws after it).
            for cols in &mut data.cols {
                let rest = cols.split_off(poses.len());
                let upright = cols.swap_remove(reference);
                *cols = std::iter::once(upright).chain(rest).collect();
            }
            poses = vec![poses[reference]];
            (reference, reference_added) = (0, false);
            s
        });
        let labels = data.labels;
        let models = data
            .cols
            .into_iter()
            .map(|mut cols| {
                let drawn = cols.split_off(poses.len().min(cols.len()));
                let mut ms = ModelSweep::tallied(cols, k, &labels, reference, n_classes);
                ms.draws = drawn;
                ms
            })
            .collect();
        let sources = data.indices.iter().map(|&i| sources.of(i)).collect();
        Ok(SweepResult {
            poses,
            draws,
            early_stop: stopped,
            reference_added,
            reference,
            sources,
            indices: data.indices,
            labels,
            models,
            examples,
        })
    }
}

/// The samples whose prediction is their label in every column `at` of `cols`
/// (grid accuracy's count; a skipped or invalid prediction is not right).
pub fn right_at_all(cols: &[Column], at: &[usize], labels: &[u32]) -> u64 {
    (0..labels.len())
        .filter(|&s| at.iter().all(|&a| cols[a].preds[s] == labels[s] as i32))
        .count() as u64
}

/// `--grid-early-stop`'s counts from the data: a sample is right at the whole
/// grid when no column of `user` holds a wrong (or skipped) prediction.
fn grid_counts(data: &SampleData, user: &[usize], poses: usize) -> EarlyStopped {
    let n = data.len();
    let mut grid_correct = Vec::new();
    let mut evaluated = Vec::new();
    for cols in &data.cols {
        grid_correct.push(right_at_all(cols, user, &data.labels));
        let made = cols[..poses]
            .iter()
            .map(|c| c.preds.iter().filter(|&&p| p != SKIPPED).count() as u64)
            .sum();
        evaluated.push(made);
    }
    EarlyStopped {
        points: user.len(),
        grid_correct,
        evaluated,
        full: (poses * n) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_added_as_the_reference_when_missing() {
        let angles = |p: PosePlan| p.poses.iter().map(|p| p.angle).collect::<Vec<_>>();
        let p = PosePlan::of_angles(&[90.0, 180.0]);
        assert_eq!((p.reference_added, p.reference), (true, 0));
        assert_eq!(angles(p), [0.0, 90.0, 180.0]);
        let p = PosePlan::of_angles(&[90.0, 0.0]);
        assert_eq!((p.reference_added, p.reference), (false, 1));
        assert_eq!(angles(p), [90.0, 0.0]);
        // A translated 0° is not the reference.
        let shifted = [Pose {
            angle: 0.0,
            dx: 1.0,
            dy: 0.0,
        }];
        assert!(PosePlan::new(&shifted).reference_added);
    }

    #[test]
    fn a_model_that_computes_any_angle_computes_its_reference() {
        let p = PosePlan::of_angles(&[90.0, 0.0, 180.0]);
        let mut c = vec![
            vec![false, false, true],
            vec![false, false, false],
            vec![true, true, false],
        ];
        assert_eq!(p.with_reference(&mut c), [0]);
        assert_eq!(c[0], [false, true, true]);
        assert_eq!(c[1], [false, false, false], "nothing to compute stays so");
        assert_eq!(c[2], [true, true, false]);
    }

    #[test]
    fn prediction_rows_round_trip_through_csv_with_empty_confidence_for_invalid() {
        let rows = [
            PredictionRow {
                model: "a,b".into(),
                angle: 137.5,
                dx: -1.5,
                dy: 3.0,
                index: 7,
                label: 3,
                pred: 3,
                confidence: 0.912_345_7,
                source: "cat/a b,c.png".into(),
                p_true: 0.912_345_7,
                brier: 0.012_5,
                top_k: "3 1".into(),
                draw: None,
                worst: None,
            },
            PredictionRow {
                model: "m".into(),
                angle: 90.0,
                dx: 0.0,
                dy: 0.0,
                index: 8,
                label: 1,
                pred: INVALID,
                confidence: f32::NAN,
                source: "t10k-images-idx3-ubyte#8".into(),
                p_true: 0.0,
                brier: 2.0,
                top_k: "".into(),
                draw: Some(3),
                worst: Some(true),
            },
        ];
        let mut w = csv::Writer::from_writer(vec![]);
        for r in &rows {
            w.serialize(r).unwrap();
        }
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "model,angle,dx,dy,index,label,pred,confidence,source,p_true,brier,top_k,draw,worst\n\"a,b\",137.5,-1.5,3,7,3,3,0.9123457,\"cat/a b,c.png\",0.9123457,0.0125,3 1,,\nm,90,0,0,8,1,-1,,t10k-images-idx3-ubyte#8,0,2,,3,true\n"
        );
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let headers = r.headers().unwrap().clone();
        assert_eq!(headers.iter().collect::<Vec<_>>(), PREDICTION_COLUMNS);
        let mut rec = csv::StringRecord::new();
        let mut back = vec![];
        while r.read_record(&mut rec).unwrap() {
            let row: PredictionRow = rec.deserialize(Some(&headers)).unwrap();
            back.push(PredictionRow {
                model: row.model.into_owned().into(),
                source: row.source.into_owned().into(),
                top_k: row.top_k.into_owned().into(),
                ..row
            });
        }
        assert_eq!(back[0], rows[0]);
        assert_eq!(back[1].pred, INVALID);
        assert!(back[1].confidence.is_nan());
    }

    #[test]
    fn examples_are_capped_at_eight_megabytes() {
        assert_eq!(examples_to_keep(64, 784), 64);
        assert_eq!(examples_to_keep(64, 3 * 1024 * 1024), 2);
        assert_eq!(examples_to_keep(5, 0), 5);
    }

    #[test]
    fn softmax_row_matches_hand_values_and_flags_nan() {
        let mut p = [0f32; 3];
        let (arg, conf) = softmax_row(&[0.0, (2.0f32).ln(), 0.0], &mut p).unwrap();
        assert_eq!(arg, 1);
        assert!((conf - 0.5).abs() < 1e-6);
        assert!((p[0] - 0.25).abs() < 1e-6);
        assert!(softmax_row(&[0.0, f32::NAN, 1.0], &mut p).is_none());
        assert!(softmax_row(&[f32::INFINITY, 0.0, 1.0], &mut p).is_none());
        // Ties go to the first maximum, as torch.argmax.
        assert_eq!(softmax_row(&[1.0, 1.0, 0.0], &mut p).unwrap().0, 0);
    }
}
