//! Issue #31: where rotbench must decide what the user's input means, it checks
//! the decision when it can (exit 2 when the check fails), asks when it cannot,
//! and records what it decided. One test per case of the issue, named as a
//! sentence; each failed on the commit before the fix (the closing note says how).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// `rotbench sweep` on MNIST with these models and extra flags; must succeed.
fn sweep_ok(models: &[&Path], out: &Path, extra: &[&str], cache: Option<&Path>) -> Run {
    let mut a = vec!["sweep", "--quiet", "--no-report", "--data", s(mnist()), "--out", s(out)];
    for m in models {
        a.extend(["--model", s(m)]);
    }
    a.extend(extra);
    let r = run(&a, cache);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

// --- Case 2: a baseline gate passes when models or angles drop out of the run -----

#[test]
fn a_baseline_gate_fails_when_a_model_or_an_angle_of_the_baseline_drops_out_of_the_run() {
    let t = tempfile::tempdir().unwrap();
    let (cnn, aug) = (model("mnist-cnn.pt"), model("mnist-cnn-aug.pt"));
    let bl = t.path().join("bl");
    let g1 = t.path().join("g1");
    sweep_ok(
        &[&cnn, &aug],
        &g1,
        &["--limit", "300", "--angles", "0,90", "--save-baseline", "main", "--baseline-dir", s(&bl)],
        None,
    );
    let g3 = t.path().join("g3");
    sweep_ok(&[&cnn], &g3, &["--limit", "300", "--angles", "0"], None);
    let (junit, md) = (t.path().join("j.xml"), t.path().join("g.md"));
    let gate = |extra: &[&str]| {
        let mut a = vec![
            "gate", "--results", s(g3.join("summary.json")), "--baseline", "main",
            "--baseline-dir", s(&bl), "--junit", s(&junit), "--markdown", s(&md),
        ];
        a.extend(extra);
        run(&a, None)
    };
    let g = gate(&[]);
    assert_eq!(g.code, 1, "the issue's repro passed with exit 0 before the fix");
    assert!(
        g.stdout.contains("model mnist-cnn-aug is in baseline main but not in these results")
            && g.stdout.contains("not in these results (90°)"),
        "{}",
        g.stdout
    );
    for file in [&junit, &md] {
        let text = fs::read_to_string(file).unwrap();
        assert!(text.contains("mnist-cnn-aug") && text.contains("not in these results"), "{text}");
    }
    assert!(fs::read_to_string(&junit).unwrap().contains("<failure"));
    // Said to be expected: a flag, or the TOML key.
    assert_eq!(gate(&["--allow-missing"]).code, 0);
    let cfg = t.path().join("rotbench.toml");
    fs::write(&cfg, "[gate]\nallow_missing = true\n").unwrap();
    assert_eq!(gate(&["--config", s(&cfg)]).code, 0);
}

// --- Case 7: a run killed while writing its results cannot be resumed --------------

fn resume_args(out: &Path) -> Vec<&'static str> {
    vec![
        "sweep", "--quiet", "--no-report", "--model", s(model("mnist-cnn.pt")), "--data",
        s(mnist()), "--angles", "0:360:90", "--limit", "3000", "--batch-size", "100", "--out",
        s(out), "--resume",
    ]
}

#[test]
fn a_run_resumes_to_the_same_results_after_its_cache_was_filled_while_it_was_stopped() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    // Stop a run after some batches (its checkpoint holds them)...
    let mut child = running_with_checkpoint(&resume_args(&a), &cache, &a, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // ...then another job with the same arguments fills the shared cache (as the
    // stopped run itself does when it is killed between the cache write and the
    // checkpoint's removal).
    let b = t.path().join("b");
    let r = run(&resume_args(&b), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Before the fix: exit 2, "made with different arguments or inputs".
    let r = run(&resume_args(&a), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("different arguments"), "{}", r.stderr);
    assert_same_files(&a, &b, &EXACT_FILES);
}

#[test]
fn a_checkpoint_whose_cache_entries_are_gone_starts_over_with_a_note() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    // 0° and 90° are cached; the stopped run computes 180° and 270° (and 0°, its reference).
    let warm = t.path().join("warm");
    let mut w = resume_args(&warm);
    let at = w.iter().position(|a| *a == "0:360:90").unwrap();
    w[at] = "0,90";
    assert_eq!(run(&w, Some(&cache)).code, 0);
    let a = t.path().join("a");
    let mut child = running_with_checkpoint(&resume_args(&a), &cache, &a, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_dir_all(&cache).unwrap();
    let r = run(&resume_args(&a), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("cache entries that are gone"), "{}", r.stderr);
    let fresh = t.path().join("fresh");
    assert_eq!(run(&resume_args(&fresh), Some(&t.path().join("c2"))).code, 0);
    assert_same_files(&a, &fresh, &EXACT_FILES);
}

// --- Case 8: smaller ones -----------------------------------------------------------

#[test]
fn a_byte_order_mark_at_the_start_of_a_subset_file_is_not_part_of_the_first_class() {
    let t = tempfile::tempdir().unwrap();
    let sub = t.path().join("sub.txt");
    fs::write(&sub, "\u{feff}3\n7\n").unwrap();
    let out = t.path().join("o");
    sweep_ok(
        &[&model("mnist-cnn.pt")],
        &out,
        &["--limit", "200", "--angles", "0", "--class-subset", s(&sub), "--drop-unscored"],
        None,
    );
    let classes = &summary(&out)["models"][0]["spec"]["classes"];
    assert_eq!(classes, &serde_json::json!(["3", "7"]));
}

#[test]
fn a_shard_with_batch_size_auto_cuts_batches_by_the_64_mib_rule_of_its_input() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("s0");
    let fx = root().join("tests/fixtures");
    let r = run(
        &[
            "sweep", "--quiet", "--no-report", "--model", s(fx.join("models/tiny224.pt")),
            "--data", s(fx.join("jpeg224")), "--angles", "0", "--limit", "130", "--shard", "0/2",
            "--out", s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("shard.json")).unwrap()).unwrap();
    // 3x224x224 float32 is 588 KB an image: 64 MiB holds 111, so auto means 64 (was 256).
    assert_eq!(manifest["shard"]["batch_size"], 64, "{manifest}");
    assert_eq!(manifest["end"], 64, "the first of two shards of 130 samples: one batch");
}
