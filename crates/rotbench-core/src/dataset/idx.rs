//! MNIST IDX files, raw or gzip: `*-images-idx3-ubyte[.gz]` with its
//! `*-labels-idx1-ubyte[.gz]`. The whole file is checked (size, counts) and
//! hashed before the sweep starts; then images stream in chunks.

use super::{display, Chunk, DatasetInfo, OpenOptions, Source, Target};
use anyhow::{anyhow, bail, Context, Result};
use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

fn is_images_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("images") && n.contains("idx3")
}

/// True for an IDX images file, or a folder that holds one.
pub fn looks_like_idx(path: &Path) -> bool {
    if path.is_file() {
        return path
            .file_name()
            .is_some_and(|n| is_images_name(&n.to_string_lossy()));
    }
    fs::read_dir(path)
        .map(|rd| {
            rd.flatten()
                .any(|e| is_images_name(&e.file_name().to_string_lossy()))
        })
        .unwrap_or(false)
}

/// Find the images and labels files for `path` (a folder or an images file).
pub fn find_files(path: &Path) -> Result<(PathBuf, PathBuf)> {
    let images = if path.is_file() {
        path.to_path_buf()
    } else {
        let mut found: Vec<PathBuf> = fs::read_dir(path)
            .with_context(|| format!("--data {}: cannot list the folder", path.display()))?
            .flatten()
            .filter(|e| is_images_name(&e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        found.sort();
        match found.len() {
            1 => found.remove(0),
            _ => bail!(
                "--data {}: the folder holds {} IDX image files ({}); point --data at the one images file to use",
                path.display(),
                found.len(),
                found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", ")
            ),
        }
    };
    let name = images.file_name().unwrap().to_string_lossy().into_owned();
    let dir = images.parent().unwrap_or(Path::new("."));
    let want = name.replace("images", "labels").replace("idx3", "idx1");
    let candidates = [
        want.clone(),
        want.trim_end_matches(".gz").to_string(),
        format!("{}.gz", want.trim_end_matches(".gz")),
    ];
    for c in &candidates {
        let p = dir.join(c);
        if p.is_file() {
            return Ok((images, p));
        }
    }
    bail!(
        "{}: no labels file beside it; expected {} (raw or .gz) in {}",
        images.display(),
        want.trim_end_matches(".gz"),
        dir.display()
    )
}

fn reader(path: &Path) -> Result<Box<dyn Read + Send>> {
    let mut f = fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    let f = fs::File::open(path)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(GzDecoder::new(BufReader::new(f)))))
    } else {
        Ok(Box::new(BufReader::new(f)))
    }
}

/// Read as much as possible into `buf`; returns the count (short only at EOF).
fn read_full(r: &mut dyn Read, buf: &mut [u8], path: &Path) -> Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => bail!("{}: read failed: {e} (a corrupt .gz?)", path.display()),
        }
    }
    Ok(got)
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The parsed header of an IDX images file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImagesHeader {
    pub count: usize,
    pub height: usize,
    pub width: usize,
}

pub fn parse_images_header(b: &[u8], path: &Path) -> Result<ImagesHeader> {
    if b.len() < 16 {
        bail!(
            "{}: truncated IDX images file: {} bytes, shorter than the 16-byte header",
            path.display(),
            b.len()
        );
    }
    let magic = be_u32(&b[0..4]);
    if magic != IMAGES_MAGIC {
        bail!(
            "{}: not an IDX images file (magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x}: unsigned bytes, 3 dimensions)",
            path.display()
        );
    }
    let h = ImagesHeader {
        count: be_u32(&b[4..8]) as usize,
        height: be_u32(&b[8..12]) as usize,
        width: be_u32(&b[12..16]) as usize,
    };
    if h.height == 0 || h.width == 0 || h.height > 8192 || h.width > 8192 {
        bail!(
            "{}: IDX header gives images of {}x{}; expected sizes between 1 and 8192",
            path.display(),
            h.height,
            h.width
        );
    }
    Ok(h)
}

