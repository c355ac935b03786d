//! CSV manifests: a header with `path` and `label` columns; paths are relative to
//! the CSV file; a label is a class name from the model's class list or an index.

use super::folder::FilesSource;
use super::{OpenOptions, Target};
use anyhow::{anyhow, bail, Result};
use std::path::Path;

pub fn open(
    csv_path: &Path,
    target: Target,
    classes: &[String],
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
    let (Some(pc), Some(lc)) = (col("path"), col("label")) else {
        bail!(
            "{}: the manifest needs a header row with `path` and `label` columns (found: {}); e.g. `path,label` then `images/a.png,cat`",
            csv_path.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        );
    };
    let root = csv_path.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| anyhow!("{}: line {line}: {e}", csv_path.display()))?;
        let (p, l) = (rec.get(pc).unwrap_or(""), rec.get(lc).unwrap_or(""));
        if p.is_empty() {
            bail!("{}: line {line}: empty path", csv_path.display());
        }
        let label = match classes.iter().position(|c| c == l) {
            Some(i) => i as u32,
            None => match l.parse::<u32>() {
                Ok(i) if (i as usize) < classes.len() => i,
                Ok(i) => bail!(
                    "{}: line {line}: label {i} is outside the model's {} classes (0..{})",
                    csv_path.display(),
                    classes.len(),
                    classes.len() - 1
                ),
                Err(_) => bail!(
                    "{}: line {line}: label `{l}` is neither one of the model's class names nor an index; check the spelling or pass --classes",
                    csv_path.display()
                ),
            },
        };
        let path = root.join(p);
        if !path.is_file() {
            bail!(
                "{}: line {line}: image {} does not exist (paths are relative to the CSV file)",
                csv_path.display(),
                path.display()
            );
        }
        files.push((path, label));
    }
    if files.is_empty() {
        bail!(
            "--data {}: the manifest lists no images",
            csv_path.display()
        );
    }
    FilesSource::new(
        "csv-manifest",
        root,
        files,
        None,
        "labels are the model's class names or indices".into(),
        target,
        opts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Source;
    use std::fs;

    #[test]
    fn names_and_indices_both_work_and_paths_are_relative_to_the_csv() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("img")).unwrap();
        for n in ["a", "b"] {
            image::GrayImage::new(4, 4)
                .save(d.path().join("img").join(format!("{n}.png")))
                .unwrap();
        }
        fs::write(
            d.path().join("m.csv"),
            "path,label\nimg/a.png,dog\nimg/b.png,0\n",
        )
        .unwrap();
        let classes = vec!["cat".to_string(), "dog".to_string()];
        let t = Target {
            channels: 1,
            height: 4,
            width: 4,
        };
        let mut s = open(
            &d.path().join("m.csv"),
            t,
            &classes,
            &OpenOptions::default(),
        )
        .unwrap();
        let c = s.next_chunk(10).unwrap().unwrap();
        assert_eq!(c.labels, vec![1, 0]);
    }

    #[test]
    fn bad_manifests_name_the_line() {
        let d = tempfile::tempdir().unwrap();
        image::GrayImage::new(4, 4)
            .save(d.path().join("a.png"))
            .unwrap();
        let classes = vec!["cat".to_string()];
        let t = Target {
            channels: 1,
            height: 4,
            width: 4,
        };
        for (body, want) in [
            ("file,class\na.png,cat\n", "`path` and `label`"),
            ("path,label\na.png,wolf\n", "line 2: label `wolf`"),
            ("path,label\na.png,3\n", "line 2: label 3 is outside"),
            ("path,label\nmissing.png,cat\n", "does not exist"),
            ("path,label\n", "lists no images"),
        ] {
            fs::write(d.path().join("m.csv"), body).unwrap();
            let err = open(
                &d.path().join("m.csv"),
                t,
                &classes,
                &OpenOptions::default(),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(err.contains(want), "{body:?}: {err}");
        }
    }
}
