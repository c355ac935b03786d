//! Issue 35, published protocols behind `--protocol NAME`: each against a Python
//! transcription of its reference code (`tests/fixtures/protocols/make_protocols.py`,
//! run on the models and images it made): ImageNet-P rotate (hendrycks/robustness)
//! with a ResNet-18-layout model over 20 JPEGs x 31 frames, and model-vs-human's
//! rotation with a 1,000-class model over 16 category folders; ImageNet-P on a
//! folder of the same images without labels; the overrides, the
//! `rotbench protocols` listing and docs/protocols.md.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/protocols")
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
}

fn sweep(out: &Path, protocol: &str, model: &str, data: &str, extra: &[&str]) -> Run {
    let model = fixtures().join(model);
    let data = fixtures().join(data);
    let mut a = vec![
        "sweep",
        "--protocol",
        protocol,
        "--model",
        s(&model),
        "--data",
        s(&data),
        "--out",
        s(out),
        "--no-cache",
        "--no-report",
        "--bootstrap",
        "0",
    ];
    a.extend_from_slice(extra);
    run(&a, None)
}

fn figure(out: &Path, name: &str) -> f64 {
    let s = summary(out);
    let figs = s["protocol"]["models"][0]["figures"].as_array().unwrap();
    figs.iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name} in {figs:?}"))["value"]
        .as_f64()
        .unwrap()
}

fn imagenet_p(out: &Path, extra: &[&str]) -> Run {
    sweep(
        out,
        "imagenet-p-rotate",
        "resnet18_mini.pt",
        "imagenet_p",
        extra,
    )
}

