//! Issue #16, "Sound seams", end to end: extreme and non-finite angles at every
//! door angles come in by (item 6).

mod common;
use common::*;
use std::fs;
use std::path::Path;

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
