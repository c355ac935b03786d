//! `rotbench gate`: thresholds and baseline comparison; exit 0 pass, 1 fail, 2 error.
//! (The sweep's own `--gate-config` and `--save-baseline` are in `sweep/gate.rs`,
//! which shares the helpers here.)
//!
//! The checks, baselines and renderers live in `rotbench::gate`; this file reads
//! the inputs, prints the summary, and writes the JUnit and Markdown files
//! (through `rotbench::output`) and `$GITHUB_STEP_SUMMARY`.

use crate::cli::GateArgs;
use anyhow::{anyhow, bail, Result};
use rotbench::gate::{self, AngleSel, Baseline, Checks, Origin, Predictions, Verdict};
use rotbench::output;
use rotbench::summary::Summary;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(super) fn exit_code(v: &Verdict) -> ExitCode {
    if v.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn gate(args: GateArgs) -> Result<ExitCode> {
    let flags = Checks {
        min_accuracy: args.min_accuracy,
        min_mean_accuracy: args.min_mean_accuracy,
        max_drop: args.max_drop,
        min_consistency: args.min_consistency,
        min_worst_of_sweep: args.min_worst_of_sweep,
        min_worst_of_k_accuracy: args.min_worst_of_k_accuracy,
        max_ece: args.max_ece,
        max_flip_probability: args.max_flip_probability,
        min_top_k_accuracy: args.min_top_k_accuracy,
        angles: args.angles.clone().map(AngleSel::Spec),
        check_angles: None,
        models: (!args.models.is_empty()).then(|| args.models.clone()),
        baseline: args.baseline.clone(),
        baseline_dir: args.baseline_dir.clone(),
        max_regression: args.max_regression,
        significance: args.significance,
        allow_new_models: args.allow_new_models.then_some(true),
        allow_missing: args.allow_missing.then_some(true),
        only_new_failures: args.only_new_failures.then_some(true),
        models_from: Some("--model".into()),
    };
    flags.validate(&Origin::Flags)?;
    let file = args
        .config
        .as_deref()
        .map(|p| gate::read_config(p, "--config"))
        .transpose()?
        .unwrap_or_default();
    let checks = Checks::merge(file, flags);
    checks.validate_merged()?;

    let summary_path = if args.results.is_dir() {
        args.results.join("summary.json")
    } else {
        args.results.clone()
    };
    if !summary_path.is_file() {
        bail!(
            "--results {}: no such file; give the summary.json written by `rotbench sweep --out DIR` (or DIR)",
            summary_path.display()
        );
    }
    let summary = gate::read_summary(&summary_path).map_err(|e| anyhow!("--results {e:#}"))?;
    let shown = summary_path.display().to_string();

    let baseline = load_named_baseline(&checks)?;
    let current = match &baseline {
        None => None,
        Some(b) => Some(current_predictions(&summary_path, &summary, b)?),
    };
    let mut verdict = gate::evaluate(
        &summary,
        &checks,
        baseline.as_ref().zip(current.as_ref()),
        &shown,
    )?;
    verdict
        .notes
        .extend(context_notes(baseline.as_ref(), args.report_url.as_deref()));
    out!("{}", gate::render_text(&verdict));
    if let Some(p) = &args.junit {
        write_file(p, "--junit", &gate::render_junit(&verdict))?;
    }
    let md = gate::render_markdown(&verdict);
    if let Some(p) = &args.markdown {
        write_file(p, "--markdown", md.as_bytes())?;
    }
    append_step_summary(&md)?;
    Ok(exit_code(&verdict))
}

/// The gate's notes on what it compared with and where the report is: the
/// baseline's origin and settings, and `--report-url`.
pub(super) fn context_notes(baseline: Option<&Baseline>, report_url: Option<&str>) -> Vec<String> {
    let mut notes: Vec<String> = baseline.map(gate::describe_baseline).into_iter().collect();
    if let Some(u) = report_url {
        notes.push(format!("HTML report: {u}"));
    }
    notes
}

/// Where this run's baseline comes from, for its origin.json: now, and the git
/// commit of the working directory when it is inside a repository.
pub(super) fn baseline_origin() -> gate::BaselineOrigin {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let git_commit = git(&["rev-parse", "HEAD"]).filter(|c| !c.is_empty());
    let git_dirty = git_commit
        .as_ref()
        .and_then(|_| git(&["status", "--porcelain", "--untracked-files=no"]))
        .map(|s| !s.is_empty());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    gate::BaselineOrigin {
        saved_utc: rotbench::format::utc(now),
        git_commit,
        git_dirty,
    }
}

/// The baseline named by the checks, if any, from their (layered) baseline folder.
pub(super) fn load_named_baseline(checks: &Checks) -> Result<Option<Baseline>> {
    let dir = checks.baseline_folder();
    checks
        .baseline
        .as_deref()
        .map(|b| gate::load_baseline(b, &dir))
        .transpose()
}

/// The per-sample predictions beside `summary.json`, for the paired comparison.
/// They must be the ones that run wrote: summary.json records their sha256.
fn current_predictions(
    summary_path: &Path,
    summary: &Summary,
    b: &Baseline,
) -> Result<Predictions> {
    let dir = summary_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let p = dir.join("predictions.csv");
    if !summary.files.contains_key("predictions.csv") {
        bail!(
            "--baseline {}: the comparison needs the per-sample predictions, but {} records no predictions.csv \
             (the sweep ran with --no-predictions); rerun the sweep without --no-predictions",
            b.label,
            summary_path.display()
        );
    }
    let bytes = std::fs::read(&p).map_err(|e| {
        anyhow!(
            "--baseline {}: the comparison needs the per-sample predictions, but {} cannot be read ({e}); \
             rerun the sweep without --no-predictions",
            b.label,
            p.display()
        )
    })?;
    summary
        .check_file(summary_path, "predictions.csv", &p, &bytes)
        .map_err(|e| anyhow!("--baseline {}: {e:#}", b.label))?;
    Predictions::from_csv(&bytes, &p, summary)
}

/// Write a report file atomically, creating its folder if needed.
fn write_file(path: &Path, flag: &str, bytes: &[u8]) -> Result<()> {
    if path.is_dir() {
        bail!("{flag} {}: is a folder; give a file path", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        output::prepare_dir(parent, flag)?;
    }
    output::write_atomic(path, bytes).map_err(|e| anyhow!("{flag} {e:#}"))
}

/// Append the Markdown to `$GITHUB_STEP_SUMMARY` when it is set. GitHub reads
/// that file after the step, and other steps' tools append to it too, so this
/// is an append, not an atomic replace through `output`.
pub(super) fn append_step_summary(md: &str) -> Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let path = PathBuf::from(path);
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(md.as_bytes()));
    res.map_err(|e| {
        anyhow!("GITHUB_STEP_SUMMARY {}: cannot append the gate summary ({e}); unset it or make it writable", path.display())
    })
}

pub(super) fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}
