//! Issue #17: flags over the TOML table, written once. Flags with defaults
//! (`--baseline-dir`, `--significance`) are `Option`s that the layering fills, not
//! clap defaults undone by rescanning argv, and a sweep uses one baseline folder
//! for the comparison and the save.

mod common;
use common::*;
use std::fs;

fn sweep(cfg: &str, extra: &[&str], out: &str) -> Run {
    let mut args = vec![
        "sweep",
        "--quiet",
        "--no-report",
        "--model",
        s(bundled_model()),
        "--data",
        s(mnist()),
        "--angles",
        "0,90",
        "--limit",
        "100",
        "--gate-config",
        cfg,
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    run(&args, Some(&fresh_cache()))
}

#[test]
fn a_sweeps_baseline_dir_flag_wins_over_the_gate_tables_for_the_comparison_and_the_save() {
    let d = tempfile::tempdir().unwrap();
    let (table_dir, flag_dir) = (d.path().join("table"), d.path().join("flag"));
    let cfg = d.path().join("gate.toml");
    fs::write(
        &cfg,
        format!(
            "[gate]\nbaseline = \"main\"\nbaseline_dir = {:?}\nmax_regression = 0.01\n",
            table_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let extra = ["--baseline-dir", s(&flag_dir), "--save-baseline", "main"];
    let first = sweep(s(&cfg), &extra, s(d.path().join("a")));
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert!(
        first.stdout.contains("did not exist before this run"),
        "the first run compares with itself: {}",
        first.stdout
    );
    assert!(flag_dir.join("main/summary.json").is_file());
    assert!(!table_dir.exists(), "nothing goes to the table's folder");
    // The second run compares with the baseline the first one saved in the flag's folder.
    let second = sweep(s(&cfg), &extra, s(d.path().join("b")));
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    assert!(
        second.stdout.contains("vs baseline main") && !second.stdout.contains("did not exist"),
        "{}",
        second.stdout
    );
}

#[test]
fn an_explicit_significance_equal_to_the_default_still_overrides_the_config_table() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("gate.toml");
    let base = d.path().join("baselines");
    fs::write(
        &cfg,
        "[gate]\nbaseline = \"main\"\nmax_regression = 0.01\nsignificance = 0.5\n",
    )
    .unwrap();
    let saved = sweep(
        s(&cfg),
        &["--baseline-dir", s(&base), "--save-baseline", "main"],
        s(d.path().join("out")),
    );
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let gate = |extra: &[&str]| {
        let mut args = vec![
            "gate",
            "--results",
            s(d.path().join("out")),
            "--config",
            s(&cfg),
            "--baseline-dir",
            s(&base),
        ];
        args.extend_from_slice(extra);
        run(&args, None)
    };
    let table = gate(&[]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("α=0.5"), "{}", table.stdout);
    let flag = gate(&["--significance", "0.05"]);
    assert_eq!(flag.code, 0, "{}", flag.stderr);
    assert!(flag.stdout.contains("α=0.05"), "{}", flag.stdout);
}
