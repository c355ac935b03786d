//! Image files with labels: torchvision's ImageFolder layout `ROOT/<class>/...`
//! (nested subfolders allowed), or a list from a CSV manifest. PNG and JPEG,
//! grayscale or colour; other files are ignored. For folders, class indices follow
//! the model's class list when every folder name is in it (so a subset of classes
//! keeps its indices), and otherwise the sorted folder names (torchvision's order).

use super::{convert, display, Chunk, DatasetInfo, OpenOptions, SkippedFile, Source, Target};
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

const IMAGE_EXTS: [&str; 3] = ["png", "jpg", "jpeg"];

pub fn is_image_file(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| IMAGE_EXTS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
}

/// A list of labelled image files, decoded in parallel chunk by chunk.
pub struct FilesSource {
    info: DatasetInfo,
    files: Vec<(PathBuf, u32)>,
    target: Target,
    opts: OpenOptions,
    next: usize,
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("--data {}: cannot list the folder", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

/// Every image file under `dir`, recursively, in sorted path order.
fn images_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            images_under(&p, out)?;
        } else if p.is_file() && is_image_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

impl FilesSource {
    /// Hash paths (relative to `root`) and bytes, apply limit/shard, and build the source.
    pub fn new(
        format: &str,
        root: &Path,
        mut files: Vec<(PathBuf, u32)>,
        class_names: Option<Vec<String>>,
        class_order: String,
        target: Target,
        opts: &OpenOptions,
    ) -> Result<FilesSource> {
        if files.is_empty() {
            bail!("--data {}: no PNG or JPEG images found", root.display());
        }
        let mut hasher = Sha256::new();
        for (f, label) in &files {
            let rel = f.strip_prefix(root).unwrap_or(f);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(label.to_le_bytes());
            let bytes = fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        let total = files.len();
        let (start, end) = opts.select(total);
        files.truncate(end);
        let info = DatasetInfo {
            format: format.into(),
            path: display(root),
            len: end - start,
            start,
            total,
            sha256: crate::model::hex(&hasher.finalize()),
            class_names,
            class_order,
            skipped: vec![],
        };
        Ok(FilesSource {
            info,
            files,
            target,
            opts: opts.clone(),
            next: start,
        })
    }
}

pub struct FolderSource;

impl FolderSource {
    #[allow(clippy::new_ret_no_self)]
    pub fn open(
        root: &Path,
        target: Target,
        model_classes: &[String],
        opts: &OpenOptions,
    ) -> Result<FilesSource> {
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            bail!(
                "--data {}: the image folder has no class folders; put images in one subfolder per class (ROOT/<class>/<image>.png)",
                root.display()
            );
        }
        let names: Vec<String> = class_dirs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let by_model = names.iter().all(|n| model_classes.contains(n));
        let (index_of, order): (Vec<u32>, String) = if by_model {
            (
                names
                    .iter()
                    .map(|n| model_classes.iter().position(|c| c == n).unwrap() as u32)
                    .collect(),
                "folder names matched to the model's class list (a subset keeps its indices)"
                    .into(),
            )
        } else {
            if names.len() > model_classes.len() {
                bail!(
                    "--data {}: {} class folders but the model has {} classes, and the folder names are not the model's class names; rename the folders to class names or pass --classes",
                    root.display(),
                    names.len(),
                    model_classes.len()
                );
            }
            (
                (0..names.len() as u32).collect(),
                "sorted folder names (torchvision ImageFolder order)".into(),
            )
        };
        let mut files = Vec::new();
        for (dir, &label) in class_dirs.iter().zip(&index_of) {
            let mut found = Vec::new();
            images_under(dir, &mut found)?;
            files.extend(found.into_iter().map(|f| (f, label)));
        }
        if files.is_empty() {
            bail!(
                "--data {}: no PNG or JPEG images in its class folders",
                root.display()
            );
        }
        FilesSource::new(
            "image-folder",
            root,
            files,
            Some(names),
            order,
            target,
            opts,
        )
    }
}

fn decode(path: &Path, target: Target, opts: &OpenOptions) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    if bytes.is_empty() {
        bail!("{}: the image file is empty (0 bytes)", path.display());
    }
    let img = image::load_from_memory(&bytes)
        .map_err(|e| anyhow!("{}: cannot decode the image: {e}", path.display()))?;
    convert(img, target, opts).map_err(|e| anyhow!("{}: {e}", path.display()))
}

