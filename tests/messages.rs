//! Messages that finish the job (issue #33, part 3): what rotbench says when a
//! run is stopped, when a model fails, when a spec lacks fields, and how models
//! that share a stem are named. Each test is named after what a user sees.

mod common;
use common::*;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

fn sweep_args(out: &Path) -> Vec<&'static str> {
    vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--no-cache",
        "--model",
        s(bundled_model()),
        "--data",
        s(mnist()),
        "--angles",
        "0:360:45",
        "--limit",
        "3000",
        "--batch-size",
        "100",
        "--out",
        s(out),
    ]
}

#[test]
fn ctrl_c_says_how_far_the_run_got_and_that_resume_continues_it() {
    use std::os::unix::process::CommandExt;
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rotbench"));
    cmd.args(sweep_args(&out))
        .env("XDG_CACHE_HOME", t.path().join("cache"))
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only signal(2): SIGINT's default, as a terminal gives.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let log = out.join(".rotbench-checkpoint/batches.bin");
    let t0 = Instant::now();
    while fs::metadata(&log).map_or(0, |m| m.len()) == 0 && t0.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: kill(2) on our child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    // Before: nothing printed, exit 130 from the signal.
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        err.contains("interrupted after")
            && err.contains("of 3000 samples")
            && err.contains("rerun the same command with --resume to continue"),
        "{err}"
    );
    // Rerun without --resume: the checkpoint of this very run is discarded, and said so.
    let r = run(&sweep_args(&out), Some(&t.path().join("cache")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("held a checkpoint of this same run")
            && r.stderr.contains("pass --resume"),
        "{}",
        r.stderr
    );
}

#[test]
fn models_with_one_stem_are_named_by_file_name_or_as_the_user_names_them() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let m = |f: &str| s(root().join("models").join(f));
    let base = |models: &[&'static str]| -> Vec<&'static str> {
        let mut a = vec![
            "sweep",
            "--quiet",
            "--no-report",
            "--data",
            s(mnist()),
            "--limit",
            "50",
            "--angles",
            "0",
            "--out",
            s(&out),
        ];
        for x in models {
            a.extend(["--model", x]);
        }
        a
    };
    // Before: refused, "models are named by file stem, so rename one file".
    let r = run(&base(&[m("mnist-cnn.pt"), m("mnist-cnn.pt2")]), None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let names: Vec<String> = summary(&out)["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["mnist-cnn.pt", "mnist-cnn.pt2"]);
    let named = format!("script={}", m("mnist-cnn.pt"));
    let r = run(&base(&[s(&named), m("mnist-cnn.pt2")]), None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(summary(&out)["models"][0]["name"], "script");
    assert_eq!(
        summary(&out)["models"][1]["name"],
        "mnist-cnn",
        "no collision left"
    );
    let twice = format!("x={}", m("mnist-cnn.pt2"));
    let r = run(&base(&[s(&named.replace("script", "x")), s(&twice)]), None);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("also named `x`") && r.stderr.contains("NAME=PATH"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_torchscript_error_keeps_its_reason() {
    // A 3-channel model given a 1-channel spec: the traceback and the RuntimeError.
    let r = run(
        &[
            "inspect",
            s(root().join("tests/fixtures/models/wrong_channels.pt")),
        ],
        None,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("RuntimeError:")
            && r.stderr
                .contains("to have 3 channels, but got 1 channels instead"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_baseline_of_a_stratified_sample_says_to_rerun_with_that_sample() {
    let t = tempfile::tempdir().unwrap();
    let common = |out: &Path| {
        vec![
            "sweep",
            "--quiet",
            "--no-cache",
            "--model",
            s(bundled_model()),
            "--data",
            s(mnist()),
            "--angles",
            "0,90",
            "--bootstrap",
            "0",
            "--out",
            s(out),
        ]
    };
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let mut args = common(&a);
    let bl = t.path().join("bl");
    args.extend([
        "--sample",
        "300",
        "--seed",
        "4",
        "--save-baseline",
        "s",
        "--baseline-dir",
        s(&bl),
    ]);
    assert_eq!(run(&args, None).code, 0);
    let html = fs::read_to_string(a.join("index.html")).unwrap();
    // The report's run card says what was sampled, a grey model is no "rgb", and
    // the summary note explains every column.
    assert!(
        html.contains("a class-stratified sample of 300 (--sample, seed 4)"),
        "run card"
    );
    assert!(
        html.contains("1 channel (grey)") && !html.contains("; rgb;"),
        "channels"
    );
    assert!(html.contains("Mean ÷ 0° (relative robustness) is the mean accuracy divided by"));
    let mut args = common(&b);
    args.extend(["--limit", "300"]);
    assert_eq!(run(&args, None).code, 0);
    let r = run(
        &[
            "gate",
            "--results",
            s(b.join("summary.json")),
            "--baseline",
            "s",
            "--baseline-dir",
            s(&bl),
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("rerun the sweep with --sample 300 --seed 4 as the baseline did")
            && !r.stderr.contains("without --limit"),
        "{}",
        r.stderr
    );
}

/// Issue 33: on MNIST IDX (labels are class indices), a model that names no
/// classes gets 0..C-1, C its output width, with a note and the source recorded;
/// on an image folder (labels are names) the missing classes are still an error.
#[test]
fn a_model_without_class_names_gets_indices_on_index_labelled_data_only() {
    let t = tempfile::tempdir().unwrap();
    let model = t.path().join("nameless.pt");
    fs::copy(root().join("tests/fixtures/models/wide_1000.pt"), &model).unwrap();
    let out = t.path().join("o");
    let spec = [
        "--input-size",
        "1x28x28",
        "--mean",
        "0.1307",
        "--std",
        "0.3081",
    ];
    let mut a = vec![
        "sweep",
        "--model",
        s(&model),
        "--data",
        s(&mnist()),
        "--limit",
        "50",
    ];
    a.extend_from_slice(&[
        "--angles",
        "0,90",
        "--out",
        s(&out),
        "--no-report",
        "--no-cache",
        "--bootstrap",
        "0",
    ]);
    a.extend_from_slice(&spec);
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("note: nameless: classes default: 0..999"),
        "{}",
        r.stderr
    );
    let sm = summary(&out);
    assert_eq!(
        sm["models"][0]["spec"]["classes"].as_array().unwrap().len(),
        1000
    );
    assert_eq!(sm["models"][0]["spec"]["classes"][7], "7");
    assert!(sm["models"][0]["spec_sources"]["classes"]
        .as_str()
        .unwrap()
        .starts_with("default: 0..999"));
    // An image folder's labels are folder names: nothing to default to.
    let folder = root().join("tests/fixtures/jpeg224");
    let mut a = vec![
        "sweep",
        "--model",
        s(&model),
        "--data",
        s(&folder),
        "--limit",
        "5",
    ];
    a.extend_from_slice(&[
        "--angles",
        "0",
        "--out",
        s(&t.path().join("p")),
        "--no-report",
        "--no-cache",
    ]);
    a.extend_from_slice(&spec);
    let r = run(&a, None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("classes"), "{}", r.stderr);
}
