//! The line charts against angle (PNG and SVG): accuracy and consistency with
//! Wilson 95% bands, macro-F1, the flip rate to the next angle and ECE with
//! bootstrap 95% bands; the angle axis with degree-friendly ticks ([`Axis`],
//! which the reliability diagram reuses).

use super::series::{header, Band, Series};
use super::{svg, Plot, SVG_TEXT};
use crate::format::deg;
use crate::report::visual::canvas::{bitmap, PlotErr};
use crate::report::visual::palette::{GRID, MUTED};
use crate::report::visual::text::font;
use crate::report::visual::View;
use crate::summary::AngleMetrics;
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Line charts are this size (PNG and SVG).
pub const LINE_SIZE: (u32, u32) = (800, 450);

/// One line chart: a line per model against angle.
pub(super) struct LineChart {
    /// File stem under `plots/`.
    stem: &'static str,
    title: String,
    /// What the report says under the chart.
    caption: &'static str,
    y_desc: String,
    pub(super) series: Vec<Series>,
    chance: Option<f64>,
    /// The y-axis runs from 0 to this (1 when `None`).
    y_top: Option<f64>,
}

/// The line charts, in the page's order: accuracy, macro-F1, consistency, the
/// flip rate to the next angle and ECE.
pub(super) fn charts(view: &View<'_>) -> [LineChart; 5] {
    let models = view.models();
    let chance = view.class_names(0).len();
    let line = |band: Band, value: &dyn Fn(&AngleMetrics) -> f64| -> Vec<Series> {
        models
            .iter()
            .enumerate()
            .map(|(i, m)| Series::new(view, i, m, &band, value))
            .collect()
    };
    let boot = view.summary.settings.bootstrap;
    let acc = LineChart {
        stem: "accuracy",
        caption: "Accuracy at each angle; the band is the Wilson 95% interval.",
        title: "Accuracy against rotation angle (shaded: Wilson 95% interval)".into(),
        y_desc: "accuracy".into(),
        series: line(Band::Wilson, &|a| a.accuracy),
        chance: (chance > 0).then(|| 1.0 / chance as f64),
        y_top: None,
    };
    let shaded = |what: &str| {
        if boot > 0 {
            format!("{what} (shaded: bootstrap 95% interval)")
        } else {
            what.to_string()
        }
    };
    let f1 = LineChart {
        stem: "f1",
        caption: "Macro-F1 (unweighted mean of the per-class F1) at each angle.",
        title: shaded("Macro-F1 against rotation angle"),
        y_desc: "macro-F1".into(),
        series: line(Band::Given(|a| a.f1_macro_ci), &|a| a.f1_macro),
        chance: None,
        y_top: None,
    };
    let cons = LineChart {
        stem: "consistency",
        caption: "Share of samples whose prediction equals their prediction at 0°; the band is the Wilson 95% interval.",
        title: "Consistency with the 0° prediction (shaded: Wilson 95% interval)".into(),
        y_desc: "same prediction as at 0°".into(),
        series: line(Band::Wilson, &|a| a.consistency),
        chance: None,
        y_top: None,
    };
    let flip_series = line(Band::Given(|a| a.flip_next_ci), &|a| {
        if a.in_sweep {
            a.flip_next.unwrap_or(f64::NAN)
        } else {
            f64::NAN
        }
    });
    let flip = LineChart {
        stem: "flip",
        caption: "Share of samples whose top-1 prediction changes between each angle and the next angle of the sweep (ImageNet-P's flip rate; the last angle of a full turn pairs with the first). The band is the bootstrap 95% interval over samples.",
        title: shaded("Flip rate to the next angle"),
        y_desc: "flips to the next angle".into(),
        y_top: Some(nice_top(&flip_series)),
        series: flip_series,
        chance: None,
    };
    let ece_series = line(Band::Given(|a| a.ece_ci), &|a| a.ece);
    let ece = LineChart {
        stem: "ece",
        caption: "Expected calibration error: over 15 equal-width bins of top-1 confidence, the sample-weighted gap between confidence and accuracy. The band is the bootstrap 95% interval over samples.",
        title: shaded("ECE against rotation angle"),
        y_desc: "ECE (15 bins)".into(),
        y_top: Some(nice_top(&ece_series)),
        series: ece_series,
        chance: None,
    };
    [acc, f1, cons, flip, ece]
}

impl LineChart {
    /// The chart as PNG and SVG.
    pub(super) fn plot(&self) -> Result<Plot> {
        Ok(Plot {
            stem: self.stem.into(),
            title: self.title.clone(),
            caption: self.caption,
            wide: false,
            model: None,
            width: LINE_SIZE.0,
            height: LINE_SIZE.1,
            png: bitmap(LINE_SIZE, |r| line_chart(r, self, 1.0))?,
            svg: Some(svg(LINE_SIZE, |r| line_chart(r, self, SVG_TEXT))?),
        })
    }
}

