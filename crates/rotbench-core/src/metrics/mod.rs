//! Classification metrics and statistics, pure and exact.
//!
//! Definitions match scikit-learn 1.9 (`precision_recall_fscore_support`,
//! `classification_report`, `confusion_matrix`) with `labels = 0..n_classes` and
//! `zero_division = 0`; the intervals match statsmodels (`proportion_confint(method="wilson")`,
//! `mcnemar(exact=True)`); error consistency matches `cohen_kappa_score`. The
//! fixture tests in `tests/reference_metrics.rs` check all of them to 1e-12.
//!
//! One extension: a prediction may be *invalid* (the model gave NaN or inf logits).
//! It counts as wrong: it is in its true class's support but in no predicted column.
//!
//! The probabilistic scores (top-k, NLL, Brier, ECE) are in [`calibration`], the
//! stability between neighbouring angles (flips, top-k ranking distance) in
//! [`stability`], and the bootstrap intervals in [`bootstrap`].

pub mod bootstrap;
pub mod calibration;
pub mod stability;

use serde::{Deserialize, Serialize};

/// Rows are true classes, columns predicted classes, as in scikit-learn. Only
/// the non-zero cells are stored, so a 1,000-class model on a few images costs
/// a few cells rather than a million counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confusion {
    pub n_classes: usize,
    /// Non-zero cells: (true, predicted) -> count, in row-major order.
    cells: std::collections::BTreeMap<(u32, u32), u64>,
    /// Per true class: valid predictions (the row's sum).
    row_sums: Vec<u64>,
    /// Per predicted class: the column's sum.
    col_sums: Vec<u64>,
    /// Per true class: samples whose prediction was invalid (non-finite logits).
    invalid: Vec<u64>,
}

/// The prediction value for "no valid prediction" (non-finite logits).
pub const INVALID: i32 = -1;

impl Confusion {
    pub fn new(n_classes: usize) -> Self {
        Confusion {
            n_classes,
            cells: Default::default(),
            row_sums: vec![0; n_classes],
            col_sums: vec![0; n_classes],
            invalid: vec![0; n_classes],
        }
    }

    /// Build from labels; `y_pred` may hold [`INVALID`]. Panics on out-of-range
    /// values: callers validate labels against the model's classes first.
    pub fn from_labels(y_true: &[u32], y_pred: &[i32], n_classes: usize) -> Self {
        let mut cm = Confusion::new(n_classes);
        for (&t, &p) in y_true.iter().zip(y_pred) {
            cm.add(t, p);
        }
        cm
    }

    #[inline]
    pub fn add(&mut self, t: u32, p: i32) {
        self.add_n(t, p, 1);
    }

    fn add_n(&mut self, t: u32, p: i32, k: u64) {
        if p < 0 {
            self.invalid[t as usize] += k;
        } else {
            *self.cells.entry((t, p as u32)).or_default() += k;
            self.row_sums[t as usize] += k;
            self.col_sums[p as usize] += k;
        }
    }

    pub fn get(&self, t: usize, p: usize) -> u64 {
        self.cells.get(&(t as u32, p as u32)).copied().unwrap_or(0)
    }

    /// The non-zero cells `(true, predicted, count)`, row by row.
    pub fn cells(&self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        self.cells
            .iter()
            .map(|(&(t, p), &k)| (t as usize, p as usize, k))
    }

    pub fn invalid(&self, t: usize) -> u64 {
        self.invalid[t]
    }

    pub fn invalid_total(&self) -> u64 {
        self.invalid.iter().sum()
    }

    /// Rows of counts (true x predicted), dense: for small class counts and tests.
    pub fn rows(&self) -> Vec<Vec<u64>> {
        let n = self.n_classes;
        let mut rows = vec![vec![0; n]; n];
        for (t, p, k) in self.cells() {
            rows[t][p] = k;
        }
        rows
    }

