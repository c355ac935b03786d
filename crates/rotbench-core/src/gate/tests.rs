//! The gate's unit tests, on real SweepResults and Summaries built from hand-made predictions.

use super::*;
use crate::dataset::DatasetInfo;
use crate::format::format_angle;
use crate::results::{Column, Examples, ModelId, ModelSweep, PosePlan, SweepResult};
use crate::spec::{ModelSpec, Provenance};
use crate::summary::{self, Settings, Summary};
use std::path::{Path, PathBuf};

const SHA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// A real SweepResult and Summary from hand-made predictions:
/// `preds[model][angle][sample]`, angles in `user` order (0 added if absent).
fn fake(
    user: &[f64],
    labels: &[u32],
    preds: &[(&str, Vec<Vec<i32>>)],
    sha: &str,
) -> (Summary, SweepResult) {
    let PosePlan {
        poses,
        reference_added,
        reference,
    } = PosePlan::of_angles(user);
    let nc = 10;
    let n = labels.len();
    let models: Vec<ModelSweep> = preds
        .iter()
        .map(|(_, p)| {
            // An added 0° reference: every sample correct there.
            let p: Vec<Vec<i32>> = if reference_added {
                std::iter::once(labels.iter().map(|&l| l as i32).collect())
                    .chain(p.iter().cloned())
                    .collect()
            } else {
                p.clone()
            };
            let cols = p
                .into_iter()
                .map(|preds| {
                    let n = preds.len();
                    let top_k = preds
                        .iter()
                        .flat_map(|&c| [c as u32, (c as u32 + 1) % nc as u32])
                        .collect();
                    Column {
                        p_true: preds
                            .iter()
                            .zip(labels)
                            .map(|(&p, &l)| if p == l as i32 { 1.0 } else { 0.0 })
                            .collect(),
                        brier: vec![0.0; n],
                        confidence: vec![1.0; n],
                        tv: vec![0.0; n],
                        top_k,
                        preds,
                    }
                })
                .collect();
            ModelSweep::tallied(cols, 2, labels, reference, nc)
        })
        .collect();
    let result = SweepResult {
        poses: poses.clone(),
        draws: None,
        early_stop: None,
        reference_added,
        reference,
        indices: (0..n as u64).collect(),
        sources: vec![String::new(); n],
        labels: labels.to_vec(),
        models,
        examples: Examples::default(),
    };
    let spec = ModelSpec {
        input: [1, 28, 28],
        mean: vec![0.0],
        std: vec![1.0],
        classes: (0..nc).map(|c| c.to_string()).collect(),
        preprocess: Default::default(),
        output_index: None,
        output_key: None,
        output: Default::default(),
        model_classes: None,
        class_subset: None,
        class_map: None,
        class_map_rule: Default::default(),
    };
    let prov = Provenance::new();
    let ids: Vec<ModelId> = preds
        .iter()
        .map(|(name, _)| ModelId {
            name: name.to_string(),
            path: format!("{name}.pt"),
            sha256: SHA.into(),
            spec: spec.clone(),
            spec_sources: prov.clone(),
            warnings: Vec::new(),
        })
        .collect();
    let info = DatasetInfo {
        format: "idx".into(),
        path: "data".into(),
        len: n,
        start: 0,
        selected: n,
        total: n,
        sha256: sha.into(),
        class_names: None,
        class_order: "model".into(),
        labelled: true,
        class_map: vec![],
        skipped: vec![],
        ignored: vec![],
        dropped: None,
        warnings: vec![],
        sources: Default::default(),
    };
    let settings = Settings {
        angles: user.to_vec(),
        translate: None,
        worst_of: None,
        grid_early_stop: false,
        reference_angle: 0.0,
        reference_added,
        interpolation: crate::rotate::Interpolation::Bilinear,
        fill: crate::rotate::Fill::Constant(0.0),
        mask_circle: false,
        batch_size: crate::summary::BatchSetting::Fixed(1),
        limit: None,
        device: "cpu".into(),
        inference: crate::spec::Inference::Exact,
        rotate_on: crate::results::RotateOn::Host,
        backend: "torchscript".into(),
        top_k: 5,
        bootstrap: 50,
        seed: 0,
        sample: None,
        difficulty: 1,
        protocol: None,
    };
    let s = summary::build(&result, &ids, &info, settings, "test");
    (s, result)
}

/// `k` of `n` samples correct: labels all 0 and the first `k` predictions 0.
fn k_of(n: usize, k: usize) -> Vec<i32> {
    (0..n).map(|s| if s < k { 0 } else { 1 }).collect()
}

/// Ten samples: 10/10 correct at 0°, 9/10 at 90°, 7/10 at 180°.
fn ten() -> Summary {
    let labels = vec![0u32; 10];
    fake(
        &[0.0, 90.0, 180.0],
        &labels,
        &[("net", vec![k_of(10, 10), k_of(10, 9), k_of(10, 7)])],
        SHA,
    )
    .0
}

fn run(s: &Summary, c: Checks) -> Verdict {
    evaluate(s, &c, None, "r/summary.json").unwrap()
}

fn one(s: &Summary, c: Checks) -> CheckResult {
    let v = run(s, c);
    assert_eq!(v.checks.len(), 1, "{v:?}");
    v.checks[0].clone()
}

