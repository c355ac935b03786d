//! Shards and merge, the prediction cache, and resuming a killed run: each must
//! reproduce an uninterrupted single run byte for byte (timing.json aside).

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn sweep_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "sweep".into(),
        "--quiet".into(),
        "--no-report".into(),
        "--model".into(),
    ];
    v.push(bundled_model().display().to_string());
    v.extend([
        "--data".into(),
        mnist().display().to_string(),
        "--angles".into(),
        "0:360:45".into(),
    ]);
    v.extend([
        "--limit".into(),
        "1000".into(),
        "--out".into(),
        out.display().to_string(),
    ]);
    if !extra.contains(&"--batch-size") {
        v.extend(["--batch-size".into(), "100".into()]);
    }
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run_ok(out: &Path, extra: &[&str], cache: &Path) {
    rotbench()
        .args(sweep_args(out, extra))
        .env("XDG_CACHE_HOME", cache)
        .assert()
        .success();
}

fn same_results(a: &Path, b: &Path) {
    assert_same_files(a, b, &EXACT_FILES);
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        Fixture { _tmp: t, root }
    }
    fn p(&self, s: &str) -> PathBuf {
        self.root.join(s)
    }
}

#[test]
fn three_shards_merge_into_exactly_the_single_run() {
    let f = Fixture::new();
    run_ok(&f.p("single"), &["--no-cache"], &f.p("cache"));
    for i in 0..3 {
        run_ok(
            &f.p(&format!("s{i}")),
            &["--no-cache", "--shard", &format!("{i}/3")],
            &f.p("cache"),
        );
    }
    // Shards given in any order.
    rotbench()
        .args(["merge", "--quiet", "--no-report", "--out"])
        .arg(f.p("merged"))
        .args([f.p("s2"), f.p("s0"), f.p("s1")])
        .assert()
        .success();
    same_results(&f.p("single"), &f.p("merged"));
}

#[test]
fn shard_auto_reads_the_job_engine_variables() {
    let f = Fixture::new();
    rotbench()
        .args(sweep_args(&f.p("k"), &["--no-cache", "--shard", "auto"]))
        .env("XDG_CACHE_HOME", f.p("cache"))
        .env("JOB_COMPLETION_INDEX", "1")
        .env("JOB_COMPLETIONS", "2")
        .assert()
        .success();
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(f.p("k/shard.json")).unwrap()).unwrap();
    assert_eq!(m["shard"]["index"], 1);
    assert_eq!(m["shard"]["count"], 2);
    assert_eq!(m["start"], 500);
}

