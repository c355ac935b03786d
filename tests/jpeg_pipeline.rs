//! Issue 20, ImageNet-style JPEGs: a 224x224 RGB model with `resize 256` on the 300
//! JPEGs of varied sizes in `tests/fixtures/jpeg224` (made by
//! `tests/fixtures/make_jpeg224.py`), with the model and torchvision's predictions from
//! `tests/fixtures/models/make_tiny224.py`.

mod common;
use common::*;
use std::path::Path;

fn jpegs() -> std::path::PathBuf {
    root().join("tests/fixtures/jpeg224")
}

fn tiny224() -> std::path::PathBuf {
    root().join("tests/fixtures/models/tiny224.pt")
}

fn sweep(out: &Path, extra: &[&str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--no-cache",
        "--bootstrap",
        "0",
        "--model",
        s(&tiny224()),
        "--data",
        s(&jpegs()),
        "--out",
        s(out),
    ];
    a.extend_from_slice(extra);
    run(&a, None)
}

#[test]
fn jpegs_of_varied_sizes_predict_what_torchvision_predicts_after_resize_rotate_and_crop() {
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/models/tiny224_jpeg224.json"))
            .unwrap(),
    )
    .unwrap();
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = sweep(&out, &["--angles", "0,30"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<&str> = want["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 300);
    let rows = read_csv(&out.join("predictions.csv"));
    let mut checked = 0;
    for angle in ["0", "30"] {
        let w = &want["angles"][angle];
        for r in rows.iter().filter(|r| r["angle"] == angle) {
            // `source` is the file under the data folder; ImageFolder's order is the fixture's.
            let k = files
                .iter()
                .position(|f| r["source"].ends_with(f))
                .unwrap_or_else(|| panic!("{} is not in the fixture", r["source"]));
            assert_eq!(
                r["pred"].parse::<u64>().unwrap(),
                w["pred"][k].as_u64().unwrap(),
                "{} at {angle}",
                files[k]
            );
            let (got, exp) = (
                r["confidence"].parse::<f64>().unwrap(),
                w["confidence"][k].as_f64().unwrap(),
            );
            assert!(
                (got - exp).abs() < 1e-5,
                "{} at {angle}: {got} vs {exp}",
                files[k]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 600);
}

#[test]
fn auto_batches_of_224_images_try_64_only_and_match_a_fixed_batch_of_32() {
    let t = tempfile::tempdir().unwrap();
    let (auto, fixed) = (t.path().join("auto"), t.path().join("fixed"));
    // Three angles so that auto times its chunk (it needs warm-up calls).
    assert_eq!(sweep(&auto, &["--angles", "0,45,90"]).code, 0);
    let timing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(auto.join("timing.json")).unwrap()).unwrap();
    assert_eq!(timing["batch_size"], 64, "{timing}");
    let tried: Vec<u64> = timing["batch_timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["batch_size"].as_u64().unwrap())
        .collect();
    assert_eq!(tried, [64], "a batch of 128 224x224 images is over 64 MiB");
    assert_eq!(
        sweep(&fixed, &["--angles", "0,45,90", "--batch-size", "32"]).code,
        0
    );
    assert_same_files(&auto, &fixed, &["predictions.csv", "per_angle.csv"]);
}
