//! Shard results and their exact merge. A shard holds the per-sample results of
//! a contiguous run of whole batches plus a manifest; merging the shards of one
//! sweep gives back exactly the single run's [`Evaluations`].

use crate::dataset::{DatasetInfo, ShardSpec};
use crate::results::{examples_to_keep, Evaluations, Examples, ModelId, PosePlan, SampleData};
use crate::summary::{DatasetSummary, Settings};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

pub const SHARD_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardManifest {
    pub rotbench_shard: u32,
    pub rotbench_version: String,
    pub shard: ShardSpec,
    /// Sample positions `start..end` out of `selected` (after --limit).
    pub start: usize,
    pub end: usize,
    pub selected: usize,
    pub settings: Settings,
    pub models: Vec<ModelId>,
    pub dataset: DatasetSummary,
    /// Where each sample comes from (the whole dataset's, as every shard lists it).
    #[serde(default)]
    pub sources: crate::dataset::Sources,
    pub examples: Examples,
    /// How many examples a single run keeps.
    pub keep_examples: usize,
}

impl ShardManifest {
    /// What must agree between the shards of one sweep.
    fn identity(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.shard.count,
            "batch": self.shard.batch_size,
            "selected": self.selected,
            "settings": self.settings,
            "models": self.models.iter().map(|m| (&m.name, &m.sha256, &m.spec)).collect::<Vec<_>>(),
            "dataset": (&self.dataset.sha256, &self.dataset.format, self.dataset.total),
        })
    }
}

/// One shard as read from its folder: `(folder name, manifest, data)`.
pub type Loaded = (String, ShardManifest, SampleData);

/// Check that the shards belong to one sweep, all present once, and merge them.
pub fn merge(mut shards: Vec<Loaded>) -> Result<(Evaluations, ShardManifest, DatasetInfo)> {
    let Some((first_dir, first, _)) = shards.first().cloned() else {
        bail!("no shard folders given")
    };
    let count = first.shard.count;
    let id = first.identity();
    for (dir, m, data) in &shards {
        if m.identity() != id {
            let what = if m
                .models
                .iter()
                .map(|x| &x.sha256)
                .ne(first.models.iter().map(|x| &x.sha256))
            {
                "different models"
            } else if m.dataset.sha256 != first.dataset.sha256 || m.selected != first.selected {
                "a different dataset or sample selection"
            } else if m.shard.count != count {
                "a different shard count"
            } else {
                "different settings"
            };
            bail!("{dir}: this shard was made with {what} than {first_dir}; merge only the shards of one sweep");
        }
        // Positions start..end were read; the ones that failed to decode
        // (--skip-bad-images) are listed, not evaluated.
        if data.len() + m.dataset.skipped.len() != m.end - m.start {
            bail!(
                "{dir}: the shard's data holds {} samples and {} skipped images, but its manifest covers {} positions; rerun this shard",
                data.len(),
                m.dataset.skipped.len(),
                m.end - m.start
            );
        }
    }
    shards.sort_by_key(|(_, m, _)| m.shard.index);
    for w in shards.windows(2) {
        if w[0].1.shard.index == w[1].1.shard.index {
            bail!(
                "shard {} of {count} appears twice: {} and {}; give each shard once",
                w[0].1.shard.index,
                w[0].0,
                w[1].0
            );
        }
    }
    let have: Vec<usize> = shards.iter().map(|(_, m, _)| m.shard.index).collect();
    if let Some(missing) = (0..count).find(|i| !have.contains(i)) {
        bail!(
            "shard {missing} of {count} is missing (have {}); give all {count} shard folders",
            have.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let PosePlan {
        poses,
        reference_added,
        reference,
    } = PosePlan::new(&first.settings.poses());
    let draws = first.settings.worst_of;
    let slots = poses.len() + draws.map_or(0, |d| d.k);
    let mut data = SampleData::empty(first.models.len(), slots, 0);
    let mut examples = Examples {
        channels: first.examples.channels,
        height: first.examples.height,
        width: first.examples.width,
        count: 0,
        pixels: vec![],
    };
    let px = examples.channels * examples.height * examples.width;
    let keep = examples_to_keep(first.keep_examples, px);
    let mut skipped = Vec::new();
    let mut next = 0;
    for (dir, m, d) in &shards {
        if m.start != next {
            bail!(
                "{dir}: shard {} starts at sample {} but the previous shard ends at {next}",
                m.shard.index,
                m.start
            );
        }
        next = m.end;
        data.append(d);
        let px_data = &m.examples.pixels;
        if px_data.len() != m.examples.count * px {
            bail!(
                "{dir}: examples are damaged: {} bytes for {} samples of {px}; run the shard again",
                px_data.len(),
                m.examples.count
            );
        }
        let take = keep.saturating_sub(examples.count).min(m.examples.count);
        examples.pixels.extend_from_slice(&px_data[..take * px]);
        examples.count += take;
        skipped.extend(m.dataset.skipped.iter().cloned());
    }
    if next != first.selected {
        bail!(
            "the shards cover samples 0..{next} of {}; a shard is missing",
            first.selected
        );
    }
    let d = &first.dataset;
    let info = DatasetInfo {
        format: d.format.clone(),
        path: d.path.clone(),
        len: first.selected,
        start: 0,
        selected: first.selected,
        total: d.total,
        sha256: d.sha256.clone(),
        class_names: d.class_names.clone(),
        class_order: d.class_order.clone(),
        labelled: d.labelled,
        class_map: d.class_map.clone(),
        skipped,
        ignored: d.ignored.clone(),
        dropped: d.dropped.clone(),
        warnings: d.warnings.clone(),
        sources: first.sources.clone(),
    };
    let batch_size = first.shard.batch_size;
    Ok((
        Evaluations {
            poses,
            draws,
            early_stop: first.settings.grid_early_stop,
            reference_added,
            reference,
            data,
            examples,
            batch_size,
            batch_timings: vec![],
        },
        first,
        info,
    ))
}