/// Parse a whole IDX labels file.
pub fn parse_labels(b: &[u8], path: &Path) -> Result<Vec<u8>> {
    if b.len() < 8 {
        bail!(
            "{}: truncated IDX labels file: {} bytes, shorter than the 8-byte header",
            path.display(),
            b.len()
        );
    }
    let magic = be_u32(&b[0..4]);
    if magic != LABELS_MAGIC {
        bail!(
            "{}: not an IDX labels file (magic 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x})",
            path.display()
        );
    }
    let n = be_u32(&b[4..8]) as usize;
    let body = &b[8..];
    if body.len() != n {
        bail!(
            "{}: {} IDX labels file: the header promises {n} labels but the file holds {}",
            path.display(),
            if body.len() < n {
                "truncated"
            } else {
                "over-long"
            },
            body.len()
        );
    }
    Ok(body.to_vec())
}

/// Labels that index the model's classes (IDX and CIFAR records), resolved to
/// scored classes: one beyond the model's classes is an error naming its sample,
/// and so is one of an unscored class unless `--drop-unscored` drops it.
pub(crate) fn settle_indices(
    raw: &[u8],
    space: &super::LabelSpace,
    file: &Path,
    hint: &str,
) -> Result<(Vec<u32>, Option<super::Dropped>)> {
    let n = space.model_classes.len();
    let mut resolved = Vec::with_capacity(raw.len());
    for (i, &l) in raw.iter().enumerate() {
        match space.by_index(l as usize) {
            Some(r) => resolved.push(r),
            None => bail!(
                "{}: label {l} at sample {i} is outside the model's {n} classes (0..{}); the labels are class indices into the model's classes: check the data or the model's `classes`{hint}",
                file.display(),
                n.saturating_sub(1)
            ),
        }
    }
    space.settle(&resolved, &|i| raw[i].to_string(), &|i| {
        format!("{} sample {i}", file.display())
    })
}

pub struct IdxSource {
    info: DatasetInfo,
    images_path: PathBuf,
    header: ImagesHeader,
    /// Each sample's scored class ([`super::DROPPED`] for a dropped one).
    labels: Vec<u32>,
    target: Target,
    opts: OpenOptions,
    reader: Option<Box<dyn Read + Send>>,
    /// The image the reader is at (it reads forward only).
    at: usize,
    /// The dataset positions to stream (increasing), and how many are done.
    positions: Vec<usize>,
    next: usize,
}

impl IdxSource {
    pub fn open(
        path: &Path,
        target: Target,
        space: &super::LabelSpace,
        opts: &OpenOptions,
    ) -> Result<IdxSource> {
        let (images_path, labels_path) = find_files(path)?;
        let mut lab_bytes = Vec::new();
        reader(&labels_path)?
            .read_to_end(&mut lab_bytes)
            .map_err(|e| {
                anyhow!(
                    "{}: read failed: {e} (a corrupt .gz?)",
                    labels_path.display()
                )
            })?;
        let labels = parse_labels(&lab_bytes, &labels_path)?;

        // One pass over the images: header, exact size, hash.
        let mut r = reader(&images_path)?;
        let mut head = [0u8; 16];
        let got = read_full(&mut *r, &mut head, &images_path)?;
        let header = parse_images_header(&head[..got], &images_path)?;
        let mut hasher = Sha256::new();
        hasher.update(head);
        let mut body = 0usize;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = read_full(&mut *r, &mut buf, &images_path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            body += n;
        }
        let want = header.count * header.height * header.width;
        if body != want {
            bail!(
                "{}: {} IDX images file: the header promises {} images of {}x{} ({} bytes) but the file holds {body} bytes",
                images_path.display(),
                if body < want { "truncated" } else { "over-long" },
                header.count,
                header.height,
                header.width,
                want
            );
        }
        if labels.len() != header.count {
            bail!(
                "{} holds {} images but {} holds {} labels; the counts must agree",
                images_path.display(),
                header.count,
                labels_path.display(),
                labels.len()
            );
        }
        if header.count == 0 {
            bail!("--data {}: the dataset is empty (0 images)", path.display());
        }
        let (labels, dropped) = settle_indices(&labels, space, &labels_path, "")?;
        let sel = opts.selection(&labels);
        hasher.update(&lab_bytes);
        let info = DatasetInfo {
            format: "idx".into(),
            path: display(path),
            len: sel.positions.len(),
            start: sel.start,
            selected: sel.selected,
            total: header.count,
            sha256: crate::hash::hex(&hasher.finalize()),
            class_names: None,
            class_order: "IDX labels are class indices into the model's classes".into(),
            labelled: true,
            class_map: vec![],
            skipped: vec![],
            ignored: vec![],
            dropped,
            warnings: vec![],
            sources: super::Sources::records(&images_path),
        };
        Ok(IdxSource {
            info,
            images_path,
            header,
            labels,
            target,
            opts: opts.clone(),
            reader: None,
            at: 0,
            positions: sel.positions,
            next: 0,
        })
    }
}

