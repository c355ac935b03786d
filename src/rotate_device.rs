//! Rotation on the model's device: a [`RotationPlan`](crate::rotate::RotationPlan) turned into
//! tensors once per angle and applied to a whole chunk with `index_select` and a
//! weighted sum. With `--device cuda` the raw chunk is uploaded once and every
//! angle is made on the GPU, so only uint8 pixels cross the bus.
//!
//! It computes the same sums as [`RotationPlan::apply`](crate::rotate::RotationPlan::apply) (same
//! taps, weights, coverage factor and fill), so every option the CPU path has
//! (interpolations, fills, `--mask-circle`, rotate-then-crop offsets) carries over
//! unchanged; only the order of the float additions may differ (last-bit
//! differences). torchvision's own GPU path (`affine_grid` + `grid_sample`) would
//! give the same values up to the float rounding measured in `tests/rotation_fidelity.rs`;
//! the plan form is used so that the GPU and CPU results agree to the last bits.

use crate::rotate::RotationPlan;
use tch::{Device, Kind, Tensor};

/// One angle's sampling plan as tensors on a device.
pub struct DevicePlan {
    taps: i64,
    pixels: i64,
    /// `[P * taps]` source indices into a flattened `H * W` plane.
    idx: Tensor,
    /// `[P, taps]` weights (`[P]` when taps == 1).
    wts: Tensor,
    /// `[P]` coverage factor applied to the interpolated sum.
    keep: Tensor,
    /// `[P]` fill weight x fill value (0..255 scale).
    fill: Tensor,
    out_h: i64,
    out_w: i64,
}

impl DevicePlan {
    pub fn new(plan: &RotationPlan, device: Device) -> DevicePlan {
        let (taps, idx, wts, fill_w, keep, fill_255) = plan.parts();
        let g = plan.geometry;
        let pixels = (g.out_h * g.out_w) as i64;
        let idx: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
        let fill: Vec<f32> = fill_w.iter().map(|w| w * fill_255).collect();
        let t = taps as i64;
        let wts = Tensor::from_slice(wts).to_device(device);
        DevicePlan {
            taps: t,
            pixels,
            idx: Tensor::from_slice(&idx).to_device(device),
            wts: if t == 1 { wts } else { wts.view([pixels, t]) },
            keep: Tensor::from_slice(keep).to_device(device),
            fill: Tensor::from_slice(&fill).to_device(device),
            out_h: g.out_h as i64,
            out_w: g.out_w as i64,
        }
    }

    /// Rotate `src`, float32 `[N, C, H_in * W_in]` on the plan's device (0..255 scale),
    /// into float32 `[N, C, H_out, W_out]`.
    pub fn apply(&self, src: &Tensor) -> Tensor {
        let (n, c) = (src.size()[0], src.size()[1]);
        let g = src.index_select(2, &self.idx);
        let out = if self.taps == 1 {
            g * &self.wts + &self.fill
        } else {
            (g.view([n, c, self.pixels, self.taps]) * &self.wts).sum_dim_intlist(
                -1,
                false,
                Kind::Float,
            ) * &self.keep
                + &self.fill
        };
        out.view([n, c, self.out_h, self.out_w])
    }
}

/// Upload a chunk of uint8 CHW images (all `[C, H, W]`) as float32 `[N, C, H * W]`.
pub fn upload(pixels: &[u8], n: usize, channels: usize, plane: usize, device: Device) -> Tensor {
    Tensor::from_slice(pixels)
        .to_device(device)
        .to_kind(Kind::Float)
        .view([n as i64, channels as i64, plane as i64])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rotate::{Geometry, RotateOptions};

    #[test]
    fn device_plans_compute_what_the_cpu_plans_compute() {
        // Two 3-channel 9x7 images with varied values; every interpolation and fill.
        let (n, c, h, w) = (2usize, 3usize, 9usize, 7usize);
        let px: Vec<u8> = (0..n * c * h * w)
            .map(|i| ((i * 37 + 11) % 256) as u8)
            .collect();
        let src = upload(&px, n, c, h * w, Device::Cpu);
        for opts in RotateOptions::every_combination() {
            for angle in [0.0, 17.5, 90.0, 180.0, -45.0, 300.0] {
                let plan = RotationPlan::new(Geometry::same(h, w), angle, &opts);
                let got = Vec::<f32>::try_from(
                    DevicePlan::new(&plan, Device::Cpu)
                        .apply(&src)
                        .flatten(0, -1),
                )
                .unwrap();
                let mut want = vec![0f32; n * c * h * w];
                for (img, out) in px.chunks(c * h * w).zip(want.chunks_mut(c * h * w)) {
                    plan.apply(img, c, out);
                }
                let worst = got
                    .iter()
                    .zip(&want)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-3, "{opts:?} at {angle}: max |diff| {worst}");
            }
        }
    }

    #[test]
    fn rotate_then_crop_offsets_carry_over() {
        let (h, w) = (10usize, 12usize);
        let px: Vec<u8> = (0..h * w).map(|i| (i * 7 % 256) as u8).collect();
        let g = Geometry {
            in_h: h,
            in_w: w,
            out_h: 6,
            out_w: 8,
            top: 2,
            left: 2,
        };
        let plan = RotationPlan::new(g, 33.0, &RotateOptions::default());
        let got = Vec::<f32>::try_from(
            DevicePlan::new(&plan, Device::Cpu)
                .apply(&upload(&px, 1, 1, h * w, Device::Cpu))
                .flatten(0, -1),
        )
        .unwrap();
        let mut want = vec![0f32; 6 * 8];
        plan.apply(&px, 1, &mut want);
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-3));
    }
}
