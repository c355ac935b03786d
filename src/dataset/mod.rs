//! Datasets: one module per format, each a [`Source`] that streams decoded,
//! labelled images in chunks, already converted to the model's channels and size.
//!
//! Sample indices are positions in the dataset's own order (IDX record order,
//! or sorted class folder then sorted file name), so they are stable across runs.

pub mod folder;
pub mod idx;

use anyhow::{bail, Result};
use image::{imageops::FilterType, DynamicImage};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The pixel layout the model wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Target {
    pub fn pixels(&self) -> usize {
        self.channels * self.height * self.width
    }
}

/// A run of consecutive samples: `pixels` holds `labels.len()` images, CHW, u8.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    pub pixels: Vec<u8>,
}

impl Chunk {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DatasetInfo {
    pub format: String,
    pub path: String,
    /// Samples that will be streamed (after `--limit` and any shard range).
    pub len: usize,
    /// Position of the first streamed sample (non-zero only for a shard).
    #[serde(skip)]
    pub start: usize,
    /// Samples in the dataset.
    pub total: usize,
    /// sha256 over the dataset's content (decompressed IDX bytes; folder paths and bytes).
    pub sha256: String,
    /// Class names found in the data itself (image folders), in index order.
    pub class_names: Option<Vec<String>>,
    /// How class indices were assigned.
    pub class_order: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
}

pub trait Source: Send {
    fn info(&self) -> &DatasetInfo;
    /// The next up to `max` samples, or `None` at the end.
    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>>;
}

#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Use only the first N samples.
    pub limit: Option<usize>,
    /// Then only this shard's samples.
    pub shard: Option<ShardSpec>,
    pub skip_bad_images: bool,
}

/// Shard `index` of `count` (0-based). Shards are runs of whole batches, so a
/// shard feeds the model exactly the batches a single run would, and a merge
/// reproduces the single run bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
    pub batch_size: usize,
}

impl ShardSpec {
    /// Sample positions `start..end` of this shard among `n` selected samples.
    pub fn range(&self, n: usize) -> (usize, usize) {
        let batches = n.div_ceil(self.batch_size.max(1));
        let b0 = self.index * batches / self.count;
        let b1 = (self.index + 1) * batches / self.count;
        ((b0 * self.batch_size).min(n), (b1 * self.batch_size).min(n))
    }
}

impl OpenOptions {
    /// The selected positions out of `total` samples.
    pub fn select(&self, total: usize) -> (usize, usize) {
        let n = limit_len(total, self.limit);
        match self.shard {
            Some(s) => s.range(n),
            None => (0, n),
        }
    }
}

/// Open `path` as whichever format it holds.
pub fn open(path: &Path, target: Target, classes: &[String], opts: &OpenOptions) -> Result<Box<dyn Source>> {
    if !path.exists() {
        bail!("--data {}: no such file or folder; give an MNIST IDX folder or file, or an image folder with one subfolder per class", path.display());
    }
    if idx::looks_like_idx(path) {
        return Ok(Box::new(idx::IdxSource::open(path, target, classes.len(), opts)?));
    }
    if path.is_dir() {
        return Ok(Box::new(folder::FolderSource::open(path, target, classes, opts)?));
    }
    bail!(
        "--data {}: not a dataset rotbench reads; give an MNIST IDX folder (or its *-images-idx3-ubyte[.gz] file) or an image folder with one subfolder per class",
        path.display()
    )
}

/// Convert a decoded image to the target channels and size (bilinear "triangle"
/// resize when the size differs).
pub fn convert(img: DynamicImage, target: Target) -> Vec<u8> {
    let img = if img.width() as usize != target.width || img.height() as usize != target.height {
        img.resize_exact(target.width as u32, target.height as u32, FilterType::Triangle)
    } else {
        img
    };
    let (h, w) = (target.height, target.width);
    if target.channels == 1 {
        img.into_luma8().into_raw()
    } else {
        let rgb = img.into_rgb8();
        let raw = rgb.as_raw();
        let mut out = vec![0u8; 3 * h * w];
        for p in 0..h * w {
            for c in 0..3 {
                out[c * h * w + p] = raw[p * 3 + c];
            }
        }
        out
    }
}

/// Expand single-channel planes to `channels` copies (grayscale data, RGB model).
pub fn replicate_gray(plane: &[u8], channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(plane.len() * channels);
    for _ in 0..channels {
        out.extend_from_slice(plane);
    }
    out
}

pub(crate) fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_whole_batches_that_cover_every_sample_once() {
        for (n, bs, count) in [(10_000, 256, 3), (1000, 256, 4), (7, 2, 3), (5, 10, 1), (1001, 100, 7)] {
            let mut next = 0;
            for index in 0..count {
                let (a, b) = ShardSpec { index, count, batch_size: bs }.range(n);
                assert_eq!(a, next, "contiguous");
                assert!(a % bs == 0, "starts on a batch boundary");
                next = b;
            }
            assert_eq!(next, n, "covers everything");
        }
    }
}

pub(crate) fn limit_len(total: usize, limit: Option<usize>) -> usize {
    limit.map_or(total, |l| l.min(total))
}
