#![no_main]
// Image-folder scan and decode: the fuzz input decides the folder layout and the
// bytes of each file (images that decode, corrupt ones, non-images).
use libfuzzer_sys::fuzz_target;
use rotbench_core::dataset::{folder::FolderSource, OpenOptions, Source, Target};

fuzz_target!(|data: &[u8]| {
    let d = tempfile::tempdir().unwrap();
    let png = include_bytes!("../../tests/fixtures/rotation/mnist0.png");
    for (i, chunk) in data.chunks(16).take(12).enumerate() {
        let class = format!("c{}", chunk[0] % 3);
        let sub = if chunk.len() > 1 && chunk[1] % 2 == 0 {
            "nested"
        } else {
            ""
        };
        let dir = d.path().join(&class).join(sub);
        std::fs::create_dir_all(&dir).unwrap();
        let ext = ["png", "jpg", "txt", "PNG"][(chunk.len() + i) % 4];
        let body: Vec<u8> = if chunk.len() > 2 && chunk[2] % 3 == 0 {
            png.to_vec()
        } else {
            chunk.to_vec()
        };
        std::fs::write(dir.join(format!("{i}.{ext}")), body).unwrap();
    }
    let classes = vec!["c0".to_string(), "c1".to_string(), "c2".to_string()];
    let t = Target {
        channels: 1,
        height: 28,
        width: 28,
    };
    for skip in [false, true] {
        let opts = OpenOptions {
            skip_bad_images: skip,
            ..Default::default()
        };
        if let Ok(mut s) = FolderSource::open(
            d.path(),
            t,
            &rotbench_core::dataset::LabelSpace::plain(&classes),
            &opts,
        ) {
            while let Ok(Some(_)) = s.next_chunk(5) {}
        }
    }
});
