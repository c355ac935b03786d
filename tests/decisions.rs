//! Issue #31: where rotbench must decide what the user's input means, it checks
//! the decision when it can (exit 2 when the check fails), asks when it cannot,
//! and records what it decided. One test per case of the issue, named as a
//! sentence; each failed on the commit before the fix (the closing note says how).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn model(name: &str) -> PathBuf {
    root().join("models").join(name)
}

/// `rotbench sweep` on MNIST with these models and extra flags; must succeed.
fn sweep_ok(models: &[&Path], out: &Path, extra: &[&str], cache: Option<&Path>) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--data",
        s(mnist()),
        "--out",
        s(out),
    ];
    for m in models {
        a.extend(["--model", s(m)]);
    }
    a.extend(extra);
    let r = run(&a, cache);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

// --- Case 2: a baseline gate passes when models or angles drop out of the run -----

#[test]
fn a_baseline_gate_fails_when_a_model_or_an_angle_of_the_baseline_drops_out_of_the_run() {
    let t = tempfile::tempdir().unwrap();
    let (cnn, aug) = (model("mnist-cnn.pt"), model("mnist-cnn-aug.pt"));
    let bl = t.path().join("bl");
    let g1 = t.path().join("g1");
    sweep_ok(
        &[&cnn, &aug],
        &g1,
        &[
            "--limit",
            "300",
            "--angles",
            "0,90",
            "--save-baseline",
            "main",
            "--baseline-dir",
            s(&bl),
        ],
        None,
    );
    let g3 = t.path().join("g3");
    sweep_ok(&[&cnn], &g3, &["--limit", "300", "--angles", "0"], None);
    let (junit, md) = (t.path().join("j.xml"), t.path().join("g.md"));
    let gate = |extra: &[&str]| {
        let mut a = vec![
            "gate",
            "--results",
            s(g3.join("summary.json")),
            "--baseline",
            "main",
            "--baseline-dir",
            s(&bl),
            "--junit",
            s(&junit),
            "--markdown",
            s(&md),
        ];
        a.extend(extra);
        run(&a, None)
    };
    let g = gate(&[]);
    assert_eq!(
        g.code, 1,
        "the issue's repro passed with exit 0 before the fix"
    );
    assert!(
        g.stdout
            .contains("model mnist-cnn-aug is in baseline main but not in these results")
            && g.stdout.contains("not in these results (90°)"),
        "{}",
        g.stdout
    );
    for file in [&junit, &md] {
        let text = fs::read_to_string(file).unwrap();
        assert!(
            text.contains("mnist-cnn-aug") && text.contains("not in these results"),
            "{text}"
        );
    }
    assert!(fs::read_to_string(&junit).unwrap().contains("<failure"));
    // Said to be expected: a flag, or the TOML key.
    assert_eq!(gate(&["--allow-missing"]).code, 0);
    let cfg = t.path().join("rotbench.toml");
    fs::write(&cfg, "[gate]\nallow_missing = true\n").unwrap();
    assert_eq!(gate(&["--config", s(&cfg)]).code, 0);
}

// --- Case 7: a run killed while writing its results cannot be resumed --------------

fn resume_args(out: &Path) -> Vec<&'static str> {
    vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--model",
        s(model("mnist-cnn.pt")),
        "--data",
        s(mnist()),
        "--angles",
        "0:360:90",
        "--limit",
        "3000",
        "--batch-size",
        "100",
        "--out",
        s(out),
        "--resume",
    ]
}

