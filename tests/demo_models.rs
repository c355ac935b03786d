//! The seed's story, checked on the real MNIST test set with the three bundled
//! models: an upright CNN, the same CNN trained with rotations, and a P4
//! group-equivariant CNN (models/README.md).

mod common;
use common::*;
use std::path::PathBuf;

fn model(name: &str) -> PathBuf {
    root().join("models").join(format!("{name}.pt"))
}

/// Each sweep uses every core: run them one at a time (issue #22, test time).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sweep(models: &[&str], angles: &str, limit: Option<&str>) -> serde_json::Value {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let mut c = rotbench();
    c.args([
        "sweep",
        "--quiet",
        "--no-report",
        "--no-predictions",
        "--angles",
        angles,
        "--data",
    ])
    .arg(mnist())
    .arg("--out")
    .arg(out.path());
    for m in models {
        c.arg("--model").arg(model(m));
    }
    if let Some(l) = limit {
        c.args(["--limit", l]);
    }
    c.assert().success();
    summary(out.path())
}

fn angle<'a>(m: &'a serde_json::Value, a: f64) -> &'a serde_json::Value {
    m["angles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["angle"].as_f64() == Some(a))
        .unwrap()
}

#[test]
fn the_p4cnn_gives_the_same_prediction_at_every_quarter_turn_on_the_full_test_set() {
    let s = sweep(&["mnist-p4cnn"], "0,90,180,270", None);
    let m = &s["models"][0];
    let acc0 = angle(m, 0.0)["accuracy"].as_f64().unwrap();
    for a in [90.0, 180.0, 270.0] {
        let x = angle(m, a);
        let consistency = x["consistency"].as_f64().unwrap();
        let flips = ((1.0 - consistency) * 10_000.0).round();
        eprintln!("p4cnn at {a}: consistency {consistency} ({flips} of 10000 predictions differ from 0 degrees), accuracy {}", x["accuracy"]);
        // The README's claim, exactly (issue #22, item 8): not one prediction
        // changes at a quarter turn, so the accuracy cannot change either.
        assert_eq!(consistency, 1.0, "{flips} flips at {a}");
        assert_eq!(x["accuracy"].as_f64().unwrap(), acc0, "accuracy at {a}");
    }
}

#[test]
fn all_three_models_score_well_upright_and_only_the_augmented_one_holds_up_everywhere() {
    // Quarter turns plus 45 degrees: the same bars as 0:360:30 at 5 angles of 12.
    let s = sweep(
        &["mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn"],
        "0,45,90,180,270",
        None,
    );
    let by = |n: &str| {
        s["models"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    for n in ["mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn"] {
        let acc0 = angle(&by(n), 0.0)["accuracy"].as_f64().unwrap();
        let mean = by(n)["sweep"]["mean_accuracy"].as_f64().unwrap();
        eprintln!("{n}: accuracy at 0 {acc0:.4}, mean over 0,45,90,180,270 {mean:.4}");
        // The demo issue's bar: at least 98.5% upright, for all three.
        let bar = 0.985;
        assert!(acc0 >= bar, "{n}: {acc0} at 0 degrees");
    }
    let aug = by("mnist-cnn-aug")["sweep"]["mean_accuracy"]
        .as_f64()
        .unwrap();
    let upright = by("mnist-cnn")["sweep"]["mean_accuracy"].as_f64().unwrap();
    assert!(aug >= 0.95, "augmented mean accuracy {aug}");
    assert!(
        upright < aug - 0.3,
        "the upright CNN's mean accuracy {upright} should be far lower"
    );
    // The pairwise comparison is in summary.json, with exact McNemar p-values.
    let cmp = s["comparisons"].as_array().unwrap();
    assert_eq!(cmp.len(), 3);
    let c = cmp
        .iter()
        .find(|c| c["a"] == "mnist-cnn" && c["b"] == "mnist-cnn-aug")
        .unwrap();
    let at90 = c["angles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["angle"].as_f64() == Some(90.0))
        .unwrap();
    assert!(at90["accuracy_diff"].as_f64().unwrap() < -0.5);
    assert!(at90["mcnemar_p"].as_f64().unwrap() < 1e-10);
}
