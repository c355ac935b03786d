//! Scoring one chunk's logits: softmax, the predicted class (first maximum, as
//! `torch.argmax`) and its probability, the true class's probability, the Brier
//! term, the top-k classes, and the total-variation distance to the same
//! sample's softmax at the reference angle. The reference angle is scored first
//! in every chunk (the driver's work order), so its softmax is at hand.

use crate::metrics::calibration::{brier_term, top_k_classes, NO_CLASS};
use crate::metrics::{total_variation, INVALID};
use crate::results::{softmax_row, Column};

/// Per model, the current chunk's softmax at the reference angle.
pub struct Scorer {
    n_classes: usize,
    probs: Vec<f32>,
    list: Vec<u32>,
    ref_probs: Vec<Vec<f32>>,
    ref_pred: Vec<Vec<i32>>,
}

impl Scorer {
    /// `top_k`: the length of each sample's top-k list (at most `n_classes`).
    pub fn new(models: usize, n_classes: usize, top_k: usize) -> Scorer {
        Scorer {
            n_classes,
            probs: vec![0.0; n_classes],
            list: vec![0; top_k],
            ref_probs: vec![Vec::new(); models],
            ref_pred: vec![Vec::new(); models],
        }
    }

    /// Score model `model`'s flat logits for the samples with `labels`, appending
    /// to `out`; `reference`: these are the reference angle's (kept for the
    /// chunk's other angles). An invalid prediction (NaN or infinite logits) gets
    /// [`INVALID`], NaN confidence, true-class probability 0, Brier term 2 and an
    /// empty top-k list. The shift is 1 when exactly one side is invalid (the
    /// largest shift) and 0 when both are.
    pub fn score(
        &mut self,
        model: usize,
        reference: bool,
        logits: &[f32],
        labels: &[u32],
        out: &mut Column,
    ) {
        let (k, n) = (self.n_classes, labels.len());
        if reference {
            self.ref_probs[model].resize(n * k, 0.0);
            self.ref_pred[model].resize(n, INVALID);
        }
        for (i, &label) in labels.iter().enumerate() {
            let row = &logits[i * k..(i + 1) * k];
            let label = label as usize;
            let (pred, confidence) = match softmax_row(row, &mut self.probs) {
                Some((p, c)) => {
                    top_k_classes(row, &mut self.list);
                    out.p_true.push(self.probs[label]);
                    out.brier.push(brier_term(&self.probs, label) as f32);
                    (p as i32, c)
                }
                None => {
                    self.list.fill(NO_CLASS);
                    out.p_true.push(0.0);
                    out.brier.push(2.0);
                    (INVALID, f32::NAN)
                }
            };
            out.top_k.extend_from_slice(&self.list);
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
            out.preds.push(pred);
            out.confidence.push(confidence);
            out.tv.push(shift);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One model's scores for two-class logits; every label is 0.
    fn scores(s: &mut Scorer, reference: bool, logits: &[f32]) -> Column {
        let mut c = Column::default();
        s.score(0, reference, logits, &vec![0; logits.len() / 2], &mut c);
        c
    }

    #[test]
    fn the_reference_shifts_nothing_and_other_angles_shift_by_total_variation() {
        let mut s = Scorer::new(1, 2, 2);
        let r = scores(&mut s, true, &[0.0, 0.0, 2.0, 0.0]);
        assert_eq!(r.preds, [0, 0], "ties go to the first class");
        assert_eq!(r.tv, [0.0, 0.0]);
        assert_eq!(r.confidence[0], 0.5);
        // Sample 0 goes from (0.5, 0.5) to (e/(1+e)·…): TV = |p0 - 0.5|.
        let a = scores(&mut s, false, &[0.0, 1.0, 2.0, 0.0]);
        let p1 = (1.0f64.exp() / (1.0 + 1.0f64.exp())) as f32;
        assert_eq!(a.preds[0], 1);
        assert!((a.tv[0] - (p1 - 0.5)).abs() < 1e-6, "{}", a.tv[0]);
        assert_eq!(a.tv[1], 0.0, "same logits as the reference");
    }

    #[test]
    fn true_class_probability_brier_term_and_top_k_come_with_each_score() {
        let mut s = Scorer::new(1, 3, 2);
        let mut c = Column::default();
        // Label 2; logits (0, ln 2, ln 2) -> p = (.2, .4, .4): a tie at the top.
        let l2 = 2f32.ln();
        s.score(0, true, &[0.0, l2, l2], &[2], &mut c);
        assert_eq!(c.preds, [1]);
        assert!((c.p_true[0] - 0.4).abs() < 1e-6);
        // (.2)^2 + (.4)^2 + (.4 - 1)^2 = .04 + .16 + .36
        assert!((c.brier[0] - 0.56).abs() < 1e-6, "{}", c.brier[0]);
        assert_eq!(c.top_k, [1, 2], "ties go to the lower class, as argmax");
    }

    #[test]
    fn an_invalid_side_is_the_largest_shift_and_two_are_none() {
        let mut s = Scorer::new(1, 2, 1);
        scores(&mut s, true, &[f32::NAN, 0.0, 1.0, 0.0]);
        let a = scores(&mut s, false, &[f32::NAN, 1.0, f32::INFINITY, 0.0]);
        assert_eq!(a.preds[0], INVALID);
        assert!(a.confidence[0].is_nan());
        assert_eq!((a.p_true[0], a.brier[0], a.top_k[0]), (0.0, 2.0, NO_CLASS));
        assert_eq!(a.tv[0], 0.0, "both invalid");
        assert_eq!(a.tv[1], 1.0, "only this side invalid");
    }

    #[test]
    fn each_model_keeps_its_own_reference() {
        let mut s = Scorer::new(2, 2, 1);
        let mut c = Column::default();
        s.score(0, true, &[5.0, 0.0], &[0], &mut c);
        s.score(1, true, &[0.0, 5.0], &[0], &mut c);
        let (mut a, mut b) = (Column::default(), Column::default());
        s.score(0, false, &[5.0, 0.0], &[0], &mut a);
        s.score(1, false, &[5.0, 0.0], &[0], &mut b);
        assert_eq!(a.tv[0], 0.0);
        assert!(b.tv[0] > 0.9);
    }
}
