//! rotbench: how does an image classifier behave when its input is rotated?
//!
//! This crate is the engine and the CLI: models ([`model`]) run by one of three
//! backends ([`backend`]: TorchScript, `.pt2` and ONNX) behind [`classifier`], the
//! sweep engine ([`engine`]), rotation on the models' device ([`rotate_device`]) and
//! the one place that writes files ([`output`]).
//! Everything that needs no libtorch lives in `rotbench-core` and is re-exported
//! here under the same paths (`rotbench::summary`, `rotbench::gate`, ...).

pub use rotbench_core::{
    angles, dataset, format, gate, hash, metrics, poses, protocols, report, results, rotate, shard,
    spec, store, summary, unlabelled,
};

pub mod backend;
pub mod bundled;
pub mod classifier;
pub mod device;
pub mod engine;
mod ffi;
pub mod libtorch;
pub mod malloc;
pub mod model;
pub mod output;
pub mod rotate_device;

/// The libtorch version rotbench is built for (tch 0.26), from Cargo.toml's
/// `[package.metadata.rotbench]` through build.rs.
pub const LIBTORCH_VERSION: &str = env!("ROTBENCH_LIBTORCH_VERSION");

/// The TorchScript backend's name (libtorch's JIT). A run records the backends of
/// its models (`Model::backend`; ONNX models say `onnxruntime X.Y.Z`) in
/// summary.json, and they are part of the prediction-cache and checkpoint keys.
pub const BACKEND: &str = "torchscript";

/// rotbench's cache folder: `$XDG_CACHE_HOME/rotbench`, else `~/.cache/rotbench`
/// (the prediction cache and ONNX Runtime live under it).
pub fn cache_home() -> std::path::PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rotbench")
}
