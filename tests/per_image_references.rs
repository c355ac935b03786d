//! Sweep results per image, not in aggregate (issue #22, items 4 and 5):
//! - the shapes fixture's model through both crop orders at 0, 30 and 90 degrees
//!   against torchvision's `Resize(36)`, `CenterCrop(32)`, `rotate` pipeline in each
//!   order (`tests/fixtures/references/shapes_orders.csv`), and at 0 and 90 degrees
//!   against `tests/fixtures/shapes/expected.json` (made by make_shapes.py);
//! - the bundled MNIST CNN on the first 500 test digits at 0, 30, 90 and 270 degrees
//!   against torchvision `rotate` feeding the same TorchScript model
//!   (`tests/fixtures/references/mnist_cnn_500.csv`).
//!
//! References from `tests/fixtures/make_references.py`; its README.md there lists the
//! near-ties, whose class alone is not insisted on.

mod common;
use common::*;
use std::collections::HashMap;
use std::path::PathBuf;

type Row = HashMap<String, String>;

fn refs(name: &str) -> PathBuf {
    root().join("tests/fixtures/references").join(name)
}

fn shapes(name: &str) -> PathBuf {
    root().join("tests/fixtures/shapes").join(name)
}

/// `rotbench sweep ARGS --out TMP`; its predictions.csv keyed by (angle, index).
fn sweep(args: &[&str]) -> HashMap<(u64, usize), Row> {
    let out = tempfile::tempdir().unwrap();
    let mut all = vec!["sweep", "--quiet", "--no-report", "--out", s(out.path())];
    all.extend_from_slice(args);
    let r = run(&all, None);
    assert_eq!(r.code, 0);
    read_csv(&out.path().join("predictions.csv"))
        .into_iter()
        .map(|r| (key(&r["angle"], &r["index"]), r))
        .collect()
}

fn key(angle: &str, index: &str) -> (u64, usize) {
    (
        angle.parse::<f64>().unwrap().to_bits(),
        index.parse().unwrap(),
    )
}

fn f(s: &str) -> f64 {
    s.parse().unwrap()
}

/// One reference row against rotbench's: the class must match unless the reference's
/// top-2 margin is below `tie`; where the classes match, the confidences must agree
/// within `tol`. Returns the confidence difference (0 for a flipped near-tie).
fn compare(what: &str, got: &Row, pred: &str, conf: f64, margin: f64, tie: f64, tol: f64) -> f64 {
    if got["pred"] != pred {
        assert!(
            margin < tie,
            "{what}: class {} where the reference has {pred} (top-2 margin {margin})",
            got["pred"]
        );
        eprintln!("{what}: near-tie (margin {margin}) flipped");
        return 0.0;
    }
    let d = (f(&got["confidence"]) - conf).abs();
    assert!(
        d <= tol,
        "{what}: confidence {} where the reference has {conf} (|diff| {d}, tolerance {tol})",
        got["confidence"]
    );
    d
}

/// Shapes against shapes_orders.csv, made with torchvision's PIL pipeline (PIL's 8-bit
/// `Resize`, as rotbench resizes since issue 21): confidence within 1e-5 (measured:
/// 1.6e-6; it was 1.3e-3 when rotbench resized with another filter) and the class of
/// every row whose top-2 margin is at least 0.05 (expected.json's documented tie has 0.03).
const SHAPES_TOL: f64 = 1e-5;
/// expected.json (tests/fixtures/shapes/make_shapes.py) was made with the tensor
/// pipeline, which resizes in float; PIL's 8-bit resize, which rotbench follows, moves
/// these confidences by up to 2.04e-3 from it.
const EXPECTED_JSON_TOL: f64 = 2.5e-3;
const SHAPES_TIE: f64 = 0.05;

fn shapes_sweep(order: &str) -> HashMap<(u64, usize), Row> {
    sweep(&[
        "--model",
        s(shapes("shapes-cnn.pt")),
        "--data",
        s(shapes("manifest.csv")),
        "--angles",
        "0,30,90",
        "--order",
        order,
    ])
}