/// A y-axis top that holds every point and band of `series`: the smallest of a
/// few round values (at most 1).
fn nice_top(series: &[Series]) -> f64 {
    let max = series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.band.iter().map(|b| b.2))
        })
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]
        .into_iter()
        .find(|&t| max <= t)
        .unwrap_or(1.0)
}

/// Tick step for a y-axis from 0 to `top`.
fn y_step(top: f64) -> f64 {
    match top {
        t if t <= 0.01 => 0.002,
        t if t <= 0.02 => 0.005,
        t if t <= 0.05 => 0.01,
        t if t <= 0.1 => 0.02,
        t if t <= 0.3 => 0.05,
        t if t <= 0.6 => 0.1,
        t if t <= 0.8 => 0.2,
        _ => 0.1,
    }
}

/// Tick marks for an angle axis: multiples of a "degree-friendly" step.
fn angle_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).abs().max(1e-9);
    let step = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 45.0, 90.0, 180.0, 360.0]
        .into_iter()
        .find(|s| span / s <= 12.0)
        .unwrap_or(360.0 * (span / 3600.0).ceil());
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + 1e-9 && out.len() < 50 {
        out.push(t);
        t += step;
    }
    out
}

fn x_range(series: &[Series]) -> (f64, f64) {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
        (l.min(x), h.max(x))
    });
    if !lo.is_finite() {
        (0.0, 360.0)
    } else if hi - lo < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    }
}

fn line_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
    ts: f64,
) -> Result<()> {
    root.fill(&WHITE).pe()?;
    let body = header(
        root,
        &c.title,
        &c.series,
        c.chance.map(|_| "chance level"),
        ts,
    )?;
    let (x0, x1) = x_range(&c.series);
    let pad = (x1 - x0) * 0.01;
    let top = c.y_top.unwrap_or(1.0);
    let step = y_step(top);
    let yticks: Vec<f64> = (0..)
        .map(|i| i as f64 * step)
        .take_while(|v| *v <= top + 1e-9)
        .collect();
    let decimals = if step < 0.01 { 1 } else { 0 };
    let mut chart = ChartBuilder::on(&body)
        .margin_left(10)
        .margin_right(28)
        .margin_bottom(6)
        .margin_top(6)
        .x_label_area_size((46.0 * ts) as u32)
        .y_label_area_size((66.0 * ts) as u32)
        .build_cartesian_2d(
            Axis::new(x0 - pad, x1 + pad, angle_ticks(x0, x1)),
            Axis::new(0.0, top, yticks),
        )
        .pe()?;
    chart
        .configure_mesh()
        .x_desc("rotation angle (degrees, counter-clockwise)")
        .y_desc(c.y_desc.as_str())
        .x_label_formatter(&|v| deg(*v))
        .y_label_formatter(&|v| format!("{:.*}%", decimals, v * 100.0))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(MUTED)
        .label_style(font(14.0 * ts).color(&MUTED))
        .axis_desc_style(font(15.0 * ts))
        .draw()
        .pe()?;
    if let Some(ch) = c.chance {
        let pts = vec![(x0 - pad, ch), (x1 + pad, ch)];
        chart
            .draw_series(DashedLineSeries::new(pts, 6, 4, MUTED.stroke_width(1)))
            .pe()?;
    }
    for s in &c.series {
        if s.band.len() >= 2 {
            let mut poly: Vec<(f64, f64)> = s.band.iter().map(|b| (b.0, b.1)).collect();
            poly.extend(s.band.iter().rev().map(|b| (b.0, b.2)));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    poly,
                    s.color.mix(0.18).filled(),
                )))
                .pe()?;
        }
    }
    for s in &c.series {
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                s.color.stroke_width(2),
            ))
            .pe()?;
        if s.points.len() <= 100 {
            let r = if s.points.len() <= 40 { 3 } else { 2 };
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&p| Circle::new(p, r, s.color.filled())),
                )
                .pe()?;
        }
    }
    Ok(())
}

/// A linear f64 axis whose ticks are given, not computed (plotters' own choice
/// of "nice" numbers does not suit degrees).
pub(super) struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    pub(super) fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Axis {
        Axis { lo, hi, ticks }
    }
}

impl Ranged for Axis {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span.abs() < 1e-12 {
            return (limit.0 + limit.1) / 2;
        }
        let t = (v - self.lo) / span;
        limit.0 + ((limit.1 - limit.0) as f64 * t).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_ticks_use_degree_friendly_steps() {
        assert_eq!(
            angle_ticks(0.0, 345.0),
            (0..12).map(|i| i as f64 * 30.0).collect::<Vec<_>>()
        );
        assert_eq!(
            angle_ticks(-180.0, 180.0),
            (0..13)
                .map(|i| -180.0 + i as f64 * 30.0)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            angle_ticks(0.0, 720.0),
            (0..9).map(|i| i as f64 * 90.0).collect::<Vec<_>>()
        );
        assert_eq!(
            angle_ticks(-30.0, 30.0),
            vec![-30.0, -25.0, -20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
    }
}
