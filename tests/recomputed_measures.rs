//! Issue #22, item 6: the sweep-level measures recomputed here, from nothing but
//! `predictions.csv` and the README's formulas, equal what `per_angle.csv` and
//! `summary.json` report: consistency, error consistency (Cohen's κ), the exact
//! McNemar p against 0°, accuracy, worst-of-sweep, and the pairwise model
//! comparisons. The arithmetic below is written independently of src/metrics.rs.

mod common;
use common::*;
use std::collections::HashMap;

type Preds = HashMap<(String, String), Vec<(u64, i64, i64)>>; // (model, angle) -> (index, label, pred)

fn load(out: &std::path::Path) -> Preds {
    let mut m: Preds = HashMap::new();
    for r in read_csv(&out.join("predictions.csv")) {
        m.entry((r["model"].clone(), r["angle"].clone()))
            .or_default()
            .push((
                r["index"].parse().unwrap(),
                r["label"].parse().unwrap(),
                r["pred"].parse().unwrap(),
            ));
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// Exact two-sided McNemar: min(1, 2·P[X ≤ min(b, c)]), X ~ Binomial(b + c, ½).
fn mcnemar(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let mut pmf = 0.5f64.powi(n as i32);
    let mut cdf = 0.0;
    for k in 0..=b.min(c) {
        cdf += pmf;
        pmf *= (n - k) as f64 / (k + 1) as f64;
    }
    (2.0 * cdf).min(1.0)
}

/// Cohen's κ between two correctness vectors; 1 where it is undefined (README).
fn kappa(x: &[bool], y: &[bool]) -> f64 {
    let n = x.len() as f64;
    let p0 = x.iter().filter(|&&v| v).count() as f64 / n;
    let p1 = y.iter().filter(|&&v| v).count() as f64 / n;
    let obs = x.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / n;
    let exp = p0 * p1 + (1.0 - p0) * (1.0 - p1);
    if exp == 1.0 {
        1.0
    } else {
        (obs - exp) / (1.0 - exp)
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300),
        "{what}: recomputed {a}, reported {b}"
    );
}

#[test]
fn consistency_kappa_mcnemar_worst_of_sweep_and_model_comparisons_follow_from_predictions_csv() {
    let t = tempfile::tempdir().unwrap();
    let models = root().join("models");
    rotbench()
        .args(["sweep", "--quiet", "--no-report"])
        .args(["--model", models.join("mnist-cnn.pt").to_str().unwrap()])
        .args(["--model", models.join("mnist-cnn-aug.pt").to_str().unwrap()])
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "0,30,90,180", "--limit", "400", "--out"])
        .arg(t.path())
        .assert()
        .success();
    let preds = load(t.path());
    let sm = summary(t.path());
    let rows = read_csv(&t.path().join("per_angle.csv"));
    let angles = ["0", "30", "90", "180"];
    let correct = |m: &str, a: &str| -> Vec<bool> {
        preds[&(m.to_string(), a.to_string())]
            .iter()
            .map(|(_, l, p)| l == p)
            .collect()
    };
    let mut checked = 0;
    for m in ["mnist-cnn", "mnist-cnn-aug"] {
        let ref_preds: Vec<i64> = preds[&(m.to_string(), "0".to_string())]
            .iter()
            .map(|r| r.2)
            .collect();
        let c0 = correct(m, "0");
        for a in angles {
            let here = &preds[&(m.to_string(), a.to_string())];
            assert_eq!(here.len(), 400);
            let row = rows
                .iter()
                .find(|r| r["model"] == m && r["angle"] == a)
                .unwrap();
            let f = |k: &str| row[k].parse::<f64>().unwrap();
            let ca = correct(m, a);
            let acc = ca.iter().filter(|&&v| v).count() as f64 / 400.0;
            close(acc, f("accuracy"), &format!("{m} {a} accuracy"));
            let same = here
                .iter()
                .zip(&ref_preds)
                .filter(|(r, p0)| r.2 == **p0)
                .count() as f64
                / 400.0;
            close(same, f("consistency"), &format!("{m} {a} consistency"));
            close(
                kappa(&c0, &ca),
                f("error_consistency"),
                &format!("{m} {a} kappa"),
            );
            let b = c0.iter().zip(&ca).filter(|(x, y)| **x && !**y).count() as u64;
            let c = c0.iter().zip(&ca).filter(|(x, y)| !**x && **y).count() as u64;
            close(
                mcnemar(b, c),
                f("mcnemar_p_vs_reference"),
                &format!("{m} {a} McNemar"),
            );
            checked += 1;
        }
        let all: Vec<Vec<bool>> = angles.iter().map(|a| correct(m, a)).collect();
        let wos = (0..400).filter(|&s| all.iter().all(|v| v[s])).count();
        let ms = sm["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == m)
            .unwrap();
        assert_eq!(ms["sweep"]["worst_of_sweep_correct"], wos as u64, "{m}");
        close(
            wos as f64 / 400.0,
            ms["sweep"]["worst_of_sweep_accuracy"].as_f64().unwrap(),
            &format!("{m} worst-of-sweep"),
        );
    }
    let cmp = &sm["comparisons"][0];
    assert_eq!(
        (cmp["a"].as_str(), cmp["b"].as_str()),
        (Some("mnist-cnn"), Some("mnist-cnn-aug"))
    );
    for x in cmp["angles"].as_array().unwrap() {
        let a = x["angle"].as_f64().unwrap().to_string();
        let (ka, kb) = (correct("mnist-cnn", &a), correct("mnist-cnn-aug", &a));
        let only_a = ka.iter().zip(&kb).filter(|(p, q)| **p && !**q).count() as u64;
        let only_b = ka.iter().zip(&kb).filter(|(p, q)| !**p && **q).count() as u64;
        assert_eq!(x["only_a_correct"], only_a, "at {a}");
        assert_eq!(x["only_b_correct"], only_b, "at {a}");
        close(
            mcnemar(only_a, only_b),
            x["mcnemar_p"].as_f64().unwrap(),
            &format!("pair McNemar at {a}"),
        );
        let acc = |v: &[bool]| v.iter().filter(|&&q| q).count() as f64 / 400.0;
        close(
            acc(&ka) - acc(&kb),
            x["accuracy_diff"].as_f64().unwrap(),
            &format!("pair diff at {a}"),
        );
        checked += 1;
    }
    assert_eq!(checked, 12);
}
