#![no_main]
// CSV manifests from arbitrary bytes, with one real image beside them.
use libfuzzer_sys::fuzz_target;
use rotbench_core::dataset::{manifest, OpenOptions, Source, Target};

fuzz_target!(|data: &[u8]| {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("a.png"),
        include_bytes!("../../tests/fixtures/rotation/mnist0.png"),
    )
    .unwrap();
    let p = d.path().join("m.csv");
    std::fs::write(&p, data).unwrap();
    let classes = vec!["0".to_string(), "cat".to_string()];
    let t = Target {
        channels: 1,
        height: 28,
        width: 28,
    };
    if let Ok(mut s) = manifest::open(
        &p,
        t,
        &rotbench_core::dataset::LabelSpace::plain(&classes),
        &OpenOptions::default(),
    ) {
        while let Ok(Some(_)) = s.next_chunk(4) {}
    }
});
