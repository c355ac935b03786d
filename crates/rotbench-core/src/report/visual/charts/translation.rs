//! The spatial heatmap of one model (a sweep with `--translate` only): its
//! accuracy at each translation (rows, `(dx, dy)` in pixels) and each angle
//! (columns), the grid of Engstrom et al. (2019) drawn whole.

use super::heatmap::{heat_plot, Cmap, Heatmap};
use super::Plot;
use crate::format::{deg, format_angle};
use crate::report::visual::text::clip;
use crate::report::visual::View;
use crate::summary::ModelSummary;
use anyhow::Result;

/// Model `i`'s accuracy over angle × translation, or `None` for a sweep of
/// rotations alone.
pub(super) fn plot(view: &View<'_>, i: usize, m: &ModelSummary) -> Result<Option<Plot>> {
    let swept: Vec<_> = m.angles.iter().filter(|a| a.in_sweep).collect();
    if swept.iter().all(|a| a.pose().is_rotation()) {
        return Ok(None);
    }
    let mut shifts: Vec<(f64, f64)> = Vec::new();
    let mut angles: Vec<f64> = Vec::new();
    for a in &swept {
        if !shifts.contains(&(a.dx, a.dy)) {
            shifts.push((a.dx, a.dy));
        }
        if !angles.contains(&a.angle) {
            angles.push(a.angle);
        }
    }
    angles.sort_by(f64::total_cmp);
    let values: Vec<Vec<f64>> = shifts
        .iter()
        .map(|&(dx, dy)| {
            angles
                .iter()
                .map(|&angle| {
                    swept
                        .iter()
                        .find(|a| a.angle == angle && a.dx == dx && a.dy == dy)
                        .map_or(f64::NAN, |a| a.accuracy)
                })
                .collect()
        })
        .collect();
    let rows: Vec<String> = shifts
        .iter()
        .map(|&(dx, dy)| format!("({}, {})", format_angle(dx), format_angle(dy)))
        .collect();
    let cw = (640 / angles.len().max(1) as u32).clamp(3, 48);
    let ch = (360 / rows.len().max(1) as u32).clamp(4, 26);
    let text = (cw >= 34 && ch >= 16).then(|| {
        values
            .iter()
            .map(|row| row.iter().map(|v| format!("{:.0}", v * 100.0)).collect())
            .collect()
    });
    let hm = Heatmap {
        title: format!(
            "{}: accuracy per translation and angle",
            clip(&m.id.name, 48)
        ),
        rows,
        cols: angles.iter().map(|&a| deg(a)).collect(),
        x_desc: "rotation angle".into(),
        y_desc: "translation (dx, dy) px".into(),
        values,
        text,
        cmap: Cmap::Viridis,
        cell: (cw, ch),
        legend: "accuracy".into(),
        col_angles: Some(angles),
    };
    let mut p = heat_plot(
        format!("spatial-{}", view.slugs[i]),
        Some(i),
        &hm,
        "Accuracy at every point of the rotation × translation grid (rows: the translation after the rotation, in pixels, right and down positive).",
    )?;
    p.wide = true;
    Ok(Some(p))
}
