//! Issue #22, item 1: the prediction cache is on by default, so every input of a
//! prediction must be in its key. One shared cache; each run changes one thing
//! against the run that filled it and must get no cached pair, and must write
//! exactly what a `--no-cache` run writes. (The device and versions are checked
//! in tests/regression.rs; a CPU-only machine cannot change the device.)

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn sweep(out: &Path, cache: &Path, model: &Path, data: &Path, extra: &[&str]) -> Value {
    rotbench()
        .env("XDG_CACHE_HOME", cache)
        .args([
            "sweep",
            "--quiet",
            "--no-report",
            "--angles",
            "0,90",
            "--model",
        ])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&fs::read(out.join("timing.json")).unwrap()).unwrap()
}

fn install(dir: &Path, bundled: &str) -> PathBuf {
    let m = root().join("models");
    fs::copy(m.join(format!("{bundled}.pt")), dir.join("m.pt")).unwrap();
    fs::copy(m.join(format!("{bundled}.json")), dir.join("m.json")).unwrap();
    dir.join("m.pt")
}

#[test]
fn changing_any_input_of_a_prediction_misses_the_cache_and_matches_a_no_cache_run() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let model = install(t.path(), "mnist-cnn");
    let data = mnist();
    let base: &[&str] = &["--limit", "100"];
    let first = sweep(&t.path().join("base"), &cache, &model, &data, base);
    assert_eq!(first["cached_pairs"], 0);
    let again = sweep(&t.path().join("again"), &cache, &model, &data, base);
    assert_eq!(
        again["cached_pairs"], 2,
        "the cache answers an unchanged run"
    );

    let variants: &[(&str, &[&str])] = &[
        (
            "interpolation",
            &["--limit", "100", "--interpolation", "nearest"],
        ),
        (
            "interpolation",
            &["--limit", "100", "--interpolation", "bicubic"],
        ),
        ("fill", &["--limit", "100", "--fill", "0.5"]),
        ("fill", &["--limit", "100", "--fill", "edge"]),
        ("mask", &["--limit", "100", "--mask-circle"]),
        ("exact", &["--limit", "100", "--exact"]),
        ("mean", &["--limit", "100", "--mean", "0.2"]),
        ("std", &["--limit", "100", "--std", "0.5"]),
        ("limit", &["--limit", "120"]),
        ("rotate-on", &["--limit", "100", "--rotate-on", "device"]),
    ];
    for (k, (what, extra)) in variants.iter().enumerate() {
        let got = t.path().join(format!("v{k}"));
        let timing = sweep(&got, &cache, &model, &data, extra);
        assert_eq!(
            timing["cached_pairs"], 0,
            "{what} {extra:?}: answered from the cache"
        );
        let fresh = t.path().join(format!("v{k}-fresh"));
        let mut e = extra.to_vec();
        e.push("--no-cache");
        sweep(&fresh, &cache, &model, &data, &e);
        assert_same_files(&got, &fresh, &EXACT_FILES);
    }

    // Other weights under the same file name and sidecar.
    install(t.path(), "mnist-cnn-aug");
    fs::copy(
        root().join("models/mnist-cnn.json"),
        t.path().join("m.json"),
    )
    .unwrap();
    let timing = sweep(&t.path().join("weights"), &cache, &model, &data, base);
    assert_eq!(timing["cached_pairs"], 0, "other model bytes");

    // Other image bytes under the same file names.
    let fx = root().join("tests/fixtures/rotation");
    let d = t.path().join("d");
    fs::create_dir_all(d.join("7")).unwrap();
    fs::copy(fx.join("mnist0.png"), d.join("7/a.png")).unwrap();
    install(t.path(), "mnist-cnn");
    assert_eq!(
        sweep(&t.path().join("d1"), &cache, &model, &d, &[])["cached_pairs"],
        0
    );
    assert_eq!(
        sweep(&t.path().join("d2"), &cache, &model, &d, &[])["cached_pairs"],
        2
    );
    fs::copy(fx.join("mnist1.png"), d.join("7/a.png")).unwrap();
    let timing = sweep(&t.path().join("d3"), &cache, &model, &d, &[]);
    assert_eq!(timing["cached_pairs"], 0, "other dataset bytes");
    sweep(
        &t.path().join("d3-fresh"),
        &cache,
        &model,
        &d,
        &["--no-cache"],
    );
    assert_same_files(
        &t.path().join("d3"),
        &t.path().join("d3-fresh"),
        &EXACT_FILES,
    );
}
