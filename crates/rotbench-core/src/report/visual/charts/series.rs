//! What the line and polar charts share: each model's line (its values by
//! angle and, for the line charts, a band: a Wilson or bootstrap 95%
//! interval), and the header that draws the title and a wrapping legend.

use crate::metrics::wilson;
use crate::report::visual::canvas::PlotErr;
use crate::report::visual::palette::{model_color, MUTED};
use crate::report::visual::text::{anchored, clip, font, text_width};
use crate::report::visual::View;
use crate::summary::{AngleMetrics, ModelSummary};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// What shades a line.
pub(super) enum Band {
    /// The Wilson 95% interval of a proportion of the angle's samples.
    Wilson,
    /// An interval the summary holds (a bootstrap interval).
    Given(fn(&AngleMetrics) -> Option<[f64; 2]>),
}

/// One model's line: (angle, value) in angle order, with an optional band.
#[derive(Clone)]
pub(super) struct Series {
    pub(super) name: String,
    pub(super) color: RGBColor,
    pub(super) points: Vec<(f64, f64)>,
    /// (angle, low, high)
    pub(super) band: Vec<(f64, f64, f64)>,
}

impl Series {
    /// Model `i`'s `value` at each angle of the view, shaded by `band`.
    pub(super) fn new(
        view: &View<'_>,
        i: usize,
        m: &ModelSummary,
        band: &Band,
        value: &dyn Fn(&AngleMetrics) -> f64,
    ) -> Series {
        let mut points = Vec::new();
        let mut bands = Vec::new();
        for &ai in &view.order {
            let a = &m.angles[ai];
            let v = value(a);
            if !v.is_finite() {
                continue;
            }
            points.push((a.angle, v));
            match band {
                Band::Wilson => {
                    // The band of a proportion of n samples: k = v * n.
                    let k = (v * a.n as f64).round().max(0.0) as u64;
                    let (lo, hi) = wilson(k.min(a.n), a.n);
                    bands.push((a.angle, lo, hi));
                }
                Band::Given(f) => {
                    if let Some([lo, hi]) = f(a) {
                        bands.push((a.angle, lo, hi));
                    }
                }
            }
        }
        Series {
            name: clip(&m.id.name, 48),
            color: model_color(i),
            points,
            band: bands,
        }
    }
}

/// Draw the title and a wrapping legend across the top; return the rest.
pub(super) fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    series: &[Series],
    extra: Option<&str>,
    ts: f64,
) -> Result<DrawingArea<DB, Shift>> {
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        title.to_string(),
        (w as i32 / 2, 12),
        anchored(font(20.0 * ts), HPos::Center, VPos::Top),
    ))
    .pe()?;
    // Lay the legend out in rows.
    let mut items: Vec<(String, Option<RGBColor>, u32)> = series
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                Some(s.color),
                30 + text_width(&s.name, 15.0 * ts),
            )
        })
        .collect();
    if let Some(e) = extra {
        items.push((e.to_string(), None, 30 + text_width(e, 15.0 * ts)));
    }
    let mut rows: Vec<Vec<(String, Option<RGBColor>, u32)>> = vec![Vec::new()];
    let mut used = 0;
    for it in items {
        let need = it.2 + 20;
        if used + need > w.saturating_sub(40) && !rows.last().is_some_and(|r| r.is_empty()) {
            rows.push(Vec::new());
            used = 0;
        }
        used += need;
        if let Some(r) = rows.last_mut() {
            r.push(it);
        }
    }
    let mut y = (12.0 + 38.0 * ts) as i32;
    for row in &rows {
        let total: u32 = row.iter().map(|it| it.2 + 20).sum();
        let mut x = (w.saturating_sub(total) / 2) as i32;
        for (name, color, width) in row {
            match color {
                Some(c) => root
                    .draw(&PathElement::new(
                        vec![(x, y), (x + 22, y)],
                        c.stroke_width(3),
                    ))
                    .pe()?,
                None => root
                    .draw(&PathElement::new(
                        vec![(x, y), (x + 6, y)],
                        MUTED.stroke_width(1),
                    ))
                    .pe()?,
            }
            if color.is_none() {
                root.draw(&PathElement::new(
                    vec![(x + 10, y), (x + 16, y)],
                    MUTED.stroke_width(1),
                ))
                .pe()?;
            }
            root.draw(&Text::new(
                name.clone(),
                (x + 30, y),
                anchored(font(15.0 * ts), HPos::Left, VPos::Center),
            ))
            .pe()?;
            x += *width as i32 + 20;
        }
        y += (22.0 * ts) as i32;
    }
    let top = (y - 6).max(40) as u32;
    Ok(root.split_vertically(top).1)
}
