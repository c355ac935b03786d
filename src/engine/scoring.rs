//! Scoring one chunk's logits: softmax, the predicted class (first maximum, as
//! `torch.argmax`) and its probability, the true class's probability, the Brier
//! term, the top-k classes, and the total-variation distance to the same
//! sample's softmax at the reference angle. The reference angle is scored first
//! in every chunk (the driver's work order), so its softmax is at hand.

use crate::metrics::calibration::{brier_term, top_k_classes, NO_CLASS};
use crate::metrics::{total_variation, INVALID};
use crate::results::{softmax_row, Column};
use rotbench_core::spec::{ClassSpace, GroupRule};

/// Per model, the current chunk's softmax at the reference angle.
pub struct Scorer {
    n_classes: usize,
    /// Per model: how its outputs become scores over the `n_classes` classes.
    spaces: Vec<ClassSpace>,
    probs: Vec<f32>,
    /// A subset's logits, or a coarse map's class masses (f64).
    picked: Vec<f32>,
    mass: Vec<f64>,
    list: Vec<u32>,
    ref_probs: Vec<Vec<f32>>,
    ref_pred: Vec<Vec<i32>>,
}

impl Scorer {
    /// `spaces`: per model, how its outputs map onto the `n_classes` scored classes;
    /// `top_k`: the length of each sample's top-k list (at most `n_classes`).
    pub fn new(spaces: Vec<ClassSpace>, n_classes: usize, top_k: usize) -> Scorer {
        let models = spaces.len();
        Scorer {
            n_classes,
            spaces,
            probs: vec![0.0; n_classes],
            picked: vec![0.0; n_classes],
            mass: vec![0.0; n_classes],
            list: vec![0; top_k],
            ref_probs: vec![Vec::new(); models],
            ref_pred: vec![Vec::new(); models],
        }
    }

