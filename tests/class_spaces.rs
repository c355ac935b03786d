//! Issue 20, class spaces: `--class-subset` (score some of a model's classes, the
//! logits restricted before the softmax and the argmax) and `--class-map` (score
//! coarse classes, each the sum of its model classes' probabilities). The
//! arithmetic is checked by hand-computed cases in `src/sweep/scoring.rs`; here,
//! end to end with the bundled MNIST CNN.

mod common;
use common::*;
use std::fs;
use std::path::Path;

/// The first `n` MNIST test digits as (28x28 pixels, label).
fn mnist_digits(n: usize) -> Vec<(Vec<u8>, u8)> {
    let (images, labels) = mnist_test_set(n);
    images
        .into_iter()
        .zip(labels.into_iter().map(|l| l as u8))
        .collect()
}

/// Digit `i`'s 28x28 pixels as `dir/{i:04}.png` (the folder is created).
fn save_digit(dir: &Path, i: usize, px: Vec<u8>) {
    fs::create_dir_all(dir).unwrap();
    image::GrayImage::from_raw(28, 28, px)
        .unwrap()
        .save(dir.join(format!("{i:04}.png")))
        .unwrap();
}

fn sweep(out: &Path, extra: &[&str]) -> Run {
    sweep_at(out, "0,90", extra)
}

fn sweep_at(out: &Path, angles: &str, extra: &[&str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--no-cache",
        "--model",
        s(bundled_model()),
        "--angles",
        angles,
        "--bootstrap",
        "0",
        "--out",
        s(out),
    ];
    a.extend_from_slice(extra);
    run(&a, None)
}

#[test]
fn a_subset_of_every_class_in_order_scores_exactly_as_the_model_itself() {
    let t = tempfile::tempdir().unwrap();
    let subset = t.path().join("subset.txt");
    fs::write(
        &subset,
        (0..10).map(|i| format!("{i}\n")).collect::<String>(),
    )
    .unwrap();
    let data = ["--data", s(mnist()), "--limit", "300"];
    let plain = t.path().join("plain");
    assert_eq!(sweep(&plain, &data).code, 0);
    let sub = t.path().join("sub");
    let mut a = data.to_vec();
    a.extend(["--class-subset", s(&subset)]);
    assert_eq!(sweep(&sub, &a).code, 0);
    assert_same_files(
        &plain,
        &sub,
        &["predictions.csv", "per_angle.csv", "confusion.csv"],
    );
    let spec = &summary(&sub)["models"][0]["spec"];
    assert_eq!(spec["class_subset"].as_array().unwrap().len(), 10, "{spec}");
    assert_eq!(spec["model_classes"].as_array().unwrap().len(), 10);
    let from = &summary(&sub)["models"][0]["spec_sources"]["class-subset"];
    assert!(from.as_str().unwrap().contains("--class-subset"), "{from}");
}

