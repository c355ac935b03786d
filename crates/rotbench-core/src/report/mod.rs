//! Exporters: each turns results into bytes (one file per format, behind
//! [`Export`]); nothing here touches the filesystem. `crate::output` writes them.

pub mod csv;
pub mod examples;
pub mod files;
pub mod json;
pub mod table;
pub mod visual;

use crate::results::SweepResult;
use crate::summary::Summary;

/// Everything an exporter may read.
pub struct Results<'a> {
    pub summary: &'a Summary,
    /// Per-sample predictions; absent when re-rendering from summary.json alone.
    pub sweep: Option<&'a SweepResult>,
}

pub trait Export {
    /// The file name this exporter writes inside the output folder.
    fn file_name(&self) -> &'static str;
    fn render(&self, results: &Results<'_>) -> anyhow::Result<Vec<u8>>;
}