    pub fn merge(&mut self, other: &Confusion) {
        assert_eq!(self.n_classes, other.n_classes);
        for (t, p, k) in other.cells() {
            self.add_n(t as u32, p as i32, k);
        }
        for (a, b) in self.invalid.iter_mut().zip(&other.invalid) {
            *a += b;
        }
    }

    pub fn total(&self) -> u64 {
        self.row_sums.iter().sum::<u64>() + self.invalid_total()
    }

    pub fn true_sum(&self, t: usize) -> u64 {
        self.row_sums[t] + self.invalid[t]
    }

    pub fn pred_sum(&self, p: usize) -> u64 {
        self.col_sums[p]
    }

    pub fn correct(&self) -> u64 {
        self.cells
            .iter()
            .filter(|((t, p), _)| t == p)
            .map(|(_, k)| k)
            .sum()
    }

    /// The normalised matrix, row-major and dense; an empty row/column/matrix
    /// gives zeros (scikit-learn's `nan_to_num`).
    pub fn normalized(&self, norm: Normalize) -> Vec<f64> {
        let n = self.n_classes;
        let mut out = vec![0.0; n * n];
        let total = self.row_sums.iter().sum::<u64>() as f64;
        for (t, p, k) in self.cells() {
            let d = match norm {
                Normalize::True => self.row_sums[t] as f64,
                Normalize::Pred => self.col_sums[p] as f64,
                Normalize::All => total,
            };
            out[t * n + p] = if d == 0.0 { 0.0 } else { k as f64 / d };
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Per row: the recall view.
    True,
    /// Per column: the precision view.
    Pred,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// The class index (summary.json lists only classes with samples or predictions).
    #[serde(default)]
    pub class: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Averages {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub n: u64,
    pub correct: u64,
    pub accuracy: f64,
    pub macro_avg: Averages,
    pub micro_avg: Averages,
    pub weighted_avg: Averages,
    pub per_class: Vec<ClassScores>,
    /// Classes where a precision, recall or F1 denominator was 0 and the value was set to 0.
    pub zero_division_classes: Vec<usize>,
}

fn div0(num: f64, den: f64) -> f64 {
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// numpy's `mean` sums pairwise; for our class counts a plain sum agrees to ~1e-16.
fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

pub fn report(cm: &Confusion) -> Report {
    let n = cm.n_classes;
    let tp: Vec<f64> = (0..n).map(|c| cm.get(c, c) as f64).collect();
    let true_sum: Vec<f64> = (0..n).map(|c| cm.true_sum(c) as f64).collect();
    let pred_sum: Vec<f64> = (0..n).map(|c| cm.pred_sum(c) as f64).collect();
    let mut per_class = Vec::with_capacity(n);
    let mut zero_division_classes = Vec::new();
    for c in 0..n {
        let precision = div0(tp[c], pred_sum[c]);
        let recall = div0(tp[c], true_sum[c]);
        // scikit-learn: (1 + b^2) tp / (b^2 true_sum + pred_sum), b = 1.
        let f1 = div0(2.0 * tp[c], true_sum[c] + pred_sum[c]);
        if pred_sum[c] == 0.0 || true_sum[c] == 0.0 {
            zero_division_classes.push(c);
        }
        per_class.push(ClassScores {
            class: c,
            precision,
            recall,
            f1,
            support: cm.true_sum(c),
        });
    }
    let pick = |f: fn(&ClassScores) -> f64| per_class.iter().map(f).collect::<Vec<f64>>();
    let (p, r, f) = (pick(|s| s.precision), pick(|s| s.recall), pick(|s| s.f1));
    let macro_avg = Averages {
        precision: mean(&p),
        recall: mean(&r),
        f1: mean(&f),
    };
    let wsum: f64 = true_sum.iter().sum();
    let wavg = |v: &[f64]| {
        div0(
            v.iter().zip(&true_sum).map(|(a, w)| a * w).sum::<f64>(),
            wsum,
        )
    };
    let weighted_avg = Averages {
        precision: wavg(&p),
        recall: wavg(&r),
        f1: wavg(&f),
    };
    let (tps, ts, ps) = (tp.iter().sum::<f64>(), wsum, pred_sum.iter().sum::<f64>());
    let micro_avg = Averages {
        precision: div0(tps, ps),
        recall: div0(tps, ts),
        f1: div0(2.0 * tps, ts + ps),
    };
    let total = cm.total();
    let correct = cm.correct();
    Report {
        n: total,
        correct,
        accuracy: div0(correct as f64, total as f64),
        macro_avg,
        micro_avg,
        weighted_avg,
        per_class,
        zero_division_classes,
    }
}

/// z for a two-sided 95% interval: `scipy.stats.norm.isf(0.025)`.
pub const Z95: f64 = 1.959963984540054;

/// Wilson score interval for `k` successes in `n`, as statsmodels computes it.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (k as f64, n as f64);
    let q = k / n;
    let crit2 = Z95 * Z95;
    let denom = 1.0 + crit2 / n;
    let center = (q + crit2 / (2.0 * n)) / denom;
    let dist = Z95 * (q * (1.0 - q) / n + crit2 / (4.0 * n * n)).sqrt() / denom;
    (center - dist, center + dist)
}

/// Multiply `m * 2^e` into an f64 without intermediate overflow.
fn scale2(mut m: f64, mut e: i64) -> f64 {
    while e > 500 {
        m *= 2f64.powi(500);
        e -= 500;
    }
    while e < -500 {
        m *= 2f64.powi(-500);
        e += 500;
        if m == 0.0 {
            return 0.0;
        }
    }
    m * 2f64.powi(e as i32)
}

/// P(X <= k) for X ~ Binomial(n, 1/2), computed with scaled products (no lgamma).
pub fn binom_half_cdf(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // term_k = C(n, k) / 2^n = prod_{i=1..k} (n-k+i)/(2i) * 2^-(n-k), kept as m * 2^e.
    let (mut m, mut e) = (1.0f64, -((n - k) as i64));
    for i in 1..=k {
        m *= (n - k + i) as f64 / (2.0 * i as f64);
        if m > 1e150 {
            m *= 2f64.powi(-500);
            e += 500;
        }
    }
    // Sum term_k + term_{k-1} + ... with term_{i-1} = term_i * i / (n - i + 1).
    let (mut sum, mut t) = (m, m);
    let mut i = k;
    while i > 0 {
        t *= i as f64 / (n - i + 1) as f64;
        sum += t;
        if t < sum * 1e-18 {
            break;
        }
        i -= 1;
    }
    scale2(sum, e).min(1.0)
}

/// Exact two-sided McNemar test on the discordant counts `b` and `c`
/// (statsmodels `mcnemar(exact=True)`): `min(1, 2 * P(X <= min(b, c)))`, X ~ Bin(b + c, 1/2).
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    (2.0 * binom_half_cdf(b.min(c), b + c)).min(1.0)
}

/// Paired correctness counts for one sample set seen two ways (angle vs reference,
/// or model vs model): `both`, `only_a`, `only_b`, `neither` correct.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Paired {
    pub both: u64,
    pub only_a: u64,
    pub only_b: u64,
    pub neither: u64,
}

impl Paired {
    pub fn add(&mut self, a: bool, b: bool) {
        match (a, b) {
            (true, true) => self.both += 1,
            (true, false) => self.only_a += 1,
            (false, true) => self.only_b += 1,
            (false, false) => self.neither += 1,
        }
    }

