//! The CSV exports: `summary.csv` (a row per model), `per_angle.csv`, `per_class.csv`, `confusion.csv` (long form,
//! non-zero cells only) and `predictions.csv`. Every float is written in shortest
//! round-trip form, so reading it back gives the exact value.

use super::{Export, Results};
use crate::format::{format_angle, num};
use crate::results::{push_top_k, top_k_text, PredictionRow, SweepResult, PREDICTION_COLUMNS};
use crate::summary::Summary;
use anyhow::Result;

pub(crate) fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new())
}

pub(crate) fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>> {
    Ok(w.into_inner().map_err(|e| anyhow::anyhow!("csv: {e}"))?)
}

/// An optional figure as a field: empty when absent.
pub(crate) fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), num)
}

/// An optional interval as its two fields: both empty when absent.
pub(crate) fn ci(v: Option<[f64; 2]>) -> [String; 2] {
    match v {
        Some([lo, hi]) => [num(lo), num(hi)],
        None => [String::new(), String::new()],
    }
}

pub const PER_ANGLE_COLUMNS: [&str; 26] = [
    "model",
    "angle",
    "dx",
    "dy",
    "reference",
    "n",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "precision_weighted",
    "recall_weighted",
    "f1_weighted",
    "consistency",
    "accuracy_drop",
    "prob_shift",
    "error_consistency",
    "confusion_similarity",
    "mcnemar_p_vs_reference",
    "nonfinite",
    "in_sweep",
];

/// The columns after [`PER_ANGLE_COLUMNS`] (issue 18): `top{K}_accuracy` (only
/// when a model has more than K classes), the calibration and stability figures,
/// and the bootstrap intervals (empty with --bootstrap 0).
pub fn per_angle_extra_columns(top_k: Option<usize>) -> Vec<String> {
    let mut c = vec![];
    if let Some(k) = top_k {
        c.push(format!("top{k}_accuracy"));
    }
    c.extend(["nll", "brier", "ece", "mean_confidence", "flip_next"].map(String::from));
    if let Some(k) = top_k {
        c.push(format!("top{k}_distance_next"));
    }
    for m in ["f1_macro", "consistency", "ece", "flip_next"] {
        c.push(format!("{m}_ci_low"));
        c.push(format!("{m}_ci_high"));
    }
    c
}

/// The columns of `summary.csv`, one row per model: the sweep's figures of
/// summary.json (`models[].sweep`) for readers of files rather than JSON. The last
/// three are empty without `--worst-of`; `grid_accuracy` equals `worst_of_sweep`.
pub const SUMMARY_COLUMNS: [&str; 17] = [
    "model",
    "n",
    "accuracy_at_0",
    "mean_accuracy",
    "worst_angle",
    "worst_accuracy",
    "worst_of_sweep",
    "relative_robustness",
    "flip_probability",
    "ece_at_0",
    "ece_at_worst_angle",
    "worst_ece",
    "worst_ece_angle",
    "grid_accuracy",
    "worst_of_k",
    "worst_of_k_accuracy",
    "random_accuracy",
];

/// `summary.csv`: one row per model.
pub struct SummaryCsv;
impl Export for SummaryCsv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }
    fn render(&self, r: &Results<'_>) -> Result<Vec<u8>> {
        let mut w = writer();
        w.write_record(SUMMARY_COLUMNS)?;
        let opt = |v: Option<f64>| v.map_or(String::new(), num);
        for m in &r.summary.models {
            let s = &m.sweep;
            let reference = m.angles.iter().find(|a| a.reference);
            let worst = m.angles.iter().find(|a| {
                a.in_sweep
                    && a.angle == s.worst_angle
                    && s.worst_shift
                        .is_none_or(|[dx, dy]| a.dx == dx && a.dy == dy)
            });
            let k = s.worst_of_k.as_ref();
            w.write_record([
                m.id.name.clone(),
                r.summary.dataset.n.to_string(),
                num(s.accuracy_at_reference),
                num(s.mean_accuracy),
                format_angle(s.worst_angle),
                num(s.worst_accuracy),
                num(s.worst_of_sweep_accuracy),
                num(s.relative_robustness),
                opt(s.flip_probability),
                opt(reference.map(|a| a.ece)),
                opt(worst.map(|a| a.ece)),
                num(s.worst_ece),
                format_angle(s.worst_ece_angle),
                num(s.grid_accuracy),
                k.map_or(String::new(), |k| k.k.to_string()),
                opt(k.map(|k| k.accuracy)),
                opt(k.map(|k| k.random_accuracy)),
            ])?;
        }
        finish(w)
    }
}

