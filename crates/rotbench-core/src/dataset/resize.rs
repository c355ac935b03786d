//! The resize: PIL's `Image.resize(size, Image.BILINEAR)`, which is what
//! torchvision's `transforms.Resize` (default bilinear, `antialias=True`) does to
//! a PIL image, reproduced bit for bit on 8-bit planes.
//!
//! PIL's algorithm (Pillow's `Resample.c`): a separable triangle filter whose
//! support widens with the downscale factor (so shrinking averages every source
//! pixel, the antialiasing), weights normalised in `f64` and rounded to 22-bit
//! fixed point, a horizontal pass rounded to 8 bits, then a vertical pass.
//! A pass whose size does not change is skipped, as PIL skips it.

/// Fixed-point fraction bits of the 8-bit path (`32 - 8 - 2` in Pillow).
const PRECISION_BITS: u32 = 22;

/// For each output position: the first source position, how many follow, and
/// their fixed-point weights (`ksize` slots per position).
struct Coeffs {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the
/// whole input (`box = (0, 0, in_size)`).
fn coeffs(in_size: usize, out_size: usize) -> Coeffs {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle's support is 1
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // `(int)` in C truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let (xmin, xmax) = (xmin as usize, xmax.max(0) as usize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = triangle(((x + xmin) as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(xmax) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let fixed = w * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin, xmax));
    }
    Coeffs {
        ksize,
        bounds,
        weights,
    }
}

/// Pillow's `clip8`: the rounded fixed-point sum back to a byte.
fn clip8(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

const HALF: i32 = 1 << (PRECISION_BITS - 1);

/// Resize one `h x w` plane to `nh x nw`.
fn plane(src: &[u8], h: usize, w: usize, nh: usize, nw: usize) -> Vec<u8> {
    let mut cur = src.to_vec();
    let mut cw = w;
    if nw != w {
        let c = coeffs(w, nw);
        let mut out = vec![0u8; h * nw];
        for y in 0..h {
            let row = &cur[y * w..(y + 1) * w];
            for (xx, &(xmin, n)) in c.bounds.iter().enumerate() {
                let k = &c.weights[xx * c.ksize..];
                let mut sum = HALF;
                for x in 0..n {
                    sum += row[xmin + x] as i32 * k[x];
                }
                out[y * nw + xx] = clip8(sum);
            }
        }
        cur = out;
        cw = nw;
    }
    if nh != h {
        let c = coeffs(h, nh);
        let mut out = vec![0u8; nh * cw];
        for (yy, &(ymin, n)) in c.bounds.iter().enumerate() {
            let k = &c.weights[yy * c.ksize..];
            for xx in 0..cw {
                let mut sum = HALF;
                for y in 0..n {
                    sum += cur[(ymin + y) * cw + xx] as i32 * k[y];
                }
                out[yy * cw + xx] = clip8(sum);
            }
        }
        cur = out;
    }
    cur
}

/// Resize `channels` CHW planes of `h x w` to `nh x nw`, each plane as PIL
/// resizes a band.
pub fn bilinear(src: &[u8], channels: usize, h: usize, w: usize, nh: usize, nw: usize) -> Vec<u8> {
    if (nh, nw) == (h, w) {
        return src.to_vec();
    }
    let mut out = Vec::with_capacity(channels * nh * nw);
    for c in 0..channels {
        out.extend(plane(&src[c * h * w..(c + 1) * h * w], h, w, nh, nw));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point_and_cover_the_input() {
        for (n, m) in [(83, 32), (61, 150), (10, 3), (7, 7), (1000, 1)] {
            let c = coeffs(n, m);
            for (i, &(xmin, len)) in c.bounds.iter().enumerate() {
                assert!(xmin + len <= n);
                let s: i64 = c.weights[i * c.ksize..i * c.ksize + len]
                    .iter()
                    .map(|&k| k as i64)
                    .sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= len as i64,
                    "{n}->{m} at {i}: {s}"
                );
            }
        }
    }

    #[test]
    fn a_flat_image_stays_flat_and_the_same_size_is_a_copy() {
        let src = vec![77u8; 2 * 9 * 13];
        assert_eq!(bilinear(&src, 2, 9, 13, 4, 30), vec![77u8; 2 * 4 * 30]);
        let ramp: Vec<u8> = (0..=255).collect();
        assert_eq!(bilinear(&ramp, 1, 16, 16, 16, 16), ramp);
    }
}
