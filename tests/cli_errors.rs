//! The bad-input catalogue: every case exits 2 with a first line that names the
//! file or flag and says how to fix it; no panic, no backtrace, no half-written output.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture_model(name: &str) -> PathBuf {
    root().join("tests/fixtures/models").join(name)
}

/// Run a sweep with `model`, `data` and extra args; expect exit 2 and return stderr's first line.
fn sweep_fails(model: &Path, data: &Path, extra: &[&str], out: &Path) -> String {
    let assert = rotbench()
        .args(["sweep", "--model"])
        .arg(model)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(if extra.iter().any(|a| *a == "--angles") {
            vec![]
        } else {
            vec!["--angles", "0,90"]
        })
        .args(extra)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for bad in ["panicked", "stack backtrace", "frame #", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(bad), "stderr shows `{bad}`:\n{stderr}");
    }
    let first = stderr.lines().next().unwrap_or_default().to_string();
    eprintln!("{first}");
    first
}

fn expect(first: &str, parts: &[&str]) {
    for p in parts {
        assert!(
            first.contains(p),
            "expected `{p}` in the first line:\n{first}"
        );
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn a_missing_model_path_is_named() {
    let d = tmp();
    let first = sweep_fails(
        &d.path().join("nope.pt"),
        &mnist(),
        &[],
        &d.path().join("out"),
    );
    expect(&first, &["--model", "nope.pt", "check the path"]);
}

#[test]
fn random_bytes_are_not_torchscript() {
    let d = tmp();
    let m = d.path().join("random.pt");
    fs::write(
        &m,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let first = sweep_fails(&m, &mnist(), &[], &d.path().join("out"));
    expect(
        &first,
        &["random.pt", "not a TorchScript file", "torch.jit.save"],
    );
}

#[test]
fn an_empty_model_file_is_refused() {
    let d = tmp();
    let m = d.path().join("empty.pt");
    fs::write(&m, b"").unwrap();
    let first = sweep_fails(&m, &mnist(), &[], &d.path().join("out"));
    expect(&first, &["empty.pt", "empty", "torch.jit.save"]);
}

#[test]
fn a_state_dict_is_recognised_and_the_export_is_explained() {
    let d = tmp();
    let first = sweep_fails(
        &fixture_model("state_dict.pt"),
        &mnist(),
        &[],
        &d.path().join("out"),
    );
    expect(&first, &["state_dict.pt", "state_dict", "torch.jit.script"]);
}

#[test]
fn an_output_width_that_differs_from_the_classes_is_refused() {
    let d = tmp();
    let first = sweep_fails(
        &fixture_model("wrong_width.pt"),
        &mnist(),
        &["--limit", "8"],
        &d.path().join("out"),
    );
    expect(
        &first,
        &[
            "wrong_width.pt",
            "outputs 7 values",
            "10 classes",
            "classes",
        ],
    );
}

#[test]
fn a_model_that_raises_in_forward_reports_the_shape_it_was_fed() {
    let d = tmp();
    let first = sweep_fails(
        &fixture_model("wrong_channels.pt"),
        &mnist(),
        &["--limit", "8"],
        &d.path().join("out"),
    );
    expect(
        &first,
        &[
            "wrong_channels.pt",
            "failed in forward",
            // Issue #31: the first forward pass is the probe batch (four synthetic
            // images) that tells what the model outputs.
            "[4, 1, 28, 28]",
            "--input-size",
        ],
    );
}

#[test]
fn nan_logits_are_counted_as_wrong_with_a_warning() {
    let d = tmp();
    let out = d.path().join("out");
    let assert = rotbench()
        .args(["sweep", "--quiet", "--model"])
        .arg(fixture_model("nan_logits.pt"))
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "0,90", "--limit", "50", "--out"])
        .arg(&out)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("NaN or inf logits"), "{stderr}");
    let s = summary(&out);
    let n = s["models"][0]["nonfinite_logits"].as_u64().unwrap();
    assert!(n > 0 && n <= 100, "nonfinite_logits {n}");
    // Issue #22, item 9: per angle, the NaN rows are exactly the pred = -1 rows of
    // predictions.csv and of confusion.csv, and accuracy is finite-correct / 50.
    let preds = read_csv(&out.join("predictions.csv"));
    let confusion = read_csv(&out.join("confusion.csv"));
    let mut total_invalid = 0;
    for a in s["models"][0]["angles"].as_array().unwrap() {
        let angle = a["angle"].as_f64().unwrap();
        let at = |r: &&std::collections::HashMap<String, String>| {
            r["angle"].parse::<f64>().unwrap() == angle
        };
        let rows: Vec<_> = preds.iter().filter(at).collect();
        assert_eq!(rows.len(), 50);
        let invalid = rows.iter().filter(|r| r["pred"] == "-1").count() as u64;
        for r in &rows {
            // A NaN softmax has no confidence; every other row has one.
            assert_eq!(r["pred"] == "-1", r["confidence"].is_empty(), "{r:?}");
        }
        assert_eq!(a["nonfinite"].as_u64().unwrap(), invalid, "at {angle}");
        let lost: u64 = confusion
            .iter()
            .filter(at)
            .filter(|r| r["pred"] == "-1")
            .map(|r| r["count"].parse::<u64>().unwrap())
            .sum();
        assert_eq!(lost, invalid, "confusion.csv's pred = -1 count at {angle}");
        let finite_correct = rows
            .iter()
            .filter(|r| r["pred"] != "-1" && r["pred"] == r["label"])
            .count();
        assert_eq!(
            a["accuracy"].as_f64().unwrap(),
            finite_correct as f64 / 50.0,
            "accuracy at {angle} is the finite, correct predictions over all 50"
        );
        total_invalid += invalid;
    }
    assert!(
        total_invalid > 0,
        "the fixture must give NaN logits somewhere"
    );
    assert_eq!(n, total_invalid);
}

