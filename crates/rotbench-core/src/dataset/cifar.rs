//! CIFAR-10 and CIFAR-100 binary batches. CIFAR-10 records are 1 label byte +
//! 3072 pixel bytes (R, G, B planes of 32x32); CIFAR-100 records are a coarse and
//! a fine label byte + 3072 (fine labels by default, coarse with `--coarse-labels`).
//! A folder means its `test_batch.bin` (CIFAR-10) or `test.bin` (CIFAR-100).

use super::{display, Chunk, DatasetInfo, OpenOptions, Source, Target};
use crate::hash::content_hash;
use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

const SIDE: usize = 32;
const PIXELS: usize = 3 * SIDE * SIDE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cifar10,
    Cifar100,
}

fn kind_of(file: &Path) -> Option<Kind> {
    let name = file.file_name()?.to_string_lossy().to_ascii_lowercase();
    if !name.ends_with(".bin") {
        return None;
    }
    if name.starts_with("test_batch") || name.starts_with("data_batch") {
        Some(Kind::Cifar10)
    } else if name == "test.bin" || name == "train.bin" {
        Some(Kind::Cifar100)
    } else {
        None
    }
}

/// The batch file `path` names, if it is (or holds) a CIFAR binary batch.
pub fn find(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return kind_of(path).map(|_| path.to_path_buf());
    }
    ["test_batch.bin", "test.bin"]
        .iter()
        .map(|n| path.join(n))
        .find(|p| p.is_file())
}

fn read_names(dir: &Path, file: &str) -> Option<Vec<String>> {
    let text = fs::read_to_string(dir.join(file)).ok()?;
    let names: Vec<String> = text
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (!names.is_empty()).then_some(names)
}

pub struct CifarSource {
    info: DatasetInfo,
    bytes: Vec<u8>,
    record: usize,
    labels: Vec<u32>,
    target: Target,
    opts: OpenOptions,
    positions: Vec<usize>,
    next: usize,
}

impl CifarSource {
    pub fn open(
        file: &Path,
        target: Target,
        space: &super::LabelSpace,
        opts: &OpenOptions,
    ) -> Result<CifarSource> {
        let kind =
            kind_of(file).ok_or_else(|| anyhow!("{}: not a CIFAR batch name", file.display()))?;
        let bytes =
            fs::read(file).with_context(|| format!("--data {}: cannot read", file.display()))?;
        let record = if kind == Kind::Cifar10 {
            1 + PIXELS
        } else {
            2 + PIXELS
        };
        if bytes.is_empty() {
            bail!("--data {}: the dataset is empty (0 bytes)", file.display());
        }
        if bytes.len() % record != 0 {
            bail!(
                "{}: {} bytes is not a whole number of {} records ({record} bytes each); the file is truncated or not a {} batch",
                file.display(),
                bytes.len(),
                if kind == Kind::Cifar10 { "CIFAR-10" } else { "CIFAR-100" },
                if kind == Kind::Cifar10 { "CIFAR-10" } else { "CIFAR-100" }
            );
        }
        let count = bytes.len() / record;
        let label_at = match (kind, opts.coarse_labels) {
            (Kind::Cifar10, _) => 0,
            (Kind::Cifar100, true) => 0,
            (Kind::Cifar100, false) => 1,
        };
        let raw: Vec<u8> = (0..count).map(|i| bytes[i * record + label_at]).collect();
        let hint = if kind == Kind::Cifar100 {
            ", or --coarse-labels"
        } else {
            ""
        };
        let (labels, dropped) = super::idx::settle_indices(&raw, space, file, hint)?;
        let sel = opts.selection(&labels);
        let dir = file.parent().unwrap_or(Path::new("."));
        let class_names = match (kind, opts.coarse_labels) {
            (Kind::Cifar10, _) => read_names(dir, "batches.meta.txt"),
            (Kind::Cifar100, false) => read_names(dir, "fine_label_names.txt"),
            (Kind::Cifar100, true) => read_names(dir, "coarse_label_names.txt"),
        };
        let info = DatasetInfo {
            format: match (kind, opts.coarse_labels) {
                (Kind::Cifar10, _) => "cifar-10".into(),
                (Kind::Cifar100, false) => "cifar-100 (fine labels)".into(),
                (Kind::Cifar100, true) => "cifar-100 (coarse labels)".into(),
            },
            path: display(file),
            len: sel.positions.len(),
            start: sel.start,
            selected: sel.selected,
            total: count,
            sha256: content_hash(&bytes),
            class_names,
            class_order: "CIFAR labels are class indices into the model's classes".into(),
            labelled: true,
            class_map: vec![],
            skipped: vec![],
            ignored: vec![],
            dropped,
            warnings: vec![],
            sources: super::Sources::records(file),
        };
        Ok(CifarSource {
            info,
            bytes,
            record,
            labels,
            target,
            opts: opts.clone(),
            positions: sel.positions,
            next: 0,
        })
    }
}