#[test]
fn min_accuracy_holds_at_equality_and_fails_just_below() {
    let s = ten();
    let at = one(
        &s,
        Checks {
            min_accuracy: Some(0.7),
            ..Default::default()
        },
    );
    assert!(at.passed, "{at:?}");
    assert!(at.detail.contains("0.7000 (7/10) at 180°"), "{}", at.detail);
    let beyond = one(
        &s,
        Checks {
            min_accuracy: Some(0.7 + 1e-9),
            ..Default::default()
        },
    );
    assert!(!beyond.passed);
    assert_eq!(beyond.failing.len(), 1);
    assert_eq!(beyond.failing[0].pose.angle, 180.0);
    let one_sample = one(
        &s,
        Checks {
            min_accuracy: Some(0.9),
            ..Default::default()
        },
    );
    assert!(!one_sample.passed);
    assert_eq!(
        one_sample
            .failing
            .iter()
            .map(|f| f.pose.angle)
            .collect::<Vec<_>>(),
        vec![180.0]
    );
    assert!(
        one_sample.detail.contains("180° 0.7000 (7/10)"),
        "{}",
        one_sample.detail
    );
}

#[test]
fn max_drop_holds_at_equality_despite_float_rounding() {
    // 1.0 − 0.9 is 0.09999999999999998 and 1.0 − 0.7 is 0.30000000000000004 in f64.
    let s = ten();
    assert_eq!(s.models[0].angles[2].accuracy_drop, 1.0 - 0.7);
    assert!(s.models[0].angles[2].accuracy_drop > 0.3);
    let at = one(
        &s,
        Checks {
            max_drop: Some(0.3),
            ..Default::default()
        },
    );
    assert!(at.passed, "{at:?}");
    let beyond = one(
        &s,
        Checks {
            max_drop: Some(0.3 - 1e-9),
            ..Default::default()
        },
    );
    assert!(!beyond.passed);
    let tenth = one(
        &s,
        Checks {
            max_drop: Some(0.1),
            ..Default::default()
        },
    );
    assert!(!tenth.passed);
    assert_eq!(tenth.failing.len(), 1);
    assert!(
        tenth
            .detail
            .contains("drop above 0.1 at 1 of 3 angles: 180° 0.3000"),
        "{}",
        tenth.detail
    );
    let v = one(
        &s,
        Checks {
            max_drop: Some(0.1),
            angles: Some(AngleSel::Spec("0,90".into())),
            ..Default::default()
        },
    );
    assert!(v.passed, "{v:?}");
}

#[test]
fn min_mean_accuracy_holds_at_equality() {
    // (1.0 + 0.9 + 0.7) / 3 = 0.8666…
    let s = ten();
    let mean = (1.0 + 0.9 + 0.7) / 3.0;
    assert!(
        one(
            &s,
            Checks {
                min_mean_accuracy: Some(mean),
                ..Default::default()
            }
        )
        .passed
    );
    assert!(
        one(
            &s,
            Checks {
                min_mean_accuracy: Some(0.8666666666666667),
                ..Default::default()
            }
        )
        .passed
    );
    let f = one(
        &s,
        Checks {
            min_mean_accuracy: Some(mean + 1e-9),
            ..Default::default()
        },
    );
    assert!(!f.passed);
    assert!(f.detail.contains("over 3 angles"), "{}", f.detail);
    // Limited to 90 and 180: (0.9 + 0.7) / 2 = 0.8.
    let c = Checks {
        min_mean_accuracy: Some(0.8),
        angles: Some(AngleSel::List(vec![90.0, 180.0])),
        ..Default::default()
    };
    assert!(one(&s, c.clone()).passed);
    assert!(
        !one(
            &s,
            Checks {
                min_mean_accuracy: Some(0.8 + 1e-9),
                ..c
            }
        )
        .passed
    );
}

#[test]
fn min_consistency_holds_at_equality() {
    let s = ten();
    assert_eq!(s.models[0].angles[1].consistency, 0.9);
    assert!(
        one(
            &s,
            Checks {
                min_consistency: Some(0.7),
                ..Default::default()
            }
        )
        .passed
    );
    let f = one(
        &s,
        Checks {
            min_consistency: Some(0.8),
            ..Default::default()
        },
    );
    assert!(!f.passed);
    assert_eq!(f.failing[0].pose.angle, 180.0);
}

#[test]
fn min_worst_of_sweep_holds_at_equality() {
    // Samples 0..7 are correct everywhere: 7/10.
    let s = ten();
    assert_eq!(s.models[0].sweep.worst_of_sweep_correct, 7);
    let at = one(
        &s,
        Checks {
            min_worst_of_sweep: Some(0.7),
            ..Default::default()
        },
    );
    assert!(at.passed, "{at:?}");
    assert!(at.detail.contains("(7/10"), "{}", at.detail);
    assert!(
        !one(
            &s,
            Checks {
                min_worst_of_sweep: Some(0.7 + 1e-9),
                ..Default::default()
            }
        )
        .passed
    );
}

#[test]
fn an_added_reference_is_not_gated_unless_named() {
    // 0 added as reference; 90 swept. All wrong at 90.
    let labels = vec![0u32; 4];
    let (s, _) = fake(&[90.0], &labels, &[("net", vec![vec![1; 4]])], SHA);
    let v = one(
        &s,
        Checks {
            min_accuracy: Some(0.5),
            ..Default::default()
        },
    );
    assert_eq!(v.failing.len(), 1);
    assert!(v.detail.contains("of 1 angles"), "{}", v.detail);
    let only0 = one(
        &s,
        Checks {
            min_accuracy: Some(0.5),
            angles: Some(AngleSel::Spec("0".into())),
            ..Default::default()
        },
    );
    assert!(only0.passed);
}

