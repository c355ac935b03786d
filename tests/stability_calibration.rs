//! Issue 18: stability, calibration and uncertainty at every angle, end to end
//! with real libtorch and MNIST. The metric definitions are checked against their
//! references in `crates/rotbench-core/tests/reference_stability.rs`; here: the
//! bootstrap intervals do not depend on how the predictions were produced, the
//! new columns hold what they say, and the gate keys work from flags and TOML.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn model(name: &str) -> &'static str {
    s(root().join("models").join(name))
}

/// A two-model sweep over the first 400 samples at `angles` with 200 bootstrap
/// replicates, plus `extra`.
fn sweep_args(out: &Path, angles: &'static str, extra: &[&'static str]) -> Vec<&'static str> {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--model",
        model("mnist-cnn.pt"),
        "--model",
        model("mnist-cnn-aug.pt"),
        "--data",
        s(mnist()),
        "--angles",
        angles,
        "--limit",
        "400",
        "--out",
        s(out),
    ];
    if !extra.contains(&"--bootstrap") {
        a.extend(["--bootstrap", "200"]);
    }
    a.extend_from_slice(extra);
    a
}

fn sweep_ok(out: &Path, extra: &[&'static str], cache: &Path) {
    sweep_at(out, "0:360:45", extra, cache)
}

fn sweep_at(out: &Path, angles: &'static str, extra: &[&'static str], cache: &Path) {
    let r = run(&sweep_args(out, angles, extra), Some(cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// What the bootstrap produced: every interval of every model and angle, the
/// sweep-level flip-probability interval and the paired intervals.
fn intervals(dir: &Path) -> Value {
    let s = summary(dir);
    let models: Vec<Value> = s["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let angles: Vec<Value> = m["angles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    serde_json::json!([
                        a["f1_macro_ci"],
                        a["consistency_ci"],
                        a["ece_ci"],
                        a["flip_next_ci"]
                    ])
                })
                .collect();
            serde_json::json!({"angles": angles, "flip": m["sweep"]["flip_probability_ci"]})
        })
        .collect();
    let pairs: Vec<Value> = s["comparisons"][0]["angles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| serde_json::json!([a["accuracy_diff_ci"], a["f1_macro_diff_ci"]]))
        .collect();
    serde_json::json!({"models": models, "pairs": pairs})
}

#[test]
fn bootstrap_intervals_are_identical_across_threads_batches_resume_cache_hits_and_shards() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let dir = |n: &str| t.path().join(n);
    sweep_ok(
        &dir("base"),
        &["--threads", "2", "--batch-size", "64", "--no-cache"],
        &cache,
    );
    let base = intervals(&dir("base"));
    assert!(base["models"][0]["angles"][1][0].is_array(), "{base}");
    assert!(base["pairs"][1][0].is_array(), "paired intervals: {base}");
    let same_per_angle = |other: &str| {
        assert_same_files(
            &dir("base"),
            &dir(other),
            &["per_angle.csv", "predictions.csv"],
        );
        assert_eq!(intervals(&dir(other)), base, "{other}");
    };
    // Another thread count: the same bytes.
    sweep_ok(
        &dir("threads"),
        &["--threads", "1", "--batch-size", "64", "--no-cache"],
        &cache,
    );
    same_per_angle("threads");
    // Another batch size: libtorch's kernels change the logits' last bits with the
    // batch (prob_shift shows it too), so the figures made of probabilities move by
    // about 1e-9; the intervals made of predictions do not move at all.
    sweep_ok(&dir("batch"), &["--batch-size", "37", "--no-cache"], &cache);
    assert_same_files(&dir("base"), &dir("batch"), &["confusion.csv"]);
    let other = intervals(&dir("batch"));
    assert_eq!(other["pairs"], base["pairs"]);
    for m in 0..2 {
        for a in 0..8 {
            let (x, y) = (
                &base["models"][m]["angles"][a],
                &other["models"][m]["angles"][a],
            );
            for i in [0, 1, 3] {
                assert_eq!(x[i], y[i], "model {m} angle {a} interval {i}");
            }
            for j in 0..2 {
                let (p, q) = (x[2][j].as_f64().unwrap(), y[2][j].as_f64().unwrap());
                assert!((p - q).abs() < 1e-7, "ECE interval {p} vs {q}");
            }
        }
        assert_eq!(base["models"][m]["flip"], other["models"][m]["flip"]);
    }
    // Filling the cache, then a run that reads every prediction from it.
    sweep_ok(&dir("fill"), &[], &cache);
    sweep_ok(&dir("hit"), &[], &cache);
    same_per_angle("fill");
    same_per_angle("hit");
    // Two shards, merged.
    for i in ["0/2", "1/2"] {
        let out = dir(&format!("shard{}", &i[..1]));
        sweep_ok(&out, &["--shard", i, "--no-cache"], &cache);
    }
    let merged = dir("merged");
    merge_ok(&merged, &[&dir("shard0"), &dir("shard1")], Some(&cache));
    same_per_angle("merged");
    // An interrupted run, resumed.
    let resumed = dir("resumed");
    let mut args = sweep_args(&resumed, "0:360:45", &["--batch-size", "64", "--no-cache"]);
    let mut child = running_with_checkpoint(&args, &cache, &resumed, 4_000);
    child.kill().ok();
    child.wait().unwrap();
    args.push("--resume");
    let r = run(&args, Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    same_per_angle("resumed");
    // Another seed draws other samples, and --bootstrap 0 draws none.
    sweep_ok(&dir("seed"), &["--seed", "1", "--no-cache"], &cache);
    assert_ne!(intervals(&dir("seed")), base);
    sweep_ok(&dir("none"), &["--bootstrap", "0", "--no-cache"], &cache);
    let rows = read_csv(&dir("none").join("per_angle.csv"));
    assert!(rows
        .iter()
        .all(|r| r["f1_macro_ci_low"].is_empty() && r["ece_ci_high"].is_empty()));
    assert!(summary(&dir("none"))["models"][0]["angles"][1]
        .get("ece_ci")
        .is_none());
}

#[test]
fn per_sample_columns_hold_the_true_class_probability_brier_term_and_top_k_list() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    sweep_at(
        &out,
        "0,90",
        &["--top-k", "3", "--no-cache"],
        &t.path().join("c"),
    );
    let rows = read_csv(&out.join("predictions.csv"));
    let per_angle = read_csv(&out.join("per_angle.csv"));
    for (model, angle) in [("mnist-cnn", "0"), ("mnist-cnn-aug", "90")] {
        let mine: Vec<_> = rows
            .iter()
            .filter(|r| r["model"] == model && r["angle"] == angle)
            .collect();
        assert_eq!(mine.len(), 400);
        let (mut top3, mut nll, mut brier) = (0.0, 0.0, 0.0);
        for r in &mine {
            let list: Vec<&str> = r["top_k"].split(' ').collect();
            assert_eq!(list.len(), 3, "{r:?}");
            assert_eq!(list[0], r["pred"], "the list starts with the prediction");
            top3 += list.contains(&r["label"].as_str()) as u8 as f64;
            let p: f32 = r["p_true"].parse().unwrap();
            let b: f32 = r["brier"].parse().unwrap();
            assert!((0.0..=1.0).contains(&p) && (0.0..=2.0).contains(&b));
            // Brier = (1 - p_true)^2 + sum of the other classes' p^2, and that sum is
            // at most (1 - p_true)^2.
            let miss = (1.0 - p as f64).powi(2);
            assert!(
                (miss - 1e-6..=2.0 * miss + 1e-6).contains(&(b as f64)),
                "brier {b} for p_true {p}: {r:?}"
            );
            if r["pred"] == r["label"] {
                let c: f32 = r["confidence"].parse().unwrap();
                assert_eq!(
                    p, c,
                    "a right answer's confidence is its true-class probability"
                );
            }
            nll += -(p as f64).clamp(f64::EPSILON, 1.0 - f64::EPSILON).ln();
            brier += b as f64;
        }
        let row = per_angle
            .iter()
            .find(|r| r["model"] == model && r["angle"] == angle)
            .unwrap();
        let close = |col: &str, v: f64| {
            let got: f64 = row[col].parse().unwrap();
            assert!(
                (got - v).abs() < 1e-12,
                "{model} {angle} {col}: {got} vs {v}"
            );
        };
        close("top3_accuracy", top3 / 400.0);
        close("nll", nll / 400.0);
        close("brier", brier / 400.0);
    }
    // 0,90 is not a full turn: the last angle has no next.
    let last = per_angle.iter().find(|r| r["angle"] == "90").unwrap();
    assert!(last["flip_next"].is_empty() && last["top3_distance_next"].is_empty());
    let first = per_angle.iter().find(|r| r["angle"] == "0").unwrap();
    assert!(!first["flip_next"].is_empty());
}

