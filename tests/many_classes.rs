//! Issue 20, many classes: a 1,000-class model on 20 images at 0:360:15 wrote a
//! 413 MB summary.json (a dense 1,000 x 1,000 confusion matrix per angle) and
//! needed 0.9-1.3 GB of memory in sweep, gate and report. Confusion counts are
//! sparse now, and per-class rows cover the classes with samples or predictions.
//! The model is `tests/fixtures/models/wide_1000.pt` (make_wide.py).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn fixture_model() -> std::path::PathBuf {
    root().join("tests/fixtures/models/wide_1000.pt")
}

/// Peak RSS in MB of `rotbench ARGS` under /usr/bin/time, or None without it.
fn peak_rss_mb(args: &[&str]) -> Option<f64> {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped the memory check: /usr/bin/time is not installed");
        return None;
    }
    let t = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(t.path())
        .arg(env!("CARGO_BIN_EXE_rotbench"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "rotbench {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let kb: f64 = std::fs::read_to_string(t.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Some(kb / 1024.0)
}

fn dir_bytes(d: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(d).unwrap().flatten() {
        let m = e.metadata().unwrap();
        total += if m.is_dir() {
            dir_bytes(&e.path())
        } else {
            m.len()
        };
    }
    total
}

#[test]
fn a_1000_class_sweep_writes_under_5_mb_and_every_command_stays_under_300_mb() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o");
    let sweep = [
        "sweep",
        "--quiet",
        "--no-cache",
        "--model",
        s(fixture_model()),
        "--data",
        s(mnist()),
        "--limit",
        "20",
        "--angles",
        "0:360:15",
        "--out",
        s(&out),
    ];
    let rss = [
        ("sweep", peak_rss_mb(&sweep)),
        (
            "gate",
            peak_rss_mb(&["gate", "--results", s(&out), "--min-accuracy", "0"]),
        ),
        ("report", peak_rss_mb(&["report", s(&out)])),
    ];
    if rss[0].1.is_none() {
        assert_eq!(run(&sweep, None).code, 0);
    }
    for (cmd, mb) in rss {
        if let Some(mb) = mb {
            eprintln!("{cmd}: peak RSS {mb:.0} MB");
            assert!(mb < 300.0, "{cmd}: peak RSS {mb:.0} MB");
        }
    }
    let bytes = dir_bytes(&out);
    eprintln!("outputs: {bytes} bytes");
    assert!(bytes < 5_000_000, "outputs {bytes} bytes");
    let s0 = summary(&out);
    let a = &s0["models"][0]["angles"][1];
    // 20 samples: at most 20 cells, and per-class rows only for classes with data.
    assert!(a["confusion"].as_array().unwrap().len() <= 20);
    let per_class = a["per_class"].as_array().unwrap();
    assert!(
        !per_class.is_empty() && per_class.len() <= 20 + 10,
        "{}",
        per_class.len()
    );
    assert!(per_class.iter().all(|c| c["support"].as_u64().unwrap() > 0
        || a["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x[1] == c["class"])));
    // The confusion counts add up to the samples.
    let total: u64 = a["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[2].as_u64().unwrap())
        .sum();
    assert_eq!(total, 20);
    // The report draws the classes with data and says so.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(
        html.contains("classes with samples, of 1000"),
        "the report names what it shows"
    );
}
