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
        models: (!args.models.is_empty()).then(|| args.models.clone()),
        baseline: args.baseline.clone(),
        baseline_dir: args.baseline_dir.clone(),
        max_regression: args.max_regression,
        significance: args.significance,
        allow_new_models: args.allow_new_models.then_some(true),
        allow_missing: args.allow_missing.then_some(true),
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
    let verdict = gate::evaluate(
        &summary,
        &checks,
        baseline.as_ref().zip(current.as_ref()),
        &shown,
    )?;
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