    /// One sample's softmax over the scored classes into `self.probs` and its top-k
    /// list into `self.list`; the predicted class and its probability, or `None`
    /// for non-finite logits. `row`: the model's logits for the sample.
    fn probabilities(&mut self, model: usize, row: &[f32]) -> Option<(usize, f32)> {
        match &self.spaces[model] {
            ClassSpace::Identity => {
                let r = softmax_row(row, &mut self.probs)?;
                top_k_classes(row, &mut self.list);
                Some(r)
            }
            ClassSpace::Subset(idx) => {
                for (p, &i) in self.picked.iter_mut().zip(idx) {
                    *p = row[i];
                }
                let r = softmax_row(&self.picked, &mut self.probs)?;
                top_k_classes(&self.picked, &mut self.list);
                Some(r)
            }
            ClassSpace::Groups(groups, rule) => {
                if row.iter().any(|v| !v.is_finite()) {
                    self.probs.iter_mut().for_each(|p| *p = f32::NAN);
                    return None;
                }
                // Softmax over the mapped classes, summed per group, in f64.
                let m = groups
                    .iter()
                    .flatten()
                    .map(|&i| row[i])
                    .fold(f32::NEG_INFINITY, f32::max) as f64;
                // Each group's share of the softmax by the map's rule (a common
                // factor, the softmax's denominator, cancels in the renormalisation).
                for (g, members) in self.mass.iter_mut().zip(groups) {
                    let e = members.iter().map(|&i| (row[i] as f64 - m).exp());
                    *g = match rule {
                        GroupRule::Sum => e.sum(),
                        GroupRule::Mean => e.sum::<f64>() / members.len() as f64,
                        GroupRule::Max => e.fold(0.0, f64::max),
                    };
                }
                let total: f64 = self.mass.iter().sum();
                for (p, g) in self.probs.iter_mut().zip(&self.mass) {
                    *p = (g / total) as f32;
                }
                top_k_classes(&self.mass, &mut self.list);
                let arg = self.list[0] as usize;
                Some((arg, self.probs[arg]))
            }
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
        let width = logits.len() / n.max(1);
        if reference {
            self.ref_probs[model].resize(n * k, 0.0);
            self.ref_pred[model].resize(n, INVALID);
        }
        for (i, &label) in labels.iter().enumerate() {
            let row = &logits[i * width..(i + 1) * width];
            let label = label as usize;
            let (pred, confidence) = match self.probabilities(model, row) {
                Some((p, c)) => {
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
        let mut s = Scorer::new(vec![ClassSpace::Identity], 2, 2);
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
        let mut s = Scorer::new(vec![ClassSpace::Identity], 3, 2);
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
    fn a_subset_restricts_the_logits_before_the_softmax_and_the_argmax() {
        // Model classes 0..4; the subset is (3, 1). Logits (9, 2, 0, 1, 5): class 0
        // and 4 would win, but only 3 and 1 are scored: softmax over (1, 2).
        let mut s = Scorer::new(vec![ClassSpace::Subset(vec![3, 1])], 2, 2);
        let mut c = Column::default();
        s.score(0, true, &[9.0, 2.0, 0.0, 1.0, 5.0], &[0], &mut c);
        let e = 1f64.exp();
        assert_eq!(c.preds, [1], "subset class 1 is model class 1");
        assert!((c.confidence[0] as f64 - e / (1.0 + e)).abs() < 1e-7);
        assert!((c.p_true[0] as f64 - 1.0 / (1.0 + e)).abs() < 1e-7);
        assert_eq!(c.top_k, [1, 0]);
    }

    #[test]
    fn a_coarse_map_sums_probabilities_over_the_mapped_classes() {
        // Hand-computed: model classes 0..4 with logits ln(1), ln(2), ln(3), ln(4), ln(10);
        // groups A = {0, 2}, B = {1, 3}; class 4 is unmapped and dropped. Masses 1 + 3 = 4
        // and 2 + 4 = 6 of 10: p = (0.4, 0.6).
        let l = |v: f32| v.ln();
        let logits = [l(1.0), l(2.0), l(3.0), l(4.0), l(10.0)];
        let mut s = Scorer::new(
            vec![ClassSpace::Groups(
                vec![vec![0, 2], vec![1, 3]],
                GroupRule::Sum,
            )],
            2,
            2,
        );
        let mut c = Column::default();
        s.score(0, true, &logits, &[0], &mut c);
        assert_eq!(c.preds, [1]);
        assert!((c.confidence[0] - 0.6).abs() < 1e-6, "{}", c.confidence[0]);
        assert!((c.p_true[0] - 0.4).abs() < 1e-6);
        // (0.4 - 1)^2 + 0.6^2
        assert!((c.brier[0] - 0.72).abs() < 1e-6);
        assert_eq!(c.top_k, [1, 0]);
        // NaN anywhere in the row is an invalid prediction, as without a map.
        let mut d = Column::default();
        s.score(0, false, &[f32::NAN, 0.0, 0.0, 0.0, 0.0], &[0], &mut d);
        assert_eq!(d.preds, [INVALID]);
    }

    /// Issue 35: `--class-map-rule mean` against a hand-computed case where the sum
    /// and the mean decide differently (a big group of small probabilities against
    /// a small group of one large one), and `max`.
    #[test]
    fn the_mean_rule_decides_what_the_sum_rule_does_not() {
        // Probabilities (softmax of the logits) 0.1 x 5 in group A = {0..4}, 0.3 and
        // 0.2 in B = {5}, C = {6}. Sum: A 0.5, B 0.3, C 0.2 -> A. Mean: A 0.1, B 0.3,
        // C 0.2 -> B, renormalised to 0.1/0.6, 0.3/0.6, 0.2/0.6. Max: the same as mean
        // here (one member each in B and C, A's largest is 0.1).
        let l = |v: f32| v.ln();
        let logits = [l(0.1), l(0.1), l(0.1), l(0.1), l(0.1), l(0.3), l(0.2)];
        let groups = vec![vec![0, 1, 2, 3, 4], vec![5], vec![6]];
        let decide = |rule| {
            let mut s = Scorer::new(vec![ClassSpace::Groups(groups.clone(), rule)], 3, 3);
            let mut c = Column::default();
            s.score(0, true, &logits, &[0], &mut c);
            (c.preds[0], c.confidence[0], c.p_true[0])
        };
        let (p, conf, _) = decide(GroupRule::Sum);
        assert_eq!(p, 0);
        assert!((conf - 0.5).abs() < 1e-6, "{conf}");
        let (p, conf, p_a) = decide(GroupRule::Mean);
        assert_eq!(p, 1, "mean picks B");
        assert!((conf - 0.5).abs() < 1e-6, "0.3 / 0.6: {conf}");
        assert!((p_a - 1.0 / 6.0).abs() < 1e-6, "0.1 / 0.6: {p_a}");
        let (p, conf, _) = decide(GroupRule::Max);
        assert_eq!(p, 1);
        assert!((conf - 0.5).abs() < 1e-6, "{conf}");
    }

    #[test]
    fn an_invalid_side_is_the_largest_shift_and_two_are_none() {
        let mut s = Scorer::new(vec![ClassSpace::Identity], 2, 1);
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
        let mut s = Scorer::new(vec![ClassSpace::Identity; 2], 2, 1);
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
