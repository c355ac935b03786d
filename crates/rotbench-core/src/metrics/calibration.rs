//! Probabilistic scores of one angle's predictions: top-k accuracy, the negative
//! log-likelihood of the true class, the multi-class Brier score and the expected
//! calibration error with its reliability bins.
//!
//! Each matches a reference on generated fixtures to 1e-12
//! (`tests/fixtures/make_stability.py`, checked by `tests/reference_stability.rs`):
//! scikit-learn 1.9's `top_k_accuracy_score`, `log_loss` and `brier_score_loss`,
//! and torchmetrics' `multiclass_calibration_error(n_bins=15, norm="l1")`.
//! The one documented difference is how ties at the k-th score are broken (see
//! [`top_k_classes`]).
//!
//! Invalid predictions (NaN or infinite logits) take the worst value of each
//! score: the true class's probability is 0 (NLL 36.04 after clipping), the
//! Brier term is 2, the confidence is 1 and the answer is wrong.

/// The number of equal-width confidence bins of the calibration error (Guo et
/// al. 2017; torchmetrics' default).
pub const ECE_BINS: usize = 15;

/// Marks "no class" in a top-k list: the list of an invalid prediction.
pub const NO_CLASS: u32 = u32::MAX;

/// scikit-learn's `log_loss` clips probabilities to `[eps, 1 - eps]` with the
/// machine epsilon of float64, so p = 0 costs `-ln(2.2e-16)` = 36.04, not infinity.
pub const LOG_LOSS_EPS: f64 = f64::EPSILON;

/// The `out.len()` classes with the largest scores, best first. Ties go to the
/// lower class index, as `torch.argmax` and `scipy.stats.rankdata(-s, "ordinal")`
/// (ImageNet-P's ranking) break them, so the list starts with the top-1 prediction.
/// scikit-learn's `top_k_accuracy_score` breaks ties the other way (it reverses a
/// stable ascending argsort, so the higher index wins); the two differ only when
/// the true class ties with the k-th score. Scores must not be NaN.
pub fn top_k_classes<T: PartialOrd + Copy>(scores: &[T], out: &mut [u32]) {
    let k = out.len().min(scores.len());
    let mut len = 0usize;
    for (c, &s) in scores.iter().enumerate() {
        // Position: after every kept class whose score is >= s (earlier index wins ties).
        let mut at = len;
        while at > 0 && s > scores[out[at - 1] as usize] {
            at -= 1;
        }
        if at >= k {
            continue;
        }
        let end = (len + 1).min(k);
        for i in (at + 1..end).rev() {
            out[i] = out[i - 1];
        }
        out[at] = c as u32;
        len = end;
    }
    for o in out[k..].iter_mut() {
        *o = NO_CLASS;
    }
}

/// Whether `label` is among the first `k` classes of a top-k list.
pub fn top_k_hit(list: &[u32], k: usize, label: u32) -> bool {
    list[..k.min(list.len())].contains(&label)
}

/// One sample's negative log-likelihood from its true class's probability,
/// clipped as scikit-learn's `log_loss` clips it ([`LOG_LOSS_EPS`]).
pub fn nll_term(p_true: f64) -> f64 {
    -p_true.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS).ln()
}

/// One sample's Brier term, `sum_k (p_k - y_k)^2` (0..2), from its probabilities.
pub fn brier_term<T: Copy + Into<f64>>(probs: &[T], label: usize) -> f64 {
    probs
        .iter()
        .enumerate()
        .map(|(c, &p)| {
            let d = p.into() - if c == label { 1.0 } else { 0.0 };
            d * d
        })
        .sum()
}

/// `torch.linspace(0, 1, bins + 1)` in float64, computed the way torch computes
/// it (the first half counted up from 0, the second down from 1), so a confidence
/// on a boundary falls in the same bin as in torchmetrics.
pub fn bin_boundaries(bins: usize) -> Vec<f64> {
    let steps = bins + 1;
    let step = 1.0 / bins as f64;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                step * i as f64
            } else {
                1.0 - step * (steps - i - 1) as f64
            }
        })
        .collect()
}

/// Per confidence bin: samples (or bootstrap weights), summed confidence and
/// summed correctness. There are `bins + 1` slots: like torchmetrics
/// (`bucketize(right=True)` on the boundaries), a confidence of exactly 1.0 has
/// a slot of its own after the last bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    boundaries: Vec<f64>,
    pub count: Vec<f64>,
    pub confidence_sum: Vec<f64>,
    pub correct_sum: Vec<f64>,
}

impl Calibration {
    pub fn new(bins: usize) -> Calibration {
        Calibration {
            boundaries: bin_boundaries(bins),
            count: vec![0.0; bins + 1],
            confidence_sum: vec![0.0; bins + 1],
            correct_sum: vec![0.0; bins + 1],
        }
    }

    /// The slot of a confidence: the number of boundaries <= it, minus one.
    /// NaN (an invalid prediction) counts as 1.0.
    pub fn slot(&self, confidence: f64) -> usize {
        let c = if confidence.is_nan() { 1.0 } else { confidence };
        self.boundaries
            .partition_point(|&b| b <= c)
            .saturating_sub(1)
            .min(self.count.len() - 1)
    }

    /// Add one sample (`weight` times).
    pub fn add(&mut self, confidence: f64, correct: bool, weight: f64) {
        let s = self.slot(confidence);
        self.add_at(s, confidence, correct, weight);
    }

