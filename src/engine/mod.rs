//! The engine: stream the dataset once, rotate each chunk to every angle (once
//! for all models), run every model, and accumulate per-angle counts and
//! per-sample predictions. No I/O besides the dataset stream; no printing.
//!
//! Rotation runs on a producer thread (rayon across the chunk's images) while
//! the models run on the calling thread, or on the slice threads for small
//! images, where a batch stays in flight while the next one starts
//! ([`inflight`]); a bounded channel keeps memory flat.
//! Models are anything behind [`Classifier`]; `--batch-size auto` is decided by
//! [`batch_size`]; [`producer`] reads and rotates; [`scoring`] turns logits into
//! per-sample scores. What the engine fills is the results model of
//! `rotbench_core::results` ([`run`] returns its [`Evaluations`]).

pub mod batch_size;
mod inflight;
pub mod producer;
pub mod scoring;

use crate::classifier::{Classifier, Normalisation};
use crate::dataset::{Chunk, Source, Target};
use crate::rotate::{Geometry, RotateOptions, RotationPlan};
use anyhow::{bail, Result};
use batch_size::{AutoBatch, Step};
use inflight::{InFlight, Logits};
use producer::{Message, Producer};
use rayon::prelude::*;
use rotbench_core::poses::{Draws, Pose};
use rotbench_core::results::{
    examples_to_keep, BatchSize, Evaluations, Examples, PosePlan, RotateOn, SampleData,
    SweepResult, SKIPPED,
};
use scoring::Scorer;
use std::sync::mpsc::{sync_channel, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::time::Instant;
use tch::Tensor;

#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// The user's poses (angles, at every translation), in their order.
    pub poses: Vec<Pose>,
    /// `--worst-of K`: K more columns, each sample at its own drawn pose.
    pub draws: Option<Draws>,
    /// `--grid-early-stop`: after the reference, evaluate a sample at the grid's
    /// next points only while every point so far got it right (a skipped
    /// evaluation holds [`SKIPPED`]).
    pub early_stop: bool,
    pub rotate: RotateOptions,
    pub batch: BatchSize,
    pub rotate_on: RotateOn,
    /// Keep the raw pixels of up to this many leading samples, for galleries and strips.
    pub keep_examples: usize,
    /// `--top-k`: how many of each sample's best classes to keep (capped at the
    /// class count).
    pub top_k: usize,
    /// `--threads`: the threads that run a split batch's 64-row slices for a model
    /// that allows it ([`Classifier::splits_batches`]); with 1, the slices run one
    /// after the other on the calling thread.
    pub threads: usize,
}

