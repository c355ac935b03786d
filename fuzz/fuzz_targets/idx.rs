#![no_main]
// IDX: arbitrary bytes as an images file (and the same bytes as labels) through the
// whole open + stream path.
use libfuzzer_sys::fuzz_target;
use rotbench_core::dataset::{idx::IdxSource, OpenOptions, Source, Target};

fuzz_target!(|data: &[u8]| {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("f-images-idx3-ubyte"), data).unwrap();
    let split = data.len() / 2;
    std::fs::write(d.path().join("f-labels-idx1-ubyte"), &data[split..]).unwrap();
    let _ = rotbench_core::dataset::idx::parse_labels(data, d.path());
    let _ = rotbench_core::dataset::idx::parse_images_header(data, d.path());
    let t = Target {
        channels: 1,
        height: 8,
        width: 8,
    };
    if let Ok(mut s) = IdxSource::open(d.path(), t, &space(10), &OpenOptions::default()) {
        while let Ok(Some(_)) = s.next_chunk(7) {}
    }
});

/// `n` classes named by their index.
fn space(n: usize) -> rotbench_core::dataset::LabelSpace {
    rotbench_core::dataset::LabelSpace::plain(&(0..n).map(|i| i.to_string()).collect::<Vec<_>>())
}
