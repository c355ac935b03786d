//! Issue #22, item 11: features that had no test at all. `rotbench rotate`
//! against the torchvision fixtures, `--rotate-on auto`, the `--device cuda`
//! error on a machine without CUDA, the `--input-size` and `--device` parse
//! errors, `--batch-size auto` with fewer than 2 angles, and resuming after
//! SIGINT and SIGTERM with `timing.json` counting only the work done.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

fn json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

#[test]
fn rotbench_rotate_writes_what_torchvision_does_for_the_fixture_digits() {
    let fx = root().join("tests/fixtures/rotation");
    let manifest = json(&fx.join("manifest.json"));
    let t = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for e in manifest["entries"].as_array().unwrap() {
        let input = e["input"].as_str().unwrap();
        // One digit at every fixture angle and interpolation: each call starts a process.
        if input != "mnist0.png" || !e["fill"].is_number() {
            continue;
        }
        let (interp, angle) = (e["interpolation"].as_str().unwrap(), e["angle"].to_string());
        let out = t.path().join(format!("{checked}.png"));
        let r = run(
            &[
                "rotate",
                "--angle",
                &angle,
                "--interpolation",
                interp,
                s(fx.join(input)),
                s(&out),
            ],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let got = image::open(&out).unwrap().into_luma8().into_raw();
        let want = image::open(fx.join(e["output"].as_str().unwrap()))
            .unwrap()
            .into_luma8()
            .into_raw();
        // The MNIST fixtures match torchvision exactly (tests/rotation_fidelity.rs
        // shows 0 differing pixels for every interpolation on them).
        assert!(
            got == want,
            "{input} {interp} {angle}: differs from torchvision"
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} fixtures");
}

#[test]
fn rotate_on_auto_rotates_on_the_host_when_the_model_runs_on_the_cpu() {
    let t = tempfile::tempdir().unwrap();
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--model",
            s(bundled_model()),
            "--data",
            s(mnist()),
            "--angles",
            "0,90",
            "--limit",
            "64",
            "--rotate-on",
            "auto",
            "--out",
            s(t.path()),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sm = summary(t.path());
    assert_eq!(sm["settings"]["rotate_on"], "host");
    assert_eq!(sm["settings"]["device"], "cpu");
}

#[test]
fn device_cuda_without_cuda_and_bad_device_or_input_size_values_are_errors_that_name_the_flag() {
    let t = tempfile::tempdir().unwrap();
    let base = |extra: &[&'static str]| {
        let mut a = vec![
            "sweep",
            "--quiet",
            "--model",
            s(bundled_model()),
            "--data",
            s(mnist()),
            "--angles",
            "0",
            "--limit",
            "8",
            "--out",
            s(t.path().join("o")),
        ];
        a.extend(extra);
        a
    };
    let cases: [(&[&str], &str); 6] = [
        (&["--device", "cuda"], "--device cuda: the libtorch in use"),
        (&["--device", "cuda:7"], "--device cuda:7"),
        (&["--device", "cuda:x"], "--device cuda:x: expected cuda:N"),
        (
            &["--device", "tpu"],
            "--device tpu: use cpu, cuda, cuda:N or auto",
        ),
        (&["--input-size", "1x28"], "--input-size"),
        (&["--input-size", "0x28x28"], "--input-size"),
    ];
    for (extra, want) in cases {
        let r = run(&base(extra), None);
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        let first = r.stderr.lines().next().unwrap_or("");
        assert!(first.contains(want), "{extra:?}: first line `{first}`");
    }
    assert!(!t.path().join("o/summary.json").exists());
}

/// A model that runs whole batches (a .pt2 package; TorchScript's sliced batches
/// take the largest size untimed, tests/cli_sweep.rs).
#[test]
fn batch_size_auto_with_one_angle_uses_256() {
    let t = tempfile::tempdir().unwrap();
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--no-cache",
            "--model",
            s(root().join("models/mnist-cnn.pt2")),
            "--data",
            s(mnist()),
            "--angles",
            "0",
            "--limit",
            "600",
            "--out",
            s(t.path()),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let timing = json(&t.path().join("timing.json"));
    assert_eq!(timing["batch_size"], 256, "{timing}");
    assert_eq!(
        timing["batch_timings"].as_array().unwrap().len(),
        0,
        "nothing timed"
    );
    assert_eq!(summary(t.path())["settings"]["batch_size"], "auto");
}

/// Start a sweep, stop it with `signal` once a few batches are checkpointed,
/// resume it, and check the resumed run against an uninterrupted one.
fn signal_then_resume(signal: &str) {
    let t = tempfile::tempdir().unwrap();
    let (out, whole) = (t.path().join("o"), t.path().join("whole"));
    let args = |out: &Path| {
        vec![
            "sweep",
            "--quiet",
            "--no-report",
            "--no-cache",
            "--model",
            s(bundled_model()),
            "--data",
            s(mnist()),
            "--angles",
            "0:360:45",
            "--limit",
            "2000",
            "--batch-size",
            "100",
            "--out",
            s(out),
        ]
    };
    let mut child = running_with_checkpoint(&args(&out), &t.path().join("cache"), &out, 15_000);
    let k = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "{signal} stops the run");
    assert!(
        !out.join("summary.json").exists(),
        "no results from a stopped run"
    );
    let mut a = args(&out);
    a.push("--resume");
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let timing = json(&out.join("timing.json"));
    let resumed = timing["resumed_samples"].as_u64().unwrap();
    assert!(
        resumed > 0 && resumed % 100 == 0,
        "whole batches resumed: {timing}"
    );
    // 8 angles, one model: only the samples left were evaluated.
    assert_eq!(
        timing["evaluations"].as_u64().unwrap(),
        (2000 - resumed) * 8,
        "{timing}"
    );
    let r = run(&args(&whole), None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_same_files(&out, &whole, &EXACT_FILES);
}

#[test]
fn a_run_stopped_by_sigint_resumes_and_counts_only_the_samples_left() {
    signal_then_resume("-INT");
}

#[test]
fn a_run_stopped_by_sigterm_resumes_and_counts_only_the_samples_left() {
    signal_then_resume("-TERM");
}
