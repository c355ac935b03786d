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
        bail!(
            "{flag} {}: is an existing file, not a folder; choose a folder path",
            dir.display()
        );
    }
    fs::create_dir_all(dir).map_err(|e| {
        anyhow!(
            "{flag} {}: cannot create the output folder ({e}); choose a writable path",
            dir.display()
        )
    })?;
    let probe = dir.join(format!(".rotbench-probe-{}", std::process::id()));
    fs::write(&probe, b"").map_err(|e| {
        anyhow!(
            "{flag} {}: the output folder is not writable ({e}); choose a writable path",
            dir.display()
        )
    })?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

fn temp_name(dir: &Path, name: &str) -> PathBuf {
    // Flatten sub-paths (plots/x.png): temps live in `dir`, on the same filesystem.
    dir.join(format!(
        ".{}.tmp-{}",
        name.replace('/', "_"),
        std::process::id()
    ))
}

/// Write one file atomically (temp file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    write_all(
        dir,
        &[(name.to_string_lossy().into_owned(), bytes.to_vec())],
    )
}

/// Write several files into `dir`: all temps first, then the renames.
pub fn write_all(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<()> {
    fs::create_dir_all(dir)
        .map_err(|e| anyhow!("{}: cannot create the folder ({e})", dir.display()))?;
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
            bail!(
                "{}: cannot write ({e}); nothing was replaced",
                dir.join(name).display()
            );
        }
        temps.push(tmp);
    }
    for ((name, _), tmp) in files.iter().zip(&temps) {
        let dest = dir.join(name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        fs::rename(tmp, &dest).with_context(|| {
            format!(
                "{}: cannot move the finished file into place",
                dest.display()
            )
        })?;
    }
    Ok(())
}

/// An append-only log of length-prefixed records, fsynced after each append:
/// the checkpoint of a running sweep. A torn last record (a kill mid-write) is
/// ignored when read back.
pub struct RecordLog {
    file: fs::File,
    path: PathBuf,
}

impl RecordLog {
    /// Start a new, empty log (replacing any old one).
    pub fn create(path: &Path) -> Result<RecordLog> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("{}: cannot create", parent.display()))?;
        }
        let file = fs::File::create(path)
            .with_context(|| format!("{}: cannot create the checkpoint", path.display()))?;
        Ok(RecordLog {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Continue an existing log after its last whole record.
    pub fn reopen(path: &Path, whole_len: u64) -> Result<RecordLog> {
        let file = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("{}: cannot open the checkpoint", path.display()))?;
        file.set_len(whole_len)?;
        let mut log = RecordLog {
            file,
            path: path.to_path_buf(),
        };
        use std::io::Seek;
        log.file.seek(std::io::SeekFrom::End(0))?;
        Ok(log)
    }

    pub fn append(&mut self, record: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(record.len() + 8);
        buf.extend_from_slice(&(record.len() as u64).to_le_bytes());
        buf.extend_from_slice(record);
        self.file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data())
            .with_context(|| format!("{}: cannot write the checkpoint", self.path.display()))
    }

    /// The whole records of a log, and the byte length they span.
    pub fn read(path: &Path) -> Result<(Vec<Vec<u8>>, u64)> {
        let bytes = fs::read(path)
            .with_context(|| format!("{}: cannot read the checkpoint", path.display()))?;
        let mut out = Vec::new();
        let mut at = 0usize;
        while bytes.len() - at >= 8 {
            let n = u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
            if bytes.len() - at - 8 < n {
                break; // torn tail
            }
            out.push(bytes[at + 8..at + 8 + n].to_vec());
            at += 8 + n;
        }
        Ok((out, at as u64))
    }
}

/// Remove a file or folder if present.
pub fn remove(path: &Path) -> Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path).with_context(|| format!("{}: cannot remove", path.display()))?;
    } else if path.exists() {
        fs::remove_file(path).with_context(|| format!("{}: cannot remove", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_appear_whole_and_no_temps_remain() {
        let d = tempfile::tempdir().unwrap();
        write_all(
            d.path(),
            &[
                ("a.txt".into(), b"one".to_vec()),
                ("b.txt".into(), b"two".to_vec()),
            ],
        )
        .unwrap();
        assert_eq!(fs::read(d.path().join("a.txt")).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn an_existing_file_is_not_an_output_folder() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        fs::write(&f, "").unwrap();
        let err = prepare_dir(&f, "--out").unwrap_err().to_string();
        assert!(
            err.contains("--out") && err.contains("existing file"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn a_torn_last_record_is_ignored_and_overwritten() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ck/log.bin");
        let mut log = RecordLog::create(&p).unwrap();
        log.append(b"one").unwrap();
        log.append(b"two").unwrap();
        drop(log);
        let mut bytes = fs::read(&p).unwrap();
        bytes.extend_from_slice(&100u64.to_le_bytes());
        bytes.extend_from_slice(b"partial");
        fs::write(&p, &bytes).unwrap();
        let (recs, whole) = RecordLog::read(&p).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), b"two".to_vec()]);
        let mut log = RecordLog::reopen(&p, whole).unwrap();
        log.append(b"three").unwrap();
        assert_eq!(RecordLog::read(&p).unwrap().0.len(), 3);
    }
}
