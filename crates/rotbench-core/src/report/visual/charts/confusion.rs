//! The confusion heatmaps of one model (PNG), row-normalised: at 0° and at the
//! worst swept angle; beyond [`HEATMAP_ALL_CLASSES`] classes, only the busiest
//! classes with samples or predictions.

use super::heatmap::{heat_plot, Cmap, Heatmap, HEATMAP_ALL_CLASSES};
use super::Plot;
use crate::format::{deg, pct};
use crate::report::visual::text::clip;
use crate::report::visual::View;
use crate::summary::{AngleMetrics, ModelSummary};
use anyhow::Result;

/// Model `i`'s confusion heatmaps at its `reference` angle (0°) and at its
/// worst swept angle.
pub(super) fn plots(
    view: &View<'_>,
    i: usize,
    m: &ModelSummary,
    classes: &[String],
    reference: usize,
) -> Result<Vec<Plot>> {
    let slug = &view.slugs[i];
    let worst = m
        .angles
        .iter()
        .position(|a| a.angle == m.sweep.worst_angle && a.in_sweep)
        .or_else(|| m.angles.iter().position(|a| a.angle == m.sweep.worst_angle))
        .unwrap_or(reference);
    let mut plots = Vec::new();
    for (tag, ai, what, caption) in [
        (
            "0",
            reference,
            "at",
            "Confusion at 0°, each row divided by the number of samples of its true class (%).",
        ),
        (
            "worst",
            worst,
            "at the worst angle,",
            "Confusion at the worst swept angle, row-normalised (%).",
        ),
    ] {
        let a = &m.angles[ai];
        let title = format!(
            "{}: confusion {what} {} (accuracy {}), row-normalised",
            clip(&m.id.name, 40),
            deg(a.angle),
            pct(a.accuracy)
        );
        let hm = confusion_heatmap(title, a, classes);
        plots.push(heat_plot(
            format!("confusion-{slug}-{tag}"),
            Some(i),
            &hm,
            caption,
        )?);
    }
    Ok(plots)
}

/// The confusion at angle `a`, each row divided by its true class's samples.
fn confusion_heatmap(title: String, a: &AngleMetrics, classes: &[String]) -> Heatmap {
    // Many classes: only those with samples or predictions at this angle, at
    // most HEATMAP_ALL_CLASSES, the busiest first.
    let shown: Vec<usize> = if classes.len() <= HEATMAP_ALL_CLASSES {
        (0..classes.len()).collect()
    } else {
        let mut busy: std::collections::BTreeMap<usize, u64> = Default::default();
        for &[t, p, k] in &a.confusion {
            *busy.entry(t as usize).or_default() += k;
            *busy.entry(p as usize).or_default() += k;
        }
        let mut v: Vec<(usize, u64)> = busy.into_iter().collect();
        v.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        let mut v: Vec<usize> = v
            .into_iter()
            .take(HEATMAP_ALL_CLASSES)
            .map(|x| x.0)
            .collect();
        v.sort_unstable();
        v
    };
    let title = if shown.len() < classes.len() {
        format!(
            "{title} — the {} classes with samples or predictions, of {}",
            shown.len(),
            classes.len()
        )
    } else {
        title
    };
    let n = shown.len();
    let values: Vec<Vec<f64>> = shown
        .iter()
        .map(|&t| {
            let total: u64 = a
                .confusion
                .iter()
                .filter(|c| c[0] == t as u64)
                .map(|c| c[2])
                .sum::<u64>()
                + a.invalid_of(t);
            shown
                .iter()
                .map(|&p| {
                    let k = a.count(t, p);
                    if total == 0 {
                        0.0
                    } else {
                        k as f64 / total as f64
                    }
                })
                .collect()
        })
        .collect();
    let classes: Vec<String> = shown.iter().map(|&c| classes[c].clone()).collect();
    let cell = (440 / n.max(1) as u32).clamp(1, 44);
    let text = (cell >= 28).then(|| {
        values
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&v| match v {
                        v if v <= 0.0 => String::new(),
                        v if v < 0.005 => "<1".to_string(),
                        v => format!("{:.0}", v * 100.0),
                    })
                    .collect()
            })
            .collect()
    });
    Heatmap {
        title,
        rows: classes.to_vec(),
        cols: classes.to_vec(),
        x_desc: "predicted class".into(),
        y_desc: "true class".into(),
        values,
        text,
        cmap: Cmap::Blues,
        cell: (cell, cell),
        legend: "share of row (%)".into(),
        col_angles: None,
    }
}
