//! Image files with labels: torchvision's ImageFolder layout `ROOT/<class>/...`
//! (nested subfolders allowed), or a list from a CSV manifest. The files are the
//! ones `ImageFolder` takes, in its order: the extensions of torchvision's
//! `IMG_EXTENSIONS`, folders walked as `sorted(os.walk(...))` walks them, so a
//! sample's index means the same image in both tools. Other files, files outside
//! the class folders, and hidden files and folders (`.ipynb_checkpoints`, macOS
//! `._x.png`, `__MACOSX`), which rotbench leaves out on purpose, are listed
//! under `ignored` with the reason.
//! For folders, class indices follow the model's class list when every folder
//! name is in it (so a subset of classes keeps its indices), the sorted folder
//! names (torchvision's order) when none is, and a mix is an error naming the
//! folders that are not classes; `--class-folders` chooses either order on purpose.

use super::{
    convert, display, Chunk, ClassFolder, ClassFolders, DatasetInfo, Dropped, LabelSpace,
    OpenOptions, Resolved, SkippedFile, Source, Target,
};
use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// torchvision's `IMG_EXTENSIONS`: the files `ImageFolder` reads (matched
/// ignoring case, as it lowercases the name).
pub const IMG_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

/// The extensions as a reader sees them: `.jpg .jpeg ...`.
pub fn extensions() -> String {
    IMG_EXTENSIONS.map(|e| format!(".{e}")).join(" ")
}

const NOT_AN_IMAGE: &str =
    "not a file torchvision's ImageFolder reads (its extension is not in IMG_EXTENSIONS)";
const NOT_IN_A_CLASS: &str = "not in a class folder (ImageFolder reads only ROOT/<class>/...)";
const HIDDEN: &str =
    "hidden or __MACOSX: rotbench leaves these out (ImageFolder would read the images among them)";

pub fn is_image_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| {
        IMG_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
    })
}

/// A list of labelled image files, decoded in parallel chunk by chunk.
pub struct FilesSource {
    pub(crate) info: DatasetInfo,
    files: Vec<(PathBuf, u32)>,
    target: Target,
    opts: OpenOptions,
    /// The dataset positions to stream, and how many are done.
    positions: Vec<usize>,
    next: usize,
}

/// Hidden entries (`.ipynb_checkpoints`, `.DS_Store`, macOS `._x.png`) and the
/// `__MACOSX` folder that zip tools add: never data.
fn is_ignored(p: &Path) -> bool {
    p.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with('.') || n == "__MACOSX"
    })
}

/// The entries of `dir` that are not ignored, sorted; the ignored ones go to `hidden`.
fn sorted_entries(dir: &Path, hidden: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir)
        .with_context(|| format!("--data {}: cannot list the folder", dir.display()))?
        .flatten()
    {
        let p = e.path();
        if is_ignored(&p) {
            hidden.push(p);
        } else {
            v.push(p);
        }
    }
    v.sort_by(|a, b| by_name(a, b));
    Ok(v)
}

/// Order paths as Python orders their strings (code point order, which is byte
/// order for UTF-8), not component by component as `Path`'s `Ord` does.
fn by_name(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.as_os_str()
        .as_encoded_bytes()
        .cmp(b.as_os_str().as_encoded_bytes())
}

/// What lies under one class folder.
#[derive(Default)]
struct Walk {
    /// Image files, in torchvision's order.
    images: Vec<PathBuf>,
    /// Files whose extension `ImageFolder` does not read.
    other: Vec<PathBuf>,
    /// Hidden entries and `__MACOSX`, left out.
    hidden: Vec<PathBuf>,
}

/// Every file under `dir` in the order torchvision's `make_dataset` takes them:
/// `for root, _, names in sorted(os.walk(dir, followlinks=True))`, then
/// `sorted(names)`. Folders come in the string order of their whole path, so
/// `cat/x.png` comes before `cat/sub/c.png`, and `cat/sub-x` before `cat/sub/deeper`.
fn walk(dir: &Path) -> Result<Walk> {
    let mut out = Walk::default();
    // Each folder with its files, in the order found; every folder is listed once.
    let mut folders: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Symbolic links are followed, as `followlinks=True` does, but a folder is
    // walked once (a link to a parent would otherwise loop forever).
    let mut seen: std::collections::HashSet<PathBuf> = fs::canonicalize(dir).into_iter().collect();
    while let Some(folder) = pending.pop() {
        let mut files = Vec::new();
        for p in sorted_entries(&folder, &mut out.hidden)? {
            if !p.is_dir() {
                files.push(p);
            } else if fs::canonicalize(&p).is_ok_and(|c| seen.insert(c)) {
                pending.push(p);
            }
        }
        folders.push((folder, files));
    }
    folders.sort_by(|a, b| by_name(&a.0, &b.0));
    for p in folders.into_iter().flat_map(|(_, files)| files) {
        if is_image_file(&p) {
            out.images.push(p);
        } else {
            out.other.push(p);
        }
    }
    Ok(out)
}

