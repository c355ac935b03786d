//! The charts, drawn with plotters, one file each: the line charts against
//! angle ([`line`]: accuracy, macro-F1, consistency, the flip rate to the next
//! angle and the expected calibration error; PNG and SVG, bands are Wilson 95%
//! intervals for accuracy and consistency and bootstrap 95% intervals for the
//! others), the polar accuracy plot ([`polar`]), and per model a reliability
//! diagram at 0° and at the angle of worst ECE ([`reliability`]), a per-class
//! recall heatmap, class × angle ([`recall`]), and row-normalised confusion
//! heatmaps at 0° and at the worst angle ([`confusion`]), and with `--translate`
//! the accuracy over angle × translation ([`translation`]), all drawn by
//! [`heatmap`] (PNG). [`series`] holds the models' lines and the legend that
//! the line and polar charts share. Each chart carries its stem, caption and
//! section; [`all`] lists them in the page's order.

mod confusion;
mod heatmap;
mod line;
mod polar;
mod recall;
mod reliability;
mod series;
mod translation;

use super::canvas::PlotErr;
use super::View;
use crate::summary::ModelSummary;
use anyhow::Result;
use plotters::backend::SVGBackend;
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, IntoDrawingArea};

/// Text in the SVGs is larger: the page shows them scaled down into a column.
const SVG_TEXT: f64 = 1.5;

/// One chart, ready to write and to embed.
pub struct Plot {
    /// File stem under `plots/`.
    pub stem: String,
    pub title: String,
    /// What the report says under the chart.
    pub caption: &'static str,
    /// Drawn across the report's whole width.
    pub wide: bool,
    /// The model a per-model chart belongs to (its section); `None`: the shared plots.
    pub model: Option<usize>,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
    pub svg: Option<String>,
}

/// Every chart of the report, in the page's order: the shared charts (accuracy,
/// polar, macro-F1, consistency, flip rate, ECE), then each model's.
pub fn all(view: &View<'_>) -> Result<Vec<Plot>> {
    let [accuracy, rest @ ..] = &line::charts(view);
    // The polar chart shows the accuracy lines again, beside their line chart.
    let mut plots = vec![accuracy.plot()?, polar::plot(&accuracy.series)?];
    for chart in rest {
        plots.push(chart.plot()?);
    }
    for (i, m) in view.models().iter().enumerate() {
        plots.extend(model_plots(view, i, m)?);
    }
    Ok(plots)
}

/// Model `i`'s charts: its accuracy over angle × translation (with
/// `--translate`), its reliability diagram, its recall heatmap and its
/// confusion heatmaps at 0° and at the worst angle.
fn model_plots(view: &View<'_>, i: usize, m: &ModelSummary) -> Result<Vec<Plot>> {
    let classes = view.class_names(i);
    let reference = m
        .angles
        .iter()
        .position(|a| a.reference)
        .unwrap_or(view.order[0]);
    let mut plots: Vec<Plot> = translation::plot(view, i, m)?.into_iter().collect();
    plots.push(reliability::plot(view, i, m, reference)?);
    plots.push(recall::plot(view, i, m, &classes)?);
    plots.extend(confusion::plots(view, i, m, &classes, reference)?);
    Ok(plots)
}

/// Draw on an SVG of `size` and return its text.
fn svg<F>(size: (u32, u32), draw: F) -> Result<String>
where
    F: FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<()>,
{
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, size).into_drawing_area();
        draw(&root)?;
        root.present().pe()?;
    }
    Ok(s)
}