#[test]
fn unknown_angles_and_models_are_errors_not_passes() {
    let s = ten();
    let e = evaluate(
        &s,
        &Checks {
            min_accuracy: Some(0.5),
            angles: Some(AngleSel::Spec("45".into())),
            ..Default::default()
        },
        None,
        "r",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("--angles") && e.contains("45") && e.contains("swept: 0, 90, 180"),
        "{e}"
    );
    let e = evaluate(
        &s,
        &Checks {
            min_accuracy: Some(0.5),
            models: Some(vec!["other".into()]),
            ..Default::default()
        },
        None,
        "r",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--model `other`") && e.contains("net"), "{e}");
    let e = evaluate(&s, &Checks::default(), None, "r")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no checks given"), "{e}");
}

#[test]
fn model_filter_limits_the_checked_models() {
    let labels = vec![0u32; 10];
    let (s, _) = fake(
        &[0.0, 90.0],
        &labels,
        &[
            ("a", vec![k_of(10, 10), k_of(10, 2)]),
            ("b", vec![k_of(10, 10), k_of(10, 10)]),
        ],
        SHA,
    );
    let v = run(
        &s,
        Checks {
            min_accuracy: Some(0.5),
            ..Default::default()
        },
    );
    assert_eq!(v.checks.len(), 2);
    assert!(!v.passed());
    let v = run(
        &s,
        Checks {
            min_accuracy: Some(0.5),
            models: Some(vec!["b".into()]),
            ..Default::default()
        },
    );
    assert_eq!(v.checks.len(), 1);
    assert!(v.passed());
}

#[test]
fn thresholds_out_of_range_are_refused_naming_the_flag_or_key() {
    let e = Checks {
        min_accuracy: Some(1.5),
        ..Default::default()
    }
    .validate(&Origin::Flags)
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("--min-accuracy 1.5"), "{e}");
    let e = Checks {
        max_drop: Some(f64::NAN),
        ..Default::default()
    }
    .validate(&Origin::Flags)
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("--max-drop"), "{e}");
    let e = parse_config("[gate]\nsignificance = 0\n", Path::new("g.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("g.toml: [gate] significance"), "{e}");
    let e = Checks {
        max_regression: Some(0.1),
        min_accuracy: Some(0.1),
        ..Default::default()
    }
    .validate_merged()
    .unwrap_err()
    .to_string();
    assert!(e.contains("--max-regression needs a baseline"), "{e}");
}

// --- TOML

#[test]
fn the_gate_table_parses_with_the_flag_names_in_snake_case() {
    let text = r#"
        [other]
        ignored = true

        [gate]
        min_accuracy = 0        # an integer is fine
        min_mean_accuracy = 0.5
        max_drop = 0.05
        min_consistency = 0.25
        min_worst_of_sweep = 0.01
        angles = "0:360:30"
        models = ["mnist-cnn"]
        baseline = "main"
        baseline_dir = "ci/baselines"
        max_regression = 0.01
        significance = 0.01
    "#;
    let c = parse_config(text, Path::new("rotbench.toml")).unwrap();
    assert_eq!(c.min_accuracy, Some(0.0));
    assert_eq!(c.max_drop, Some(0.05));
    assert_eq!(c.min_worst_of_sweep, Some(0.01));
    assert_eq!(c.angles, Some(AngleSel::Spec("0:360:30".into())));
    assert_eq!(c.models, Some(vec!["mnist-cnn".to_string()]));
    assert_eq!(c.baseline.as_deref(), Some("main"));
    assert_eq!(c.baseline_dir, Some(PathBuf::from("ci/baselines")));
    assert_eq!(c.significance, Some(0.01));
    let c = parse_config(
        "[gate]\nangles = [0, 90, 180]\nmodel = \"x\"\n",
        Path::new("r.toml"),
    )
    .unwrap();
    assert_eq!(c.angles, Some(AngleSel::List(vec![0.0, 90.0, 180.0])));
    assert_eq!(c.models, Some(vec!["x".to_string()]));
}

#[test]
fn the_committed_example_config_parses() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rotbench.example.toml");
    let c = read_config(&p, "--config").unwrap();
    assert!(c.any());
    assert!(c.max_drop.is_some());
}