impl Source for IdxSource {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if self.next >= self.positions.len() {
            return Ok(None);
        }
        if self.reader.is_none() {
            let mut r = reader(&self.images_path)?;
            let mut head = [0u8; 16];
            read_full(&mut *r, &mut head, &self.images_path)?;
            self.reader = Some(r);
            self.at = 0;
        }
        let n = max.min(self.positions.len() - self.next);
        let (h, w) = (self.header.height, self.header.width);
        let mut raw = vec![0u8; n * h * w];
        // Read forward: skip to each run of consecutive positions, read the run.
        let chunk_positions = &self.positions[self.next..self.next + n];
        let r = self.reader.as_mut().unwrap().as_mut();
        let short = || {
            anyhow!(
                "{}: the file changed while it was read (short read)",
                self.images_path.display()
            )
        };
        let mut k = 0;
        while k < n {
            let first = chunk_positions[k];
            let mut run = 1;
            while k + run < n && chunk_positions[k + run] == first + run {
                run += 1;
            }
            let skip = ((first - self.at) * h * w) as u64;
            if skip > 0 {
                let skipped = std::io::copy(&mut (&mut *r).take(skip), &mut std::io::sink())
                    .with_context(|| format!("{}: cannot read", self.images_path.display()))?;
                if skipped != skip {
                    return Err(short());
                }
            }
            let dst = &mut raw[k * h * w..(k + run) * h * w];
            if read_full(r, dst, &self.images_path)? != dst.len() {
                return Err(short());
            }
            self.at = first + run;
            k += run;
        }
        let t = self.target;
        let native = super::is_native(h, w, t, &self.opts);
        let mut pixels = Vec::with_capacity(n * t.pixels());
        let mut dims = Vec::new();
        for i in 0..n {
            let plane = &raw[i * h * w..(i + 1) * h * w];
            let (plane, ph, pw) = if native {
                (plane.to_vec(), h, w)
            } else {
                let grey = super::Planes {
                    channels: 1,
                    height: h,
                    width: w,
                    data: plane.to_vec(),
                };
                super::convert(grey, Target { channels: 1, ..t }, &self.opts).map_err(|e| {
                    anyhow!(
                        "{}: image {} {e}",
                        self.images_path.display(),
                        chunk_positions[i]
                    )
                })?
            };
            if (ph, pw) != (t.height, t.width) || !dims.is_empty() {
                if dims.is_empty() {
                    dims.resize(i, (t.height, t.width));
                }
                dims.push((ph, pw));
            }
            if t.channels == 1 {
                pixels.extend_from_slice(&plane);
            } else {
                pixels.extend(super::replicate_gray(&plane, t.channels));
            }
        }
        let chunk = Chunk {
            indices: chunk_positions.iter().map(|&p| p as u64).collect(),
            labels: chunk_positions.iter().map(|&p| self.labels[p]).collect(),
            pixels,
            dims,
        };
        self.next += n;
        Ok(Some(chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images_file(n: u32, h: u32, w: u32, body: usize) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [IMAGES_MAGIC, n, h, w] {
            b.extend_from_slice(&v.to_be_bytes());
        }
        b.extend((0..body).map(|i| (i % 251) as u8));
        b
    }

    fn labels_file(labels: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        b.extend_from_slice(labels);
        b
    }

    /// The error from opening a set written with `write_set`.
    fn open_err(images: &[u8], labels: &[u8], gz: bool) -> String {
        let d = tempfile::tempdir().unwrap();
        write_set(d.path(), images, labels, gz);
        IdxSource::open(
            d.path(),
            T,
            &crate::dataset::labels::numbered(3),
            &OpenOptions::default(),
        )
        .err()
        .unwrap()
        .to_string()
    }

    fn write_set(dir: &Path, images: &[u8], labels: &[u8], gz: bool) {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let put = |name: &str, bytes: &[u8]| {
            if gz {
                let mut e = GzEncoder::new(
                    fs::File::create(dir.join(format!("{name}.gz"))).unwrap(),
                    Compression::fast(),
                );
                e.write_all(bytes).unwrap();
                e.finish().unwrap();
            } else {
                fs::write(dir.join(name), bytes).unwrap();
            }
        };
        put("t-images-idx3-ubyte", images);
        put("t-labels-idx1-ubyte", labels);
    }

    const T: Target = Target {
        channels: 1,
        height: 2,
        width: 3,
    };

    #[test]
    fn a_good_file_streams_in_chunks_raw_and_gz() {
        for gz in [false, true] {
            let d = tempfile::tempdir().unwrap();
            write_set(
                d.path(),
                &images_file(5, 2, 3, 30),
                &labels_file(&[0, 1, 2, 1, 0]),
                gz,
            );
            let mut s = IdxSource::open(
                d.path(),
                T,
                &crate::dataset::labels::numbered(3),
                &OpenOptions::default(),
            )
            .unwrap();
            assert_eq!(s.info().len, 5);
            let a = s.next_chunk(2).unwrap().unwrap();
            assert_eq!(a.labels, vec![0, 1]);
            assert_eq!(a.pixels, (0..12).collect::<Vec<u8>>());
            let b = s.next_chunk(10).unwrap().unwrap();
            assert_eq!(b.indices, vec![2, 3, 4]);
            assert_eq!(b.pixels[0], 12);
            assert!(s.next_chunk(10).unwrap().is_none());
        }
    }

    #[test]
    fn the_hash_ignores_compression() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_set(
            a.path(),
            &images_file(2, 2, 3, 12),
            &labels_file(&[0, 1]),
            false,
        );
        write_set(
            b.path(),
            &images_file(2, 2, 3, 12),
            &labels_file(&[0, 1]),
            true,
        );
        let ha = IdxSource::open(
            a.path(),
            T,
            &crate::dataset::labels::numbered(2),
            &OpenOptions::default(),
        )
        .unwrap()
        .info
        .sha256;
        let hb = IdxSource::open(
            b.path(),
            T,
            &crate::dataset::labels::numbered(2),
            &OpenOptions::default(),
        )
        .unwrap()
        .info
        .sha256;
        assert_eq!(ha, hb);
    }

