//! Datasets: one module per format, each a [`Source`] that streams decoded,
//! labelled images in chunks, already converted to the model's channels and size.
//!
//! Sample indices are positions in the dataset's own order (IDX record order,
//! or sorted class folder then sorted file name), so they are stable across runs.

pub mod cifar;
pub mod decode;
pub mod folder;
pub mod idx;
pub mod labels;
pub mod manifest;
pub mod resize;

use crate::spec::Resize;
use anyhow::{bail, Result};
pub use decode::Planes;
pub use labels::{Dropped, LabelSpace, Resolved, DROPPED};
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

/// A run of consecutive samples: `pixels` holds `labels.len()` images, CHW, u8,
/// concatenated. Every image has the target size unless `dims` lists per-image
/// `(height, width)` (rotate-then-crop keeps the resized image whole; the crop to
/// the target happens in the rotation).
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pub indices: Vec<u64>,
    pub labels: Vec<u32>,
    pub pixels: Vec<u8>,
    pub dims: Vec<(usize, usize)>,
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
    /// Samples that will be streamed (after `--sample` or `--limit`, and any shard range).
    pub len: usize,
    /// Offset of the first streamed sample among the selected ones (non-zero
    /// only for a shard).
    #[serde(skip)]
    pub start: usize,
    /// Samples selected (by `--sample` or `--limit`) before any shard takes its part.
    #[serde(skip)]
    pub selected: usize,
    /// Samples in the dataset.
    pub total: usize,
    /// sha256 over the dataset's content (decompressed IDX bytes; folder paths and bytes).
    pub sha256: String,
    /// Class names found in the data itself (image folders), in index order.
    pub class_names: Option<Vec<String>>,
    /// How class indices were assigned.
    pub class_order: String,
    /// False for a folder of images without class folders, read under a protocol
    /// whose figures need no labels ([`OpenOptions::unlabelled`]): every sample
    /// then carries [`UNLABELLED`], which no figure may read.
    pub labelled: bool,
    /// Image folders: each class folder and the class index its images get.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub class_map: Vec<ClassFolder>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
    /// Files under an image folder that are not samples: names torchvision's
    /// `ImageFolder` does not read either (not in its `IMG_EXTENSIONS`, or not in
    /// a class folder), and hidden entries, which rotbench leaves out on purpose.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<SkippedFile>,
    /// Samples left out because their class is not scored (`--drop-unscored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<Dropped>,
    /// What the user should know about how labels were read (sorted class
    /// folders whose names are not the classes they get, ...); printed on stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where each sample comes from.
    #[serde(skip)]
    pub sources: Sources,
}

/// Where each sample comes from, so that a row of `predictions.csv` leads back to
/// its image: the file for image folders and CSV manifests (relative to the data
/// root or the manifest's folder), or the record number in the file for IDX and
/// CIFAR (`t10k-images-idx3-ubyte#17`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Sources {
    #[default]
    Unknown,
    /// One name per sample position.
    Files(Vec<String>),
    /// Sample position `i` is record `i` of this file.
    Records(String),
}

impl Sources {
    /// The source of the sample at position `index`.
    pub fn of(&self, index: u64) -> String {
        match self {
            Sources::Unknown => String::new(),
            Sources::Files(f) => f.get(index as usize).cloned().unwrap_or_default(),
            Sources::Records(file) => format!("{file}#{index}"),
        }
    }

    /// The record form for the file at `path`: its file name.
    pub fn records(path: &Path) -> Sources {
        Sources::Records(
            path.file_name()
                .map_or_else(|| display(path), |n| n.to_string_lossy().into_owned()),
        )
    }
}

/// One class folder of an image folder and the class index of its images.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClassFolder {
    pub folder: String,
    pub index: u32,
}

