//! `rotbench demo`: the demo sweep from the bundle alone (the three bundled models
//! over the bundled MNIST test set), so an installed wheel runs it with no checkout.
//! It is `rotbench sweep` with the bundle's paths filled in.

use crate::cli::{Cli, Command, DemoArgs};
use anyhow::{bail, Result};
use clap::Parser;
use rotbench::bundled::Bundle;
use std::ffi::OsString;
use std::process::ExitCode;

pub fn demo(args: DemoArgs) -> Result<ExitCode> {
    let bundle = Bundle::find();
    bundle.check()?;
    let mut argv: Vec<OsString> = vec!["rotbench".into(), "sweep".into()];
    for m in bundle.models() {
        argv.push("--model".into());
        argv.push(m.into());
    }
    argv.extend(
        [
            OsString::from("--data"),
            bundle.data().into(),
            "--angles".into(),
            args.angles.into(),
            "--device".into(),
            args.device.into(),
            "--out".into(),
            args.out.into(),
        ]
        .into_iter()
        .chain(args.sweep.into_iter().map(OsString::from)),
    );
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Sweep(sweep),
        }) => super::sweep(sweep),
        Ok(_) => bail!("internal error: the demo did not parse as a sweep"),
        Err(e) => {
            let _ = e.print();
            Ok(ExitCode::from(2))
        }
    }
}