    /// Add one sample whose slot is known.
    #[inline]
    pub fn add_at(&mut self, slot: usize, confidence: f64, correct: bool, weight: f64) {
        let c = if confidence.is_nan() { 1.0 } else { confidence };
        self.count[slot] += weight;
        self.confidence_sum[slot] += c * weight;
        if correct {
            self.correct_sum[slot] += weight;
        }
    }

    /// The expected calibration error (L1): `sum_b |acc_b - conf_b| * n_b / n`,
    /// computed in torchmetrics' order (per-bin means, then proportions).
    pub fn ece(&self) -> f64 {
        let total: f64 = self.count.iter().sum();
        if total == 0.0 {
            return 0.0;
        }
        (0..self.count.len())
            .map(|b| {
                let n = self.count[b];
                if n == 0.0 {
                    return 0.0;
                }
                let (acc, conf) = (self.correct_sum[b] / n, self.confidence_sum[b] / n);
                (acc - conf).abs() * (n / total)
            })
            .sum()
    }

    /// The mean top-1 confidence.
    pub fn mean_confidence(&self) -> f64 {
        let total: f64 = self.count.iter().sum();
        if total == 0.0 {
            0.0
        } else {
            self.confidence_sum.iter().sum::<f64>() / total
        }
    }

    /// The reliability diagram's data: per slot the sample count, the mean
    /// confidence and the accuracy (0 for an empty slot).
    pub fn reliability(&self) -> Reliability {
        let mean = |s: &[f64]| {
            s.iter()
                .zip(&self.count)
                .map(|(v, &n)| if n == 0.0 { 0.0 } else { v / n })
                .collect()
        };
        Reliability {
            count: self.count.iter().map(|&c| c as u64).collect(),
            confidence: mean(&self.confidence_sum),
            accuracy: mean(&self.correct_sum),
        }
    }
}

/// A reliability diagram: for each of the [`ECE_BINS`] equal-width confidence
/// bins, plus a last slot for a confidence of exactly 1.0, the samples in it,
/// their mean confidence and their accuracy.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reliability {
    pub count: Vec<u64>,
    pub confidence: Vec<f64>,
    pub accuracy: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(scores: &[f64], k: usize) -> Vec<u32> {
        let mut out = vec![0; k];
        top_k_classes(scores, &mut out);
        out
    }

    #[test]
    fn top_k_is_best_first_with_ties_to_the_lower_class() {
        assert_eq!(top(&[0.1, 0.5, 0.2, 0.9], 3), [3, 1, 2]);
        assert_eq!(top(&[0.3, 0.3, 0.3, 0.1], 2), [0, 1]);
        assert_eq!(top(&[0.1, 0.3, 0.2, 0.3], 2), [1, 3]);
        assert_eq!(top(&[0.1, 0.3, 0.2, 0.3], 1), [1]);
        assert_eq!(top(&[0.5, 0.5], 3), [0, 1, NO_CLASS]);
        // A brute-force check: sort by (-score, index).
        let mut state = 7u64;
        for _ in 0..500 {
            let s: Vec<f64> = (0..9)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    ((state >> 60) % 5) as f64
                })
                .collect();
            let mut want: Vec<u32> = (0..9).collect();
            want.sort_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]).then(a.cmp(&b)));
            assert_eq!(top(&s, 4), want[..4], "{s:?}");
        }
    }

    #[test]
    fn nll_clips_zero_and_one_as_scikit_learn() {
        assert!((nll_term(0.0) - 36.04365338911715).abs() < 1e-12);
        assert!(nll_term(1.0) > 0.0 && nll_term(1.0) < 3e-16);
        assert!((nll_term(0.5) - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn brier_of_the_issues_example_is_0_0867() {
        let p = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]];
        let b: f64 = (0..3).map(|i| brier_term(&p[i], i)).sum::<f64>() / 3.0;
        assert!((b - 0.26 / 3.0).abs() < 1e-15, "{b}");
    }

    #[test]
    fn a_confidence_of_one_has_its_own_slot_and_boundaries_are_torchs() {
        let c = Calibration::new(15);
        assert_eq!(c.slot(1.0), 15);
        assert_eq!(c.slot(0.999_999), 14);
        assert_eq!(c.slot(0.0), 0);
        assert_eq!(c.slot(f64::NAN), 15);
        let b = bin_boundaries(15);
        assert_eq!((b[0], b[15]), (0.0, 1.0));
        assert_eq!(c.slot(b[5]), 5, "a boundary belongs to the bin above it");
    }

    #[test]
    fn ece_by_hand() {
        // Two samples in one bin (0.9, 0.9; one right): |0.5 - 0.9| = 0.4, all weight.
        let mut c = Calibration::new(15);
        c.add(0.9, true, 1.0);
        c.add(0.9, false, 1.0);
        assert!((c.ece() - 0.4).abs() < 1e-15);
        // A perfectly calibrated third sample elsewhere dilutes it: 0.4 * 2/3.
        c.add(0.3, false, 0.0);
        c.add(1.0, true, 1.0);
        assert!((c.ece() - 0.4 * 2.0 / 3.0).abs() < 1e-15);
        assert!((c.mean_confidence() - 2.8 / 3.0).abs() < 1e-15);
        assert_eq!(c.reliability().count[15], 1);
    }
}
