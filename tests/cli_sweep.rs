//! End-to-end: the real binary, the bundled TorchScript model, real libtorch,
//! the real MNIST test set.

mod common;
use common::*;
use std::fs;

#[test]
fn the_bundled_model_scores_at_least_99_percent_upright_on_the_first_1000_images() {
    let out = tempfile::tempdir().unwrap();
    rotbench()
        .args(["sweep", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "0,90,180,270", "--limit", "1000", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let rows = read_csv(&out.path().join("per_angle.csv"));
    assert_eq!(rows.len(), 4);
    let acc0: f64 = rows.iter().find(|r| r["angle"] == "0").unwrap()["accuracy"]
        .parse()
        .unwrap();
    assert!(acc0 >= 0.99, "accuracy at 0 degrees is {acc0}");
    let acc90: f64 = rows.iter().find(|r| r["angle"] == "90").unwrap()["accuracy"]
        .parse()
        .unwrap();
    assert!(
        acc90 < 0.5,
        "an upright CNN should fail at 90 degrees, got {acc90}"
    );
    for name in [
        "summary.json",
        "per_angle.csv",
        "per_class.csv",
        "confusion.csv",
        "predictions.csv",
        "timing.json",
    ] {
        assert!(out.path().join(name).is_file(), "{name} missing");
    }
    let preds = read_csv(&out.path().join("predictions.csv"));
    assert_eq!(preds.len(), 4000);
    let per_class = read_csv(&out.path().join("per_class.csv"));
    assert_eq!(per_class.len(), 40);
    let s = summary(out.path());
    assert_eq!(s["models"][0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(s["dataset"]["n"], 1000);
}

#[test]
fn per_angle_columns_are_the_documented_ones() {
    let out = tempfile::tempdir().unwrap();
    rotbench()
        .args(["sweep", "--quiet", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args(["--angles", "30", "--limit", "64", "--out"])
        .arg(out.path())
        .assert()
        .success();
    let text = fs::read_to_string(out.path().join("per_angle.csv")).unwrap();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header,
        "model,angle,dx,dy,reference,n,accuracy,accuracy_ci_low,accuracy_ci_high,precision_macro,recall_macro,f1_macro,precision_micro,recall_micro,f1_micro,precision_weighted,recall_weighted,f1_weighted,consistency,accuracy_drop,prob_shift,error_consistency,confusion_similarity,mcnemar_p_vs_reference,nonfinite,in_sweep,\
         top5_accuracy,nll,brier,ece,mean_confidence,flip_next,top5_distance_next,\
         f1_macro_ci_low,f1_macro_ci_high,consistency_ci_low,consistency_ci_high,ece_ci_low,ece_ci_high,flip_next_ci_low,flip_next_ci_high"
    );
    // 0 was not asked for, so it is added and marked as the reference.
    let rows = read_csv(&out.path().join("per_angle.csv"));
    assert_eq!(rows[0]["angle"], "0");
    assert_eq!(rows[0]["reference"], "true");
    assert_eq!(rows[0]["in_sweep"], "false");
    assert_eq!(rows[1]["angle"], "30");
    assert_eq!(
        fs::read_to_string(out.path().join("confusion.csv"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "model,angle,dx,dy,true,pred,count"
    );
    assert_eq!(
        fs::read_to_string(out.path().join("predictions.csv"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
        "model,angle,dx,dy,index,label,pred,confidence,source,p_true,brier,top_k,draw,worst"
    );
}

#[test]
fn an_unchanged_rerun_writes_byte_identical_results() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for out in [a.path(), b.path()] {
        rotbench()
            .args(["sweep", "--quiet", "--model"])
            .arg(bundled_model())
            .arg("--data")
            .arg(mnist())
            .args(["--angles", "0:360:45", "--limit", "300", "--out"])
            .arg(out)
            .assert()
            .success();
    }
    assert_same_files(
        a.path(),
        b.path(),
        &[
            "summary.json",
            "per_angle.csv",
            "per_class.csv",
            "confusion.csv",
            "predictions.csv",
        ],
    );
}

#[test]
fn inspect_prints_the_spec_and_the_output_width() {
    rotbench()
        .arg("inspect")
        .arg(bundled_model())
        .assert()
        .success()
        .stdout(predicates::str::contains("1x28x28"))
        .stdout(predicates::str::contains("10 logits per image"))
        .stdout(predicates::str::contains("sidecar"));
}

/// Sweep `models` (files under models/) at 0:360:90 on 1,500 MNIST images into
/// `out`, with `extra` flags.
fn sweep_models(models: &[&str], out: &std::path::Path, extra: &[&str]) {
    let mut c = rotbench();
    c.args(["sweep", "--quiet"]);
    for m in models {
        c.arg("--model").arg(root().join(format!("models/{m}")));
    }
    c.arg("--data")
        .arg(mnist())
        .args(["--angles", "0:360:90", "--limit", "1500", "--out"])
        .arg(out)
        .args(extra);
    c.assert().success();
}

/// The files of predictions and the metrics made of them.
const SCORED_FILES: [&str; 4] = [
    "predictions.csv",
    "per_angle.csv",
    "per_class.csv",
    "confusion.csv",
];

fn timing_of(out: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(out.join("timing.json")).unwrap()).unwrap()
}

#[test]
fn batch_size_auto_times_ascending_candidates_until_one_is_slower_and_predictions_do_not_depend_on_the_batch_size(
) {
    // A .pt2 package runs whole batches, so auto times them (TorchScript's sliced
    // batches are not timed: the next test).
    let (auto, fixed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sweep_models(&["mnist-cnn.pt2"], auto.path(), &[]);
    sweep_models(&["mnist-cnn.pt2"], fixed.path(), &["--batch-size", "100"]);
    let t = timing_of(auto.path());
    let timed: Vec<u64> = t["batch_timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["batch_size"].as_u64().unwrap())
        .collect();
    // Ascending candidates, stopping at the first one more than 2% slower than the best before it.
    assert!(
        timed.len() >= 2 && timed[..] == [64, 128, 256, 512][..timed.len()],
        "{t}"
    );
    let rates: Vec<f64> = t["batch_timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["images_per_second"].as_f64().unwrap())
        .collect();
    for k in 1..rates.len() {
        let best_before = rates[..k].iter().cloned().fold(0.0, f64::max);
        let stopped_here = rates[k] < 0.98 * best_before;
        assert!(
            !stopped_here || k == rates.len() - 1,
            "calibration went on after a slower size: {t}"
        );
        if k == rates.len() - 1 && rates.len() < 4 {
            assert!(
                stopped_here,
                "calibration stopped early without a slower size: {t}"
            );
        }
    }
    let best = t["batch_timings"]
        .as_array()
        .unwrap()
        .iter()
        .max_by(|a, b| {
            a["images_per_second"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["images_per_second"].as_f64().unwrap())
        })
        .unwrap()["batch_size"]
        .as_u64()
        .unwrap();
    assert_eq!(
        t["batch_size"].as_u64().unwrap(),
        best,
        "the fastest candidate is kept: {t}"
    );
    assert_eq!(summary(auto.path())["settings"]["batch_size"], "auto");
    assert_eq!(summary(fixed.path())["settings"]["batch_size"], 100);
    // Chunks of 64..512 then the chosen size against chunks of 100: the same predictions,
    // confidences and metrics, to the last digit.
    assert_same_files(auto.path(), fixed.path(), &SCORED_FILES);
}

#[test]
fn batch_size_auto_with_sliced_batches_times_nothing_and_takes_the_largest_size_and_predictions_do_not_depend_on_it(
) {
    // TorchScript on the CPU runs 28x28 batches in slices of 64 rows: auto times
    // nothing and takes the largest candidate, scaled for the slice threads (512
    // up to 4 threads, 1024 from 5 to 8, ...).
    let (auto, fixed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let models = ["mnist-cnn.pt", "mnist-cnn-aug.pt", "mnist-p4cnn.pt"];
    sweep_models(&models, auto.path(), &[]);
    sweep_models(&models, fixed.path(), &["--batch-size", "100"]);
    let t = timing_of(auto.path());
    assert_eq!(t["batch_timings"].as_array().unwrap().len(), 0, "{t}");
    let size = t["batch_size"].as_u64().unwrap();
    let threads = t["slice_threads"].as_u64().unwrap();
    assert!(
        size >= 512 && size.is_power_of_two() && size >= 64 * threads,
        "{t}"
    );
    assert_eq!(summary(auto.path())["settings"]["batch_size"], "auto");
    // Every bundled model, batches of the largest size against batches of 100: the
    // same predictions, confidences and metrics, to the last digit.
    assert_same_files(auto.path(), fixed.path(), &SCORED_FILES);
}

#[test]
fn with_shards_batch_size_auto_cuts_the_data_in_batches_of_256_so_that_shards_agree() {
    let out = tempfile::tempdir().unwrap();
    rotbench()
        .args(["sweep", "--quiet", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args([
            "--angles", "0,90", "--limit", "1000", "--shard", "0/2", "--out",
        ])
        .arg(out.path())
        .assert()
        .success();
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(out.path().join("shard.json")).unwrap()).unwrap();
    assert_eq!(m["shard"]["batch_size"], 256);
    assert_eq!(
        (m["start"].as_u64().unwrap(), m["end"].as_u64().unwrap()),
        (0, 512),
        "two whole batches of 256"
    );
    assert_eq!(m["settings"]["batch_size"], 256);
}

#[test]
fn rotation_on_the_device_agrees_with_rotation_on_the_host() {
    // `--rotate-on device` is what `--device cuda` uses; on a CPU machine it runs the same
    // libtorch ops on the CPU, so the GPU code path is exercised here too.
    let (host, dev) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (out, on) in [(host.path(), "host"), (dev.path(), "device")] {
        rotbench()
            .args(["sweep", "--quiet", "--no-report", "--model"])
            .arg(bundled_model())
            .arg("--data")
            .arg(mnist())
            .args([
                "--angles",
                "0,30,90,137.5,200",
                "--limit",
                "1000",
                "--rotate-on",
                on,
                "--out",
            ])
            .arg(out)
            .assert()
            .success();
        assert_eq!(summary(out)["settings"]["rotate_on"], on);
    }
    let (a, b) = (
        read_csv(&host.path().join("predictions.csv")),
        read_csv(&dev.path().join("predictions.csv")),
    );
    assert_eq!(a.len(), 5000);
    let differ = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x["pred"] != y["pred"])
        .count();
    let conf = a
        .iter()
        .zip(&b)
        .map(|(x, y)| {
            (x["confidence"].parse::<f64>().unwrap() - y["confidence"].parse::<f64>().unwrap())
                .abs()
        })
        .fold(0.0, f64::max);
    eprintln!("host vs device rotation: {differ} of 5000 predictions differ, max |confidence diff| {conf:.2e}");
    assert_eq!(differ, 0, "host and device rotation disagree");
    assert!(conf < 1e-4, "max |confidence diff| {conf}");
}

/// Issue 33: every sweep writes summary.csv, one row per model, with
/// summary.json's sweep figures.
#[test]
fn every_sweep_writes_a_summary_csv_with_one_row_per_model() {
    let out = tempfile::tempdir().unwrap();
    let cnn = common::root().join("models/mnist-cnn.pt");
    let aug = common::root().join("models/mnist-cnn-aug.pt");
    let r = common::run(
        &[
            "sweep",
            "--quiet",
            "--no-cache",
            "--no-report",
            "--model",
            common::s(&cnn),
            "--model",
            common::s(&aug),
            "--data",
            common::s(common::mnist()),
            "--angles",
            "0:360:90",
            "--limit",
            "100",
            "--bootstrap",
            "0",
            "--worst-of",
            "3",
            "--out",
            common::s(out.path()),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows = read_csv(&out.path().join("summary.csv"));
    let sm = common::summary(out.path());
    assert_eq!(rows.len(), 2);
    for (row, m) in rows.iter().zip(sm["models"].as_array().unwrap()) {
        let sw = &m["sweep"];
        let f = |k: &str| row[k].parse::<f64>().unwrap();
        assert_eq!(row["model"], m["name"].as_str().unwrap());
        assert_eq!(row["n"], "100");
        assert_eq!(
            f("accuracy_at_0"),
            sw["accuracy_at_reference"].as_f64().unwrap()
        );
        assert_eq!(f("mean_accuracy"), sw["mean_accuracy"].as_f64().unwrap());
        assert_eq!(f("worst_angle"), sw["worst_angle"].as_f64().unwrap());
        assert_eq!(
            f("worst_of_sweep"),
            sw["worst_of_sweep_accuracy"].as_f64().unwrap()
        );
        assert_eq!(
            f("flip_probability"),
            sw["flip_probability"].as_f64().unwrap()
        );
        let ref_ece = m["angles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["reference"] == true)
            .unwrap()["ece"]
            .as_f64()
            .unwrap();
        assert_eq!(f("ece_at_0"), ref_ece);
        assert_eq!(
            f("worst_of_k_accuracy"),
            sw["worst_of_k"]["accuracy"].as_f64().unwrap()
        );
        assert_eq!(row["worst_of_k"], "3");
    }
    let hashes = sm["files"].as_object().unwrap();
    assert!(hashes.contains_key("summary.csv"), "{hashes:?}");
}
