//! `rotbench gate`: thresholds and baseline comparison; exit 0 pass, 1 fail, 2 error.
//! Also the hooks at the end of `rotbench sweep`: `--save-baseline` and `--gate-config`.
//!
//! The checks, baselines and renderers live in `rotbench::gate`; this file reads
//! the inputs, prints the summary, and writes the JUnit and Markdown files
//! (through `rotbench::output`) and `$GITHUB_STEP_SUMMARY`.

use crate::cli::{GateArgs, SweepArgs};
use anyhow::{anyhow, bail, Result};
use rotbench::gate::{self, AngleSel, Baseline, Checks, Origin, Predictions, Verdict};
use rotbench::output;
use rotbench::summary::Summary;
use rotbench::results::SweepResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn exit_code(v: &Verdict) -> ExitCode {
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
fn load_named_baseline(checks: &Checks) -> Result<Option<Baseline>> {
    let dir = checks.baseline_folder();
    checks
        .baseline
        .as_deref()
        .map(|b| gate::load_baseline(b, &dir))
        .transpose()
}

/// A sweep's baseline folder, for comparing and saving alike: `--baseline-dir`,
/// else the --gate-config table's `baseline_dir`, else the default.
fn sweep_baseline_dir(args: &SweepArgs, checks: Option<&Checks>) -> PathBuf {
    Checks {
        baseline_dir: args
            .baseline_dir
            .clone()
            .or_else(|| checks.and_then(|c| c.baseline_dir.clone())),
        ..Checks::default()
    }
    .baseline_folder()
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
fn append_step_summary(md: &str) -> Result<()> {
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

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Check `--save-baseline` and `--gate-config` of a sweep: the name, and the
/// `[gate]` table (returned). Cheap; `sweep` may call it before any work starts
/// so that a typo does not cost a whole sweep.
pub fn check_sweep_flags(args: &SweepArgs) -> Result<Option<Checks>> {
    if let Some(name) = &args.save_baseline {
        gate::check_baseline_name(name)?;
    }
    let checks = args
        .gate_config
        .as_deref()
        .map(|p| gate::read_config(p, "--gate-config"))
        .transpose()?;
    if let (Some(c), Some(p)) = (&checks, &args.gate_config) {
        c.validate_merged()
            .map_err(|e| anyhow!("--gate-config {}: {e:#}", p.display()))?;
    }
    Ok(checks)
}

/// The gate a sweep runs with `--gate-config`, evaluated before anything is
/// written; `files` (junit.xml, gate.md) join the run's result set.
pub struct SweepGate {
    verdict: Verdict,
    markdown: String,
    pub files: Vec<(String, Vec<u8>)>,
    /// The baseline folder the gate compared with, where `--save-baseline` saves.
    pub baseline_dir: PathBuf,
}

/// Gate a sweep's results (`--gate-config`), against the baseline as it is before
/// this run. A gate that names the baseline this run saves (`--save-baseline`)
/// and finds none yet compares the run with itself, with a note.
pub fn sweep_gate(
    args: &SweepArgs,
    summary: &Summary,
    result: &SweepResult,
) -> Result<Option<SweepGate>> {
    let Some(mut checks) = check_sweep_flags(args)? else {
        return Ok(None);
    };
    // The flag wins over the table, for the comparison and the save alike.
    let dir = sweep_baseline_dir(args, Some(&checks));
    checks.baseline_dir = Some(dir.clone());
    let predictions = Predictions::from_sweep(summary, result);
    let compare_path = checks
        .baseline
        .as_deref()
        .map(|b| gate::resolve_baseline(b, &dir));
    let first_save = match (&compare_path, &args.save_baseline) {
        (Some(p), Some(name)) if !p.is_dir() => same_folder(&dir.join(name), p),
        _ => false,
    };
    let mut notes = Vec::new();
    let baseline = if first_save {
        notes.push(format!(
            "baseline `{}` did not exist before this run, so the comparison is with the run itself; it is saved as the baseline if the gate passes",
            checks.baseline.as_deref().unwrap_or_default()
        ));
        Some(Baseline {
            label: checks.baseline.clone().unwrap_or_default(),
            path: compare_path.clone().unwrap_or_default(),
            summary: summary.clone(),
            predictions: predictions.clone(),
        })
    } else {
        load_named_baseline(&checks)?
    };
    let shown = args.out.join("summary.json").display().to_string();
    let current = baseline.as_ref().map(|_| &predictions);
    let mut verdict = gate::evaluate(summary, &checks, baseline.as_ref().zip(current), &shown)?;
    verdict.notes.extend(notes);
    let markdown = gate::render_markdown(&verdict);
    let files = vec![
        ("junit.xml".to_string(), gate::render_junit(&verdict)),
        ("gate.md".to_string(), markdown.clone().into_bytes()),
    ];
    Ok(Some(SweepGate {
        verdict,
        markdown,
        files,
        baseline_dir: dir,
    }))
}

/// After a sweep's results are written: report the gate, then save the baseline
/// (`--save-baseline`) unless the gate failed (`--save-baseline-on-failure` saves
/// it regardless). Returns the exit code when a gate ran.
pub fn after_sweep(
    args: &SweepArgs,
    summary: &Summary,
    result: &SweepResult,
    gate: Option<SweepGate>,
) -> Result<Option<ExitCode>> {
    if let Some(g) = &gate {
        out!("{}", gate::render_text(&g.verdict));
        append_step_summary(&g.markdown)?;
    }
    let failed = gate.as_ref().is_some_and(|g| !g.verdict.passed());
    if let Some(name) = &args.save_baseline {
        if failed && !args.save_baseline_on_failure {
            eprintln!(
                "baseline `{name}` was not saved: the gate failed, and a failing run must not become the baseline \
                 that later runs compare with; pass --save-baseline-on-failure to save it anyway"
            );
        } else {
            let predictions_csv = rotbench::report::csv::predictions_csv(summary, result)?;
            let dir = match &gate {
                Some(g) => g.baseline_dir.clone(),
                None => sweep_baseline_dir(args, None),
            };
            let folder = dir.join(name);
            output::prepare_dir(&folder, "--baseline-dir")?;
            output::replace_set(
                &folder,
                gate::BASELINE_FILES,
                &gate::baseline_files(summary, predictions_csv)?,
            )?;
            if !args.quiet {
                outln!("saved baseline `{name}` in {}", folder.display());
            }
        }
    }
    Ok(gate.map(|g| exit_code(&g.verdict)))
}