/// What a run must compute, and what it may skip.
#[derive(Debug, Clone, Default)]
pub struct WorkOrder {
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

/// Run the sweep over everything and tally it.
pub fn run_and_tally<C: Classifier>(
    models: &[C],
    source: &mut dyn Source,
    settings: &SweepSettings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SweepResult> {
    let n_classes = models.first().map_or(0, |m| m.spec().n_classes());
    let sources = source.info().sources.clone();
    run(
        models,
        source,
        settings,
        &WorkOrder::default(),
        progress,
        &mut |_| Ok(()),
    )?
    .tally(n_classes, &sources)
}

/// The engine. `progress` gets the number of images x angles x models evaluated so
/// far; `on_chunk` gets each finished chunk's per-sample results (for checkpoints).
pub fn run<C: Classifier>(
    models: &[C],
    source: &mut dyn Source,
    settings: &SweepSettings,
    work: &WorkOrder,
    progress: &(dyn Fn(u64) + Sync),
    on_chunk: &mut dyn FnMut(&SampleData) -> Result<()>,
) -> Result<Evaluations> {
    let target = shared_target(models)?;
    if settings.batch == BatchSize::Fixed(0) {
        bail!("--batch-size 0: the batch size must be at least 1");
    }
    let n_classes = models[0].spec().n_classes();
    let top_k = settings.top_k.min(n_classes);
    let plan = PosePlan::new(&settings.poses);
    // Columns: the poses, then the draws of --worst-of.
    let (nm, na) = (
        models.len(),
        plan.poses.len() + settings.draws.map_or(0, |d| d.k),
    );
    let mut compute: Vec<Vec<bool>> = work
        .compute
        .clone()
        .unwrap_or_else(|| vec![vec![true; na]; nm]);
    plan.with_reference(&mut compute);
    let PosePlan {
        poses,
        reference_added,
        reference,
    } = plan;
    let angle_needed: Vec<bool> = (0..na).map(|a| compute.iter().any(|c| c[a])).collect();
    let mut plans = rotation_plans(&poses, &angle_needed, target, &settings.rotate);
    // A draw has a pose per sample, no plan. The order inside a chunk: the
    // reference first, so later angles compare to it.
    plans.resize_with(na, || None);
    let order: Vec<usize> = std::iter::once(reference)
        .chain((0..na).filter(|&i| i != reference))
        .filter(|&a| angle_needed[a])
        .collect();
    let data = work
        .resume
        .clone()
        .unwrap_or_else(|| SampleData::empty(nm, na, top_k));
    let resumed = data.len();
    let normalise = host_normalisation(models, settings.rotate_on);
    let (tx, rx) = sync_channel::<Message>(2);
    // Auto: one chunk per candidate (after any resumed samples), then the producer
    // waits for the consumer's choice (batch_size::Step, sent as 0 or the size).
    // Split batches time nothing, and need a slice for every slice thread.
    let mut auto_batch = match splits(models, target) {
        true => {
            let rows = SLICE as usize * slice_threads(settings.threads, models, target);
            AutoBatch::sliced(settings.batch, target.pixels(), rows)
        }
        false => AutoBatch::new(settings.batch, order.len(), target.pixels()),
    };
    let (choice_tx, choice_rx) = sync_channel::<usize>(1);
    // Scored batches' buffers go back to the producer to rotate into (not zeroed).
    let (spent_tx, spent_rx) = std::sync::mpsc::channel::<Vec<f32>>();
    let mut consumer = Consumer {
        models,
        compute: &compute,
        plans: &plans,
        reference,
        target,
        settings,
        keep: examples_to_keep(settings.keep_examples, target.pixels()),
        resumed,
        on_device: settings.rotate_on == RotateOn::Device,
        device: models[0].device(),
        scorer: Scorer::new(
            models.iter().map(|m| m.spec().class_space()).collect(),
            n_classes,
            top_k,
        ),
        current: SampleData::empty(nm, na, top_k),
        data,
        examples: no_examples(target),
        samples_seen: 0,
        early_stop: settings.early_stop.then(|| EarlyStop {
            poses: poses.len(),
            alive: vec![vec![]; nm],
        }),
        device_chunk: None,
        device_plans: (0..na).map(|_| None).collect(),
        timing: ChunkTiming::new(order.len()),
        done: 0,
        slices: Slices::new(settings.threads, models, target)?,
        host_normalised: normalise.is_some(),
    };
    std::thread::scope(|scope| -> Result<()> {
        let producer = Producer {
            target,
            poses: &poses,
            draws: settings.draws,
            rotate: settings.rotate,
            plans: &plans,
            order: &order,
            on_device: consumer.on_device,
            resumed,
            fixed: auto_batch.fixed(),
            max_chunk: auto_batch.max_chunk(),
            schedule: auto_batch.schedule().to_vec(),
            pool: consumer.slices.as_ref().and_then(|s| s.pool.clone()),
            normalise,
        };
        scope.spawn(move || producer.run(source, tx, choice_rx, spent_rx));
        let ends = Ends {
            rx,
            spent: spent_tx,
            // Owned by the loop so that an early return drops it and a producer
            // waiting for the choice wakes up and ends.
            choice: choice_tx,
        };
        consumer.consume_all(ends, &mut auto_batch, order.len(), progress, on_chunk)
    })?;
    let Consumer { data, examples, .. } = consumer;
    if data.is_empty() {
        bail!("the dataset yielded no samples (all skipped?)");
    }
    Ok(Evaluations {
        poses,
        draws: settings.draws,
        early_stop: settings.early_stop,
        reference_added,
        reference,
        data,
        examples,
        batch_size: auto_batch.batch_size(),
        batch_timings: auto_batch.into_timings(),
    })
}

/// The consumer side of a run: what it reads, and what it keeps from one
/// message to the next (the chunk being scored, the finished data, the examples,
/// the chunk on the device and its timing).
struct Consumer<'a, C: Classifier> {
    models: &'a [C],
    compute: &'a [Vec<bool>],
    plans: &'a [Option<RotationPlan>],
    reference: usize,
    target: Target,
    settings: &'a SweepSettings,
    keep: usize,
    resumed: usize,
    on_device: bool,
    device: tch::Device,
    scorer: Scorer,
    current: SampleData,
    data: SampleData,
    examples: Examples,
    samples_seen: usize,
    early_stop: Option<EarlyStop>,
    device_chunk: Option<Tensor>,
    device_plans: Vec<Option<crate::rotate_device::DevicePlan>>,
    timing: ChunkTiming,
    done: u64,
    slices: Option<Slices>,
    /// The producer normalises what it rotates on the host ([`Producer::normalise`]).
    host_normalised: bool,
}

impl<'a, C: Classifier> Consumer<'a, C> {
    /// Hand the finished chunk to `on_chunk` and keep it.
    fn flush(&mut self, on_chunk: &mut dyn FnMut(&SampleData) -> Result<()>) -> Result<()> {
        if !self.current.is_empty() {
            on_chunk(&self.current)?;
            self.data.append(&self.current);
            let (nm, na, k) = (self.models.len(), self.plans.len(), self.data.top_k);
            self.current = SampleData::empty(nm, na, k);
        }
        Ok(())
    }

    /// A new chunk: keep its examples, skip it if a resumed run finished it, else
    /// start its samples (and upload it once for rotation on the device).
    fn start_chunk(&mut self, chunk: &Chunk) -> Result<()> {
        let n = chunk.len();
        let target = self.target;
        keep_examples(
            &mut self.examples,
            chunk,
            self.keep,
            target,
            &self.settings.rotate,
        );
        self.samples_seen += n;
        if self.samples_seen <= self.resumed {
            return Ok(());
        }
        if self.samples_seen - n < self.resumed {
            bail!(
                "internal: resume point {} is not on a chunk boundary",
                self.resumed
            );
        }
        if let Some(e) = &mut self.early_stop {
            e.alive.iter_mut().for_each(|a| *a = vec![true; n]);
        }
        self.current.indices.extend_from_slice(&chunk.indices);
        self.current.labels.extend_from_slice(&chunk.labels);
        self.device_chunk = (self.on_device && chunk.dims.is_empty()).then(|| {
            crate::rotate_device::upload(
                &chunk.pixels,
                n,
                target.channels,
                target.height * target.width,
                self.device,
            )
        });
        self.timing.next_chunk();
        Ok(())
    }

