//! Issue 19: `rotbench doctor`, `rotbench demo` and one binary for CPU and CUDA,
//! on the source build (whose libtorch is the cache's CPU-only one). The wheel's
//! own checks (no torch, the wrong torch, the launcher) are `make test-wheel`'s.

mod common;
use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The libtorch folder the test binary runs on: its rpath, the cache's.
fn libtorch_lib() -> PathBuf {
    let out = std::process::Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_rotbench")])
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&out.stdout);
    let at = text.find("runpath: [").expect("build.rs sets a RUNPATH") + "runpath: [".len();
    PathBuf::from(&text[at..at + text[at..].find(']').unwrap()])
}

/// A copy of the bundle (models and MNIST) without the files named in `leave_out`.
fn bundle_copy(leave_out: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for rel in [
        "models/mnist-cnn.pt",
        "models/mnist-cnn.json",
        "models/mnist-cnn-aug.pt",
        "models/mnist-cnn-aug.json",
        "models/mnist-p4cnn.pt",
        "models/mnist-p4cnn.json",
        "datasets/mnist/t10k-images.idx3-ubyte.gz",
        "datasets/mnist/t10k-labels.idx1-ubyte.gz",
    ] {
        if leave_out.contains(&rel) {
            continue;
        }
        let to = d.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(rel), to).unwrap();
    }
    d
}

fn share(d: &Path) -> [(&'static str, &OsStr); 1] {
    [("ROTBENCH_SHARE", d.as_os_str())]
}

#[test]
fn doctor_names_the_libtorch_in_use_and_passes_a_forward_pass_on_the_cpu() {
    let r = run(&["doctor"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lib = std::fs::canonicalize(libtorch_lib()).unwrap();
    assert!(
        r.stdout
            .contains(&format!("libtorch  2.13.0 at {}", lib.display())),
        "{}",
        r.stdout
    );
    assert!(r
        .stdout
        .contains("cuda      none: the libtorch in use is a CPU-only build"));
    // The bundled CNN gets every one of the first 256 upright digits right.
    assert!(
        r.stdout.contains(
            "check     cpu     pass: mnist-cnn.pt, 256 digits upright: 256 right (100.0%)"
        ),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("all well\n"));
}

#[test]
fn doctor_asked_for_cuda_on_a_cpu_only_libtorch_exits_2_with_the_reason() {
    assert!(
        !libtorch_lib().join("libtorch_cuda.so").exists(),
        "this test needs the cache's CPU-only libtorch"
    );
    let r = run(&["doctor", "--device", "cuda"], None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--device cuda: the libtorch in use"),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("is a CPU-only build: it has no libtorch_cuda.so"));
    assert!(r.stderr.contains("pip install torch==2.13.0"));
    assert!(r.stderr.contains("or use --device cpu"));
    // The CPU is still checked and reported.
    assert!(r.stdout.contains("check     cpu     pass"));
}

/// `rotbench sweep` of the bundled model at 0 degrees on `device` into `out`.
fn sweep_on(device: &str, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["sweep", "--model", s(bundled_model()), "--data", s(mnist())];
    args.extend(["--angles", "0", "--out", s(out), "--device", device]);
    args.extend(extra);
    run(&args, None)
}

#[test]
fn a_sweep_on_cuda_with_a_cpu_only_libtorch_exits_2_before_any_work() {
    let out = tempfile::tempdir().unwrap();
    let r = sweep_on("cuda:0", out.path(), &[]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--device cuda:0: the libtorch in use"),
        "{}",
        r.stderr
    );
    assert!(names(out.path()).is_empty(), "nothing is written");
}

#[test]
fn device_auto_on_a_cpu_only_libtorch_runs_on_the_cpu() {
    let out = tempfile::tempdir().unwrap();
    let r = sweep_on(
        "auto",
        out.path(),
        &["--limit", "50", "--quiet", "--no-report"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(summary(out.path())["settings"]["device"], "cpu");
}

#[test]
fn doctor_with_a_bundled_model_missing_exits_2_naming_the_file_and_the_fix() {
    let d = bundle_copy(&["models/mnist-cnn-aug.pt"]);
    let r = run_with_env(&["doctor"], &share(d.path()));
    assert_eq!(r.code, 2);
    let missing = d.path().join("models/mnist-cnn-aug.pt");
    assert!(
        r.stderr.contains(&format!(
            "the bundled demo files are missing: {}",
            missing.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("pip install --force-reinstall"));
    assert!(r.stdout.contains("(installed, ROTBENCH_SHARE)"));
    assert!(
        !r.stdout.contains("check     cpu"),
        "no forward pass without the bundle"
    );
}

#[test]
fn doctor_on_a_libtorch_of_another_version_exits_2_naming_the_pip_command() {
    // The same libraries (hard links) in a folder whose build-version says 2.12.0:
    // doctor reads the version of the libtorch it runs on, not the one it was built for.
    let lib = std::fs::canonicalize(libtorch_lib()).unwrap();
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::create_dir(d.path().join("lib")).unwrap();
    for e in std::fs::read_dir(&lib).unwrap().flatten() {
        std::fs::hard_link(e.path(), d.path().join("lib").join(e.file_name()))
            .expect("target/ and the libtorch cache on one file system");
    }
    std::fs::write(d.path().join("build-version"), "2.12.0\n").unwrap();
    let r = run_with_env(
        &["doctor"],
        &[("LD_LIBRARY_PATH", d.path().join("lib").as_os_str())],
    );
    assert_eq!(r.code, 2, "{}", r.stdout);
    // Issue #31, case 5: the version is the one the loaded library reports (its
    // build settings), and a version file that disagrees with it is flagged.
    assert!(r.stdout.contains("libtorch  2.13.0 at"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("reports version 2.13.0, but the version file beside it says 2.12.0")
            && r.stderr
                .contains("install torch==2.13.0 (`pip install torch==2.13.0`)"),
        "{}",
        r.stderr
    );
}

#[test]
fn demo_sweeps_the_bundled_models_and_equals_the_same_sweep() {
    let d = bundle_copy(&[]);
    let out = tempfile::tempdir().unwrap();
    let demo = out.path().join("demo");
    let r = run_with_env(
        &[
            "demo",
            "--out",
            s(&demo),
            "--angles",
            "0,90",
            "--",
            "--limit",
            "300",
            "--quiet",
            "--no-report",
        ],
        &share(d.path()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let models = summary(&demo)["models"].as_array().unwrap().len();
    assert_eq!(models, 3);
    let sweep = out.path().join("sweep");
    let mut args = vec!["sweep"];
    for m in ["mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn"] {
        args.extend(["--model", s(root().join(format!("models/{m}.pt")))]);
    }
    args.extend([
        "--data",
        s(mnist()),
        "--angles",
        "0,90",
        "--limit",
        "300",
        "--quiet",
    ]);
    args.extend(["--no-report", "--out", s(&sweep)]);
    assert_eq!(run(&args, None).code, 0);
    assert_same_files(
        &demo,
        &sweep,
        &[
            "per_angle.csv",
            "per_class.csv",
            "confusion.csv",
            "predictions.csv",
        ],
    );
}

#[test]
fn demo_with_a_bad_sweep_flag_exits_2_naming_it() {
    let r = run(&["demo", "--", "--limit", "none"], None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--limit"), "{}", r.stderr);
}