#[test]
fn bad_config_files_name_the_file_and_the_problem() {
    let p = Path::new("rotbench.toml");
    let e = parse_config("[gate]\nmin_acuracy = 0.5\n", p)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("rotbench.toml: [gate]") && e.contains("min_acuracy"),
        "{e}"
    );
    let e = parse_config("[tool]\nx = 1\n", p).unwrap_err().to_string();
    assert!(e.starts_with("rotbench.toml: has no [gate] table"), "{e}");
    let e = parse_config("[gate\n", p).unwrap_err().to_string();
    assert!(e.starts_with("rotbench.toml: not valid TOML"), "{e}");
    let e = parse_config("[gate]\nmax_drop = \"0.05\"\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("rotbench.toml: [gate]"), "{e}");
    let e = parse_config("[gate]\nangles = \"0:360:0\"\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("rotbench.toml: [gate] angles"), "{e}");
    let e = read_config(Path::new("/nonexistent/rotbench.toml"), "--config")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--config /nonexistent/rotbench.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn flags_override_the_file_field_by_field() {
    let file = parse_config(
        "[gate]\nmin_accuracy = 0.5\nmax_drop = 0.1\nmodels = [\"a\"]\nsignificance = 0.01\n",
        Path::new("f"),
    )
    .unwrap();
    let flags = Checks {
        max_drop: Some(0.2),
        models: Some(vec![]),
        ..Default::default()
    };
    let m = Checks::merge(file.clone(), flags);
    assert_eq!(m.min_accuracy, Some(0.5));
    assert_eq!(m.max_drop, Some(0.2));
    assert_eq!(
        m.models,
        Some(vec!["a".to_string()]),
        "an empty flag list keeps the file's models"
    );
    assert_eq!(m.significance, Some(0.01));
    let m = Checks::merge(
        file,
        Checks {
            models: Some(vec!["b".into()]),
            significance: Some(0.1),
            ..Default::default()
        },
    );
    assert_eq!(m.models, Some(vec!["b".to_string()]));
    assert_eq!(m.significance, Some(0.1));
}

// --- baselines

/// Baseline and current predictions on 100 samples (label 0) at 0° and 90°.
/// At 90°: `both` correct in both, `b` only in the baseline, `c` only now.
/// Write files into a folder (the core never writes; its tests may).
fn put(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The baseline side of [`pair`]: `both + b` of 100 right at 90°.
fn base_sweep(both: usize, b: usize) -> (Summary, SweepResult) {
    let n = 100;
    let base: Vec<i32> = (0..n).map(|s| if s < both + b { 0 } else { 1 }).collect();
    fake(
        &[0.0, 90.0],
        &vec![0u32; n],
        &[("net", vec![k_of(n, n), base])],
        SHA,
    )
}

/// The files `--save-baseline` writes for [`base_sweep`].
fn saved(both: usize, b: usize) -> Vec<(String, Vec<u8>)> {
    let (bs, br) = base_sweep(both, b);
    let origin = crate::gate::BaselineOrigin {
        saved_utc: "2026-12-07 01:30:00 UTC".into(),
        git_commit: None,
        git_dirty: None,
    };
    baseline_files(
        &bs,
        crate::report::csv::predictions_csv(&bs, &br).unwrap(),
        &origin,
    )
    .unwrap()
}

fn pair(both: usize, b: usize, c: usize) -> (Summary, Predictions, Baseline) {
    let n = 100;
    let labels = vec![0u32; n];
    // Label 0 is right, 1 wrong: `both` right in both, then `b` only in the baseline, then `c` only now.
    let now: Vec<i32> = (0..n)
        .map(|s| {
            if s < both || (both + b..both + b + c).contains(&s) {
                0
            } else {
                1
            }
        })
        .collect();
    let (bs, br) = base_sweep(both, b);
    let (cs, cr) = fake(
        &[0.0, 90.0],
        &labels,
        &[("net", vec![k_of(n, n), now])],
        SHA,
    );
    let bp = Predictions::from_sweep(&bs, &br);
    let cp = Predictions::from_sweep(&cs, &cr);
    let baseline = Baseline {
        label: "main".into(),
        path: PathBuf::from("b/main"),
        summary: bs,
        predictions: bp,
        origin: None,
    };
    (cs, cp, baseline)
}

fn vs_baseline(both: usize, b: usize, c: usize, r: Option<f64>, alpha: Option<f64>) -> CheckResult {
    let (s, cur, base) = pair(both, b, c);
    let checks = Checks {
        baseline: Some("main".into()),
        max_regression: r,
        significance: alpha,
        ..Default::default()
    };
    let v = evaluate(&s, &checks, Some((&base, &cur)), "r").unwrap();
    assert_eq!(v.checks.len(), 1);
    v.checks[0].clone()
}

#[test]
fn exact_mcnemar_p_values_of_the_constructed_sets_are_known() {
    // b=10, c=0: 2 * P(X <= 0), X ~ Bin(10, 1/2) = 2/1024 exactly.
    assert_eq!(crate::metrics::mcnemar_exact(10, 0), 0.001953125);
    // b=7, c=3: 2 * (1 + 10 + 45 + 120) / 1024 = 352/1024.
    assert!((crate::metrics::mcnemar_exact(7, 3) - 0.34375).abs() < 1e-15);
    assert!((crate::metrics::mcnemar_exact(3, 7) - 0.34375).abs() < 1e-15);
}

#[test]
fn a_significant_fall_beyond_the_tolerance_fails() {
    // 80 correct in both, 10 only in the baseline: 0.90 -> 0.80, p = 0.00195.
    let r = vs_baseline(80, 10, 0, Some(0.05), None);
    assert!(!r.passed, "{r:?}");
    assert_eq!(r.failing.len(), 1);
    assert_eq!(r.failing[0].pose.angle, 90.0);
    assert!((r.failing[0].value - 0.1).abs() < 1e-15);
    assert!(
        r.failing[0].text.contains("0.9000 → 0.8000") && r.failing[0].text.contains("p=0.002"),
        "{}",
        r.failing[0].text
    );
    assert!(r.detail.contains("at 1 of 2 angles"), "{}", r.detail);
}

#[test]
fn a_fall_within_the_noise_passes_with_a_note() {
    // 7 only in the baseline, 3 only now: fall 0.04, p = 0.34375.
    let r = vs_baseline(80, 7, 3, Some(0.01), None);
    assert!(r.passed, "{r:?}");
    assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
    assert!(
        r.notes[0].contains("fell 0.0400 at 90°")
            && r.notes[0].contains("p=0.344 ≥ 0.05: within noise"),
        "{}",
        r.notes[0]
    );
    // With a lenient alpha the same fall is significant.
    assert!(!vs_baseline(80, 7, 3, Some(0.01), Some(0.5)).passed);
}

#[test]
fn the_regression_tolerance_holds_at_equality() {
    // Fall exactly 0.1, significant: passes at R = 0.1, fails just below.
    assert!(vs_baseline(80, 10, 0, Some(0.1), None).passed);
    assert!(!vs_baseline(80, 10, 0, Some(0.1 - 1e-9), None).passed);
    // Without --max-regression, any significant fall fails.
    assert!(!vs_baseline(80, 10, 0, None, None).passed);
}

#[test]
fn significance_is_strict_p_below_alpha() {
    // p = 2^-9 exactly; at alpha = p the fall is not significant.
    assert!(vs_baseline(80, 10, 0, Some(0.0), Some(0.001953125)).passed);
    assert!(!vs_baseline(80, 10, 0, Some(0.0), Some(0.001953125 + 1e-9)).passed);
}

#[test]
fn an_improvement_passes() {
    let r = vs_baseline(80, 0, 10, Some(0.0), None);
    assert!(r.passed);
    assert!(r.detail.contains("no fall"), "{}", r.detail);
}

#[test]
fn a_baseline_from_another_dataset_or_other_samples_is_refused() {
    let (s, cur, mut base) = pair(80, 10, 0);
    let checks = Checks {
        baseline: Some("main".into()),
        ..Default::default()
    };
    base.predictions.dataset_sha256 = "b".repeat(64);
    let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--baseline main: refused, it comes from a different dataset")
            && e.contains("bbbbbbbbbbbb"),
        "{e}"
    );
    let (s, cur, mut base) = pair(80, 10, 0);
    base.predictions.indices.truncate(50);
    base.predictions.labels.truncate(50);
    let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("different samples")
            && e.contains("baseline 50 samples")
            && e.contains("results 100 samples"),
        "{e}"
    );
    let (s, cur, mut base) = pair(80, 10, 0);
    base.predictions.labels[3] = 4;
    let e = evaluate(&s, &checks, Some((&base, &cur)), "r")
        .unwrap_err()
        .to_string();
    assert!(e.contains("different labels"), "{e}");
}

#[test]
fn a_baseline_whose_predictions_come_from_another_baseline_is_refused() {
    let d = tempfile::tempdir().unwrap();
    for (name, files) in [("a", saved(80, 10)), ("b", saved(80, 20))] {
        let dir = d.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        put(&dir, &files);
    }
    std::fs::copy(
        d.path().join("b/predictions.csv"),
        d.path().join("a/predictions.csv"),
    )
    .unwrap();
    let e = format!("{:#}", load_baseline("a", d.path()).unwrap_err());
    assert!(
        e.contains("does not belong to") && e.contains("save the baseline again"),
        "{e}"
    );
}

#[test]
fn baselines_round_trip_through_their_files() {
    let d = tempfile::tempdir().unwrap();
    let (s, cur, base) = pair(80, 10, 0);
    let files = saved(80, 10);
    let dir = d.path().join("main");
    std::fs::create_dir_all(&dir).unwrap();
    put(&dir, &files);
    let loaded = load_baseline("main", d.path()).unwrap();
    assert_eq!(loaded.predictions, base.predictions);
    let by_path = load_baseline(dir.to_str().unwrap(), Path::new("/nowhere")).unwrap();
    let mut unbound = by_path.summary.clone();
    assert_eq!(
        unbound.files.keys().collect::<Vec<_>>(),
        ["predictions.csv"],
        "the baseline's summary names its companion"
    );
    unbound.files.clear();
    assert_eq!(unbound, base.summary);
    let checks = Checks {
        baseline: Some("main".into()),
        max_regression: Some(0.05),
        ..Default::default()
    };
    assert!(!evaluate(&s, &checks, Some((&loaded, &cur)), "r")
        .unwrap()
        .passed());
    let e = load_baseline("nope", d.path()).unwrap_err().to_string();
    assert!(
        e.contains("no baseline `nope` in") && e.contains("--save-baseline nope"),
        "{e}"
    );
}

#[test]
fn predictions_read_back_from_csv_match_the_sweep() {
    let labels: Vec<u32> = vec![3, 1, 4, 1, 5];
    let (s, r) = fake(
        &[90.0, 180.0],
        &labels,
        &[
            ("a", vec![vec![3, 1, 4, 0, 5], vec![-1, 1, 2, 1, 5]]),
            ("b", vec![vec![0; 5], vec![1; 5]]),
        ],
        SHA,
    );
    let mut csv = String::from("model,angle,index,label,pred,confidence\n");
    for m in &Predictions::from_sweep(&s, &r).models {
        for a in &m.angles {
            for (i, p) in a.preds.iter().enumerate() {
                csv.push_str(&format!(
                    "{},{},{},{},{},0.5\n",
                    m.name,
                    format_angle(a.pose.angle),
                    r.indices[i],
                    labels[i],
                    p
                ));
            }
        }
    }
    let back = Predictions::from_csv(csv.as_bytes(), Path::new("p.csv"), &s).unwrap();
    assert_eq!(back, Predictions::from_sweep(&s, &r));
    let broken = csv.replacen("a,0,1,1,", "a,0,9,1,", 1);
    let e = Predictions::from_csv(broken.as_bytes(), Path::new("p.csv"), &s)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("p.csv: line"), "{e}");
}

