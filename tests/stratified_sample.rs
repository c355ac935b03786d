//! Issue 20, stratified samples: `--sample N --seed S` draws a class-stratified
//! random subset (proportional allocation, largest remainders), the same one for
//! the same seed and data, keyed into the cache, the checkpoint and the shards, with
//! `predictions.csv`'s `index` the sample's index in the whole dataset.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// The MNIST test labels.
fn mnist_labels() -> Vec<u32> {
    mnist_test_set(0).1
}

/// The rule, written out independently: floor(n * n_c / N) per class, then one
/// more for the classes with the largest remainders (ties to the lower class).
fn expected_counts(labels: &[u32], n: usize) -> BTreeMap<u32, usize> {
    let total = labels.len();
    let mut count: BTreeMap<u32, usize> = BTreeMap::new();
    for &l in labels {
        *count.entry(l).or_default() += 1;
    }
    let mut quota: BTreeMap<u32, usize> = count.iter().map(|(&c, &k)| (c, n * k / total)).collect();
    let mut rest: Vec<(usize, u32)> = count.iter().map(|(&c, &k)| ((n * k) % total, c)).collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = n - quota.values().sum::<usize>();
    for &(_, c) in rest.iter().take(missing) {
        *quota.get_mut(&c).unwrap() += 1;
    }
    quota
}

fn sweep(out: &Path, cache: &Path, extra: &[&'static str]) -> Run {
    let mut a = vec![
        "sweep",
        "--quiet",
        "--no-report",
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
    ];
    a.extend_from_slice(extra);
    let r = run(&a, Some(cache));
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

/// (index, label) of the rows at 0°.
fn drawn(out: &Path) -> Vec<(usize, u32)> {
    read_csv(&out.join("predictions.csv"))
        .iter()
        .filter(|r| r["angle"] == "0")
        .map(|r| (r["index"].parse().unwrap(), r["label"].parse().unwrap()))
        .collect()
}

#[test]
fn a_sample_holds_each_class_in_proportion_with_largest_remainders_and_the_datasets_indices() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let labels = mnist_labels();
    for n in ["500", "37"] {
        let out = t.path().join(format!("s{n}"));
        sweep(&out, &cache, &["--sample", n, "--seed", "3", "--no-cache"]);
        let rows = drawn(&out);
        let mut got: BTreeMap<u32, usize> = BTreeMap::new();
        for &(i, l) in &rows {
            assert_eq!(
                l, labels[i],
                "row {i}: the label is the dataset's at that index"
            );
            *got.entry(l).or_default() += 1;
        }
        let n: usize = n.parse().unwrap();
        let want: BTreeMap<u32, usize> = expected_counts(&labels, n)
            .into_iter()
            .filter(|&(_, k)| k > 0)
            .collect();
        assert_eq!(got, want, "--sample {n}");
        assert!(rows.windows(2).all(|w| w[0].0 < w[1].0), "in dataset order");
        let s0 = summary(&out);
        assert_eq!(
            (
                s0["settings"]["sample"].as_u64(),
                s0["settings"]["seed"].as_u64()
            ),
            (Some(n as u64), Some(3))
        );
        assert_eq!(s0["dataset"]["n"].as_u64(), Some(n as u64));
    }
}

#[test]
fn the_same_seed_draws_the_same_samples_and_the_cache_shards_and_limit_keep_draws_apart() {
    let t = tempfile::tempdir().unwrap();
    let cache = t.path().join("cache");
    let dir = |n: &str| t.path().join(n);
    sweep(&dir("a"), &cache, &["--sample", "300", "--seed", "1"]);
    sweep(
        &dir("b"),
        &cache,
        &[
            "--sample",
            "300",
            "--seed",
            "1",
            "--no-cache",
            "--batch-size",
            "64",
        ],
    );
    assert_same_files(&dir("a"), &dir("b"), &["predictions.csv", "per_angle.csv"]);
    // Another seed, with the first run's cache at hand: other samples, not its predictions.
    sweep(&dir("c"), &cache, &["--sample", "300", "--seed", "2"]);
    let (a, c) = (drawn(&dir("a")), drawn(&dir("c")));
    assert_ne!(a, c);
    let fresh = dir("c-fresh");
    sweep(
        &fresh,
        &cache,
        &["--sample", "300", "--seed", "2", "--no-cache"],
    );
    assert_same_files(&dir("c"), &fresh, &["predictions.csv"]);
    // --limit 300 is the first 300, not a draw.
    sweep(&dir("l"), &cache, &["--limit", "300"]);
    assert_eq!(
        drawn(&dir("l")).iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    // Two shards of the same draw merge into the single run.
    for i in ["0/2", "1/2"] {
        sweep(
            &dir(&format!("shard{}", &i[..1])),
            &cache,
            &["--sample", "300", "--seed", "1", "--shard", i, "--no-cache"],
        );
    }
    let merged = dir("merged");
    merge_ok(&merged, &[&dir("shard0"), &dir("shard1")], None);
    assert_same_files(&dir("b"), &merged, &["predictions.csv", "per_angle.csv"]);
}

#[test]
fn an_image_folder_is_sampled_by_the_same_rule_and_rows_name_their_files() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("data");
    let (images, labels) = mnist_test_set(120);
    for i in 0..120 {
        let dir = root.join(labels[i].to_string());
        fs::create_dir_all(&dir).unwrap();
        image::GrayImage::from_raw(28, 28, images[i].clone())
            .unwrap()
            .save(dir.join(format!("{i:04}.png")))
            .unwrap();
    }
    let out = t.path().join("o");
    sweep_folder(&root, &out);
    let rows: Vec<_> = read_csv(&out.join("predictions.csv"))
        .into_iter()
        .filter(|r| r["angle"] == "0")
        .collect();
    // Folder positions run class by class (0/, 1/, ...), files in name order.
    let folder_labels: Vec<u32> = {
        let mut v: Vec<u32> = labels[..120].to_vec();
        v.sort();
        v
    };
    let mut got: BTreeMap<u32, usize> = BTreeMap::new();
    for r in &rows {
        let (class, file) = r["source"].split_once('/').unwrap();
        assert_eq!(class, r["label"], "{r:?}");
        let i: usize = file[..4].parse().unwrap();
        assert_eq!(labels[i].to_string(), r["label"]);
        *got.entry(r["label"].parse().unwrap()).or_default() += 1;
    }
    let want: BTreeMap<u32, usize> = expected_counts(&folder_labels, 25)
        .into_iter()
        .filter(|&(_, k)| k > 0)
        .collect();
    assert_eq!(got, want);
}

fn sweep_folder(root: &Path, out: &Path) {
    let r = run(
        &[
            "sweep",
            "--quiet",
            "--no-report",
            "--no-cache",
            "--model",
            s(bundled_model()),
            "--data",
            s(root),
            "--angles",
            "0",
            "--bootstrap",
            "0",
            "--sample",
            "25",
            "--seed",
            "9",
            "--out",
            s(out),
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}
