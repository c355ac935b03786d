//! `sweep --resume` as job engines use it (issue #16, item 2): every task of an
//! array passes `--resume`, so a first run on a fresh `--out` must start from
//! scratch, and a retry must continue. The last test runs the Slurm recipe of
//! docs/scale-out.md, as written there, on a real single-node Slurm
//! (scripts/slurm-local.sh) and checks the merge against a single run byte for byte.

mod common;
use common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::{Duration, Instant};

fn sweep_args(out: &Path, extra: &[&str]) -> Vec<String> {
    args_with(out, "0:360:90", "600", "100", extra)
}

fn args_with(out: &Path, angles: &str, limit: &str, batch: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["sweep", "--quiet", "--no-report", "--no-cache", "--model"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push(bundled_model().display().to_string());
    v.push("--data".into());
    v.push(mnist().display().to_string());
    v.extend(
        [
            "--angles",
            angles,
            "--limit",
            limit,
            "--batch-size",
            batch,
            "--out",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Run a sweep that must succeed; return its stderr.
fn sweep_ok(out: &Path, extra: &[&str]) -> String {
    let a = rotbench().args(sweep_args(out, extra)).assert().success();
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// Run a sweep that must exit 2; return its stderr.
fn sweep_exit_2(out: &Path, extra: &[&str]) -> String {
    let a = rotbench().args(sweep_args(out, extra)).assert().code(2);
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

/// The stderr lines that mention --resume.
fn resume_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("--resume")).collect()
}

#[test]
fn resume_on_a_missing_out_starts_a_fresh_run_and_says_so_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("never-made");
    let e = sweep_ok(&out, &["--resume"]);
    let lines = resume_lines(&e);
    assert_eq!(lines.len(), 1, "one line about --resume on stderr: {e}");
    assert!(
        lines[0].contains("no checkpoint") && lines[0].contains("fresh"),
        "{e}"
    );
    assert!(
        lines[0].contains(&out.display().to_string()),
        "names --out: {e}"
    );
    sweep_ok(&t.path().join("plain"), &[]);
    assert_same_files(&t.path().join("plain"), &out, &EXACT_FILES);
    assert!(!out.join(".rotbench-checkpoint").exists());
}

#[test]
fn resume_on_an_empty_out_starts_a_fresh_run_and_says_so_in_one_line() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("empty");
    fs::create_dir_all(&out).unwrap();
    let e = sweep_ok(&out, &["--resume"]);
    assert_eq!(resume_lines(&e).len(), 1, "{e}");
    assert!(e.contains("fresh"), "{e}");
    assert!(out.join("summary.json").exists());
}

#[test]
fn resume_on_a_fresh_shard_out_writes_the_shard_and_the_shards_merge_into_the_single_run() {
    // The Kubernetes recipe: `--shard auto --resume` on a fresh folder per index.
    let t = tempfile::tempdir().unwrap();
    let p = |s: &str| t.path().join(s);
    for i in 0..3 {
        let a = rotbench()
            .args(sweep_args(
                &p(&format!("shard-{i}")),
                &["--shard", "auto", "--resume"],
            ))
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .env("JOB_COMPLETIONS", "3")
            .assert()
            .success();
        let e = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
        assert_eq!(resume_lines(&e).len(), 1, "{e}");
    }
    rotbench()
        .args(["merge", "--quiet", "--no-report", "--out"])
        .arg(p("merged"))
        .args([p("shard-0"), p("shard-1"), p("shard-2")])
        .assert()
        .success();
    sweep_ok(&p("single"), &[]);
    assert_same_files(&p("single"), &p("merged"), &EXACT_FILES);
}

#[test]
fn resume_on_an_out_with_finished_results_runs_again_and_says_it_replaces_them() {
    // The last run finished (its checkpoint is gone), e.g. a job engine retried a task
    // whose results were written: rerunning writes the same bytes, so --resume does.
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("done");
    sweep_ok(&out, &[]);
    let before: Vec<Vec<u8>> = EXACT_FILES
        .iter()
        .map(|f| fs::read(out.join(f)).unwrap())
        .collect();
    let e = sweep_ok(&out, &["--resume"]);
    let lines = resume_lines(&e);
    assert_eq!(lines.len(), 1, "{e}");
    assert!(
        lines[0].contains("finished") && lines[0].contains("from the start"),
        "{e}"
    );
    for (f, b) in EXACT_FILES.iter().zip(before) {
        assert!(fs::read(out.join(f)).unwrap() == b, "{f} changed");
    }
}

#[test]
fn resume_still_refuses_a_checkpoint_made_with_other_arguments_with_exit_2() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    fs::create_dir_all(out.join(".rotbench-checkpoint")).unwrap();
    fs::write(
        out.join(".rotbench-checkpoint/run.json"),
        "{\"other\": true}",
    )
    .unwrap();
    let e = sweep_exit_2(&out, &["--resume"]);
    assert!(
        e.contains("--resume") && e.contains("different arguments"),
        "{e}"
    );
    assert!(!out.join("summary.json").exists(), "nothing written: {e}");
    // A real checkpoint from other arguments: kill a run, then resume with other angles.
    let out = t.path().join("killed");
    let args = args_with(&out, "0:360:90", "10000", "10", &[]);
    let mut child = Process::new(env!("CARGO_BIN_EXE_rotbench"))
        .args(&args)
        .env("XDG_CACHE_HOME", fresh_cache())
        .spawn()
        .unwrap();
    let log = out.join(".rotbench-checkpoint/batches.bin");
    let t0 = Instant::now();
    while fs::metadata(&log).map(|m| m.len()).unwrap_or(0) == 0
        && t0.elapsed() < Duration::from_secs(60)
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().ok();
    child.wait().unwrap();
    assert!(log.exists(), "the killed run left a checkpoint");
    let a = rotbench()
        .args(args_with(&out, "0:360:45", "10000", "10", &["--resume"]))
        .assert()
        .code(2);
    let e = String::from_utf8_lossy(&a.get_output().stderr).into_owned();
    assert!(e.contains("different arguments"), "{e}");
}

// --- A real Slurm -------------------------------------------------------------------

/// Why this machine cannot run a local Slurm, if it cannot.
fn slurm_missing() -> Option<String> {
    let path = format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    );
    for b in ["sbatch", "scontrol", "slurmctld", "slurmd", "munged"] {
        let found = std::env::split_paths(&path).any(|d| d.join(b).is_file());
        if !found {
            return Some(format!(
                "`{b}` not found (install with: apt-get install -y --no-install-recommends slurm-wlm munge)"
            ));
        }
    }
    let uid = Process::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("a local Slurm needs root (scripts/slurm-local.sh starts slurmd)".into());
    }
    None
}

