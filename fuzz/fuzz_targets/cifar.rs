#![no_main]
// CIFAR-10 and CIFAR-100 batches from arbitrary bytes.
use libfuzzer_sys::fuzz_target;
use rotbench_core::dataset::{cifar::CifarSource, OpenOptions, Source, Target};

fuzz_target!(|data: &[u8]| {
    let d = tempfile::tempdir().unwrap();
    for name in ["test_batch.bin", "test.bin"] {
        let p = d.path().join(name);
        std::fs::write(&p, data).unwrap();
        let t = Target {
            channels: 3,
            height: 32,
            width: 32,
        };
        if let Ok(mut s) = CifarSource::open(&p, t, &space(100), &OpenOptions::default()) {
            while let Ok(Some(_)) = s.next_chunk(3) {}
        }
    }
});

/// `n` classes named by their index.
fn space(n: usize) -> rotbench_core::dataset::LabelSpace {
    rotbench_core::dataset::LabelSpace::plain(&(0..n).map(|i| i.to_string()).collect::<Vec<_>>())
}