#[test]
fn imagenet_p_rotate_predicts_every_frame_as_the_transcription_of_hendrycks_robustness() {
    let want = reference("imagenet_p_reference.json");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = imagenet_p(&out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The protocol set its angles, in the frames' order: 15 down to -15.
    let s = summary(&out);
    let angles: Vec<f64> = s["settings"]["angles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    let frames: Vec<f64> = want["angles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    assert_eq!(angles, frames);
    assert_eq!(s["settings"]["interpolation"], "pil-bilinear");
    assert_eq!(s["settings"]["protocol"]["name"], "imagenet-p-rotate");
    assert_eq!(
        s["settings"]["protocol"]["overrides"],
        serde_json::json!([])
    );
    assert_eq!(
        frames_as_transcribed(&out, &want, &|f| f.to_string()),
        20 * 31
    );
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9;
    let fp = figure(&out, "flip_probability");
    let t5 = figure(&out, "top5_distance");
    assert!(
        close(fp, want["flip_probability"]["1"].as_f64().unwrap()),
        "{fp}"
    );
    assert!(
        close(t5, want["top5_distance"]["1"].as_f64().unwrap()),
        "{t5}"
    );
    assert!(
        r.stdout.contains("--protocol imagenet-p-rotate:"),
        "{}",
        r.stdout
    );
}

/// Check every frame's top-1 and top-5 in `out`'s predictions.csv against the
/// transcription's, the file `f` of the fixture being `source(f)` in the run;
/// returns the rows checked.
fn frames_as_transcribed(out: &Path, want: &Value, source: &dyn Fn(&str) -> String) -> usize {
    let frames = want["angles"].as_array().unwrap();
    let rows = read_csv(&out.join("predictions.csv"));
    let mut checked = 0;
    for (fi, file) in want["files"].as_array().unwrap().iter().enumerate() {
        let file = source(file.as_str().unwrap());
        for (k, angle) in frames.iter().enumerate() {
            let angle = angle.as_f64().unwrap();
            let row = rows
                .iter()
                .find(|r| r["source"] == file && r["angle"].parse::<f64>().unwrap() == angle)
                .unwrap_or_else(|| panic!("no row for {file} at {angle}"));
            let top1 = want["top1"][fi][k].as_i64().unwrap();
            assert_eq!(row["pred"], top1.to_string(), "{file} frame {k} ({angle}°)");
            let top5: Vec<String> = want["top5"][fi][k]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.to_string())
                .collect();
            assert_eq!(
                row["top_k"],
                top5.join(" "),
                "{file} frame {k} ({angle}°): top-5"
            );
            checked += 1;
        }
    }
    checked
}

/// The ImageNet-P fixture's 20 JPEGs in one folder without class folders, each
/// named `<class>-<file>` (the transcription's `<class>/<file>`).
fn imagenet_p_without_labels(dir: &Path) -> PathBuf {
    let flat = dir.join("frames");
    std::fs::create_dir_all(&flat).unwrap();
    let want = reference("imagenet_p_reference.json");
    for f in want["files"].as_array().unwrap() {
        let f = f.as_str().unwrap();
        std::fs::copy(
            fixtures().join("imagenet_p").join(f),
            flat.join(f.replace('/', "-")),
        )
        .unwrap();
    }
    flat
}

#[test]
fn imagenet_p_rotate_reads_a_folder_without_labels_and_computes_only_label_free_figures() {
    let want = reference("imagenet_p_reference.json");
    let t = tempfile::tempdir().unwrap();
    let flat = imagenet_p_without_labels(t.path());
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9;
    for d in ["1", "2"] {
        let out = t.path().join(format!("d{d}"));
        let model = fixtures().join("resnet18_mini.pt");
        let r = run(
            &[
                "sweep",
                "--protocol",
                "imagenet-p-rotate",
                "--model",
                s(&model),
                "--data",
                s(&flat),
                "--out",
                s(&out),
                "--no-cache",
                "--difficulty",
                d,
                "--bootstrap",
                "200",
            ],
            None,
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let n = frames_as_transcribed(&out, &want, &|f| f.replace('/', "-"));
        assert_eq!(n, 20 * 31);
        let fp = figure(&out, "flip_probability");
        let t5 = figure(&out, "top5_distance");
        assert!(
            close(fp, want["flip_probability"][d].as_f64().unwrap()),
            "d {d}: {fp}"
        );
        assert!(
            close(t5, want["top5_distance"][d].as_f64().unwrap()),
            "d {d}: {t5}"
        );
        // Nothing that needs a label is in any file, not even as a zero.
        let s = summary(&out);
        assert_eq!(s["dataset"]["labelled"], false);
        assert_eq!(s["dataset"]["format"], "image-folder-unlabelled");
        let text = std::fs::read_to_string(out.join("summary.json")).unwrap();
        for word in ["accuracy", "\"ece\"", "f1_", "confusion", "\"label\""] {
            assert!(!text.contains(word), "summary.json holds {word}");
        }
        let per_angle = std::fs::read_to_string(out.join("per_angle.csv")).unwrap();
        let preds = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
        for head in [
            per_angle.lines().next().unwrap(),
            preds.lines().next().unwrap(),
        ] {
            for word in ["accuracy", "label", "correct", "p_true", "ece"] {
                assert!(!head.contains(word), "{head}");
            }
        }
        for absent in [
            "per_class.csv",
            "confusion.csv",
            "summary.csv",
            "index.html",
        ] {
            assert!(!out.join(absent).exists(), "{absent}");
        }
        let m = &s["models"][0];
        assert_eq!(m["flip_probability"].as_f64().unwrap(), fp);
        let [lo, hi] = [0, 1].map(|i| m["flip_probability_ci"][i].as_f64().unwrap());
        assert!(lo <= fp && fp <= hi, "{lo} {fp} {hi}");
        assert!(r.stdout.contains("samples without labels"), "{}", r.stdout);
    }
}

#[test]
fn a_run_without_labels_is_refused_by_the_gate_and_the_report_and_serves_as_a_reference() {
    let t = tempfile::tempdir().unwrap();
    let flat = imagenet_p_without_labels(t.path());
    let base = t.path().join("base");
    let r = sweep(
        &base,
        "imagenet-p-rotate",
        "resnet18_mini.pt",
        s(&flat),
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let gate = run(
        &["gate", "--results", s(&base), "--min-accuracy", "0.5"],
        None,
    );
    assert_eq!(gate.code, 2, "{}", gate.stderr);
    assert!(
        gate.stderr.contains("without labels") && gate.stderr.contains("summary.json"),
        "{}",
        gate.stderr
    );
    let report = run(&["report", s(&base)], None);
    assert_eq!(report.code, 2, "{}", report.stderr);
    assert!(
        report
            .stderr
            .contains("`rotbench report` needs a labelled run"),
        "{}",
        report.stderr
    );
    // A labelled run relative to the unlabelled one: the same model, the same frames.
    let out = t.path().join("o");
    let r = imagenet_p(&out, &["--relative-to", s(&base)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(figure(&out, "relative_flip_probability"), 1.0);
    assert_eq!(figure(&out, "relative_top5_distance"), 1.0);
    // And the other way round.
    let back = t.path().join("back");
    let r = sweep(
        &back,
        "imagenet-p-rotate",
        "resnet18_mini.pt",
        s(&flat),
        &["--relative-to", s(&out)],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(figure(&back, "relative_top5_distance"), 1.0);
}

#[test]
fn a_folder_without_class_folders_needs_a_protocol_without_labels_and_refuses_label_flags() {
    let t = tempfile::tempdir().unwrap();
    let flat = imagenet_p_without_labels(t.path());
    let model = fixtures().join("resnet18_mini.pt");
    let plain = run(
        &[
            "sweep",
            "--model",
            s(&model),
            "--data",
            s(&flat),
            "--angles",
            "0,90",
            "--out",
            s(&t.path().join("a")),
            "--no-cache",
        ],
        None,
    );
    assert_eq!(plain.code, 2, "{}", plain.stderr);
    assert!(
        plain.stderr.contains("no class folders")
            && plain.stderr.contains("--protocol imagenet-p-rotate"),
        "{}",
        plain.stderr
    );
    let mvh = sweep(
        &t.path().join("b"),
        "model-vs-human-rotation",
        "wide_1000_rgb224.pt",
        s(&flat),
        &[],
    );
    assert_eq!(mvh.code, 2, "{}", mvh.stderr);
    assert!(mvh.stderr.contains("no class folders"), "{}", mvh.stderr);
    let inspect = run(
        &[
            "inspect",
            s(&model),
            "--protocol",
            "imagenet-p-rotate",
            "--data",
            s(&flat),
        ],
        None,
    );
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    assert!(
        inspect.stdout.contains("20 images, no class folders")
            && inspect.stdout.contains("without labels"),
        "{}",
        inspect.stdout
    );
    let cfg = t.path().join("gate.toml");
    std::fs::write(&cfg, "[gate]\nmin_accuracy = 0.5\n").unwrap();
    for extra in [
        vec!["--gate-config", s(&cfg)],
        vec!["--shard", "0/2"],
        vec!["--worst-of", "3"],
    ] {
        let r = sweep(
            &t.path().join("c"),
            "imagenet-p-rotate",
            "resnet18_mini.pt",
            s(&flat),
            &extra,
        );
        assert_eq!(r.code, 2, "{extra:?}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("{}: --data", extra[0]))
                && r.stderr.contains("without labels"),
            "{}",
            r.stderr
        );
        assert!(!t.path().join("c").join("summary.json").exists());
    }
}

#[test]
fn imagenet_p_difficulties_two_and_three_match_test_py_and_are_noted_as_overrides() {
    let want = reference("imagenet_p_reference.json");
    let t = tempfile::tempdir().unwrap();
    for d in ["2", "3"] {
        let out = t.path().join(d);
        let r = imagenet_p(&out, &["--difficulty", d]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("--protocol imagenet-p-rotate sets --difficulty 1; --difficulty")
                && r.stderr.contains("no longer the published protocol's"),
            "{}",
            r.stderr
        );
        let s = summary(&out);
        assert_eq!(s["settings"]["difficulty"], d.parse::<u64>().unwrap());
        assert_eq!(
            s["settings"]["protocol"]["overrides"][0]["flag"],
            "--difficulty"
        );
        let fp = figure(&out, "flip_probability");
        let t5 = figure(&out, "top5_distance");
        assert!(
            (fp - want["flip_probability"][d].as_f64().unwrap()).abs() <= 1e-9,
            "d={d}: {fp}"
        );
        assert!(
            (t5 - want["top5_distance"][d].as_f64().unwrap()).abs() <= 1e-9,
            "d={d}: {t5}"
        );
    }
}

#[test]
fn relative_to_divides_by_the_reference_runs_one_model_and_refuses_unlike_runs() {
    let t = tempfile::tempdir().unwrap();
    let base = t.path().join("alexnet-stand-in");
    assert_eq!(imagenet_p(&base, &[]).code, 0);
    let out = t.path().join("o");
    let r = imagenet_p(&out, &["--relative-to", s(&base)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(figure(&out, "relative_flip_probability"), 1.0);
    assert_eq!(figure(&out, "relative_top5_distance"), 1.0);
    assert_eq!(
        summary(&out)["protocol"]["relative_to_model"],
        "resnet18_mini"
    );
    // Another difficulty, another protocol, or no run at all: exit 2, named.
    let r = imagenet_p(
        &t.path().join("d2"),
        &["--difficulty", "2", "--relative-to", s(&base)],
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--difficulty 1, this one 2"),
        "{}",
        r.stderr
    );
    let mvh = t.path().join("mvh");
    assert_eq!(model_vs_human(&mvh, &[]).code, 0);
    let r = imagenet_p(&t.path().join("x"), &["--relative-to", s(&mvh)]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("that run was --protocol model-vs-human-rotation"),
        "{}",
        r.stderr
    );
    let r = model_vs_human(&t.path().join("y"), &["--relative-to", s(&base)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("has no relative figures"), "{}", r.stderr);
    let r = imagenet_p(
        &t.path().join("z"),
        &["--relative-to", s(&t.path().join("nothing"))],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--relative-to"), "{}", r.stderr);
}

fn model_vs_human(out: &Path, extra: &[&str]) -> Run {
    sweep(
        out,
        "model-vs-human-rotation",
        "wide_1000_rgb224.pt",
        "model_vs_human",
        extra,
    )
}

/// Each (file, condition)'s decision in a model-vs-human run, as category names.
fn decisions(out: &Path, want: &Value) -> Vec<Vec<String>> {
    let rows = read_csv(&out.join("predictions.csv"));
    let cats: Vec<&str> = want["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    want["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            want["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let r = rows
                        .iter()
                        .find(|r| r["source"] == f.as_str().unwrap() && r["angle"] == c.to_string())
                        .unwrap();
                    cats[r["pred"].parse::<usize>().unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn model_vs_human_rotation_decides_and_scores_as_its_transcription() {
    let want = reference("model_vs_human_reference.json");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = model_vs_human(&out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = decisions(&out, &want);
    let expected: Vec<Vec<String>> = serde_json::from_value(want["decision"].clone()).unwrap();
    assert_eq!(got, expected);
    for c in ["0", "90", "180", "270"] {
        let a = figure(&out, &format!("accuracy_{c}"));
        assert!(
            (a - want["accuracy"][c].as_f64().unwrap()).abs() <= 1e-9,
            "{c}: {a}"
        );
    }
    let ood = figure(&out, "ood_accuracy");
    assert!(
        (ood - want["ood_accuracy"].as_f64().unwrap()).abs() <= 1e-9,
        "{ood}"
    );
    // The bundled map is the transcription's, category for category.
    let s = summary(&out);
    let spec = &s["models"][0]["spec"];
    assert_eq!(spec["class_map_rule"], "mean");
    assert_eq!(spec["preprocess"]["grayscale"], "rec709");
    assert_eq!(spec["preprocess"]["desaturate"], true);
    for (i, (cat, idx)) in rotbench::protocols::human16::CATEGORIES.iter().enumerate() {
        assert_eq!(want["categories"][i], *cat);
        let theirs: Vec<usize> = serde_json::from_value(want["indices"][cat].clone()).unwrap();
        assert_eq!(theirs, idx.to_vec(), "{cat}");
    }
}

#[test]
fn the_sum_rule_beside_the_protocol_is_a_noted_override_that_decides_by_the_sum() {
    let want = reference("model_vs_human_reference.json");
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = model_vs_human(&out, &["--class-map-rule", "sum"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("sets --class-map-rule mean; --class-map-rule sum given"),
        "{}",
        r.stderr
    );
    let got = decisions(&out, &want);
    let expected: Vec<Vec<String>> = serde_json::from_value(want["sum_decision"].clone()).unwrap();
    assert_eq!(got, expected);
    let mean: Vec<Vec<String>> = serde_json::from_value(want["decision"].clone()).unwrap();
    assert_ne!(got, mean, "the fixture is one where the rules disagree");
    let o = &summary(&out)["settings"]["protocol"]["overrides"][0];
    assert_eq!(
        (
            o["flag"].as_str(),
            o["protocol"].as_str(),
            o["given"].as_str()
        ),
        (Some("--class-map-rule"), Some("mean"), Some("sum"))
    );
}

/// The stimuli themselves, pixel for pixel: grey by scikit-image's weights, x 255
/// truncated, turned by exact quarter turns, three channels (sha256 of the HxWx3
/// bytes from the transcription).
#[test]
fn model_vs_human_stimuli_are_the_transcriptions_pixel_for_pixel() {
    use rotbench::dataset::decode::decode;
    use rotbench::rotate::{to_u8, Geometry, RotateOptions, RotationPlan};
    use rotbench::spec::Grayscale;
    let check = reference("model_vs_human_stimuli_check.json");
    let mut n = 0;
    for (file, conds) in check["files"].as_object().unwrap() {
        let bytes = std::fs::read(fixtures().join("model_vs_human").join(file)).unwrap();
        let (planes, _) = decode(&bytes).unwrap();
        let grey = planes.to_grey(Grayscale::Rec709);
        let (h, w) = (grey.height, grey.width);
        for (cond, sha) in conds.as_object().unwrap() {
            let plan = RotationPlan::new(
                Geometry::same(h, w),
                cond.parse::<f64>().unwrap(),
                &RotateOptions::default(),
            );
            assert!(plan.is_permutation());
            let mut out = vec![0f32; h * w];
            plan.apply(&grey.data, 1, &mut out);
            let g = to_u8(&out);
            let hwc: Vec<u8> = g.iter().flat_map(|&v| [v, v, v]).collect();
            assert_eq!(
                rotbench::hash::content_hash(&hwc),
                sha.as_str().unwrap(),
                "{file} at {cond}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 8);
}

#[test]
fn a_models_own_normalisation_is_kept_under_a_protocol_and_said_so() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("m.pt");
    std::fs::copy(fixtures().join("resnet18_mini.pt"), &model).unwrap();
    let mut spec: Value = reference("resnet18_mini.json");
    spec["mean"] = serde_json::json!([0.5, 0.5, 0.5]);
    std::fs::write(t.path().join("m.json"), spec.to_string()).unwrap();
    let out = t.path().join("o");
    let data = fixtures().join("imagenet_p");
    let r = run(
        &[
            "sweep",
            "--protocol",
            "imagenet-p-rotate",
            "--model",
            s(&model),
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--no-cache",
            "--no-report",
            "--bootstrap",
            "0",
            "--limit",
            "4",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("mean from sidecar")
            && r.stderr.contains("not protocol imagenet-p-rotate's"),
        "{}",
        r.stderr
    );
    let s = summary(&out);
    assert_eq!(
        s["models"][0]["spec"]["mean"],
        serde_json::json!([0.5, 0.5, 0.5])
    );
    assert!(s["models"][0]["spec_sources"]["mean"]
        .as_str()
        .unwrap()
        .contains("the model's own"));
}

#[test]
fn an_unknown_protocol_is_exit_2_naming_the_protocols() {
    let t = tempfile::tempdir().unwrap();
    let r = sweep(
        &t.path().join("o"),
        "imagenet-c",
        "resnet18_mini.pt",
        "imagenet_p",
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--protocol imagenet-c: no such protocol; use one of imagenet-p-rotate, model-vs-human-rotation, spatial-cifar, spatial-imagenet"), "{}", r.stderr);
}

#[test]
fn the_spatial_protocols_expand_to_the_published_grid_and_worst_of_ten() {
    // The grid and the selection rule are checked against a transcription of
    // spatial_attack.py in tests/spatial_reference.rs; here: the protocol sets them.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = run(
        &[
            "sweep",
            "--protocol",
            "spatial-cifar",
            "--model",
            s(&bundled_model()),
            "--data",
            s(&mnist()),
            "--limit",
            "20",
            "--out",
            s(&out),
            "--no-report",
            "--bootstrap",
            "0",
        ],
        Some(&fresh_cache()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let s = summary(&out);
    assert_eq!(s["settings"]["angles"].as_array().unwrap().len(), 31);
    assert_eq!(
        s["settings"]["translate"]["dx"],
        serde_json::json!([-3.0, -1.5, 0.0, 1.5, 3.0])
    );
    assert_eq!(s["settings"]["worst_of"]["k"], 10);
    assert_eq!(s["settings"]["grid_early_stop"], true);
    let names: Vec<&str> = s["protocol"]["models"][0]["figures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "natural_accuracy",
            "random_accuracy",
            "worst_of_k_accuracy",
            "grid_accuracy"
        ]
    );
    assert_eq!(
        figure(&out, "grid_accuracy"),
        s["models"][0]["sweep"]["grid_accuracy"].as_f64().unwrap()
    );
}

#[test]
fn rotbench_protocols_lists_every_protocol_with_sources_and_docs_hold_that_listing() {
    let r = run(&["protocols"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for p in rotbench::protocols::ALL {
        assert!(
            r.stdout.contains(p.name) && r.stdout.contains(p.source),
            "{}",
            p.name
        );
        for set in p.sweep.iter().chain(p.input) {
            assert!(
                r.stdout.contains(set.flag) && r.stdout.contains(set.source),
                "{} {}",
                p.name,
                set.flag
            );
        }
    }
    let md = run(&["protocols", "--markdown"], None);
    let docs = std::fs::read_to_string(root().join("docs/protocols.md")).unwrap();
    assert!(
        docs.contains(&md.stdout),
        "docs/protocols.md is stale: regenerate its tables with `rotbench protocols --markdown`"
    );
    let r = run(&["protocols", "nope"], None);
    assert_eq!(r.code, 2);
}
