//! `rotbench merge DIR... --out DIR`: check and merge shard results into exactly
//! the files a single run writes (timing aside).

use super::write::{write_results, Outputs};
use crate::cli::MergeArgs;
use anyhow::{anyhow, Result};
use rotbench::shard::{self, ShardManifest};
use rotbench::summary;
use rotbench::{output, store};
use std::process::ExitCode;
use std::time::Instant;

pub fn merge(args: MergeArgs) -> Result<ExitCode> {
    let t0 = Instant::now();
    output::prepare_dir(&args.out, "--out")?;
    let mut loaded = Vec::with_capacity(args.dirs.len());
    for dir in &args.dirs {
        let name = dir.display().to_string();
        let bin = dir.join("shard.bin");
        if !bin.is_file() {
            let why = if dir.join(".rotbench-checkpoint").exists() {
                "the shard run failed or was interrupted (a checkpoint is left); rerun it, with --resume to continue"
            } else if dir.is_dir() {
                "no shard.bin: the shard run failed or has not finished; rerun it"
            } else {
                "no such folder"
            };
            return Err(anyhow!("{name}: {why}"));
        }
        let bytes =
            std::fs::read(&bin).map_err(|e| anyhow!("{}: cannot read ({e})", bin.display()))?;
        let (header, data) = store::decode(&bytes, &bin.display().to_string())?;
        let manifest: ShardManifest = serde_json::from_value(header.meta)
            .map_err(|e| anyhow!("{}: not a rotbench shard result ({e})", bin.display()))?;
        loaded.push((name, manifest, data));
    }
    let (raw, manifest, info) = shard::merge(loaded)?;
    let n_classes = manifest.models[0].spec.n_classes();
    let result = raw.tally(n_classes, &info.sources)?;
    let summary = summary::build(
        &result,
        &manifest.models,
        &info,
        manifest.settings.clone(),
        rotbench::libtorch::version(),
    );
    let timing = serde_json::json!({ "merged_shards": args.dirs.len(), "wall_seconds": t0.elapsed().as_secs_f64() });
    let outs = Outputs {
        out: &args.out,
        no_predictions: args.no_predictions,
        no_report: args.no_report,
        quiet: args.quiet,
    };
    write_results(&outs, &summary, &result, timing, vec![])?;
    if !args.quiet {
        outln!(
            "merged {} shards into {}",
            args.dirs.len(),
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
