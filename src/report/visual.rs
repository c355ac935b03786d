//! Plots (PNG, one file per chart) and the self-contained `index.html`.

use crate::report::examples::ExamplesFile;
use crate::summary::Summary;
use anyhow::Result;

/// Every report file (relative path, bytes) for an output folder.
pub fn render(_summary: &Summary, _examples: Option<&ExamplesFile>) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(Vec::new())
}