impl Source for FilesSource {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if self.next >= self.files.len() {
            return Ok(None);
        }
        let end = (self.next + max).min(self.files.len());
        let (target, opts) = (self.target, &self.opts);
        let decoded: Vec<Result<(Vec<u8>, usize, usize)>> = self.files[self.next..end]
            .par_iter()
            .map(|(p, _)| decode(p, target, opts))
            .collect();
        let mut chunk = Chunk::default();
        let mut dims = Vec::new();
        let mut varied = false;
        for (k, r) in decoded.into_iter().enumerate() {
            let i = self.next + k;
            match r {
                Ok((px, h, w)) => {
                    chunk.indices.push(i as u64);
                    chunk.labels.push(self.files[i].1);
                    chunk.pixels.extend(px);
                    varied |= (h, w) != (target.height, target.width);
                    dims.push((h, w));
                }
                Err(e) if self.opts.skip_bad_images => {
                    self.info.skipped.push(SkippedFile { path: display(&self.files[i].0), reason: e.to_string() });
                }
                Err(e) => bail!("{e}; a bad image stops the run: fix or remove it, or pass --skip-bad-images to skip and count such files"),
            }
        }
        if varied {
            chunk.dims = dims;
        }
        self.next = end;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, RgbImage};

    fn classes(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const T: Target = Target {
        channels: 1,
        height: 4,
        width: 4,
    };

    #[test]
    fn folders_named_like_the_model_classes_use_the_model_order() {
        let d = tempfile::tempdir().unwrap();
        for (c, v) in [("cat", 10u8), ("dog", 200u8)] {
            fs::create_dir(d.path().join(c)).unwrap();
            GrayImage::from_pixel(4, 4, Luma([v]))
                .save(d.path().join(c).join("a.png"))
                .unwrap();
        }
        fs::write(d.path().join("dog").join("notes.txt"), "ignored").unwrap();
        let mut s = FolderSource::open(
            d.path(),
            T,
            &classes(&["dog", "cat"]),
            &OpenOptions::default(),
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![1, 0], "cat is class 1 in the model's list");
        assert_eq!(c.pixels[0], 10);
        assert_eq!(s.info().len, 2);
    }

    #[test]
    fn a_subset_of_classes_keeps_its_indices_and_nested_folders_are_walked() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("c/deep/er")).unwrap();
        GrayImage::from_pixel(4, 4, Luma([7]))
            .save(d.path().join("c/deep/er/x.png"))
            .unwrap();
        GrayImage::from_pixel(4, 4, Luma([8]))
            .save(d.path().join("c/y.png"))
            .unwrap();
        let mut s = FolderSource::open(
            d.path(),
            T,
            &classes(&["a", "b", "c"]),
            &OpenOptions::default(),
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![2, 2], "only class c present, still index 2");
        assert_eq!(
            c.pixels[0], 7,
            "sorted paths: c/deep/er/x.png before c/y.png"
        );
    }

    #[test]
    fn other_names_fall_back_to_sorted_order_and_images_are_converted() {
        let d = tempfile::tempdir().unwrap();
        for c in ["b", "a"] {
            fs::create_dir(d.path().join(c)).unwrap();
            RgbImage::from_pixel(8, 6, image::Rgb([255, 0, 0]))
                .save(d.path().join(c).join("x.jpg"))
                .unwrap();
        }
        let mut s = FolderSource::open(d.path(), T, &classes(&["0", "1"]), &OpenOptions::default())
            .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![0, 1]);
        assert_eq!(c.pixels.len(), 2 * 16, "resized to 4x4 gray");
        assert!(c.dims.is_empty());
        assert_eq!(
            s.info().class_names.as_ref().unwrap(),
            &classes(&["a", "b"])
        );
    }

    #[test]
    fn resize_shorter_side_then_crop_or_keep_for_rotation() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        RgbImage::from_pixel(12, 8, image::Rgb([9, 9, 9]))
            .save(d.path().join("a").join("x.png"))
            .unwrap();
        let resize = Some(crate::model::Resize::Shorter(6));
        // rotate-then-crop: the chunk keeps the 9x6 resized image (w x h).
        let opts = OpenOptions {
            resize,
            ..Default::default()
        };
        let mut s = FolderSource::open(d.path(), T, &classes(&["a"]), &opts).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.dims, vec![(6, 9)]);
        assert_eq!(c.pixels.len(), 6 * 9);
        // crop-then-rotate: cropped to the 4x4 target.
        let opts = OpenOptions {
            resize,
            crop_first: true,
            ..Default::default()
        };
        let mut s = FolderSource::open(d.path(), T, &classes(&["a"]), &opts).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert!(c.dims.is_empty());
        assert_eq!(c.pixels.len(), 16);
        // Too small after resizing.
        let opts = OpenOptions {
            resize: Some(crate::model::Resize::Exact([3, 3])),
            ..Default::default()
        };
        let mut s = FolderSource::open(d.path(), T, &classes(&["a"]), &opts).unwrap();
        assert!(format!("{:#}", s.next_chunk(10).unwrap_err()).contains("smaller than the model's"));
    }

    #[test]
    fn a_corrupt_image_fails_by_default_and_is_skipped_when_asked() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("0")).unwrap();
        GrayImage::from_pixel(4, 4, Luma([1]))
            .save(d.path().join("0").join("a.png"))
            .unwrap();
        fs::write(d.path().join("0").join("b.png"), b"not a png").unwrap();
        fs::write(d.path().join("0").join("c.png"), b"").unwrap();
        let mut s =
            FolderSource::open(d.path(), T, &classes(&["0"]), &OpenOptions::default()).unwrap();
        let err = format!("{:#}", s.next_chunk(10).unwrap_err());
        assert!(
            err.contains("b.png") && err.contains("--skip-bad-images"),
            "{err}"
        );
        let mut s = FolderSource::open(
            d.path(),
            T,
            &classes(&["0"]),
            &OpenOptions {
                skip_bad_images: true,
                ..Default::default()
            },
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.indices, vec![0]);
        assert_eq!(s.info().skipped.len(), 2);
        assert!(s.info().skipped[1].reason.contains("empty"));
    }

    #[test]
    fn a_folder_without_class_folders_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        GrayImage::from_pixel(4, 4, Luma([1]))
            .save(d.path().join("a.png"))
            .unwrap();
        let err = FolderSource::open(d.path(), T, &classes(&["0"]), &OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no class folders"), "{err}");
    }
}
