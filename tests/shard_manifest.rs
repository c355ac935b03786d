//! Issue #17: a shard manifest stores the run's `Examples` as they are (one type,
//! the pixels in base64). A manifest whose example pixels do not add up is an
//! error naming the shard, not a panic.

mod common;
use common::*;
use rotbench::store;

#[test]
fn a_shard_whose_example_pixels_are_short_is_an_error_that_names_it() {
    let d = tempfile::tempdir().unwrap();
    let cache = fresh_cache();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let r = run(
            &[
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
                "200",
                "--batch-size",
                "50",
                "--shard",
                s(&shard),
                "--out",
                s(d.path().join(format!("s{i}"))),
            ],
            Some(&cache),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // Claim one more example than the pixels hold, and re-seal the file.
    let bin = d.path().join("s1/shard.bin");
    let (header, data) = store::decode(&std::fs::read(&bin).unwrap(), "shard").unwrap();
    let mut meta = header.meta;
    let count = meta["examples"]["count"].as_u64().unwrap();
    meta["examples"]["count"] = (count + 1).into();
    std::fs::write(&bin, store::encode(&data, meta)).unwrap();
    let r = run(
        &[
            "merge",
            s(d.path().join("s0")),
            s(d.path().join("s1")),
            "--out",
            s(d.path().join("m")),
            "--quiet",
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("s1") && r.stderr.contains("examples are damaged"),
        "{}",
        r.stderr
    );
}
