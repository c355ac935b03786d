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
/// XDG_CACHE_HOME themselves, which overrides this).
pub fn fresh_cache() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "rotbench-test-cache-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
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
pub const EXACT_FILES: [&str; 6] = [
    "summary.json",
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
