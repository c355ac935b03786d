//! The producer: read the dataset chunk by chunk and rotate each chunk to every
//! angle the run computes (rayon across the chunk's images), on its own thread
//! while the models run. It cuts resumed samples as whole chunks ending on the
//! resume point (they are announced, not rotated), then one chunk per
//! `--batch-size auto` candidate, waiting after each for the driver's
//! [`batch_size::Step`](super::batch_size::Step) (0: the next candidate; a size:
//! use it), then chunks of the chosen size.

use super::{Chunk, Rotated};
use crate::classifier::Normalisation;
use crate::dataset::{Source, Target};
use crate::rotate::{rotate_into, Geometry, RotateOptions, RotationPlan};
use anyhow::Result;
use rayon::prelude::*;
use rotbench_core::poses::{Draws, Pose};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

/// What goes to the driver: a chunk (announced with `None` before its angles),
/// then each of its angles rotated, or the error that ended the data.
pub type Message = Result<(Arc<Chunk>, Option<Rotated>)>;

pub struct Producer<'a> {
    pub target: Target,
    /// Every evaluated pose, in the run's order.
    pub poses: &'a [Pose],
    /// `--worst-of K`: the columns after the poses' are its draws.
    pub draws: Option<Draws>,
    pub rotate: RotateOptions,
    /// `[angle]`: the plan for same-size images; `None`: the angle is not computed.
    pub plans: &'a [Option<RotationPlan>],
    /// The angles of a chunk, in work order (the reference first).
    pub order: &'a [usize],
    /// The driver rotates same-size chunks on the device: send no pixels for them.
    pub on_device: bool,
    /// Samples finished in an interrupted run.
    pub resumed: usize,
    /// The batch size when nothing is being calibrated.
    pub fixed: usize,
    /// The largest chunk to cut for resumed samples.
    pub max_chunk: usize,
    /// `--batch-size auto`'s candidates; empty when nothing is timed.
    pub schedule: Vec<usize>,
    /// The slice threads, where batches are split: rotation runs on them too, so
    /// that a slice thread without a slice rotates the next angle instead of
    /// waiting, and no more threads than `--threads` compete for the cores.
    pub pool: Option<Arc<rayon::ThreadPool>>,
    /// The model's scaling and normalisation, applied to each image as it is
    /// rotated on the host, while it is in the cache ([`super::host_normalisation`]).
    pub normalise: Option<Normalisation>,
}

impl Producer<'_> {
    /// Stream `source` to `tx` until the data ends, an error, or the driver hangs up.
    /// `spent`: the buffers of batches the driver has scored, to rotate into again.
    pub fn run(
        self,
        source: &mut dyn Source,
        tx: SyncSender<Message>,
        choice_rx: Receiver<usize>,
        spent: Receiver<Vec<f32>>,
    ) {
        let px = self.target.pixels();
        let mut seen = 0usize;
        let mut calibrated = 0usize;
        let mut decided = self.schedule.is_empty();
        let mut batch = self.fixed;
        loop {
            // Resumed samples: chunks that end exactly on the resume point.
            let want = if seen < self.resumed {
                (self.resumed - seen).min(self.max_chunk)
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
                    self.schedule[calibrated - 1]
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
            if seen <= self.resumed {
                continue; // finished in the interrupted run
            }
            // Images larger than the target (rotate-then-crop) need a plan per size.
            let sized = &chunk.dims;
            let offsets: Vec<usize> = sized
                .iter()
                .scan(0usize, |at, &(h, w)| {
                    let o = *at;
                    *at += self.target.channels * h * w;
                    Some(o)
                })
                .collect();
            for &a in self.order {
                if a >= self.poses.len() {
                    let buf = buffer(&spent, chunk.len() * px);
                    let pixels = self.drawn(&chunk, a - self.poses.len(), &offsets, buf);
                    if tx
                        .send(Ok((chunk.clone(), Some(Rotated { angle: a, pixels }))))
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                let Some(plan) = &self.plans[a] else { continue };
                // On the device the consumer rotates the uploaded chunk: send no pixels.
                let by_consumer = self.on_device && sized.is_empty();
                let mut pixels = if by_consumer {
                    vec![]
                } else {
                    buffer(&spent, chunk.len() * px)
                };
                if by_consumer {
                    // nothing to do here
                } else if sized.is_empty() {
                    self.on_pool(|| {
                        pixels
                            .par_chunks_mut(px)
                            .zip(chunk.pixels.par_chunks(px))
                            .for_each(|(out, src)| {
                                plan.apply(src, self.target.channels, out);
                                self.normalised(out);
                            })
                    });
                } else {
                    // Sizes vary (rotate-then-crop of resized images): each image is
                    // rotated straight into its crop, computing only the pixels the
                    // crop keeps, with no plan to build or hold per size.
                    let (th, tw, c) = (self.target.height, self.target.width, self.target.channels);
                    let pose = self.poses[a];
                    pixels.par_chunks_mut(px).enumerate().for_each(|(k, out)| {
                        let (h, w) = sized[k];
                        let src = &chunk.pixels[offsets[k]..offsets[k] + c * h * w];
                        let g = Geometry::centre_crop(h, w, th, tw);
                        rotate_into(g, pose, &self.rotate, src, c, out);
                        self.normalised(out);
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
    }

    /// Run `work` (rayon's parallel loops) on the slice threads where there are
    /// some, else on rayon's global pool.
    fn on_pool<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(work),
            None => work(),
        }
    }

    /// The chunk at draw `d` of --worst-of: each image at its own pose (from the
    /// seed, its dataset position and `d`), rotated on the host.
    /// `pixels`: a buffer of the chunk's size, to rotate into.
    fn drawn(&self, chunk: &Chunk, d: usize, offsets: &[usize], mut pixels: Vec<f32>) -> Vec<f32> {
        let Some(draws) = self.draws else {
            return vec![];
        };
        let px = self.target.pixels();
        let (th, tw, c) = (self.target.height, self.target.width, self.target.channels);
        pixels.par_chunks_mut(px).enumerate().for_each(|(k, out)| {
            let pose = draws.pose(chunk.indices[k], d);
            let (g, src) = match chunk.dims.get(k) {
                Some(&(h, w)) => (
                    Geometry::centre_crop(h, w, th, tw),
                    &chunk.pixels[offsets[k]..offsets[k] + c * h * w],
                ),
                None => (Geometry::same(th, tw), &chunk.pixels[k * px..(k + 1) * px]),
            };
            rotate_into(g, pose, &self.rotate, src, c, out);
            self.normalised(out);
        });
        pixels
    }

    /// Normalise a rotated image in place, when the producer does ([`Producer::normalise`]).
    fn normalised(&self, image: &mut [f32]) {
        if let Some(n) = &self.normalise {
            n.apply(image);
        }
    }
}

/// A buffer of `len` values for a rotated batch: a scored batch's from `spent`,
/// whose old values the rotation overwrites (every rotation writes every value of
/// its output), or a new one.
fn buffer(spent: &Receiver<Vec<f32>>, len: usize) -> Vec<f32> {
    match spent.try_recv() {
        Ok(mut v) => {
            v.resize(len, 0.0);
            v
        }
        Err(_) => vec![0f32; len],
    }
}