#[test]
fn top_k_figures_are_left_out_when_the_model_has_k_classes_or_fewer() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    sweep_at(
        &out,
        "0:360:90",
        &["--top-k", "10", "--no-cache"],
        &t.path().join("c"),
    );
    let header = fs::read_to_string(out.join("per_angle.csv")).unwrap();
    let header = header.lines().next().unwrap();
    assert!(
        !header.contains("top10") && header.contains(",ece,"),
        "{header}"
    );
    assert!(summary(&out)["models"][0]["angles"][0]
        .get("top_k_accuracy")
        .is_none());
    // ... and the gate says why it cannot check top-k accuracy.
    let r = run(
        &["gate", "--results", s(&out), "--min-top-k-accuracy", "0.9"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("smaller --top-k"), "{}", r.stderr);
}

#[test]
fn the_gate_checks_ece_flip_probability_and_top_k_accuracy_from_flags_and_toml() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    sweep_ok(&out, &["--no-cache"], &t.path().join("c"));
    let s0 = summary(&out);
    let cnn = &s0["models"][0];
    let fp = cnn["sweep"]["flip_probability"].as_f64().unwrap();
    let worst_ece = cnn["sweep"]["worst_ece"].as_f64().unwrap();
    assert!(
        fp > 0.05 && worst_ece > 0.01,
        "the plain CNN flips and is miscalibrated when rotated: {fp} {worst_ece}"
    );
    let gate = |args: &[&str]| {
        let mut a = vec!["gate", "--results", s(&out), "--model", "mnist-cnn"];
        a.extend_from_slice(args);
        run(&a, None)
    };
    // Thresholds on either side of the measured values.
    let above = |v: f64| format!("{}", v + 1e-6);
    let below = |v: f64| format!("{}", v - 1e-6);
    assert_eq!(gate(&["--max-flip-probability", s(above(fp))]).code, 0);
    let r = gate(&["--max-flip-probability", s(below(fp))]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("max-flip-probability") && r.stdout.contains("95% bootstrap interval"),
        "{}",
        r.stdout
    );
    assert_eq!(gate(&["--max-ece", s(above(worst_ece))]).code, 0);
    let r = gate(&["--max-ece", s(below(worst_ece))]);
    assert_eq!(r.code, 1);
    let worst_angle = cnn["sweep"]["worst_ece_angle"].as_f64().unwrap();
    assert!(
        r.stdout.contains(&format!("{}°", worst_angle)),
        "names the failing angle: {}",
        r.stdout
    );
    let low_top5 = cnn["angles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["top_k_accuracy"].as_f64().unwrap())
        .fold(1.0, f64::min);
    assert_eq!(gate(&["--min-top-k-accuracy", s(below(low_top5))]).code, 0);
    assert_eq!(gate(&["--min-top-k-accuracy", s(above(low_top5))]).code, 1);
    // The same keys in rotbench.toml, with JUnit and Markdown written.
    let cfg = t.path().join("rotbench.toml");
    fs::write(
        &cfg,
        format!(
            "[gate]\nmax_ece = {}\nmax_flip_probability = {}\nmin_top_k_accuracy = {}\nmodels = \"mnist-cnn\"\n",
            below(worst_ece),
            above(fp),
            below(low_top5)
        ),
    )
    .unwrap();
    let (junit, md) = (t.path().join("g.xml"), t.path().join("g.md"));
    let r = run(
        &[
            "gate",
            "--results",
            s(&out),
            "--config",
            s(&cfg),
            "--junit",
            s(&junit),
            "--markdown",
            s(&md),
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let (junit, md) = (
        fs::read_to_string(junit).unwrap(),
        fs::read_to_string(md).unwrap(),
    );
    for key in ["max-ece", "max-flip-probability", "min-top5-accuracy"] {
        assert!(
            junit.contains(key) && md.contains(key),
            "{key} in JUnit and Markdown"
        );
    }
    assert_eq!(
        junit.matches("<failure").count(),
        1,
        "only max-ece fails: {junit}"
    );
    // Out-of-range values name the key.
    fs::write(&cfg, "[gate]\nmax_ece = 1.5\n").unwrap();
    let r = run(&["gate", "--results", s(&out), "--config", s(&cfg)], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("[gate] max_ece"), "{}", r.stderr);
}
