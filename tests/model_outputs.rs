//! Issue #21, "Models that mislead": a model traced in training mode (results
//! change from run to run) is refused unless asked for; tuple and dict outputs are
//! accepted, the element used is recorded in the spec (summary.json and the cache
//! key), and a wrong choice is named for what it is. Fixtures:
//! tests/fixtures/models/make_mislead.py (tuple_out and dict_out hold the same
//! centroid logits, accuracy about 0.7, beside `aux` = -logits, which scores about 0).

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/models").join(name)
}

/// `rotbench sweep` of `model` on MNIST (the first 100 test images at 0° unless
/// `extra` gives `--limit` or `--angles`).
fn sweep(model: &Path, out: &Path, cache: Option<&Path>, extra: &[&str]) -> Run {
    let mut args = vec![
        "sweep",
        "--model",
        s(model),
        "--data",
        s(mnist()),
        "--out",
        s(out),
        "--no-report",
        "--quiet",
    ];
    if !extra.contains(&"--limit") {
        args.extend(["--limit", "100"]);
    }
    if !extra.contains(&"--angles") {
        args.extend(["--angles", "0"]);
    }
    args.extend(extra);
    run(&args, cache)
}

fn accuracy_at_0(out: &Path) -> f64 {
    summary(out)["models"][0]["angles"][0]["accuracy"]
        .as_f64()
        .unwrap()
}

fn model0(out: &Path) -> Value {
    summary(out)["models"][0].clone()
}

/// The first line of a failed run's stderr (the error), checked for exit 2.
fn refused(r: &Run) -> String {
    assert_eq!(r.code, 2, "expected exit 2:\n{}", r.stderr);
    r.stderr.lines().next().unwrap_or_default().to_string()
}

fn expect(line: &str, parts: &[&str]) {
    for p in parts {
        assert!(line.contains(p), "expected `{p}` in:\n{line}");
    }
}

#[test]
fn a_model_traced_in_training_mode_is_refused_with_exit_2_and_the_eval_fix() {
    let t = tempfile::tempdir().unwrap();
    for backend in [&[][..], &["--exact"][..]] {
        let out = t.path().join("out");
        let first = refused(&sweep(&fixture("training_mode.pt"), &out, None, backend));
        expect(
            &first,
            &[
                "training_mode.pt: modules bn1, drop are in training mode",
                "BatchNorm uses batch statistics and Dropout drops at random",
                "results change from run to run",
                "torch.jit.trace(model.eval(), x)",
                "--allow-training-mode",
            ],
        );
        assert!(!out.join("summary.json").exists(), "nothing is written");
    }
    // inspect shows it instead of refusing.
    let r = run(&["inspect", s(fixture("training_mode.pt"))], None);
    assert_eq!(r.code, 0);
    expect(
        &r.stdout,
        &["training yes: bn1 (batch_norm), drop (dropout)"],
    );
}

#[test]
fn allow_training_mode_runs_it_with_a_warning_in_summary_json_and_never_caches_its_draws() {
    let t = tempfile::tempdir().unwrap();
    // One shared cache: had the first run's predictions been cached, the second
    // would read them back and the two would agree.
    let cache = t.path().join("cache");
    let allow = &["--allow-training-mode", "--angles", "0,90"];
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    for out in [&a, &b] {
        let r = sweep(&fixture("training_mode.pt"), out, Some(&cache), allow);
        assert_eq!(r.code, 0, "{}", r.stderr);
        expect(
            &r.stderr,
            &[
                "warning: ",
                "modules bn1, drop are in training mode",
                "not used",
            ],
        );
    }
    let warnings = model0(&a)["warnings"].clone();
    let w = warnings[0].as_str().unwrap_or_default();
    expect(
        w,
        &[
            "training_mode.pt: modules bn1, drop are in training mode",
            "--allow-training-mode",
            "change from run to run",
        ],
    );
    let timing: Value = serde_json::from_slice(&fs::read(b.join("timing.json")).unwrap()).unwrap();
    assert_eq!(timing["cached_pairs"], 0);
    assert_ne!(
        fs::read(a.join("predictions.csv")).unwrap(),
        fs::read(b.join("predictions.csv")).unwrap(),
        "Dropout in training mode draws anew on every run"
    );
    // A model in eval mode carries no warnings field at all.
    let plain = t.path().join("plain");
    assert_eq!(sweep(&bundled_model(), &plain, None, &[]).code, 0);
    assert!(model0(&plain).get("warnings").is_none());
}

#[test]
fn a_tuple_output_uses_element_0_and_output_index_picks_another() {
    let t = tempfile::tempdir().unwrap();
    // A shared cache: the choice is part of the key, so no run reuses another's.
    let cache = t.path().join("cache");
    let model = fixture("tuple_out.pt");
    let default = t.path().join("default");
    assert_eq!(sweep(&model, &default, Some(&cache), &[]).code, 0);
    let m = model0(&default);
    assert_eq!(m["spec"]["output_index"], 0, "the choice is recorded");
    assert_eq!(
        m["spec_sources"]["output-index"],
        "default (forward returns a tuple; element 0)"
    );
    let acc0 = accuracy_at_0(&default);
    assert!(acc0 > 0.5, "element 0 holds the logits: {acc0}");

    let aux = t.path().join("aux");
    assert_eq!(
        sweep(&model, &aux, Some(&cache), &["--output-index", "1"]).code,
        0
    );
    assert_eq!(model0(&aux)["spec"]["output_index"], 1);
    assert_eq!(
        model0(&aux)["spec_sources"]["output-index"],
        "flag --output-index"
    );
    let acc1 = accuracy_at_0(&aux);
    assert!(acc1 < 0.1, "element 1 is -logits: {acc1}");

    let first = refused(&sweep(
        &model,
        &t.path().join("x"),
        None,
        &["--output-index", "3"],
    ));
    expect(
        &first,
        &[
            "flag --output-index: output_index 3 is out of range",
            "a tuple of 3 elements",
            "give 0 to 2",
        ],
    );
    let first = refused(&sweep(
        &model,
        &t.path().join("x"),
        None,
        &["--output-index", "2"],
    ));
    expect(
        &first,
        &[
            "element 2 is List[Tensor], not a tensor of logits",
            "--output-index N",
        ],
    );
    assert!(
        !first.contains("--input-size"),
        "not the input's fault: {first}"
    );
    let first = refused(&sweep(
        &model,
        &t.path().join("x"),
        None,
        &["--output-key", "logits"],
    ));
    expect(&first, &["returns a tuple", "--output-index N"]);
}

