//! `rotbench report DIR`: re-render plots and index.html from summary.json and examples.json.

use crate::cli::ReportArgs;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    bail!("rotbench report {}: not built yet", args.dir.display())
}
