//! The engine: stream the dataset once, rotate each chunk to every angle (once
//! for all models), run every model, and accumulate per-angle counts and
//! per-sample predictions. No I/O besides the dataset stream; no printing.
//!
//! Rotation runs on a producer thread (rayon across the chunk's images) while
//! the models run on the calling thread; a bounded channel keeps memory flat.

use crate::dataset::{Chunk, Source, Target};
use crate::metrics::{total_variation, Confusion, Paired, INVALID};
use crate::model::Model;
use crate::rotate::{Geometry, Plan, RotateOptions};
use anyhow::{bail, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;
use tch::Tensor;

/// Images per forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchSize {
    Fixed(usize),
    /// Time [`AUTO_CANDIDATES`] on the first chunks of the sweep (their results are
    /// kept, so nothing is computed twice) and use the fastest for the rest.
    Auto,
}

/// The sizes `--batch-size auto` tries, in this order, one chunk each, stopping at the
/// first that is more than 2% slower than the best before it.
pub const AUTO_CANDIDATES: [usize; 4] = [64, 128, 256, 512];
/// What `auto` means where timing cannot decide (fewer than 2 angles, or shards,
/// which must all cut the data the same way).
pub const AUTO_FALLBACK: usize = 256;

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

/// Where rotation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateOn {
    /// On the CPU, on a producer thread, while the models run (the CPU default).
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

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The user's angles, in their order.
    pub angles: Vec<f64>,
    pub rotate: RotateOptions,
    pub batch: BatchSize,
    pub rotate_on: RotateOn,
    /// Keep the raw pixels of up to this many leading samples, for galleries and strips.
    pub keep_examples: usize,
}

/// Raw (unrotated, converted) pixels of the first samples, kept for the report.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Positions within the sweep's samples (0..n), not dataset indices.
    pub count: usize,
    pub pixels: Vec<u8>,
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
    /// `preds[angle][sample]`; [`INVALID`] for non-finite logits.
    pub preds: Vec<Vec<i32>>,
    /// Softmax probability of the predicted class (NaN when invalid).
    pub confidence: Vec<Vec<f32>>,
    /// Total-variation distance between the softmax at this angle and at 0 degrees
    /// (1 when exactly one side is invalid, 0 when both are).
    pub tv: Vec<Vec<f32>>,
}