pub struct PerAngle;
impl Export for PerAngle {
    fn file_name(&self) -> &'static str {
        "per_angle.csv"
    }
    fn render(&self, r: &Results<'_>) -> Result<Vec<u8>> {
        let mut w = writer();
        // Top-K columns when any model has top-K figures (all share the classes).
        let top_k = r
            .summary
            .models
            .iter()
            .flat_map(|m| &m.angles)
            .any(|a| a.top_k_accuracy.is_some())
            .then_some(r.summary.settings.top_k);
        let extra = per_angle_extra_columns(top_k);
        w.write_record(
            PER_ANGLE_COLUMNS
                .iter()
                .copied()
                .chain(extra.iter().map(String::as_str)),
        )?;
        for m in &r.summary.models {
            for a in &m.angles {
                let mut row: Vec<String> =
                    Vec::with_capacity(PER_ANGLE_COLUMNS.len() + extra.len());
                row.extend([
                    m.id.name.clone(),
                    format_angle(a.angle),
                    format_angle(a.dx),
                    format_angle(a.dy),
                    a.reference.to_string(),
                    a.n.to_string(),
                    num(a.accuracy),
                    num(a.accuracy_ci_low),
                    num(a.accuracy_ci_high),
                    num(a.precision_macro),
                    num(a.recall_macro),
                    num(a.f1_macro),
                    num(a.precision_micro),
                    num(a.recall_micro),
                    num(a.f1_micro),
                    num(a.precision_weighted),
                    num(a.recall_weighted),
                    num(a.f1_weighted),
                    num(a.consistency),
                    num(a.accuracy_drop),
                    num(a.prob_shift),
                    num(a.error_consistency),
                    num(a.confusion_similarity),
                    num(a.mcnemar_p_vs_reference),
                    a.nonfinite.to_string(),
                    a.in_sweep.to_string(),
                ]);
                if top_k.is_some() {
                    row.push(opt(a.top_k_accuracy));
                }
                row.extend([
                    num(a.nll),
                    num(a.brier),
                    num(a.ece),
                    num(a.mean_confidence),
                    opt(a.flip_next),
                ]);
                if top_k.is_some() {
                    row.push(opt(a.top_k_distance_next));
                }
                for v in [a.f1_macro_ci, a.consistency_ci, a.ece_ci, a.flip_next_ci] {
                    row.extend(ci(v));
                }
                w.write_record(&row)?;
            }
        }
        finish(w)
    }
}

pub struct PerClass;
impl Export for PerClass {
    fn file_name(&self) -> &'static str {
        "per_class.csv"
    }
    fn render(&self, r: &Results<'_>) -> Result<Vec<u8>> {
        let mut w = writer();
        w.write_record([
            "model",
            "angle",
            "dx",
            "dy",
            "class",
            "class_name",
            "precision",
            "recall",
            "f1",
            "support",
        ])?;
        for m in &r.summary.models {
            for a in &m.angles {
                for s in &a.per_class {
                    let c = s.class;
                    w.write_record([
                        m.id.name.clone(),
                        format_angle(a.angle),
                        format_angle(a.dx),
                        format_angle(a.dy),
                        c.to_string(),
                        m.id.spec.classes.get(c).cloned().unwrap_or_default(),
                        num(s.precision),
                        num(s.recall),
                        num(s.f1),
                        s.support.to_string(),
                    ])?;
                }
            }
        }
        finish(w)
    }
}

