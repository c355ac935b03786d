//! The recall heatmap of one model: each true class at each angle (grey: no
//! samples of that class); beyond [`HEATMAP_ALL_CLASSES`] classes, only those
//! with samples.

use super::heatmap::{heat_plot, Cmap, Heatmap, HEATMAP_ALL_CLASSES};
use super::Plot;
use crate::format::deg;
use crate::report::visual::text::clip;
use crate::report::visual::View;
use crate::summary::ModelSummary;
use anyhow::Result;

/// Model `i`'s recall heatmap, across the page's whole width.
pub(super) fn plot(
    view: &View<'_>,
    i: usize,
    m: &ModelSummary,
    classes: &[String],
) -> Result<Plot> {
    let recall = recall_heatmap(view, m, classes);
    let mut p = heat_plot(
        format!("recall-{}", view.slugs[i]),
        Some(i),
        &recall,
        "Recall of each true class at each angle (grey: no samples of that class).",
    )?;
    p.wide = true;
    Ok(p)
}

/// The recall of each true class (rows) at each angle (columns).
fn recall_heatmap(view: &View<'_>, m: &ModelSummary, classes: &[String]) -> Heatmap {
    let cols: Vec<String> = view
        .order
        .iter()
        .map(|&ai| deg(m.angles[ai].angle))
        .collect();
    // Many classes: only those with samples at some angle.
    let shown: Vec<usize> = if classes.len() <= HEATMAP_ALL_CLASSES {
        (0..classes.len()).collect()
    } else {
        let mut v: Vec<usize> = m
            .angles
            .iter()
            .flat_map(|a| {
                a.per_class
                    .iter()
                    .filter(|s| s.support > 0)
                    .map(|s| s.class)
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let values: Vec<Vec<f64>> = shown
        .iter()
        .map(|&c| {
            view.order
                .iter()
                .map(|&ai| {
                    let s = m.angles[ai].class_scores(c);
                    if s.support == 0 {
                        f64::NAN
                    } else {
                        s.recall
                    }
                })
                .collect()
        })
        .collect();
    let title_extra = if shown.len() < classes.len() {
        format!(
            " (the {} classes with samples, of {})",
            shown.len(),
            classes.len()
        )
    } else {
        String::new()
    };
    let classes: Vec<String> = shown.iter().map(|&c| classes[c].clone()).collect();
    let cw = (640 / cols.len().max(1) as u32).clamp(3, 48);
    let chh = (360 / classes.len().max(1) as u32).clamp(1, 26);
    let text = (cw >= 34 && chh >= 16).then(|| {
        values
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| {
                        if v.is_finite() {
                            format!("{:.0}", v * 100.0)
                        } else {
                            String::new()
                        }
                    })
                    .collect()
            })
            .collect()
    });
    Heatmap {
        title: format!(
            "{}: recall per class and angle{title_extra}",
            clip(&m.id.name, 48)
        ),
        rows: classes,
        cols,
        x_desc: "rotation angle".into(),
        y_desc: "true class".into(),
        values,
        text,
        cmap: Cmap::Viridis,
        cell: (cw, chh),
        legend: "recall".into(),
        col_angles: Some(view.order.iter().map(|&ai| m.angles[ai].angle).collect()),
    }
}
