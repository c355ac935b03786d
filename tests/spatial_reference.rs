//! Issue 34: rotbench's grid and worst-of-10 against a Python transcription of
//! Engstrom et al.'s protocol (`tests/fixtures/make_spatial.py`, the bundled
//! mnist-cnn on the first 500 MNIST test digits, a 5 x 5 x 7 grid of ±3 px in
//! 1.5 px steps and ±30° in 10° steps; the fixture is committed).
//!
//! What must agree, and the documented exceptions:
//! * every sample's prediction at every grid point, except near ties (the
//!   reference's two best logits within 1e-3, listed in the fixture);
//! * grid accuracy, to those ties;
//! * worst-of-10, fed rotbench's own draws (seed 11): whether each sample
//!   survives all ten, the worst-of-10 and first-draw accuracies, and the worst
//!   draw of every sample that some draw misclassifies. For a sample that every
//!   draw gets right, the worst draw is the one of highest cross-entropy, and
//!   cross-entropies of confident draws differ in the seventh digit (rotbench
//!   ranks them by its float32 true-class probability, the reference by float64
//!   log-softmax): those picks must agree on 99% of such samples (418 of 419
//!   do), not all.
//!
//! The published code samples twice (rotate, then translate, each bilinear);
//! rotbench samples once. The fixture records the two-step transcription's grid
//! accuracy and its per-sample agreement with the one-step one (0.987), which
//! the docs quote.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

#[test]
fn the_grid_and_worst_of_10_match_the_python_transcription_of_the_published_protocol() {
    let fixture = root().join("tests/fixtures/spatial/reference.json");
    let r: Value = serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let run = run(
        &[
            "sweep",
            "--quiet",
            "--no-cache",
            "--no-report",
            "--model",
            s(bundled_model()),
            "--data",
            s(mnist()),
            "--limit",
            "500",
            "--angles=-30:31:10",
            "--translate=-3:4:1.5px",
            "--worst-of",
            "10",
            "--seed",
            "11",
            "--bootstrap",
            "0",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_csv(&out.join("predictions.csv"));
    let n = 500usize;
    let key = |a: &str, x: &str, y: &str| format!("{a} {x} {y}");
    // Grid: rotbench's predictions by point.
    let mut ours: HashMap<String, Vec<u8>> = HashMap::new();
    let mut draws: Vec<Vec<(bool, bool)>> = vec![vec![]; n];
    for row in &rows {
        let s: usize = row["index"].parse().unwrap();
        let right = row["pred"] == row["label"];
        if row["draw"].is_empty() {
            let p = ours
                .entry(key(&row["angle"], &row["dx"], &row["dy"]))
                .or_insert_with(|| vec![0; n]);
            p[s] = row["pred"].parse().unwrap();
        } else {
            draws[s].push((right, row["worst"] == "true"));
        }
    }
    let ties: HashSet<(usize, usize)> = r["near_ties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_u64().unwrap() as usize,
                v[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let num = |v: &Value| rotbench::format::format_angle(v.as_f64().unwrap());
    let mut compared = 0;
    let mut differ = vec![];
    for (pi, p) in r["points"].as_array().unwrap().iter().enumerate() {
        let k = key(&num(&p["angle"]), &num(&p["dx"]), &num(&p["dy"]));
        let mine = ours
            .get(&k)
            .unwrap_or_else(|| panic!("no point {k} in predictions.csv"));
        for (s, c) in p["preds"].as_str().unwrap().bytes().enumerate() {
            compared += 1;
            if mine[s] != c - b'0' && !ties.contains(&(pi, s)) {
                differ.push(format!("{k} sample {s}: {} vs {}", mine[s], c - b'0'));
            }
        }
    }
    assert_eq!(compared, 175 * n);
    assert!(
        differ.is_empty(),
        "{} predictions differ: {differ:?}",
        differ.len()
    );
    let sm = summary(&out);
    let sweep = &sm["models"][0]["sweep"];
    let tie_samples: HashSet<usize> = ties.iter().map(|&(_, s)| s).collect();
    let grid = sweep["grid_accuracy"].as_f64().unwrap();
    let want = r["grid_accuracy_single"].as_f64().unwrap();
    assert!(
        (grid - want).abs() <= tie_samples.len() as f64 / n as f64 + 1e-12,
        "grid accuracy {grid} vs the reference's {want}"
    );
    // Worst-of-10 on rotbench's draws.
    let w = &r["worst_of"];
    let wt: HashSet<usize> = w["near_ties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_u64().unwrap() as usize)
        .collect();
    let survived: Vec<bool> = w["all_correct"]
        .as_str()
        .unwrap()
        .bytes()
        .map(|b| b == b'1')
        .collect();
    let worst_ref: Vec<i64> = w["worst_draw"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let (mut confident, mut confident_agree) = (0, 0);
    for s in 0..n {
        assert_eq!(
            draws[s].len(),
            10,
            "sample {s} has {} draws",
            draws[s].len()
        );
        let all = draws[s].iter().all(|d| d.0);
        if wt.contains(&s) {
            continue;
        }
        assert_eq!(all, survived[s], "sample {s}: survives all ten draws");
        let mine = draws[s].iter().position(|d| d.1).map_or(-1, |d| d as i64);
        if all {
            confident += 1;
            confident_agree += (mine == worst_ref[s]) as usize;
        } else {
            assert_eq!(mine, worst_ref[s], "sample {s}: the worst draw");
        }
    }
    let wk = &sweep["worst_of_k"];
    if wt.is_empty() {
        assert_eq!(wk["accuracy"].as_f64(), w["accuracy"].as_f64());
        assert_eq!(
            wk["random_accuracy"].as_f64(),
            w["random_accuracy"].as_f64()
        );
    }
    // Measured: 418 of 419 agree.
    assert!(
        confident_agree * 100 >= confident * 99,
        "worst draw of the {confident} samples every draw gets right: only {confident_agree} agree"
    );
}
