//! Time `RotationPlan::apply` on one image size, per image, best of several rounds:
//! `cargo run --release -p rotbench-core --example rotate_speed -- [H W C [ANGLE [INTERP]]]`
//! (defaults: 32 32 3, 30 degrees, bilinear). The images are pseudo-random bytes;
//! a checksum of the outputs is printed so that the work cannot be optimised away
//! and two builds can be seen to give the same numbers.

use rotbench_core::rotate::{Geometry, Interpolation, RotateOptions, RotationPlan};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (h, w, c) = (num(0, 32), num(1, 32), num(2, 3));
    let angle: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(30.0);
    let interpolation: Interpolation = args
        .get(4)
        .map(|s| s.parse().unwrap_or(Interpolation::Bilinear))
        .unwrap_or(Interpolation::Bilinear);
    let opts = RotateOptions {
        interpolation,
        ..RotateOptions::default()
    };
    let plan = RotationPlan::new(Geometry::same(h, w), angle, &opts);
    let images = 256usize;
    let px = h * w * c;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let src: Vec<u8> = (0..images * px)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let mut out = vec![0f32; images * px];
    let rounds = 40;
    let mut best = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        for (s, o) in src.chunks_exact(px).zip(out.chunks_exact_mut(px)) {
            plan.apply(s, c, o);
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let sum: f64 = out.iter().map(|&v| v as f64).sum();
    println!(
        "{h}x{w}x{c} at {angle} degrees, {interpolation}: {:.2} us per image (best of {rounds} rounds of {images}); checksum {sum:.6}",
        best / images as f64 * 1e6
    );
}
