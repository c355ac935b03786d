//! The reliability diagram of one model (PNG): at 0° and at the angle of its
//! worst ECE, a bar per confidence bin (15 bins, confidence 1.0 joining the
//! last) as high as the accuracy of its samples, the gap to their mean
//! confidence in red, faded by how few samples a bin holds.

use super::line::Axis;
use super::Plot;
use crate::format::{deg, pct};
use crate::report::visual::canvas::{bitmap, PlotErr};
use crate::report::visual::palette::{model_color, BAD, GRID, INK, MUTED};
use crate::report::visual::text::{anchored, clip, font};
use crate::report::visual::View;
use crate::summary::{AngleMetrics, ModelSummary};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// A reliability diagram: two panels side by side, drawn for a full row of the
/// report (a half-width cell shrank its text and left half the row empty).
pub const RELIABILITY_SIZE: (u32, u32) = (1200, 480);

/// Model `i`'s reliability diagram at its `reference` angle (0°) and at the
/// swept angle of its worst ECE.
pub(super) fn plot(view: &View<'_>, i: usize, m: &ModelSummary, reference: usize) -> Result<Plot> {
    let worst_ece = m
        .angles
        .iter()
        .position(|a| a.angle == m.sweep.worst_ece_angle && a.in_sweep)
        .unwrap_or(reference);
    let rd = ReliabilityChart {
        title: format!("{}: reliability", clip(&m.id.name, 48)),
        color: model_color(i),
        panels: [reference, worst_ece]
            .into_iter()
            .map(|ai| &m.angles[ai])
            .collect(),
    };
    Ok(Plot {
        stem: format!("reliability-{}", view.slugs[i]),
        title: rd.title.clone(),
        caption: "Reliability at 0° and at the angle of largest ECE: each bar is one of 15 confidence bins (confidence 1.0 joins the last), its height the accuracy of the samples in it; the red part is the gap to their mean confidence, the dashed diagonal perfect calibration. Bars are faded by how few samples they hold.",
        wide: true,
        model: Some(i),
        width: RELIABILITY_SIZE.0,
        height: RELIABILITY_SIZE.1,
        png: bitmap(RELIABILITY_SIZE, |r| reliability(r, &rd))?,
        svg: None,
    })
}

/// One model's reliability diagrams, one panel per angle.
struct ReliabilityChart<'a> {
    title: String,
    color: RGBColor,
    panels: Vec<&'a AngleMetrics>,
}

/// Draw the title and one panel per angle: a bar per confidence bin, its gap
/// to the mean confidence, and the diagonal of perfect calibration.
fn reliability<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &ReliabilityChart<'_>,
) -> Result<()> {
    root.fill(&WHITE).pe()?;
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        c.title.clone(),
        (w as i32 / 2, 12),
        anchored(font(26.0), HPos::Center, VPos::Top),
    ))
    .pe()?;
    let body = root.split_vertically(52).1;
    let panes = body.split_evenly((1, c.panels.len().max(1)));
    for (pane, a) in panes.iter().zip(&c.panels) {
        let r = &a.reliability;
        let bins = r.count.len().saturating_sub(1).max(1);
        // The slot of confidence exactly 1.0 joins the last bin, for drawing.
        let mut count: Vec<f64> = r.count.iter().map(|&n| n as f64).collect();
        let mut conf: Vec<f64> = r
            .confidence
            .iter()
            .zip(&count)
            .map(|(c, n)| c * n)
            .collect();
        let mut acc: Vec<f64> = r.accuracy.iter().zip(&count).map(|(c, n)| c * n).collect();
        if count.len() > bins {
            let (n1, c1, a1) = (count[bins], conf[bins], acc[bins]);
            count[bins - 1] += n1;
            conf[bins - 1] += c1;
            acc[bins - 1] += a1;
        }
        let total: f64 = count.iter().sum();
        let caption = format!(
            "{}: ECE {}, mean confidence {}, accuracy {}",
            deg(a.angle),
            pct(a.ece),
            pct(a.mean_confidence),
            pct(a.accuracy)
        );
        let ticks: Vec<f64> = (0..=5).map(|i| i as f64 / 5.0).collect();
        let mut chart = ChartBuilder::on(pane)
            .caption(caption, font(19.0))
            .margin(10)
            .x_label_area_size(50)
            .y_label_area_size(64)
            .build_cartesian_2d(
                Axis::new(0.0, 1.0, ticks.clone()),
                Axis::new(0.0, 1.0, ticks),
            )
            .pe()?;
        chart
            .configure_mesh()
            .x_desc("confidence (top-1 probability)")
            .y_desc("accuracy")
            .x_label_formatter(&|v| format!("{v:.1}"))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(MUTED)
            .label_style(font(17.0).color(&MUTED))
            .axis_desc_style(font(18.0))
            .draw()
            .pe()?;
        for b in 0..bins {
            if count[b] == 0.0 {
                continue;
            }
            let (lo, hi) = (b as f64 / bins as f64, (b + 1) as f64 / bins as f64);
            let (ab, cb) = (acc[b] / count[b], conf[b] / count[b]);
            // Fade bins that hold few samples (at least a third of full colour).
            let weight = (count[b] / total.max(1.0) * bins as f64).clamp(0.33, 1.0);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, 0.0), (hi, ab)],
                    c.color.mix(0.85 * weight).filled(),
                )))
                .pe()?;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(lo, ab.min(cb)), (hi, ab.max(cb))],
                    BAD.mix(0.35).filled(),
                )))
                .pe()?;
        }
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0.0, 0.0), (1.0, 1.0)],
                6,
                4,
                INK.stroke_width(1),
            ))
            .pe()?;
    }
    Ok(())
}