    #[test]
    fn a_truncated_images_file_is_refused() {
        let err = open_err(&images_file(5, 2, 3, 29), &labels_file(&[0; 5]), false);
        assert!(
            err.contains("truncated IDX images file") && err.contains("29 bytes"),
            "{err}"
        );
        // Truncated inside the header.
        let err = open_err(&images_file(5, 2, 3, 0)[..10], &labels_file(&[0; 5]), true);
        assert!(err.contains("shorter than the 16-byte header"), "{err}");
    }

    #[test]
    fn a_truncated_labels_file_and_disagreeing_counts_are_refused() {
        let mut lab = labels_file(&[0; 5]);
        lab.pop();
        let err = open_err(&images_file(5, 2, 3, 30), &lab, false);
        assert!(err.contains("truncated IDX labels file"), "{err}");
        let err = open_err(&images_file(5, 2, 3, 30), &labels_file(&[0; 4]), false);
        assert!(
            err.contains("holds 5 images but") && err.contains("4 labels"),
            "{err}"
        );
    }

    #[test]
    fn a_label_outside_the_classes_is_refused() {
        let err = open_err(&images_file(3, 2, 3, 18), &labels_file(&[0, 7, 1]), false);
        assert!(err.contains("label 7 at sample 1"), "{err}");
    }

    #[test]
    fn wrong_magic_is_named() {
        let mut img = images_file(1, 2, 3, 6);
        img[3] = 0x01;
        let err = open_err(&img, &labels_file(&[0]), false);
        assert!(err.contains("not an IDX images file"), "{err}");
    }

    #[test]
    fn limit_and_resize_and_rgb() {
        let d = tempfile::tempdir().unwrap();
        write_set(
            d.path(),
            &images_file(4, 2, 3, 24),
            &labels_file(&[0, 1, 0, 1]),
            false,
        );
        let t = Target {
            channels: 3,
            height: 4,
            width: 6,
        };
        let mut s = IdxSource::open(
            d.path(),
            t,
            &crate::dataset::labels::numbered(2),
            &OpenOptions {
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.info().len, 3);
        assert_eq!(s.info().total, 4);
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c.pixels.len(), 3 * 3 * 4 * 6);
        assert_eq!(
            &c.pixels[0..24],
            &c.pixels[24..48],
            "gray replicated to RGB"
        );
    }
}
