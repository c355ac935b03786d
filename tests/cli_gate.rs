//! Issue #5, the CI regression gate, end to end: the real binary gates real
//! sweeps of the bundled upright CNN. Exit codes 0 (pass), 1 (a check failed),
//! 2 (an error); baselines saved by `sweep --save-baseline` and compared with
//! `gate --baseline`; the JUnit, Markdown and `$GITHUB_STEP_SUMMARY` outputs.

mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One sweep shared by the tests that only read it: the bundled model over
/// `0:360:30` on the first 500 images, saved as baseline `main`.
struct Fixture {
    out: PathBuf,
    baselines: PathBuf,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Kept under target/tmp for the whole process (statics are never dropped);
        // the next run removes it.
        let root = kept_dir("cli_gate");
        let (out, baselines) = (root.join("out"), root.join("baselines"));
        rotbench()
            .args(["sweep", "--quiet", "--no-report", "--model"])
            .arg(bundled_model())
            .arg("--data")
            .arg(mnist())
            .args([
                "--angles",
                "0:360:30",
                "--limit",
                "500",
                "--save-baseline",
                "main",
                "--baseline-dir",
            ])
            .arg(&baselines)
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        Fixture { out, baselines }
    })
}

fn results() -> PathBuf {
    fixture().out.join("summary.json")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn gate(args: &[&str], extra: impl FnOnce(&mut assert_cmd::Command)) -> Run {
    let mut c = rotbench();
    c.arg("gate").args(args);
    extra(&mut c);
    let o = c.output().unwrap();
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    for bad in ["panicked", "stack backtrace", "internal error"] {
        assert!(
            !run.stderr.contains(bad),
            "stderr shows `{bad}`:\n{}",
            run.stderr
        );
    }
    eprintln!("exit {}\n{}{}", run.code, run.stdout, run.stderr);
    run
}

fn gate_results(args: &[&str]) -> Run {
    let r = results();
    let mut all = vec!["--results", r.to_str().unwrap()];
    all.extend_from_slice(args);
    gate(&all, |_| {})
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

fn write_json(p: &Path, v: &Value) {
    fs::write(p, serde_json::to_vec(v).unwrap()).unwrap();
}

/// A copy of baseline `main` named `name`, its predictions at `angle` changed by
/// `edit(labels, preds)` (its predictions.csv rows of the first model at that angle).
fn edited_baseline(dir: &Path, name: &str, angle: f64, edit: impl Fn(&[Value], &mut Vec<Value>)) {
    let to = dir.join(name);
    copy_dir(&fixture().baselines.join("main"), &to);
    let p = to.join("predictions.csv");
    let text = fs::read_to_string(&p).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let first_model = lines[1].split(',').next().unwrap().to_string();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (label_col, pred_col) = (col("label"), col("pred"));
    let rows: Vec<usize> = (1..lines.len())
        .filter(|&i| {
            let f: Vec<&str> = lines[i].split(',').collect();
            f[0] == first_model && f[1].parse::<f64>().unwrap() == angle
        })
        .collect();
    let field = |i: usize, k: usize| -> Value {
        lines[i]
            .split(',')
            .nth(k)
            .unwrap()
            .parse::<i64>()
            .unwrap()
            .into()
    };
    let labels: Vec<Value> = rows.iter().map(|&i| field(i, label_col)).collect();
    let mut preds: Vec<Value> = rows.iter().map(|&i| field(i, pred_col)).collect();
    edit(&labels, &mut preds);
    for (&i, p) in rows.iter().zip(&preds) {
        let mut f: Vec<String> = lines[i].split(',').map(String::from).collect();
        f[pred_col] = p.as_i64().unwrap().to_string();
        lines[i] = f.join(",");
    }
    fs::write(&p, lines.join("\n") + "\n").unwrap();
    rebind(&to);
}

/// A hand-edited baseline: record its predictions.csv's new sha256 in its
/// summary.json, as `--save-baseline` does (an unrecorded edit is refused).
fn rebind(baseline: &Path) {
    let bytes = fs::read(baseline.join("predictions.csv")).unwrap();
    let s = baseline.join("summary.json");
    let mut v = read_json(&s);
    v["files"]["predictions.csv"] = rotbench::hash::content_hash(&bytes).into();
    write_json(&s, &v);
}

// --- the end-to-end acceptance

#[test]
fn the_upright_cnn_fails_a_max_drop_of_5_points_and_the_output_names_the_failing_angles() {
    let r = gate_results(&["--max-drop", "0.05"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let fail = r
        .stdout
        .lines()
        .find(|l| l.contains("FAIL") && l.contains("max-drop ≤ 0.05"))
        .expect("a FAIL line");
    for angle in ["90°", "180°", "270°"] {
        assert!(fail.contains(angle), "{angle} not named in: {fail}");
    }
    assert!(
        !fail.contains(" 0° "),
        "0° cannot drop against itself: {fail}"
    );
    assert!(
        r.stdout.contains("gate FAILED: 1 of 1 check failed"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_upright_cnn_passes_a_min_accuracy_of_zero() {
    let r = gate_results(&["--min-accuracy", "0"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("PASS  mnist-cnn  min-accuracy ≥ 0: lowest accuracy"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("gate passed"), "{}", r.stdout);
}

#[test]
fn every_check_can_pass_and_fail_from_the_command_line() {
    let s = summary(&fixture().out);
    let m = &s["models"][0];
    let acc0 = m["angles"][0]["accuracy"].as_f64().unwrap();
    let wos = m["sweep"]["worst_of_sweep_accuracy"].as_f64().unwrap();
    let mean = m["sweep"]["mean_accuracy"].as_f64().unwrap();
    // At the model's own value each threshold holds (equality passes) ...
    let at = |flag: &str, v: f64, extra: &[&str]| {
        let v = format!("{v}");
        let mut a = vec![flag, v.as_str()];
        a.extend_from_slice(extra);
        gate_results(&a).code
    };
    assert_eq!(at("--min-accuracy", acc0, &["--angles", "0"]), 0);
    assert_eq!(at("--min-mean-accuracy", mean, &[]), 0);
    assert_eq!(at("--min-worst-of-sweep", wos, &[]), 0);
    assert_eq!(at("--min-consistency", 1.0, &["--angles", "0"]), 0);
    assert_eq!(at("--max-drop", 0.0, &["--angles", "0"]), 0);
    // ... and one sample beyond it fails.
    assert_eq!(
        at("--min-accuracy", acc0 + 1.0 / 500.0, &["--angles", "0"]),
        1
    );
    assert_eq!(at("--min-mean-accuracy", mean + 1.0 / 500.0, &[]), 1);
    assert_eq!(at("--min-worst-of-sweep", wos + 1.0 / 500.0, &[]), 1);
    assert_eq!(at("--min-consistency", 0.9, &["--angles", "180"]), 1);
    assert_eq!(at("--max-drop", 0.5, &["--angles", "0,30"]), 0);
    assert_eq!(at("--max-drop", 0.5, &["--angles", "0,180"]), 1);
}

#[test]
fn results_may_be_given_as_the_output_folder() {
    let out = fixture().out.to_str().unwrap().to_string();
    let r = gate(&["--results", &out, "--min-accuracy", "0"], |_| {});
    assert_eq!(r.code, 0);
}

// --- exit code 2

#[test]
fn unreadable_results_exit_2_naming_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope/summary.json");
    let r = gate(
        &["--results", missing.to_str().unwrap(), "--max-drop", "0.05"],
        |_| {},
    );
    assert_eq!(r.code, 2);
    assert!(
        first_line(&r.stderr).starts_with("error: --results")
            && r.stderr.contains("rotbench sweep"),
        "{}",
        r.stderr
    );
    let junk = d.path().join("summary.json");
    fs::write(&junk, "{not json").unwrap();
    let r = gate(
        &["--results", junk.to_str().unwrap(), "--max-drop", "0.05"],
        |_| {},
    );
    assert_eq!(r.code, 2);
    assert!(first_line(&r.stderr).contains("not JSON"), "{}", r.stderr);
}

#[test]
fn bad_arguments_exit_2() {
    for (args, says) in [
        (
            vec!["--min-accuracy", "1.5"],
            "--min-accuracy 1.5: must be between 0 and 1",
        ),
        (vec!["--min-accuracy", "abc"], "invalid value"),
        (vec![], "no checks given"),
        (
            vec!["--max-drop", "0.1", "--model", "nope"],
            "--model `nope`: no such model",
        ),
        (
            vec!["--max-drop", "0.1", "--angles", "45"],
            "--angles: 45 not in the sweep",
        ),
        (
            vec!["--max-drop", "0.1", "--max-regression", "0.01"],
            "--max-regression needs a baseline",
        ),
        (
            vec!["--significance", "0", "--max-drop", "0.1"],
            "--significance 0",
        ),
    ] {
        let r = gate_results(&args);
        assert_eq!(r.code, 2, "{args:?}");
        assert!(
            r.stderr.contains(says),
            "{args:?}: expected `{says}` in\n{}",
            r.stderr
        );
    }
}

// --- config files

#[test]
fn a_config_file_gates_and_flags_override_it() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("rotbench.toml");
    fs::write(&cfg, "[gate]\nmax_drop = 0.05\nmin_accuracy = 0\n").unwrap();
    let c = cfg.to_str().unwrap();
    let r = gate_results(&["--config", c]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout.contains("PASS  mnist-cnn  min-accuracy")
            && r.stdout.contains("FAIL  mnist-cnn  max-drop"),
        "{}",
        r.stdout
    );
    let r = gate_results(&["--config", c, "--max-drop", "1"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    fs::write(&cfg, "[gate]\nmax_dorp = 0.05\n").unwrap();
    let r = gate_results(&["--config", c]);
    assert_eq!(r.code, 2);
    assert!(
        first_line(&r.stderr).contains("rotbench.toml: [gate]") && r.stderr.contains("max_dorp"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_committed_example_config_is_usable_as_is() {
    let p = root().join("docs/rotbench.example.toml");
    let r = gate_results(&["--config", p.to_str().unwrap()]);
    assert!(r.code == 0 || r.code == 1, "{}", r.stderr);
}

#[test]
fn sweep_with_a_gate_config_sweeps_and_gates_in_one_command() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("gate.toml");
    let sweep = |cfg: &Path, out: &Path| {
        rotbench()
            .args(["sweep", "--quiet", "--no-report", "--model"])
            .arg(bundled_model())
            .arg("--data")
            .arg(mnist())
            .args(["--angles", "0,90", "--limit", "100", "--gate-config"])
            .arg(cfg)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    fs::write(&cfg, "[gate]\nmax_drop = 0.05\n").unwrap();
    let o = sweep(&cfg, &d.path().join("fail"));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("FAIL  mnist-cnn  max-drop ≤ 0.05") && stdout.contains("90°"),
        "{stdout}"
    );
    // The results are written whatever the verdict, with the gate's reports beside them.
    for f in ["summary.json", "junit.xml", "gate.md"] {
        assert!(d.path().join("fail").join(f).is_file(), "{f}");
    }
    roxmltree::Document::parse(&fs::read_to_string(d.path().join("fail/junit.xml")).unwrap())
        .unwrap();
    fs::write(&cfg, "[gate]\nmin_accuracy = 0\n").unwrap();
    assert_eq!(sweep(&cfg, &d.path().join("pass")).status.code(), Some(0));
    fs::write(&cfg, "[gate]\n").unwrap();
    let o = sweep(&cfg, &d.path().join("none"));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--gate-config"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

// --- reports

#[test]
fn junit_output_parses_with_one_testcase_per_model_and_check() {
    let d = tempfile::tempdir().unwrap();
    let j = d.path().join("reports/junit.xml");
    let r = gate_results(&[
        "--max-drop",
        "0.05",
        "--min-accuracy",
        "0",
        "--min-worst-of-sweep",
        "0.5",
        "--junit",
        j.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 1);
    let xml = fs::read_to_string(&j).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(
        (root.attribute("tests"), root.attribute("failures")),
        (Some("3"), Some("2"))
    );
    let suite = root
        .children()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("rotbench gate: mnist-cnn"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    assert!(cases
        .iter()
        .all(|c| c.attribute("classname") == Some("rotbench.gate.mnist-cnn")));
    let drop = cases
        .iter()
        .find(|c| c.attribute("name") == Some("max-drop ≤ 0.05"))
        .unwrap();
    let failure = drop.children().find(|n| n.has_tag_name("failure")).unwrap();
    let msg = failure.attribute("message").unwrap();
    assert!(msg.contains("90°") && msg.contains("180°"), "{msg}");
    let acc = cases
        .iter()
        .find(|c| c.attribute("name") == Some("min-accuracy ≥ 0"))
        .unwrap();
    assert!(!acc.children().any(|n| n.has_tag_name("failure")));
}

#[test]
fn markdown_is_written_and_appended_to_the_github_step_summary() {
    let d = tempfile::tempdir().unwrap();
    let md = d.path().join("gate.md");
    let step = d.path().join("step_summary.md");
    fs::write(&step, "# earlier step\n").unwrap();
    let r = results();
    let args = [
        "--results",
        r.to_str().unwrap(),
        "--max-drop",
        "0.05",
        "--markdown",
        md.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let run = gate(&args, |c| {
            c.env("GITHUB_STEP_SUMMARY", &step);
        });
        assert_eq!(run.code, 1);
    }
    let table = fs::read_to_string(&md).unwrap();
    assert!(
        table.contains("| Model | Check | Result | Decided by |"),
        "{table}"
    );
    assert!(
        table.contains("| mnist-cnn | max-drop ≤ 0.05 | ❌ **fail** |"),
        "{table}"
    );
    let s = fs::read_to_string(&step).unwrap();
    assert!(s.starts_with("# earlier step\n"), "{s}");
    assert_eq!(
        s.matches("### rotbench gate: ❌ failed").count(),
        2,
        "appended twice:\n{s}"
    );
}

// --- baselines

#[test]
fn a_saved_baseline_passes_against_itself() {
    let f = fixture();
    assert!(f.baselines.join("main/predictions.csv").is_file());
    assert!(f.baselines.join("main/summary.json").is_file());
    let r = gate_results(&[
        "--baseline",
        "main",
        "--baseline-dir",
        f.baselines.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains("PASS  mnist-cnn  max-regression ≤ 0 vs baseline main"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("no fall at any of 12 angles"),
        "{}",
        r.stdout
    );
    // By path, too.
    let p = f.baselines.join("main");
    assert_eq!(
        gate_results(&["--baseline", p.to_str().unwrap(), "--max-regression", "0"]).code,
        0
    );
}

#[test]
fn a_significant_fall_against_the_baseline_fails_and_a_fall_within_the_noise_passes() {
    let d = tempfile::tempdir().unwrap();
    // A baseline that was right on every sample at 90°: the current model falls by
    // far more than 5 points there, with a tiny McNemar p.
    edited_baseline(d.path(), "better", 90.0, |labels, preds| {
        preds.clone_from_slice(labels)
    });
    // A baseline right on 3 more samples at 90° than the current model: b=3, c=0,
    // p = 2/8 = 0.25, a fall of 3/500 = 0.006.
    edited_baseline(d.path(), "noise", 90.0, |labels, preds| {
        let mut left = 3;
        for (p, l) in preds.iter_mut().zip(labels) {
            if left > 0 && p != l {
                *p = l.clone();
                left -= 1;
            }
        }
    });
    let dir = d.path().to_str().unwrap();
    let r = gate_results(&[
        "--baseline",
        "better",
        "--baseline-dir",
        dir,
        "--max-regression",
        "0.05",
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let fail = r.stdout.lines().find(|l| l.starts_with("  FAIL")).unwrap();
    assert!(
        fail.contains("at 1 of 12 angles: 90° 1.0000 →") && fail.contains("McNemar p="),
        "{fail}"
    );
    let r = gate_results(&[
        "--baseline",
        "noise",
        "--baseline-dir",
        dir,
        "--max-regression",
        "0.001",
    ]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains("note: fell 0.0060 at 90°")
            && r.stdout.contains("McNemar p=0.250 ≥ 0.05: within noise"),
        "{}",
        r.stdout
    );
    // With alpha 0.3 the same fall counts.
    let r = gate_results(&[
        "--baseline",
        "noise",
        "--baseline-dir",
        dir,
        "--max-regression",
        "0.001",
        "--significance",
        "0.3",
    ]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    // The same from a config file; an explicit flag still overrides it, even at its default value.
    let cfg = d.path().join("rotbench.toml");
    let toml = format!("[gate]\nbaseline = \"noise\"\nbaseline_dir = {:?}\nmax_regression = 0.001\nsignificance = 0.3\n", dir);
    fs::write(&cfg, toml).unwrap();
    let c = cfg.to_str().unwrap();
    assert_eq!(gate_results(&["--config", c]).code, 1);
    assert_eq!(
        gate_results(&["--config", c, "--significance", "0.05"]).code,
        0
    );
    assert_eq!(
        gate_results(&["--config", c, "--significance=0.05"]).code,
        0
    );
}

#[test]
fn a_missing_baseline_exits_2_and_says_how_to_create_one() {
    let d = tempfile::tempdir().unwrap();
    let r = results();
    let run = gate(
        &["--results", r.to_str().unwrap(), "--baseline", "main"],
        |c| {
            c.current_dir(d.path());
        },
    );
    assert_eq!(run.code, 2);
    assert_eq!(
        first_line(&run.stderr),
        "error: --baseline main: no baseline `main` in .rotbench/baselines; create one with `rotbench sweep ... --save-baseline main`"
    );
}

#[test]
fn a_baseline_of_other_samples_or_another_dataset_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("baselines");
    rotbench()
        .args(["sweep", "--quiet", "--no-report", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args([
            "--angles",
            "0,90",
            "--limit",
            "50",
            "--save-baseline",
            "small",
            "--baseline-dir",
        ])
        .arg(&dir)
        .arg("--out")
        .arg(d.path().join("out"))
        .assert()
        .success();
    let ds = dir.to_str().unwrap();
    let r = gate_results(&["--baseline", "small", "--baseline-dir", ds]);
    assert_eq!(r.code, 2);
    let first = first_line(&r.stderr);
    assert!(
        first.contains("--baseline small: refused, it covers different samples"),
        "{first}"
    );
    assert!(
        first.contains("baseline 50 samples")
            && first.contains("results 500 samples")
            && first.contains("--limit 50"),
        "{first}"
    );

    // The same baseline with another dataset's hash.
    edited_baseline(&dir, "other", -1.0, |_, _| {});
    let p = dir.join("other").join("summary.json");
    let mut v = read_json(&p);
    v["dataset"]["sha256"] = Value::String("0".repeat(64));
    write_json(&p, &v);
    rebind(&dir.join("other"));
    let r = gate_results(&["--baseline", "other", "--baseline-dir", ds]);
    assert_eq!(r.code, 2);
    assert!(
        first_line(&r.stderr)
            .contains("--baseline other: refused, it comes from a different dataset"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_baseline_name_with_a_path_separator_is_refused() {
    let d = tempfile::tempdir().unwrap();
    rotbench()
        .args(["sweep", "--quiet", "--no-report", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args([
            "--angles",
            "0",
            "--limit",
            "8",
            "--save-baseline",
            "../escape",
            "--baseline-dir",
        ])
        .arg(d.path().join("b"))
        .arg("--out")
        .arg(d.path().join("out"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--save-baseline `../escape`"));
    assert!(!d.path().join("escape").exists());
}

#[test]
fn comparing_with_a_baseline_needs_the_results_predictions() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    copy_dir(&fixture().out, &out);
    fs::remove_file(out.join("predictions.csv")).unwrap();
    let s = out.join("summary.json");
    let r = gate(
        &[
            "--results",
            s.to_str().unwrap(),
            "--baseline",
            "main",
            "--baseline-dir",
            fixture().baselines.to_str().unwrap(),
        ],
        |_| {},
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("predictions.csv") && r.stderr.contains("--no-predictions"),
        "{}",
        r.stderr
    );
}

/// Issue 33: a saved baseline records where it came from (when, the git commit of
/// the working directory and whether it had uncommitted changes), and the gate
/// shows that with the baseline's settings, and links the report (`--report-url`).
#[test]
fn a_baseline_records_its_commit_and_date_and_the_gate_shows_them_with_the_report_url() {
    let t = tempfile::tempdir().unwrap();
    let repo = t.path();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(repo)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["init", "-q"]).and_then(|_| {
        fs::write(repo.join("train.py"), "print('model')\n").unwrap();
        git(&["add", "train.py"])?;
        git(&["commit", "-q", "-m", "model"])?;
        git(&["rev-parse", "HEAD"])
    });
    rotbench()
        .current_dir(repo)
        .args(["sweep", "--quiet", "--no-report", "--model"])
        .arg(bundled_model())
        .arg("--data")
        .arg(mnist())
        .args([
            "--angles",
            "0:360:90",
            "--limit",
            "200",
            "--save-baseline",
            "main",
        ])
        .args(["--baseline-dir", "b", "--out", "o"])
        .assert()
        .success();
    let origin = read_json(&repo.join("b/main/origin.json"));
    let saved = origin["saved_utc"].as_str().unwrap();
    assert!(
        saved.starts_with("20") && saved.ends_with(" UTC"),
        "{saved}"
    );
    match &head {
        Some(h) => {
            assert_eq!(origin["git_commit"].as_str(), Some(h.as_str()));
            assert_eq!(origin["git_dirty"], false);
        }
        None => assert!(origin.get("git_commit").is_none(), "no git here: {origin}"),
    }
    let url = "https://ci.example/run/7/report/index.html";
    let r = gate(
        &[
            "--results",
            "o",
            "--baseline",
            "main",
            "--baseline-dir",
            "b",
            "--markdown",
            "gate.md",
            "--report-url",
            url,
        ],
        |c| {
            c.current_dir(repo);
        },
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = fs::read_to_string(repo.join("gate.md")).unwrap();
    for text in [&r.stdout, &md] {
        assert!(
            text.contains(&format!("baseline `main`: saved {saved}")),
            "{text}"
        );
        assert!(
            text.contains("4 angles, the first 200 samples (--limit), interpolation bilinear"),
            "{text}"
        );
        assert!(text.contains(&format!("HTML report: {url}")), "{text}");
        if let Some(h) = &head {
            assert!(
                text.contains(&format!("at git commit {}", &h[..12])),
                "{text}"
            );
        }
    }
}
