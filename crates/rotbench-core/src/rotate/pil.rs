//! `--interpolation pil-bilinear`: Pillow's bilinear affine transform on 8-bit
//! images, driven as torchvision 0.2–0.5's `F.affine` drove it on a PIL image.
//! That is how ImageNet-P's rotate frames were made (`make_imagenet_p.py`:
//! `affine(img, angle=i - 15, ..., resample=BILINEAR)`), so the protocol
//! `imagenet-p-rotate` uses it to reproduce them pixel for pixel.
//!
//! What it does, from Pillow's `libImaging/Geometry.c` and that torchvision's
//! `affine` (facts, rewritten here):
//! - the inverse matrix turns by the angle about the centre `(w/2 + 0.5,
//!   h/2 + 0.5)` in PIL's coordinates (torchvision 0.6 and later dropped the
//!   `+ 0.5`): the centre is half a pixel right and down of rotbench's, which is
//!   torchvision's tensor `rotate` centre;
//! - output pixel `(x, y)` samples `M · (x + 0.5, y + 0.5)`; a source point
//!   outside `[0, w) × [0, h)` gives the fill (black), one inside is bilinear
//!   over the four neighbours of `(x_s − 0.5, y_s − 0.5)` with indices clamped
//!   to the image (no zero padding at the border, unlike torchvision's tensors);
//! - the arithmetic is Pillow's, in `f64`: along x on each row, then along y,
//!   and the result is truncated to 8 bits (not rounded).
//!
//! Angles are used as given (not reduced mod 360), as `math.radians(angle)` is.

use super::{floor_i64, Geometry, Pose, RotateOptions};

/// Where one output pixel samples: its four source indices (clamped as Pillow
/// clamps them) and its fractions along x and y, or the fill.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum PilTap {
    Fill,
    At { idx: [u32; 4], dx: f64, dy: f64 },
}

/// The affine map of one (geometry, pose).
pub(super) struct PilMap {
    geometry: Geometry,
    m: [f64; 6],
    mask: Option<(f64, f64, f64)>,
}

impl PilMap {
    pub(super) fn new(geometry: Geometry, pose: Pose, opts: &RotateOptions) -> PilMap {
        let (w, h) = (geometry.in_w as f64, geometry.in_h as f64);
        let (cx, cy) = (w * 0.5 + 0.5, h * 0.5 + 0.5);
        // torchvision's affine turns clockwise for a positive angle: ours is its -θ.
        let rot = (-pose.angle).to_radians();
        let (c, s) = (rot.cos(), rot.sin());
        let (tx, ty) = (pose.dx, pose.dy);
        let (m0, m1, m3, m4) = (c, s, -s, c);
        let m2 = m0 * (-cx - tx) + m1 * (-cy - ty) + cx;
        let m5 = m3 * (-cx - tx) + m4 * (-cy - ty) + cy;
        let mask = opts.mask_circle.then(|| {
            let r = geometry.out_w.min(geometry.out_h) as f64 / 2.0;
            (
                (geometry.out_w as f64 - 1.0) / 2.0,
                (geometry.out_h as f64 - 1.0) / 2.0,
                r * r,
            )
        });
        PilMap {
            geometry,
            m: [m0, m1, m2, m3, m4, m5],
            mask,
        }
    }

    /// The taps of output pixel `(r, col)`.
    pub(super) fn tap(&self, r: usize, col: usize) -> PilTap {
        let g = self.geometry;
        if let Some((ocx, ocy, r2)) = self.mask {
            let (ex, ey) = (col as f64 - ocx, r as f64 - ocy);
            if ex * ex + ey * ey > r2 {
                return PilTap::Fill;
            }
        }
        let [a0, a1, a2, a3, a4, a5] = self.m;
        let (x, y) = ((col + g.left) as f64 + 0.5, (r + g.top) as f64 + 0.5);
        let xin = a0 * x + a1 * y + a2;
        let yin = a3 * x + a4 * y + a5;
        let (w, h) = (g.in_w as i64, g.in_h as i64);
        if !(xin >= 0.0 && xin < w as f64 && yin >= 0.0 && yin < h as f64) {
            return PilTap::Fill;
        }
        let (xs, ys) = (xin - 0.5, yin - 0.5);
        let (x0, y0) = (floor_i64(xs), floor_i64(ys));
        let (dx, dy) = (xs - x0 as f64, ys - y0 as f64);
        let cx = |v: i64| v.clamp(0, w - 1);
        let row0 = y0.clamp(0, h - 1);
        // Pillow reads the second row only when it is inside; otherwise it reuses
        // the first row's value, which is what reading the clamped row gives.
        let row1 = (y0 + 1).clamp(0, h - 1);
        let at = |row: i64, col: i64| (row * w + cx(col)) as u32;
        PilTap::At {
            idx: [
                at(row0, x0),
                at(row0, x0 + 1),
                at(row1, x0),
                at(row1, x0 + 1),
            ],
            dx,
            dy,
        }
    }
}

/// One pixel's value from its taps, as Pillow computes it.
#[inline]
pub(super) fn sample(plane: &[u8], tap: PilTap, fill: f32) -> f32 {
    match tap {
        PilTap::Fill => fill,
        PilTap::At { idx, dx, dy } => {
            let v = |k: usize| plane[idx[k] as usize] as f64;
            let v1 = v(0) + (v(1) - v(0)) * dx;
            let v2 = v(2) + (v(3) - v(2)) * dx;
            let v = v1 + (v2 - v1) * dy;
            v as u8 as f32
        }
    }
}

/// The fill of a Pillow transform: the constant (Pillow's `fillcolor`), as an
/// 8-bit value.
pub(super) fn fill_u8(opts: &RotateOptions) -> f32 {
    (opts.fill.constant_255().round()).clamp(0.0, 255.0)
}

/// Rotate one image with Pillow's arithmetic (see the module header).
pub(super) fn rotate_into(
    geometry: Geometry,
    pose: Pose,
    opts: &RotateOptions,
    src: &[u8],
    channels: usize,
    out: &mut [f32],
) {
    let m = PilMap::new(geometry, pose, opts);
    let (ip, op) = (
        geometry.in_h * geometry.in_w,
        geometry.out_h * geometry.out_w,
    );
    assert_eq!(src.len(), channels * ip);
    assert_eq!(out.len(), channels * op);
    let fill = fill_u8(opts);
    for r in 0..geometry.out_h {
        for col in 0..geometry.out_w {
            let p = r * geometry.out_w + col;
            let tap = m.tap(r, col);
            for ch in 0..channels {
                out[ch * op + p] = sample(&src[ch * ip..(ch + 1) * ip], tap, fill);
            }
        }
    }
}
