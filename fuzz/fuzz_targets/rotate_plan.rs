#![no_main]
// A rotation plan for any angle (NaN and infinities included), any size up to
// 64x64, any crop, interpolation, fill and mask never panics, and its outputs are
// finite and in range: [0, 255] for nearest and bilinear (convex combinations),
// and within the bound of Keys' cubic kernel (A = -0.75) for bicubic. A finite
// angle turns exactly as its remainder mod 360.
use libfuzzer_sys::fuzz_target;
use rotbench_core::rotate::{
    reduce_degrees, Fill, Geometry, Interpolation, RotateOptions, RotationPlan,
};

fn run(plan: &RotationPlan, img: &[u8], channels: usize) -> Vec<f32> {
    let g = plan.geometry;
    let mut out = vec![f32::NAN; channels * g.out_h * g.out_w];
    plan.apply(img, channels, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (head, pixels) = data.split_at(16);
    let angle = f64::from_le_bytes(head[0..8].try_into().unwrap());
    let dim = |b: u8| 1 + b as usize % 64;
    let (in_h, in_w) = (dim(head[8]), dim(head[9]));
    let interpolation = [
        Interpolation::Nearest,
        Interpolation::Bilinear,
        Interpolation::Bicubic,
    ][head[12] as usize % 3];
    let fill = match head[13] % 4 {
        0 => Fill::Edge,
        1 => Fill::Reflect,
        _ => Fill::Constant(head[14] as f32 / 255.0),
    };
    let flags = head[15];
    let opts = RotateOptions {
        interpolation,
        fill,
        mask_circle: flags & 1 != 0,
    };
    let channels = if flags & 2 != 0 { 3 } else { 1 };
    let geometry = if flags & 4 != 0 {
        // Rotate, then centre-crop (or pad, when the output is the larger).
        Geometry::centre_crop(in_h, in_w, dim(head[10]), dim(head[11]))
    } else {
        Geometry::same(in_h, in_w)
    };
    let n = channels * in_h * in_w;
    let img: Vec<u8> = if pixels.is_empty() {
        vec![0; n]
    } else {
        pixels.iter().copied().cycle().take(n).collect()
    };

    let plan = RotationPlan::new(geometry, angle, &opts);
    let out = run(&plan, &img, channels);
    assert!(out.iter().all(|v| v.is_finite()), "a non-finite output");

    // Per axis the cubic weights are >= 0 but for two negative lobes summing to
    // -q, q = 0.75 t (1 - t) <= 0.1875; in 2D the positive weights sum to at
    // most p = (1+q)^2 + q^2 and the negative ones to -m, m = 2 q (1+q). The
    // inside sum and torchvision's coverage factor both lie in [-m, p].
    let (lo, hi) = match interpolation {
        Interpolation::Bicubic => {
            let q = 0.1875f64;
            let (p, m) = ((1.0 + q) * (1.0 + q) + q * q, 2.0 * q * (1.0 + q));
            (-(p * m + m) * 255.0, (p * p + p) * 255.0)
        }
        _ => (0.0, 255.0),
    };
    let eps = 1e-2;
    for &v in &out {
        assert!(
            (lo - eps..=hi + eps).contains(&(v as f64)),
            "{v} outside [{lo}, {hi}] ({interpolation}, {fill}, angle {angle:e})"
        );
    }

    if angle.is_finite() {
        let r = reduce_degrees(angle);
        assert!((0.0..360.0).contains(&r), "{angle:e} reduces to {r}");
        let same = RotationPlan::new(geometry, angle % 360.0, &opts);
        assert!(
            run(&same, &img, channels) == out,
            "{angle:e} turns differently from {:e}",
            angle % 360.0
        );
    }
});
