//! `rotbench protocols [NAME] [--markdown]`: the published protocols behind
//! `sweep --protocol`, as the table in `rotbench::protocols` describes them.

use crate::cli::ProtocolsArgs;
use anyhow::{anyhow, Result};
use rotbench::protocols::{self, describe};
use std::process::ExitCode;

pub fn protocols(args: ProtocolsArgs) -> Result<ExitCode> {
    let chosen: Vec<&protocols::Protocol> = match &args.name {
        None => protocols::ALL.iter().collect(),
        Some(n) => vec![protocols::find(n)
            .ok_or_else(|| anyhow!("no protocol `{n}`; use one of {}", protocols::names()))?],
    };
    let text: Vec<String> = chosen.iter().map(|p| describe(p, args.markdown)).collect();
    out!("{}", text.join("\n"));
    Ok(ExitCode::SUCCESS)
}
