//! The ends of a sweep that judge and keep it: `--gate-config` (the gate runs
//! before anything is written, so its JUnit and Markdown files join the one
//! result set) and `--save-baseline` (saved after the results, and only when the
//! gate passed unless `--save-baseline-on-failure`).

use super::config::SweepConfig;
use crate::commands::gate::{append_step_summary, exit_code, load_named_baseline, same_folder};
use anyhow::Result;
use rotbench::gate::{self, Baseline, Predictions, Verdict};
use rotbench::output;
use rotbench::results::SweepResult;
use rotbench::summary::Summary;
use std::process::ExitCode;

/// The gate a sweep runs with `--gate-config`, evaluated before anything is
/// written; `files` (junit.xml, gate.md) join the run's result set.
pub struct SweepGate {
    verdict: Verdict,
    markdown: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Gate a sweep's results (`--gate-config`), against the baseline as it is before
/// this run. A gate that names the baseline this run saves (`--save-baseline`)
/// and finds none yet compares the run with itself, with a note.
pub fn sweep_gate(
    cfg: &SweepConfig,
    summary: &Summary,
    result: &SweepResult,
) -> Result<Option<SweepGate>> {
    let Some(mut checks) = cfg.gate.clone() else {
        return Ok(None);
    };
    let dir = cfg.baseline_dir.clone();
    checks.baseline_dir = Some(dir.clone());
    let predictions = Predictions::from_sweep(summary, result);
    let compare_path = checks
        .baseline
        .as_deref()
        .map(|b| gate::resolve_baseline(b, &dir));
    let first_save = match (&compare_path, &cfg.save_baseline) {
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
            origin: None,
        })
    } else {
        load_named_baseline(&checks)?
    };
    let shown = cfg.out.join("summary.json").display().to_string();
    let current = baseline.as_ref().map(|_| &predictions);
    let mut verdict = gate::evaluate(summary, &checks, baseline.as_ref().zip(current), &shown)?;
    verdict.notes.extend(notes);
    verdict.notes.extend(super::super::gate::context_notes(
        baseline.as_ref().filter(|_| !first_save),
        cfg.report_url.as_deref(),
    ));
    let markdown = gate::render_markdown(&verdict);
    let files = vec![
        ("junit.xml".to_string(), gate::render_junit(&verdict)),
        ("gate.md".to_string(), markdown.clone().into_bytes()),
    ];
    Ok(Some(SweepGate {
        verdict,
        markdown,
        files,
    }))
}

/// After a sweep's results are written: report the gate, then save the baseline
/// (`--save-baseline`) unless the gate failed (`--save-baseline-on-failure` saves
/// it regardless). Returns the exit code when a gate ran.
pub fn after_sweep(
    cfg: &SweepConfig,
    summary: &Summary,
    result: &SweepResult,
    gate: Option<SweepGate>,
) -> Result<Option<ExitCode>> {
    if let Some(g) = &gate {
        out!("{}", gate::render_text(&g.verdict));
        append_step_summary(&g.markdown)?;
    }
    let failed = gate.as_ref().is_some_and(|g| !g.verdict.passed());
    if let Some(name) = &cfg.save_baseline {
        if failed && !cfg.save_baseline_on_failure {
            eprintln!(
                "baseline `{name}` was not saved: the gate failed, and a failing run must not become the baseline \
                 that later runs compare with; pass --save-baseline-on-failure to save it anyway"
            );
        } else {
            let predictions_csv = rotbench::report::csv::predictions_csv(summary, result)?;
            let folder = cfg.baseline_dir.join(name);
            output::prepare_dir(&folder, "--baseline-dir")?;
            output::replace_set(
                &folder,
                gate::BASELINE_FILES,
                &gate::baseline_files(
                    summary,
                    predictions_csv,
                    &super::super::gate::baseline_origin(),
                )?,
            )?;
            if !cfg.quiet {
                outln!("saved baseline `{name}` in {}", folder.display());
            }
        }
    }
    Ok(gate.map(|g| exit_code(&g.verdict)))
}
