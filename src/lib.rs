//! rotbench: how does an image classifier behave when its input is rotated?
//!
//! The library holds the whole pipeline; `src/main.rs` is a thin CLI over it.
//! Only [`output`] writes files and only the binary prints.

pub mod angles;
pub mod dataset;
pub mod gate;
pub mod metrics;
pub mod model;
pub mod output;
pub mod report;
pub mod rotate;
pub mod rotate_device;
pub mod shard;
pub mod store;
pub mod summary;
pub mod sweep;

/// The libtorch version rotbench is built for (tch 0.26).
pub const LIBTORCH_VERSION: &str = "2.13.0";

/// The inference backend that runs models: TorchScript through libtorch's JIT.
/// Recorded in summary.json and part of the prediction-cache and checkpoint keys.
pub const BACKEND: &str = "torchscript";