impl ModelSweep {
    /// Build from per-sample arrays, tallying the counts (the one place counts are made,
    /// so a sweep, a cache hit, a resumed run and a merge of shards all agree bit for bit).
    pub fn tallied(
        preds: Vec<Vec<i32>>,
        confidence: Vec<Vec<f32>>,
        tv: Vec<Vec<f32>>,
        labels: &[u32],
        reference: usize,
        n_classes: usize,
    ) -> ModelSweep {
        let counts = (0..preds.len())
            .map(|a| tally(&preds[a], &preds[reference], labels, &tv[a], n_classes))
            .collect();
        ModelSweep {
            counts,
            preds,
            confidence,
            tv,
        }
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
    /// Every evaluated angle: the reference (0) first when it was added, then the user's.
    pub angles: Vec<f64>,
    /// True when 0 was not among the user's angles and was added as the reference.
    pub reference_added: bool,
    pub reference: usize,
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    pub models: Vec<ModelSweep>,
    pub examples: Examples,
}

impl SweepResult {
    /// Indices into `angles` of the user's own angles.
    pub fn user_angles(&self) -> std::ops::Range<usize> {
        if self.reference_added {
            1..self.angles.len()
        } else {
            0..self.angles.len()
        }
    }
}

/// The angles to evaluate: 0 first if absent, then the user's list.
pub fn plan_angles(user: &[f64]) -> (Vec<f64>, bool, usize) {
    match user.iter().position(|&a| a == 0.0) {
        Some(i) => (user.to_vec(), false, i),
        None => {
            let mut v = vec![0.0];
            v.extend_from_slice(user);
            (v, true, 0)
        }
    }
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

/// Per-sample results for a run of samples: the unit that checkpoints, caches and
/// shards store. `preds/confidence/tv[model][angle][sample]`; an empty inner vector
/// means "not computed here" (filled from a cache by the caller).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleData {
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    pub preds: Vec<Vec<Vec<i32>>>,
    pub confidence: Vec<Vec<Vec<f32>>>,
    pub tv: Vec<Vec<Vec<f32>>>,
}

impl SampleData {
    pub fn empty(models: usize, angles: usize) -> Self {
        SampleData {
            indices: vec![],
            labels: vec![],
            preds: vec![vec![vec![]; angles]; models],
            confidence: vec![vec![vec![]; angles]; models],
            tv: vec![vec![vec![]; angles]; models],
        }
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Append `other` (same models and angles) after these samples.
    pub fn append(&mut self, other: &SampleData) {
        self.indices.extend_from_slice(&other.indices);
        self.labels.extend_from_slice(&other.labels);
        for m in 0..self.preds.len() {
            for a in 0..self.preds[m].len() {
                self.preds[m][a].extend_from_slice(&other.preds[m][a]);
                self.confidence[m][a].extend_from_slice(&other.confidence[m][a]);
                self.tv[m][a].extend_from_slice(&other.tv[m][a]);
            }
        }
    }
}

/// What a run must compute, and what it may skip.
#[derive(Debug, Clone, Default)]
pub struct Work {
    /// `[model][angle]`: compute this pair. `None`: everything. A model that computes
    /// any angle also computes its reference (the other angles compare with it).
    pub compute: Option<Vec<Vec<bool>>>,
    /// Finished samples from an interrupted run: their chunks are read (for the
    /// examples) but not evaluated again. Must cover whole leading chunks.
    pub resume: Option<SampleData>,
}

/// The engine's raw output, before tallying.
#[derive(Debug, Clone)]
pub struct RawSweep {
    pub angles: Vec<f64>,
    pub reference_added: bool,
    pub reference: usize,
    pub data: SampleData,
    pub examples: Examples,
    /// The batch size used after calibration (or the fixed one).
    pub batch_size: usize,
    /// What `--batch-size auto` measured (empty for a fixed size).
    pub batch_timings: Vec<BatchTiming>,
}

impl RawSweep {
    /// Tally the counts. Every (model, angle) must hold one value per sample.
    pub fn finish(self, n_classes: usize) -> Result<SweepResult> {
        let RawSweep {
            angles,
            reference_added,
            reference,
            data,
            examples,
            ..
        } = self;
        let n = data.len();
        for (m, per) in data.preds.iter().enumerate() {
            for (a, p) in per.iter().enumerate() {
                if p.len() != n || data.confidence[m][a].len() != n || data.tv[m][a].len() != n {
                    bail!(
                        "internal: model {m} at angle {} has {} of {n} predictions",
                        angles[a],
                        p.len()
                    );
                }
            }
        }
        let labels = data.labels;
        let models = data
            .preds
            .into_iter()
            .zip(data.confidence)
            .zip(data.tv)
            .map(|((p, c), t)| ModelSweep::tallied(p, c, t, &labels, reference, n_classes))
            .collect();
        Ok(SweepResult {
            angles,
            reference_added,
            reference,
            indices: data.indices,
            labels,
            models,
            examples,
        })
    }
}

struct Rotated {
    angle: usize,
    pixels: Vec<f32>,
}

/// Check that models can be swept together and return their shared input layout.
pub fn shared_target(models: &[Model]) -> Result<Target> {
    let Some(first) = models.first() else {
        bail!("no model to sweep")
    };
    let spec = &first.spec;
    for m in &models[1..] {
        if m.spec.input != spec.input {
            bail!(
                "{} expects input {:?} but {} expects {:?}; models swept together must share their input size (run them separately)",
                m.path.display(),
                m.spec.input,
                first.path.display(),
                spec.input
            );
        }
        if m.spec.preprocess != spec.preprocess {
            bail!(
                "{} and {} preprocess differently (resize, order, channel order or value range); models swept together must share that (run them separately)",
                m.path.display(),
                first.path.display()
            );
        }
        if m.spec.classes != spec.classes {
            bail!(
                "{} and {} have different class lists; models swept together must share their classes",
                m.path.display(),
                first.path.display()
            );
        }
    }
    Ok(Target {
        channels: spec.channels(),
        height: spec.height(),
        width: spec.width(),
    })
}

/// Run the sweep and tally it.
pub fn run(
    models: &[Model],
    source: &mut dyn Source,
    settings: &SweepSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SweepResult> {
    let n_classes = models.first().map_or(0, |m| m.spec.n_classes());
    run_raw(
        models,
        source,
        settings,
        &Work::default(),
        progress,
        &mut |_| Ok(()),
    )?
    .finish(n_classes)
}

/// The engine. `progress` gets the number of images x angles x models evaluated so
/// far; `on_chunk` gets each finished chunk's per-sample results (for checkpoints).
pub fn run_raw(
    models: &[Model],
    source: &mut dyn Source,
    settings: &SweepSettings,
    work: &Work,
    progress: &(dyn Fn(u64) + Sync),
    on_chunk: &mut dyn FnMut(&SampleData) -> Result<()>,
) -> Result<RawSweep> {
    let target = shared_target(models)?;
    if settings.batch == BatchSize::Fixed(0) {
        bail!("--batch-size 0: the batch size must be at least 1");
    }
    let n_classes = models[0].spec.n_classes();
    let (angles, reference_added, reference) = plan_angles(&settings.angles);
    let (nm, na) = (models.len(), angles.len());
    let mut compute: Vec<Vec<bool>> = work
        .compute
        .clone()
        .unwrap_or_else(|| vec![vec![true; na]; nm]);
    for c in compute.iter_mut() {
        if c.iter().any(|&x| x) {
            c[reference] = true;
        }
    }
    let angle_needed: Vec<bool> = (0..na).map(|a| compute.iter().any(|c| c[a])).collect();
    let plans: Vec<Option<Plan>> = angles
        .iter()
        .enumerate()
        .map(|(a, &deg)| {
            angle_needed[a].then(|| {
                Plan::new(
                    Geometry::same(target.height, target.width),
                    deg,
                    &settings.rotate,
                )
            })
        })
        .collect();
    let rotate_opts = settings.rotate;
    let on_device = settings.rotate_on == RotateOn::Device;
    let device = models[0].device;
    let mut device_plans: Vec<Option<crate::rotate_device::DevicePlan>> =
        (0..na).map(|_| None).collect();
    let mut device_chunk: Option<Tensor> = None;
    let angles_for_plans = angles.clone();
    // Work order inside a chunk: the reference first, so later angles compare to it.
    let order: Vec<usize> = std::iter::once(reference)
        .chain((0..na).filter(|&i| i != reference))
        .filter(|&a| angle_needed[a])
        .collect();

    let px = target.pixels();
    let mut data = work
        .resume
        .clone()
        .unwrap_or_else(|| SampleData::empty(nm, na));
    let resumed = data.len();
    let mut examples = Examples {
        channels: target.channels,
        height: target.height,
        width: target.width,
        count: 0,
        pixels: vec![],
    };
    // Keep at most 8 MB of example pixels whatever the image size.
    let keep = settings.keep_examples.min((8 << 20) / px.max(1));

    let (tx, rx) = sync_channel::<Result<(Arc<Chunk>, Option<Rotated>)>>(2);
    // Auto: one chunk per candidate (after any resumed samples), then the producer
    // waits for the consumer's choice. Timing needs warm-up calls, so at least 2 angles.
    let (fixed, schedule): (usize, Vec<usize>) = match settings.batch {
        BatchSize::Fixed(b) => (b, vec![]),
        BatchSize::Auto if order.len() >= 2 => (AUTO_FALLBACK, AUTO_CANDIDATES.to_vec()),
        BatchSize::Auto => (AUTO_FALLBACK, vec![]),
    };
    let max_chunk = schedule.iter().copied().max().unwrap_or(fixed).max(fixed);
    let (choice_tx, choice_rx) = sync_channel::<usize>(1);
    let mut batch_timings: Vec<BatchTiming> = Vec::new();
    let mut chosen = fixed;
    let mut calibration_done = schedule.is_empty();
    let shape = [
        0i64,
        target.channels as i64,
        target.height as i64,
        target.width as i64,
    ];
    let mut done = 0u64;
    std::thread::scope(|scope| -> Result<()> {
        let plans = &plans;
        let order = &order;
        let schedule_p = schedule.clone();
        scope.spawn(move || {
            let mut seen = 0usize;
            let mut calibrated = 0usize;
            let mut decided = schedule_p.is_empty();
            let mut batch = fixed;
            loop {
                // Resumed samples: chunks that end exactly on the resume point.
                let want = if seen < resumed {
                    (resumed - seen).min(max_chunk)
                } else if !decided {
                    // After each calibration chunk the consumer says: go on (0) or the size.
                    if calibrated > 0 {
                        match choice_rx.recv() {
                            Ok(0) => {}
                            Ok(b) => {
                                decided = true;
                                batch = b;
                            }
                            Err(_) => return, // the consumer stopped
                        }
                    }
                    if decided {
                        batch
                    } else {
                        calibrated += 1;
                        schedule_p[calibrated - 1]
                    }
                } else {
                    batch
                };
                // A chunk whose every image failed to decode (--skip-bad-images) holds
                // no samples: read on, so that no model is ever fed an empty batch.
                let chunk = loop {
                    match source.next_chunk(want) {
                        Ok(Some(c)) if c.is_empty() => continue,
                        Ok(Some(c)) => break Arc::new(c),
                        Ok(None) => return,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    }
                };
                seen += chunk.len();
                // Announce the chunk (examples and resume bookkeeping) before its angles.
                if tx.send(Ok((chunk.clone(), None))).is_err() {
                    return;
                }
                if seen <= resumed {
                    continue; // finished in the interrupted run
                }
                // Images larger than the target (rotate-then-crop) need a plan per size.
                let sized = &chunk.dims;
                let offsets: Vec<usize> = sized
                    .iter()
                    .scan(0usize, |at, &(h, w)| {
                        let o = *at;
                        *at += target.channels * h * w;
                        Some(o)
                    })
                    .collect();
                for &a in order {
                    let Some(plan) = &plans[a] else { continue };
                    // On the device the consumer rotates the uploaded chunk: send no pixels.
                    let by_consumer = on_device && sized.is_empty();
                    let mut pixels = if by_consumer {
                        vec![]
                    } else {
                        vec![0f32; chunk.len() * px]
                    };
                    if by_consumer {
                        // nothing to do here
                    } else if sized.is_empty() {
                        pixels
                            .par_chunks_mut(px)
                            .zip(chunk.pixels.par_chunks(px))
                            .for_each(|(out, src)| {
                                plan.apply(src, target.channels, out);
                            });
                    } else {
                        let mut by_size: std::collections::HashMap<(usize, usize), Plan> =
                            Default::default();
                        for &(h, w) in sized {
                            by_size.entry((h, w)).or_insert_with(|| {
                                let g = Geometry::centre_crop(h, w, target.height, target.width);
                                Plan::new(g, angles_for_plans[a], &rotate_opts)
                            });
                        }
                        pixels.par_chunks_mut(px).enumerate().for_each(|(k, out)| {
                            let (h, w) = sized[k];
                            let src =
                                &chunk.pixels[offsets[k]..offsets[k] + target.channels * h * w];
                            by_size[&(h, w)].apply(src, target.channels, out);
                        });
                    }
                    if tx
                        .send(Ok((chunk.clone(), Some(Rotated { angle: a, pixels }))))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });

        // Owned here so that an early return drops it and a producer waiting for the
        // choice wakes up and ends.
        let choice_tx = choice_tx;
        let mut probs = vec![0f32; n_classes];
        let mut ref_probs: Vec<Vec<f32>> = vec![Vec::new(); nm];
        let mut ref_pred: Vec<Vec<i32>> = vec![Vec::new(); nm];
        let mut current = SampleData::empty(nm, na);
        let mut samples_seen = 0usize;
        // Calibration state: chunks computed so far, angle messages of the current chunk,
        // and its timed forward seconds / images / calls.
        let mut computed_chunks = 0usize;
        let mut angle_msgs = 0usize;
        let (mut t_sum, mut t_images, mut t_calls) = (0f64, 0usize, 0usize);
        let warmup = if order.len() >= 4 { 2 } else { 1 };
        let mut flush = |current: &mut SampleData, data: &mut SampleData| -> Result<()> {
            if !current.is_empty() {
                on_chunk(current)?;
                data.append(current);
                *current = SampleData::empty(nm, na);
            }
            Ok(())
        };
        for msg in rx {
            let (chunk, rotated) = msg?;
            let Some(Rotated { angle, pixels }) = rotated else {
                // A new chunk: the previous one is complete.
                flush(&mut current, &mut data)?;
                let n = chunk.len();
                let take = keep.saturating_sub(examples.count).min(n);
                if chunk.dims.is_empty() {
                    examples
                        .pixels
                        .extend_from_slice(&chunk.pixels[..take * px]);
                } else {
                    // Keep the unrotated centre crop (what the model sees at 0 degrees).
                    let mut at = 0;
                    for k in 0..take {
                        let (h, w) = chunk.dims[k];
                        let g = Geometry::centre_crop(h, w, target.height, target.width);
                        let mut out = vec![0f32; px];
                        Plan::new(g, 0.0, &settings.rotate).apply(
                            &chunk.pixels[at..at + target.channels * h * w],
                            target.channels,
                            &mut out,
                        );
                        examples.pixels.extend(crate::rotate::to_u8(&out));
                        at += target.channels * h * w;
                    }
                }
                examples.count += take;
                samples_seen += n;
                if samples_seen <= resumed {
                    continue;
                }
                if samples_seen - n < resumed {
                    bail!("internal: resume point {resumed} is not on a chunk boundary");
                }
                current.indices.extend_from_slice(&chunk.indices);
                current.labels.extend_from_slice(&chunk.labels);
                device_chunk = (on_device && chunk.dims.is_empty()).then(|| {
                    crate::rotate_device::upload(
                        &chunk.pixels,
                        n,
                        target.channels,
                        target.height * target.width,
                        device,
                    )
                });
                computed_chunks += 1;
                angle_msgs = 0;
                (t_sum, t_images, t_calls) = (0.0, 0, 0);
                continue;
            };
            angle_msgs += 1;
            let calibrating =
                !calibration_done && computed_chunks >= 1 && computed_chunks <= schedule.len();
            let n = chunk.len();
            let mut sh = shape;
            sh[0] = n as i64;
            let input = match (&device_chunk, pixels.is_empty()) {
                (Some(src), true) => {
                    let Some(plan) = &plans[angle] else {
                        bail!("internal: no plan for angle {}", angles[angle])
                    };
                    device_plans[angle]
                        .get_or_insert_with(|| crate::rotate_device::DevicePlan::new(plan, device))
                        .apply(src)
                }
                _ => Tensor::from_slice(&pixels).view(sh),
            };
            for (mi, model) in models.iter().enumerate() {
                if !compute[mi][angle] {
                    continue;
                }
                let started = Instant::now();
                let logits = model.forward_raw(&input)?;
                let logits: Vec<f32> = Vec::<f32>::try_from(&logits).map_err(|e| {
                    anyhow::anyhow!("{}: cannot read the logits: {e}", model.path.display())
                })?;
                if calibrating && angle_msgs > warmup {
                    t_sum += started.elapsed().as_secs_f64();
                    t_images += n;
                    t_calls += 1;
                }
                if angle == reference {
                    ref_probs[mi].resize(n * n_classes, 0.0);
                    ref_pred[mi].resize(n, INVALID);
                }
                for i in 0..n {
                    let row = &logits[i * n_classes..(i + 1) * n_classes];
                    let (pred, conf) = match softmax_row(row, &mut probs) {
                        Some((p, c)) => (p as i32, c),
                        None => (INVALID, f32::NAN),
                    };
                    if angle == reference {
                        ref_probs[mi][i * n_classes..(i + 1) * n_classes].copy_from_slice(&probs);
                        ref_pred[mi][i] = pred;
                    }
                    let rp = ref_pred[mi][i];
                    let shift = if pred != INVALID && rp != INVALID {
                        total_variation(&probs, &ref_probs[mi][i * n_classes..(i + 1) * n_classes])
                            as f32
                    } else if pred != rp {
                        1.0 // exactly one side undefined: count as the largest shift
                    } else {
                        0.0
                    };
                    current.preds[mi][angle].push(pred);
                    current.confidence[mi][angle].push(conf);
                    current.tv[mi][angle].push(shift);
                }
                done += n as u64;
                progress(done);
            }
            if calibrating && angle_msgs == order.len() {
                let best_before = batch_timings
                    .iter()
                    .map(|t| t.images_per_second)
                    .fold(0.0, f64::max);
                let mut slower = false;
                if t_calls > 0 && t_sum > 0.0 {
                    let rate = t_images as f64 / t_sum;
                    // Larger batches only get slower once they have started to (caches):
                    // stop at the first size clearly below the best so far.
                    slower = rate < 0.98 * best_before;
                    batch_timings.push(BatchTiming {
                        batch_size: n,
                        images_per_second: rate,
                        calls: t_calls,
                    });
                }
                // Sends fail only if the producer has ended (end of data).
                if computed_chunks == schedule.len() || slower {
                    chosen = fastest(&batch_timings).unwrap_or(fixed);
                    calibration_done = true;
                    let _ = choice_tx.send(chosen);
                } else {
                    let _ = choice_tx.send(0);
                }
            }
        }
        flush(&mut current, &mut data)?;
        Ok(())
    })?;
    if data.is_empty() {
        bail!("the dataset yielded no samples (all skipped?)");
    }
    if !calibration_done && !batch_timings.is_empty() {
        // The data ended during calibration: report the fastest size that was seen.
        chosen = fastest(&batch_timings).unwrap_or(fixed);
    }
    Ok(RawSweep {
        angles,
        reference_added,
        reference,
        data,
        examples,
        batch_size: chosen,
        batch_timings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_added_as_the_reference_when_missing() {
        assert_eq!(
            plan_angles(&[90.0, 180.0]),
            (vec![0.0, 90.0, 180.0], true, 0)
        );
        assert_eq!(plan_angles(&[90.0, 0.0]), (vec![90.0, 0.0], false, 1));
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
