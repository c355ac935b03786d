//! `rotbench report DIR`: re-render the plots and index.html of an output folder
//! from its summary.json (plus examples.json and timing.json when present),
//! without running a model.

use crate::cli::ReportArgs;
use anyhow::{anyhow, bail, Result};
use rotbench::hash::content_hash;
use rotbench::report::examples::ExamplesFile;
use rotbench::report::visual;
use rotbench::summary::Summary;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow!("{}: cannot read {what} ({e})", path.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        anyhow!(
            "{}: not a valid {what} (line {}, column {}: {e}); re-run `rotbench sweep` to write it again",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

pub fn report(args: ReportArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    if !dir.is_dir() {
        bail!(
            "{}: not a folder; give the --out folder of a `rotbench sweep` run",
            dir.display()
        );
    }
    let summary_path = dir.join("summary.json");
    if !summary_path.is_file() {
        bail!(
            "{}: missing; `rotbench report` needs a folder written by `rotbench sweep`",
            summary_path.display()
        );
    }
    let summary_bytes = std::fs::read(&summary_path)
        .map_err(|e| anyhow!("{}: cannot read ({e})", summary_path.display()))?;
    let v: serde_json::Value = read_json(&summary_path, "rotbench summary.json")?;
    rotbench::summary::require_labels(&v, &summary_path, "`rotbench report`")?;
    let summary: Summary = serde_json::from_value(v).map_err(|e| {
        anyhow!(
            "{}: not a valid rotbench summary.json ({e}); re-run `rotbench sweep` to write it again",
            summary_path.display()
        )
    })?;
    // Every file read here must come from the run that wrote summary.json.
    let examples_path = dir.join("examples.json");
    let examples: Option<ExamplesFile> = if examples_path.is_file() {
        let bytes = std::fs::read(&examples_path)
            .map_err(|e| anyhow!("{}: cannot read ({e})", examples_path.display()))?;
        summary.check_file(&summary_path, "examples.json", &examples_path, &bytes)?;
        Some(read_json(&examples_path, "rotbench examples.json")?)
    } else {
        None
    };
    // Wall time is optional metadata: a missing or unreadable timing.json only drops
    // it, but one written by another run is refused like any other stray file.
    let timing_path = dir.join("timing.json");
    let timing = std::fs::read(&timing_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    if let Some(t) = &timing {
        let want = content_hash(&summary_bytes);
        if t.get("summary_sha256").and_then(|v| v.as_str()) != Some(want.as_str()) {
            bail!(
                "{} does not belong to {}: it records another summary.json's sha256 (another run wrote it); \
                 rerun `rotbench sweep` to write the set again, or delete timing.json",
                timing_path.display(),
                summary_path.display()
            );
        }
    }
    let wall_seconds = timing
        .as_ref()
        .and_then(|v| v.get("wall_seconds").and_then(|w| w.as_f64()));
    let files = visual::render(&summary, examples.as_ref(), wall_seconds)
        .map_err(|e| anyhow!("{}: {e:#}", dir.display()))?;
    rotbench::output::replace_set(dir, rotbench::report::files::REPORT_FILES, &files)?;
    if examples.is_none() {
        eprintln!(
            "note: {} is missing, so the report has no rotation strip and no gallery",
            examples_path.display()
        );
    }
    outln!("wrote {} report files to {}", files.len(), dir.display());
    Ok(ExitCode::SUCCESS)
}
