#![no_main]
// The angle-spec parser never panics; whatever it accepts is finite, bounded and unique.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(v) = rotbench_core::angles::parse(s) {
            assert!(!v.is_empty() && v.len() <= rotbench_core::angles::MAX_ANGLES);
            assert!(v.iter().all(|a| a.is_finite()));
        }
    }
});
