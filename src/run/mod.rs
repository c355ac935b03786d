//! Run state between invocations and the plan of one run: [`plan`] (what the
//! cache answers and what is computed), [`cache`] (per model × angle
//! predictions) and [`checkpoint`] (what `sweep --resume` continues from).

pub mod cache;
pub mod cache_plan;
pub mod checkpoint;
