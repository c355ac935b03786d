//! Issue 18's metrics against their references, to 1e-12, on the fixtures that
//! `tests/fixtures/make_stability.py` generates: scikit-learn 1.9.1's
//! `top_k_accuracy_score`, `log_loss` and `brier_score_loss`; torchmetrics
//! 1.9.0's calibration error; a transcription of ImageNet-P's `flip_prob` and
//! `ranking_dist`; and `scipy.stats.bootstrap(method="percentile")` given the
//! generator's indices.

use rotbench_core::metrics::bootstrap::{self, AngleInput};
use rotbench_core::metrics::calibration::{
    brier_term, nll_term, top_k_classes, top_k_hit, Calibration, ECE_BINS,
};
use rotbench_core::metrics::stability::ranking_distance;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/stability.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("stability.json")).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f64>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(f).collect())
        .collect()
}

fn ints(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12,
        "{what}: rotbench {got} != reference {want} (diff {:e})",
        (got - want).abs()
    );
}

fn list(scores: &[f64], k: usize) -> Vec<u32> {
    let mut out = vec![0; k];
    top_k_classes(scores, &mut out);
    out
}

/// Top-1 prediction and confidence as the scorer takes them: the first maximum.
fn argmax(p: &[f64]) -> (i32, f64) {
    let c = list(p, 1)[0] as usize;
    (c as i32, p[c])
}

#[test]
fn top_k_nll_brier_and_ece_equal_scikit_learn_and_torchmetrics() {
    let fx = fixture();
    let cases = fx["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "class_never_predicted",
        "all_correct",
        "all_wrong",
        "one_hot_rows_incl_wrong",
        "ece_empty_bins",
        "ties_top_and_kth",
    ] {
        assert!(
            names.contains(&want),
            "the fixture lacks the edge case {want}"
        );
    }
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (p, y) = (matrix(&case["probs"]), ints(&case["labels"]));
        let (n, c) = (y.len(), case["n_classes"].as_u64().unwrap() as usize);
        let mean = |v: f64| v / n as f64;
        for (k, want) in case["top_k"].as_object().unwrap() {
            let k: usize = k.parse().unwrap();
            let hits = (0..n)
                .filter(|&i| top_k_hit(&list(&p[i], k), k, y[i]))
                .count();
            close(
                mean(hits as f64),
                f(want),
                &format!("{name} top-{k} (ties to the lower class)"),
            );
            if !case["has_ties"].as_bool().unwrap() {
                // Without ties, scikit-learn's own tie rule cannot matter.
                close(
                    mean(hits as f64),
                    f(&case["top_k_sklearn"][k.to_string()]),
                    &format!("{name} top-{k} vs sklearn"),
                );
            }
        }
        let nll: f64 = (0..n).map(|i| nll_term(p[i][y[i] as usize])).sum();
        close(mean(nll), f(&case["log_loss"]), &format!("{name} log_loss"));
        let brier: f64 = (0..n).map(|i| brier_term(&p[i], y[i] as usize)).sum();
        close(mean(brier), f(&case["brier"]), &format!("{name} brier"));
        let mut cal = Calibration::new(ECE_BINS);
        for i in 0..n {
            let (pred, conf) = argmax(&p[i]);
            cal.add(conf, pred == y[i] as i32, 1.0);
        }
        close(cal.ece(), f(&case["ece"]), &format!("{name} ece"));
        close(
            cal.mean_confidence(),
            f(&case["mean_confidence"]),
            &format!("{name} mean confidence"),
        );
        assert!(
            (cal.ece() - f(&case["ece_float32"])).abs() < 1e-6,
            "{name}: the public float32 function"
        );
        assert!(c > 1);
    }
}

