//! Image folders in torchvision's ImageFolder layout: `ROOT/<class>/<image>`.
//! PNG and JPEG, grayscale or colour; other files are ignored. Class indices
//! follow the model's class list when every folder name is in it, and otherwise
//! the sorted folder names (torchvision's order).

use super::{convert, display, Chunk, DatasetInfo, OpenOptions, SkippedFile, Source, Target};
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

const IMAGE_EXTS: [&str; 3] = ["png", "jpg", "jpeg"];

pub fn is_image_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| IMAGE_EXTS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str()))
}

pub struct FolderSource {
    info: DatasetInfo,
    files: Vec<(PathBuf, u32)>,
    target: Target,
    skip_bad: bool,
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

impl FolderSource {
    pub fn open(root: &Path, target: Target, model_classes: &[String], opts: &OpenOptions) -> Result<FolderSource> {
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if class_dirs.is_empty() {
            bail!(
                "--data {}: the image folder has no class folders; put images in one subfolder per class (ROOT/<class>/<image>.png)",
                root.display()
            );
        }
        let names: Vec<String> = class_dirs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        let by_model = names.iter().all(|n| model_classes.contains(n));
        let (index_of, order): (Vec<u32>, String) = if by_model {
            (
                names.iter().map(|n| model_classes.iter().position(|c| c == n).unwrap() as u32).collect(),
                "folder names matched to the model's class list".into(),
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
            ((0..names.len() as u32).collect(), "sorted folder names (torchvision ImageFolder order)".into())
        };
        let mut files = Vec::new();
        let mut hasher = Sha256::new();
        for (dir, &label) in class_dirs.iter().zip(&index_of) {
            for f in sorted_entries(dir)? {
                if f.is_file() && is_image_file(&f) {
                    files.push((f, label));
                }
            }
        }
        if files.is_empty() {
            bail!("--data {}: no PNG or JPEG images in its class folders", root.display());
        }
        for (f, _) in &files {
            let rel = f.strip_prefix(root).unwrap_or(f);
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            let bytes = fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        let total = files.len();
        let (start, end) = opts.select(total);
        files.truncate(end);
        let info = DatasetInfo {
            format: "image-folder".into(),
            path: display(root),
            len: end - start,
            start,
            total,
            sha256: crate::model::hex(&hasher.finalize()),
            class_names: Some(names),
            class_order: order,
            skipped: vec![],
        };
        Ok(FolderSource { info, files, target, skip_bad: opts.skip_bad_images, next: start })
    }
}

fn decode(path: &Path, target: Target) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    if bytes.is_empty() {
        bail!("{}: the image file is empty (0 bytes)", path.display());
    }
    let img = image::load_from_memory(&bytes).map_err(|e| anyhow!("{}: cannot decode the image: {e}", path.display()))?;
    Ok(convert(img, target))
}

impl Source for FolderSource {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if self.next >= self.files.len() {
            return Ok(None);
        }
        let end = (self.next + max).min(self.files.len());
        let target = self.target;
        let decoded: Vec<Result<Vec<u8>>> =
            self.files[self.next..end].par_iter().map(|(p, _)| decode(p, target)).collect();
        let mut chunk = Chunk::default();
        for (k, r) in decoded.into_iter().enumerate() {
            let i = self.next + k;
            match r {
                Ok(px) => {
                    chunk.indices.push(i as u64);
                    chunk.labels.push(self.files[i].1);
                    chunk.pixels.extend(px);
                }
                Err(e) if self.skip_bad => {
                    self.info.skipped.push(SkippedFile { path: display(&self.files[i].0), reason: e.to_string() });
                }
                Err(e) => return Err(e.context("a bad image stops the run; pass --skip-bad-images to skip and count such files")),
            }
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

    const T: Target = Target { channels: 1, height: 4, width: 4 };

    #[test]
    fn folders_named_like_the_model_classes_use_the_model_order() {
        let d = tempfile::tempdir().unwrap();
        for (c, v) in [("cat", 10u8), ("dog", 200u8)] {
            fs::create_dir(d.path().join(c)).unwrap();
            GrayImage::from_pixel(4, 4, Luma([v])).save(d.path().join(c).join("a.png")).unwrap();
        }
        fs::write(d.path().join("dog").join("notes.txt"), "ignored").unwrap();
        let mut s = FolderSource::open(d.path(), T, &classes(&["dog", "cat"]), &OpenOptions::default()).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![1, 0], "cat is class 1 in the model's list");
        assert_eq!(c.pixels[0], 10);
        assert_eq!(s.info().len, 2);
    }

    #[test]
    fn other_names_fall_back_to_sorted_order_and_images_are_converted() {
        let d = tempfile::tempdir().unwrap();
        for c in ["b", "a"] {
            fs::create_dir(d.path().join(c)).unwrap();
            RgbImage::from_pixel(8, 6, image::Rgb([255, 0, 0])).save(d.path().join(c).join("x.jpg")).unwrap();
        }
        let mut s = FolderSource::open(d.path(), T, &classes(&["0", "1"]), &OpenOptions::default()).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![0, 1]);
        assert_eq!(c.pixels.len(), 2 * 16, "resized to 4x4 gray");
        assert_eq!(s.info().class_names.as_ref().unwrap(), &classes(&["a", "b"]));
    }

    #[test]
    fn a_corrupt_image_fails_by_default_and_is_skipped_when_asked() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("0")).unwrap();
        GrayImage::from_pixel(4, 4, Luma([1])).save(d.path().join("0").join("a.png")).unwrap();
        fs::write(d.path().join("0").join("b.png"), b"not a png").unwrap();
        fs::write(d.path().join("0").join("c.png"), b"").unwrap();
        let mut s = FolderSource::open(d.path(), T, &classes(&["0"]), &OpenOptions::default()).unwrap();
        let err = format!("{:#}", s.next_chunk(10).unwrap_err());
        assert!(err.contains("b.png") && err.contains("--skip-bad-images"), "{err}");
        let mut s = FolderSource::open(d.path(), T, &classes(&["0"]), &OpenOptions { skip_bad_images: true, ..Default::default() }).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.indices, vec![0]);
        assert_eq!(s.info().skipped.len(), 2);
        assert!(s.info().skipped[1].reason.contains("empty"));
    }

    #[test]
    fn a_folder_without_class_folders_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        GrayImage::from_pixel(4, 4, Luma([1])).save(d.path().join("a.png")).unwrap();
        let err = FolderSource::open(d.path(), T, &classes(&["0"]), &OpenOptions::default()).err().unwrap().to_string();
        assert!(err.contains("no class folders"), "{err}");
    }
}