/// How the class folders of an image folder become classes (`--class-folders`;
/// `None` is the automatic choice, see [`folder::class_map`]): by name when every
/// folder names a class, as class indices when every folder name is a number,
/// and an error naming the others otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ClassFolders {
    /// Every folder is named after one of the classes and gets that class.
    Names,
    /// Every folder is named by a number, an index into the model's classes.
    Indices,
    /// Folders are numbered 0, 1, ... in sorted name order, as torchvision's
    /// ImageFolder does, and folder i gets scored class i (warned and recorded
    /// when the names are not those classes).
    Sorted,
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
    /// Or a class-stratified random sample (`--sample N --seed S`).
    pub sample: Option<SampleSpec>,
    /// Then only this shard's samples.
    pub shard: Option<ShardSpec>,
    pub skip_bad_images: bool,
    /// Resize before the centre crop (None: straight to the target size).
    pub resize: Option<Resize>,
    /// Crop to the target before rotating (crop-then-rotate); otherwise chunks may
    /// carry larger images and the rotation crops.
    pub crop_first: bool,
    /// CIFAR-100: use the coarse labels instead of the fine ones.
    pub coarse_labels: bool,
    /// Image folders: how class folders become class indices (None: automatic).
    pub class_folders: Option<ClassFolders>,
    /// Image folders: `--class-folder-map FILE`, its `folder,class` lines.
    pub folder_map: Option<(std::path::PathBuf, Vec<(String, String)>)>,
    /// How colour becomes grey ([`Preprocess::grayscale`](crate::spec::Preprocess)).
    pub grayscale: crate::spec::Grayscale,
    /// Make every image grey in all of the model's channels.
    pub desaturate: bool,
    /// Image folders: read a folder of images without class folders, as samples
    /// without labels (`--protocol imagenet-p-rotate`, whose figures compare a
    /// model's predictions with each other, not with labels).
    pub unlabelled: bool,
}

/// The label every sample of data without labels carries: a placeholder that
/// keeps the engine's per-sample arrays aligned. Only the label-free summary
/// ([`crate::unlabelled`]) is built from such data, and it reads no label.
pub const UNLABELLED: u32 = 0;

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

/// `--sample N --seed S`: a class-stratified random sample of N samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleSpec {
    pub n: usize,
    pub seed: u64,
}

/// The samples a run streams: dataset positions in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// This run's positions (a shard's part of the selected ones).
    pub positions: Vec<usize>,
    /// Offset of `positions[0]` among the selected positions.
    pub start: usize,
    /// How many positions were selected before the shard took its part.
    pub selected: usize,
}

impl OpenOptions {
    /// The positions to stream out of samples with these `labels`: a stratified
    /// sample ([`stratified`]) or the first `--limit`, then this shard's part.
    /// Samples labelled [`DROPPED`] are never selected.
    pub fn selection(&self, labels: &[u32]) -> Selection {
        let kept: Vec<usize> = (0..labels.len())
            .filter(|&i| labels[i] != DROPPED)
            .collect();
        let all: Vec<usize> = if kept.len() == labels.len() {
            match self.sample {
                Some(s) => stratified(labels, s.n, s.seed),
                None => (0..limit_len(labels.len(), self.limit)).collect(),
            }
        } else {
            let kept_labels: Vec<u32> = kept.iter().map(|&i| labels[i]).collect();
            match self.sample {
                Some(s) => stratified(&kept_labels, s.n, s.seed)
                    .into_iter()
                    .map(|k| kept[k])
                    .collect(),
                None => kept[..limit_len(kept.len(), self.limit)].to_vec(),
            }
        };
        let selected = all.len();
        let (a, b) = match self.shard {
            Some(s) => s.range(selected),
            None => (0, selected),
        };
        Selection {
            positions: all[a..b].to_vec(),
            start: a,
            selected,
        }
    }
}