impl FilesSource {
    /// Hash paths (relative to `root`) and bytes, apply limit/shard, and build the source.
    pub fn new(
        format: &str,
        root: &Path,
        files: Vec<(PathBuf, u32)>,
        class_names: Option<Vec<String>>,
        class_order: String,
        target: Target,
        opts: &OpenOptions,
    ) -> Result<FilesSource> {
        if files.is_empty() {
            bail!(
                "--data {}: no image files found (torchvision's extensions: {})",
                root.display(),
                extensions()
            );
        }
        let mut hasher = Sha256::new();
        let mut names = Vec::with_capacity(files.len());
        for (f, label) in &files {
            let rel = f.strip_prefix(root).unwrap_or(f);
            names.push(display(rel));
            hasher.update(rel.to_string_lossy().as_bytes());
            hasher.update([0]);
            hasher.update(label.to_le_bytes());
            let bytes = fs::read(f).with_context(|| format!("{}: cannot read", f.display()))?;
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        let total = files.len();
        let labels: Vec<u32> = files.iter().map(|f| f.1).collect();
        let sel = opts.selection(&labels);
        let info = DatasetInfo {
            format: format.into(),
            path: display(root),
            len: sel.positions.len(),
            start: sel.start,
            selected: sel.selected,
            total,
            sha256: crate::hash::hex(&hasher.finalize()),
            class_names,
            class_order,
            labelled: true,
            class_map: vec![],
            skipped: vec![],
            ignored: vec![],
            dropped: None,
            warnings: vec![],
            sources: super::Sources::Files(names),
        };
        Ok(FilesSource {
            info,
            files,
            target,
            opts: opts.clone(),
            positions: sel.positions,
            next: 0,
        })
    }
}

pub struct FolderSource;

/// Up to five names, backquoted, then how many more.
fn some(names: &[&String]) -> String {
    let mut s: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    if names.len() > 5 {
        s.push(format!("and {} more", names.len() - 5));
    }
    s.join(", ")
}

/// "the folder `a` is" or "the folders `a`, `b` are".
fn folders_are(names: &[&String]) -> String {
    match names {
        [one] => format!("the folder `{one}` is"),
        _ => format!("the folders {} are", some(names)),
    }
}

/// How an image folder's class folders became classes.
#[derive(Debug, Clone, Default)]
pub struct FolderClasses {
    /// The class folders whose images are read, sorted.
    pub dirs: Vec<PathBuf>,
    /// Each of `dirs` and its scored class.
    pub map: Vec<ClassFolder>,
    /// How the classes were assigned (summary.json's `class_order`).
    pub order: String,
    /// What the user should know (sorted folders named unlike their classes).
    pub warnings: Vec<String>,
    /// Folders of model classes that are not scored, left out with
    /// `--drop-unscored`: (folder, model class).
    pub unscored: Vec<(PathBuf, usize)>,
}

/// The class folders of the image folder `root` (sorted; hidden ones and
/// `__MACOSX` ignored) and the scored class of each, by the first rule that
/// applies:
/// - `--class-folder-map FILE`: its `folder,class` lines (every folder listed);
/// - `--class-folders names|indices|sorted`: as asked;
/// - every folder names a class (scored or the model's): by name;
/// - every folder name is a number: an index into the model's classes (so a
///   missing folder shifts nothing), unless a number is also a class's name at
///   another index, which is ambiguous and refused;
/// - otherwise an error naming the folders that are no class, with the fixes.
pub fn class_map(
    root: &Path,
    space: &LabelSpace,
    mode: Option<ClassFolders>,
    folder_map: Option<&(PathBuf, Vec<(String, String)>)>,
) -> Result<FolderClasses> {
    let class_dirs: Vec<PathBuf> = sorted_entries(root, &mut Vec::new())?
        .into_iter()
        .filter(|p| p.is_dir())
        .collect();
    if class_dirs.is_empty() {
        bail!(
            "--data {}: the image folder has no class folders; put images in one subfolder per class (ROOT/<class>/<image>.png){}",
            root.display(),
            if is_flat(root) {
                " (a folder of images without labels is read only under --protocol imagenet-p-rotate, whose figures compare predictions with each other)"
            } else {
                ""
            }
        );
    }
    let names: Vec<String> = class_dirs
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let data = root.display();
    let by_number = |n: &str| n.parse::<usize>().ok().and_then(|i| space.by_index(i));
    let mut warnings = Vec::new();
    let (resolved, order): (Vec<Resolved>, String) = if let Some((file, lines)) = folder_map {
        by_folder_map(file, lines, &names, space, root)?
    } else {
        let all_names: Option<Vec<Resolved>> = names.iter().map(|n| space.by_name(n)).collect();
        let all_numbers: Option<Vec<Resolved>> = names.iter().map(|n| by_number(n)).collect();
        match mode {
            Some(ClassFolders::Sorted) => sorted_folders(&names, space, root, &mut warnings)?,
            Some(ClassFolders::Names) => match all_names {
                Some(r) => (
                    r,
                    "folder names are class names (--class-folders names)".into(),
                ),
                None => bail!(
                    "{}",
                    not_classes(root, &names, space, "--class-folders names, but")
                ),
            },
            Some(ClassFolders::Indices) => match all_numbers {
                Some(r) => (
                    r,
                    "folder names are indices into the model's classes (--class-folders indices)"
                        .into(),
                ),
                None => {
                    let bad: Vec<&String> =
                        names.iter().filter(|n| by_number(n).is_none()).collect();
                    bail!(
                        "--data {data}: --class-folders indices, but {} not a class index (0..{})",
                        folders_are(&bad),
                        space.model_classes.len().saturating_sub(1)
                    )
                }
            },
            None => match (all_names, all_numbers) {
                (Some(r), _) => (r, "folder names are class names".into()),
                (None, Some(r)) => {
                    if let Some((n, by_name)) = names
                        .iter()
                        .zip(&r)
                        .find_map(|(n, r)| space.by_name(n).filter(|b| b != r).map(|b| (n, b)))
                    {
                        bail!(
                            "--data {data}: the folder `{n}` is ambiguous: it is a class name ({}) and a class index ({}); say which with --class-folders names or --class-folders indices",
                            name_of(space, by_name),
                            name_of(space, r[names.iter().position(|x| x == n).unwrap_or(0)])
                        );
                    }
                    (
                        r,
                        "numeric folder names are indices into the model's classes".into(),
                    )
                }
                (None, None) => bail!("{}", not_classes(root, &names, space, "")),
            },
        }
    };
    let mut out = FolderClasses {
        order,
        warnings,
        ..Default::default()
    };
    for ((dir, folder), r) in class_dirs.into_iter().zip(names).zip(resolved) {
        match r {
            Resolved::Class(index) => {
                out.dirs.push(dir);
                out.map.push(ClassFolder { folder, index });
            }
            Resolved::Unscored(m) if space.drop_unscored => out.unscored.push((dir, m)),
            Resolved::Unscored(m) => bail!(
                "--data {data}: the folder `{folder}` holds model class `{}`, which is not scored (rotbench scores {}); to leave its images out, pass --drop-unscored (they are counted in summary.json)",
                space.model_classes[m],
                space.describe()
            ),
        }
    }
    if out.dirs.is_empty() {
        bail!(
            "--drop-unscored: every class folder of --data {data} holds a class that is not scored; check the data against {}",
            space.describe()
        );
    }
    Ok(out)
}

/// `--class-folder-map FILE`: each folder's class from its `folder,class` line
/// (every folder must be listed).
fn by_folder_map(
    file: &Path,
    lines: &[(String, String)],
    names: &[String],
    space: &LabelSpace,
    root: &Path,
) -> Result<(Vec<Resolved>, String)> {
    let data = root.display();
    let by_number = |n: &str| n.parse::<usize>().ok().and_then(|i| space.by_index(i));
    let mut out = Vec::new();
    let mut unlisted = Vec::new();
    for n in names {
        match lines.iter().find(|(f, _)| f == n) {
            None => unlisted.push(n),
            Some((_, class)) => match space.by_name(class).or_else(|| by_number(class)) {
                Some(r) => out.push(r),
                None => bail!(
                    "--class-folder-map {}: folder `{n}` maps to `{class}`, which names none of {} (nor indexes the model's classes)",
                    file.display(),
                    space.describe()
                ),
            },
        }
    }
    if !unlisted.is_empty() {
        bail!(
            "--class-folder-map {}: {} of --data {data} not in the map; add a `folder,class` line for each",
            file.display(),
            folders_are(&unlisted)
        );
    }
    Ok((out, format!("--class-folder-map {}", file.display())))
}

/// `--class-folders sorted`: folder i (in sorted order) is class i, as
/// torchvision's ImageFolder numbers them; a warning lists the folders named
/// unlike their class.
fn sorted_folders(
    names: &[String],
    space: &LabelSpace,
    root: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Resolved>, String)> {
    let data = root.display();
    if names.len() > space.classes.len() {
        bail!(
            "--data {data}: {} class folders but {} scored classes, and --class-folders sorted numbers the folders in sorted order; remove the folders that are not classes, or map them with --class-folder-map FILE",
            names.len(),
            space.classes.len()
        );
    }
    let pairs: Vec<String> = names
        .iter()
        .zip(&space.classes)
        .filter(|(f, c)| f != c)
        .map(|(f, c)| format!("`{f}` → {c}"))
        .collect();
    if !pairs.is_empty() {
        warnings.push(format!(
            "--class-folders sorted: the folders of --data {data} are numbered in sorted name order, as torchvision's ImageFolder does, and folder i gets class i of {}; {} of {} folders are named unlike their class: {}{}. This is right only if the model was trained on this very folder layout; otherwise map them with --class-folder-map FILE",
            space.describe(),
            pairs.len(),
            names.len(),
            pairs.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if pairs.len() > 5 { ", ..." } else { "" }
        ));
    }
    Ok((
        (0..names.len() as u32).map(Resolved::Class).collect(),
        "sorted folder names (torchvision ImageFolder order), asked for with --class-folders sorted".into(),
    ))
}

/// A resolved class, named for messages.
fn name_of(space: &LabelSpace, r: Resolved) -> String {
    match r {
        Resolved::Class(c) => format!("`{}`", space.classes[c as usize]),
        Resolved::Unscored(m) => format!("model class `{}`", space.model_classes[m]),
    }
}

/// Letters and digits only, lowercased: `T-shirt_top` and `T-shirt/top` agree.
fn loose(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The error for folders that are neither class names nor class indices: which
/// ones, and the ways to say what they are.
fn not_classes(root: &Path, names: &[String], space: &LabelSpace, lead: &str) -> String {
    let others: Vec<&String> = names
        .iter()
        .filter(|n| space.by_name(n).is_none())
        .collect();
    let matching: Vec<&String> = names
        .iter()
        .filter(|n| space.by_name(n).is_some())
        .collect();
    let all = space.classes.iter().chain(&space.model_classes);
    let suggestions: Vec<String> = others
        .iter()
        .filter_map(|f| {
            let mut near: Vec<&String> = all.clone().filter(|c| loose(c) == loose(f)).collect();
            near.dedup();
            (near.len() == 1).then(|| format!("{f},{}", near[0]))
        })
        .collect();
    let slashed: Vec<&String> = space.classes.iter().filter(|c| c.contains('/')).collect();
    let mut msg = format!(
        "--data {}: {lead}{} not among the class names{}, so rotbench cannot tell which class their images are",
        root.display(),
        folders_are(&others),
        if matching.is_empty() {
            String::new()
        } else {
            format!(" (while {} are)", some(&matching))
        }
    );
    msg.push_str("; say it with --class-folder-map FILE, a file of `folder,class` lines");
    if !suggestions.is_empty() {
        msg.push_str(&format!(
            " (here perhaps {})",
            suggestions
                .iter()
                .take(5)
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    msg.push_str(", or give the class list the folders follow with --classes FILE");
    if !slashed.is_empty() {
        msg.push_str(&format!(
            ". A class name holding `/` ({}) cannot be a folder name, since `/` separates the folders of a path: map such folders with --class-folder-map",
            some(&slashed)
        ));
    }
    msg.push_str(". --class-folders sorted numbers the folders in sorted name order as torchvision's ImageFolder does: right only when the model was trained on this very folder layout");
    msg
}

/// Whether `root` is a folder of images without class folders: image files
/// directly in it, and no folder beside them (hidden ones aside).
pub fn is_flat(root: &Path) -> bool {
    match sorted_entries(root, &mut Vec::new()) {
        Ok(entries) => {
            !entries.iter().any(|p| p.is_dir()) && entries.iter().any(|p| is_image_file(p))
        }
        Err(_) => false,
    }
}

/// How an unlabelled folder's samples are described in summary.json.
pub const UNLABELLED_ORDER: &str = "none: a folder of images without class folders carries no labels; only figures that compare a model's predictions with each other are computed";

impl FolderSource {
    /// A folder of images without class folders, read without labels
    /// ([`OpenOptions::unlabelled`]): its image files in name order, each with
    /// the placeholder [`UNLABELLED`](super::UNLABELLED).
    fn open_unlabelled(root: &Path, target: Target, opts: &OpenOptions) -> Result<FilesSource> {
        let mut hidden = Vec::new();
        let entries = sorted_entries(root, &mut hidden)?;
        let (images, other): (Vec<PathBuf>, Vec<PathBuf>) =
            entries.into_iter().partition(|p| is_image_file(p));
        let rel = |p: &Path| display(p.strip_prefix(root).unwrap_or(p));
        let mut ignored: Vec<SkippedFile> = other
            .iter()
            .map(|p| (p, NOT_AN_IMAGE))
            .chain(hidden.iter().map(|p| (p, HIDDEN)))
            .map(|(p, reason)| SkippedFile {
                path: rel(p),
                reason: reason.into(),
            })
            .collect();
        ignored.sort_by(|a, b| a.path.cmp(&b.path));
        let files = images.into_iter().map(|f| (f, super::UNLABELLED)).collect();
        let mut source = FilesSource::new(
            "image-folder-unlabelled",
            root,
            files,
            None,
            UNLABELLED_ORDER.into(),
            target,
            opts,
        )?;
        source.info.labelled = false;
        source.info.ignored = ignored;
        Ok(source)
    }

    #[allow(clippy::new_ret_no_self)]
    pub fn open(
        root: &Path,
        target: Target,
        space: &LabelSpace,
        opts: &OpenOptions,
    ) -> Result<FilesSource> {
        if opts.unlabelled {
            return Self::open_unlabelled(root, target, opts);
        }
        let classes = class_map(root, space, opts.class_folders, opts.folder_map.as_ref())?;
        let (class_dirs, map) = (&classes.dirs, &classes.map);
        let rel = |p: &Path| display(p.strip_prefix(root).unwrap_or(p));
        let mut ignored = Vec::new();
        let mut note = |paths: &[PathBuf], reason: &str| {
            ignored.extend(paths.iter().map(|p| SkippedFile {
                path: rel(p),
                reason: reason.into(),
            }))
        };
        let mut hidden = Vec::new();
        let loose: Vec<PathBuf> = sorted_entries(root, &mut hidden)?
            .into_iter()
            .filter(|p| !p.is_dir())
            .collect();
        note(&loose, NOT_IN_A_CLASS);
        note(&hidden, HIDDEN);
        let mut files = Vec::new();
        for (dir, c) in class_dirs.iter().zip(map) {
            let found = walk(dir)?;
            note(&found.other, NOT_AN_IMAGE);
            note(&found.hidden, HIDDEN);
            files.extend(found.images.into_iter().map(|f| (f, c.index)));
        }
        // Folders of unscored classes (--drop-unscored): counted, not read.
        let mut dropped = Dropped::default();
        for (dir, m) in &classes.unscored {
            let n = walk(dir)?.images.len();
            dropped.samples += n;
            *dropped
                .by_class
                .entry(space.model_classes[*m].clone())
                .or_default() += n;
        }
        let dropped = (dropped.samples > 0).then(|| Dropped {
            reason: format!(
                "--drop-unscored: their class folders hold classes not among {}",
                space.describe()
            ),
            ..dropped
        });
        ignored.sort_by(|a, b| a.path.cmp(&b.path));
        if files.is_empty() {
            bail!(
                "--data {}: no image files in its class folders (torchvision's extensions: {})",
                root.display(),
                extensions()
            );
        }
        let names = map.iter().map(|c| c.folder.clone()).collect();
        let mut source = FilesSource::new(
            "image-folder",
            root,
            files,
            Some(names),
            classes.order.clone(),
            target,
            opts,
        )?;
        source.info.class_map = classes.map;
        source.info.ignored = ignored;
        source.info.dropped = dropped;
        source.info.warnings = classes.warnings;
        Ok(source)
    }
}

fn decode(path: &Path, target: Target, opts: &OpenOptions) -> Result<(Vec<u8>, usize, usize)> {
    let bytes = fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let (planes, _) =
        super::decode::decode(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    convert(planes, target, opts).map_err(|e| anyhow!("{}: {e}", path.display()))
}

impl Source for FilesSource {
    fn info(&self) -> &DatasetInfo {
        &self.info
    }

    fn next_chunk(&mut self, max: usize) -> Result<Option<Chunk>> {
        if self.next >= self.positions.len() {
            return Ok(None);
        }
        let end = (self.next + max).min(self.positions.len());
        let (target, opts) = (self.target, &self.opts);
        let files = &self.files;
        let decoded: Vec<Result<(Vec<u8>, usize, usize)>> = self.positions[self.next..end]
            .par_iter()
            .map(|&i| decode(&files[i].0, target, opts))
            .collect();
        let mut chunk = Chunk::default();
        let mut dims = Vec::new();
        let mut varied = false;
        for (k, r) in decoded.into_iter().enumerate() {
            let i = self.positions[self.next + k];
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
            &LabelSpace::plain(&classes(&["dog", "cat"])),
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
            &LabelSpace::plain(&classes(&["a", "b", "c"])),
            &OpenOptions::default(),
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![2, 2], "only class c present, still index 2");
        assert_eq!(
            c.pixels[0], 8,
            "ImageFolder's order: a folder's own files (c/y.png) before its subfolders' (c/deep/er/x.png)"
        );
    }

    #[test]
    fn other_names_are_refused_unless_sorted_is_asked_for_which_warns_and_converts_images() {
        let d = tempfile::tempdir().unwrap();
        for c in ["b", "a"] {
            fs::create_dir(d.path().join(c)).unwrap();
            RgbImage::from_pixel(8, 6, image::Rgb([255, 0, 0]))
                .save(d.path().join(c).join("x.jpg"))
                .unwrap();
        }
        let space = LabelSpace::plain(&classes(&["0", "1"]));
        let err = FolderSource::open(d.path(), T, &space, &OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--class-folder-map") && err.contains("--classes"),
            "{err}"
        );
        let sorted = OpenOptions {
            class_folders: Some(ClassFolders::Sorted),
            ..Default::default()
        };
        let mut s = FolderSource::open(d.path(), T, &space, &sorted).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![0, 1]);
        assert_eq!(c.pixels.len(), 2 * 16, "resized to 4x4 gray");
        assert!(c.dims.is_empty());
        assert_eq!(
            s.info().class_names.as_ref().unwrap(),
            &classes(&["a", "b"])
        );
        let w = &s.info().warnings;
        assert!(w.len() == 1 && w[0].contains("`a` → 0, `b` → 1"), "{w:?}");
    }

    #[test]
    fn resize_shorter_side_then_crop_or_keep_for_rotation() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        RgbImage::from_pixel(12, 8, image::Rgb([9, 9, 9]))
            .save(d.path().join("a").join("x.png"))
            .unwrap();
        let resize = Some(crate::spec::Resize::Shorter(6));
        // rotate-then-crop: the chunk keeps the 9x6 resized image (w x h).
        let opts = OpenOptions {
            resize,
            ..Default::default()
        };
        let mut s =
            FolderSource::open(d.path(), T, &LabelSpace::plain(&classes(&["a"])), &opts).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.dims, vec![(6, 9)]);
        assert_eq!(c.pixels.len(), 6 * 9);
        // crop-then-rotate: cropped to the 4x4 target.
        let opts = OpenOptions {
            resize,
            crop_first: true,
            ..Default::default()
        };
        let mut s =
            FolderSource::open(d.path(), T, &LabelSpace::plain(&classes(&["a"])), &opts).unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert!(c.dims.is_empty());
        assert_eq!(c.pixels.len(), 16);
        // Too small after resizing.
        let opts = OpenOptions {
            resize: Some(crate::spec::Resize::Exact([3, 3])),
            ..Default::default()
        };
        let mut s =
            FolderSource::open(d.path(), T, &LabelSpace::plain(&classes(&["a"])), &opts).unwrap();
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
        let mut s = FolderSource::open(
            d.path(),
            T,
            &LabelSpace::plain(&classes(&["0"])),
            &OpenOptions::default(),
        )
        .unwrap();
        let err = format!("{:#}", s.next_chunk(10).unwrap_err());
        assert!(
            err.contains("b.png") && err.contains("--skip-bad-images"),
            "{err}"
        );
        let mut s = FolderSource::open(
            d.path(),
            T,
            &LabelSpace::plain(&classes(&["0"])),
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

    /// An image folder with one 4x4 image of value `v` in each `(class folder, v)`.
    fn image_folder(folders: &[(&str, u8)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (c, v) in folders {
            fs::create_dir_all(d.path().join(c)).unwrap();
            GrayImage::from_pixel(4, 4, Luma([*v]))
                .save(d.path().join(c).join("a.png"))
                .unwrap();
        }
        d
    }

    fn open_with(d: &Path, mode: Option<ClassFolders>) -> Result<FilesSource> {
        let opts = OpenOptions {
            class_folders: mode,
            ..Default::default()
        };
        let digits: Vec<String> = (0..10).map(|c| c.to_string()).collect();
        FolderSource::open(d, T, &LabelSpace::plain(&digits), &opts)
    }

    fn map_of(s: &FilesSource) -> Vec<(String, u32)> {
        let m = &s.info().class_map;
        m.iter().map(|c| (c.folder.clone(), c.index)).collect()
    }

    #[test]
    fn hidden_folders_and_macosx_are_ignored_at_every_depth() {
        // Regression (issue #16, item 5): `.ipynb_checkpoints` beside `3` and `7`
        // switched the labels to sorted order (0 and 1) and accuracy to 0.
        let d = image_folder(&[
            ("3", 30),
            ("7", 70),
            (".ipynb_checkpoints", 1),
            ("__MACOSX/7", 2),
            ("7/.hidden", 3),
        ]);
        fs::write(d.path().join("7").join("._b.png"), b"AppleDouble").unwrap();
        let mut s = open_with(d.path(), None).unwrap();
        assert_eq!(map_of(&s), vec![("3".into(), 3), ("7".into(), 7)]);
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![3, 7]);
        assert_eq!(
            c.pixels.iter().step_by(16).copied().collect::<Vec<_>>(),
            vec![30, 70]
        );
    }

    #[test]
    fn folders_that_mix_class_names_and_other_names_are_refused_naming_the_others() {
        let d = image_folder(&[("3", 30), ("7", 70), ("extra", 1), ("misc", 2)]);
        let err = open_with(d.path(), None).err().unwrap().to_string();
        for part in [
            "the folders `extra`, `misc` are not",
            "`3`, `7` are",
            "--class-folders sorted",
        ] {
            assert!(err.contains(part), "expected `{part}` in: {err}");
        }
        let err = open_with(d.path(), Some(ClassFolders::Names))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--class-folders names") && err.contains("`extra`"),
            "{err}"
        );
        // Sorted on purpose: torchvision's ImageFolder indices.
        let s = open_with(d.path(), Some(ClassFolders::Sorted)).unwrap();
        let want = [("3", 0), ("7", 1), ("extra", 2), ("misc", 3)];
        assert_eq!(map_of(&s), want.map(|(f, i)| (f.to_string(), i)).to_vec());
        assert!(s.info().class_order.contains("sorted"));
    }

    #[test]
    fn class_folders_names_and_sorted_choose_the_order_when_all_are_classes() {
        let d = image_folder(&[("3", 30), ("7", 70)]);
        let names = open_with(d.path(), Some(ClassFolders::Names)).unwrap();
        assert_eq!(map_of(&names), vec![("3".into(), 3), ("7".into(), 7)]);
        let mut sorted = open_with(d.path(), Some(ClassFolders::Sorted)).unwrap();
        assert_eq!(map_of(&sorted), vec![("3".into(), 0), ("7".into(), 1)]);
        assert_eq!(sorted.next_chunk(10).unwrap().unwrap().labels, vec![0, 1]);
        assert_ne!(
            names.info().sha256,
            sorted.info().sha256,
            "labels are hashed"
        );
    }

    #[test]
    fn a_folder_without_class_folders_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        GrayImage::from_pixel(4, 4, Luma([1]))
            .save(d.path().join("a.png"))
            .unwrap();
        let err = FolderSource::open(
            d.path(),
            T,
            &LabelSpace::plain(&classes(&["0"])),
            &OpenOptions::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("no class folders"), "{err}");
    }
}