#[test]
fn a_run_resumes_to_the_same_results_after_its_cache_was_filled_while_it_was_stopped() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let a = t.path().join("a");
    // Stop a run after some batches (its checkpoint holds them)...
    let mut child = running_with_checkpoint(&resume_args(&a), &cache, &a, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // ...then another job with the same arguments fills the shared cache (as the
    // stopped run itself does when it is killed between the cache write and the
    // checkpoint's removal).
    let b = t.path().join("b");
    let r = run(&resume_args(&b), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Before the fix: exit 2, "made with different arguments or inputs".
    let r = run(&resume_args(&a), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("different arguments"), "{}", r.stderr);
    assert_same_files(&a, &b, &EXACT_FILES);
}

#[test]
fn a_checkpoint_whose_cache_entries_are_gone_starts_over_with_a_note() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    // 0° and 90° are cached; the stopped run computes 180° and 270° (and 0°, its reference).
    let warm = t.path().join("warm");
    let mut w = resume_args(&warm);
    let at = w.iter().position(|a| *a == "0:360:90").unwrap();
    w[at] = "0,90";
    assert_eq!(run(&w, Some(&cache)).code, 0);
    let a = t.path().join("a");
    let mut child = running_with_checkpoint(&resume_args(&a), &cache, &a, 1);
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_dir_all(&cache).unwrap();
    let r = run(&resume_args(&a), Some(&cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("cache entries that are gone"),
        "{}",
        r.stderr
    );
    let fresh = t.path().join("fresh");
    assert_eq!(
        run(&resume_args(&fresh), Some(&t.path().join("c2"))).code,
        0
    );
    assert_same_files(&a, &fresh, &EXACT_FILES);
}

// --- Case 8: smaller ones -----------------------------------------------------------

#[test]
fn a_byte_order_mark_at_the_start_of_a_classes_file_is_not_part_of_the_first_class() {
    let t = tempfile::tempdir().unwrap();
    let classes = t.path().join("classes.txt");
    let names: String = (0..10).map(|i| format!("{i}\n")).collect();
    fs::write(&classes, format!("\u{feff}{names}")).unwrap();
    let out = t.path().join("o");
    sweep_ok(
        &[&model("mnist-cnn.pt")],
        &out,
        &["--limit", "100", "--angles", "0", "--classes", s(&classes)],
        None,
    );
    let got = &summary(&out)["models"][0]["spec"]["classes"][0];
    assert_eq!(got, "0", "the first class is `0`, not `\\u{{feff}}0`");
    // The same for a subset file.
    let sub = t.path().join("sub.txt");
    fs::write(&sub, "\u{feff}3\n7\n").unwrap();
    let r = run(
        &[
            "inspect",
            s(model("mnist-cnn.pt")),
            "--class-subset",
            s(&sub),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_shard_with_batch_size_auto_cuts_batches_by_the_64_mib_rule_of_its_input() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("s0");
    let fx = root().join("tests/fixtures");
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--model",
            s(fx.join("models/tiny224.pt")),
            "--data",
            s(fx.join("jpeg224")),
            "--angles",
            "0",
            "--limit",
            "130",
            "--shard",
            "0/2",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(out.join("shard.json")).unwrap()).unwrap();
    // 3x224x224 float32 is 588 KB an image: 64 MiB holds 111, so auto means 64 (was 256).
    assert_eq!(manifest["shard"]["batch_size"], 64, "{manifest}");
    assert_eq!(
        manifest["end"], 64,
        "the first of two shards of 130 samples: one batch"
    );
}

// --- Case 1: a model that outputs probabilities gets a second softmax ---------------

fn kinds(name: &str) -> PathBuf {
    root().join("tests/fixtures/models/output_kinds").join(name)
}

/// ONNX Runtime from the tests' shared cache (fetched once, as tests/formats.rs does).
fn with_ort(args: &[&str]) -> Run {
    let ort = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("onnxruntime-cache");
    run_with_env(args, &[("ROTBENCH_CACHE", ort.as_os_str())])
}

/// One sweep of `models` on 300 digits at 0°, 45° and 90°.
fn sweep_kinds(models: &[&Path], out: &Path, extra: &[&str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--no-cache",
        "--data",
        s(mnist()),
        "--limit",
        "300",
        "--angles",
        "0,45,90",
        "--out",
        s(out),
    ];
    for m in models {
        a.extend(["--model", s(m)]);
    }
    a.extend(extra);
    with_ort(&a)
}

/// Rows of a results CSV by (model, angle[, index]).
fn rows_by(
    path: &Path,
    index: bool,
) -> std::collections::BTreeMap<(String, String, String), std::collections::HashMap<String, String>>
{
    read_csv(path)
        .into_iter()
        .map(|r| {
            let i = if index {
                r["index"].clone()
            } else {
                String::new()
            };
            ((r["model"].clone(), r["angle"].clone(), i), r)
        })
        .collect()
}

/// Every named column of `model`'s rows equals `base`'s within 1e-6 (numbers) or exactly.
fn same_figures(dir: &Path, base: &str, model: &str) {
    for (file, index, close, exact) in [
        (
            "per_angle.csv",
            false,
            &[
                "accuracy",
                "nll",
                "brier",
                "ece",
                "mean_confidence",
                "top5_accuracy",
                "prob_shift",
                "consistency",
                "flip_next",
            ][..],
            &["top5_distance_next"][..],
        ),
        (
            "predictions.csv",
            true,
            &["confidence", "p_true", "brier"][..],
            &["pred", "top_k"][..],
        ),
    ] {
        let rows = rows_by(&dir.join(file), index);
        let mut compared = 0;
        for ((m, angle, i), want) in rows.iter().filter(|(k, _)| k.0 == base) {
            let got = &rows[&(model.to_string(), angle.clone(), i.clone())];
            for c in close {
                if want[*c].is_empty() || got[*c].is_empty() {
                    assert_eq!(want[*c], got[*c], "{file} {model} at {angle}° {i} {c}");
                    continue;
                }
                let (a, b): (f64, f64) = (want[*c].parse().unwrap(), got[*c].parse().unwrap());
                assert!(
                    (a - b).abs() <= 1e-6,
                    "{file} {m} vs {model} at {angle}° {i} {c}: {a} vs {b}"
                );
            }
            for c in exact {
                assert_eq!(want[*c], got[*c], "{file} {model} at {angle}° {i} {c}");
            }
            compared += 1;
        }
        assert!(compared >= 3, "{file}: {compared} rows compared");
    }
}

#[test]
fn a_softmax_ended_torchscript_model_is_scored_as_the_same_network_without_the_softmax() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("pt");
    let r = sweep_kinds(
        &[
            &model("mnist-cnn.pt"),
            &kinds("softmax.pt"),
            &kinds("log_softmax_plain.pt"),
        ],
        &out,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Before the fix the softmax model's NLL, Brier, ECE, confidences... were those of
    // a second softmax; a log-softmax changes nothing under a softmax.
    for m in ["softmax", "log_softmax_plain"] {
        same_figures(&out, "mnist-cnn", m);
    }
    // Undeclared: decided from the outputs, said on stderr and in summary.json.
    assert!(
        r.stderr
            .contains("softmax.pt: the model outputs probabilities")
            && r.stderr.contains("--output-kind probabilities"),
        "{}",
        r.stderr
    );
    let sum = summary(&out);
    let source = |i: usize| {
        sum["models"][i]["spec_sources"]["output"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        source(0).starts_with("decided from the outputs: logits"),
        "{}",
        source(0)
    );
    assert!(
        source(1).starts_with("decided from the outputs: probabilities"),
        "{}",
        source(1)
    );
    assert!(
        source(2).starts_with("decided from the outputs: log_probabilities"),
        "{}",
        source(2)
    );
    assert_eq!(sum["models"][1]["spec"]["output"], "probabilities");
    // Declared in the spec embedded in the TorchScript zip.
    let out = t.path().join("embedded");
    let r = sweep_kinds(
        &[&model("mnist-cnn.pt"), &kinds("log_softmax.pt")],
        &out,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    same_figures(&out, "mnist-cnn", "log_softmax");
    let source = &summary(&out)["models"][1]["spec_sources"]["output"];
    assert_eq!(source, "embedded extra/rotbench.json");
}

#[test]
fn a_softmax_ended_onnx_and_pt2_model_is_scored_as_the_same_network_without_the_softmax() {
    let t = tempfile::tempdir().unwrap();
    // The issue's repro: mnist-cnn.onnx with a Softmax node appended, metadata kept.
    let out = t.path().join("onnx");
    let r = sweep_kinds(
        &[&model("mnist-cnn.onnx"), &kinds("softmax.onnx")],
        &out,
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    same_figures(&out, "mnist-cnn", "softmax");
    assert!(
        r.stderr.contains("the model outputs probabilities"),
        "{}",
        r.stderr
    );
    // Declared in the package's embedded spec.
    let out = t.path().join("pt2");
    let r = sweep_kinds(&[&model("mnist-cnn.pt2"), &kinds("softmax.pt2")], &out, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    same_figures(&out, "mnist-cnn", "softmax");
    assert!(
        !r.stderr.contains("the model outputs probabilities"),
        "declared: no note\n{}",
        r.stderr
    );
    let source = &summary(&out)["models"][1]["spec_sources"]["output"];
    assert_eq!(source, "embedded AOTI metadata rotbench.json");
    // An ONNX model's metadata_props declare it too.
    let r = with_ort(&["inspect", s(kinds("softmax_embedded.onnx"))]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("probabilities (a softmax ends the model")
            && r.stdout
                .contains("from embedded metadata_props rotbench.json"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_declared_output_kind_that_the_outputs_contradict_is_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    // Declared logits, but every row sums to 1: the issue's --max-ece gate would pass.
    let r = sweep_kinds(&[&kinds("softmax.pt")], &out, &["--output-kind", "logits"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the spec says the model outputs logits (flag --output-kind)")
            && r.stderr.contains("non-negative and sums to 1")
            && r.stderr.contains("--output-kind probabilities"),
        "{}",
        r.stderr
    );
    // Declared probabilities (or log-probabilities) for a model that outputs logits.
    for kind in ["probabilities", "log-probabilities"] {
        let r = sweep_kinds(&[&model("mnist-cnn.pt")], &out, &["--output-kind", kind]);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("are not") && r.stderr.contains("--output-kind logits"),
            "{}",
            r.stderr
        );
    }
    assert!(!out.join("summary.json").exists());
    // Log-probabilities are logits up to a constant: declaring logits is fine.
    let r = sweep_kinds(
        &[&kinds("log_softmax_plain.pt")],
        &out,
        &["--output-kind", "logits"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

// --- Cases 3 and 4: which class a label names; which folder is which class ---------

/// The first `n` MNIST test digits as PNG files `DIR/<folder(label)>/NNNN.png`
/// (skipped where `folder` gives `None`); returns (file, label) in order.
fn digits_into(dir: &Path, n: usize, folder: &dyn Fn(u32) -> Option<String>) -> Vec<(String, u32)> {
    let (images, labels) = mnist_test_set(n);
    let mut out = vec![];
    for (i, px) in images.into_iter().enumerate() {
        let Some(sub) = folder(labels[i]) else {
            continue;
        };
        let rel = format!("{sub}/{i:04}.png");
        fs::create_dir_all(dir.join(&sub)).unwrap();
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(dir.join(&rel))
            .unwrap();
        out.push((rel, labels[i]));
    }
    out
}

fn accuracy_at_0(dir: &Path) -> (f64, u64) {
    let a = &summary(dir)["models"][0]["angles"][0];
    (a["accuracy"].as_f64().unwrap(), a["n"].as_u64().unwrap())
}

#[test]
fn a_label_outside_the_class_subset_is_not_read_as_an_index_into_the_subset() {
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    let files = digits_into(&img, 300, &|_| Some("all".into()));
    let csv = t.path().join("fine.csv");
    let body: String = files
        .iter()
        .map(|(f, l)| format!("img/{f},{l}\n"))
        .collect();
    fs::write(&csv, format!("path,label\n{body}")).unwrap();
    let sub = t.path().join("sub59.txt");
    fs::write(&sub, "5\n6\n7\n8\n9\n").unwrap();
    let out = t.path().join("s");
    let sweep = |data: &Path, extra: &[&str]| {
        let mut a = vec![
            "sweep",
            "--quiet",
            "--no-report",
            "--model",
            s(model("mnist-cnn.pt")),
            "--data",
            s(data),
            "--class-subset",
            s(&sub),
            "--angles",
            "0",
            "--out",
            s(&out),
        ];
        a.extend(extra);
        run(&a, None)
    };
    // Before the fix: exit 0, n = 300, accuracy 0.603 (digits 0-4 became classes 5-9).
    let first = files.iter().position(|(_, l)| *l < 5).unwrap();
    let r = sweep(&csv, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let want = format!("fine.csv line {}: label `{}`", first + 2, files[first].1);
    assert!(
        r.stderr.contains(&want)
            && r.stderr.contains("outside --class-subset")
            && r.stderr.contains("--drop-unscored"),
        "expected `{want}`: {}",
        r.stderr
    );
    let r = sweep(&csv, &["--drop-unscored"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let kept = files.iter().filter(|(_, l)| *l >= 5).count();
    let (acc, n) = accuracy_at_0(&out);
    assert_eq!(n as usize, kept);
    assert!(acc > 0.99, "the digits that really are 5-9: {acc}");
    let dropped = &summary(&out)["dataset"]["dropped"];
    assert_eq!(
        dropped["samples"].as_u64().unwrap() as usize,
        300 - kept,
        "{dropped}"
    );
    assert!(
        r.stderr
            .contains(&format!("{} samples left out", 300 - kept)),
        "{}",
        r.stderr
    );
    // The same rule for IDX records: indices into the model's classes, not the subset's.
    let r = sweep(&mnist(), &["--limit", "300"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("sample 1: label 2 names a class that is not scored"),
        "{}",
        r.stderr
    );
    let r = sweep(&mnist(), &["--limit", "300", "--drop-unscored"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (acc, n) = accuracy_at_0(&out);
    assert_eq!(n, 300, "the first 300 digits of classes 5-9");
    assert!(acc > 0.99, "{acc}");
    // A manifest's numbers are names; indices need the column to say so.
    fs::write(&csv, format!("path,label\n{body}")).unwrap();
    let names = t.path().join("names.txt");
    fs::write(
        &names,
        (0..10).map(|i| format!("digit{i}\n")).collect::<String>(),
    )
    .unwrap();
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--model",
            s(model("mnist-cnn.pt")),
            "--classes",
            s(&names),
            "--data",
            s(&csv),
            "--angles",
            "0",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("name the column `label_index`"),
        "{}",
        r.stderr
    );
    fs::write(&csv, format!("path,label_index\n{body}")).unwrap();
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--model",
            s(model("mnist-cnn.pt")),
            "--classes",
            s(&names),
            "--data",
            s(&csv),
            "--angles",
            "0",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(accuracy_at_0(&out).0 > 0.98);
}

const FASHION: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The bundled MNIST CNN with Fashion-MNIST's class names (digit i is class i).
fn fashion_names(dir: &Path) -> PathBuf {
    let p = dir.join("fashion.txt");
    fs::write(&p, FASHION.join("\n")).unwrap();
    p
}

fn sweep_folder(data: &Path, out: &Path, classes: &Path, extra: &[&str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--model",
        s(model("mnist-cnn.pt")),
        "--classes",
        s(classes),
        "--data",
        s(data),
        "--angles",
        "0",
        "--out",
        s(out),
    ];
    a.extend(extra);
    run(&a, None)
}

#[test]
fn a_class_name_with_a_slash_is_mapped_by_a_folder_map_and_sorted_order_warns_with_its_pairs() {
    let t = tempfile::tempdir().unwrap();
    let classes = fashion_names(t.path());
    let data = t.path().join("fashion");
    digits_into(&data, 400, &|l| Some(FASHION[l as usize].replace('/', "_")));
    let out = t.path().join("o");
    let r = sweep_folder(&data, &out, &classes, &[]);
    assert_eq!(r.code, 2);
    for part in [
        "the folder `T-shirt_top` is not among the class names",
        "--class-folder-map FILE",
        "`T-shirt_top,T-shirt/top`",
        "--classes FILE",
        "cannot be a folder name, since `/` separates the folders of a path",
    ] {
        assert!(r.stderr.contains(part), "expected `{part}`: {}", r.stderr);
    }
    // The map says which folder is which class.
    let map = t.path().join("folders.csv");
    fs::write(&map, "T-shirt_top,T-shirt/top\n").unwrap();
    let mut lines: String = FASHION[1..].iter().map(|c| format!("{c},{c}\n")).collect();
    lines.insert_str(0, "T-shirt_top,T-shirt/top\n");
    fs::write(&map, lines).unwrap();
    let r = sweep_folder(&data, &out, &classes, &["--class-folder-map", s(&map)]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (right, n) = accuracy_at_0(&out);
    assert_eq!(n, 400);
    assert!(right > 0.97, "{right}");
    // Sorted on request: it warns with the first pairs and records the mapping.
    let r = sweep_folder(&data, &out, &classes, &["--class-folders", "sorted"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: --class-folders sorted")
            && r.stderr.contains("`Ankle boot` → T-shirt/top"),
        "{}",
        r.stderr
    );
    let sum = summary(&out);
    assert!(
        sum["dataset"]["warnings"][0]
            .as_str()
            .unwrap()
            .contains("`Bag` → Trouser"),
        "{}",
        sum["dataset"]
    );
    assert_eq!(sum["dataset"]["class_map"][0]["folder"], "Ankle boot");
    assert_eq!(sum["dataset"]["class_map"][0]["index"], 0);
    assert!(
        accuracy_at_0(&out).0 < right - 0.3,
        "sorted order relabels the classes"
    );
}

#[test]
fn numeric_folders_are_class_indices_so_a_missing_folder_shifts_nothing() {
    let t = tempfile::tempdir().unwrap();
    let classes = fashion_names(t.path());
    let data = t.path().join("digits");
    // Folders 0..9 without 8/.
    let files = digits_into(&data, 400, &|l| (l != 8).then(|| l.to_string()));
    let out = t.path().join("o");
    let r = sweep_folder(&data, &out, &classes, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (acc, n) = accuracy_at_0(&out);
    assert_eq!(n as usize, files.len());
    assert!(
        acc > 0.97,
        "folder 9 is class 9 (Ankle boot), not class 8: {acc}"
    );
    let sum = summary(&out);
    let map = sum["dataset"]["class_map"].as_array().unwrap();
    assert_eq!(
        (map[8]["folder"].as_str(), map[8]["index"].as_u64()),
        (Some("9"), Some(9))
    );
    assert!(sum["dataset"]["class_order"]
        .as_str()
        .unwrap()
        .contains("indices"));
    // A number that is also another class's name is ambiguous, and refused.
    let odd = t.path().join("odd.txt");
    fs::write(&odd, "x\n0\n1\n2\n3\n4\n5\n6\n7\n8\n").unwrap();
    let r = sweep_folder(&data, &out, &odd, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "the folder `0` is ambiguous: it is a class name (`0`) and a class index (`x`)"
        ) && r
            .stderr
            .contains("--class-folders names or --class-folders indices"),
        "{}",
        r.stderr
    );
    let r = sweep_folder(&data, &out, &odd, &["--class-folders", "indices"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(accuracy_at_0(&out).0 > 0.97);
}

// --- Case 5: the backend's version in the cache key comes from a file name ----------

#[test]
fn onnx_runtimes_version_comes_from_the_library_not_its_file_name() {
    // ONNX Runtime as rotbench's own cache holds it (fetched by the tests' first sweep).
    let first = with_ort(&["inspect", s(model("mnist-cnn.onnx"))]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let cached = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("onnxruntime-cache/onnxruntime-1.31.1/libonnxruntime.so.1.31.1");
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("pred-cache");
    let mut backends = vec![];
    // Unversioned (the path rotbench's own message suggests), then renamed 1.99.0.
    for name in ["libonnxruntime.so", "libonnxruntime.so.1.99.0"] {
        let lib = t.path().join(name);
        fs::copy(&cached, &lib).unwrap();
        let out = t.path().join(name);
        let out = out.with_extension("out");
        let r = run_with_env(
            &[
                "sweep",
                "--quiet",
                "--no-report",
                "--model",
                s(model("mnist-cnn.onnx")),
                "--data",
                s(mnist()),
                "--limit",
                "100",
                "--angles",
                "0,90",
                "--out",
                s(&out),
            ],
            &[
                ("ROTBENCH_ONNXRUNTIME", lib.as_os_str()),
                ("XDG_CACHE_HOME", cache.as_os_str()),
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        backends.push((
            summary(&out)["settings"]["backend"].clone(),
            fs::read_to_string(out.join("timing.json")).unwrap(),
        ));
        let i = run_with_env(
            &["inspect", s(model("mnist-cnn.onnx"))],
            &[("ROTBENCH_ONNXRUNTIME", lib.as_os_str())],
        );
        assert!(
            i.stdout.contains("backend  onnxruntime 1.31.1,"),
            "{}",
            i.stdout
        );
        let d = run_with_env(&["doctor"], &[("ROTBENCH_ONNXRUNTIME", lib.as_os_str())]);
        assert!(d.stdout.contains("ONNX Runtime 1.31.1 at"), "{}", d.stdout);
    }
    // Before the fix: `onnxruntime unknown`, then `onnxruntime 1.99.0`.
    for (b, _) in &backends {
        assert_eq!(b, "onnxruntime 1.31.1");
    }
    // The same library under two names is one cache key: the second run reuses it all.
    let reused: serde_json::Value = serde_json::from_str(&backends[1].1).unwrap();
    assert_eq!(reused["cached_pairs"], 2, "{reused}");
}

#[test]
fn libtorchs_version_is_the_one_the_loaded_library_reports() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    sweep_ok(
        &[&model("mnist-cnn.pt")],
        &out,
        &["--limit", "50", "--angles", "0"],
        None,
    );
    let sum = summary(&out);
    assert_eq!(
        sum["libtorch_version"], "2.13.0",
        "{}",
        sum["libtorch_version"]
    );
    let i = run(&["inspect", s(model("mnist-cnn.pt"))], None);
    assert!(
        i.stdout.contains("torchscript (libtorch 2.13.0)"),
        "{}",
        i.stdout
    );
}

// --- Case 6: a .pt2 that passes the instruction-set check can still crash -----------

#[test]
fn a_pt2_compiled_with_march_native_is_refused_on_a_cpu_without_the_builders_instruction_sets() {
    // Compiled with {"cpp.simdlen": 256} alone on an AVX-512 machine: its metadata says
    // AVX2, its code holds vmovdqu8 on zmm registers. On an AVX2-only CPU (as
    // ROTBENCH_CPU_FLAGS describes one) that is exit 2, not SIGILL.
    let pkg = root().join("tests/fixtures/models/pt2/native_avx512.pt2");
    let avx2 = std::ffi::OsStr::new(
        "fpu sse sse2 pni ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2 abm movbe",
    );
    let r = run_with_env(&["inspect", s(&pkg)], &[("ROTBENCH_CPU_FLAGS", avx2)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("compiled with -march=native")
            && r.stderr.contains("this CPU lacks")
            && r.stderr.contains(" avx512f,"),
        "{}",
        r.stderr
    );
    // The advice is the recipe the bundled exports were made with, and they pass.
    assert!(
        r.stderr.contains(r#""cpp.march": "x86-64-v3""#),
        "{}",
        r.stderr
    );
    let ok = run_with_env(
        &["inspect", s(model("mnist-cnn.pt2"))],
        &[("ROTBENCH_CPU_FLAGS", avx2)],
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
}

// --- Case 8: obvious set-up mistakes pass silently -----------------------------------

#[test]
fn a_mean_and_std_for_0_255_pixels_on_a_0_1_pipeline_warn_and_so_does_one_class_for_everything() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let r = run(
        &[
            "sweep",
            "--no-report",
            "--model",
            s(model("mnist-cnn.pt")),
            "--data",
            s(mnist()),
            "--limit",
            "300",
            "--angles",
            "0,90",
            "--mean",
            "72.93",
            "--std",
            "90",
            "--out",
            s(&out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: mean [72.93] and std [90.0] lie outside the [0, 1] scale")
            && r.stderr.contains("--value-range 255"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("every prediction at 0° is class"),
        "{}",
        r.stderr
    );
    let w = summary(&out)["models"][0]["warnings"].clone();
    assert_eq!(w.as_array().map(Vec::len), Some(2), "{w}");
    assert!(
        r.stdout
            .contains("warning: mnist-cnn: every prediction at 0°"),
        "{}",
        r.stdout
    );
    // The report shows them.
    let report = run(&["report", s(&out)], None);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let html = fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains(r#"<p class="warning">"#) && html.contains("every prediction at 0° is class")
    );
    // A right set-up warns of nothing.
    let fine = t.path().join("fine");
    let r = sweep_ok(
        &[&model("mnist-cnn.pt")],
        &fine,
        &["--limit", "300", "--angles", "0"],
        None,
    );
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    assert!(summary(&fine)["models"][0].get("warnings").is_none());
}

#[test]
fn eces_interval_accounts_for_the_bias_resampling_adds_and_holds_its_estimate() {
    // The issue's case: ECE 0.004825, percentile interval [0.005237, 0.013943].
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    sweep_ok(
        &[&model("mnist-cnn-aug.pt")],
        &out,
        &["--limit", "1000", "--bootstrap", "1000", "--angles", "0"],
        None,
    );
    let row = &read_csv(&out.join("per_angle.csv"))[0];
    let f = |c: &str| row[c].parse::<f64>().unwrap();
    let (ece, lo, hi) = (f("ece"), f("ece_ci_low"), f("ece_ci_high"));
    assert!((ece - 0.004825).abs() < 1e-6, "{ece}");
    assert!(lo <= ece && ece <= hi, "[{lo}, {hi}] must hold {ece}");
    assert!(
        lo >= 0.0 && hi - lo > 0.005,
        "as wide as the replicates' spread: [{lo}, {hi}]"
    );
}
