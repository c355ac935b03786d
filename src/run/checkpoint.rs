//! The checkpoint that `sweep --resume` continues from: `OUT/.rotbench-checkpoint/`,
//! a log of finished chunks under the run's key, removed when the results are written.

use super::cache_plan::CachePlan;
use anyhow::Context;
use anyhow::{bail, Result};
use rotbench::output;
use rotbench::results::SampleData;
use rotbench::store;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The checkpoint of a run in progress: `OUT/.rotbench-checkpoint/`.
pub struct Checkpoint {
    dir: PathBuf,
    log: RecordLog,
    /// Batches recorded by this process.
    appended: usize,
}

fn checkpoint_dir(out: &Path) -> PathBuf {
    out.join(".rotbench-checkpoint")
}

impl Checkpoint {
    /// Start a checkpoint for `run_key`. With `resume`, continue the one already
    /// there (it must have been made with the same arguments) and return its samples.
    /// With `resume` and no checkpoint in `out`, start fresh and return a note saying
    /// so, for the command to print: a missing or empty `out` is the first run of a
    /// job-engine task that always passes --resume, and an `out` holding finished
    /// results (the checkpoint goes when a run finishes) is rewritten by a rerun with
    /// the same bytes.
    ///
    /// Beside the key, `compute.json` records which (model, angle) pairs the run
    /// computes (the rest came from the prediction cache); a resumed run adopts it
    /// ([`CachePlan::adopt`]), so a cache filled meanwhile does not orphan the
    /// checkpoint. When the cache has lost a pair the checkpoint relied on, the
    /// run starts over and says so.
    pub fn open(
        out: &Path,
        run_key: &Value,
        plan: &mut CachePlan,
        resume: bool,
        models: usize,
        angles: usize,
    ) -> Result<(Checkpoint, Option<SampleData>, Option<String>)> {
        let dir = checkpoint_dir(out);
        let key_path = dir.join("run.json");
        let compute_path = dir.join("compute.json");
        let log_path = dir.join("batches.bin");
        let mut note = None;
        let read = resume.then(|| std::fs::read_to_string(&key_path));
        let saved_key = match read {
            None => None,
            Some(Ok(text)) => Some(text),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let finished = ["summary.json", "shard.json"]
                    .iter()
                    .any(|f| out.join(f).exists());
                note = Some(if finished {
                    format!(
                        "--resume: {} holds the results of a finished run and no checkpoint; running again from the start (the same arguments write the same files)",
                        out.display()
                    )
                } else {
                    format!(
                        "--resume: {} holds no checkpoint; starting a fresh run",
                        out.display()
                    )
                });
                None
            }
            Some(Err(e)) => bail!(
                "--resume: cannot read the checkpoint {} ({e}); make it readable, or run without --resume to start over",
                key_path.display()
            ),
        };
        let saved_key = match saved_key {
            Some(text) => {
                let saved: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if &saved != run_key {
                    bail!(
                        "--resume: the checkpoint in {} was made with different arguments or inputs; rerun with the same arguments, or without --resume to start over",
                        out.display()
                    );
                }
                let computed: Option<Vec<Vec<bool>>> = std::fs::read_to_string(&compute_path)
                    .ok()
                    .and_then(|t| serde_json::from_str(&t).ok());
                if computed.is_some_and(|c| plan.adopt(&c)) {
                    Some(text)
                } else {
                    note = Some(format!(
                        "--resume: the checkpoint in {} relied on prediction-cache entries that are gone (or it is incomplete); starting the run over",
                        out.display()
                    ));
                    None
                }
            }
            None => None,
        };
        if saved_key.is_some() {
            let (records, whole) = if log_path.exists() {
                RecordLog::read(&log_path)?
            } else {
                (vec![], 0)
            };
            let mut data = SampleData::empty(models, angles, 0);
            for (i, r) in records.iter().enumerate() {
                let (_, part) = store::decode(r, &format!("{} record {i}", log_path.display()))?;
                data.append(&part);
            }
            let log = if log_path.exists() {
                RecordLog::reopen(&log_path, whole)?
            } else {
                RecordLog::create(&log_path)?
            };
            return Ok((
                Checkpoint {
                    dir,
                    log,
                    appended: 0,
                },
                (!data.is_empty()).then_some(data),
                None,
            ));
        }
        if !resume {
            note = unresumed_note(out, &key_path, &log_path, run_key);
        }
        output::remove(&dir)?;
        // The pairs first, then the key: a checkpoint with a key has both.
        output::write_atomic(
            &compute_path,
            serde_json::to_string(&plan.compute)?.as_bytes(),
        )?;
        output::write_atomic(&key_path, serde_json::to_string_pretty(run_key)?.as_bytes())?;
        let log = RecordLog::create(&log_path)?;
        Ok((
            Checkpoint {
                dir,
                log,
                appended: 0,
            },
            None,
            note,
        ))
    }

    pub fn append(&mut self, chunk: &SampleData) -> Result<()> {
        self.appended += 1;
        self.log.append(&store::encode(chunk, Value::Null))
    }

    /// The run failed: keep the checkpoint only if it holds finished work to resume.
    pub fn abandon(&mut self, resumed: bool) {
        if self.appended == 0 && !resumed {
            let _ = output::remove(&self.dir);
        }
    }

    /// The run finished and its results are written: drop the checkpoint.
    pub fn finish(self) -> Result<()> {
        drop(self.log);
        output::remove(&self.dir)
    }
}

/// The note for a run without `--resume` that finds a checkpoint of this very
/// run (same key) in `out`: it says what is thrown away and how not to.
fn unresumed_note(out: &Path, key_path: &Path, log_path: &Path, run_key: &Value) -> Option<String> {
    let text = std::fs::read_to_string(key_path).ok()?;
    let saved: Value = serde_json::from_str(&text).ok()?;
    if &saved != run_key {
        return None;
    }
    let batches = RecordLog::read(log_path).map_or(0, |(r, _)| r.len());
    Some(format!(
        "{} held a checkpoint of this same run ({batches} finished batches), discarded because --resume was not given; pass --resume to continue from such a checkpoint",
        out.display()
    ))
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
