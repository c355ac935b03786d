//! The optimised path (torch.jit.freeze + optimize_for_inference, the default)
//! against the plain TorchScript forward (`--exact`) on the bundled models: the
//! predictions must be identical, row by row (same angle, same sample), and the
//! confidences within 1e-5. `make test` runs a prefix, and the full test set at
//! every demo angle (0:360:5) whenever the bundled models differ from the ones the
//! full check last passed on (`models/exactness.sha256`, which `make exactness`
//! writes after the full check passes).

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
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.0, &x.1), (&y.0, &y.1), "rows line up by (angle, index)");
        }
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
        assert!(
            max_conf < 1e-5,
            "{}: max |confidence diff| {max_conf:e}",
            m.display()
        );
    }
}

/// sha256 over the bundled models and sidecars (names and bytes, sorted by name).
fn models_hash() -> String {
    let mut files: Vec<_> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pt" || e == "json"))
        .collect();
    files.sort();
    let mut all = Vec::new();
    for f in files {
        all.extend_from_slice(f.file_name().unwrap().to_string_lossy().as_bytes());
        all.push(0);
        let bytes = std::fs::read(&f).unwrap();
        all.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        all.extend_from_slice(&bytes);
    }
    rotbench::hash::content_hash(&all)
}

const RECORD: &str = "models/exactness.sha256";

/// The first line of models/exactness.sha256: the models hash the full check passed on.
fn recorded() -> Option<String> {
    std::fs::read_to_string(root().join(RECORD))
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
}

#[test]
fn optimized_and_exact_paths_agree_on_a_prefix_of_the_test_set() {
    compare(Some("1000"), "0:360:15");
}

#[test]
fn the_full_check_runs_whenever_the_bundled_models_differ_from_the_ones_it_passed_on() {
    let now = models_hash();
    if recorded().as_deref() == Some(now.as_str()) {
        eprintln!(
            "skipped: the full exactness check passed on these models ({RECORD}); it runs again when models/ changes"
        );
        return;
    }
    eprintln!(
        "models/ changed since the full exactness check passed: running it (several minutes)"
    );
    compare(None, "0:360:5");
    eprintln!("full exactness check passed; record it with `make exactness`, or put {now} on the first line of {RECORD}");
}

#[test]
#[ignore = "full test set x 72 angles x every bundled model, both paths: run with `make exactness`"]
fn optimized_and_exact_paths_agree_on_the_full_test_set_at_every_demo_angle() {
    compare(None, "0:360:5");
    // `make exactness` records the models this passed on.
    if std::env::var_os("ROTBENCH_RECORD_EXACTNESS").is_some() {
        let text = format!(
            "{}\n# sha256 of models/*.pt and *.json (names and bytes, sorted) on which the full\n# optimized-vs-exact check (tests/exactness.rs, `make exactness`) last passed.\n",
            models_hash()
        );
        std::fs::write(root().join(RECORD), text).unwrap();
    }
}