#[test]
fn baseline_names_are_single_folder_names() {
    for ok in ["main", "v1.2", "pr-17_b"] {
        check_baseline_name(ok).unwrap();
    }
    for bad in ["", "a/b", "..", ".", "a\\b", "x y", "ü"] {
        let e = check_baseline_name(bad).unwrap_err().to_string();
        assert!(e.starts_with("--save-baseline"), "{e}");
    }
    assert_eq!(
        resolve_baseline("main", Path::new("d")),
        PathBuf::from("d/main")
    );
    assert_eq!(
        resolve_baseline("./x/main", Path::new("d")),
        PathBuf::from("./x/main")
    );
}

// --- renderers

fn failing_verdict() -> Verdict {
    let labels = vec![0u32; 10];
    let (s, _) = fake(
        &[0.0, 90.0, 180.0],
        &labels,
        &[
            ("a<&>\"'", vec![k_of(10, 10), k_of(10, 9), k_of(10, 7)]),
            ("b", vec![k_of(10, 10); 3]),
        ],
        SHA,
    );
    run(
        &s,
        Checks {
            min_accuracy: Some(0.8),
            max_drop: Some(0.05),
            ..Default::default()
        },
    )
}

#[test]
fn junit_has_one_testcase_per_model_and_check_with_consistent_counts() {
    let v = failing_verdict();
    let xml = String::from_utf8(render_junit(&v)).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("4"));
    assert_eq!(root.attribute("failures"), Some("2"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 2);
    let mut total = 0;
    let mut failed = 0;
    for s in &suites {
        let cases: Vec<_> = s
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let fails = cases
            .iter()
            .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
            .count();
        assert_eq!(s.attribute("tests"), Some(cases.len().to_string().as_str()));
        assert_eq!(s.attribute("failures"), Some(fails.to_string().as_str()));
        total += cases.len();
        failed += fails;
    }
    assert_eq!((total, failed), (4, 2));
    assert_eq!(suites[0].attribute("name"), Some("rotbench gate: a<&>\"'"));
    let failure = suites[0]
        .descendants()
        .find(|n| n.has_tag_name("failure") && n.attribute("type") == Some("max-drop"))
        .unwrap();
    let msg = failure.attribute("message").unwrap();
    assert!(
        msg.contains("90° 0.1000") && msg.contains("180° 0.3000"),
        "{msg}"
    );
    assert!(failure.text().unwrap().contains("180°: 0.3000"));
    let names: Vec<_> = suites[1]
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert_eq!(names, vec!["min-accuracy ≥ 0.8", "max-drop ≤ 0.05"]);
}

