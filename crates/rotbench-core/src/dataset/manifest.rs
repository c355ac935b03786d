//! CSV manifests: a header with a `path` column and a `label` column (class
//! names) or a `label_index` column (indices into the model's classes); paths are
//! relative to the CSV file. Labels resolve by the one rule of [`super::labels`].

use super::folder::FilesSource;
use super::{LabelSpace, OpenOptions, Target};
use anyhow::{anyhow, bail, Result};
use std::path::Path;

pub fn open(
    csv_path: &Path,
    target: Target,
    space: &LabelSpace,
    opts: &OpenOptions,
) -> Result<FilesSource> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .map_err(|e| {
            anyhow!(
                "--data {}: cannot read the CSV manifest: {e}",
                csv_path.display()
            )
        })?;
    let headers = r
        .headers()
        .map_err(|e| anyhow!("{}: cannot read the header row: {e}", csv_path.display()))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (pc, names, indices) = (col("path"), col("label"), col("label_index"));
    let (Some(pc), Some((lc, by_index))) = (
        pc,
        match (names, indices) {
            (Some(_), Some(_)) => bail!(
                "{}: the manifest has both a `label` column (class names) and a `label_index` column (class indices); keep one",
                csv_path.display()
            ),
            (Some(c), None) => Some((c, false)),
            (None, Some(c)) => Some((c, true)),
            (None, None) => None,
        },
    ) else {
        bail!(
            "{}: the manifest needs a header row with a `path` column and a `label` column of class names (or `label_index`, of indices into the model's classes) (found: {}); e.g. `path,label` then `images/a.png,cat`",
            csv_path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let root = csv_path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    let mut resolved = Vec::new();
    let mut texts = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| anyhow!("{}: line {line}: {e}", csv_path.display()))?;
        let (p, l) = (rec.get(pc).unwrap_or(""), rec.get(lc).unwrap_or(""));
        if p.is_empty() {
            bail!("{}: line {line}: empty path", csv_path.display());
        }
        let label = if by_index {
            let n = space.model_classes.len();
            match l.parse::<usize>() {
                Ok(i) => space.by_index(i).ok_or_else(|| {
                    anyhow!(
                        "{}: line {line}: label_index {i} is outside the model's {n} classes (0..{})",
                        csv_path.display(),
                        n - 1
                    )
                })?,
                Err(_) => bail!(
                    "{}: line {line}: label_index `{l}` is not a class index (0..{}); for class names, name the column `label`",
                    csv_path.display(),
                    n - 1
                ),
            }
        } else {
            match space.by_name(l) {
                Some(r) => r,
                None if l.parse::<usize>().is_ok() => bail!(
                    "{}: line {line}: label `{l}` names none of {}; the `label` column holds class names, so a number is not taken for an index: if the manifest's labels are indices into the model's classes, name the column `label_index`",
                    csv_path.display(),
                    space.describe()
                ),
                None => bail!(
                    "{}: line {line}: label `{l}` names none of {}; check the spelling or pass --classes",
                    csv_path.display(),
                    space.describe()
                ),
            }
        };
        let path = root.join(p);
        if !path.is_file() {
            bail!(
                "{}: line {line}: image {} does not exist (paths are relative to the CSV file)",
                csv_path.display(),
                path.display()
            );
        }
        files.push(path);
        resolved.push(label);
        texts.push(l.to_string());
    }
    if files.is_empty() {
        bail!(
            "--data {}: the manifest lists no images",
            csv_path.display()
        );
    }
    let (labels, dropped) = space.settle(&resolved, &|i| format!("`{}`", texts[i]), &|i| {
        format!("{} line {}", csv_path.display(), i + 2)
    })?;
    let order = if by_index {
        "label_index: indices into the model's classes"
    } else {
        "labels are class names (the scored classes', else the model's)"
    };
    let mut source = FilesSource::new(
        "csv-manifest",
        root,
        files.into_iter().zip(labels).collect(),
        None,
        order.into(),
        target,
        opts,
    )?;
    source.info.dropped = dropped;
    Ok(source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Source;
    use std::fs;

    fn t() -> Target {
        Target {
            channels: 1,
            height: 4,
            width: 4,
        }
    }

    #[test]
    fn names_in_label_and_indices_in_label_index_and_paths_relative_to_the_csv() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("img")).unwrap();
        for n in ["a", "b"] {
            image::GrayImage::new(4, 4)
                .save(d.path().join("img").join(format!("{n}.png")))
                .unwrap();
        }
        let space = LabelSpace::plain(&["cat".to_string(), "dog".to_string()]);
        let labels = |body: &str| {
            fs::write(d.path().join("m.csv"), body).unwrap();
            let mut s = open(
                &d.path().join("m.csv"),
                t(),
                &space,
                &OpenOptions::default(),
            )
            .unwrap();
            s.next_chunk(10).unwrap().unwrap().labels
        };
        assert_eq!(
            labels("path,label\nimg/a.png,dog\nimg/b.png,cat\n"),
            vec![1, 0]
        );
        assert_eq!(
            labels("path,label_index\nimg/a.png,1\nimg/b.png,0\n"),
            vec![1, 0]
        );
    }

    #[test]
    fn bad_manifests_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        image::GrayImage::new(4, 4)
            .save(d.path().join("a.png"))
            .unwrap();
        let space = LabelSpace::plain(&["cat".to_string()]);
        for (body, want) in [
            (
                "file,class\na.png,cat\n",
                "a `path` column and a `label` column",
            ),
            (
                "path,label\na.png,wolf\n",
                "line 2: label `wolf` names none of the model's 1 classes (cat)",
            ),
            ("path,label\na.png,0\n", "name the column `label_index`"),
            (
                "path,label_index\na.png,3\n",
                "line 2: label_index 3 is outside",
            ),
            ("path,label_index\na.png,cat\n", "is not a class index"),
            ("path,label,label_index\na.png,cat,0\n", "keep one"),
            ("path,label\nmissing.png,cat\n", "does not exist"),
            ("path,label\n", "lists no images"),
        ] {
            fs::write(d.path().join("m.csv"), body).unwrap();
            let err = open(
                &d.path().join("m.csv"),
                t(),
                &space,
                &OpenOptions::default(),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
    }
}