#[test]
fn a_dict_output_without_output_key_lists_the_keys() {
    let t = tempfile::tempdir().unwrap();
    let model = fixture("dict_out.pt");
    let out = t.path().join("out");
    let first = refused(&sweep(&model, &out, None, &[]));
    expect(
        &first,
        &[
            "dict_out.pt: forward returned a dict with keys `aux`, `logits`",
            "--output-key NAME",
        ],
    );
    assert!(
        !first.contains("--input-size"),
        "not the input's fault: {first}"
    );
    let first = refused(&sweep(&model, &out, None, &["--output-key", "scores"]));
    expect(
        &first,
        &[
            "a dict without the key `scores`; its keys are `aux`, `logits`",
            "from flag --output-key",
        ],
    );
    let first = refused(&sweep(&model, &out, None, &["--output-index", "0"]));
    expect(
        &first,
        &["returns a Dict[str, Tensor]", "--output-key NAME"],
    );

    assert_eq!(
        sweep(&model, &out, None, &["--output-key", "logits"]).code,
        0
    );
    assert_eq!(model0(&out)["spec"]["output_key"], "logits");
    assert!(accuracy_at_0(&out) > 0.5);
    assert_eq!(sweep(&model, &out, None, &["--output-key", "aux"]).code, 0);
    assert!(accuracy_at_0(&out) < 0.1);
    let r = run(&["inspect", s(&model), "--output-key", "logits"], None);
    expect(
        &r.stdout,
        &["returns  Dict[str, Tensor]; logits under `logits`   from flag --output-key"],
    );
}

#[test]
fn the_sidecar_can_choose_the_output_and_a_flag_overrides_it() {
    let t = tempfile::tempdir().unwrap();
    let with_sidecar = |name: &str, choice: &str| {
        let pt = t.path().join(format!("{name}.pt"));
        fs::copy(fixture(&format!("{name}.pt")), &pt).unwrap();
        let mut spec: Value =
            serde_json::from_slice(&fs::read(fixture(&format!("{name}.json"))).unwrap()).unwrap();
        let (k, v): (&str, Value) = serde_json::from_str(choice).unwrap();
        spec[k] = v;
        fs::write(pt.with_extension("json"), spec.to_string()).unwrap();
        pt
    };
    let tuple = with_sidecar("tuple_out", r#"["output_index", 1]"#);
    let out = t.path().join("out");
    assert_eq!(sweep(&tuple, &out, None, &[]).code, 0);
    assert!(accuracy_at_0(&out) < 0.1, "the sidecar picked element 1");
    let src = model0(&out)["spec_sources"]["output-index"].clone();
    assert!(src.as_str().unwrap().starts_with("sidecar "), "{src}");
    assert_eq!(sweep(&tuple, &out, None, &["--output-index", "0"]).code, 0);
    assert!(accuracy_at_0(&out) > 0.5, "the flag wins over the sidecar");

    let dict = with_sidecar("dict_out", r#"["output_key", "logits"]"#);
    assert_eq!(sweep(&dict, &out, None, &[]).code, 0);
    assert!(accuracy_at_0(&out) > 0.5);
    assert_eq!(sweep(&dict, &out, None, &["--output-key", "aux"]).code, 0);
    assert!(accuracy_at_0(&out) < 0.1, "the flag wins over the sidecar");
    // A model that returns a tensor keeps its spec JSON: no output field.
    assert_eq!(sweep(&bundled_model(), &out, None, &[]).code, 0);
    let m = model0(&out);
    assert!(m["spec"].get("output_index").is_none() && m["spec"].get("output_key").is_none());
    assert!(m["spec_sources"].get("output-index").is_none());
}

#[test]
fn two_runs_without_cache_give_the_same_bytes_for_each_bundled_model_and_backend() {
    let t = tempfile::tempdir().unwrap();
    let mut models: Vec<PathBuf> = fs::read_dir(root().join("models"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pt"))
        .collect();
    models.sort();
    assert_eq!(models.len(), 3, "{models:?}");
    for model in &models {
        for backend in [&[][..], &["--exact"][..]] {
            let name = format!(
                "{}{}",
                model.file_stem().unwrap().to_string_lossy(),
                backend.join("")
            );
            let (a, b) = (
                t.path().join(format!("{name}-a")),
                t.path().join(format!("{name}-b")),
            );
            // 300 samples and --batch-size auto: the batch size it picks may differ.
            let mut extra = vec!["--no-cache", "--limit", "300", "--angles", "0,45"];
            extra.extend(backend);
            for out in [&a, &b] {
                let r = sweep(model, out, None, &extra);
                assert_eq!(r.code, 0, "{name}: {}", r.stderr);
            }
            assert_same_files(&a, &b, &EXACT_FILES);
        }
    }
}
