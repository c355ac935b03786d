//! The names of the files the exporters' output lands in: every name a run owns
//! in its output folder, replaced as one set (the binary's `output` module does
//! the writing).

/// Every name a sweep, a shard run or a merge may leave in its output folder. A
/// run that writes results replaces all of them as one set: a name it does not
/// write this time is removed, so no file of an earlier run stays beside the new
/// `summary.json`.
pub const RESULT_FILES: &[&str] = &[
    "summary.json",
    "summary.csv",
    "per_angle.csv",
    "per_class.csv",
    "confusion.csv",
    "predictions.csv",
    "examples.json",
    "timing.json",
    "index.html",
    "plots",
    "junit.xml",
    "gate.md",
    "shard.bin",
    "shard.json",
];

/// What `rotbench report` owns: the rendered page and its plots.
pub const REPORT_FILES: &[&str] = &["index.html", "plots"];
