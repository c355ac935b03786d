//! The one place that writes result files.
//!
//! A command that produces results owns a set of names in its output folder
//! (`rotbench::report::files::RESULT_FILES` for a sweep or a merge). [`replace_set`] writes the new files
//! into a staging folder, then swaps the whole set in under a journal: the old
//! result files (every owned name, including those the new run does not write)
//! move aside, the new ones move in, and the journal's removal commits. A failure
//! in the middle rolls back, and a run killed in the middle is rolled back by the
//! next writer, so the folder always holds one complete set, never a mix of two
//! runs. Leftovers of killed runs (staging folders, temporary files) are removed.

use anyhow::{anyhow, bail, Context, Result};
use rotbench_core::report::files::RESULT_FILES;
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

#[cfg(test)]
thread_local! {
    /// Tests: fail the k-th move of a new file into place.
    static FAIL_MOVE_IN: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Tests fail the k-th move of a new file into place here; a no-op otherwise.
fn fail_point(k: usize) -> Result<()> {
    #[cfg(test)]
    if FAIL_MOVE_IN.with(|f| f.get()) == Some(k) {
        bail!("failpoint: move {k}");
    }
    let _ = k;
    Ok(())
}

/// The journal of a swap in progress (see the module docs).
const JOURNAL: &str = ".rotbench-swap.json";
const STAGE_PREFIX: &str = ".rotbench-stage-";
const BACKUP_PREFIX: &str = ".rotbench-backup-";

#[derive(serde::Serialize, serde::Deserialize)]
struct Journal {
    pid: u32,
    stage: String,
    backup: String,
    /// Owned names that existed before the swap (moved to `backup` first).
    existed: Vec<String>,
    /// Names the new set writes (moved in from `stage`).
    new: Vec<String>,
}

/// The first component of a relative result path (`plots/x.png` -> `plots`).
fn top_name(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn sync_dir(dir: &Path) {
    // Make renames durable; not every filesystem supports it, so failures are ignored.
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Is process `pid` alive? (Linux: /proc; elsewhere assume it is, which only
/// means a leftover is kept rather than removed.)
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The pid at the end of a leftover's name (`.x.tmp-123`, `.rotbench-stage-123`).
fn leftover_pid(name: &str) -> Option<u32> {
    let tail = if let Some(rest) = name.strip_prefix(STAGE_PREFIX) {
        rest
    } else if let Some(rest) = name.strip_prefix(BACKUP_PREFIX) {
        rest
    } else if let Some(rest) = name.strip_prefix('.') {
        // Only temporary files of rotbench's own names (see `temp_name`), never a
        // user's file that merely looks like one.
        let (stem, pid) = rest.rsplit_once(".tmp-")?;
        let ours = RESULT_FILES.contains(&stem)
            || stem.starts_with("plots_")
            || stem == "predictions.json"
            || stem == JOURNAL;
        if !ours {
            return None;
        }
        pid
    } else {
        return None;
    };
    tail.parse().ok()
}

/// Undo a swap that stopped half-way: every owned name gets its old file back and
/// no new file stays. Then drop the journal, the staging and the backup folders.
fn roll_back(dir: &Path, j: &Journal) -> Result<()> {
    let (stage, backup) = (dir.join(&j.stage), dir.join(&j.backup));
    let mut names: Vec<&String> = j.existed.iter().chain(&j.new).collect();
    names.sort();
    names.dedup();
    for t in names {
        let (cur, old) = (dir.join(t), backup.join(t));
        if j.existed.contains(t) {
            if exists(&old) {
                remove(&cur)?;
                fs::rename(&old, &cur).with_context(|| {
                    format!("{}: cannot restore the previous result file", cur.display())
                })?;
            }
        } else {
            remove(&cur)?;
        }
    }
    sync_dir(dir);
    remove(&dir.join(JOURNAL))?;
    remove(&stage)?;
    remove(&backup)?;
    sync_dir(dir);
    Ok(())
}

/// Repair `dir` after a killed writer: roll back a half-done swap and remove the
/// staging folders and temporary files of processes that no longer run. Refuses
/// while another live rotbench is swapping results into the same folder.
pub fn recover(dir: &Path) -> Result<()> {
    let jp = dir.join(JOURNAL);
    if exists(&jp) {
        let text = fs::read_to_string(&jp).unwrap_or_default();
        match serde_json::from_str::<Journal>(&text) {
            Ok(j) if alive(j.pid) && j.pid != std::process::id() => bail!(
                "{}: another rotbench (pid {}) is writing results into this folder; wait for it to finish, or use another --out",
                dir.display(),
                j.pid
            ),
            Ok(j) => roll_back(dir, &j)?,
            Err(e) => bail!(
                "{}: cannot read ({e}); an interrupted run left it: delete it and check that the folder's result files belong together, or use another --out",
                jp.display()
            ),
        }
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = leftover_pid(&name) {
            if !alive(pid) {
                remove(&e.path())?;
            }
        }
    }
    Ok(())
}

/// Replace the result set of `dir` (the names in `owned`) with `files`, as one step:
/// afterwards every owned name holds this call's file or nothing. On an error the
/// previous set is left as it was. Every file's top-level name must be owned.
pub fn replace_set(dir: &Path, owned: &[&str], files: &[(String, Vec<u8>)]) -> Result<()> {
    let held = files.iter().map(|(n, b)| (n.clone(), b.as_slice()));
    replace_set_streaming(dir, owned, &[], |_| Ok(held.collect()))
}

/// A result file too large to hold in memory: a function that writes its bytes.
pub type Streamed<'a> = (String, &'a dyn Fn(&mut dyn Write) -> Result<()>);

/// [`replace_set`] with some files written by functions (`streamed`) instead of
/// held as bytes. They are staged first, each hashed as it is written (sha256,
/// lower-case hex, as `rotbench::hash::content_hash` gives it), and `files` makes
/// the held files from those hashes (summary.json records them), so a streamed
/// file is made once, not once to hash and again to write. All are then swapped
/// in as one set. The held files' bytes may be owned or borrowed (`B`).
pub fn replace_set_streaming<B: AsRef<[u8]>>(
    dir: &Path,
    owned: &[&str],
    streamed: &[Streamed<'_>],
    files: impl FnOnce(&[String]) -> Result<Vec<(String, B)>>,
) -> Result<()> {
    let check = |name: &str| -> Result<()> {
        if !owned.contains(&top_name(name)) || name.split('/').any(|c| c.is_empty() || c == "..") {
            bail!("internal: result file `{name}` is not among the names this command owns");
        }
        Ok(())
    };
    for (name, _) in streamed {
        check(name)?;
    }
    fs::create_dir_all(dir)
        .map_err(|e| anyhow!("{}: cannot create the folder ({e})", dir.display()))?;
    recover(dir)?;
    let pid = std::process::id();
    let stage_name = format!("{STAGE_PREFIX}{pid}");
    let backup_name = format!("{BACKUP_PREFIX}{pid}");
    let (stage, backup) = (dir.join(&stage_name), dir.join(&backup_name));
    remove(&stage)?;
    remove(&backup)?;

    // 1. Stage every file; nothing in the folder changes yet. A failure in `files`
    // (an internal error) also leaves the folder as it was.
    let mut names: Vec<String> = streamed.iter().map(|(n, _)| n.clone()).collect();
    let staged = (|| -> Result<()> {
        fs::create_dir_all(&stage)?;
        let mut hashes = Vec::with_capacity(streamed.len());
        for (name, write) in streamed {
            let p = stage.join(name);
            let f = fs::File::create(&p)
                .with_context(|| format!("{}: cannot write", dir.join(name).display()))?;
            let mut w = Hashing {
                file: std::io::BufWriter::with_capacity(1 << 20, f),
                hash: sha2::Sha256::default(),
            };
            write(&mut w)
                .and_then(|_| {
                    Ok(w.file
                        .into_inner()
                        .map_err(|e| e.into_error())?
                        .sync_all()?)
                })
                .with_context(|| format!("{}: cannot write", dir.join(name).display()))?;
            hashes.push(crate::hash::hex(&sha2::Digest::finalize(w.hash)));
        }
        for (name, bytes) in files(&hashes)? {
            check(&name)?;
            let p = stage.join(&name);
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent)?;
            }
            let mut f = fs::File::create(&p)
                .with_context(|| format!("{}: cannot write", dir.join(&name).display()))?;
            f.write_all(bytes.as_ref())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("{}: cannot write", dir.join(&name).display()))?;
            names.push(name);
        }
        Ok(())
    })();
    if let Err(e) = staged {
        let _ = remove(&stage);
        return Err(e.context(format!(
            "{}: the results could not be written, and nothing was replaced (is the disk full?)",
            dir.display()
        )));
    }

    // 2. The journal: from here until its removal, a kill is rolled back by the next writer.
    let mut new: Vec<String> = names.iter().map(|n| top_name(n).to_string()).collect();
    new.sort();
    new.dedup();
    let existed: Vec<String> = owned
        .iter()
        .filter(|t| exists(&dir.join(t)))
        .map(|t| t.to_string())
        .collect();
    let journal = Journal {
        pid,
        stage: stage_name,
        backup: backup_name,
        existed,
        new,
    };
    write_atomic(&dir.join(JOURNAL), &serde_json::to_vec(&journal)?)?;
    sync_dir(dir);

    // 3. Old files aside, 4. new files in.
    let swapped = (|| -> Result<()> {
        if !journal.existed.is_empty() {
            fs::create_dir_all(&backup)?;
        }
        for t in &journal.existed {
            fs::rename(dir.join(t), backup.join(t)).with_context(|| {
                format!(
                    "{}: cannot move the previous result aside",
                    dir.join(t).display()
                )
            })?;
        }
        for (k, t) in journal.new.iter().enumerate() {
            fail_point(k)?;
            fs::rename(stage.join(t), dir.join(t)).with_context(|| {
                format!(
                    "{}: cannot move the new result into place",
                    dir.join(t).display()
                )
            })?;
        }
        Ok(())
    })();
    if let Err(e) = swapped {
        let undo = roll_back(dir, &journal);
        let e = e.context(format!(
            "{}: the new results could not be swapped in; the previous results were {}",
            dir.display(),
            if undo.is_ok() {
                "restored"
            } else {
                "NOT fully restored (see the next error)"
            }
        ));
        return Err(match undo {
            Ok(()) => e,
            Err(u) => e.context(u),
        });
    }

    // 5. Commit, 6. clean up.
    sync_dir(dir);
    fs::remove_file(dir.join(JOURNAL))
        .with_context(|| format!("{}: cannot remove the journal", dir.join(JOURNAL).display()))?;
    sync_dir(dir);
    let _ = remove(&backup);
    let _ = remove(&stage);
    Ok(())
}

/// A streamed file's writer: the file, and the sha256 of what went into it.
struct Hashing<W: Write> {
    file: W,
    hash: sha2::Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        sha2::Digest::update(&mut self.hash, &buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
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
mod set_tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn files(v: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        v.iter()
            .map(|(n, b)| (n.to_string(), b.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_new_set_removes_the_owned_files_it_does_not_write_and_keeps_the_rest() {
        let d = tempfile::tempdir().unwrap();
        let old = files(&[
            ("summary.json", "old"),
            ("predictions.csv", "old"),
            ("plots/a.png", "old"),
        ]);
        replace_set(d.path(), RESULT_FILES, &old).unwrap();
        fs::write(d.path().join("notes.txt"), "mine").unwrap();
        replace_set(d.path(), RESULT_FILES, &files(&[("summary.json", "new")])).unwrap();
        assert_eq!(names(d.path()), vec!["notes.txt", "summary.json"]);
        assert_eq!(fs::read(d.path().join("summary.json")).unwrap(), b"new");
    }

    #[test]
    fn a_failure_half_way_through_the_swap_leaves_the_previous_set_whole() {
        let d = tempfile::tempdir().unwrap();
        let old = files(&[("per_angle.csv", "old a"), ("summary.json", "old s")]);
        replace_set(d.path(), RESULT_FILES, &old).unwrap();
        // New files move in in sorted order: fail after the first one moved.
        FAIL_MOVE_IN.with(|f| f.set(Some(1)));
        let new = files(&[
            ("per_angle.csv", "new a"),
            ("predictions.csv", "new p"),
            ("summary.json", "new s"),
        ]);
        let err = replace_set(d.path(), RESULT_FILES, &new).unwrap_err();
        FAIL_MOVE_IN.with(|f| f.set(None));
        assert!(format!("{err:#}").contains("restored"), "{err:#}");
        assert_eq!(names(d.path()), vec!["per_angle.csv", "summary.json"]);
        assert_eq!(fs::read(d.path().join("per_angle.csv")).unwrap(), b"old a");
        assert_eq!(fs::read(d.path().join("summary.json")).unwrap(), b"old s");
    }

    #[test]
    fn a_swap_killed_half_way_is_rolled_back_by_the_next_writer() {
        let d = tempfile::tempdir().unwrap();
        let dead = u32::MAX - 1;
        // What a writer killed after moving the old summary aside and the new
        // per_angle.csv in leaves behind.
        let (stage, backup) = (
            format!("{STAGE_PREFIX}{dead}"),
            format!("{BACKUP_PREFIX}{dead}"),
        );
        fs::create_dir_all(d.path().join(&stage)).unwrap();
        fs::create_dir_all(d.path().join(&backup)).unwrap();
        fs::write(d.path().join(&backup).join("summary.json"), "old s").unwrap();
        fs::write(d.path().join(&stage).join("summary.json"), "new s").unwrap();
        fs::write(d.path().join("per_angle.csv"), "new a").unwrap();
        fs::write(d.path().join(format!(".timing.json.tmp-{dead}")), "x").unwrap();
        fs::write(
            d.path().join(format!(".my-notes.tmp-{dead}")),
            "a user's file",
        )
        .unwrap();
        let j = Journal {
            pid: dead,
            stage,
            backup,
            existed: vec!["summary.json".into()],
            new: vec!["per_angle.csv".into(), "summary.json".into()],
        };
        fs::write(d.path().join(JOURNAL), serde_json::to_vec(&j).unwrap()).unwrap();
        recover(d.path()).unwrap();
        assert_eq!(
            names(d.path()),
            vec![format!(".my-notes.tmp-{dead}"), "summary.json".to_string()]
        );
        assert_eq!(fs::read(d.path().join("summary.json")).unwrap(), b"old s");
    }

    #[test]
    fn a_live_writer_swapping_into_the_same_folder_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let j = Journal {
            pid: 1, // init: always alive
            stage: format!("{STAGE_PREFIX}1"),
            backup: format!("{BACKUP_PREFIX}1"),
            existed: vec![],
            new: vec![],
        };
        fs::write(d.path().join(JOURNAL), serde_json::to_vec(&j).unwrap()).unwrap();
        let err = replace_set(d.path(), RESULT_FILES, &files(&[("summary.json", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("another rotbench (pid 1)"), "{err}");
    }

    #[test]
    fn a_file_outside_the_owned_names_is_refused() {
        let d = tempfile::tempdir().unwrap();
        assert!(replace_set(
            d.path(),
            &["index.html", "plots"],
            &files(&[("summary.json", "x")])
        )
        .is_err());
        assert!(replace_set(d.path(), RESULT_FILES, &files(&[("plots/../x", "x")])).is_err());
    }
}