    /// Score every model that computes this angle on the chunk rotated to it.
    /// Returns whether the chunk is being timed for `--batch-size auto`.
    fn score_angle(
        &mut self,
        chunk: &Chunk,
        rotated: &Rotated,
        auto_batch: &AutoBatch,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<bool> {
        let Rotated { angle, ref pixels } = *rotated;
        self.timing.angle_msgs += 1;
        let calibrating = auto_batch.is_timing(self.timing.computed_chunks);
        let n = chunk.len();
        let t = self.target;
        let input = match (&self.device_chunk, pixels.is_empty()) {
            (Some(src), true) => {
                let Some(plan) = &self.plans[angle] else {
                    bail!("internal: no rotation plan for column {angle}")
                };
                let device = self.device;
                let batch = self.device_plans[angle]
                    .get_or_insert_with(|| crate::rotate_device::DevicePlan::new(plan, device))
                    .apply(src);
                Input {
                    batch,
                    normalised: false,
                }
            }
            _ => Input {
                batch: host_batch(pixels, [n, t.channels, t.height, t.width])?,
                normalised: self.host_normalised,
            },
        };
        for (mi, model) in self.models.iter().enumerate() {
            if !self.compute[mi][angle] {
                continue;
            }
            let started = Instant::now();
            // --grid-early-stop: only the samples every point so far got right.
            let alive = match &self.early_stop {
                Some(e) if angle != self.reference && angle < e.poses => Some(e.alive[mi].clone()),
                _ => None,
            };
            let logits = forward_some(model, &input, alive.as_deref(), self.slices.as_ref())?;
            if calibrating {
                self.timing.add(started.elapsed().as_secs_f64(), n);
            }
            self.record(mi, angle, n, &logits, alive.as_deref(), progress);
        }
        Ok(calibrating)
    }

    /// Score model `mi`'s logits for the `n` rows of column `angle`; `alive`: the
    /// rows it ran under `--grid-early-stop`.
    fn record(
        &mut self,
        mi: usize,
        angle: usize,
        n: usize,
        logits: &[f32],
        alive: Option<&[bool]>,
        progress: &(dyn Fn(u64) + Sync),
    ) {
        let col = &mut self.current.cols[mi][angle];
        let at = col.len();
        self.scorer.score(
            mi,
            angle == self.reference,
            logits,
            &self.current.labels,
            col,
        );
        if let Some(e) = &mut self.early_stop {
            e.update(
                mi,
                angle,
                alive,
                &mut col.preds[at..],
                &self.current.labels[at..],
            );
        }
        self.done += n as u64;
        progress(self.done);
    }

    /// Whether a rotated batch may stay in flight while the next one starts
    /// ([`inflight`]): on the host and without `--grid-early-stop`. (A run with
    /// slice threads never times `--batch-size auto`: [`AutoBatch::sliced`].)
    fn can_defer(&self, rotated: &Rotated) -> bool {
        !rotated.pixels.is_empty() && self.device_chunk.is_none() && self.early_stop.is_none()
    }

    /// Start every model's forward pass of a rotated host batch of `n` rows: a
    /// model that splits batches on `scope`'s pool (collected by [`Consumer::land`]),
    /// any other here.
    fn take_off<'s>(
        &mut self,
        scope: &rayon::ScopeFifo<'s>,
        rotated: Rotated,
        n: usize,
    ) -> Result<InFlight>
    where
        'a: 's,
    {
        let Rotated { angle, pixels } = rotated;
        self.timing.angle_msgs += 1;
        let t = self.target;
        let models: &'a [C] = self.models;
        let pixels = Arc::new(pixels);
        let mut logits = Vec::with_capacity(models.len());
        for (mi, model) in models.iter().enumerate() {
            logits.push(match self.compute[mi][angle] {
                false => None,
                true if in_slices(model, n) => Some(inflight::spawn_slices(
                    scope,
                    model,
                    &pixels,
                    n,
                    [t.channels, t.height, t.width],
                    self.host_normalised,
                )),
                true => {
                    let batch = host_batch(&pixels, [n, t.channels, t.height, t.width])?;
                    Some(Logits::Ready(read_logits(
                        model,
                        &batch,
                        self.host_normalised,
                    )?))
                }
            });
        }
        Ok(InFlight {
            angle,
            rows: n,
            pixels,
            logits,
        })
    }

    /// Wait for an in-flight batch's logits and score them, in model order; its
    /// buffer goes back to the producer.
    fn land(
        &mut self,
        flight: InFlight,
        progress: &(dyn Fn(u64) + Sync),
        spent: &Sender<Vec<f32>>,
    ) -> Result<()> {
        let InFlight {
            angle,
            rows,
            pixels,
            logits,
        } = flight;
        for (mi, logits) in logits.into_iter().enumerate() {
            if let Some(logits) = logits {
                let logits = logits.collect()?;
                self.record(mi, angle, rows, &logits, None, progress);
            }
        }
        // Every slice has dropped its reference by now (before sending its logits).
        if let Ok(pixels) = Arc::try_unwrap(pixels) {
            // Fails only if the producer has ended.
            let _ = spent.send(pixels);
        }
        Ok(())
    }

    /// Score every message of the producer until the data ends: batches in
    /// flight on the slice threads' pool where there is one ([`inflight`]).
    fn consume_all(
        &mut self,
        ends: Ends,
        auto_batch: &mut AutoBatch,
        angles: usize,
        progress: &(dyn Fn(u64) + Sync),
        on_chunk: &mut dyn FnMut(&SampleData) -> Result<()>,
    ) -> Result<()> {
        match self.slices.as_ref().and_then(|s| s.pool.clone()) {
            Some(pool) => pool.in_place_scope_fifo(|scope| {
                self.consume(Some(scope), ends, auto_batch, angles, progress, on_chunk)
            }),
            None => self.consume(None, ends, auto_batch, angles, progress, on_chunk),
        }
    }

    /// [`Consumer::consume_all`]'s loop: a new chunk flushes the last one; a
    /// rotated batch is scored now, or taken off ([`Consumer::take_off`]) and
    /// landed when the next one has taken off. Batches are scored in the order
    /// they came.
    fn consume<'s>(
        &mut self,
        scope: Option<&rayon::ScopeFifo<'s>>,
        ends: Ends,
        auto_batch: &mut AutoBatch,
        angles: usize,
        progress: &(dyn Fn(u64) + Sync),
        on_chunk: &mut dyn FnMut(&SampleData) -> Result<()>,
    ) -> Result<()>
    where
        'a: 's,
    {
        let Ends { rx, spent, choice } = ends;
        let mut flying: Option<InFlight> = None;
        for msg in rx {
            let (chunk, rotated) = msg?;
            let Some(rotated) = rotated else {
                // A new chunk: the previous one is complete.
                if let Some(f) = flying.take() {
                    self.land(f, progress, &spent)?;
                }
                self.flush(on_chunk)?;
                self.start_chunk(&chunk)?;
                continue;
            };
            if let Some(scope) = scope.filter(|_| self.can_defer(&rotated)) {
                let next = self.take_off(scope, rotated, chunk.len())?;
                if let Some(f) = flying.replace(next) {
                    self.land(f, progress, &spent)?;
                }
                continue;
            }
            if let Some(f) = flying.take() {
                self.land(f, progress, &spent)?;
            }
            let calibrating = self.score_angle(&chunk, &rotated, auto_batch, progress)?;
            if !rotated.pixels.is_empty() {
                // Fails only if the producer has ended.
                let _ = spent.send(rotated.pixels);
            }
            if calibrating && self.timing.angle_msgs == angles {
                let t = &self.timing;
                let step =
                    auto_batch.record(t.computed_chunks, chunk.len(), t.seconds, t.images, t.calls);
                // Sends fail only if the producer has ended (end of data).
                let _ = match step {
                    Step::Next => choice.send(0),
                    Step::Use(b) => choice.send(b),
                };
            }
        }
        if let Some(f) = flying.take() {
            self.land(f, progress, &spent)?;
        }
        self.flush(on_chunk)
    }
}

