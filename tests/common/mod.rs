//! Helpers shared by the CLI tests: the built binary, the bundled model and data.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bundled_model() -> PathBuf {
    root().join("models/mnist-cnn.pt")
}

pub fn mnist() -> PathBuf {
    root().join("datasets/mnist")
}

/// The rotbench binary with a clean environment: no LD_LIBRARY_PATH, so the
/// rpath set by build.rs must find libtorch.
pub fn rotbench() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rotbench"));
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("XDG_CACHE_HOME", fresh_cache());
    c
}

/// An empty prediction cache for each invocation (tests that share a cache set
/// XDG_CACHE_HOME themselves, which overrides this). They live in
/// `target/tmp/rotbench-test-cache-PID-N`; the first call of a test process removes
/// those of processes that have ended, so runs do not pile them up.
pub fn fresh_cache() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if n == 0 {
        prune_dead(&base, "rotbench-test-cache-");
    }
    base.join(format!("rotbench-test-cache-{}-{n}", std::process::id()))
}

/// A folder under `target/tmp` kept for the whole test process (a shared fixture
/// in a static, which is never dropped): `PREFIX-PID-*`. Those of ended processes
/// are removed first.
pub fn kept_dir(prefix: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    prune_dead(&base, &format!("{prefix}-"));
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-{}-", std::process::id()))
        .tempdir_in(&base)
        .unwrap()
        .keep()
}

/// Remove `base/PREFIX<pid>-...` folders whose process has ended (Linux: /proc).
fn prune_dead(base: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// Assert that each named file is byte-identical in two output folders.
pub fn assert_same_files(a: &Path, b: &Path, files: &[&str]) {
    for f in files {
        let (x, y) = (
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The deterministic result files: byte-identical between runs that must agree.
pub const EXACT_FILES: [&str; 7] = [
    "summary.json",
    "summary.csv",
    "per_angle.csv",
    "per_class.csv",
    "confusion.csv",
    "predictions.csv",
    "examples.json",
];

/// The names in a folder, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// What a finished `rotbench` run printed, and its exit code.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `rotbench ARGS` (with `XDG_CACHE_HOME=cache` when given) and check that it
/// neither panicked nor aborted, whatever its exit code.
pub fn run(args: &[&str], cache: Option<&Path>) -> Run {
    match cache {
        Some(cache) => run_with_env(args, &[("XDG_CACHE_HOME", cache.as_os_str())]),
        None => run_with_env(args, &[]),
    }
}

/// [`run`] with these variables set in the (otherwise clean) environment.
pub fn run_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Run {
    let mut c = rotbench();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    let r = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    for bad in ["panicked", "stack backtrace", "internal error"] {
        assert!(
            !r.stderr.contains(bad),
            "stderr shows `{bad}`:\n{}",
            r.stderr
        );
    }
    eprintln!(
        "rotbench {}\nexit {}\n{}{}",
        args.join(" "),
        r.code,
        r.stdout,
        r.stderr
    );
    r
}

/// A path as a `&str` argument (leaked: a test's few paths live as long as it).
pub fn s(p: impl AsRef<Path>) -> &'static str {
    Box::leak(p.as_ref().to_str().unwrap().to_string().into_boxed_str())
}

/// Start `rotbench ARGS` and return it, still running, once the checkpoint in `out`
/// holds at least `bytes` (finished batches); the caller stops it.
pub fn running_with_checkpoint(
    args: &[&str],
    cache: &Path,
    out: &Path,
    bytes: u64,
) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rotbench"));
    cmd.args(args).env("XDG_CACHE_HOME", cache);
    // A shell without job control starts background jobs with SIGINT ignored, and a
    // child inherits that (`nohup make test &` did, and the SIGINT test then saw the
    // run finish): give the run the default disposition, as a terminal would.
    // SAFETY: between fork and exec only signal(2), which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let log = out.join(".rotbench-checkpoint/batches.bin");
    let t0 = Instant::now();
    while std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) < bytes
        && t0.elapsed() < Duration::from_secs(60)
        && child.try_wait().unwrap().is_none()
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be stopped; make it longer"
    );
    child
}

/// The first `n` MNIST test digits (28x28 pixels) and all the test labels,
/// read from the bundled gzip IDX files.
#[allow(dead_code)]
pub fn mnist_test_set(n: usize) -> (Vec<Vec<u8>>, Vec<u32>) {
    use std::io::Read;
    let gz = |name: &str| {
        let mut out = vec![];
        flate2::read::GzDecoder::new(std::fs::File::open(mnist().join(name)).unwrap())
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let (images, labels) = (
        gz("t10k-images.idx3-ubyte.gz"),
        gz("t10k-labels.idx1-ubyte.gz"),
    );
    (
        (0..n)
            .map(|i| images[16 + i * 784..16 + (i + 1) * 784].to_vec())
            .collect(),
        labels[8..].iter().map(|&l| l as u32).collect(),
    )
}

/// `rotbench merge --quiet --no-report --out OUT SHARDS...`, which must succeed.
#[allow(dead_code)]
pub fn merge_ok(out: &Path, shards: &[&Path], cache: Option<&Path>) {
    let mut a = vec!["merge", "--quiet", "--no-report", "--out", s(out)];
    a.extend(shards.iter().map(|p| s(p)));
    let r = run(&a, cache);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