/// A class-stratified random sample of `n` of the samples with these labels
/// (all of them when `n` is at least their number), as positions in increasing
/// order. Proportional allocation with largest remainders: class c with `n_c` of
/// the `N` samples gets `floor(n * n_c / N)`, and the samples still missing go
/// one each to the classes with the largest remainders `n * n_c mod N` (ties to
/// the lower class). Within a class, the samples with the smallest keys
/// `hash(seed, position)` (SplitMix64's mixer; ties to the lower position) are
/// taken: a uniform random subset that depends only on the seed and the data.
pub fn stratified(labels: &[u32], n: usize, seed: u64) -> Vec<usize> {
    let total = labels.len();
    if n >= total {
        return (0..total).collect();
    }
    let classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
    let mut count = vec![0u128; classes];
    for &l in labels {
        count[l as usize] += 1;
    }
    let (n128, t128) = (n as u128, total as u128);
    let mut quota: Vec<usize> = count.iter().map(|&c| (n128 * c / t128) as usize).collect();
    let mut order: Vec<usize> = (0..classes).collect();
    order.sort_by(|&a, &b| {
        ((n128 * count[b]) % t128)
            .cmp(&((n128 * count[a]) % t128))
            .then(a.cmp(&b))
    });
    let missing = n - quota.iter().sum::<usize>();
    for &c in order.iter().take(missing) {
        quota[c] += 1;
    }
    let key = |p: usize| {
        use crate::metrics::bootstrap::mix;
        mix(mix(seed ^ 0x5851_F42D_4C95_7F2D)
            ^ (p as u64)
                .wrapping_add(1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15))
    };
    let mut by_class: Vec<Vec<(u64, usize)>> = vec![vec![]; classes];
    for (p, &l) in labels.iter().enumerate() {
        by_class[l as usize].push((key(p), p));
    }
    let mut out = Vec::with_capacity(n);
    for (c, mut members) in by_class.into_iter().enumerate() {
        members.sort_unstable();
        out.extend(members.iter().take(quota[c]).map(|&(_, p)| p));
    }
    out.sort_unstable();
    out
}

/// Open `path` as whichever format it holds; labels are resolved to the scored
/// classes of `space` ([`labels`]).
pub fn open(
    path: &Path,
    target: Target,
    space: &LabelSpace,
    opts: &OpenOptions,
) -> Result<Box<dyn Source>> {
    if !path.exists() {
        bail!("--data {}: no such file or folder; give an MNIST IDX folder or file, a CIFAR batch, a CSV manifest, or an image folder with one subfolder per class", path.display());
    }
    if opts.folder_map.is_some() && !is_image_folder(path) {
        bail!(
            "--class-folder-map: --data {} is not an image folder; the map names class folders, so drop it",
            path.display()
        );
    }
    if idx::looks_like_idx(path) {
        return Ok(Box::new(idx::IdxSource::open(path, target, space, opts)?));
    }
    if let Some(file) = cifar::find(path) {
        return Ok(Box::new(cifar::CifarSource::open(
            &file, target, space, opts,
        )?));
    }
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        return Ok(Box::new(manifest::open(path, target, space, opts)?));
    }
    if is_image_folder(path) {
        return Ok(Box::new(folder::FolderSource::open(
            path, target, space, opts,
        )?));
    }
    bail!(
        "--data {}: not a dataset rotbench reads; give an MNIST IDX folder or file, a CIFAR binary batch (.bin) or its folder, a CSV manifest (path,label), or an image folder with one subfolder per class",
        path.display()
    )
}

/// Whether [`open`] reads `path` as an image folder (a folder that is not an
/// MNIST IDX or CIFAR folder).
pub fn is_image_folder(path: &Path) -> bool {
    path.is_dir() && !idx::looks_like_idx(path) && cifar::find(path).is_none()
}

/// Top-left offset of a centre crop of `(th, tw)` out of `(h, w)`, rounded as
/// torchvision's `CenterCrop` does (Python's `round`, half to even).
pub fn center_offsets(h: usize, w: usize, th: usize, tw: usize) -> (usize, usize) {
    let off = |a: usize, b: usize| ((a.saturating_sub(b)) as f64 / 2.0).round_ties_even() as usize;
    (off(h, th), off(w, tw))
}

