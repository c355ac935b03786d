//! The engine: stream the dataset once, rotate each chunk to every angle (once
//! for all models), run every model, and accumulate per-angle counts and
//! per-sample predictions. No I/O besides the dataset stream; no printing.
//!
//! Rotation runs on a producer thread (rayon across the chunk's images) while
//! the models run on the calling thread; a bounded channel keeps memory flat.
//! Models are anything behind [`Classifier`]; `--batch-size auto` is decided by
//! [`calibration`]; [`producer`] reads and rotates; [`scoring`] turns logits into per-sample scores. What the engine fills is the results model of
//! `rotbench_core::results`, re-exported here.

pub mod calibration;
pub mod producer;
pub mod scoring;

use crate::classifier::Classifier;
use crate::dataset::{Chunk, Source, Target};
use crate::rotate::{Geometry, RotateOptions, RotationPlan};
use anyhow::{bail, Result};
use calibration::{Calibration, Step};
use producer::{Message, Producer};
pub use rotbench_core::results::*;
use scoring::Scorer;
use std::sync::mpsc::sync_channel;
use std::time::Instant;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The user's angles, in their order.
    pub angles: Vec<f64>,
    pub rotate: RotateOptions,
    pub batch: BatchSize,
    pub rotate_on: RotateOn,
    /// Keep the raw pixels of up to this many leading samples, for galleries and strips.
    pub keep_examples: usize,
    /// `--top-k`: how many of each sample's best classes to keep (capped at the
    /// class count).
    pub top_k: usize,
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

/// One chunk rotated to one angle (no pixels: the driver rotates it on the device).
pub struct Rotated {
    pub angle: usize,
    pub pixels: Vec<f32>,
}