/// The fenced block after `<!-- test: NAME -->` in docs/scale-out.md.
fn doc_block(doc: &str, name: &str) -> String {
    let marker = format!("<!-- test: {name} -->");
    let at = doc
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/scale-out.md lost its `{marker}` marker"));
    let rest = &doc[at + marker.len()..];
    let open = rest.find("```").expect("a code block after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("the block is closed")].to_string()
}

/// Replace `from` (which must occur exactly once) with `to`.
fn swap(text: &str, from: &str, to: &str, name: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "docs/scale-out.md `{name}` no longer holds `{from}` once; update this test with the recipe"
    );
    text.replace(from, to)
}

/// Run `cmd` with bash in `dir` within `secs` seconds (coreutils `timeout`), with `env`
/// added; None when it could not be started.
fn slurm_try(
    cmd: &str,
    secs: u32,
    dir: &Path,
    env: &[(&str, &Path)],
) -> Option<std::process::Output> {
    let mut c = Process::new("timeout");
    c.args([&secs.to_string(), "bash", "-c", cmd])
        .current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c.env(
        "PATH",
        format!(
            "{}:/usr/sbin:/sbin",
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    c.output().ok()
}

fn slurm_cmd(cmd: &str, secs: u32, dir: &Path, env: &[(&str, &Path)]) -> std::process::Output {
    slurm_try(cmd, secs, dir, env).unwrap_or_else(|| panic!("cannot run `timeout bash -c {cmd}`"))
}

/// Stops the test's cluster (and cancels its jobs) however the test ends.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let env = [("SLURM_CONF", self.conf.as_path())];
        // Never panics: it also runs while a failed test unwinds.
        slurm_try("scancel -u \"$(id -un)\"", 10, &self.dir, &env);
        let stop = format!(
            "bash {} stop {}",
            root().join("scripts/slurm-local.sh").display(),
            self.dir.display()
        );
        slurm_try(&stop, 20, &self.dir, &env);
    }
}

fn logs(work: &Path) -> String {
    let mut s = String::new();
    for d in [work.to_path_buf(), work.join("logs")] {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "out") {
                s += &format!(
                    "--- {}\n{}",
                    p.display(),
                    fs::read_to_string(&p).unwrap_or_default()
                );
            }
        }
    }
    s
}

