//! The checkpoint that `sweep --resume` continues from: `OUT/.rotbench-checkpoint/`,
//! a log of finished chunks under the run's key, removed when the results are written.

use super::cache_plan::CachePlan;
use anyhow::{bail, Result};
use rotbench::output::{self, RecordLog};
use rotbench::results::SampleData;
use rotbench::store;
use serde_json::Value;
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
