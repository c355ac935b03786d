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
