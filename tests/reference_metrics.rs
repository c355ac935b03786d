//! rotbench's metrics against scikit-learn 1.9, statsmodels and scipy, using the
//! fixtures that `tests/fixtures/make_fixtures.py` generated. Tolerance 1e-12.

use rotbench::metrics::{mcnemar_exact, report, wilson, Confusion, Normalize, Paired};
use serde_json::Value;

const TOL: f64 = 1e-12;

fn load(name: &str) -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn close(what: &str, got: f64, want: f64, worst: &mut f64) {
    let d = (got - want).abs();
    *worst = worst.max(d);
    assert!(
        d <= TOL,
        "{what}: rotbench {got} vs reference {want} (diff {d:e})"
    );
}

#[test]
fn every_scikit_learn_case_matches_to_1e_12() {
    let fx = load("sklearn_metrics.json");
    let cases = fx["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 20,
        "need at least 20 cases, have {}",
        cases.len()
    );
    let mut worst = 0.0f64;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let n = case["n_classes"].as_u64().unwrap() as usize;
        let yt: Vec<u32> = case["y_true"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let yp: Vec<i32> = case["y_pred"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap() as i32)
            .collect();
        let cm = Confusion::from_labels(&yt, &yp, n);
        let r = report(&cm);
        close(
            &format!("{name} accuracy"),
            r.accuracy,
            f(&case["accuracy"]),
            &mut worst,
        );
        for c in 0..n {
            close(
                &format!("{name} precision[{c}]"),
                r.per_class[c].precision,
                f(&case["precision"][c]),
                &mut worst,
            );
            close(
                &format!("{name} recall[{c}]"),
                r.per_class[c].recall,
                f(&case["recall"][c]),
                &mut worst,
            );
            close(
                &format!("{name} f1[{c}]"),
                r.per_class[c].f1,
                f(&case["f1"][c]),
                &mut worst,
            );
            assert_eq!(
                r.per_class[c].support as f64,
                f(&case["support"][c]),
                "{name} support[{c}]"
            );
        }
        for (key, avg) in [
            ("macro", r.macro_avg),
            ("micro", r.micro_avg),
            ("weighted", r.weighted_avg),
        ] {
            close(
                &format!("{name} {key} precision"),
                avg.precision,
                f(&case[key]["precision"]),
                &mut worst,
            );
            close(
                &format!("{name} {key} recall"),
                avg.recall,
                f(&case[key]["recall"]),
                &mut worst,
            );
            close(
                &format!("{name} {key} f1"),
                avg.f1,
                f(&case[key]["f1"]),
                &mut worst,
            );
        }
        let rows = cm.rows();
        for t in 0..n {
            for p in 0..n {
                assert_eq!(
                    rows[t][p],
                    case["confusion"][t][p].as_u64().unwrap(),
                    "{name} confusion[{t}][{p}]"
                );
            }
        }
        for (key, norm) in [
            ("confusion_true", Normalize::True),
            ("confusion_pred", Normalize::Pred),
            ("confusion_all", Normalize::All),
        ] {
            let m = cm.normalized(norm);
            for t in 0..n {
                for p in 0..n {
                    close(
                        &format!("{name} {key}[{t}][{p}]"),
                        m[t * n + p],
                        f(&case[key][t][p]),
                        &mut worst,
                    );
                }
            }
        }
        // classification_report(output_dict=True)
        let rep = &case["report"];
        for c in 0..n {
            let e = &rep[c.to_string()];
            close(
                &format!("{name} report[{c}].f1-score"),
                r.per_class[c].f1,
                f(&e["f1-score"]),
                &mut worst,
            );
            close(
                &format!("{name} report[{c}].precision"),
                r.per_class[c].precision,
                f(&e["precision"]),
                &mut worst,
            );
            assert_eq!(r.per_class[c].support as f64, f(&e["support"]));
        }
        close(
            &format!("{name} report accuracy"),
            r.accuracy,
            f(&rep["accuracy"]),
            &mut worst,
        );
        close(
            &format!("{name} report macro f1"),
            r.macro_avg.f1,
            f(&rep["macro avg"]["f1-score"]),
            &mut worst,
        );
        close(
            &format!("{name} report weighted recall"),
            r.weighted_avg.recall,
            f(&rep["weighted avg"]["recall"]),
            &mut worst,
        );
    }
    eprintln!(
        "scikit-learn metrics: {} cases, max |diff| {worst:e}",
        cases.len()
    );
}

#[test]
fn wilson_intervals_match_statsmodels() {
    let fx = load("stats.json");
    let mut worst = 0.0f64;
    for c in fx["wilson"].as_array().unwrap() {
        let (k, n) = (c["k"].as_u64().unwrap(), c["n"].as_u64().unwrap());
        let (lo, hi) = wilson(k, n);
        close(
            &format!("wilson({k},{n}) low"),
            lo,
            f(&c["low"]),
            &mut worst,
        );
        close(
            &format!("wilson({k},{n}) high"),
            hi,
            f(&c["high"]),
            &mut worst,
        );
    }
    eprintln!("Wilson: max |diff| {worst:e}");
}

#[test]
fn exact_mcnemar_matches_statsmodels() {
    let fx = load("stats.json");
    let mut worst = 0.0f64;
    for c in fx["mcnemar"].as_array().unwrap() {
        let (b, cc) = (c["b"].as_u64().unwrap(), c["c"].as_u64().unwrap());
        close(
            &format!("mcnemar({b},{cc})"),
            mcnemar_exact(b, cc),
            f(&c["pvalue"]),
            &mut worst,
        );
    }
    eprintln!("McNemar: max |diff| {worst:e}");
}

fn paired(c: &Value) -> Paired {
    let mut p = Paired::default();
    for (a, b) in c["a"]
        .as_array()
        .unwrap()
        .iter()
        .zip(c["b"].as_array().unwrap())
    {
        p.add(a.as_u64().unwrap() == 1, b.as_u64().unwrap() == 1);
    }
    p
}

#[test]
fn error_consistency_matches_cohen_kappa_score() {
    let fx = load("stats.json");
    let mut worst = 0.0f64;
    for c in fx["kappa"].as_array().unwrap() {
        close(
            c["name"].as_str().unwrap(),
            paired(c).kappa(),
            f(&c["kappa"]),
            &mut worst,
        );
    }
    // Where scikit-learn gives NaN (both vectors constant and equal), rotbench gives 1.
    for c in fx["kappa_undefined"].as_array().unwrap() {
        assert_eq!(paired(c).kappa(), 1.0, "{}", c["name"]);
    }
    eprintln!("kappa: max |diff| {worst:e}");
}