    pub fn merge(&mut self, o: &Paired) {
        self.both += o.both;
        self.only_a += o.only_a;
        self.only_b += o.only_b;
        self.neither += o.neither;
    }

    pub fn n(&self) -> u64 {
        self.both + self.only_a + self.only_b + self.neither
    }

    pub fn mcnemar(&self) -> f64 {
        mcnemar_exact(self.only_a, self.only_b)
    }

    /// Cohen's kappa between the two correctness vectors (Geirhos et al. 2020's
    /// error consistency), in scikit-learn's form `1 - sum(w*cm) / sum(w*expected)`.
    /// When chance disagreement is 0 (both always right, or both always wrong)
    /// scikit-learn gives NaN; we give 1.0, since the two agree on every sample.
    pub fn kappa(&self) -> f64 {
        let n = self.n() as f64;
        if n == 0.0 {
            return 1.0;
        }
        // Rows: a wrong/right; columns: b wrong/right.
        let (r0, r1) = (
            (self.neither + self.only_b) as f64,
            (self.only_a + self.both) as f64,
        );
        let (c0, c1) = (
            (self.neither + self.only_a) as f64,
            (self.only_b + self.both) as f64,
        );
        let expected_disagree = r0 * c1 / n + r1 * c0 / n;
        let observed_disagree = (self.only_a + self.only_b) as f64;
        if expected_disagree == 0.0 {
            return 1.0;
        }
        1.0 - observed_disagree / expected_disagree
    }
}

/// Cosine similarity of the off-diagonal parts of two row-normalised confusion
/// matrices: do the two make the same kinds of mistakes? 1.0 when neither makes
/// any mistake, 0.0 when only one does.
pub fn confusion_similarity(a: &Confusion, b: &Confusion) -> f64 {
    // Sparse: only off-diagonal non-zero cells contribute, in row-major order.
    let share = |m: &Confusion, t: usize, k: u64| {
        let row = m.row_sums[t] as f64;
        if row == 0.0 {
            0.0
        } else {
            k as f64 / row
        }
    };
    let (mut dot, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (t, p, k) in a.cells().filter(|(t, p, _)| t != p) {
        let x = share(a, t, k);
        dot += x * share(b, t, b.get(t, p));
        aa += x * x;
    }
    for (t, _, k) in b.cells().filter(|(t, p, _)| t != p) {
        let y = share(b, t, k);
        bb += y * y;
    }
    match (aa == 0.0, bb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => dot / (aa.sqrt() * bb.sqrt()),
    }
}

/// Total-variation distance between two probability vectors.
pub fn total_variation(p: &[f32], q: &[f32]) -> f64 {
    0.5 * p
        .iter()
        .zip(q)
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn a_hand_computed_three_class_case() {
        // true: 0 0 1 1 2 2, pred: 0 1 1 1 0 2
        let cm = Confusion::from_labels(&[0, 0, 1, 1, 2, 2], &[0, 1, 1, 1, 0, 2], 3);
        assert_eq!(cm.rows(), vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]);
        let r = report(&cm);
        close(r.accuracy, 4.0 / 6.0);
        // class 0: tp 1, pred 2, true 2 -> p .5 r .5 f .5
        close(r.per_class[0].precision, 0.5);
        close(r.per_class[0].recall, 0.5);
        close(r.per_class[0].f1, 0.5);
        // class 1: tp 2, pred 3, true 2 -> p 2/3, r 1, f 0.8
        close(r.per_class[1].precision, 2.0 / 3.0);
        close(r.per_class[1].recall, 1.0);
        close(r.per_class[1].f1, 0.8);
        // class 2: tp 1, pred 1, true 2 -> p 1, r .5, f 2/3
        close(r.per_class[2].f1, 2.0 / 3.0);
        close(r.macro_avg.f1, (0.5 + 0.8 + 2.0 / 3.0) / 3.0);
        close(r.micro_avg.precision, 4.0 / 6.0);
        close(r.micro_avg.f1, 4.0 / 6.0);
        close(
            r.weighted_avg.recall,
            (0.5 * 2.0 + 1.0 * 2.0 + 0.5 * 2.0) / 6.0,
        );
        assert!(r.zero_division_classes.is_empty());
    }

    #[test]
    fn classes_never_seen_count_as_zero() {
        // Class 2 appears nowhere; class 1 is never predicted.
        let cm = Confusion::from_labels(&[0, 1, 1], &[0, 0, 0], 3);
        let r = report(&cm);
        assert_eq!(r.per_class[1].precision, 0.0);
        assert_eq!(r.per_class[2].f1, 0.0);
        assert_eq!(r.zero_division_classes, vec![1, 2]);
        close(r.macro_avg.precision, (1.0 / 3.0) / 3.0);
        close(r.weighted_avg.f1, (0.5 * 1.0) / 3.0);
    }

    #[test]
    fn invalid_predictions_are_wrong_and_in_no_column() {
        let cm = Confusion::from_labels(&[0, 1, 1], &[0, INVALID, 1], 2);
        let r = report(&cm);
        close(r.accuracy, 2.0 / 3.0);
        close(r.per_class[1].recall, 0.5);
        close(r.per_class[1].precision, 1.0);
        assert_eq!(cm.invalid_total(), 1);
        assert_eq!(r.per_class[1].support, 2);
    }

    #[test]
    fn normalisations_handle_empty_rows() {
        let cm = Confusion::from_labels(&[0, 0, 1], &[0, 1, 1], 3);
        let t = cm.normalized(Normalize::True);
        assert_eq!(&t[0..3], &[0.5, 0.5, 0.0]);
        assert_eq!(&t[6..9], &[0.0, 0.0, 0.0]);
        let p = cm.normalized(Normalize::Pred);
        assert_eq!(p[1], 0.5);
        let a = cm.normalized(Normalize::All);
        close(a[0], 1.0 / 3.0);
    }

    #[test]
    fn wilson_matches_a_known_value() {
        // statsmodels proportion_confint(8, 10, method="wilson")
        let (lo, hi) = wilson(8, 10);
        assert!(
            (lo - 0.4901624).abs() < 1e-6 && (hi - 0.9433178).abs() < 1e-6,
            "{lo} {hi}"
        );
        assert_eq!(wilson(0, 0), (0.0, 1.0));
    }

    #[test]
    fn mcnemar_exact_on_small_counts() {
        // 2 * P(X <= 0) for X ~ Bin(5, .5) = 2/32
        close(mcnemar_exact(0, 5), 2.0 / 32.0);
        close(mcnemar_exact(5, 0), 2.0 / 32.0);
        close(mcnemar_exact(0, 0), 1.0);
        close(mcnemar_exact(3, 3), 1.0);
        // 2 * (1 + 10 + 45) / 1024 for Bin(10), k = 2
        close(mcnemar_exact(2, 8), 2.0 * 56.0 / 1024.0);
    }

    #[test]
    fn binomial_cdf_survives_large_n() {
        let p = binom_half_cdf(10_000, 20_000);
        assert!((p - 0.502820).abs() < 1e-5, "{p}");
        assert!(binom_half_cdf(0, 5000) >= 0.0);
        close(binom_half_cdf(3, 3), 1.0);
    }

    #[test]
    fn kappa_by_hand() {
        let mut p = Paired::default();
        // a: 1 1 0 0, b: 1 0 0 0 -> po = .75, pa = .5, pb = .25, pe = .125 + .375 = .5, k = .5
        for (a, b) in [(true, true), (true, false), (false, false), (false, false)] {
            p.add(a, b);
        }
        close(p.kappa(), 0.5);
        let mut same = Paired::default();
        same.add(true, true);
        assert_eq!(same.kappa(), 1.0);
    }

    #[test]
    fn confusion_similarity_cases() {
        let a = Confusion::from_labels(&[0, 1, 1], &[1, 1, 0], 2);
        close(confusion_similarity(&a, &a), 1.0);
        let perfect = Confusion::from_labels(&[0, 1], &[0, 1], 2);
        assert_eq!(confusion_similarity(&perfect, &perfect), 1.0);
        assert_eq!(confusion_similarity(&perfect, &a), 0.0);
        let b = Confusion::from_labels(&[0, 1], &[1, 1], 2); // only 0->1 mistakes
        let c = Confusion::from_labels(&[0, 1], &[0, 0], 2); // only 1->0 mistakes
        close(confusion_similarity(&b, &c), 0.0);
    }

    #[test]
    fn total_variation_of_disjoint_is_one() {
        close(total_variation(&[1.0, 0.0], &[0.0, 1.0]), 1.0);
        close(total_variation(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
    }
}
