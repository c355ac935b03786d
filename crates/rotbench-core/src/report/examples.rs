//! `examples.json`: the raw pixels of the first samples with every model's
//! prediction at every angle, so `rotbench report DIR` can redraw the rotation
//! strip and the misclassified gallery without running a model.

use super::{Export, Results};
use anyhow::{anyhow, bail, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExamplesFile {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Dataset indices of the kept samples.
    pub indices: Vec<u64>,
    /// Each kept sample's file or record (empty in files from before issue 21).
    #[serde(default)]
    pub sources: Vec<String>,
    pub labels: Vec<u32>,
    /// CHW u8 planes of every kept sample, concatenated, base64.
    pub pixels_base64: String,
    /// `preds[model][angle][k]`, aligned with summary.json's models and angles.
    pub preds: Vec<Vec<Vec<i32>>>,
}

impl ExamplesFile {
    pub fn pixels(&self) -> Result<Vec<u8>> {
        let px = base64::engine::general_purpose::STANDARD
            .decode(&self.pixels_base64)
            .map_err(|e| anyhow!("examples.json: pixels_base64 is not base64: {e}"))?;
        if px.len() != self.indices.len() * self.channels * self.height * self.width {
            bail!(
                "examples.json: pixel data does not match {} samples of {}x{}x{}",
                self.indices.len(),
                self.channels,
                self.height,
                self.width
            );
        }
        Ok(px)
    }

    /// Pixels of sample `k` (CHW).
    pub fn sample<'a>(&self, pixels: &'a [u8], k: usize) -> &'a [u8] {
        let n = self.channels * self.height * self.width;
        &pixels[k * n..(k + 1) * n]
    }
}

pub struct Examples;

pub fn build(r: &Results<'_>) -> Option<ExamplesFile> {
    let sweep = r.sweep?;
    let ex = &sweep.examples;
    let k = ex.count;
    Some(ExamplesFile {
        channels: ex.channels,
        height: ex.height,
        width: ex.width,
        indices: sweep.indices[..k].to_vec(),
        sources: sweep.sources[..k].to_vec(),
        labels: sweep.labels[..k].to_vec(),
        pixels_base64: base64::engine::general_purpose::STANDARD.encode(&ex.pixels),
        preds: sweep
            .models
            .iter()
            .map(|m| m.preds.iter().map(|p| p[..k].to_vec()).collect())
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
