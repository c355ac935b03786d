//! Spatial robustness (issue 34): `--translate` with its required unit, the
//! rotation × translation grid in every output, grid accuracy in the summary
//! and the gate, and a shard run that merges to the single run's bytes.

mod common;
use common::*;
use std::path::Path;

fn sweep(out: &Path, extra: &[&str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-cache",
        "--model",
        s(bundled_model()),
        "--data",
        s(mnist()),
        "--limit",
        "200",
        "--bootstrap",
        "20",
        "--out",
        s(out),
    ];
    a.extend_from_slice(extra);
    run(&a, None)
}

/// Sweep `args` as two shards under `dir`, merge them, and check that the merge
/// is byte for byte the single run in `one`.
fn shards_merge_to(one: &Path, dir: &Path, args: &[&'static str]) {
    let mut shards = vec![];
    for i in 0..2 {
        let d = dir.join(format!("s{i}"));
        let shard = format!("{i}/2");
        let mut v = args.to_vec();
        v.extend(["--shard", s(&shard)]);
        assert_eq!(sweep(&d, &v).code, 0);
        shards.push(d);
    }
    let merged = dir.join("m");
    merge_ok(&merged, &[&shards[0], &shards[1]], None);
    assert_same_files(one, &merged, &EXACT_FILES);
}

#[test]
fn a_translation_without_a_unit_is_refused_saying_why() {
    let t = tempfile::tempdir().unwrap();
    let r = sweep(&t.path().join("o"), &["--angles", "0", "--translate", "3"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("no unit") && r.stderr.contains("px") && r.stderr.contains('%'),
        "{}",
        r.stderr
    );
    assert!(!t.path().join("o").exists(), "nothing is written");
}

#[test]
fn a_unit_on_the_angles_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = sweep(&t.path().join("o"), &["--angles", "30px"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--angles"), "{}", r.stderr);
}

#[test]
fn an_offset_that_moves_the_image_out_of_view_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let r = sweep(
        &t.path().join("o"),
        &["--angles", "0", "--translate=-28,0px"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("wholly out of view") && r.stderr.contains("28 px"),
        "{}",
        r.stderr
    );
    // 100% of the width is the same offset.
    let r = sweep(
        &t.path().join("p"),
        &["--angles", "0", "--translate", "0,100%"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn a_zero_translation_is_exactly_the_rotation_sweep() {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    assert_eq!(sweep(&a, &["--angles", "0:360:90"]).code, 0);
    assert_eq!(
        sweep(&b, &["--angles", "0:360:90", "--translate", "0px"]).code,
        0
    );
    assert_same_files(
        &a,
        &b,
        &[
            "per_angle.csv",
            "per_class.csv",
            "confusion.csv",
            "predictions.csv",
        ],
    );
    let rows = read_csv(&a.join("per_angle.csv"));
    assert!(rows.iter().all(|r| r["dx"] == "0" && r["dy"] == "0"));
}

#[test]
fn a_grid_reports_every_point_its_heatmap_and_the_grid_accuracy() {
    let t = tempfile::tempdir().unwrap();
    let o = t.path().join("o");
    let r = sweep(&o, &["--angles=-30,30", "--translate=-10:11:10%"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // 2 angles x 3 dx x 3 dy, and the upright reference the grid lacks.
    let rows = read_csv(&o.join("per_angle.csv"));
    assert_eq!(rows.len(), 19);
    let shifts: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r["dx"].clone(), r["dy"].clone()))
        .collect();
    assert!(
        shifts.contains(&("-2.8".into(), "2.8".into())),
        "{shifts:?}"
    );
    assert!(o.join("plots/spatial-mnist-cnn.png").exists());
    // Grid accuracy from predictions.csv: correct at all 18 swept points.
    let preds = read_csv(&o.join("predictions.csv"));
    let mut wrong = std::collections::HashSet::new();
    for p in &preds {
        let upright = p["angle"] == "0" && p["dx"] == "0" && p["dy"] == "0";
        if !upright && p["pred"] != p["label"] {
            wrong.insert(p["index"].clone());
        }
    }
    let sm = summary(&o);
    let sweep = &sm["models"][0]["sweep"];
    let want = (200 - wrong.len()) as f64 / 200.0;
    assert_eq!(sweep["grid_accuracy"].as_f64().unwrap(), want);
    assert_eq!(sweep["worst_of_sweep_accuracy"].as_f64().unwrap(), want);
    let worst = sweep["worst_accuracy"].as_f64().unwrap();
    assert!(want <= worst, "grid {want} above the worst point {worst}");
    assert!(sweep["worst_shift"].is_array());
    assert_eq!(sm["settings"]["translate"]["dx"][0].as_f64(), Some(-2.8));
    // The gate's grid check, by either name, on the flag and in the TOML.
    let res = o.join("summary.json");
    let above = format!("{}", want + 0.01);
    let r = run(
        &[
            "gate",
            "--results",
            s(&res),
            "--min-grid-accuracy",
            s(&above),
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stdout.contains("points of the grid"), "{}", r.stdout);
    let toml = t.path().join("g.toml");
    std::fs::write(
        &toml,
        format!("[gate]\nmin_grid_accuracy = {}\n", want - 0.01),
    )
    .unwrap();
    let r = run(&["gate", "--results", s(&res), "--config", s(&toml)], None);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn shards_of_a_grid_merge_to_the_single_run() {
    let t = tempfile::tempdir().unwrap();
    let grid = [
        "--angles",
        "0,45",
        "--translate=-2,2px",
        "--no-report",
        "--batch-size",
        "50",
    ];
    let one = t.path().join("one");
    assert_eq!(sweep(&one, &grid).code, 0);
    shards_merge_to(&one, t.path(), &grid);
}

#[test]
fn worst_of_k_draws_the_same_poses_whatever_the_batch_or_shard() {
    let t = tempfile::tempdir().unwrap();
    let args = [
        "--angles=-30:31:30",
        "--translate=-3,3px",
        "--worst-of",
        "4",
        "--seed",
        "5",
        "--no-report",
    ];
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let with_batch = |out: &Path, bs: &'static str| {
        let mut v = args.to_vec();
        v.extend(["--batch-size", bs]);
        assert_eq!(sweep(out, &v).code, 0);
    };
    with_batch(&a, "64");
    with_batch(&b, "30");
    assert_same_files(&a, &b, &["predictions.csv", "per_angle.csv"]);
    let mut sharded = args.to_vec();
    sharded.extend(["--batch-size", "64"]);
    shards_merge_to(&a, t.path(), &sharded);
    // The summary against predictions.csv: worst-of-4 and the first draw.
    let rows = read_csv(&a.join("predictions.csv"));
    let drawn: Vec<_> = rows.iter().filter(|r| !r["draw"].is_empty()).collect();
    assert_eq!(drawn.len(), 200 * 4);
    let mut wrong = std::collections::HashSet::new();
    let mut first_right = 0;
    let mut marked = std::collections::HashMap::new();
    for r in &drawn {
        let right = r["pred"] == r["label"];
        if !right {
            wrong.insert(r["index"].clone());
        }
        if r["draw"] == "0" && right {
            first_right += 1;
        }
        let angle: f64 = r["angle"].parse().unwrap();
        let dx: f64 = r["dx"].parse().unwrap();
        assert!(
            (-30.0..=30.0).contains(&angle) && (-3.0..=3.0).contains(&dx),
            "{r:?}"
        );
        if r["worst"] == "true" {
            *marked.entry(r["index"].clone()).or_insert(0) += 1;
        }
    }
    assert!(
        marked.values().all(|&c| c == 1),
        "one worst draw per sample"
    );
    let w = &summary(&a)["models"][0]["sweep"]["worst_of_k"];
    assert_eq!(w["k"], 4);
    assert_eq!(w["correct"].as_u64().unwrap(), 200 - wrong.len() as u64);
    assert_eq!(w["random_correct"].as_u64().unwrap(), first_right);
    // The gate: a threshold above fails (exit 1); a sweep without draws cannot be
    // checked (exit 2, naming the flag to add).
    let res = a.join("summary.json");
    let above = format!("{}", w["accuracy"].as_f64().unwrap() + 0.01);
    let r = run(
        &[
            "gate",
            "--results",
            s(&res),
            "--min-worst-of-k-accuracy",
            s(&above),
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stdout);
    let plain = t.path().join("plain");
    assert_eq!(sweep(&plain, &["--angles", "0,90", "--no-report"]).code, 0);
    let r = run(
        &[
            "gate",
            "--results",
            s(plain.join("summary.json")),
            "--min-worst-of-k-accuracy",
            "0.5",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--worst-of"), "{}", r.stderr);
}

#[test]
fn early_stop_gives_the_same_grid_accuracy_from_fewer_evaluations_and_says_what_it_left_out() {
    let t = tempfile::tempdir().unwrap();
    let grid = [
        "--angles=-30:31:15",
        "--translate=-3,0,3px",
        "--no-report",
        "--batch-size",
        "64",
    ];
    let (full, fast) = (t.path().join("full"), t.path().join("fast"));
    assert_eq!(sweep(&full, &grid).code, 0);
    let mut args = grid.to_vec();
    args.push("--grid-early-stop");
    assert_eq!(sweep(&fast, &args).code, 0);
    let (a, b) = (summary(&full), summary(&fast));
    let (sa, sb) = (&a["models"][0]["sweep"], &b["models"][0]["sweep"]);
    assert_eq!(sa["grid_accuracy"], sb["grid_accuracy"]);
    assert_eq!(sa["worst_of_sweep_correct"], sb["worst_of_sweep_correct"]);
    let e = &sb["early_stop"];
    assert_eq!(e["points"], 45);
    assert_eq!(e["evaluations_without_stop"], 45 * 200);
    let made = e["evaluations"].as_u64().unwrap();
    assert!(made < 45 * 200 && made >= 200, "{made}");
    assert!(e["left_out"].as_str().unwrap().contains("upright"));
    let r = run(
        &[
            "gate",
            "--results",
            s(fast.join("summary.json")),
            "--min-grid-accuracy",
            "0",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("correct at all 45 swept points of the grid"),
        "{}",
        r.stdout
    );
    assert_eq!(b["settings"]["grid_early_stop"], true);
    // Only the upright point's figures remain.
    let rows = read_csv(&fast.join("per_angle.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["angle"].as_str(), rows[0]["dx"].as_str()),
        ("0", "0")
    );
    // Shards of an early-stopped grid merge to the single run.
    shards_merge_to(&fast, t.path(), &args);
}
