//! `rotbench gate`: thresholds and baseline comparison; exit 0 pass, 1 fail, 2 error.

use crate::cli::{GateArgs, SweepArgs};
use rotbench::summary::Summary;
use rotbench::sweep::SweepResult;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn gate(args: GateArgs) -> Result<ExitCode> {
    bail!("rotbench gate {}: not built yet", args.results.display())
}

/// After a sweep: save a baseline (`--save-baseline`) and gate (`--gate-config`).
/// Returns the exit code when a gate ran.
pub fn after_sweep(args: &SweepArgs, _summary: &Summary, _result: &SweepResult) -> Result<Option<ExitCode>> {
    if args.save_baseline.is_some() || args.gate_config.is_some() {
        bail!("--save-baseline and --gate-config: not built yet");
    }
    Ok(None)
}
