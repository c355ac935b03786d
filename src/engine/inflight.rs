//! Batches in flight: a rotated batch's forward passes started on the slice
//! threads, to be collected later, so that the next batch's slices are queued
//! before this one's last slice ends. Without it, one slice thread ran the last
//! slice of a batch while the other had none (issue 36: the slice threads were
//! 89% and 94% busy in the 32x32 RGB sweep on 2 cores).
//!
//! Only what the consumer can defer goes here: a host batch, and no
//! `--grid-early-stop` (its next angle depends on this one's predictions); a run
//! with slice threads times no `--batch-size auto` calls. The rows that run together
//! are the same [`SLICE`] rows as when the consumer waits, so the logits are the
//! same bits.

use super::{read_logits, Shared, SLICE};
use crate::classifier::Classifier;
use anyhow::{bail, Result};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;

/// A batch whose forward passes have started: its column, its rows, the buffer
/// its slices read, and each model's logits or the slices still running.
pub(super) struct InFlight {
    pub angle: usize,
    pub rows: usize,
    /// Shared with the running slices, each of which holds it until its
    /// forward pass is done; the last holder frees or recycles it.
    pub pixels: Arc<Vec<f32>>,
    /// `[model]`: `None` where the model does not compute this column.
    pub logits: Vec<Option<Logits>>,
}

/// One model's logits for an in-flight batch.
pub(super) enum Logits {
    /// Computed already (a model that does not split batches runs on the caller).
    Ready(Vec<f32>),
    /// Its slices, on the pool: `parts` results, each with its slice's position.
    Running {
        results: Receiver<(usize, Result<Vec<f32>>)>,
        parts: usize,
    },
}

/// Queue `rows` rows of `pixels` (`shape`: one image's channels, height, width)
/// for `model` on `scope`'s pool, a slice of [`SLICE`] rows a job (the last one
/// shorter).
pub(super) fn spawn_slices<'s, C: Classifier + 's>(
    scope: &rayon::ScopeFifo<'s>,
    model: &'s C,
    pixels: &Arc<Vec<f32>>,
    rows: usize,
    shape: [usize; 3],
    normalised: bool,
) -> Logits {
    let (tx, results) = channel();
    let per = shape.iter().product::<usize>();
    let step = SLICE as usize;
    let mut parts = 0;
    for (k, at) in (0..rows).step_by(step).enumerate() {
        let len = step.min(rows - at);
        let (tx, pixels, shared) = (tx.clone(), Arc::clone(pixels), Shared(model));
        scope.spawn_fifo(move |_| {
            // The whole wrapper moves in (a closure would capture just its `&C`).
            let model = shared.model();
            let slice = &pixels[at * per..(at + len) * per];
            let logits = super::host_batch(slice, [len, shape[0], shape[1], shape[2]])
                .and_then(|t| read_logits(model, &t, normalised));
            // The buffer goes before the result, so that once the consumer has every
            // result it holds the last reference and can reuse the buffer.
            drop(pixels);
            // Fails only if the consumer has stopped (an error elsewhere).
            let _ = tx.send((k, logits));
        });
        parts += 1;
    }
    Logits::Running { results, parts }
}

impl Logits {
    /// The logits of every row, in order: waits for the slices still running.
    pub fn collect(self) -> Result<Vec<f32>> {
        let (results, parts) = match self {
            Logits::Ready(v) => return Ok(v),
            Logits::Running { results, parts } => (results, parts),
        };
        let mut got: Vec<Option<Result<Vec<f32>>>> = (0..parts).map(|_| None).collect();
        for _ in 0..parts {
            let Ok((k, logits)) = results.recv() else {
                bail!("internal: a slice thread ended without its logits");
            };
            got[k] = Some(logits);
        }
        let mut all = Vec::new();
        for part in got.into_iter().flatten() {
            all.extend(part?);
        }
        Ok(all)
    }
}