/// Check that models can be swept together and return their shared input layout.
pub fn shared_target<C: Classifier>(models: &[C]) -> Result<Target> {
    let Some(first) = models.first() else {
        bail!("no model to sweep")
    };
    let spec = first.spec();
    for m in &models[1..] {
        if m.spec().input != spec.input {
            bail!(
                "{} expects input {:?} but {} expects {:?}; models swept together must share their input size (run them separately)",
                m.path().display(),
                m.spec().input,
                first.path().display(),
                spec.input
            );
        }
        if m.spec().preprocess != spec.preprocess {
            bail!(
                "{} and {} preprocess differently (resize, order, channel order or value range); models swept together must share that (run them separately)",
                m.path().display(),
                first.path().display()
            );
        }
        if m.spec().classes != spec.classes {
            bail!(
                "{} and {} have different class lists; models swept together must share their classes",
                m.path().display(),
                first.path().display()
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
pub fn run<C: Classifier>(
    models: &[C],
    source: &mut dyn Source,
    settings: &SweepSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SweepResult> {
    let n_classes = models.first().map_or(0, |m| m.spec().n_classes());
    let sources = source.info().sources.clone();
    run_raw(
        models,
        source,
        settings,
        &Work::default(),
        progress,
        &mut |_| Ok(()),
    )?
    .finish(n_classes, &sources)
}

/// The engine. `progress` gets the number of images x angles x models evaluated so
/// far; `on_chunk` gets each finished chunk's per-sample results (for checkpoints).
pub fn run_raw<C: Classifier>(
    models: &[C],
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
    let n_classes = models[0].spec().n_classes();
    let top_k = settings.top_k.min(n_classes);
    let plan = AnglePlan::new(&settings.angles);
    let (nm, na) = (models.len(), plan.angles.len());
    let mut compute: Vec<Vec<bool>> = work
        .compute
        .clone()
        .unwrap_or_else(|| vec![vec![true; na]; nm]);
    plan.with_reference(&mut compute);
    let AnglePlan {
        angles,
        reference_added,
        reference,
    } = plan;
    let angle_needed: Vec<bool> = (0..na).map(|a| compute.iter().any(|c| c[a])).collect();
    let plans: Vec<Option<RotationPlan>> = angles
        .iter()
        .enumerate()
        .map(|(a, &deg)| {
            angle_needed[a].then(|| {
                RotationPlan::new(
                    Geometry::same(target.height, target.width),
                    deg,
                    &settings.rotate,
                )
            })
        })
        .collect();
    let rotate_opts = settings.rotate;
    let on_device = settings.rotate_on == RotateOn::Device;
    let device = models[0].device();
    let mut device_plans: Vec<Option<crate::rotate_device::DevicePlan>> =
        (0..na).map(|_| None).collect();
    let mut device_chunk: Option<Tensor> = None;
    // Work order inside a chunk: the reference first, so later angles compare to it.
    let order: Vec<usize> = std::iter::once(reference)
        .chain((0..na).filter(|&i| i != reference))
        .filter(|&a| angle_needed[a])
        .collect();

    let px = target.pixels();
    let mut data = work
        .resume
        .clone()
        .unwrap_or_else(|| SampleData::empty(nm, na, top_k));
    let resumed = data.len();
    let mut examples = Examples {
        channels: target.channels,
        height: target.height,
        width: target.width,
        count: 0,
        pixels: vec![],
    };
    let keep = examples_to_keep(settings.keep_examples, px);

    let (tx, rx) = sync_channel::<Message>(2);
    // Auto: one chunk per candidate (after any resumed samples), then the producer
    // waits for the consumer's choice (calibration::Step, sent as 0 or the size).
    let mut calibration = Calibration::new(settings.batch, order.len(), px);
    let fixed = calibration.fixed();
    let max_chunk = calibration.max_chunk();
    let (choice_tx, choice_rx) = sync_channel::<usize>(1);
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
        let producer = Producer {
            target,
            angles: &angles,
            rotate: rotate_opts,
            plans,
            order,
            on_device,
            resumed,
            fixed,
            max_chunk,
            schedule: calibration.schedule().to_vec(),
        };
        scope.spawn(move || producer.run(source, tx, choice_rx));

        // Owned here so that an early return drops it and a producer waiting for the
        // choice wakes up and ends.
        let choice_tx = choice_tx;
        let mut scorer = Scorer::new(
            models.iter().map(|m| m.spec().class_space()).collect(),
            n_classes,
            top_k,
        );
        let mut current = SampleData::empty(nm, na, top_k);
        let mut samples_seen = 0usize;
        // Calibration state: chunks computed so far, angle messages of the current chunk,
        // and its timed forward seconds / images / calls.
        let mut computed_chunks = 0usize;
        let mut angle_msgs = 0usize;
        let (mut t_sum, mut t_images, mut t_calls) = (0f64, 0usize, 0usize);
        let warmup = Calibration::warmup_calls(order.len());
        let mut flush = |current: &mut SampleData, data: &mut SampleData| -> Result<()> {
            if !current.is_empty() {
                on_chunk(current)?;
                data.append(current);
                *current = SampleData::empty(nm, na, top_k);
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
                        crate::rotate::rotate_into(
                            g,
                            0.0,
                            &settings.rotate,
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
            let calibrating = calibration.is_timing(computed_chunks);
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
                    anyhow::anyhow!("{}: cannot read the logits: {e}", model.path().display())
                })?;
                if calibrating && angle_msgs > warmup {
                    t_sum += started.elapsed().as_secs_f64();
                    t_images += n;
                    t_calls += 1;
                }
                scorer.score(
                    mi,
                    angle == reference,
                    &logits,
                    &current.labels,
                    &mut current.cols[mi][angle],
                );
                done += n as u64;
                progress(done);
            }
            if calibrating && angle_msgs == order.len() {
                // Sends fail only if the producer has ended (end of data).
                let _ = match calibration.record(computed_chunks, n, t_sum, t_images, t_calls) {
                    Step::Next => choice_tx.send(0),
                    Step::Use(b) => choice_tx.send(b),
                };
            }
        }
        flush(&mut current, &mut data)?;
        Ok(())
    })?;
    if data.is_empty() {
        bail!("the dataset yielded no samples (all skipped?)");
    }
    Ok(RawSweep {
        angles,
        reference_added,
        reference,
        data,
        examples,
        batch_size: calibration.batch_size(),
        batch_timings: calibration.into_timings(),
    })
}

#[cfg(test)]
mod tests {
    //! The driver's calibration and resume logic against a stand-in [`Classifier`]
    //! (beside the real-libtorch tests in tests/, not instead of them).
    use super::*;
    use crate::dataset::DatasetInfo;
    use crate::model::ModelSpec;
    use std::cell::Cell;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    const CLASSES: usize = 3;

    /// Logits are fixed, position-weighted sums of the pixels, so predictions
    /// depend on the rotation but not on the batch; it counts what it evaluates and
    /// sleeps `sleep(n)` per call, to steer `--batch-size auto`.
    struct Fake {
        path: PathBuf,
        spec: ModelSpec,
        images: Cell<usize>,
        sleep: fn(usize) -> Duration,
    }

    impl Fake {
        fn new(side: usize, sleep: fn(usize) -> Duration) -> Fake {
            Fake {
                path: PathBuf::from("fake.pt"),
                spec: ModelSpec {
                    input: [1, side, side],
                    mean: vec![0.0],
                    std: vec![1.0],
                    classes: (0..CLASSES).map(|k| format!("c{k}")).collect(),
                    preprocess: Default::default(),
                    output_index: None,
                    output_key: None,
                    output: Default::default(),
                    model_classes: None,
                    class_subset: None,
                    class_map: None,
                },
                images: Cell::new(0),
                sleep,
            }
        }
    }

    impl Classifier for Fake {
        fn path(&self) -> &Path {
            &self.path
        }
        fn spec(&self) -> &ModelSpec {
            &self.spec
        }
        fn device(&self) -> tch::Device {
            tch::Device::Cpu
        }
        fn forward_raw(&self, raw: &Tensor) -> Result<Tensor> {
            let n = raw.size()[0] as usize;
            let px: Vec<f32> = Vec::try_from(raw.flatten(0, -1))?;
            let per = px.len() / n;
            let mut logits = vec![0f32; n * CLASSES];
            for i in 0..n {
                for k in 0..CLASSES {
                    logits[i * CLASSES + k] = px[i * per..(i + 1) * per]
                        .iter()
                        .enumerate()
                        .map(|(j, v)| v * ((j * (k + 1) * 7919) % 31) as f32 / 31.0)
                        .sum();
                }
            }
            self.images.set(self.images.get() + n);
            std::thread::sleep((self.sleep)(n));
            Ok(Tensor::from_slice(&logits))
        }
    }

    fn no_sleep(_: usize) -> Duration {
        Duration::ZERO
    }

    /// `n` pseudo-random `side x side` grey images in memory.
    struct Memory {
        info: DatasetInfo,
        side: usize,
        next: usize,
    }

    impl Memory {
        fn new(n: usize, side: usize) -> Memory {
            Memory {
                info: DatasetInfo {
                    format: "memory".into(),
                    path: "memory".into(),
                    len: n,
                    start: 0,
                    selected: n,
                    total: n,
                    sha256: String::new(),
                    class_names: None,
                    class_order: "labels".into(),
                    class_map: vec![],
                    skipped: vec![],
                    ignored: vec![],
                    dropped: None,
                    warnings: vec![],
                    sources: Default::default(),
                },
                side,
                next: 0,
            }
        }
    }

    impl Source for Memory {
        fn info(&self) -> &DatasetInfo {
            &self.info
        }
        fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
            let end = (self.next + max).min(self.info.len);
            if self.next >= end {
                return Ok(None);
            }
            let px = self.side * self.side;
            let idx: Vec<u64> = (self.next as u64..end as u64).collect();
            let pixels = idx
                .iter()
                .flat_map(|&i| (0..px as u64).map(move |j| ((i * 131 + j * j * 17) % 251) as u8))
                .collect();
            let labels = idx.iter().map(|&i| (i % CLASSES as u64) as u32).collect();
            self.next = end;
            Ok(Some(Chunk {
                indices: idx,
                labels,
                pixels,
                dims: vec![],
            }))
        }
    }

    fn settings(angles: &[f64], batch: BatchSize) -> SweepSettings {
        SweepSettings {
            angles: angles.to_vec(),
            rotate: RotateOptions::default(),
            batch,
            rotate_on: RotateOn::Host,
            keep_examples: 0,
            top_k: 2,
        }
    }

    /// Run the engine; returns the result and the chunks `on_chunk` saw.
    fn sweep(fake: &Fake, n: usize, s: &SweepSettings, work: &Work) -> (RawSweep, Vec<usize>) {
        let mut chunks = vec![];
        let raw = run_raw(
            std::slice::from_ref(fake),
            &mut Memory::new(n, fake.spec.input[1]),
            s,
            work,
            &|_| {},
            &mut |c| {
                chunks.push(c.len());
                Ok(())
            },
        )
        .unwrap();
        (raw, chunks)
    }

    /// The first `k` samples of `d`.
    fn prefix(d: &SampleData, k: usize) -> SampleData {
        SampleData {
            indices: d.indices[..k].to_vec(),
            labels: d.labels[..k].to_vec(),
            top_k: d.top_k,
            cols: d
                .cols
                .iter()
                .map(|m| m.iter().map(|a| a.slice(0..k, d.top_k)).collect())
                .collect(),
        }
    }

    #[test]
    fn a_resumed_run_evaluates_only_the_rest_and_equals_an_uninterrupted_one() {
        let s = settings(&[90.0, 45.0], BatchSize::Fixed(8));
        let full_fake = Fake::new(6, no_sleep);
        let (full, chunks) = sweep(&full_fake, 40, &s, &Work::default());
        assert_eq!(chunks, [8, 8, 8, 8, 8]);
        assert_eq!(
            full_fake.images.get(),
            40 * 3,
            "0 is added as the reference"
        );
        assert!(
            full.data.cols[0][1].preds != full.data.cols[0][0].preds,
            "the stand-in sees the rotation"
        );

        let fake = Fake::new(6, no_sleep);
        let work = Work {
            compute: None,
            resume: Some(prefix(&full.data, 16)),
        };
        let (resumed, chunks) = sweep(&fake, 40, &s, &work);
        assert_eq!(
            fake.images.get(),
            (40 - 16) * 3,
            "resumed samples are not evaluated again"
        );
        assert_eq!(chunks, [8, 8, 8], "only new chunks are reported");
        assert_eq!(resumed.data, full.data);
    }

    #[test]
    fn a_resume_point_off_the_batch_grid_still_resumes_exactly() {
        // The producer cuts resumed samples as whole chunks ending on the resume
        // point, so any prefix works: 13 is not a multiple of the batch size.
        let s = settings(&[30.0], BatchSize::Fixed(8));
        let (full, _) = sweep(&Fake::new(5, no_sleep), 30, &s, &Work::default());
        let work = Work {
            compute: None,
            resume: Some(prefix(&full.data, 13)),
        };
        let fake = Fake::new(5, no_sleep);
        let (resumed, chunks) = sweep(&fake, 30, &s, &work);
        assert_eq!(chunks, [8, 8, 1]);
        assert_eq!(fake.images.get(), 17 * 2);
        assert_eq!(resumed.data, full.data);
    }

    #[test]
    fn a_pair_not_to_compute_is_skipped_but_its_reference_is_computed() {
        let s = settings(&[90.0, 180.0], BatchSize::Fixed(16));
        let fake = Fake::new(4, no_sleep);
        let work = Work {
            compute: Some(vec![vec![false, false, true]]),
            resume: None,
        };
        let (raw, _) = sweep(&fake, 20, &s, &work);
        assert_eq!(fake.images.get(), 20 * 2, "180 and its reference, not 90");
        assert_eq!(raw.data.cols[0][0].preds.len(), 20);
        assert!(raw.data.cols[0][1].preds.is_empty());
        assert_eq!(raw.data.cols[0][2].preds.len(), 20);
    }

    fn flat(_: usize) -> Duration {
        Duration::from_millis(20)
    }

    fn quadratic(n: usize) -> Duration {
        Duration::from_micros(5000 * (n * n / (64 * 64)) as u64)
    }

    #[test]
    fn auto_batch_keeps_the_calibration_chunks_and_picks_the_fastest() {
        // A fixed cost per call: every larger candidate is faster, so all four are
        // tried and 512 wins; the calibration chunks' results are kept.
        let n = 64 + 128 + 256 + 512 + 100;
        let fake = Fake::new(4, flat);
        let (raw, chunks) = sweep(
            &fake,
            n,
            &settings(&[90.0], BatchSize::Auto),
            &Work::default(),
        );
        let tried: Vec<usize> = raw.batch_timings.iter().map(|t| t.batch_size).collect();
        assert_eq!(tried, AUTO_CANDIDATES);
        assert_eq!(raw.batch_size, 512);
        assert_eq!(chunks, [64, 128, 256, 512, 100]);
        assert_eq!(fake.images.get(), n * 2, "nothing is computed twice");
        let fixed = Fake::new(4, no_sleep);
        let (same, _) = sweep(
            &fixed,
            n,
            &settings(&[90.0], BatchSize::Fixed(7)),
            &Work::default(),
        );
        assert_eq!(
            raw.data, same.data,
            "predictions do not depend on the batch size"
        );
    }

    #[test]
    fn auto_batch_stops_at_the_first_slower_candidate() {
        // Cost grows with the square of the batch: 128 is half as fast as 64.
        let fake = Fake::new(4, quadratic);
        let (raw, chunks) = sweep(
            &fake,
            300,
            &settings(&[90.0], BatchSize::Auto),
            &Work::default(),
        );
        let tried: Vec<usize> = raw.batch_timings.iter().map(|t| t.batch_size).collect();
        assert_eq!(tried, [64, 128]);
        assert_eq!(raw.batch_size, 64);
        assert_eq!(chunks, [64, 128, 64, 44]);
    }

    #[test]
    fn auto_batch_with_one_angle_uses_the_fallback_untimed() {
        let fake = Fake::new(4, no_sleep);
        let mut s = settings(&[0.0], BatchSize::Auto);
        s.angles = vec![0.0];
        let (raw, chunks) = sweep(&fake, 300, &s, &Work::default());
        assert!(raw.batch_timings.is_empty());
        assert_eq!(raw.batch_size, AUTO_FALLBACK);
        assert_eq!(chunks, [256, 44]);
    }
}