pub struct ConfusionLong;
impl Export for ConfusionLong {
    fn file_name(&self) -> &'static str {
        "confusion.csv"
    }
    fn render(&self, r: &Results<'_>) -> Result<Vec<u8>> {
        let mut w = writer();
        w.write_record(["model", "angle", "dx", "dy", "true", "pred", "count"])?;
        for m in &r.summary.models {
            for a in &m.angles {
                // Row by row: a row's cells, then its invalid predictions (pred -1).
                let mut cells = a.confusion.iter().peekable();
                for t in 0..m.id.spec.classes.len() as u64 {
                    while let Some(&&[ct, p, count]) = cells.peek() {
                        if ct != t {
                            break;
                        }
                        w.write_record([
                            m.id.name.clone(),
                            format_angle(a.angle),
                            format_angle(a.dx),
                            format_angle(a.dy),
                            t.to_string(),
                            p.to_string(),
                            count.to_string(),
                        ])?;
                        cells.next();
                    }
                    let inv = a.invalid_of(t as usize);
                    if inv > 0 {
                        w.write_record([
                            m.id.name.clone(),
                            format_angle(a.angle),
                            format_angle(a.dx),
                            format_angle(a.dy),
                            t.to_string(),
                            "-1".into(),
                            inv.to_string(),
                        ])?;
                    }
                }
            }
        }
        finish(w)
    }
}

/// `predictions.csv`: one [`PredictionRow`] per model, angle and sample. The sweep
/// writes it, and a saved baseline stores the same bytes.
pub fn predictions_csv(summary: &Summary, sweep: &SweepResult) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    write_predictions(summary, sweep, &mut out)?;
    Ok(out)
}

/// The bytes of [`predictions_csv`], streamed into `out` rather than held: the
/// file has a row per model x angle x sample (2.2 million rows, 200 MB, for the
/// demo), so the sweep writes it in pieces instead of keeping it. The pieces (up
/// to [`PREDICTION_PIECE`] rows of one model at one pose) are formatted on
/// rayon's threads, a round of one per thread at a time (the next round while
/// this thread writes the last), and written in order, each row straight into
/// bytes ([`RowText`]): the bytes are those of one csv writer serialising every
/// row in turn, since a CSV row's text depends on that row alone.
pub fn write_predictions(
    summary: &Summary,
    sweep: &SweepResult,
    out: &mut dyn std::io::Write,
) -> Result<()> {
    use rayon::prelude::*;
    let mut head = rows(Vec::new());
    head.write_record(PREDICTION_COLUMNS)?;
    out.write_all(&finish(head)?)?;
    let n = sweep.labels.len();
    let round = rayon::current_num_threads().max(1);
    for (m, ms) in summary.models.iter().zip(&sweep.models) {
        let pieces: Vec<(usize, usize)> = (0..sweep.poses.len())
            .flat_map(|ai| (0..n).step_by(PREDICTION_PIECE).map(move |at| (ai, at)))
            .collect();
        let piece = |&(ai, at): &(usize, usize)| -> Result<Vec<u8>> {
            let end = (at + PREDICTION_PIECE).min(n);
            let mut piece = Vec::with_capacity((end - at) * ROW_BYTES);
            let row = RowText::new(&m.id.name, sweep.poses[ai]);
            let mut text = String::new();
            for s in at..end {
                row.push(
                    &mut piece,
                    sweep,
                    &ms.cols[ai],
                    s,
                    ms.top_k_list(ai, s),
                    &mut text,
                );
            }
            Ok(piece)
        };
        // A thread formats the rounds while this one writes the last round's pieces.
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(round);
            scope.spawn(move || {
                for group in pieces.chunks(round) {
                    let texts: Vec<Result<Vec<u8>>> = group.par_iter().map(piece).collect();
                    for text in texts {
                        if tx.send(text).is_err() {
                            return; // the writer stopped
                        }
                    }
                }
            });
            for text in rx {
                out.write_all(&text?)?;
            }
            Ok(())
        })?;
        if let Some(draws) = &sweep.draws {
            let mut w = rows(&mut *out);
            write_draws(&mut w, m.id.name.as_str(), sweep, ms, draws)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// A writer of predictions.csv's rows as they are given: `\n` line ends, and no
/// header of its own (the struct rows would otherwise add one).
pub(crate) fn rows<W: std::io::Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .has_headers(false)
        .from_writer(out)
}

/// Sample `s`'s row of predictions.csv, from its column `col` at `pose` (no draw).
pub(crate) fn prediction_row<'a>(
    model: &'a str,
    pose: crate::poses::Pose,
    sweep: &'a SweepResult,
    col: &crate::results::Column,
    s: usize,
    top_k: &'a str,
) -> PredictionRow<'a> {
    PredictionRow {
        model: model.into(),
        angle: pose.angle,
        dx: pose.dx,
        dy: pose.dy,
        index: sweep.indices[s],
        label: sweep.labels[s],
        pred: col.preds[s],
        confidence: col.confidence[s],
        source: sweep.sources[s].as_str().into(),
        p_true: col.p_true[s],
        brier: col.brier[s],
        top_k: top_k.into(),
        draw: None,
        worst: None,
    }
}

