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
use rotbench::sweep::SweepResult;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Was `flag` given on the command line? For the two gate flags with clap
/// defaults (`--significance`, `--baseline-dir`): only an explicit flag may
/// override the `[gate]` table, and `GateArgs` cannot tell a default from a value.
fn flag_given(flag: &str) -> bool {
    let eq = format!("{flag}=");
    std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == flag || a.starts_with(&eq)
    })
}

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
        angles: args.angles.clone().map(AngleSel::Spec),
        models: (!args.models.is_empty()).then(|| args.models.clone()),
        baseline: args.baseline.clone(),
        baseline_dir: flag_given("--baseline-dir").then(|| args.baseline_dir.clone()),
        max_regression: args.max_regression,
        significance: flag_given("--significance").then_some(args.significance),
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

    let baseline = load_named_baseline(&checks, Path::new(gate::DEFAULT_BASELINE_DIR))?;
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
    print!("{}", gate::render_text(&verdict));
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

/// The baseline named by the checks, if any, from `baseline_dir` or `default_dir`.
fn load_named_baseline(checks: &Checks, default_dir: &Path) -> Result<Option<Baseline>> {
    let dir = checks.baseline_dir.as_deref().unwrap_or(default_dir);
    checks
        .baseline
        .as_deref()
        .map(|b| gate::load_baseline(b, dir))
        .transpose()
}

/// The per-sample predictions beside `summary.json`, for the paired comparison.
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
    let bytes = std::fs::read(&p).map_err(|e| {
        anyhow!(
            "--baseline {}: the comparison needs the per-sample predictions, but {} cannot be read ({e}); \
             rerun the sweep without --no-predictions",
            b.label,
            p.display()
        )
    })?;
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

/// After a sweep: save a baseline (`--save-baseline`) and gate (`--gate-config`).
/// Returns the exit code when a gate ran.
///
/// With `--save-baseline NAME` and a `[gate]` baseline of the same name, the gate
/// compares with the baseline as it was before this sweep, then the new one
/// replaces it; if there was none yet, the comparison is with this run (a note says so).
pub fn after_sweep(
    args: &SweepArgs,
    summary: &Summary,
    result: &SweepResult,
) -> Result<Option<ExitCode>> {
    if args.save_baseline.is_none() && args.gate_config.is_none() {
        return Ok(None);
    }
    // Everything that can be refused is checked before anything is written here.
    let checks = check_sweep_flags(args)?;
    let predictions = Predictions::from_sweep(summary, result);

    // A baseline to compare with that exists now is read before a save may replace it.
    let compare_path = checks.as_ref().and_then(|c| {
        let dir = c.baseline_dir.as_deref().unwrap_or(&args.baseline_dir);
        c.baseline
            .as_deref()
            .map(|b| gate::resolve_baseline(b, dir))
    });
    let mut baseline = match (&checks, &compare_path) {
        (Some(c), Some(p)) if p.is_dir() => load_named_baseline(c, &args.baseline_dir)?,
        _ => None,
    };

    let mut saved_now = None;
    if let Some(name) = &args.save_baseline {
        let folder = args.baseline_dir.join(name);
        output::prepare_dir(&folder, "--baseline-dir")?;
        output::write_all(&folder, &gate::baseline_files(summary, &predictions)?)?;
        if !args.quiet {
            println!("saved baseline `{name}` in {}", folder.display());
        }
        saved_now = Some(folder);
    }

    let Some(checks) = checks else {
        return Ok(None);
    };
    let mut self_note = None;
    if baseline.is_none() && checks.baseline.is_some() {
        baseline = load_named_baseline(&checks, &args.baseline_dir)?;
        if let (Some(s), Some(p)) = (&saved_now, &compare_path) {
            if same_folder(s, p) {
                self_note = Some(format!(
                    "baseline `{}` did not exist before and was saved by this run, so the comparison is with itself",
                    checks.baseline.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    let shown = args.out.join("summary.json").display().to_string();
    let current = baseline.as_ref().map(|_| &predictions);
    let mut verdict = gate::evaluate(summary, &checks, baseline.as_ref().zip(current), &shown)?;
    verdict.notes.extend(self_note);
    print!("{}", gate::render_text(&verdict));
    let md = gate::render_markdown(&verdict);
    output::write_all(
        &args.out,
        &[
            ("junit.xml".to_string(), gate::render_junit(&verdict)),
            ("gate.md".to_string(), md.clone().into_bytes()),
        ],
    )?;
    append_step_summary(&md)?;
    Ok(Some(exit_code(&verdict)))
}