#[test]
fn xml_escaping_drops_forbidden_control_characters() {
    assert_eq!(xml_escape("a\u{1}b<"), "a\u{FFFD}b&lt;");
    let v = Verdict {
        results: "r".into(),
        samples: 1,
        checks: vec![CheckResult {
            rows: Vec::new(),
            baseline_failed: None,
            model: "m\u{0}".into(),
            check: "c".into(),
            threshold: 0.0,
            title: "t]]>".into(),
            passed: false,
            detail: "d\u{1b}".into(),
            failing: vec![],
            notes: vec![],
        }],
        notes: vec![],
    };
    roxmltree::Document::parse(std::str::from_utf8(&render_junit(&v)).unwrap()).unwrap();
}

#[test]
fn text_and_markdown_say_pass_or_fail_for_every_check() {
    let v = failing_verdict();
    let t = render_text(&v);
    assert_eq!(
        t.lines()
            .filter(|l| l.starts_with("  FAIL") || l.starts_with("  PASS"))
            .count(),
        4,
        "{t}"
    );
    assert!(
        !t.contains("FAIL  b") && t.contains("gate FAILED: 2 of 4 checks failed"),
        "{t}"
    );
    let md = render_markdown(&v);
    assert!(
        md.starts_with("### rotbench gate: ❌ failed (2 of 4 checks failed)"),
        "{md}"
    );
    let summary_table = md.split("<details").next().unwrap();
    assert_eq!(
        summary_table
            .lines()
            .filter(|l| l.starts_with("| "))
            .count(),
        5,
        "{md}"
    );
    assert!(md.contains("a&lt;&amp;&gt;\"'"), "{md}");
    let ok = run(
        &ten(),
        Checks {
            min_accuracy: Some(0.0),
            ..Default::default()
        },
    );
    assert!(render_text(&ok).contains("gate passed: all 1 check passed"));
    assert!(render_markdown(&ok).contains("✅ passed"));
}

#[test]
fn a_baseline_saved_with_predictions_json_is_refused_with_the_way_to_save_it_again() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("old");
    std::fs::create_dir_all(&dir).unwrap();
    put(&dir, &saved(80, 10));
    std::fs::rename(dir.join("predictions.csv"), dir.join("predictions.json")).unwrap();
    let e = format!("{:#}", load_baseline("old", d.path()).unwrap_err());
    assert!(
        e.contains("earlier rotbench") && e.contains("--save-baseline old"),
        "{e}"
    );
}

