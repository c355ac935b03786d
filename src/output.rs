//! The one place that writes result files: every file goes to a temporary name
//! in the output folder first and is renamed into place only when all of them
//! were written, so an interrupted or failed run leaves the previous results whole.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Make sure `dir` can hold results: create it if needed, refuse a file, probe writability.
pub fn prepare_dir(dir: &Path, flag: &str) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: is an existing file, not a folder; choose a folder path", dir.display());
    }
    fs::create_dir_all(dir)
        .map_err(|e| anyhow!("{flag} {}: cannot create the output folder ({e}); choose a writable path", dir.display()))?;
    let probe = dir.join(format!(".rotbench-probe-{}", std::process::id()));
    fs::write(&probe, b"")
        .map_err(|e| anyhow!("{flag} {}: the output folder is not writable ({e}); choose a writable path", dir.display()))?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

fn temp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

/// Write one file atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    write_all(dir, &[(name.to_string_lossy().into_owned(), bytes.to_vec())])
}

/// Write several files into `dir`: all temps first, then the renames.
pub fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    let mut temps = Vec::with_capacity(files.len());
    let cleanup = |temps: &[PathBuf]| {
        for t in temps {
            let _ = fs::remove_file(t);
        }
    };
    for (name, bytes) in files {
        let tmp = temp_name(dir, name);
        let res = (|| -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        })();
        if let Err(e) = res {
            cleanup(&temps);
            let _ = fs::remove_file(&tmp);
            bail!("{}: cannot write ({e}); nothing was replaced", dir.join(name).display());
        }
        temps.push(tmp);
    }
    for ((name, _), tmp) in files.iter().zip(&temps) {
        let dest = dir.join(name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        fs::rename(tmp, &dest).with_context(|| format!("{}: cannot move the finished file into place", dest.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_whole_and_no_temps_remain() {
        let d = tempfile::tempdir().unwrap();
        write_all(d.path(), &[("a.txt".into(), b"one".to_vec()), ("b.txt".into(), b"two".to_vec())]).unwrap();
        assert_eq!(fs::read(d.path().join("a.txt")).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn an_existing_file_is_not_an_output_folder() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        fs::write(&f, "").unwrap();
        let err = prepare_dir(&f, "--out").unwrap_err().to_string();
        assert!(err.contains("--out") && err.contains("existing file"), "{err}");
    }
}
