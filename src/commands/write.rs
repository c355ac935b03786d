//! The end of every run that produces results (a sweep, a merge): build the
//! exports, write them atomically, print warnings and the table.

use anyhow::Result;
use rotbench::hash::content_hash;
use rotbench::output;
use rotbench::report::{self, csv as csvx, json::SummaryJson, Export, Results};
use rotbench::results::SweepResult;
use rotbench::summary::Summary;
use rotbench::unlabelled::{self, UnlabelledSummary};
use std::path::Path;

pub struct Outputs<'a> {
    pub out: &'a Path,
    pub no_predictions: bool,
    pub no_report: bool,
    pub quiet: bool,
}

/// Write every result file as one set (replacing every result file of an earlier
/// run, see `rotbench::output::replace_set`); `timing` goes to timing.json (not
/// deterministic), `extra` (the gate's files) beside the rest. summary.json records
/// the sha256 of each deterministic file and timing.json the sha256 of summary.json,
/// so a reader can tell that they belong together. Returns the summary as written.
pub fn write_results(
    o: &Outputs<'_>,
    summary: &Summary,
    result: &SweepResult,
    mut timing: serde_json::Value,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<Summary> {
    let results = Results {
        summary,
        sweep: Some(result),
    };
    let exporters: Vec<Box<dyn Export>> = vec![
        Box::new(csvx::SummaryCsv),
        Box::new(csvx::PerAngle),
        Box::new(csvx::PerClass),
        Box::new(csvx::ConfusionLong),
        Box::new(report::examples::Examples),
    ];
    let mut files = Vec::new();
    for e in &exporters {
        files.push((e.file_name().to_string(), e.render(&results)?));
    }
    let mut bound = summary.clone();
    bound.files = files
        .iter()
        .map(|(n, b)| (n.clone(), content_hash(b)))
        .collect();
    let write_predictions =
        |w: &mut dyn std::io::Write| csvx::write_predictions(summary, result, w);
    // predictions.csv is written first; the rest, summary.json with its hash, after.
    let make = |hashes: &[String]| -> Result<Vec<(String, Vec<u8>)>> {
        if let Some(h) = hashes.first() {
            bound.files.insert("predictions.csv".into(), h.clone());
        }
        let summary = &bound;
        let summary_bytes = SummaryJson.render(&Results {
            summary,
            sweep: Some(result),
        })?;
        if let Some(t) = timing.as_object_mut() {
            t.insert("summary_sha256".into(), content_hash(&summary_bytes).into());
        }
        files.insert(0, ("summary.json".to_string(), summary_bytes));
        if !o.no_report {
            let examples = report::examples::build(&results);
            let wall = timing.get("wall_seconds").and_then(|v| v.as_f64());
            files.extend(report::visual::render(summary, examples.as_ref(), wall)?);
        }
        files.push(("timing.json".into(), serde_json::to_vec_pretty(&timing)?));
        files.extend(extra);
        Ok(files)
    };
    replace_set(o, &write_predictions, make)?;
    let summary = &bound;
    for m in &summary.models {
        if m.nonfinite_logits > 0 {
            eprintln!(
                "warning: {}: {} predictions had NaN or inf logits; they count as wrong (nonfinite in per_angle.csv, nonfinite_logits in summary.json)",
                m.id.name, m.nonfinite_logits
            );
        }
    }
    data_notes(&summary.dataset);
    if !o.quiet {
        out!("{}", report::table::render(summary));
    }
    Ok(bound)
}

/// Write the results of a sweep without labels as one set, as [`write_results`]
/// does: summary.json, per_angle.csv, predictions.csv (unless --no-predictions)
/// and timing.json. There is no report: its charts and tables are of accuracy
/// and calibration, which need labels. Returns the summary as written.
pub fn write_unlabelled(
    o: &Outputs<'_>,
    summary: &UnlabelledSummary,
    result: &SweepResult,
    mut timing: serde_json::Value,
) -> Result<UnlabelledSummary> {
    let per_angle = unlabelled::per_angle_csv(summary)?;
    let mut bound = summary.clone();
    bound
        .files
        .insert("per_angle.csv".into(), content_hash(&per_angle));
    let write_predictions =
        |w: &mut dyn std::io::Write| unlabelled::write_predictions(summary, result, w);
    let make = |hashes: &[String]| -> Result<Vec<(String, Vec<u8>)>> {
        if let Some(h) = hashes.first() {
            bound.files.insert("predictions.csv".into(), h.clone());
        }
        let mut summary_bytes = serde_json::to_vec_pretty(&bound)?;
        summary_bytes.push(b'\n');
        if let Some(t) = timing.as_object_mut() {
            t.insert("summary_sha256".into(), content_hash(&summary_bytes).into());
        }
        Ok(vec![
            ("summary.json".to_string(), summary_bytes),
            ("per_angle.csv".to_string(), per_angle),
            ("timing.json".into(), serde_json::to_vec_pretty(&timing)?),
        ])
    };
    replace_set(o, &write_predictions, make)?;
    for m in &bound.models {
        if m.nonfinite_logits > 0 {
            eprintln!(
                "warning: {}: {} predictions had NaN or inf logits (nonfinite in per_angle.csv)",
                m.id.name, m.nonfinite_logits
            );
        }
    }
    data_notes(&bound.dataset);
    if !o.no_report {
        eprintln!("note: no report (index.html, plots/): a sweep without labels has no accuracy or calibration to chart; its figures are in summary.json and per_angle.csv");
    }
    if !o.quiet {
        out!("{}", unlabelled::table(&bound));
    }
    Ok(bound)
}

/// Write predictions.csv (unless --no-predictions), then the files `make` gives
/// from its hash (none when there is no predictions.csv), as one set.
fn replace_set(
    o: &Outputs<'_>,
    write_predictions: &dyn Fn(&mut dyn std::io::Write) -> Result<()>,
    make: impl FnOnce(&[String]) -> Result<Vec<(String, Vec<u8>)>>,
) -> Result<()> {
    let streamed: Vec<output::Streamed<'_>> = if o.no_predictions {
        vec![]
    } else {
        vec![("predictions.csv".into(), write_predictions)]
    };
    output::replace_set_streaming(o.out, report::files::RESULT_FILES, &streamed, make)
}

/// What the user should know of the data as read: unreadable images skipped,
/// files that are not samples.
fn data_notes(d: &rotbench::summary::DatasetSummary) {
    if !d.skipped.is_empty() {
        eprintln!(
            "warning: skipped {} unreadable images (listed under dataset.skipped in summary.json)",
            d.skipped.len()
        );
    }
    if !d.ignored.is_empty() {
        eprintln!(
            "note: {} files under the image folder are not samples (other extensions, outside the class folders, or hidden; listed under dataset.ignored in summary.json)",
            d.ignored.len()
        );
    }
}