#[test]
fn a_subset_scores_only_its_classes_and_reorders_them_as_the_dataset_numbers_them() {
    // Digits 7 and 3 only, in that order: a folder `seven/`, `three/` per digit.
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    let mut kept = 0;
    for (i, (px, label)) in mnist_digits(600).into_iter().enumerate() {
        let dir = match label {
            7 => "a-seven",
            3 => "b-three",
            _ => continue,
        };
        save_digit(&root.join(dir), i, px);
        kept += 1;
    }
    let subset = t.path().join("subset.txt");
    fs::write(
        &subset,
        "# ImageNet-R style: the dataset's classes, in order\n7\n3\n",
    )
    .unwrap();
    let out = t.path().join("o");
    // Folders in sorted order are classes 0 (7) and 1 (3), as the subset lists them.
    let r = sweep(
        &out,
        &[
            "--data",
            s(&root),
            "--class-folders",
            "sorted",
            "--class-subset",
            s(&subset),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s0 = summary(&out);
    let upright = &s0["models"][0]["angles"][0];
    assert_eq!(upright["n"], kept);
    assert!(
        upright["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c[0].as_u64().unwrap() < 2 && c[1].as_u64().unwrap() < 2),
        "a 2x2 confusion"
    );
    assert!(
        upright["accuracy"].as_f64().unwrap() > 0.99,
        "{}",
        upright["accuracy"]
    );
    assert_eq!(
        s0["models"][0]["spec"]["classes"],
        serde_json::json!(["7", "3"])
    );
    let rows = read_csv(&out.join("predictions.csv"));
    assert!(
        rows.iter().all(|r| r["pred"] == "0" || r["pred"] == "1"),
        "only subset classes are predicted"
    );
    // Without the subset the same folders are refused: 2 folders, a 10-class model.
    let r = sweep(
        &t.path().join("x"),
        &["--data", s(&root), "--class-folders", "sorted"],
    );
    assert_eq!(
        r.code, 0,
        "sorted folders 0 and 1 are digits 0 and 1 to the plain model"
    );
    let wrong = summary(&t.path().join("x"))["models"][0]["angles"][0]["accuracy"]
        .as_f64()
        .unwrap();
    assert!(
        wrong < 0.05,
        "without the subset, 7s and 3s scored as 0s and 1s: {wrong}"
    );
}

#[test]
fn a_parity_map_scores_coarse_classes_from_summed_probabilities() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    let digits = mnist_digits(300);
    for (i, (px, label)) in digits.iter().enumerate() {
        let dir = root.join(if label % 2 == 0 { "even" } else { "odd" });
        save_digit(&dir, i, px.clone());
    }
    let map = t.path().join("parity.csv");
    fs::write(
        &map,
        (0..10)
            .map(|d| format!("{d},{}\n", if d % 2 == 0 { "even" } else { "odd" }))
            .collect::<String>(),
    )
    .unwrap();
    let out = t.path().join("o");
    let r = sweep(&out, &["--data", s(&root), "--class-map", s(&map)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s0 = summary(&out);
    let m = &s0["models"][0];
    assert_eq!(m["spec"]["classes"], serde_json::json!(["even", "odd"]));
    assert_eq!(
        m["spec"]["class_map"][0],
        serde_json::json!([0, 2, 4, 6, 8])
    );
    assert!(m["spec_sources"]["class-map"]
        .as_str()
        .unwrap()
        .contains("--class-map"));
    let upright = &m["angles"][0];
    assert_eq!(upright["n"], 300);
    assert!(upright["accuracy"].as_f64().unwrap() > 0.99);
    // The coarse confidence is at least the fine one (a sum over the group), and the
    // per-class rows are the two coarse classes.
    let per_class = read_csv(&out.join("per_class.csv"));
    assert!(per_class
        .iter()
        .all(|r| r["class_name"] == "even" || r["class_name"] == "odd"));
    let plain = t.path().join("plain");
    assert_eq!(
        sweep(&plain, &["--data", s(mnist()), "--limit", "300"]).code,
        0
    );
    let fine = read_csv(&plain.join("predictions.csv"));
    let coarse = read_csv(&out.join("predictions.csv"));
    let by_index = |rows: &[std::collections::HashMap<String, String>], angle: &str| {
        rows.iter()
            .filter(|r| r["angle"] == angle)
            .map(|r| (r["index"].clone(), r.clone()))
            .collect::<std::collections::HashMap<_, _>>()
    };
    // Image-folder indices follow the folders (even first): match by file name.
    let fine0 = by_index(&fine, "0");
    let mut checked = 0;
    for r in coarse.iter().filter(|r| r["angle"] == "0") {
        let i: usize = r["source"].split('/').nth(1).unwrap()[..4].parse().unwrap();
        let f = &fine0[&i.to_string()];
        let (fc, cc): (f32, f32) = (
            f["confidence"].parse().unwrap(),
            r["confidence"].parse().unwrap(),
        );
        assert!(cc >= fc - 1e-6, "sample {i}: coarse {cc} < fine {fc}");
        let fine_parity = f["pred"].parse::<u32>().unwrap() % 2;
        if fc > 0.5 {
            // A fine class above 1/2 decides its group.
            assert_eq!(r["pred"].parse::<u32>().unwrap(), fine_parity, "sample {i}");
        }
        checked += 1;
    }
    assert_eq!(checked, 300);
}

#[test]
fn class_space_mistakes_are_exit_2_naming_the_file_and_the_fix() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let map = t.path().join("parity.csv");
    fs::write(&map, "0,even\n1,odd\n").unwrap();
    // MNIST's labels are digits, not the map's two coarse classes.
    let r = sweep(&out, &["--data", s(mnist()), "--class-map", s(&map)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--class-map") && r.stderr.contains("coarse classes (even, odd)"),
        "{}",
        r.stderr
    );
    // A class the model does not have, by name or index.
    fs::write(&map, "0,even\nseven,odd\n").unwrap();
    let r = sweep(&out, &["--data", s(mnist()), "--class-map", s(&map)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("`seven` is not one of the model's 10 classes")
            && r.stderr.contains(s(&map)),
        "{}",
        r.stderr
    );
    let subset = t.path().join("subset.txt");
    fs::write(&subset, "3\n12\n").unwrap();
    let r = sweep(&out, &["--data", s(mnist()), "--class-subset", s(&subset)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("class index 12 is beyond the model's 10 classes"),
        "{}",
        r.stderr
    );
    fs::write(&subset, "3\n3\n").unwrap();
    let r = sweep(&out, &["--data", s(mnist()), "--class-subset", s(&subset)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("listed twice"), "{}", r.stderr);
    // Both at once.
    let r = sweep(
        &out,
        &[
            "--data",
            s(mnist()),
            "--class-subset",
            s(&subset),
            "--class-map",
            s(&map),
        ],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--class-map") && r.stderr.contains("--class-subset"),
        "{}",
        r.stderr
    );
}

#[test]
fn inspect_says_which_classes_are_scored_and_where_the_subset_or_map_came_from() {
    let t = tempfile::tempdir().unwrap();
    let subset = t.path().join("subset.txt");
    fs::write(&subset, "7\n3\n").unwrap();
    let r = run(
        &["inspect", s(bundled_model()), "--class-subset", s(&subset)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains(r#"2 of the model's 10, scored: ["7", "3"]"#)
            && r.stdout.contains("--class-subset"),
        "{}",
        r.stdout
    );
    let map = t.path().join("map.csv");
    fs::write(
        &map,
        "0,round\n6,round\n8,round\n9,round\n1,straight\n7,straight\n",
    )
    .unwrap();
    let r = run(
        &["inspect", s(bundled_model()), "--class-map", s(&map)],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("6 of the model's 10 (4 unmapped, dropped)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_coarse_class_of_one_model_class_keeps_that_classs_probability() {
    // Groups of unequal size: `zero` = {0}, `rest` = {1..9}. With summed
    // probabilities, a zero's coarse true-class probability is the model's own
    // probability of class 0 (a mean over each group would inflate it).
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    for (i, (px, label)) in mnist_digits(300).into_iter().enumerate() {
        let dir = root.join(if label == 0 { "zero" } else { "rest" });
        save_digit(&dir, i, px);
    }
    let map = t.path().join("map.csv");
    let lines: String = (0..10)
        .map(|d| format!("{d},{}\n", if d == 0 { "zero" } else { "rest" }))
        .collect();
    fs::write(&map, lines).unwrap();
    let (out, plain) = (t.path().join("o"), t.path().join("plain"));
    assert_eq!(
        sweep(&out, &["--data", s(&root), "--class-map", s(&map)]).code,
        0
    );
    assert_eq!(
        sweep(&plain, &["--data", s(mnist()), "--limit", "300"]).code,
        0
    );
    let fine: std::collections::HashMap<String, (String, f32)> =
        read_csv(&plain.join("predictions.csv"))
            .into_iter()
            .filter(|r| r["angle"] == "90")
            .map(|r| {
                (
                    r["index"].clone(),
                    (r["pred"].clone(), r["confidence"].parse().unwrap()),
                )
            })
            .collect();
    let mut checked = 0;
    for r in read_csv(&out.join("predictions.csv"))
        .iter()
        .filter(|r| r["angle"] == "90")
    {
        let i: usize = r["source"].split('/').nth(1).unwrap()[..4].parse().unwrap();
        let (pred, conf) = &fine[&i.to_string()];
        if r["label"] == "0" && pred == "0" {
            let p_true: f32 = r["p_true"].parse().unwrap();
            assert!(
                (p_true - conf).abs() < 1e-6,
                "sample {i}: coarse {p_true}, model's p(0) {conf}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} zeros predicted as 0 at 90°");
}

/// Sweep the digits of `tests/fixtures/class_spaces.json`'s `part` ("subset" or "map"),
/// written as PNG folders named after the scored classes, at 0, 90 and 180 degrees,
/// and compare every metric with the fixture's (PyTorch + scikit-learn).
fn class_spaces_fixture() -> serde_json::Value {
    serde_json::from_str(
        &fs::read_to_string(root().join("tests/fixtures/class_spaces.json")).unwrap(),
    )
    .unwrap()
}

fn matches_the_python_reference(part: &str, flag: &str, file_text: String) {
    let fixture = class_spaces_fixture();
    let want = &fixture[part];
    let classes: Vec<String> = want["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let group = |digit: u8| -> usize {
        match part {
            "subset" => classes
                .iter()
                .position(|c| *c == digit.to_string())
                .unwrap(),
            _ => {
                let name = want["map"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|m| m[0] == digit as u64)
                    .unwrap()[1]
                    .as_str()
                    .unwrap();
                classes.iter().position(|c| c == name).unwrap()
            }
        }
    };
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    let digits = mnist_digits(1000);
    for i in want["digits"].as_array().unwrap() {
        let i = i.as_u64().unwrap() as usize;
        let (px, label) = &digits[i];
        save_digit(&root.join(&classes[group(*label)]), i, px.clone());
    }
    let file = t.path().join("classes.txt");
    fs::write(&file, file_text).unwrap();
    let out = t.path().join("o");
    let r = sweep_at(&out, "0,90,180", &["--data", s(&root), flag, s(&file)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = summary(&out);
    assert_eq!(got["models"][0]["spec"]["classes"], want["classes"]);
    let close = |what: String, g: &serde_json::Value, w: &serde_json::Value, tol: f64| {
        let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
        assert!(
            (g - w).abs() <= tol,
            "{part} {what}: rotbench {g}, Python {w}"
        );
    };
    let mut compared = 0;
    for w in want["angles"].as_array().unwrap() {
        let angle = w["angle"].as_f64().unwrap();
        let g = got["models"][0]["angles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["angle"].as_f64() == Some(angle))
            .unwrap();
        assert_eq!(g["n"], w["n"], "{part} at {angle}");
        for avg in ["macro", "micro", "weighted"] {
            for m in ["precision", "recall", "f1"] {
                let k = format!("{m}_{avg}");
                close(format!("{k} at {angle}"), &g[&k], &w[&k], 1e-12);
            }
        }
        close(
            format!("accuracy at {angle}"),
            &g["accuracy"],
            &w["accuracy"],
            1e-12,
        );
        // Per-class rows: rotbench keeps the classes with samples or predictions.
        let rows = g["per_class"].as_array().unwrap();
        for wr in w["per_class"].as_array().unwrap() {
            let c = wr["class"].as_u64().unwrap();
            let predicted = w["confusion"]
                .as_array()
                .unwrap()
                .iter()
                .any(|cell| cell[1] == c);
            let Some(gr) = rows.iter().find(|r| r["class"] == c) else {
                assert!(
                    wr["support"] == 0 && !predicted,
                    "{part} at {angle}: class {c} has data but no per-class row"
                );
                continue;
            };
            assert_eq!(gr["support"], wr["support"]);
            for m in ["precision", "recall", "f1"] {
                close(format!("class {c} {m} at {angle}"), &gr[m], &wr[m], 1e-12);
            }
        }
        let mut cells: Vec<serde_json::Value> = g["confusion"].as_array().unwrap().clone();
        cells.sort_by_key(|c| (c[0].as_u64(), c[1].as_u64()));
        assert_eq!(
            serde_json::Value::Array(cells),
            w["confusion"],
            "{part} at {angle}"
        );
        close(format!("nll at {angle}"), &g["nll"], &w["nll"], 1e-6);
        close(
            format!("mean_confidence at {angle}"),
            &g["mean_confidence"],
            &w["mean_confidence"],
            1e-6,
        );
        compared += 1;
    }
    assert_eq!(compared, 3);
}

#[test]
fn a_subset_matches_pytorch_and_scikit_learn_at_every_angle() {
    matches_the_python_reference("subset", "--class-subset", "9\n6\n3\n5\n8\n".into());
}

#[test]
fn a_map_with_an_unmapped_class_matches_pytorch_and_scikit_learn_at_every_angle() {
    let fixture = class_spaces_fixture();
    let lines: String = fixture["map"]["map"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{},{}\n", m[0], m[1].as_str().unwrap()))
        .collect();
    assert!(!lines.contains("7,"), "digit 7 is in no group");
    matches_the_python_reference("map", "--class-map", lines);
}