/// The consumer's ends of the channels to the producer: its messages, the
/// scored batches' buffers going back, and `--batch-size auto`'s choice.
struct Ends {
    rx: Receiver<Message>,
    spent: Sender<Vec<f32>>,
    choice: SyncSender<usize>,
}

/// `--grid-early-stop`'s state for the chunk being scored.
struct EarlyStop {
    /// The grid's columns (the draws after them are never skipped).
    poses: usize,
    /// `[model][sample of the chunk]`: right at every grid point scored so far.
    alive: Vec<Vec<bool>>,
}

impl EarlyStop {
    /// After model `mi` scored column `angle` of the chunk: mark the samples it
    /// skipped, and those it got wrong as done.
    fn update(
        &mut self,
        mi: usize,
        angle: usize,
        alive: Option<&[bool]>,
        preds: &mut [i32],
        labels: &[u32],
    ) {
        if angle >= self.poses {
            return;
        }
        for (k, p) in preds.iter_mut().enumerate() {
            if alive.is_some_and(|a| !a[k]) {
                *p = SKIPPED;
            } else if *p != labels[k] as i32 {
                self.alive[mi][k] = false;
            }
        }
    }
}

/// A batch for the models: raw pixels, or normalised on the host as they were
/// rotated ([`Classifier::host_normalisation`]).
struct Input {
    batch: Tensor,
    normalised: bool,
}

/// A rotated batch as a tensor over the producer's buffer, without a copy. The
/// tensor borrows `pixels`, which outlive it: `score_angle` drops the tensor
/// before it returns the batch, and no model keeps its input (its logits are
/// copied out before the call returns).
fn host_batch(pixels: &[f32], shape: [usize; 4]) -> Result<Tensor> {
    if pixels.len() != shape.iter().product::<usize>() {
        bail!(
            "internal: a rotated batch of {} values for shape {shape:?}",
            pixels.len()
        );
    }
    let size: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    let strides: Vec<i64> = (0..4)
        .map(|k| shape[k + 1..].iter().product::<usize>() as i64)
        .collect();
    // SAFETY: `pixels` holds exactly `size`'s contiguous f32 values and outlives
    // the tensor (see above); libtorch neither frees nor resizes a blob.
    unsafe {
        Tensor::f_from_blob(
            pixels.as_ptr().cast(),
            &size,
            &strides,
            tch::Kind::Float,
            tch::Device::Cpu,
        )
    }
    .map_err(|e| anyhow::anyhow!("internal: cannot wrap a rotated batch: {e}"))
}

/// The model's logits for the batch, as a flat row-major vector; with `alive`,
/// only those rows are run, and the others hold zeros (scored, then marked
/// [`SKIPPED`]).
fn forward_some<C: Classifier>(
    model: &C,
    input: &Input,
    alive: Option<&[bool]>,
    slices: Option<&Slices>,
) -> Result<Vec<f32>> {
    let Some(alive) = alive else {
        return forward_rows(model, input, slices);
    };
    let rows: Vec<i64> = (0..alive.len() as i64)
        .filter(|&k| alive[k as usize])
        .collect();
    if rows.len() == alive.len() {
        return forward_rows(model, input, slices);
    }
    // No sample left: one row tells the output's width; all rows are skipped.
    let pick = if rows.is_empty() {
        vec![0]
    } else {
        rows.clone()
    };
    let idx = Tensor::from_slice(&pick).to_device(input.batch.device());
    let some = Input {
        batch: input.batch.index_select(0, &idx),
        normalised: input.normalised,
    };
    let some = forward_rows(model, &some, slices)?;
    let w = some.len() / pick.len();
    let mut full = vec![0f32; alive.len() * w];
    for (j, &k) in rows.iter().enumerate() {
        let k = k as usize;
        full[k * w..(k + 1) * w].copy_from_slice(&some[j * w..(j + 1) * w]);
    }
    Ok(full)
}

/// The model's logits for every row of `input`, flat: the whole batch, or, for
/// a model that splits batches of small images, its slices of [`SLICE`] rows
/// (the last one shorter), on the slice threads as they come free or one after
/// the other on this thread with `--threads 1`, joined in order.
fn forward_rows<C: Classifier>(
    model: &C,
    input: &Input,
    slices: Option<&Slices>,
) -> Result<Vec<f32>> {
    let normalised = input.normalised;
    let read = |c: &C, t: &Tensor| read_logits(c, t, normalised);
    let input = &input.batch;
    let n = input.size().first().copied().unwrap_or(0);
    let slices = match slices {
        Some(s) if in_slices(model, n as usize) => s,
        _ => return read(model, input),
    };
    let parts: Vec<Tensor> = (0..n)
        .step_by(SLICE as usize)
        .map(|at| input.narrow(0, at, SLICE.min(n - at)))
        .collect();
    let logits: Vec<Result<Vec<f32>>> = match &slices.pool {
        None => parts.iter().map(|part| read(model, part)).collect(),
        Some(pool) => {
            let shared = Shared(model);
            pool.install(|| {
                parts
                    .into_par_iter()
                    .with_max_len(1)
                    .map(|part| {
                        let model = &shared;
                        read(model.0, &part)
                    })
                    .collect()
            })
        }
    };
    let mut all = Vec::new();
    for part in logits {
        all.extend(part?);
    }
    Ok(all)
}

