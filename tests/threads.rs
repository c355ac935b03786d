//! Issue 36: how a sweep uses the CPU's threads. TorchScript on the CPU splits each
//! batch over `--threads` slice threads of one libtorch thread each, and predicts
//! the same at every thread count; rotbench starts itself with a shorter OpenMP
//! spin (`GOMP_SPINCOUNT=10000`) before libgomp reads it, unless the environment
//! chose one; `timing.json` records both.

mod common;
use common::*;
use std::ffi::OsStr;
use std::path::Path;

fn timing(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("timing.json")).unwrap()).unwrap()
}

/// A small sweep of the bundled CNN into `out`, with `extra` flags and `env`.
fn sweep(out: &Path, extra: &[&str], env: &[(&str, &OsStr)]) {
    sweep_model("models/mnist-cnn.pt", out, extra, env);
}

/// A small sweep of a bundled model (a path under the repository root).
fn sweep_model(model: &str, out: &Path, extra: &[&str], env: &[(&str, &OsStr)]) {
    let mut args = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--bootstrap",
        "0",
        "--model",
        s(root().join(model)),
        "--data",
        s(mnist()),
        "--limit",
        "599",
        // Chunks of 150 and a last one of 149: slices of 64, 64 and 22 (or 21).
        "--batch-size",
        "150",
        "--angles",
        "0,45,90",
        "--out",
        s(out),
    ];
    args.extend_from_slice(extra);
    let r = run_with_env(&args, env);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_torchscript_sweep_splits_its_batches_and_predicts_the_same_at_every_thread_count() {
    let t = tempfile::tempdir().unwrap();
    let (one, three) = (t.path().join("one"), t.path().join("three"));
    sweep(&one, &["--threads", "1"], &[]);
    sweep(&three, &["--threads", "3"], &[]);
    for f in ["predictions.csv", "summary.json", "per_angle.csv"] {
        let a = std::fs::read(one.join(f)).unwrap();
        let b = std::fs::read(three.join(f)).unwrap();
        assert!(a == b, "{f} differs between --threads 1 and --threads 3");
    }
    let (t1, t3) = (timing(&one), timing(&three));
    assert_eq!(t1["slice_threads"], 0, "one thread splits nothing");
    assert_eq!(t3["slice_threads"], 3);
    assert_eq!(t3["threads"], 3);
    assert_eq!(t1["libtorch_threads"], 1);
    assert_eq!(
        t3["libtorch_threads"], 1,
        "the main thread keeps one libtorch thread when every batch is split"
    );
}

#[test]
fn a_pt2_package_runs_whole_batches_on_the_main_threads_libtorch_threads() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("pt2");
    sweep_model("models/mnist-cnn.pt2", &out, &["--threads", "2"], &[]);
    let t = timing(&out);
    assert_eq!(t["slice_threads"], 0);
    assert_eq!(t["libtorch_threads"], 2);
}

#[test]
fn rotbench_sets_a_short_openmp_spin_before_main_and_keeps_its_arguments() {
    let t = tempfile::tempdir().unwrap();
    // A space and a non-ASCII letter: the restart hands the arguments over as they were.
    let out = t.path().join("out dir é");
    sweep(&out, &[], &[]);
    assert_eq!(
        timing(&out)["openmp_wait"],
        "GOMP_SPINCOUNT=10000 (set by rotbench)"
    );
    assert!(out.join("summary.json").is_file());
}

#[test]
fn a_users_own_openmp_wait_setting_wins() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("spin"), t.path().join("policy"));
    sweep(&a, &[], &[("GOMP_SPINCOUNT", OsStr::new("300000"))]);
    assert_eq!(
        timing(&a)["openmp_wait"],
        "GOMP_SPINCOUNT=300000 (environment)"
    );
    sweep(&b, &[], &[("OMP_WAIT_POLICY", OsStr::new("passive"))]);
    assert_eq!(
        timing(&b)["openmp_wait"],
        "OMP_WAIT_POLICY=passive (environment)"
    );
}
