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
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The user's angles, in their order.
    pub angles: Vec<f64>,
    pub rotate: RotateOptions,
    pub batch_size: usize,
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
    /// Aligned with [`SweepResult::angles`].
    pub counts: Vec<AngleCounts>,
    /// `preds[angle][sample]`; [`INVALID`] for non-finite logits.
    pub preds: Vec<Vec<i32>>,
    /// Softmax probability of the predicted class (NaN when invalid).
    pub confidence: Vec<Vec<f32>>,
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

struct Rotated {
    chunk: Arc<Chunk>,
    angle: usize,
    pixels: Vec<f32>,
}

/// Run the sweep. `progress` is called with the number of images x angles x
/// models finished so far (monotone).
pub fn run(
    models: &[Model],
    source: &mut dyn Source,
    settings: &SweepSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SweepResult> {
    let Some(first) = models.first() else { bail!("no model to sweep") };
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
        if m.spec.classes != spec.classes {
            bail!(
                "{} and {} have different class lists; models swept together must share their classes",
                m.path.display(),
                first.path.display()
            );
        }
    }
    if settings.batch_size == 0 {
        bail!("--batch-size 0: the batch size must be at least 1");
    }
    let target = Target { channels: spec.channels(), height: spec.height(), width: spec.width() };
    let n_classes = spec.n_classes();
    let (angles, reference_added, reference) = plan_angles(&settings.angles);
    let plans: Vec<Plan> =
        angles.iter().map(|&a| Plan::new(Geometry::same(target.height, target.width), a, &settings.rotate)).collect();
    // Work order inside a chunk: the reference first, so later angles compare to it.
    let order: Vec<usize> = std::iter::once(reference).chain((0..angles.len()).filter(|&i| i != reference)).collect();

    let n_total = source.info().len;
    let px = target.pixels();
    let mut result = SweepResult {
        angles: angles.clone(),
        reference_added,
        reference,
        indices: Vec::with_capacity(n_total),
        labels: Vec::with_capacity(n_total),
        models: models
            .iter()
            .map(|_| ModelSweep {
                counts: angles
                    .iter()
                    .map(|_| AngleCounts {
                        confusion: Confusion::new(n_classes),
                        consistent: 0,
                        prob_shift_sum: 0.0,
                        vs_reference: Paired::default(),
                        nonfinite: 0,
                    })
                    .collect(),
                preds: vec![Vec::with_capacity(n_total); angles.len()],
                confidence: vec![Vec::with_capacity(n_total); angles.len()],
            })
            .collect(),
        examples: Examples { channels: target.channels, height: target.height, width: target.width, count: 0, pixels: vec![] },
    };
    // Keep at most 8 MB of example pixels whatever the image size.
    let keep = settings.keep_examples.min((8 << 20) / px.max(1));

    let (tx, rx) = sync_channel::<Result<Rotated>>(2);
    let batch = settings.batch_size;
    let shape = [0i64, target.channels as i64, target.height as i64, target.width as i64];
    std::thread::scope(|scope| -> Result<()> {
        let plans = &plans;
        let order = &order;
        scope.spawn(move || {
            loop {
                let chunk = match source.next_chunk(batch) {
                    Ok(Some(c)) => Arc::new(c),
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                if chunk.is_empty() {
                    continue;
                }
                for &a in order {
                    let mut pixels = vec![0f32; chunk.len() * px];
                    pixels.par_chunks_mut(px).zip(chunk.pixels.par_chunks(px)).for_each(|(out, src)| {
                        plans[a].apply(src, target.channels, out);
                    });
                    if tx.send(Ok(Rotated { chunk: chunk.clone(), angle: a, pixels })).is_err() {
                        return; // consumer stopped on an error
                    }
                }
            }
        });

        let mut done = 0u64;
        // Per model: the reference probabilities, predictions and correctness of the current chunk.
        let mut ref_probs: Vec<Vec<f32>> = vec![Vec::new(); models.len()];
        let mut ref_pred: Vec<Vec<i32>> = vec![Vec::new(); models.len()];
        let mut probs = vec![0f32; n_classes];
        for msg in rx {
            let Rotated { chunk, angle, pixels } = msg?;
            let n = chunk.len();
            if angle == reference {
                result.indices.extend_from_slice(&chunk.indices);
                result.labels.extend_from_slice(&chunk.labels);
                let ex = &mut result.examples;
                let take = keep.saturating_sub(ex.count).min(n);
                ex.pixels.extend_from_slice(&chunk.pixels[..take * px]);
                ex.count += take;
            }
            let mut sh = shape;
            sh[0] = n as i64;
            let input = Tensor::from_slice(&pixels).view(sh);
            for (mi, model) in models.iter().enumerate() {
                let logits = model.forward_raw(&input)?;
                let logits: Vec<f32> = Vec::<f32>::try_from(&logits)
                    .map_err(|e| anyhow::anyhow!("{}: cannot read the logits: {e}", model.path.display()))?;
                let ms = &mut result.models[mi];
                let acc = &mut ms.counts[angle];
                if angle == reference {
                    ref_probs[mi].resize(n * n_classes, 0.0);
                    ref_pred[mi].resize(n, INVALID);
                }
                for i in 0..n {
                    let row = &logits[i * n_classes..(i + 1) * n_classes];
                    let (pred, conf) = match softmax_row(row, &mut probs) {
                        Some((p, c)) => (p as i32, c),
                        None => {
                            acc.nonfinite += 1;
                            (INVALID, f32::NAN)
                        }
                    };
                    let label = chunk.labels[i];
                    acc.confusion.add(label, pred);
                    ms.preds[angle].push(pred);
                    ms.confidence[angle].push(conf);
                    if angle == reference {
                        ref_probs[mi][i * n_classes..(i + 1) * n_classes].copy_from_slice(&probs);
                        ref_pred[mi][i] = pred;
                    }
                    let rp = ref_pred[mi][i];
                    if pred != INVALID && pred == rp {
                        acc.consistent += 1;
                    }
                    if pred != INVALID && rp != INVALID {
                        acc.prob_shift_sum += total_variation(&probs, &ref_probs[mi][i * n_classes..(i + 1) * n_classes]);
                    } else if pred != rp {
                        acc.prob_shift_sum += 1.0; // one side undefined: count as maximal shift
                    }
                    acc.vs_reference.add(rp == label as i32, pred == label as i32);
                }
                done += n as u64;
                progress(done);
            }
        }
        Ok(())
    })?;
    if result.labels.is_empty() {
        bail!("the dataset yielded no samples (all skipped?)");
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_added_as_the_reference_when_missing() {
        assert_eq!(plan_angles(&[90.0, 180.0]), (vec![0.0, 90.0, 180.0], true, 0));
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