/// Whether `model` runs a batch of `rows` rows in slices: it splits batches and
/// the batch is longer than one slice.
fn in_slices<C: Classifier>(model: &C, rows: usize) -> bool {
    model.splits_batches() && rows > SLICE as usize
}

/// The rows of one slice. Fixed, so that which rows run together depends on the
/// batch alone, never on `--threads`: libtorch's kernels can round a row
/// differently in batches of different sizes (an odd batch of the bundled CNN
/// does, in the last bits of a confidence), and predictions must be the same at
/// every thread count. 64 rows: one libtorch thread runs the three bench CNNs
/// faster per image at 64 rows than at 16 (the 32x32 RGB CNN 1.4-1.7x, PyTorch's
/// example CNN 1.15x; `bench/slice_rows.py`), and two such threads beat one batch of
/// 256 on two OpenMP threads. `auto` scales its batch sizes so that a batch has a
/// slice for every thread ([`AutoBatch::spread`]); every `auto` size is a multiple
/// of 64, so the size it picks does not change which rows run together either.
const SLICE: i64 = 64;

/// The largest image (channels × height × width) whose batches are split: 64×64
/// RGB. A larger image's forward pass is long enough per layer that libtorch's own
/// threads share it well, and slices of 64 such images would leave most of a
/// large machine's cores idle at the batch sizes those images run at.
const SPLIT_MAX_PIXELS: usize = 3 * 64 * 64;

/// How a run splits batches ([`Classifier::splits_batches`]): in slices of
/// [`SLICE`] rows, on `pool`'s threads (one libtorch thread each), or on the
/// calling thread when `--threads` is 1.
struct Slices {
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Slices {
    /// None when no batch is split ([`splits`]); else the pool of [`slice_threads`].
    fn new<C: Classifier>(threads: usize, models: &[C], target: Target) -> Result<Option<Slices>> {
        if !splits(models, target) {
            return Ok(None);
        }
        let threads = slice_threads(threads, models, target);
        if threads == 0 {
            return Ok(Some(Slices { pool: None }));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("rotbench-slice-{i}"))
            // libtorch's thread count is per thread: one OpenMP thread each.
            .start_handler(|_| tch::set_num_threads(1))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start {threads} threads (--threads): {e}"))?;
        Ok(Some(Slices {
            pool: Some(Arc::new(pool)),
        }))
    }
}

/// Whether a run of `models` on images of `target`'s size splits batches: some
/// model allows it and the images are at most [`SPLIT_MAX_PIXELS`].
pub fn splits<C: Classifier>(models: &[C], target: Target) -> bool {
    target.pixels() <= SPLIT_MAX_PIXELS && models.iter().any(Classifier::splits_batches)
}

/// The threads that run the slices of a run with `--threads threads`: 0 when
/// there is one thread or no batch is split ([`splits`]).
pub fn slice_threads<C: Classifier>(threads: usize, models: &[C], target: Target) -> usize {
    match threads > 1 && splits(models, target) {
        true => threads,
        false => 0,
    }
}

/// A model's logits for a batch on the CPU (`normalised`: by the host, see
/// [`Input`]), flat and row-major.
fn read_logits<C: Classifier>(model: &C, batch: &Tensor, normalised: bool) -> Result<Vec<f32>> {
    let logits = match normalised {
        true => model.forward_normalised(batch)?,
        false => model.forward_raw(batch)?,
    };
    Vec::<f32>::try_from(&logits)
        .map_err(|e| anyhow::anyhow!("{}: cannot read the logits: {e}", model.path().display()))
}

/// A classifier shared with the slice threads.
struct Shared<'a, C>(&'a C);

impl<'a, C> Shared<'a, C> {
    fn model(self) -> &'a C {
        self.0
    }
}

// SAFETY: only built in forward_rows and inflight::spawn_slices for a model
// whose splits_batches() is true, whose contract is that concurrent forward_raw calls on it are sound; the slice
// threads call nothing else on it but path(), which only reads.
unsafe impl<C> Sync for Shared<'_, C> {}

// SAFETY: the same contract: a slice job that gets a `Shared` calls forward_raw
// (or forward_normalised) and path() on the model from its thread, which is
// what sharing it (Sync above) allows; the model outlives the jobs (they run in
// a scope that borrows it).
unsafe impl<C> Send for Shared<'_, C> {}

/// No examples yet, of `target`'s image size.
fn no_examples(target: Target) -> Examples {
    Examples {
        channels: target.channels,
        height: target.height,
        width: target.width,
        count: 0,
        pixels: vec![],
    }
}

/// The normalisation the producer applies as it rotates: the model's, when one
/// model runs ([`Classifier::host_normalisation`]) and the host rotates. Several
/// models share each batch, and a model may change its input in place, so they
/// each normalise their own copy as before; and a batch rotated on the device
/// stays there.
fn host_normalisation<C: Classifier>(models: &[C], rotate_on: RotateOn) -> Option<Normalisation> {
    match models {
        [model] if rotate_on != RotateOn::Device => model.host_normalisation(),
        _ => None,
    }
}

/// A rotation plan for each angle that some model computes.
fn rotation_plans(
    poses: &[Pose],
    needed: &[bool],
    target: Target,
    rotate: &RotateOptions,
) -> Vec<Option<RotationPlan>> {
    poses
        .iter()
        .zip(needed)
        .map(|(&pose, &needed)| {
            needed.then(|| {
                RotationPlan::new(Geometry::same(target.height, target.width), pose, rotate)
            })
        })
        .collect()
}