#[test]
fn a_missing_dataset_path_is_named() {
    let d = tmp();
    let first = sweep_fails(
        &bundled_model(),
        &d.path().join("nodata"),
        &[],
        &d.path().join("out"),
    );
    expect(&first, &["--data", "nodata", "no such file"]);
}

fn write_idx(dir: &Path, n: u32, body: usize, labels: &[u8]) {
    let mut img = Vec::new();
    for v in [0x803u32, n, 28, 28] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend(std::iter::repeat_n(0u8, body));
    fs::write(dir.join("x-images-idx3-ubyte"), img).unwrap();
    let mut lab = Vec::new();
    for v in [0x801u32, labels.len() as u32] {
        lab.extend_from_slice(&v.to_be_bytes());
    }
    lab.extend_from_slice(labels);
    fs::write(dir.join("x-labels-idx1-ubyte"), lab).unwrap();
}

#[test]
fn an_empty_idx_dataset_is_refused() {
    let d = tmp();
    write_idx(d.path(), 0, 0, &[]);
    let first = sweep_fails(&bundled_model(), d.path(), &[], &d.path().join("out"));
    expect(&first, &["--data", "empty"]);
}

#[test]
fn a_truncated_idx_file_is_refused() {
    let d = tmp();
    write_idx(d.path(), 3, 784 * 2 + 100, &[1, 2, 3]);
    let first = sweep_fails(&bundled_model(), d.path(), &[], &d.path().join("out"));
    expect(
        &first,
        &["x-images-idx3-ubyte", "truncated", "promises 3 images"],
    );
}

#[test]
fn idx_images_and_labels_whose_counts_disagree_are_refused() {
    let d = tmp();
    write_idx(d.path(), 3, 784 * 3, &[1, 2]);
    let first = sweep_fails(&bundled_model(), d.path(), &[], &d.path().join("out"));
    expect(&first, &["holds 3 images", "2 labels", "must agree"]);
}

#[test]
fn a_label_outside_the_model_classes_is_refused() {
    let d = tmp();
    write_idx(d.path(), 3, 784 * 3, &[1, 12, 3]);
    let first = sweep_fails(&bundled_model(), d.path(), &[], &d.path().join("out"));
    expect(
        &first,
        &["x-labels-idx1-ubyte", "label 12 at sample 1", "10 classes"],
    );
}

fn folder_with_bad_image(d: &Path) -> PathBuf {
    let root = d.join("imgs");
    for c in ["3", "7"] {
        fs::create_dir_all(root.join(c)).unwrap();
        image::GrayImage::from_pixel(28, 28, image::Luma([0]))
            .save(root.join(c).join("ok.png"))
            .unwrap();
    }
    fs::write(
        root.join("7").join("broken.png"),
        b"\x89PNG\r\n\x1a\nnot really",
    )
    .unwrap();
    fs::write(root.join("7").join("zero.jpg"), b"").unwrap();
    fs::write(root.join("7").join("README.txt"), b"not an image, ignored").unwrap();
    root
}

