//! Time the bootstrap's replicates (`metrics::bootstrap::replicates`) for one
//! model: 10,000 samples of 10 classes at 12 angles, 1,000 replicates, best of 3:
//! `RAYON_NUM_THREADS=1 cargo run --release -p rotbench-core --example bootstrap_speed`.
//! The predictions are pseudo-random (80% right; 55% of the confidences in the top slot, above 0.95, the rest from 0.4); a
//! checksum of the figures is printed, so that two builds can be seen to agree.

use rotbench_core::metrics::bootstrap::{mix, replicates, AngleInput};
use std::time::Instant;
fn main() {
    let n = 10_000;
    let mut s = 5u64;
    let mut next = || {
        s = mix(s);
        s
    };
    let labels: Vec<u32> = (0..n).map(|_| (next() % 10) as u32).collect();
    let preds: Vec<Vec<i32>> = (0..12)
        .map(|_| {
            labels
                .iter()
                .map(|&l| {
                    if next() % 5 == 0 {
                        (next() % 10) as i32
                    } else {
                        l as i32
                    }
                })
                .collect()
        })
        .collect();
    let conf: Vec<Vec<f64>> = (0..12)
        .map(|_| {
            (0..n)
                .map(|_| {
                    // Most in the top slot, as a trained model's are.
                    let v = (next() >> 40) as f32 / (1u64 << 24) as f32;
                    let c = if v < 0.55 {
                        0.95 + v / 0.55 * 0.05
                    } else {
                        0.4 + (v - 0.55)
                    };
                    c as f64
                })
                .collect()
        })
        .collect();
    let inputs = vec![(0..12)
        .map(|a| AngleInput {
            preds: &preds[a],
            reference: &preds[0],
            next: Some(&preds[(a + 1) % 12]),
            confidence: &conf[a],
        })
        .collect::<Vec<_>>()];
    let mut best = f64::INFINITY;
    let mut check = 0.0;
    for _ in 0..3 {
        let t = Instant::now();
        let r = replicates(&inputs, &labels, 10, 7, 1000);
        best = best.min(t.elapsed().as_secs_f64());
        check = r[0]
            .iter()
            .flat_map(|a| a.iter().map(|s| s.ece + s.accuracy + s.f1_macro))
            .sum::<f64>();
    }
    println!("{best:.3} s for 12 angles x 1,000 replicates; checksum {check:.17e}");
}
