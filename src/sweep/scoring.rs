//! Scoring one chunk's logits: softmax, the predicted class (first maximum, as
//! `torch.argmax`) and its probability, and the total-variation distance to the
//! same sample's softmax at the reference angle. The reference angle is scored
//! first in every chunk (the driver's work order), so its softmax is at hand.

use crate::metrics::{total_variation, INVALID};
use crate::results::softmax_row;

/// Per model, the current chunk's softmax at the reference angle.
pub struct Scorer {
    n_classes: usize,
    probs: Vec<f32>,
    ref_probs: Vec<Vec<f32>>,
    ref_pred: Vec<Vec<i32>>,
}

/// One sample's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// [`INVALID`] when any logit is NaN or infinite.
    pub pred: i32,
    /// The predicted class's probability (NaN when invalid).
    pub confidence: f32,
    /// Total-variation distance to the reference angle's softmax: 1 when exactly
    /// one side is invalid (the largest shift), 0 when both are.
    pub shift: f32,
}

impl Scorer {
    pub fn new(models: usize, n_classes: usize) -> Scorer {
        Scorer {
            n_classes,
            probs: vec![0.0; n_classes],
            ref_probs: vec![Vec::new(); models],
            ref_pred: vec![Vec::new(); models],
        }
    }

    /// Score model `model`'s flat logits for `n` samples; `reference`: these are the
    /// reference angle's (kept for the chunk's other angles).
    pub fn score<'a>(
        &'a mut self,
        model: usize,
        reference: bool,
        logits: &'a [f32],
        n: usize,
    ) -> impl Iterator<Item = Score> + 'a {
        let k = self.n_classes;
        if reference {
            self.ref_probs[model].resize(n * k, 0.0);
            self.ref_pred[model].resize(n, INVALID);
        }
        (0..n).map(move |i| {
            let row = &logits[i * k..(i + 1) * k];
            let (pred, confidence) = match softmax_row(row, &mut self.probs) {
                Some((p, c)) => (p as i32, c),
                None => (INVALID, f32::NAN),
            };
            let ref_row = i * k..(i + 1) * k;
            if reference {
                self.ref_probs[model][ref_row.clone()].copy_from_slice(&self.probs);
                self.ref_pred[model][i] = pred;
            }
            let rp = self.ref_pred[model][i];
            let shift = if pred != INVALID && rp != INVALID {
                total_variation(&self.probs, &self.ref_probs[model][ref_row]) as f32
            } else if pred != rp {
                1.0
            } else {
                0.0
            };
            Score {
                pred,
                confidence,
                shift,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(s: &mut Scorer, reference: bool, logits: &[f32]) -> Vec<Score> {
        s.score(0, reference, logits, logits.len() / 2).collect()
    }

    #[test]
    fn the_reference_shifts_nothing_and_other_angles_shift_by_total_variation() {
        let mut s = Scorer::new(1, 2);
        let r = scores(&mut s, true, &[0.0, 0.0, 2.0, 0.0]);
        assert_eq!((r[0].pred, r[1].pred), (0, 0), "ties go to the first class");
        assert_eq!((r[0].shift, r[1].shift), (0.0, 0.0));
        assert_eq!(r[0].confidence, 0.5);
        // Sample 0 goes from (0.5, 0.5) to (e/(1+e)·…): TV = |p0 - 0.5|.
        let a = scores(&mut s, false, &[0.0, 1.0, 2.0, 0.0]);
        let p1 = (1.0f64.exp() / (1.0 + 1.0f64.exp())) as f32;
        assert_eq!(a[0].pred, 1);
        assert!((a[0].shift - (p1 - 0.5)).abs() < 1e-6, "{}", a[0].shift);
        assert_eq!(a[1].shift, 0.0, "same logits as the reference");
    }

    #[test]
    fn an_invalid_side_is_the_largest_shift_and_two_are_none() {
        let mut s = Scorer::new(1, 2);
        scores(&mut s, true, &[f32::NAN, 0.0, 1.0, 0.0]);
        let a = scores(&mut s, false, &[f32::NAN, 1.0, f32::INFINITY, 0.0]);
        assert_eq!(a[0].pred, INVALID);
        assert!(a[0].confidence.is_nan());
        assert_eq!(a[0].shift, 0.0, "both invalid");
        assert_eq!(a[1].shift, 1.0, "only this side invalid");
    }

    #[test]
    fn each_model_keeps_its_own_reference() {
        let mut s = Scorer::new(2, 2);
        s.score(0, true, &[5.0, 0.0], 1).for_each(drop);
        s.score(1, true, &[0.0, 5.0], 1).for_each(drop);
        let a: Vec<Score> = s.score(0, false, &[5.0, 0.0], 1).collect();
        let b: Vec<Score> = s.score(1, false, &[5.0, 0.0], 1).collect();
        assert_eq!(a[0].shift, 0.0);
        assert!(b[0].shift > 0.9);
    }
}