#[test]
fn flip_probability_and_ranking_distance_equal_imagenet_p() {
    let fx = fixture();
    for seq in fx["sequences"].as_array().unwrap() {
        let name = seq["name"].as_str().unwrap();
        let k = seq["k"].as_u64().unwrap() as usize;
        let logits: Vec<Vec<Vec<f64>>> = seq["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(matrix)
            .collect();
        let frames = logits[0].len();
        let circular = seq["circular"].as_bool().unwrap();
        let pairs: Vec<(usize, usize)> = (0..frames - 1)
            .map(|i| (i, i + 1))
            .chain(circular.then_some((frames - 1, 0)))
            .collect();
        let lists: Vec<Vec<Vec<u32>>> = logits
            .iter()
            .map(|s| s.iter().map(|fr| list(fr, k)).collect())
            .collect();
        let s = lists.len() as f64;
        let (mut flips, mut dists) = (vec![], vec![]);
        for &(a, b) in &pairs {
            flips.push(lists.iter().filter(|l| l[a][0] != l[b][0]).count() as f64 / s);
            dists.push(
                lists
                    .iter()
                    .map(|l| ranking_distance(&l[a], &l[b]) as f64)
                    .sum::<f64>()
                    / s,
            );
        }
        for (i, (got, want)) in flips
            .iter()
            .zip(seq["flip_next"].as_array().unwrap())
            .enumerate()
        {
            close(*got, f(want), &format!("{name} flip_next[{i}]"));
        }
        for (i, (got, want)) in dists
            .iter()
            .zip(seq["distance_next"].as_array().unwrap())
            .enumerate()
        {
            close(*got, f(want), &format!("{name} distance_next[{i}]"));
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        close(
            mean(&flips),
            f(&seq["flip_prob"]),
            &format!("{name} flip_prob"),
        );
        close(
            mean(&dists),
            f(&seq["ranking_dist"]),
            &format!("{name} ranking_dist"),
        );
    }
}

#[test]
fn the_generator_draws_the_fixtures_indices() {
    let fx = fixture();
    for e in fx["rng"].as_array().unwrap() {
        let g = |k: &str| e[k].as_u64().unwrap();
        assert_eq!(
            bootstrap::draw(g("seed"), g("replicate"), g("draw"), g("n")),
            g("index"),
            "{e}"
        );
    }
    for b in fx["bootstrap"].as_array().unwrap() {
        let (seed, n) = (
            b["seed"].as_u64().unwrap(),
            b["labels"].as_array().unwrap().len(),
        );
        for (r, want) in b["first_indices"].as_array().unwrap().iter().enumerate() {
            let got: Vec<u32> = (0..n as u64)
                .map(|j| bootstrap::draw(seed, r as u64, j, n as u64) as u32)
                .collect();
            assert_eq!(got, ints(want), "replicate {r}");
        }
    }
}

#[test]
fn bootstrap_intervals_equal_scipys_percentile_bootstrap_on_the_same_indices() {
    let fx = fixture();
    for b in fx["bootstrap"].as_array().unwrap() {
        let name = b["name"].as_str().unwrap();
        let y = ints(&b["labels"]);
        let c = b["n_classes"].as_u64().unwrap() as usize;
        let reps = b["n_resamples"].as_u64().unwrap() as usize;
        let seed = b["seed"].as_u64().unwrap();
        let model = |key: &str| -> (Vec<i32>, Vec<f64>) {
            matrix(&b[key]).iter().map(|p| argmax(p)).unzip()
        };
        let ((pa, ca), (pb, cb)) = (model("probs_a"), model("probs_b"));
        let (reference, next) = (ints(&b["preds_ref_a"]), ints(&b["preds_next_a"]));
        let as_i32 = |v: &[u32]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
        let (reference, next) = (as_i32(&reference), as_i32(&next));
        let inputs = vec![
            vec![AngleInput {
                preds: &pa,
                reference: &reference,
                next: Some(&next),
                confidence: &ca,
            }],
            vec![AngleInput {
                preds: &pb,
                reference: &pb,
                next: None,
                confidence: &cb,
            }],
        ];
        let r = bootstrap::replicates(&inputs, &y, c, seed, reps);
        let ci = |v: Vec<f64>| bootstrap::interval(&v);
        let check = |got: [f64; 2], key: &str| {
            let want = b[key].as_array().unwrap();
            close(got[0], f(&want[0]), &format!("{name} {key} low"));
            close(got[1], f(&want[1]), &format!("{name} {key} high"));
        };
        let a = &r[0][0];
        check(ci(a.iter().map(|s| s.f1_macro).collect()), "f1_macro");
        check(ci(a.iter().map(|s| s.consistency).collect()), "consistency");
        check(ci(a.iter().map(|s| s.ece).collect()), "ece");
        check(ci(a.iter().map(|s| s.flip_next).collect()), "flip_next");
        let d = |f: fn(&bootstrap::Stats) -> f64| {
            ci(a.iter().zip(&r[1][0]).map(|(x, y)| f(x) - f(y)).collect())
        };
        check(d(|s| s.accuracy), "accuracy_diff");
        check(d(|s| s.f1_macro), "f1_macro_diff");
    }
}
