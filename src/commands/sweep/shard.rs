//! `--shard i/n`: a sweep of part of the samples writes its data and manifest
//! (`shard.bin`, `shard.json`) for `rotbench merge`, instead of results.

use super::config::SweepConfig;
use super::KEEP_EXAMPLES;
use anyhow::Result;
use rotbench::dataset::{DatasetInfo, ShardSpec};
use rotbench::results::{Evaluations, ModelId};
use rotbench::shard::{ShardManifest, SHARD_FORMAT};
use rotbench::summary::{DatasetSummary, Settings};
use rotbench::{output, store};

/// Write the shard's result set.
pub fn write_shard(
    cfg: &SweepConfig,
    spec: ShardSpec,
    info: &DatasetInfo,
    settings: Settings,
    models: Vec<ModelId>,
    mut raw: Evaluations,
    wall: f64,
) -> Result<()> {
    let manifest = ShardManifest {
        rotbench_shard: SHARD_FORMAT,
        rotbench_version: env!("CARGO_PKG_VERSION").into(),
        shard: spec,
        start: info.start,
        end: info.start + info.len,
        selected: info.selected,
        settings,
        models,
        dataset: DatasetSummary::from(info),
        sources: info.sources.clone(),
        examples: std::mem::take(&mut raw.examples),
        keep_examples: KEEP_EXAMPLES,
    };
    let bytes = store::encode(&raw.data, serde_json::to_value(&manifest)?);
    output::replace_set(
        &cfg.out,
        rotbench::report::files::RESULT_FILES,
        &[
            ("shard.bin".into(), bytes),
            ("shard.json".into(), serde_json::to_vec_pretty(&manifest)?),
        ],
    )?;
    if !cfg.quiet {
        outln!(
            "wrote shard {}/{} (samples {}..{}) to {} ({:.1} s); merge all shards with `rotbench merge DIR... --out DIR`",
            spec.index,
            spec.count,
            info.start,
            info.start + info.len,
            cfg.out.display(),
            wall
        );
    }
    Ok(())
}
