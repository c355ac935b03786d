//! `--batch-size auto`: which batch sizes to try, and when to stop trying.
//!
//! A small state machine the sweep driver feeds one timed chunk at a time. The
//! producer cuts one chunk per candidate in [`AUTO_CANDIDATES`] order; after each,
//! the driver reports the chunk's forward timing with [`AutoBatch::record`] and
//! gets back [`Step::Next`] (cut the next candidate) or [`Step::Use`] (the size
//! for the rest of the sweep). The results of calibration chunks are kept, so
//! nothing is computed twice. A run that cuts its batches into slices times
//! nothing: its size is the largest that fits ([`AutoBatch::sliced`]).

use crate::results::AUTO_FALLBACK as AUTO_FALLBACK_UNSCALED;
use crate::results::{auto_candidates, auto_fallback};
use crate::results::{fastest, BatchSize, BatchTiming};
#[cfg(test)]
use crate::results::{AUTO_CANDIDATES, AUTO_FALLBACK};

/// What the producer does after a calibration chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Cut the next candidate's chunk.
    Next,
    /// AutoBatch is over: cut every further chunk this size.
    Use(usize),
}

#[derive(Debug, Clone)]
pub struct AutoBatch {
    /// The sizes to try, one chunk each; empty when nothing is timed.
    schedule: Vec<usize>,
    /// The size used when nothing is timed, and before anything was.
    fixed: usize,
    timings: Vec<BatchTiming>,
    chosen: Option<usize>,
}

impl AutoBatch {
    /// `timed_angles`: the angles each chunk runs at. Timing needs warm-up calls,
    /// so `auto` with fewer than 2 angles uses its fallback untimed. `floats`: input
    /// values per image; `auto` tries only the sizes whose input fits
    /// [`AUTO_MAX_INPUT_BYTES`](crate::results::AUTO_MAX_INPUT_BYTES).
    pub fn new(batch: BatchSize, timed_angles: usize, floats: usize) -> AutoBatch {
        let (fixed, schedule) = match batch {
            BatchSize::Fixed(b) => (b, vec![]),
            BatchSize::Auto if timed_angles >= 2 => {
                (auto_fallback(floats, 1), auto_candidates(floats, 1))
            }
            BatchSize::Auto => (auto_fallback(floats, 1), vec![]),
        };
        let chosen = schedule.is_empty().then_some(fixed);
        AutoBatch {
            schedule,
            fixed,
            timings: vec![],
            chosen,
        }
    }

    /// `auto` for a run that cuts its batches into slices of 64 rows
    /// ([`super::splits`]): the forward passes are the same slices whatever the
    /// batch size, which only sets how many slices a batch queues at once, so
    /// nothing is timed. Timing measured the calibration's own cost and noise (a
    /// first chunk of 64 rows is one slice, on one thread) and chose smaller
    /// batches than the largest, which was the fastest in each of the three bench
    /// sweeps once batches stayed in flight (docs/performance.md, issue 36). The
    /// largest candidate that fits, scaled by the power of two that brings the
    /// unscaled untimed size to at least `rows` (the rows that give each slice
    /// thread a slice, 0 with one thread). Every size stays a multiple of the
    /// slice, so which rows run together (and so every prediction) does not depend
    /// on the size.
    pub fn sliced(batch: BatchSize, floats: usize, rows: usize) -> AutoBatch {
        let scale = rows
            .div_ceil(AUTO_FALLBACK_UNSCALED)
            .max(1)
            .next_power_of_two();
        let fixed = match batch {
            BatchSize::Fixed(b) => b,
            BatchSize::Auto => auto_candidates(floats, scale)
                .last()
                .copied()
                .unwrap_or(AUTO_FALLBACK_UNSCALED),
        };
        AutoBatch {
            schedule: vec![],
            fixed,
            timings: vec![],
            chosen: Some(fixed),
        }
    }

    /// The candidates, in the order the producer cuts them.
    pub fn schedule(&self) -> &[usize] {
        &self.schedule
    }

    /// The size when nothing is timed (a fixed size, or `auto`'s fallback).
    pub fn fixed(&self) -> usize {
        self.fixed
    }