/// Keep the raw pixels of a chunk's first samples, up to `keep` in all, for the
/// report: as the model sees them at 0 degrees (a varied-size image's unrotated
/// centre crop).
fn keep_examples(
    examples: &mut Examples,
    chunk: &Chunk,
    keep: usize,
    target: Target,
    rotate: &RotateOptions,
) {
    let px = target.pixels();
    let take = keep.saturating_sub(examples.count).min(chunk.len());
    if chunk.dims.is_empty() {
        examples
            .pixels
            .extend_from_slice(&chunk.pixels[..take * px]);
    } else {
        let mut at = 0;
        for &(h, w) in &chunk.dims[..take] {
            let g = Geometry::centre_crop(h, w, target.height, target.width);
            let mut out = vec![0f32; px];
            let plane = target.channels * h * w;
            crate::rotate::rotate_into(
                g,
                0.0,
                rotate,
                &chunk.pixels[at..at + plane],
                target.channels,
                &mut out,
            );
            examples.pixels.extend(crate::rotate::to_u8(&out));
            at += plane;
        }
    }
    examples.count += take;
}

/// What `--batch-size auto` times of the current chunk: the chunks computed so
/// far, the angle messages of this one, and its forward seconds, images and
/// calls after the warm-up calls.
struct ChunkTiming {
    computed_chunks: usize,
    angle_msgs: usize,
    warmup: usize,
    seconds: f64,
    images: usize,
    calls: usize,
}

impl ChunkTiming {
    fn new(angles: usize) -> ChunkTiming {
        ChunkTiming {
            computed_chunks: 0,
            angle_msgs: 0,
            warmup: AutoBatch::warmup_calls(angles),
            seconds: 0.0,
            images: 0,
            calls: 0,
        }
    }

    fn next_chunk(&mut self) {
        self.computed_chunks += 1;
        self.angle_msgs = 0;
        (self.seconds, self.images, self.calls) = (0.0, 0, 0);
    }

    /// One forward pass of `images`, counted once the warm-up calls are over.
    fn add(&mut self, seconds: f64, images: usize) {
        if self.angle_msgs > self.warmup {
            self.seconds += seconds;
            self.images += images;
            self.calls += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The driver's batch-size calibration and resume logic against a stand-in [`Classifier`]
    //! (beside the real-libtorch tests in tests/, not instead of them).
    use super::*;
    use crate::dataset::DatasetInfo;
    use crate::results::{AUTO_CANDIDATES, AUTO_FALLBACK};
    use rotbench_core::spec::ModelSpec;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Mutex;
    use std::time::Duration;

    const CLASSES: usize = 3;

    /// Logits are fixed, position-weighted sums of the pixels, so predictions
    /// depend on the rotation but not on the batch; it counts what it evaluates and
    /// sleeps `sleep(n)` per call, to steer `--batch-size auto`. With `split`, it
    /// lets the engine split batches, and records the threads each call ran on
    /// with their libtorch thread count.
    struct Fake {
        path: PathBuf,
        spec: ModelSpec,
        images: AtomicUsize,
        calls: AtomicUsize,
        sleep: fn(usize) -> Duration,
        split: bool,
        threads: Mutex<BTreeSet<(String, i32)>>,
        /// Its normalisation of raw pixels, and whether it offers it to the engine.
        normalisation: Option<(Normalisation, bool)>,
        /// Each call's rows, start and end.
        spans: Mutex<Vec<(usize, Instant, Instant)>>,
        /// Fail every call from this many calls on.
        fail_from: Option<usize>,
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
                    class_map_rule: Default::default(),
                },
                images: AtomicUsize::new(0),
                calls: AtomicUsize::new(0),
                sleep,
                split: false,
                threads: Mutex::new(BTreeSet::new()),
                normalisation: None,
                spans: Mutex::new(vec![]),
                fail_from: None,
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
            let mut px: Vec<f32> = Vec::try_from(raw.flatten(0, -1))?;
            let n = raw.size()[0] as usize;
            if let Some((norm, _)) = &self.normalisation {
                let per = px.len() / n;
                px.chunks_exact_mut(per).for_each(|image| norm.apply(image));
            }
            self.forward_normalised(&Tensor::from_slice(&px).view(raw.size().as_slice()))
        }
        fn forward_normalised(&self, x: &Tensor) -> Result<Tensor> {
            let n = x.size()[0] as usize;
            let px: Vec<f32> = Vec::try_from(x.flatten(0, -1))?;
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
            let started = Instant::now();
            self.images.fetch_add(n, Relaxed);
            let call = self.calls.fetch_add(1, Relaxed);
            if self.fail_from.is_some_and(|k| call >= k) {
                anyhow::bail!("fake.pt: call {call} fails");
            }
            let name = std::thread::current().name().unwrap_or("").to_string();
            self.threads
                .lock()
                .unwrap()
                .insert((name, tch::get_num_threads()));
            std::thread::sleep((self.sleep)(n));
            let span = (n, started, Instant::now());
            self.spans.lock().unwrap().push(span);
            Ok(Tensor::from_slice(&logits))
        }
        fn splits_batches(&self) -> bool {
            self.split
        }
        fn host_normalisation(&self) -> Option<Normalisation> {
            self.normalisation
                .as_ref()
                .and_then(|(n, offered)| offered.then(|| n.clone()))
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
                    labelled: true,
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
            poses: angles.iter().map(|&a| Pose::rotation(a)).collect(),
            draws: None,
            early_stop: false,
            rotate: RotateOptions::default(),
            batch,
            rotate_on: RotateOn::Host,
            keep_examples: 0,
            top_k: 2,
            threads: 1,
        }
    }

