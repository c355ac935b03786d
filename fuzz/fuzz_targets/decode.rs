#![no_main]
// Image decoding (libjpeg-turbo through TurboJPEG for JPEG, the image crate for
// the rest) and PIL's resize on whatever decodes: errors, never a crash.
use libfuzzer_sys::fuzz_target;
use rotbench_core::dataset::{decode::decode, resize};

fuzz_target!(|data: &[u8]| {
    if let Ok((planes, _)) = decode(data) {
        if planes.height * planes.width <= 1 << 20 {
            let grey = planes.to_channels(1);
            let (h, w) = (grey.height, grey.width);
            let _ = resize::bilinear(&grey.data, 1, h, w, (h / 3).max(1), w + 5);
        }
    }
});
