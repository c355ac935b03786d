//! The charts, drawn with plotters: accuracy, macro-F1, consistency, the flip
//! rate to the next angle and the expected calibration error against angle (PNG
//! and SVG; bands are Wilson 95% intervals for accuracy and consistency and
//! bootstrap 95% intervals for the others), a polar accuracy plot, and per model
//! a reliability diagram at 0° and at the angle of worst ECE, a per-class recall
//! heatmap (class × angle) and row-normalised confusion heatmaps at 0° and at the
//! worst angle (PNG).
//! Also the PNG encoder and the colours that the page and the strip share.

use super::canvas::{self, Canvas};
use super::font::FAMILY;
use super::View;
use crate::format::{deg, pct};
use crate::metrics::wilson;
use crate::summary::{AngleMetrics, ModelSummary};
use anyhow::{anyhow, Result};
use plotters::backend::{BitMapBackend, RGBPixel, SVGBackend};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::fmt::Display;

/// Line charts are this size (PNG and SVG).
pub const LINE_SIZE: (u32, u32) = (800, 450);
/// The polar chart is square.
pub const POLAR_SIZE: (u32, u32) = (560, 560);
/// A reliability diagram: two square panels side by side.
pub const RELIABILITY_SIZE: (u32, u32) = (800, 440);
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

/// Map any plotters error into anyhow.
pub trait PlotErr<T> {
    fn pe(self) -> Result<T>;
}