    /// The largest chunk the producer may cut.
    pub fn max_chunk(&self) -> usize {
        self.schedule
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.fixed)
    }

    /// True while chunk number `computed` (1-based, counting computed chunks only)
    /// is one of the candidates' chunks.
    pub fn is_timing(&self, computed: usize) -> bool {
        self.chosen.is_none() && computed >= 1 && computed <= self.schedule.len()
    }

    /// How many forward calls of a chunk are warm-up and not timed.
    pub fn warmup_calls(angles: usize) -> usize {
        if angles >= 4 {
            2
        } else {
            1
        }
    }

    /// Chunk number `computed` (of `batch_size` images) took `seconds` over `images`
    /// images in `calls` timed forward calls. Stops at the last candidate, or at
    /// the first that is more than 2% slower than the best before it (larger
    /// batches only get slower once they have started to: caches). A chunk smaller
    /// than its candidate (the data ran out) is not timed: its size is not a
    /// candidate, and a small batch's rate says nothing about the candidate's.
    pub fn record(
        &mut self,
        computed: usize,
        batch_size: usize,
        seconds: f64,
        images: usize,
        calls: usize,
    ) -> Step {
        let candidate = self
            .schedule
            .get(computed.wrapping_sub(1))
            .copied()
            .unwrap_or(batch_size);
        let best_before = self
            .timings
            .iter()
            .map(|t| t.images_per_second)
            .fold(0.0, f64::max);
        let mut slower = false;
        if calls > 0 && seconds > 0.0 && batch_size == candidate {
            let rate = images as f64 / seconds;
            slower = rate < 0.98 * best_before;
            self.timings.push(BatchTiming {
                batch_size,
                images_per_second: rate,
                calls,
            });
        }
        if computed == self.schedule.len() || slower {
            let b = fastest(&self.timings).unwrap_or(self.fixed);
            self.chosen = Some(b);
            Step::Use(b)
        } else {
            Step::Next
        }
    }

    /// The size in use: the chosen one; if the data ended during calibration, the
    /// fastest seen so far; the fixed size when nothing was timed.
    pub fn batch_size(&self) -> usize {
        self.chosen
            .or_else(|| fastest(&self.timings))
            .unwrap_or(self.fixed)
    }

    pub fn into_timings(self) -> Vec<BatchTiming> {
        self.timings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_tries_only_batches_whose_input_fits_64_mib() {
        // MNIST and 32x32 RGB: every candidate; 224x224 RGB (64 MiB holds 111): 64 only,
        // and the untimed fallback follows.
        for floats in [784, 3 * 32 * 32] {
            let c = AutoBatch::new(BatchSize::Auto, 3, floats);
            assert_eq!(c.schedule(), AUTO_CANDIDATES);
            assert_eq!(c.fixed(), AUTO_FALLBACK);
        }
        let big = AutoBatch::new(BatchSize::Auto, 3, 3 * 224 * 224);
        assert_eq!((big.schedule(), big.fixed()), (&[64][..], 64));
        assert_eq!(
            AutoBatch::new(BatchSize::Auto, 1, 3 * 224 * 224).fixed(),
            64
        );
        // 3x160x160 (300 KB): 64 and 128 fit 64 MiB, 256 does not.
        let mid = AutoBatch::new(BatchSize::Auto, 3, 3 * 160 * 160);
        assert_eq!((mid.schedule(), mid.fixed()), (&[64, 128][..], 128));
        // Larger still than one batch of 64 can hold: the first candidate all the same.
        assert_eq!(
            AutoBatch::new(BatchSize::Auto, 3, 3 * 1024 * 1024).schedule(),
            [64]
        );
        // A fixed size is the user's choice, whatever its memory.
        assert_eq!(
            AutoBatch::new(BatchSize::Fixed(512), 3, 3 * 224 * 224).fixed(),
            512
        );
    }

    #[test]
    fn auto_with_slices_takes_the_largest_size_that_fits_scaled_for_every_slice_thread() {
        // No slice threads, or 2 x 64 rows = 128 (within 256): unscaled, 512.
        for rows in [0, 128] {
            let c = AutoBatch::sliced(BatchSize::Auto, 784, rows);
            assert_eq!(
                (c.schedule(), c.fixed(), c.batch_size()),
                (&[][..], 512, 512)
            );
            assert!(!c.is_timing(1));
        }
        // 8 threads (512 rows): x2. 16 (1024 rows): x4. 12 (768 rows): x4, a power of two.
        for (rows, size) in [(512, 1024), (1024, 2048), (768, 2048)] {
            assert_eq!(AutoBatch::sliced(BatchSize::Auto, 784, rows).fixed(), size);
        }
        // 64x64 RGB (48 KB an image) at 16 threads: 64 MiB holds 1365, so 1024.
        assert_eq!(
            AutoBatch::sliced(BatchSize::Auto, 3 * 64 * 64, 1024).fixed(),
            1024
        );
        // A fixed size stays the user's.
        assert_eq!(
            AutoBatch::sliced(BatchSize::Fixed(100), 784, 1024).fixed(),
            100
        );
        // Every size is a multiple of the 64-row slice.
        for rows in [0, 64, 128, 512, 768, 1024, 4096] {
            for floats in [784, 3 * 32 * 32, 3 * 64 * 64] {
                assert_eq!(
                    AutoBatch::sliced(BatchSize::Auto, floats, rows).fixed() % 64,
                    0
                );
            }
        }
    }

    /// Feed `rates` (images per second) for the candidates in order; returns the
    /// steps and the calibration.
    fn feed(rates: &[f64]) -> (Vec<Step>, AutoBatch) {
        let mut c = AutoBatch::new(BatchSize::Auto, 3, 784);
        let mut steps = vec![];
        for (k, &r) in rates.iter().enumerate() {
            let b = c.schedule()[k];
            let step = c.record(k + 1, b, b as f64 / r, b, 2);
            steps.push(step);
            if let Step::Use(_) = step {
                break;
            }
        }
        (steps, c)
    }

    #[test]
    fn a_fixed_size_or_fewer_than_two_angles_times_nothing() {
        let c = AutoBatch::new(BatchSize::Fixed(32), 5, 784);
        assert!(c.schedule().is_empty() && !c.is_timing(1));
        assert_eq!((c.batch_size(), c.max_chunk()), (32, 32));
        let c = AutoBatch::new(BatchSize::Auto, 1, 784);
        assert!(c.schedule().is_empty() && !c.is_timing(1));
        assert_eq!(c.batch_size(), AUTO_FALLBACK);
    }

    #[test]
    fn auto_tries_every_candidate_while_larger_batches_are_faster() {
        let (steps, c) = feed(&[100.0, 200.0, 300.0, 400.0]);
        assert_eq!(
            steps,
            [Step::Next, Step::Next, Step::Next, Step::Use(512)],
            "the last candidate ends calibration"
        );
        assert_eq!(c.batch_size(), 512);
        assert_eq!(c.max_chunk(), 512);
        assert_eq!(c.into_timings().len(), 4);
    }

    #[test]
    fn auto_stops_at_the_first_size_more_than_two_percent_slower() {
        // 256 is 5% below 128: stop there and use the fastest so far.
        let (steps, c) = feed(&[100.0, 200.0, 190.0, 1000.0]);
        assert_eq!(steps, [Step::Next, Step::Next, Step::Use(128)]);
        assert_eq!(c.batch_size(), 128);
        // Within 2% goes on.
        let (steps, _) = feed(&[100.0, 200.0, 197.0, 150.0]);
        assert_eq!(steps, [Step::Next, Step::Next, Step::Next, Step::Use(128)]);
    }

    #[test]
    fn ties_go_to_the_larger_batch() {
        let (steps, _) = feed(&[100.0, 100.0, 100.0, 100.0]);
        assert_eq!(steps.last(), Some(&Step::Use(512)));
    }

    #[test]
    fn data_that_ends_during_calibration_uses_the_fastest_seen() {
        let mut c = AutoBatch::new(BatchSize::Auto, 2, 784);
        assert!(c.is_timing(1) && !c.is_timing(0) && !c.is_timing(5));
        assert_eq!(c.record(1, 64, 1.0, 64, 3), Step::Next);
        assert!(c.is_timing(2), "calibration goes on");
        assert_eq!(c.batch_size(), 64, "the fastest seen, not the fallback");
    }

    #[test]
    fn a_partial_last_chunk_is_not_a_candidate() {
        // Issue 20: 200 images gave chunks of 64, 128 and a remainder of 8, and
        // auto chose 8. The remainder is not timed; 128 (the fastest full chunk) stands.
        let mut c = AutoBatch::new(BatchSize::Auto, 4, 784);
        assert_eq!(c.record(1, 64, 1.0, 64, 3), Step::Next);
        assert_eq!(c.record(2, 128, 1.0, 128, 3), Step::Next);
        assert_eq!(c.record(3, 8, 0.001, 8, 3), Step::Next);
        assert_eq!(c.batch_size(), 128);
        let t = c.into_timings();
        assert_eq!(
            t.iter().map(|t| t.batch_size).collect::<Vec<_>>(),
            [64, 128]
        );
    }

    #[test]
    fn an_untimed_chunk_records_nothing_and_falls_back() {
        let mut c = AutoBatch::new(BatchSize::Auto, 2, 784);
        for k in 1..=4 {
            let step = c.record(k, c.schedule()[k - 1], 0.0, 0, 0);
            if k < 4 {
                assert_eq!(step, Step::Next);
            } else {
                assert_eq!(step, Step::Use(AUTO_FALLBACK));
            }
        }
        assert!(c.into_timings().is_empty());
    }

    #[test]
    fn warm_up_is_two_calls_from_four_angles() {
        assert_eq!(AutoBatch::warmup_calls(3), 1);
        assert_eq!(AutoBatch::warmup_calls(4), 2);
    }
}