/// Issue #31, case 2: a baseline of models `net` and `other` at 0° and 90°, and
/// current results with `net` alone at 0° only (the same 100 samples, all right).
fn shrunk() -> (Summary, Predictions, Baseline) {
    let n = 100;
    let labels = vec![0u32; n];
    let (bs, br) = fake(
        &[0.0, 90.0],
        &labels,
        &[
            ("net", vec![k_of(n, n), k_of(n, n)]),
            ("other", vec![k_of(n, n), k_of(n, n)]),
        ],
        SHA,
    );
    let (cs, cr) = fake(&[0.0], &labels, &[("net", vec![k_of(n, n)])], SHA);
    let baseline = Baseline {
        label: "main".into(),
        path: PathBuf::from("b/main"),
        predictions: Predictions::from_sweep(&bs, &br),
        summary: bs,
        origin: None,
    };
    let cp = Predictions::from_sweep(&cs, &cr);
    (cs, cp, baseline)
}

fn against_shrunk(extra: Checks) -> Verdict {
    let (s, cur, base) = shrunk();
    let checks = Checks {
        baseline: Some("main".into()),
        ..extra
    };
    evaluate(&s, &checks, Some((&base, &cur)), "r").unwrap()
}

#[test]
fn issue31_a_baseline_model_or_angle_missing_from_the_results_fails_the_regression_check() {
    let v = against_shrunk(Checks::default());
    assert!(!v.passed());
    let other = v.checks.iter().find(|c| c.model == "other").unwrap();
    assert!(!other.passed);
    assert!(
        other
            .detail
            .contains("model other is in baseline main but not in these results")
            && other.detail.contains("--allow-missing"),
        "{}",
        other.detail
    );
    let net = v.checks.iter().find(|c| c.model == "net").unwrap();
    assert!(!net.passed, "90° of net was never compared: {}", net.detail);
    assert_eq!(net.failing.len(), 1);
    assert_eq!(net.failing[0].pose.angle, 90.0);
    assert!(
        net.detail.contains("not in these results (90°)"),
        "{}",
        net.detail
    );
    // Every renderer names both.
    let junit = String::from_utf8(render_junit(&v)).unwrap();
    for text in [render_text(&v), render_markdown(&v), junit] {
        assert!(text.contains("other") && text.contains("90"), "{text}");
    }
}

#[test]
fn issue31_allow_missing_passes_what_left_on_purpose_with_a_note() {
    let v = against_shrunk(Checks {
        allow_missing: Some(true),
        ..Default::default()
    });
    assert!(v.passed(), "{}", render_text(&v));
    let other = v.checks.iter().find(|c| c.model == "other").unwrap();
    assert!(
        other.notes.iter().any(|n| n.contains("allow_missing")),
        "{other:?}"
    );
    let net = v.checks.iter().find(|c| c.model == "net").unwrap();
    assert!(net.notes.iter().any(|n| n.contains("90°")), "{net:?}");
}

#[test]
fn issue31_models_and_angles_the_user_names_limit_what_must_be_compared() {
    // --model net: the baseline's other model is not asked for.
    let v = against_shrunk(Checks {
        models: Some(vec!["net".into()]),
        angles: Some(AngleSel::List(vec![0.0])),
        ..Default::default()
    });
    assert!(v.passed(), "{}", render_text(&v));
    assert_eq!(v.checks.len(), 1);
    // The TOML key parses.
    let c = parse_config("[gate]\nallow_missing = true\n", Path::new("g.toml")).unwrap();
    assert_eq!(c.allow_missing, Some(true));
}

/// Issue 33: `[gate.check_angles]` gives one check its own angles, so "0° at
/// least 0.95, and no drop over 0.35 at any angle" is one file; a key for a check
/// that is not set, or for a sweep-wide check, is refused.
#[test]
fn check_angles_narrow_one_check_and_leave_the_others_on_every_angle() {
    let s = ten();
    let c = parse_config(
        "[gate]\nmin_accuracy = 0.95\nmax_drop = 0.25\n[gate.check_angles]\nmin_accuracy = [0]\n",
        Path::new("g.toml"),
    )
    .unwrap();
    let v = evaluate(&s, &c, None, "r").unwrap();
    let acc = v
        .checks
        .iter()
        .find(|c| c.title.contains("accuracy"))
        .unwrap();
    assert!(acc.passed, "0° alone: 10/10 >= 0.95: {acc:?}");
    assert!(
        acc.detail.contains("1 of 1 angle") || acc.detail.contains("at 0°"),
        "{}",
        acc.detail
    );
    let drop = v.checks.iter().find(|c| c.title.contains("drop")).unwrap();
    assert!(!drop.passed, "180° drops 0.3 > 0.25: {drop:?}");
    assert_eq!(drop.failing[0].pose.angle, 180.0);
    // Without check_angles, min_accuracy sees 180° too and fails.
    let all = Checks {
        check_angles: None,
        ..c.clone()
    };
    let v = evaluate(&s, &all, None, "r").unwrap();
    assert!(
        !v.checks
            .iter()
            .find(|c| c.title.contains("accuracy"))
            .unwrap()
            .passed
    );
    let e = parse_config(
        "[gate]\nmax_drop = 0.1\n[gate.check_angles]\nmin_accuracy = [0]\n",
        Path::new("g.toml"),
    )
    .unwrap()
    .validate_merged()
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("min_accuracy: that check is not set"),
        "{e:#}"
    );
    let e = parse_config(
        "[gate]\nmax_flip_probability = 0.1\n[gate.check_angles]\nmax_flip_probability = [0]\n",
        Path::new("g.toml"),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("not a per-angle check"), "{e:#}");
}