    /// Run the engine; returns the result and the chunks `on_chunk` saw.
    fn sweep(
        fake: &Fake,
        n: usize,
        s: &SweepSettings,
        work: &WorkOrder,
    ) -> (Evaluations, Vec<usize>) {
        let mut chunks = vec![];
        let raw = run(
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
    fn images_normalised_as_they_are_rotated_score_as_the_model_normalising_them() {
        // Rotated by a plan, and drawn per sample (--worst-of), split and whole.
        let mut s = settings(&[0.0, 30.0, 90.0], BatchSize::Fixed(80));
        s.draws = Some(Draws {
            k: 2,
            seed: 3,
            ranges: rotbench_core::poses::Ranges::of(&[-30.0, 30.0], &[-2.0, 2.0], &[0.0]),
        });
        let norm = Normalisation {
            scale: true,
            mean: vec![0.3],
            inv_std: vec![1.0 / 0.2],
        };
        for threads in [1, 2] {
            s.threads = threads;
            let run_with = |offered: bool| {
                let mut fake = Fake::new(6, no_sleep);
                fake.split = true;
                fake.normalisation = Some((norm.clone(), offered));
                let (e, _) = sweep(&fake, 150, &s, &WorkOrder::default());
                assert_eq!(host_normalisation(&[fake], s.rotate_on).is_some(), offered);
                e.data
            };
            let (on_host, by_model) = (run_with(true), run_with(false));
            assert_eq!(on_host, by_model, "--threads {threads}");
            let unnormalised = sweep(&Fake::new(6, no_sleep), 150, &s, &WorkOrder::default()).0;
            assert_ne!(
                on_host, unnormalised.data,
                "the normalisation changes the logits"
            );
        }
    }

    #[test]
    fn a_resumed_run_evaluates_only_the_rest_and_equals_an_uninterrupted_one() {
        let s = settings(&[90.0, 45.0], BatchSize::Fixed(8));
        let full_fake = Fake::new(6, no_sleep);
        let (full, chunks) = sweep(&full_fake, 40, &s, &WorkOrder::default());
        assert_eq!(chunks, [8, 8, 8, 8, 8]);
        assert_eq!(
            full_fake.images.load(Relaxed),
            40 * 3,
            "0 is added as the reference"
        );
        assert!(
            full.data.cols[0][1].preds != full.data.cols[0][0].preds,
            "the stand-in sees the rotation"
        );

        let fake = Fake::new(6, no_sleep);
        let work = WorkOrder {
            compute: None,
            resume: Some(prefix(&full.data, 16)),
        };
        let (resumed, chunks) = sweep(&fake, 40, &s, &work);
        assert_eq!(
            fake.images.load(Relaxed),
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
        let (full, _) = sweep(&Fake::new(5, no_sleep), 30, &s, &WorkOrder::default());
        let work = WorkOrder {
            compute: None,
            resume: Some(prefix(&full.data, 13)),
        };
        let fake = Fake::new(5, no_sleep);
        let (resumed, chunks) = sweep(&fake, 30, &s, &work);
        assert_eq!(chunks, [8, 8, 1]);
        assert_eq!(fake.images.load(Relaxed), 17 * 2);
        assert_eq!(resumed.data, full.data);
    }

    #[test]
    fn a_pair_not_to_compute_is_skipped_but_its_reference_is_computed() {
        let s = settings(&[90.0, 180.0], BatchSize::Fixed(16));
        let fake = Fake::new(4, no_sleep);
        let work = WorkOrder {
            compute: Some(vec![vec![false, false, true]]),
            resume: None,
        };
        let (raw, _) = sweep(&fake, 20, &s, &work);
        assert_eq!(
            fake.images.load(Relaxed),
            20 * 2,
            "180 and its reference, not 90"
        );
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
            &WorkOrder::default(),
        );
        let tried: Vec<usize> = raw.batch_timings.iter().map(|t| t.batch_size).collect();
        assert_eq!(tried, AUTO_CANDIDATES);
        assert_eq!(raw.batch_size, 512);
        assert_eq!(chunks, [64, 128, 256, 512, 100]);
        assert_eq!(
            fake.images.load(Relaxed),
            n * 2,
            "nothing is computed twice"
        );
        let fixed = Fake::new(4, no_sleep);
        let (same, _) = sweep(
            &fixed,
            n,
            &settings(&[90.0], BatchSize::Fixed(7)),
            &WorkOrder::default(),
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
            &WorkOrder::default(),
        );
        let tried: Vec<usize> = raw.batch_timings.iter().map(|t| t.batch_size).collect();
        assert_eq!(tried, [64, 128]);
        assert_eq!(raw.batch_size, 64);
        assert_eq!(chunks, [64, 128, 64, 44]);
    }

    #[test]
    fn auto_with_slices_times_nothing_and_takes_the_largest_size_scaled_for_the_threads() {
        // Split batches run the same 64-row slices at any size: the largest
        // candidate, untimed; 8 slice threads need 8 x 64 rows, so sizes double:
        // 1024. With one thread (no slice threads), 512. Unsplit, auto times from 64.
        let n = 2500;
        let mut s = settings(&[0.0, 90.0], BatchSize::Auto);
        for (threads, size) in [(8, 1024), (1, 512)] {
            s.threads = threads;
            let split = Fake {
                split: true,
                ..Fake::new(4, no_sleep)
            };
            let (raw, chunks) = sweep(&split, n, &s, &WorkOrder::default());
            assert!(raw.batch_timings.is_empty(), "{:?}", raw.batch_timings);
            assert_eq!(raw.batch_size, size);
            assert!(
                chunks.iter().rev().skip(1).all(|&c| c == size),
                "{chunks:?}"
            );
        }
        let whole = Fake::new(4, flat);
        let (raw, _) = sweep(&whole, n, &s, &WorkOrder::default());
        assert_eq!(raw.batch_timings[0].batch_size, 64);
    }

    #[test]
    fn auto_batch_with_one_angle_uses_the_fallback_untimed() {
        let fake = Fake::new(4, no_sleep);
        let mut s = settings(&[0.0], BatchSize::Auto);
        s.poses = vec![Pose::rotation(0.0)];
        let (raw, chunks) = sweep(&fake, 300, &s, &WorkOrder::default());
        assert!(raw.batch_timings.is_empty());
        assert_eq!(raw.batch_size, AUTO_FALLBACK);
        assert_eq!(chunks, [256, 44]);
    }

    #[test]
    fn a_split_batch_runs_in_slices_of_64_on_the_slice_threads_and_equals_the_whole_batch() {
        let mut s = settings(&[90.0, 45.0], BatchSize::Fixed(160));
        let whole = Fake::new(6, |_| Duration::from_millis(2));
        let (a, _) = sweep(&whole, 320, &s, &WorkOrder::default());
        s.threads = 3;
        let split = Fake {
            split: true,
            ..Fake::new(6, |_| Duration::from_millis(2))
        };
        let (b, _) = sweep(&split, 320, &s, &WorkOrder::default());
        assert_eq!(a.data, b.data);
        assert_eq!(split.images.load(Relaxed), 320 * 3);
        // 2 chunks x 3 angles, each batch of 160 in slices of 64, 64 and 32.
        assert_eq!(whole.calls.load(Relaxed), 6);
        assert_eq!(split.calls.load(Relaxed), 18);
        let threads = split.threads.lock().unwrap().clone();
        assert!(
            threads.len() >= 2,
            "one thread ran every slice: {threads:?}"
        );
        for (name, libtorch) in &threads {
            assert!(name.starts_with("rotbench-slice-"), "{name}");
            assert_eq!(*libtorch, 1, "{name} ran with {libtorch} libtorch threads");
        }
    }

    #[test]
    fn the_next_batch_starts_while_the_last_slice_of_this_one_runs() {
        // Batches of 160 rows: slices of 64, 64 and 32, queued in that order; the
        // 32-row slice takes 30 ms, the others 5. A consumer that waited for each
        // batch would start no slice while a batch's last slice runs; with batches
        // in flight, the next batch's slices run beside it on the other thread.
        let mut s = settings(&[0.0, 90.0, 180.0], BatchSize::Fixed(160));
        let one = Fake::new(4, no_sleep);
        let (a, _) = sweep(&one, 320, &s, &WorkOrder::default());
        s.threads = 2;
        let split = Fake {
            split: true,
            ..Fake::new(4, |n| Duration::from_millis(if n == 32 { 30 } else { 5 }))
        };
        let (b, _) = sweep(&split, 320, &s, &WorkOrder::default());
        assert_eq!(a.data, b.data);
        let spans = split.spans.lock().unwrap().clone();
        assert_eq!(spans.len(), 2 * 3 * 3, "2 chunks x 3 angles x 3 slices");
        let inside = spans
            .iter()
            .filter(|&&(n, start, end)| {
                n == 64
                    && spans
                        .iter()
                        .any(|&(m, s, e)| m == 32 && s < start && end < e)
            })
            .count();
        assert!(
            inside > 0,
            "no slice ran inside a batch's last slice: {spans:?}"
        );
    }

    #[test]
    fn a_slice_that_fails_in_flight_ends_the_sweep_with_its_error() {
        let mut s = settings(&[0.0, 90.0, 180.0], BatchSize::Fixed(160));
        s.threads = 2;
        for fail_from in [0, 4, 10] {
            let split = Fake {
                split: true,
                fail_from: Some(fail_from),
                ..Fake::new(4, |_| Duration::from_millis(1))
            };
            let err = run(
                std::slice::from_ref(&split),
                &mut Memory::new(640, 4),
                &s,
                &WorkOrder::default(),
                &|_| {},
                &mut |_| Ok(()),
            )
            .err()
            .unwrap_or_else(|| panic!("no error when calls fail from {fail_from}"));
            assert!(format!("{err:#}").contains("fails"), "{err:#}");
        }
    }

    #[test]
    fn the_slices_are_the_same_at_every_thread_count() {
        let mut s = settings(&[90.0], BatchSize::Fixed(160));
        let mut calls = vec![];
        for threads in [1, 2, 5] {
            s.threads = threads;
            let fake = Fake {
                split: true,
                ..Fake::new(5, no_sleep)
            };
            sweep(&fake, 160, &s, &WorkOrder::default());
            calls.push(fake.calls.load(Relaxed));
        }
        assert_eq!(
            calls,
            [6, 6, 6],
            "3 slices (64, 64, 32) at each of 2 angles"
        );
    }

    #[test]
    fn one_thread_runs_the_same_slices_one_after_the_other() {
        let s = settings(&[90.0], BatchSize::Fixed(160));
        let fake = Fake {
            split: true,
            ..Fake::new(5, no_sleep)
        };
        sweep(&fake, 160, &s, &WorkOrder::default());
        assert_eq!(fake.calls.load(Relaxed), 6);
        let threads = fake.threads.lock().unwrap().clone();
        assert!(threads
            .iter()
            .all(|(n, _)| !n.starts_with("rotbench-slice-")));
    }

    #[test]
    fn a_model_that_does_not_split_or_a_batch_of_64_runs_whole() {
        let mut s = settings(&[90.0], BatchSize::Fixed(160));
        s.threads = 4;
        let fake = Fake::new(6, no_sleep);
        sweep(&fake, 320, &s, &WorkOrder::default());
        assert_eq!(fake.calls.load(Relaxed), 2 * 2);
        let threads = fake.threads.lock().unwrap().clone();
        assert!(threads
            .iter()
            .all(|(n, _)| !n.starts_with("rotbench-slice-")));
        let mut s = settings(&[90.0], BatchSize::Fixed(64));
        s.threads = 4;
        let fake = Fake {
            split: true,
            ..Fake::new(6, no_sleep)
        };
        sweep(&fake, 128, &s, &WorkOrder::default());
        assert_eq!(fake.calls.load(Relaxed), 2 * 2);
    }

    #[test]
    fn only_small_images_are_split() {
        let fake = Fake {
            split: true,
            ..Fake::new(6, no_sleep)
        };
        let t = |c, side| Target {
            channels: c,
            height: side,
            width: side,
        };
        let models = std::slice::from_ref(&fake);
        assert_eq!(slice_threads(4, models, t(3, 64)), 4);
        assert_eq!(slice_threads(4, models, t(3, 65)), 0);
        assert_eq!(slice_threads(1, models, t(1, 28)), 0);
        assert_eq!(slice_threads(4, &[Fake::new(6, no_sleep)], t(1, 28)), 0);
    }
}