impl<T, E: Display> PlotErr<T> for std::result::Result<T, E> {
    fn pe(self) -> Result<T> {
        self.map_err(|e| anyhow!("drawing a chart: {e}"))
    }
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(108, 117, 125);
const GRID: RGBColor = RGBColor(226, 230, 234);
pub const GOOD: RGBColor = RGBColor(25, 135, 84);
pub const BAD: RGBColor = RGBColor(200, 35, 51);

/// The colour of model `i` in every chart.
pub fn model_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// `#rrggbb` for the page.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Piecewise-linear colour map over `stops` for `v` in [0, 1].
fn ramp(stops: &[(u8, u8, u8)], v: f64) -> RGBColor {
    let v = if v.is_finite() {
        v.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let seg = (stops.len() - 1) as f64;
    let x = v * seg;
    let i = (x.floor() as usize).min(stops.len() - 2);
    let t = x - i as f64;
    let (a, b) = (stops[i], stops[i + 1]);
    let mix = |p: u8, q: u8| (p as f64 + (q as f64 - p as f64) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// ColorBrewer "Blues": confusion matrices (white = 0, dark blue = 1).
pub const BLUES: [(u8, u8, u8); 9] = [
    (247, 251, 255),
    (222, 235, 247),
    (198, 219, 239),
    (158, 202, 225),
    (107, 174, 214),
    (66, 146, 198),
    (33, 113, 181),
    (8, 81, 156),
    (8, 48, 107),
];
/// Viridis (5 stops): recall heatmaps.
const VIRIDIS: [(u8, u8, u8); 5] = [
    (68, 1, 84),
    (59, 82, 139),
    (33, 145, 140),
    (94, 201, 98),
    (253, 231, 37),
];

pub fn blues(v: f64) -> RGBColor {
    ramp(&BLUES, v)
}

fn viridis(v: f64) -> RGBColor {
    ramp(&VIRIDIS, v)
}

/// Draw on a white RGB canvas of `size` and return the PNG.
pub fn bitmap<F>(size: (u32, u32), draw: F) -> Result<Vec<u8>>
where
    F: FnOnce(&DrawingArea<Canvas<'_>, Shift>) -> Result<()>,
{
    let mut buf = vec![255u8; size.0 as usize * size.1 as usize * 3];
    bitmap_on(&mut buf, size, draw)?;
    super::pngenc::rgb(&buf, size.0, size.1)
}

/// Draw on an existing RGB buffer (pixels already there stay unless drawn over).
pub fn bitmap_on<F>(buf: &mut [u8], size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&DrawingArea<Canvas<'_>, Shift>) -> Result<()>,
{
    let font =
        canvas::font_ref().ok_or_else(|| anyhow!("the embedded font could not be parsed"))?;
    let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(buf, size).pe()?;
    let root = Canvas::new(backend, font).into_drawing_area();
    draw(&root)?;
    root.present().pe()?;
    Ok(())
}

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

pub fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&INK)
}

pub fn anchored(style: TextStyle<'_>, h: HPos, v: VPos) -> TextStyle<'_> {
    style.pos(Pos::new(h, v))
}

/// Width in pixels of `text` at `size`.
pub fn text_width(text: &str, size: f64) -> u32 {
    (FAMILY, size)
        .into_font()
        .box_size(text)
        .map_or(text.chars().count() as u32 * size as u32 / 2, |b| b.0)
}

/// At most `max` characters, with an ellipsis when cut.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Every chart of the report.
pub fn all(view: &View<'_>) -> Result<Vec<Plot>> {
    let mut plots = Vec::new();
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
        title: shaded("Macro-F1 against rotation angle"),
        y_desc: "macro-F1".into(),
        series: line(Band::Given(|a| a.f1_macro_ci), &|a| a.f1_macro),
        chance: None,
        y_top: None,
    };
    let cons = LineChart {
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
        title: shaded("Flip rate to the next angle"),
        y_desc: "flips to the next angle".into(),
        y_top: Some(nice_top(&flip_series)),
        series: flip_series,
        chance: None,
    };
    let ece_series = line(Band::Given(|a| a.ece_ci), &|a| a.ece);
    let ece = LineChart {
        title: shaded("ECE against rotation angle"),
        y_desc: "ECE (15 bins)".into(),
        y_top: Some(nice_top(&ece_series)),
        series: ece_series,
        chance: None,
    };
    let line_plot = |stem: &str, chart: &LineChart, caption| -> Result<Plot> {
        Ok(Plot {
            stem: stem.into(),
            title: chart.title.clone(),
            caption,
            wide: false,
            model: None,
            width: LINE_SIZE.0,
            height: LINE_SIZE.1,
            png: bitmap(LINE_SIZE, |r| line_chart(r, chart, 1.0))?,
            svg: Some(svg(LINE_SIZE, |r| line_chart(r, chart, SVG_TEXT))?),
        })
    };
    plots.push(line_plot(
        "accuracy",
        &acc,
        "Accuracy at each angle; the band is the Wilson 95% interval.",
    )?);
    let polar = PolarChart {
        title: "Accuracy by angle (polar)".into(),
        series: acc.series.clone(),
    };
    plots.push(Plot {
        stem: "polar".into(),
        title: polar.title.clone(),
        caption: "Accuracy by angle: 0° at the right, counter-clockwise; the distance from the centre is the accuracy.",
        wide: false,
        model: None,
        width: POLAR_SIZE.0,
        height: POLAR_SIZE.1,
        png: bitmap(POLAR_SIZE, |r| polar_chart(r, &polar, 1.0))?,
        svg: Some(svg(POLAR_SIZE, |r| polar_chart(r, &polar, SVG_TEXT))?),
    });
    plots.push(line_plot(
        "f1",
        &f1,
        "Macro-F1 (unweighted mean of the per-class F1) at each angle.",
    )?);
    plots.push(line_plot(
        "consistency",
        &cons,
        "Share of samples whose prediction equals their prediction at 0°; the band is the Wilson 95% interval.",
    )?);
    plots.push(line_plot(
        "flip",
        &flip,
        "Share of samples whose top-1 prediction changes between each angle and the next angle of the sweep (ImageNet-P's flip rate; the last angle of a full turn pairs with the first). The band is the bootstrap 95% interval over samples.",
    )?);
    plots.push(line_plot(
        "ece",
        &ece,
        "Expected calibration error: over 15 equal-width bins of top-1 confidence, the sample-weighted gap between confidence and accuracy. The band is the bootstrap 95% interval over samples.",
    )?);
    for (i, m) in models.iter().enumerate() {
        let slug = &view.slugs[i];
        let classes = view.class_names(i);
        let reference = m
            .angles
            .iter()
            .position(|a| a.reference)
            .unwrap_or(view.order[0]);
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
        plots.push(Plot {
            stem: format!("reliability-{slug}"),
            title: rd.title.clone(),
            caption: "Reliability at 0° and at the angle of largest ECE: each bar is one of 15 confidence bins (confidence 1.0 joins the last), its height the accuracy of the samples in it; the red part is the gap to their mean confidence, the dashed diagonal perfect calibration. Bars are faded by how few samples they hold.",
            wide: false,
            model: Some(i),
            width: RELIABILITY_SIZE.0,
            height: RELIABILITY_SIZE.1,
            png: bitmap(RELIABILITY_SIZE, |r| reliability(r, &rd))?,
            svg: None,
        });
        let recall = recall_heatmap(view, m, &classes);
        let mut p = heat_plot(
            format!("recall-{slug}"),
            Some(i),
            &recall,
            "Recall of each true class at each angle (grey: no samples of that class).",
        )?;
        p.wide = true;
        plots.push(p);
        let worst = m
            .angles
            .iter()
            .position(|a| a.angle == m.sweep.worst_angle && a.in_sweep)
            .or_else(|| m.angles.iter().position(|a| a.angle == m.sweep.worst_angle))
            .unwrap_or(reference);
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
            let hm = confusion_heatmap(title, a, &classes);
            plots.push(heat_plot(
                format!("confusion-{slug}-{tag}"),
                Some(i),
                &hm,
                caption,
            )?);
        }
    }
    Ok(plots)
}

/// One model's reliability diagrams, one panel per angle.
struct ReliabilityChart<'a> {
    title: String,
    color: RGBColor,
    panels: Vec<&'a AngleMetrics>,
}

fn reliability<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &ReliabilityChart<'_>,
) -> Result<()> {
    root.fill(&WHITE).pe()?;
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        c.title.clone(),
        (w as i32 / 2, 12),
        anchored(font(20.0), HPos::Center, VPos::Top),
    ))
    .pe()?;
    let body = root.split_vertically(44).1;
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
            .caption(caption, font(15.0))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(52)
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
            .label_style(font(13.0).color(&MUTED))
            .axis_desc_style(font(14.0))
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

