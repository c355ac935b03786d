//! `rotbench gate`: thresholds and baseline comparison; exit 0 pass, 1 fail, 2 error.

use crate::cli::GateArgs;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn gate(args: GateArgs) -> Result<ExitCode> {
    bail!("rotbench gate {}: not built yet", args.results.display())
}