#[test]
fn a_corrupt_image_fails_by_default_and_names_the_file() {
    let d = tmp();
    let data = folder_with_bad_image(d.path());
    let first = sweep_fails(&bundled_model(), &data, &[], &d.path().join("out"));
    expect(
        &first,
        &["broken.png", "cannot decode", "--skip-bad-images"],
    );
}

#[test]
fn skip_bad_images_skips_and_counts_them() {
    let d = tmp();
    let data = folder_with_bad_image(d.path());
    let out = d.path().join("out");
    rotbench()
        .args(["sweep", "--quiet", "--skip-bad-images", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(&data)
        .args(["--angles", "0", "--out"])
        .arg(&out)
        .assert()
        .success();
    let s = summary(&out);
    assert_eq!(s["dataset"]["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(
        s["models"][0]["angles"][0]["n"], 2,
        "README.txt ignored, two good images"
    );
}

#[test]
fn an_image_folder_without_class_folders_is_an_error() {
    let d = tmp();
    let root = d.path().join("flat");
    fs::create_dir_all(&root).unwrap();
    image::GrayImage::new(28, 28)
        .save(root.join("a.png"))
        .unwrap();
    let first = sweep_fails(&bundled_model(), &root, &[], &d.path().join("out"));
    expect(
        &first,
        &["--data", "no class folders", "one subfolder per class"],
    );
}

#[test]
fn invalid_angle_specs_are_refused() {
    let d = tmp();
    let too_many = "0:100001:1";
    for (spec, want) in [
        ("0:360:0", "step is 0"),
        ("abc", "not a number"),
        ("nan", "finite"),
        ("", "empty"),
        (too_many, "limit"),
    ] {
        let first = sweep_fails(
            &bundled_model(),
            &mnist(),
            &["--angles", spec],
            &d.path().join("out"),
        );
        expect(&first, &["--angles", want]);
    }
}

#[test]
fn an_output_path_that_is_a_file_is_refused_before_the_sweep() {
    let d = tmp();
    let f = d.path().join("file");
    fs::write(&f, "x").unwrap();
    let first = sweep_fails(&bundled_model(), &mnist(), &[], &f);
    expect(&first, &["--out", "existing file"]);
}

#[test]
fn an_unwritable_output_folder_is_refused_before_the_sweep() {
    // /proc refuses new folders even to root.
    let d = tmp();
    let first = sweep_fails(
        &d.path().join("no-model.pt"),
        &mnist(),
        &[],
        Path::new("/proc/rotbench-out"),
    );
    expect(&first, &["--out", "/proc/rotbench-out", "writable"]);
}

#[test]
fn a_malformed_sidecar_shows_line_column_and_schema() {
    let d = tmp();
    let m = d.path().join("m.pt");
    fs::copy(bundled_model(), &m).unwrap();
    fs::write(
        d.path().join("m.json"),
        "{\n  \"input\": [1, 28, 28],\n  \"mean\": [0.1307,\n}",
    )
    .unwrap();
    let first = sweep_fails(&m, &mnist(), &[], &d.path().join("out"));
    expect(&first, &["m.json", "line 4", "column", "\"classes\""]);
}

#[test]
fn zero_limit_batch_size_and_threads_are_refused() {
    let d = tmp();
    for flag in ["--limit", "--batch-size", "--threads"] {
        let first = sweep_fails(
            &bundled_model(),
            &mnist(),
            &[flag, "0"],
            &d.path().join("out"),
        );
        expect(&first, &[flag, "at least 1"]);
    }
}

/// Every file under `dir` (recursively) with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_failed_run_leaves_the_previous_results_intact() {
    let d = tmp();
    let out = d.path().join("out");
    rotbench()
        .args(["sweep", "--quiet", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "0,90", "--limit", "20", "--out"])
        .arg(&out)
        .assert()
        .success();
    let before = snapshot(&out);
    assert!(
        before.iter().any(|(n, _)| n.ends_with(".png")),
        "the report is part of what must survive"
    );
    sweep_fails(
        &fixture_model("wrong_channels.pt"),
        &mnist(),
        &["--limit", "20"],
        &out,
    );
    let after = snapshot(&out);
    assert_eq!(before, after, "the failed run changed the output folder");
}