fn merge_fails(dirs: &[PathBuf], out: &Path) -> String {
    let a = rotbench()
        .args(["merge", "--quiet", "--out"])
        .arg(out)
        .args(dirs)
        .assert()
        .code(2);
    String::from_utf8_lossy(&a.get_output().stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn merge_refuses_missing_duplicate_failed_and_foreign_shards() {
    let f = Fixture::new();
    for i in 0..2 {
        run_ok(
            &f.p(&format!("s{i}")),
            &["--no-cache", "--shard", &format!("{i}/2")],
            &f.p("cache"),
        );
    }
    let out = f.p("m");
    let e = merge_fails(&[f.p("s0")], &out);
    assert!(e.contains("shard 1 of 2 is missing"), "{e}");
    let e = merge_fails(&[f.p("s0"), f.p("s0"), f.p("s1")], &out);
    assert!(e.contains("appears twice"), "{e}");
    fs::create_dir_all(f.p("failed")).unwrap();
    let e = merge_fails(&[f.p("s0"), f.p("failed")], &out);
    assert!(
        e.contains("failed") && e.contains("failed or has not finished"),
        "{e}"
    );
    // A shard of another sweep: different settings (nearest interpolation).
    run_ok(
        &f.p("other"),
        &["--no-cache", "--shard", "1/2", "--interpolation", "nearest"],
        &f.p("cache"),
    );
    let e = merge_fails(&[f.p("s0"), f.p("other")], &out);
    assert!(e.contains("different settings"), "{e}");
    // A shard of another sample selection.
    rotbench()
        .args(
            sweep_args(&f.p("lim"), &["--no-cache", "--shard", "1/2"])
                .into_iter()
                .map(|s| if s == "1000" { "900".to_string() } else { s }),
        )
        .env("XDG_CACHE_HOME", f.p("cache"))
        .assert()
        .success();
    let e = merge_fails(&[f.p("s0"), f.p("lim")], &out);
    assert!(e.contains("different dataset or sample selection"), "{e}");
    assert!(
        !out.join("summary.json").exists(),
        "a refused merge writes nothing"
    );
}

#[test]
fn an_unchanged_rerun_comes_from_the_cache_with_identical_results() {
    let f = Fixture::new();
    run_ok(&f.p("a"), &[], &f.p("cache"));
    run_ok(&f.p("b"), &[], &f.p("cache"));
    same_results(&f.p("a"), &f.p("b"));
    let t: serde_json::Value =
        serde_json::from_slice(&fs::read(f.p("b/timing.json")).unwrap()).unwrap();
    assert_eq!(t["cached_pairs"], 8, "all 8 angles came from the cache");
    // A new angle reuses the cached ones and computes only itself (and its reference).
    rotbench()
        .args(sweep_args(&f.p("c"), &[]).into_iter().map(|s| {
            if s == "0:360:45" {
                "0,45,90,135,180,225,270,315,10".to_string()
            } else {
                s
            }
        }))
        .env("XDG_CACHE_HOME", f.p("cache"))
        .assert()
        .success();
    let t: serde_json::Value =
        serde_json::from_slice(&fs::read(f.p("c/timing.json")).unwrap()).unwrap();
    assert_eq!(
        t["cached_pairs"], 7,
        "0 is recomputed as the reference for the new angle"
    );
    // --no-cache recomputes and still agrees.
    run_ok(&f.p("d"), &["--no-cache"], &f.p("cache"));
    same_results(&f.p("a"), &f.p("d"));
}

/// Start a sweep at `--batch-size batch`, kill it once its checkpoint log holds `bytes`,
/// check that it left no results, resume it, and return the resumed run's timing.json.
fn kill_then_resume(
    f: &Fixture,
    out: &Path,
    batch: &str,
    bytes: u64,
    poll: Duration,
) -> serde_json::Value {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rotbench"))
        .args(sweep_args(out, &["--no-cache", "--batch-size", batch]))
        .env("XDG_CACHE_HOME", f.p("cache"))
        .spawn()
        .unwrap();
    let log = out.join(".rotbench-checkpoint/batches.bin");
    let t0 = Instant::now();
    while fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < bytes
        && t0.elapsed() < Duration::from_secs(60)
    {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(poll);
    }
    let finished = child.try_wait().unwrap().is_some();
    child.kill().ok();
    child.wait().unwrap();
    assert!(
        !finished,
        "the run finished before it could be killed; make it longer"
    );
    assert!(
        !out.join("summary.json").exists(),
        "no results from a killed run"
    );
    rotbench()
        .args(sweep_args(
            out,
            &["--no-cache", "--batch-size", batch, "--resume"],
        ))
        .env("XDG_CACHE_HOME", f.p("cache"))
        .assert()
        .success();
    assert!(
        !out.join(".rotbench-checkpoint").exists(),
        "the checkpoint is removed after success"
    );
    serde_json::from_slice(&fs::read(out.join("timing.json")).unwrap()).unwrap()
}

#[test]
fn a_killed_run_resumes_without_recomputing_and_matches_an_uninterrupted_run() {
    let f = Fixture::new();
    let out = f.p("killed");
    // Kill it once a few batches are checkpointed.
    let t = kill_then_resume(&f, &out, "50", 3 * 50 * 12 * 8, Duration::from_millis(20));
    let resumed = t["resumed_samples"].as_u64().unwrap();
    assert!(resumed >= 50, "resumed {resumed} samples");
    // Batch size differs from `whole` (50 vs 100), so compare with a run at 50.
    run_ok(
        &f.p("whole50"),
        &["--no-cache", "--batch-size", "50"],
        &f.p("cache"),
    );
    same_results(&f.p("whole50"), &out);
}

#[test]
fn resume_refuses_a_checkpoint_from_other_arguments() {
    let f = Fixture::new();
    let out = f.p("o");
    fs::create_dir_all(out.join(".rotbench-checkpoint")).unwrap();
    fs::write(
        out.join(".rotbench-checkpoint/run.json"),
        "{\"other\": true}",
    )
    .unwrap();
    let a = rotbench()
        .args(sweep_args(&out, &["--no-cache", "--resume"]))
        .env("XDG_CACHE_HOME", f.p("cache"))
        .assert()
        .code(2);
    let e = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(
        e.contains("--resume") && e.contains("different arguments"),
        "{e}"
    );
    // A fresh --out starts a fresh run: tests/cli_resume_and_slurm.rs (issue #16).
}

#[test]
fn a_killed_auto_batch_run_resumes_on_its_own_chunk_boundaries() {
    // Auto uses chunks of 64, 128, 256, 512 and then its choice; a resumed run must
    // skip exactly the finished samples whatever sizes cut them.
    let f = Fixture::new();
    let out = f.p("killed");
    // Past the first chunk (64 samples x 8 angles x 9 bytes).
    let t = kill_then_resume(&f, &out, "auto", 64 * 8 * 9 + 64, Duration::from_millis(5));
    assert!(t["resumed_samples"].as_u64().unwrap() >= 64, "{t}");
    run_ok(
        &f.p("whole"),
        &["--no-cache", "--batch-size", "auto"],
        &f.p("cache"),
    );
    same_results(&f.p("whole"), &out);
}
