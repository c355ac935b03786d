//! Run state between invocations and the plan of one run: [`cache_plan`] (what the
//! cache answers and what is computed), [`cache`] (per model × angle
//! predictions), [`checkpoint`] (what `sweep --resume` continues from) and
//! [`interrupt`] (Ctrl-C stops at a batch the checkpoint holds).

pub mod cache;
pub mod cache_plan;
pub mod checkpoint;
pub mod interrupt;
