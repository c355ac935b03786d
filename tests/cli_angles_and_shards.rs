//! Issue #16, "Sound seams", end to end: extreme and non-finite angles at every
//! door angles come in by (item 6), and `--shard auto` under Slurm arrays that do
//! not start at 0 or that step (item 8).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

fn no_panic(stderr: &str) {
    for bad in ["panicked", "internal error", "stack backtrace"] {
        assert!(!stderr.contains(bad), "stderr shows `{bad}`:\n{stderr}");
    }
}

/// `rotbench rotate --angle ANGLE` of the MNIST fixture; the PNG's bytes.
fn rotate(angle: &str, dir: &Path) -> Vec<u8> {
    let out = dir.join(format!("r{}.png", angle.replace(['-', '.'], "_")));
    let a = rotbench()
        .args(["rotate", "--angle", angle])
        .arg(root().join("tests/fixtures/rotation/mnist0.png"))
        .arg(&out)
        .assert();
    no_panic(&stderr_of(&a));
    a.success();
    fs::read(&out).unwrap()
}

#[test]
fn rotate_turns_an_extreme_angle_as_its_remainder_mod_360_without_panicking() {
    // Issue #16 item 6: `--angle 1e300` panicked with an index out of bounds.
    let d = tempfile::tempdir().unwrap();
    // 7e299 % 360 = 72 and 1e300 % 360 = 0, exactly (f64 remainders are exact).
    assert_eq!(rotate("7e299", d.path()), rotate("72", d.path()));
    assert_eq!(rotate("1e300", d.path()), rotate("0", d.path()));
    assert_eq!(rotate("-1e300", d.path()), rotate("0", d.path()));
    assert_eq!(rotate("3600000030", d.path()), rotate("30", d.path()));
    assert_eq!(rotate("-1e-300", d.path()), rotate("0", d.path()));
}

fn sweep_cmd(out: &Path, angles: &str, extra: &[&str]) -> assert_cmd::Command {
    let mut c = rotbench();
    c.args(["sweep", "--quiet", "--no-report", "--no-cache", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args(["--angles", angles, "--limit", "40", "--batch-size", "10"])
        .arg("--out")
        .arg(out)
        .args(extra);
    c
}

#[test]
fn non_finite_angles_are_refused_with_exit_2_by_rotate_sweep_and_gate() {
    let d = tempfile::tempdir().unwrap();
    let img = root().join("tests/fixtures/rotation/mnist0.png");
    for bad in ["inf", "-inf", "NaN", "1e400", "0:1e400:1"] {
        let a = rotbench()
            .args(["rotate", "--angle", bad])
            .arg(&img)
            .arg(d.path().join("x.png"))
            .assert()
            .code(2);
        let e = stderr_of(&a);
        no_panic(&e);
        assert!(e.contains("--angle") && e.contains("finite"), "{bad}: {e}");
        let spec = if bad.contains(':') {
            bad.to_string()
        } else {
            format!("0,{bad}")
        };
        let a = sweep_cmd(&d.path().join("s"), &spec, &[]).assert().code(2);
        let e = stderr_of(&a);
        no_panic(&e);
        assert!(e.contains("--angles") && e.contains("finite"), "{bad}: {e}");
    }
    assert!(!d.path().join("x.png").exists() && !d.path().join("s").exists());
    // gate --angles goes through the same parser.
    let out = d.path().join("ok");
    sweep_cmd(&out, "0,90", &[]).assert().success();
    let a = rotbench()
        .args([
            "gate",
            "--min-accuracy",
            "0",
            "--angles",
            "1e400",
            "--results",
        ])
        .arg(&out)
        .assert()
        .code(2);
    let e = stderr_of(&a);
    no_panic(&e);
    assert!(e.contains("angles") && e.contains("finite"), "{e}");
}

#[test]
fn a_sweep_labels_an_extreme_angle_as_written_and_scores_it_as_its_remainder() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("o");
    let a = sweep_cmd(&out, "72,7e299", &[]).assert();
    no_panic(&stderr_of(&a));
    a.success();
    let rows = read_csv(&out.join("per_angle.csv"));
    let at = |label: &str| {
        rows.iter()
            .find(|r| r["angle"] == label)
            .unwrap_or_else(|| panic!("no row for angle {label}: {rows:?}"))
            .clone()
    };
    let (a72, huge) = (at("72"), at("7e299"));
    for col in ["accuracy", "f1_macro", "consistency", "prob_shift"] {
        assert_eq!(a72[col], huge[col], "{col}");
    }
}

/// `sweep --shard auto` as task `id` of a Slurm array; the shard folder.
fn slurm_task(dir: &Path, array: &str, id: u32, min: u32, step: u32, count: u32) -> PathBuf {
    let out = dir.join(format!("{array}-{id}"));
    let a = sweep_cmd(&out, "0,90", &["--shard", "auto"])
        .env("SLURM_ARRAY_TASK_ID", id.to_string())
        .env("SLURM_ARRAY_TASK_MIN", min.to_string())
        .env(
            "SLURM_ARRAY_TASK_MAX",
            (min + step * (count - 1)).to_string(),
        )
        .env("SLURM_ARRAY_TASK_STEP", step.to_string())
        .env("SLURM_ARRAY_TASK_COUNT", count.to_string())
        .assert();
    no_panic(&stderr_of(&a));
    a.success();
    out
}

#[test]
fn shard_auto_numbers_slurm_arrays_0_3_1_4_and_0_6_step_2_from_0_and_they_merge() {
    // Issue #16 item 8: `--array=1-4` lost shard 0 and failed task 4.
    let d = tempfile::tempdir().unwrap();
    let single = d.path().join("single");
    sweep_cmd(&single, "0,90", &[]).assert().success();
    for (array, min, step) in [("0-3", 0, 1), ("1-4", 1, 1), ("0-6:2", 0, 2)] {
        let mut dirs = Vec::new();
        for k in 0..4 {
            let id = min + k * step;
            let out = slurm_task(d.path(), array, id, min, step, 4);
            let m: serde_json::Value =
                serde_json::from_slice(&fs::read(out.join("shard.json")).unwrap()).unwrap();
            assert_eq!(m["shard"]["index"], k, "array {array}, task {id}");
            assert_eq!(m["shard"]["count"], 4, "array {array}, task {id}");
            dirs.push(out);
        }
        let merged = d.path().join(format!("merged-{array}"));
        rotbench()
            .args(["merge", "--quiet", "--no-report", "--out"])
            .arg(&merged)
            .args(&dirs)
            .assert()
            .success();
        assert_same_files(&single, &merged, &["summary.json", "predictions.csv"]);
    }
}

#[test]
fn shard_auto_refuses_a_slurm_task_off_the_array_step() {
    let d = tempfile::tempdir().unwrap();
    let a = sweep_cmd(&d.path().join("o"), "0", &["--shard", "auto"])
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_MIN", "0")
        .env("SLURM_ARRAY_TASK_STEP", "2")
        .env("SLURM_ARRAY_TASK_COUNT", "4")
        .assert()
        .code(2);
    let e = stderr_of(&a);
    no_panic(&e);
    let first = e.lines().next().unwrap_or_default();
    for part in [
        "--shard auto",
        "SLURM_ARRAY_TASK_STEP",
        "--array",
        "--shard i/n",
    ] {
        assert!(first.contains(part), "expected `{part}` in:\n{first}");
    }
}
