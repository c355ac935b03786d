//! The seam between the engine and a model backend: [`Classifier`]. The sweep
//! driver runs any classifier. [`crate::model::Model`] is one, whatever its file's
//! format: TorchScript through libtorch, `.pt2` through libtorch's AOTInductor loader
//! or ONNX through ONNX Runtime ([`crate::backend`]).

use anyhow::Result;
use rotbench_core::spec::ModelSpec;
use std::path::Path;
use tch::{Device, Tensor};

/// A model the engine can sweep: what it expects and a forward pass.
pub trait Classifier {
    /// The model file, named in errors.
    fn path(&self) -> &Path;
    /// Input size, preprocessing and classes, resolved before loading.
    fn spec(&self) -> &ModelSpec;
    /// Where the forward pass runs; rotation on the device (`--rotate-on device`)
    /// uploads to the first model's device.
    fn device(&self) -> Device;
    /// Logits for raw pixels (`[N, C, H, W]` float32 on the 0..255 scale, on any
    /// device): float32 on the CPU, flat and row-major (`N x classes` values),
    /// checked to be `[N, classes]` first. The classifier does its own scaling,
    /// normalisation and channel order (from [`Classifier::spec`]).
    fn forward_raw(&self, raw: &Tensor) -> Result<Tensor>;
    /// [`Classifier::forward_raw`] for a batch already scaled and normalised by
    /// [`Classifier::host_normalisation`]'s [`Normalisation::apply`] (on the CPU).
    fn forward_normalised(&self, x: &Tensor) -> Result<Tensor>;
    /// The scaling and normalisation that [`Classifier::forward_raw`] applies,
    /// when the engine may apply it on the host instead, as it rotates each image,
    /// and hand over normalised batches ([`Classifier::forward_normalised`]).
    /// The default, none: every batch goes to `forward_raw`.
    fn host_normalisation(&self) -> Option<Normalisation> {
        None
    }
    /// Whether the engine may split a batch into slices and run
    /// [`Classifier::forward_raw`] on them from several threads at once, each
    /// thread with one libtorch thread (`--threads` > 1). A classifier that
    /// says yes promises that concurrent calls on one instance are sound: the
    /// engine shares it across its slice threads on that promise. The default,
    /// no: each batch runs whole on the calling thread.
    fn splits_batches(&self) -> bool {
        false
    }
}

/// A model's scaling and normalisation of raw pixels (0..255): `(x / 255 - mean)
/// * inv_std` per channel, or `(x - mean) * inv_std` on the 0..255 scale, in
/// float32. One definition, two places to run it: on a tensor with libtorch's
/// operations ([`Normalisation::apply_tensor`]), or on the host, image by image
/// ([`Normalisation::apply`]), which does the same float32 operations in the same
/// order, so the same bits (the tests compare them).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalisation {
    /// Whether pixels are scaled to [0, 1] first (`value_range` 1).
    pub scale: bool,
    pub mean: Vec<f32>,
    /// `1 / std`, per channel.
    pub inv_std: Vec<f32>,
}

/// `1 / 255` as libtorch multiplies by it: the double scalar converted to float.
const SCALE: f32 = (1.0f64 / 255.0) as f32;

impl Normalisation {
    pub fn of_spec(spec: &ModelSpec) -> Normalisation {
        Normalisation {
            scale: spec.preprocess.value_range == 1.0,
            mean: spec.mean.clone(),
            inv_std: spec.std.iter().map(|s| 1.0 / s).collect(),
        }
    }

    /// `mean` and `inv_std` as `[1, C, 1, 1]` tensors on `device`, for [`Normalisation::apply_tensor`].
    pub fn tensors(&self, device: Device) -> (Tensor, Tensor) {
        let c = self.mean.len() as i64;
        let t = |v: &[f32]| Tensor::from_slice(v).view([1, c, 1, 1]).to_device(device);
        (t(&self.mean), t(&self.inv_std))
    }

    /// The normalised batch `x` (`[N, C, H, W]`, raw pixels; `tensors` from
    /// [`Normalisation::tensors`]): one new tensor (the input may be shared by
    /// several models), then in place, without two more batch-sized allocations.
    pub fn apply_tensor(&self, x: &Tensor, (mean, inv_std): &(Tensor, Tensor)) -> Tensor {
        let mut x = if self.scale {
            let mut x = x * f64::from(SCALE);
            let _ = x.g_sub_(mean);
            x
        } else {
            x - mean
        };
        let _ = x.g_mul_(inv_std);
        x
    }

    /// Normalise one image (`C` planes of raw pixels) in place: per value the
    /// float32 operations of [`Normalisation::apply_tensor`] (libtorch's multiply
    /// and subtract round once each, as these do), so the same bits.
    pub fn apply(&self, image: &mut [f32]) {
        let plane = image.len() / self.mean.len().max(1);
        if plane == 0 {
            return;
        }
        for (c, values) in image.chunks_exact_mut(plane).enumerate() {
            let (m, s) = (self.mean[c], self.inv_std[c]);
            if self.scale {
                values.iter_mut().for_each(|v| *v = (*v * SCALE - m) * s);
            } else {
                values.iter_mut().for_each(|v| *v = (*v - m) * s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn normalising_on_the_host_gives_libtorchs_bits() {
        // Raw values as rotation makes them (fractions between the bytes), every
        // byte, and specs on both scales with the common means and deviations.
        let (c, plane) = (3usize, 4096usize);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut values: Vec<f32> = (0..c * plane)
            .map(|k| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match k % 4 {
                    0 => (k % 256) as f32,
                    _ => (state >> 40) as f32 / (1u64 << 24) as f32 * 255.0,
                }
            })
            .collect();
        values[1] = 255.0;
        values[2] = 0.0;
        let specs = [
            (true, [0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]),
            (true, [0.1307, 0.1307, 0.1307], [0.3081, 0.3081, 0.3081]),
            (true, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
            (false, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]),
            (false, [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
        ];
        for (scale, mean, std) in specs {
            let n = Normalisation {
                scale,
                mean: mean.to_vec(),
                inv_std: std.iter().map(|s| 1.0 / s).collect(),
            };
            let x = Tensor::from_slice(&values).view([1, c as i64, 64, 64]);
            let t = n
                .apply_tensor(&x, &n.tensors(Device::Cpu))
                .to_kind(Kind::Float);
            let libtorch: Vec<f32> = Vec::try_from(t.flatten(0, -1)).unwrap();
            let mut host = values.clone();
            n.apply(&mut host);
            let differ = host
                .iter()
                .zip(&libtorch)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(
                differ, 0,
                "scale {scale} mean {mean:?}: {differ} values differ"
            );
        }
    }
}
