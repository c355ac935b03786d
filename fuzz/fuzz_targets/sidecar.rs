#![no_main]
// Sidecar JSON: parsing and spec resolution return errors, never panic.
use libfuzzer_sys::fuzz_target;
use rotbench_core::spec::{resolve_spec, SpecFile, SpecFlags};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(spec) = SpecFile::parse(s, "fuzz.json") {
            let _ = resolve_spec(
                Path::new("m.pt"),
                &SpecFlags::default(),
                Some((Path::new("m.json"), &spec)),
                None,
            );
        }
    }
});