/// The rows of one model at one pose as text, written straight into bytes: the
/// bytes the csv writer makes of each [`prediction_row`] (same quoting, same
/// number forms; `predictions_csv_in_pieces_is_one_writer_row_by_row`), for a
/// fraction of its cost, which was most of the time a sweep of small images spent
/// after its last forward pass (issue 36).
struct RowText {
    /// `model,angle,dx,dy,`, the same on every row.
    prefix: Vec<u8>,
}

impl RowText {
    fn new(model: &str, pose: crate::poses::Pose) -> RowText {
        let mut prefix = Vec::new();
        push_field(&mut prefix, model.as_bytes());
        let mut text = String::new();
        for v in [pose.angle, pose.dx, pose.dy] {
            text.clear();
            crate::format::push_angle(&mut text, v);
            prefix.push(b',');
            push_field(&mut prefix, text.as_bytes());
        }
        prefix.push(b',');
        RowText { prefix }
    }

    /// Sample `s`'s row of column `col` (no draw); `text`: a buffer to reuse.
    fn push(
        &self,
        out: &mut Vec<u8>,
        sweep: &SweepResult,
        col: &crate::results::Column,
        s: usize,
        top_k: &[u32],
        text: &mut String,
    ) {
        let mut int = itoa::Buffer::new();
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(int.format(sweep.indices[s]).as_bytes());
        out.push(b',');
        out.extend_from_slice(int.format(sweep.labels[s]).as_bytes());
        out.push(b',');
        out.extend_from_slice(int.format(col.preds[s]).as_bytes());
        out.push(b',');
        let mut number = |out: &mut Vec<u8>, v: f32| {
            text.clear();
            crate::format::push_num32(text, v);
            push_field(out, text.as_bytes());
        };
        number(out, col.confidence[s]);
        out.push(b',');
        push_field(out, sweep.sources[s].as_bytes());
        out.push(b',');
        number(out, col.p_true[s]);
        out.push(b',');
        number(out, col.brier[s]);
        out.push(b',');
        text.clear();
        push_top_k(text, top_k);
        push_field(out, text.as_bytes());
        // No draw, no worst.
        out.extend_from_slice(b",,\n");
    }
}

/// A field as [`rows`]'s writer writes it: as is, or in double quotes (doubling
/// those inside) when it holds a comma, a double quote or a line break.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    if !field
        .iter()
        .any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.extend_from_slice(field);
        return;
    }
    out.push(b'"');
    for &b in field {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The most rows of predictions.csv formatted as one piece (about 1.5 MB of text).
const PREDICTION_PIECE: usize = 16_384;

/// A row's length to reserve a piece's bytes for (most are 80 to 100), so that
/// the piece seldom grows and copies itself.
const ROW_BYTES: usize = 96;

/// `--worst-of K`'s rows of one model: each sample's K draws, at the sample's
/// own pose, after the grid's rows, the worst draw marked.
fn write_draws<W: std::io::Write>(
    w: &mut csv::Writer<W>,
    model: &str,
    sweep: &SweepResult,
    ms: &crate::results::ModelSweep,
    draws: &crate::poses::Draws,
) -> Result<()> {
    for s in 0..sweep.labels.len() {
        let correct: Vec<bool> = ms
            .draws
            .iter()
            .map(|c| c.preds[s] == sweep.labels[s] as i32)
            .collect();
        let p_true: Vec<f32> = ms.draws.iter().map(|c| c.p_true[s]).collect();
        let worst = crate::poses::worst_draw(&correct, &p_true);
        for (d, c) in ms.draws.iter().enumerate() {
            let pose = draws.pose(sweep.indices[s], d);
            let top_k = top_k_text(&c.top_k[s * ms.top_k..(s + 1) * ms.top_k]);
            w.serialize(PredictionRow {
                draw: Some(d as u32),
                worst: Some(worst == Some(d)),
                ..prediction_row(model, pose, sweep, c, s, &top_k)
            })?;
        }
    }
    Ok(())
}
