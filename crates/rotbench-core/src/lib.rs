//! rotbench-core: everything about a rotation sweep that does not run a model.
//!
//! The data path reads top to bottom: [`dataset`] decodes labelled images,
//! [`angles`] and [`rotate`] turn them, the engine (the `rotbench` crate, which
//! links libtorch) runs the models and fills [`results`]; [`metrics`] scores
//! them, [`summary`] and [`store`]/[`shard`] keep them, and [`gate`] and
//! [`report`] judge and show them. [`spec`] says what a model expects.
//! [`unlabelled`] keeps a sweep of images without labels (its label-free figures).
//! [`format`] writes numbers as text for all of them, [`hash`] names bytes by sha256.
//!
//! No libtorch here, no printing and no file writes: exporters return bytes and
//! the `rotbench` binary writes them (its `output` module).

pub mod angles;
pub mod dataset;
pub mod format;
pub mod gate;
pub mod hash;
pub mod metrics;
pub mod poses;
pub mod protocols;
pub mod report;
pub mod results;
pub mod rotate;
pub mod shard;
pub mod spec;
pub mod store;
pub mod summary;
pub mod unlabelled;