/// Issue 33: against a baseline, each failing angle of a threshold check is marked
/// new (the baseline passes there) or already failing; `only_new_failures` fails a
/// check only on new ones; the Markdown holds a per-angle table per check with the
/// baseline's value, this run's, the change and the paired p.
#[test]
fn failures_are_marked_new_or_already_failing_and_only_new_ones_can_fail_the_gate() {
    // At 90°: baseline 70/100 right, now 65/100 (60 in both, 10 only before, 5 only now).
    let (s, cur, base) = pair(60, 10, 5);
    let run = |t: f64, only_new: bool| {
        let checks = Checks {
            min_accuracy: Some(t),
            baseline: Some("main".into()),
            max_regression: Some(0.1),
            only_new_failures: only_new.then_some(true),
            ..Default::default()
        };
        evaluate(&s, &checks, Some((&base, &cur)), "r").unwrap()
    };
    // 0.8: both runs fail at 90°: already failing.
    let v = run(0.8, false);
    let acc = &v.checks[0];
    assert!(!acc.passed);
    let r90 = acc.rows.iter().find(|r| r.pose.angle == 90.0).unwrap();
    assert_eq!(r90.mark, Mark::Old);
    assert_eq!((r90.baseline, r90.now), (Some(0.7), 0.65));
    assert_eq!(r90.p, Some(crate::metrics::mcnemar_exact(10, 5)));
    assert_eq!(acc.baseline_failed, Some(true));
    let md = render_markdown(&v);
    assert!(md.contains("| 90° | 0.7000 | 0.6500 | -0.0500 |"), "{md}");
    assert!(
        md.contains("| Angle | Baseline | Now | Change | p | |\n|---|---|---|---|---|---|\n"),
        "{md}"
    );
    assert!(md.contains("⚠️ already failing on the baseline"), "{md}");
    let v = run(0.8, true);
    assert!(v.checks[0].passed, "{:?}", v.checks[0]);
    assert!(v.checks[0]
        .notes
        .iter()
        .any(|n| n.contains("fails only where baseline main fails too")));
    // 0.68: the baseline (0.70) passes, this run (0.65) does not: new, and it fails
    // the gate even with only_new_failures.
    let v = run(0.68, true);
    let acc = &v.checks[0];
    assert!(!acc.passed);
    assert_eq!(
        acc.rows.iter().find(|r| r.pose.angle == 90.0).unwrap().mark,
        Mark::New
    );
    assert!(render_markdown(&v).contains("❌ **new**"));
    // only_new_failures without a baseline is refused.
    let e = Checks {
        min_accuracy: Some(0.5),
        only_new_failures: Some(true),
        ..Default::default()
    }
    .validate_merged()
    .unwrap_err();
    assert!(format!("{e:#}").contains("add --baseline NAME"), "{e:#}");
}

/// predictions.csv, which a baseline stores, is written in pieces formatted a
/// round at a time beside the writer, each row straight into bytes: its bytes
/// must be one csv writer's, row by row, at any thread count (here more pieces
/// than a round; model names and sources that need quotes; a translated pose;
/// numbers of every size, NaN and invalid predictions).
#[test]
fn predictions_csv_in_pieces_is_one_writer_row_by_row() {
    use crate::report::csv::{prediction_row, predictions_csv, rows};
    use crate::results::{top_k_text, PREDICTION_COLUMNS};
    let n = 40_000;
    let labels: Vec<u32> = (0..n).map(|s| (s % 10) as u32).collect();
    let p = |k: usize| -> Vec<i32> { (0..n).map(|s| ((s * k + s / 7) % 10) as i32).collect() };
    let models = [
        ("a", vec![p(1), p(3), p(7)]),
        ("b,c", vec![p(2), p(5), p(9)]),
        ("say \"d\"\n", vec![p(4), p(6), p(8)]),
    ];
    let (summary, mut sweep) = fake(&[0.0, 37.5, 90.0], &labels, &models, SHA);
    sweep.poses[1].dx = -2.5;
    sweep.poses[1].dy = 1e16;
    let sources = ["x.png", "a,b.png", "q\"uote.png", "line\rbreak", ""];
    for (s, source) in sweep.sources.iter_mut().enumerate() {
        *source = format!("{}#{s}", sources[s % sources.len()]);
    }
    let mut state = 5u64;
    let mut draw = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        f32::from_bits((state >> 32) as u32)
    };
    for col in sweep.models.iter_mut().flat_map(|m| m.cols.iter_mut()) {
        for s in 0..n {
            col.confidence[s] = draw();
            col.p_true[s] = draw().abs();
            col.brier[s] = draw();
            if s % 97 == 0 {
                col.preds[s] = crate::metrics::INVALID;
                col.confidence[s] = f32::NAN;
            }
        }
    }
    let mut one = rows(Vec::new());
    one.write_record(PREDICTION_COLUMNS).unwrap();
    for (m, ms) in summary.models.iter().zip(&sweep.models) {
        for (ai, &pose) in sweep.poses.iter().enumerate() {
            for s in 0..n {
                let top_k = top_k_text(ms.top_k_list(ai, s));
                let row = prediction_row(&m.id.name, pose, &sweep, &ms.cols[ai], s, &top_k);
                one.serialize(row).unwrap();
            }
        }
    }
    let one = one.into_inner().unwrap();
    assert!(one.len() > 200_000);
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let pieces = pool.install(|| predictions_csv(&summary, &sweep)).unwrap();
        assert!(pieces == one, "{threads} threads: the bytes differ");
    }
}