impl Source for CifarSource {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if self.next >= self.positions.len() {
            return Ok(None);
        }
        let n = max.min(self.positions.len() - self.next);
        let t = self.target;
        let native = super::is_native(SIDE, SIDE, t, &self.opts);
        let mut chunk = Chunk::default();
        let mut dims = Vec::new();
        let mut varied = false;
        for &i in &self.positions[self.next..self.next + n] {
            let planes = &self.bytes[i * self.record + self.record - PIXELS..(i + 1) * self.record];
            let (px, h, w) = if native && t.channels == 3 {
                (planes.to_vec(), SIDE, SIDE)
            } else {
                let rgb = super::Planes {
                    channels: 3,
                    height: SIDE,
                    width: SIDE,
                    data: planes.to_vec(),
                };
                super::convert(rgb, t, &self.opts)
                    .map_err(|e| anyhow!("{}: image {i} {e}", self.info.path))?
            };
            varied |= (h, w) != (t.height, t.width);
            dims.push((h, w));
            chunk.indices.push(i as u64);
            chunk.labels.push(self.labels[i]);
            chunk.pixels.extend(px);
        }
        if varied {
            chunk.dims = dims;
        }
        self.next += n;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(kind: Kind, labels: &[(u8, u8)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (i, (coarse, fine)) in labels.iter().enumerate() {
            if kind == Kind::Cifar100 {
                b.push(*coarse);
            }
            b.push(*fine);
            b.extend(std::iter::repeat_n(i as u8, PIXELS));
        }
        b
    }

    const T: Target = Target {
        channels: 3,
        height: 32,
        width: 32,
    };

    #[test]
    fn cifar10_and_cifar100_fine_and_coarse() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("test_batch.bin"),
            batch(Kind::Cifar10, &[(0, 3), (0, 1)]),
        )
        .unwrap();
        let mut s = CifarSource::open(
            &find(d.path()).unwrap(),
            T,
            &crate::dataset::labels::numbered(10),
            &OpenOptions::default(),
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![3, 1]);
        assert_eq!(c.pixels.len(), 2 * PIXELS);
        assert_eq!(c.pixels[PIXELS], 1);

        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("test.bin"),
            batch(Kind::Cifar100, &[(4, 40), (5, 55)]),
        )
        .unwrap();
        let mut s = CifarSource::open(
            &d.path().join("test.bin"),
            T,
            &crate::dataset::labels::numbered(100),
            &OpenOptions::default(),
        )
        .unwrap();
        assert_eq!(s.next_chunk(10).unwrap().unwrap().labels, vec![40, 55]);
        let opts = OpenOptions {
            coarse_labels: true,
            ..Default::default()
        };
        let mut s = CifarSource::open(
            &d.path().join("test.bin"),
            T,
            &crate::dataset::labels::numbered(20),
            &opts,
        )
        .unwrap();
        assert_eq!(s.next_chunk(10).unwrap().unwrap().labels, vec![4, 5]);
    }

    /// The error from opening `bytes` as a CIFAR-10 `test_batch.bin`.
    fn open_err(bytes: &[u8]) -> String {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("test_batch.bin");
        fs::write(&path, bytes).unwrap();
        CifarSource::open(
            &path,
            T,
            &crate::dataset::labels::numbered(10),
            &OpenOptions::default(),
        )
        .err()
        .unwrap()
        .to_string()
    }

    #[test]
    fn truncated_batches_and_bad_labels_are_refused() {
        let mut b = batch(Kind::Cifar10, &[(0, 3), (0, 1)]);
        b.pop();
        let err = open_err(&b);
        assert!(err.contains("not a whole number"), "{err}");
        let err = open_err(&batch(Kind::Cifar10, &[(0, 3), (0, 12)]));
        assert!(err.contains("label 12 at sample 1"), "{err}");
    }
}