#[test]
fn the_slurm_recipe_in_docs_scale_out_runs_on_a_real_slurm_and_merges_into_the_single_run() {
    if let Some(why) = slurm_missing() {
        eprintln!("skipped: the Slurm recipe test needs a local Slurm: {why}");
        return;
    }
    let t0 = Instant::now();
    let t = tempfile::tempdir().unwrap();
    let work = t.path().join("work");
    fs::create_dir_all(work.join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_rotbench"),
        work.join("target/release/rotbench"),
    )
    .unwrap();
    std::os::unix::fs::symlink(root().join("models"), work.join("models")).unwrap();
    std::os::unix::fs::symlink(root().join("datasets"), work.join("datasets")).unwrap();

    // Start the cluster; the guard stops it, and is dropped before the folder.
    let sdir = t.path().join("slurm");
    let start = format!(
        "bash {} start {}",
        root().join("scripts/slurm-local.sh").display(),
        sdir.display()
    );
    let o = slurm_cmd(&start, 40, t.path(), &[]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "scripts/slurm-local.sh failed: {stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let conf = PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("export SLURM_CONF="))
            .expect("slurm-local.sh prints `export SLURM_CONF=...`"),
    );
    let _cluster = Cluster {
        dir: sdir.clone(),
        conf: conf.clone(),
    };

    // The recipe from the docs. Four shards of 1,000 samples at four angles on one
    // CPU each: the same batches (256) the docs use, small enough to take seconds.
    let doc = fs::read_to_string(root().join("docs/scale-out.md")).unwrap();
    let wd = work.display().to_string();
    let name = "slurm sweep.sbatch";
    let mut sweep = doc_block(&doc, name);
    sweep = swap(&sweep, "cd /opt/rotbench", &format!("cd {wd}"), name);
    sweep = swap(&sweep, "--cpus-per-task=8", "--cpus-per-task=1", name);
    sweep = swap(
        &sweep,
        "--angles 0:360:5",
        "--angles 0:360:90 --limit 1000",
        name,
    );
    assert!(sweep.contains("--resume"), "the recipe passes --resume");
    let name = "slurm merge.sbatch";
    let merge = swap(
        &doc_block(&doc, name),
        "cd /opt/rotbench",
        &format!("cd {wd}"),
        name,
    );
    let name = "slurm submit";
    let submit = swap(
        &doc_block(&doc, name),
        "cd /opt/rotbench",
        &format!("cd {wd}"),
        name,
    );
    fs::write(work.join("sweep.sbatch"), &sweep).unwrap();
    fs::write(work.join("merge.sbatch"), &merge).unwrap();

    let cache = t.path().join("cache");
    let env = [
        ("SLURM_CONF", conf.as_path()),
        ("XDG_CACHE_HOME", cache.as_path()),
    ];
    let o = slurm_cmd(&submit, 20, &work, &env);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "the submit commands failed: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let merge_id = out
        .lines()
        .find_map(|l| l.strip_prefix("Submitted batch job "))
        .unwrap_or_else(|| panic!("sbatch printed no job id: {out}"))
        .trim()
        .to_string();

    // Wait for the merge job (it runs only after every array task succeeded).
    let deadline = Instant::now() + Duration::from_secs(60);
    let state = loop {
        let o = slurm_cmd(&format!("scontrol -o show job {merge_id}"), 10, &work, &env);
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        let state = s
            .split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("UNKNOWN")
            .to_string();
        let pending_forever = s.contains("DependencyNeverSatisfied");
        if !matches!(
            state.as_str(),
            "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "UNKNOWN"
        ) || pending_forever
        {
            break format!(
                "{state}{}",
                if pending_forever {
                    " (a shard failed)"
                } else {
                    ""
                }
            );
        }
        assert!(
            Instant::now() < deadline,
            "the Slurm jobs did not finish within 60 s (merge job {merge_id}: {state}); logs:\n{}",
            logs(&work)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(
        state,
        "COMPLETED",
        "merge job {merge_id}; logs:\n{}",
        logs(&work)
    );

    // The same sweep in one run, outside Slurm.
    let single = t.path().join("single");
    rotbench()
        .args([
            "sweep",
            "--quiet",
            "--no-cache",
            "--model",
            "models/mnist-cnn.pt",
        ])
        .args([
            "--data",
            "datasets/mnist",
            "--angles",
            "0:360:90",
            "--limit",
            "1000",
        ])
        .args(["--batch-size", "256", "--threads", "1", "--out"])
        .arg(&single)
        .current_dir(root())
        .assert()
        .success();
    assert_same_files(&single, &work.join("results/merged"), &EXACT_FILES);
    eprintln!(
        "the Slurm recipe test (cluster start, 4 array tasks, merge, single run) took {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
