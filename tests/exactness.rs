//! The optimised path (torch.jit.freeze + optimize_for_inference, the default)
//! against the plain TorchScript forward (`--exact`) on the bundled models: the
//! predictions must be identical. `make test` runs a prefix; `make exactness`
//! runs the full test set at every demo angle (0:360:5).

mod common;
use common::*;
use std::path::Path;

fn preds(
    model: &Path,
    limit: Option<&str>,
    angles: &str,
    exact: bool,
) -> Vec<(String, String, String, f64)> {
    let out = tempfile::tempdir().unwrap();
    let mut c = rotbench();
    c.args([
        "sweep",
        "--quiet",
        "--no-report",
        "--no-cache",
        "--angles",
        angles,
        "--model",
    ])
    .arg(model)
    .arg("--data")
    .arg(mnist())
    .arg("--out")
    .arg(out.path());
    if let Some(l) = limit {
        c.args(["--limit", l]);
    }
    if exact {
        c.arg("--exact");
    }
    c.assert().success();
    let s = summary(out.path());
    assert_eq!(
        s["settings"]["inference"],
        if exact { "exact" } else { "optimized" },
        "the report records the path"
    );
    read_csv(&out.path().join("predictions.csv"))
        .into_iter()
        .map(|r| {
            (
                r["angle"].clone(),
                r["index"].clone(),
                r["pred"].clone(),
                r["confidence"].parse().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

fn compare(limit: Option<&str>, angles: &str) {
    let mut models: Vec<_> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pt"))
        // ROTBENCH_EXACTNESS_MODELS=a,b limits the run to those model stems.
        .filter(|p| match std::env::var("ROTBENCH_EXACTNESS_MODELS") {
            Ok(list) => list
                .split(',')
                .any(|s| p.file_stem().is_some_and(|x| x == s)),
            Err(_) => true,
        })
        .collect();
    models.sort();
    assert!(!models.is_empty());
    for m in models {
        let (a, b) = (
            preds(&m, limit, angles, false),
            preds(&m, limit, angles, true),
        );
        assert_eq!(a.len(), b.len());
        let differing = a.iter().zip(&b).filter(|(x, y)| x.2 != y.2).count();
        let max_conf = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x.3 - y.3).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{}: {} predictions, {differing} differ between optimized and exact; max |confidence diff| {max_conf:.2e}",
            m.file_name().unwrap().to_string_lossy(),
            a.len()
        );
        assert_eq!(
            differing,
            0,
            "{}: optimized and exact predictions differ",
            m.display()
        );
    }
}

#[test]
fn optimized_and_exact_paths_agree_on_a_prefix_of_the_test_set() {
    compare(Some("1000"), "0:360:15");
}

#[test]
#[ignore = "full test set x 72 angles x every bundled model, both paths: run with `make exactness`"]
fn optimized_and_exact_paths_agree_on_the_full_test_set_at_every_demo_angle() {
    compare(None, "0:360:5");
}