fn heat_plot(
    stem: String,
    model: Option<usize>,
    hm: &Heatmap,
    caption: &'static str,
) -> Result<Plot> {
    let size = hm.size();
    Ok(Plot {
        stem,
        title: hm.title.clone(),
        caption,
        wide: false,
        model,
        width: size.0,
        height: size.1,
        png: bitmap(size, |r| heatmap(r, hm))?,
        svg: None,
    })
}

/// What shades a line.
enum Band {
    /// The Wilson 95% interval of a proportion of the angle's samples.
    Wilson,
    /// An interval the summary holds (a bootstrap interval).
    Given(fn(&AngleMetrics) -> Option<[f64; 2]>),
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

/// One model's line: (angle, value) in angle order, with an optional band.
#[derive(Clone)]
pub struct Series {
    name: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
    /// (angle, low, high)
    band: Vec<(f64, f64, f64)>,
}

impl Series {
    fn new(
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

struct LineChart {
    title: String,
    y_desc: String,
    series: Vec<Series>,
    chance: Option<f64>,
    /// The y-axis runs from 0 to this (1 when `None`).
    y_top: Option<f64>,
}

/// Draw the title and a wrapping legend across the top; return the rest.
fn header<DB: DrawingBackend>(
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
struct Axis {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> Axis {
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

struct PolarChart {
    title: String,
    series: Vec<Series>,
}

/// Angles (mod 360) in the order to join them, starting after the widest gap,
/// and whether the path closes (the sweep goes all the way round evenly).
fn polar_path(points: &[(f64, f64)]) -> (Vec<(f64, f64)>, bool) {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .map(|&(a, v)| (a.rem_euclid(360.0), v))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts.dedup_by(|a, b| (a.0 - b.0).abs() < 1e-9);
    if pts.len() < 2 {
        return (pts, false);
    }
    let n = pts.len();
    let gaps: Vec<f64> = (0..n)
        .map(|i| {
            if i + 1 < n {
                pts[i + 1].0 - pts[i].0
            } else {
                pts[0].0 + 360.0 - pts[i].0
            }
        })
        .collect();
    let (widest, max_gap) =
        gaps.iter()
            .enumerate()
            .fold((0, f64::MIN), |b, (i, &g)| if g > b.1 { (i, g) } else { b });
    let min_gap = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let closed = n >= 3 && max_gap <= 1.5 * min_gap;
    let start = (widest + 1) % n;
    let ordered = (0..n).map(|k| pts[(start + k) % n]).collect();
    (ordered, closed)
}

fn polar_chart<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &PolarChart,
    ts: f64,
) -> Result<()> {
    root.fill(&WHITE).pe()?;
    let body = header(root, &c.title, &c.series, None, ts)?;
    let (w, h) = body.dim_in_pixel();
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let radius = (w.min(h) as f64 / 2.0 - 30.0 - 8.0 * ts).max(20.0);
    let at = |angle: f64, r: f64| -> (i32, i32) {
        let t = angle.to_radians();
        (
            (cx + r * radius * t.cos()).round() as i32,
            (cy - r * radius * t.sin()).round() as i32,
        )
    };
    let grid = ShapeStyle {
        color: GRID.to_rgba(),
        filled: false,
        stroke_width: 1,
    };
    for k in 1..=4 {
        let r = k as f64 / 4.0;
        let circle: Vec<(i32, i32)> = (0..=180).map(|i| at(i as f64 * 2.0, r)).collect();
        body.draw(&PathElement::new(
            circle,
            if k == 4 { MUTED.stroke_width(1) } else { grid },
        ))
        .pe()?;
    }
    for k in 0..12 {
        let a = k as f64 * 30.0;
        body.draw(&PathElement::new(vec![at(a, 0.0), at(a, 1.0)], grid))
            .pe()?;
        let (lx, ly) = at(a, 1.0 + (8.0 + 12.0 * ts) / radius);
        body.draw(&Text::new(
            deg(a),
            (lx, ly),
            anchored(font(14.0 * ts).color(&MUTED), HPos::Center, VPos::Center),
        ))
        .pe()?;
    }
    for k in 1..=4 {
        let (x, y) = at(75.0, k as f64 / 4.0);
        body.draw(&Text::new(
            format!("{}%", k * 25),
            (x + 3, y),
            anchored(font(12.0 * ts).color(&MUTED), HPos::Left, VPos::Bottom),
        ))
        .pe()?;
    }
    for s in &c.series {
        let (pts, closed) = polar_path(&s.points);
        let mut path: Vec<(i32, i32)> =
            pts.iter().map(|&(a, v)| at(a, v.clamp(0.0, 1.0))).collect();
        if closed {
            if let Some(&p) = path.first() {
                path.push(p);
            }
        }
        body.draw(&PathElement::new(path.clone(), s.color.stroke_width(2)))
            .pe()?;
        if pts.len() <= 100 {
            for p in path {
                body.draw(&Circle::new(p, 3, s.color.filled())).pe()?;
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Cmap {
    Blues,
    Viridis,
}

impl Cmap {
    fn color(self, v: f64) -> RGBColor {
        match self {
            Cmap::Blues => blues(v),
            Cmap::Viridis => viridis(v),
        }
    }
    /// Text on a cell of value v: light on dark cells.
    fn ink(self, v: f64) -> RGBColor {
        let dark = match self {
            Cmap::Blues => v > 0.55,
            Cmap::Viridis => v < 0.6,
        };
        if dark {
            WHITE
        } else {
            INK
        }
    }
}

struct Heatmap {
    title: String,
    rows: Vec<String>,
    cols: Vec<String>,
    x_desc: String,
    y_desc: String,
    /// rows × cols in [0, 1]; NaN is drawn grey.
    values: Vec<Vec<f64>>,
    /// Text inside each cell, when the cells are large enough.
    text: Option<Vec<Vec<String>>>,
    cmap: Cmap,
    cell: (u32, u32),
    legend: String,
    /// The angle of each column, when the columns are angles.
    col_angles: Option<Vec<f64>>,
}

const LABEL_FONT: f64 = 14.0;

impl Heatmap {
    fn row_label_width(&self) -> u32 {
        self.rows
            .iter()
            .map(|r| text_width(r, LABEL_FONT))
            .max()
            .unwrap_or(0)
            .min(170)
    }
    /// Column labels stand upright when any is wider than a cell (class names only).
    fn cols_vertical(&self) -> bool {
        self.col_angles.is_none()
            && self
                .cols
                .iter()
                .any(|c| text_width(c, LABEL_FONT) + 4 > self.cell.0)
            && self.col_step() == 1
    }
    /// Label every k-th column when the cells are narrow.
    fn col_step(&self) -> usize {
        let widest = self
            .cols
            .iter()
            .map(|c| text_width(c, LABEL_FONT))
            .max()
            .unwrap_or(0)
            + 8;
        if self.cell.0 >= 14 && self.col_angles.is_none() {
            1
        } else {
            (widest as usize)
                .div_ceil(self.cell.0.max(1) as usize)
                .max(1)
        }
    }
    /// The columns that get a label: for an angle axis, the multiples of the
    /// smallest degree-friendly step whose labels do not collide.
    fn labelled_cols(&self) -> Vec<usize> {
        let every = |k: usize| (0..self.cols.len()).step_by(k.max(1)).collect::<Vec<_>>();
        let Some(angles) = &self.col_angles else {
            return every(self.col_step());
        };
        let widest = self
            .cols
            .iter()
            .map(|c| text_width(c, LABEL_FONT))
            .max()
            .unwrap_or(0) as f64
            + 10.0;
        let gap = angles
            .windows(2)
            .map(|p| p[1] - p[0])
            .filter(|g| *g > 1e-9)
            .fold(f64::INFINITY, f64::min);
        if !gap.is_finite() {
            return every(self.col_step());
        }
        for step in [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 45.0, 90.0, 180.0] {
            if step / gap * self.cell.0 as f64 >= widest {
                let cols: Vec<usize> = (0..angles.len())
                    .filter(|&i| (angles[i] / step - (angles[i] / step).round()).abs() < 1e-6)
                    .collect();
                if cols.len() >= 2 {
                    return cols;
                }
            }
        }
        every(self.col_step())
    }
    fn row_step(&self) -> usize {
        (15usize).div_ceil(self.cell.1.max(1) as usize).max(1)
    }
    fn geometry(&self) -> (u32, u32, u32, u32) {
        let left = 16 + 22 + self.row_label_width() + 8;
        let top = 48;
        let grid_w = self.cell.0 * self.cols.len() as u32;
        let grid_h = self.cell.1 * self.rows.len() as u32;
        (left, top, grid_w, grid_h)
    }
    fn size(&self) -> (u32, u32) {
        let (left, top, grid_w, grid_h) = self.geometry();
        let bottom = if self.cols_vertical() {
            self.cols
                .iter()
                .map(|c| text_width(c, LABEL_FONT))
                .max()
                .unwrap_or(0)
                .min(170)
                + 40
        } else {
            48
        };
        let right = 100;
        let w = (left + grid_w + right).max(text_width(&self.title, 18.0) + 40);
        (w, top + grid_h + bottom)
    }
}

fn heatmap<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, hm: &Heatmap) -> Result<()> {
    root.fill(&WHITE).pe()?;
    let (w, _) = root.dim_in_pixel();
    root.draw(&Text::new(
        hm.title.clone(),
        (w as i32 / 2, 12),
        anchored(font(18.0), HPos::Center, VPos::Top),
    ))
    .pe()?;
    let (left, top, grid_w, grid_h) = hm.geometry();
    let (cw, ch) = (hm.cell.0 as i32, hm.cell.1 as i32);
    let (left, top) = (left as i32, top as i32);
    for (r, row) in hm.values.iter().enumerate() {
        for (c, &v) in row.iter().enumerate() {
            let x = left + c as i32 * cw;
            let y = top + r as i32 * ch;
            let color = if v.is_finite() {
                hm.cmap.color(v)
            } else {
                RGBColor(200, 200, 200)
            };
            root.draw(&Rectangle::new([(x, y), (x + cw, y + ch)], color.filled()))
                .pe()?;
            if let Some(text) = hm
                .text
                .as_ref()
                .and_then(|t| t.get(r))
                .and_then(|t| t.get(c))
            {
                if !text.is_empty() {
                    let ink = hm.cmap.ink(v);
                    let style = anchored(font(13.0).color(&ink), HPos::Center, VPos::Center);
                    root.draw(&Text::new(text.clone(), (x + cw / 2, y + ch / 2), style))
                        .pe()?;
                }
            }
        }
    }
    root.draw(&Rectangle::new(
        [(left, top), (left + grid_w as i32, top + grid_h as i32)],
        MUTED.stroke_width(1),
    ))
    .pe()?;
    // Row labels.
    let step = hm.row_step();
    for (r, name) in hm.rows.iter().enumerate().step_by(step) {
        let y = top + r as i32 * ch + ch / 2;
        root.draw(&Text::new(
            clip(name, 24),
            (left - 6, y),
            anchored(font(LABEL_FONT), HPos::Right, VPos::Center),
        ))
        .pe()?;
    }
    // Column labels.
    let vertical = hm.cols_vertical();
    let y0 = top + grid_h as i32 + 6;
    for c in hm.labelled_cols() {
        let name = &hm.cols[c];
        let x = left + c as i32 * cw + cw / 2;
        if vertical {
            let style = anchored(font(LABEL_FONT), HPos::Right, VPos::Center)
                .transform(FontTransform::Rotate270);
            root.draw(&Text::new(clip(name, 24), (x, y0), style)).pe()?;
        } else {
            root.draw(&Text::new(
                name.clone(),
                (x, y0),
                anchored(font(LABEL_FONT), HPos::Center, VPos::Top),
            ))
            .pe()?;
        }
    }
    let (_, h) = root.dim_in_pixel();
    let gx = left + grid_w as i32 / 2;
    root.draw(&Text::new(
        hm.x_desc.clone(),
        (gx, h as i32 - 10),
        anchored(font(15.0), HPos::Center, VPos::Bottom),
    ))
    .pe()?;
    let yd = anchored(font(15.0), HPos::Center, VPos::Top).transform(FontTransform::Rotate270);
    root.draw(&Text::new(
        hm.y_desc.clone(),
        (12, top + grid_h as i32 / 2),
        yd,
    ))
    .pe()?;
    // Colour bar.
    let bx = left + grid_w as i32 + 18;
    let bh = (grid_h as i32).clamp(60, 300);
    for i in 0..bh {
        let v = 1.0 - i as f64 / (bh - 1).max(1) as f64;
        root.draw(&Rectangle::new(
            [(bx, top + i), (bx + 14, top + i + 1)],
            hm.cmap.color(v).filled(),
        ))
        .pe()?;
    }
    root.draw(&Rectangle::new(
        [(bx, top), (bx + 14, top + bh)],
        MUTED.stroke_width(1),
    ))
    .pe()?;
    for (v, label) in [(1.0, "100%"), (0.5, "50%"), (0.0, "0%")] {
        let y = top + ((1.0 - v) * (bh - 1) as f64).round() as i32;
        root.draw(&Text::new(
            label,
            (bx + 19, y),
            anchored(font(13.0).color(&MUTED), HPos::Left, VPos::Center),
        ))
        .pe()?;
    }
    let ly = top + bh + 8;
    root.draw(&Text::new(
        hm.legend.clone(),
        (bx, ly),
        anchored(font(13.0).color(&MUTED), HPos::Left, VPos::Top),
    ))
    .pe()?;
    Ok(())
}

/// Heatmaps draw every class up to this many; beyond it only the classes with
/// data (named in the title), so that a 1,000-class model's few classes with
/// samples do not vanish into one colour.
const HEATMAP_ALL_CLASSES: usize = 60;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_sweep_closes_the_polar_path_and_a_partial_one_does_not() {
        let full: Vec<(f64, f64)> = (0..24).map(|i| (i as f64 * 15.0, 0.5)).collect();
        let (p, closed) = polar_path(&full);
        assert!(closed);
        assert_eq!(p.len(), 24);
        let partial: Vec<(f64, f64)> = (-3..=3).map(|i| (i as f64 * 10.0, 0.5)).collect();
        let (p, closed) = polar_path(&partial);
        assert!(!closed);
        // The arc runs from -30 (330) through 0 to 30, not across the gap.
        assert_eq!(
            p.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![330.0, 340.0, 350.0, 0.0, 10.0, 20.0, 30.0]
        );
    }

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

    #[test]
    fn colour_ramps_hit_their_ends() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        assert_eq!(blues(f64::NAN), RGBColor(247, 251, 255));
        assert_eq!(viridis(2.0), RGBColor(253, 231, 37));
    }

    #[test]
    fn clip_adds_an_ellipsis_only_when_cutting() {
        assert_eq!(clip("seven", 8), "seven");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
    }
}
