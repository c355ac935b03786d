//! `examples.json`: the raw pixels of the first samples with every model's
//! prediction at every angle, so `rotbench report DIR` can redraw the rotation
//! strip and the misclassified gallery without running a model.

use super::{Export, Results};
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

/// The kept images ([`crate::results::Examples`], the same type the sweep and
/// the shard manifest use) with their samples' identities and every prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamplesFile {
    #[serde(flatten)]
    pub images: crate::results::Examples,
    /// Dataset indices of the kept samples.
    pub indices: Vec<u64>,
    /// Each kept sample's file or record (empty in files from before issue 21).
    #[serde(default)]
    pub sources: Vec<String>,
    pub labels: Vec<u32>,
    /// `preds[model][angle][k]`, aligned with summary.json's models and angles.
    pub preds: Vec<Vec<Vec<i32>>>,
}

impl ExamplesFile {
    /// The images, checked against the samples they stand for (an examples.json
    /// from before the count was recorded gets it from its indices).
    pub fn checked_images(&self) -> Result<crate::results::Examples> {
        let mut images = self.images.clone();
        if images.count == 0 {
            images.count = self.indices.len();
        }
        if images.count != self.indices.len() {
            anyhow::bail!(
                "examples.json: {} images for {} samples",
                images.count,
                self.indices.len()
            );
        }
        images.check("examples.json")?;
        Ok(images)
    }
}

pub struct Examples;

pub fn build(r: &Results<'_>) -> Option<ExamplesFile> {
    let sweep = r.sweep?;
    let ex = &sweep.examples;
    let k = ex.count;
    Some(ExamplesFile {
        images: ex.clone(),
        indices: sweep.indices[..k].to_vec(),
        sources: sweep.sources[..k].to_vec(),
        labels: sweep.labels[..k].to_vec(),
        preds: sweep
            .models
            .iter()
            .map(|m| m.cols.iter().map(|c| c.preds[..k].to_vec()).collect())
            .collect(),
    })
}

impl Export for Examples {
    fn file_name(&self) -> &'static str {
        "examples.json"
    }
    fn render(&self, r: &Results<'_>) -> Result<Vec<u8>> {
        let f = build(r).ok_or_else(|| anyhow!("examples.json needs the sweep's samples"))?;
        Ok(serde_json::to_vec(&f)?)
    }
}