/// Bring decoded planes to the model's input as torchvision's usual pipeline
/// does (`Grayscale` or RGB, then `Resize`, then `CenterCrop`): PIL's channel
/// conversion ([`decode`]), PIL's bilinear resize ([`resize`]), and a centre
/// crop unless the crop is left to the rotation. Returns CHW planes and their
/// `(height, width)`, which is the target size unless the crop is left to the rotation.
pub fn convert(
    planes: Planes,
    target: Target,
    opts: &OpenOptions,
) -> std::result::Result<(Vec<u8>, usize, usize), String> {
    let planes = if opts.desaturate {
        planes.to_grey(opts.grayscale).to_channels(target.channels)
    } else {
        planes.to_channels_as(target.channels, opts.grayscale)
    };
    let (w, h) = (planes.width, planes.height);
    let (nw, nh) = match opts.resize {
        None => (target.width, target.height),
        Some(Resize::Exact([rh, rw])) => (rw, rh),
        Some(Resize::Shorter(s)) => {
            // torchvision Resize(s): the shorter side becomes s, the longer int(s * long / short).
            if w <= h {
                (s, (s as f64 * h as f64 / w as f64) as usize)
            } else {
                ((s as f64 * w as f64 / h as f64) as usize, s)
            }
        }
    };
    if nh < target.height || nw < target.width {
        return Err(format!(
            "is {nw}x{nh} (width x height) after resizing, smaller than the model's {}x{} input; raise `resize`",
            target.width, target.height
        ));
    }
    let c = target.channels;
    let mut px = resize::bilinear(&planes.data, c, h, w, nh, nw);
    let (mut h, mut w) = (nh, nw);
    if opts.crop_first && (h, w) != (target.height, target.width) {
        let (top, left) = center_offsets(h, w, target.height, target.width);
        let (th, tw) = (target.height, target.width);
        let mut out = Vec::with_capacity(c * th * tw);
        for ch in 0..c {
            for y in top..top + th {
                let row = ch * h * w + y * w + left;
                out.extend_from_slice(&px[row..row + tw]);
            }
        }
        px = out;
        (h, w) = (th, tw);
    }
    Ok((px, h, w))
}

/// Whether images of `(h, w)` pass through unchanged (no resize, no crop).
pub fn is_native(h: usize, w: usize, target: Target, opts: &OpenOptions) -> bool {
    !opts.desaturate
        && (h, w) == (target.height, target.width)
        && match opts.resize {
            None => true,
            Some(Resize::Exact([rh, rw])) => (rh, rw) == (h, w),
            Some(Resize::Shorter(s)) => s == h.min(w),
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
mod sample_tests {
    use super::*;

    #[test]
    fn a_stratified_sample_follows_proportional_allocation_with_largest_remainders() {
        // 10 samples: class 0 x5, class 1 x3, class 2 x2; n = 4: 4*5/10 = 2.0, 4*3/10 = 1.2,
        // 4*2/10 = 0.8 -> floors 2, 1, 0 (3), one more to the largest remainder (class 2: 8).
        let labels = [0, 0, 0, 0, 0, 1, 1, 1, 2, 2];
        let pick = stratified(&labels, 4, 7);
        let per = |c: u32| pick.iter().filter(|&&p| labels[p] == c).count();
        assert_eq!((per(0), per(1), per(2)), (2, 1, 1), "{pick:?}");
        assert!(pick.windows(2).all(|w| w[0] < w[1]), "increasing positions");
        assert_eq!(
            stratified(&labels, 4, 7),
            pick,
            "the same seed, the same draw"
        );
        assert_ne!(
            (0..20)
                .map(|s| stratified(&labels, 4, s))
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            1,
            "other seeds draw other samples"
        );
        assert_eq!(stratified(&labels, 99, 0), (0..10).collect::<Vec<_>>());
        // A tie in remainders goes to the lower class: n = 5 of (5, 3, 2) gives 2.5, 1.5, 1.0.
        let pick = stratified(&labels, 5, 1);
        let per = |c: u32| pick.iter().filter(|&&p| labels[p] == c).count();
        assert_eq!((per(0), per(1), per(2)), (3, 1, 1));
    }

    #[test]
    fn every_sample_is_equally_likely_within_its_class() {
        let labels: Vec<u32> = (0..40).map(|i| (i % 4) as u32).collect();
        let mut seen = vec![0; 40];
        for seed in 0..2000 {
            for p in stratified(&labels, 8, seed) {
                seen[p] += 1;
            }
        }
        // Each sample: 2 of 10 in its class, 400 of 2000 expected.
        assert!(seen.iter().all(|&c| (320..480).contains(&c)), "{seen:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_whole_batches_that_cover_every_sample_once() {
        for (n, bs, count) in [
            (10_000, 256, 3),
            (1000, 256, 4),
            (7, 2, 3),
            (5, 10, 1),
            (1001, 100, 7),
        ] {
            let mut next = 0;
            for index in 0..count {
                let (a, b) = ShardSpec {
                    index,
                    count,
                    batch_size: bs,
                }
                .range(n);
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