#[test]
fn both_crop_orders_match_torchvision_per_image_at_30_and_90_degrees() {
    let want = read_csv(&refs("shapes_orders.csv"));
    for order in ["crop-then-rotate", "rotate-then-crop"] {
        let got = shapes_sweep(order);
        let rows: Vec<&Row> = want.iter().filter(|r| r["order"] == order).collect();
        assert_eq!(rows.len(), 3 * 36);
        assert_eq!(got.len(), rows.len());
        let mut worst = 0f64;
        for w in rows {
            let what = format!("{order} at {} degrees, {}", w["angle"], w["path"]);
            let g = &got[&key(&w["angle"], &w["index"])];
            worst = worst.max(compare(
                &what,
                g,
                &w["pred"],
                f(&w["confidence"]),
                f(&w["margin"]),
                SHAPES_TIE,
                SHAPES_TOL,
            ));
        }
        eprintln!("{order}: largest confidence difference {worst:e}");
    }
}

#[test]
fn the_default_order_sweep_matches_expected_json_per_image() {
    // The sidecar's order (crop-then-rotate), as expected.json was made.
    let e: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shapes("expected.json")).unwrap()).unwrap();
    let got = sweep(&[
        "--model",
        s(shapes("shapes-cnn.pt")),
        "--data",
        s(shapes("manifest.csv")),
        "--angles",
        "0,90",
    ]);
    let classes: Vec<&str> = e["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let images = e["images"].as_array().unwrap();
    assert_eq!(images.len(), 36);
    let mut worst = 0f64;
    for (i, im) in images.iter().enumerate() {
        for angle in ["0", "90"] {
            let g = &got[&key(angle, &i.to_string())];
            assert_eq!(g["label"], im["label_index"].to_string());
            let pred = classes
                .iter()
                .position(|c| *c == im[format!("pred_{angle}")].as_str().unwrap())
                .unwrap()
                .to_string();
            let what = format!("{} at {angle} degrees", im["path"]);
            worst = worst.max(compare(
                &what,
                g,
                &pred,
                im[format!("prob_{angle}")].as_f64().unwrap(),
                im[format!("margin_{angle}")].as_f64().unwrap(),
                SHAPES_TIE,
                EXPECTED_JSON_TOL,
            ));
        }
    }
    eprintln!("largest confidence difference {worst:e}");
}

#[test]
fn the_bundled_cnn_matches_a_torchvision_peer_per_image_on_500_digits() {
    // Confidence within 2e-5 (measured: 3.1e-6). At 0, 90 and 270 degrees the inputs
    // are the same pixels, so every class must match; at 30 degrees only rows with a
    // top-2 margin below 1e-4 may flip (none in this fixture).
    let want = read_csv(&refs("mnist_cnn_500.csv"));
    assert_eq!(want.len(), 4 * 500);
    let got = sweep(&[
        "--model",
        s(bundled_model()),
        "--data",
        s(mnist()),
        "--limit",
        "500",
        "--angles",
        "0,30,90,270",
    ]);
    assert_eq!(got.len(), want.len());
    let mut worst: HashMap<&str, f64> = HashMap::new();
    for w in &want {
        let angle = w["angle"].as_str();
        let g = &got[&key(angle, &w["index"])];
        assert_eq!(g["label"], w["label"]);
        let tie = if angle == "30" { 1e-4 } else { 0.0 };
        let what = format!("digit {} at {angle} degrees", w["index"]);
        let d = compare(
            &what,
            g,
            &w["pred"],
            f(&w["confidence"]),
            f(&w["margin"]),
            tie,
            2e-5,
        );
        let e = worst.entry(angle).or_default();
        *e = e.max(d);
    }
    eprintln!("largest confidence difference per angle: {worst:?}");
}
