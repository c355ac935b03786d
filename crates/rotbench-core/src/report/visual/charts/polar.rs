//! The polar accuracy plot (PNG and SVG): 0° at the right, counter-clockwise,
//! the distance from the centre the accuracy; a sweep that goes evenly all the
//! way round closes its path, a partial one is an open arc.

use super::series::{header, Series};
use super::{svg, Plot, SVG_TEXT};
use crate::format::deg;
use crate::report::visual::canvas::{bitmap, PlotErr};
use crate::report::visual::palette::{GRID, MUTED};
use crate::report::visual::text::{anchored, font};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// The polar chart is square.
pub const POLAR_SIZE: (u32, u32) = (560, 560);

/// The accuracy of each model by angle, drawn round the circle.
pub(super) fn plot(series: &[Series]) -> Result<Plot> {
    let polar = PolarChart {
        title: "Accuracy by angle (polar)".into(),
        series: series.to_vec(),
    };
    Ok(Plot {
        stem: "polar".into(),
        title: polar.title.clone(),
        caption: "Accuracy by angle: 0° at the right, counter-clockwise; the distance from the centre is the accuracy.",
        wide: false,
        model: None,
        width: POLAR_SIZE.0,
        height: POLAR_SIZE.1,
        png: bitmap(POLAR_SIZE, |r| polar_chart(r, &polar, 1.0))?,
        svg: Some(svg(POLAR_SIZE, |r| polar_chart(r, &polar, SVG_TEXT))?),
    })
}

/// The polar accuracy plot: one closed or open path per model.
struct PolarChart {
    title: String,
    series: Vec<Series>,
}

/// A text label of the polar grid: where it is anchored and how.
struct Label {
    text: String,
    at: (i32, i32),
    size: f64,
    h: HPos,
    v: VPos,
}

/// The grid's labels: each 30° spoke named just outside the circle, and each
/// ring's accuracy (25% ... 100%) just right of the 90° spoke and below its ring,
/// so "100%" stays inside the circle, clear of "60°" and "90°" outside it.
fn labels(radius: f64, ts: f64, at: &dyn Fn(f64, f64) -> (i32, i32)) -> Vec<Label> {
    let mut out = vec![];
    for k in 0..12 {
        let a = k as f64 * 30.0;
        out.push(Label {
            text: deg(a),
            at: at(a, 1.0 + (8.0 + 12.0 * ts) / radius),
            size: 14.0 * ts,
            h: HPos::Center,
            v: VPos::Center,
        });
    }
    for k in 1..=4 {
        let (x, y) = at(90.0, k as f64 / 4.0);
        out.push(Label {
            text: format!("{}%", k * 25),
            at: (x + 4, y + 3),
            size: 12.0 * ts,
            h: HPos::Left,
            v: VPos::Top,
        });
    }
    out
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
    // Labels last: a ring's label sits inside the circle, where a path may pass,
    // so it gets a white box (its estimated extent) to stay legible.
    for l in labels(radius, ts, &at) {
        if l.text.ends_with('%') {
            let (bw, bh) = extent(&l);
            body.draw(&Rectangle::new(
                [
                    (l.at.0 - 1, l.at.1 - 1),
                    (l.at.0 + bw as i32, l.at.1 + bh as i32),
                ],
                WHITE.mix(0.85).filled(),
            ))
            .pe()?;
        }
        body.draw(&Text::new(
            l.text,
            l.at,
            anchored(font(l.size).color(&MUTED), l.h, l.v),
        ))
        .pe()?;
    }
    Ok(())
}

/// A label's width and height, estimated generously (0.62 em a character, 1.2 em).
fn extent(l: &Label) -> (f64, f64) {
    (0.62 * l.size * l.text.chars().count() as f64, 1.2 * l.size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 33: the ring labels ("100%") do not overlap the angle labels ("60°"),
    /// at the PNG's text scale and the SVG's, with text boxes estimated
    /// generously (0.62 em a character, 1.2 em high).
    #[test]
    fn no_ring_label_overlaps_an_angle_label() {
        for ts in [1.0, SVG_TEXT] {
            let (w, h) = (POLAR_SIZE.0 as f64, POLAR_SIZE.1 as f64 - 60.0);
            let (cx, cy) = (w / 2.0, h / 2.0);
            let radius = (w.min(h) / 2.0 - 30.0 - 8.0 * ts).max(20.0);
            let at = |a: f64, r: f64| {
                let t = a.to_radians();
                (
                    (cx + r * radius * t.cos()).round() as i32,
                    (cy - r * radius * t.sin()).round() as i32,
                )
            };
            let boxes: Vec<(String, [f64; 4])> = labels(radius, ts, &at)
                .into_iter()
                .map(|l| {
                    let (bw, bh) = extent(&l);
                    let x0 = match l.h {
                        HPos::Left => l.at.0 as f64,
                        HPos::Center => l.at.0 as f64 - bw / 2.0,
                        HPos::Right => l.at.0 as f64 - bw,
                    };
                    let y0 = match l.v {
                        VPos::Top => l.at.1 as f64,
                        VPos::Center => l.at.1 as f64 - bh / 2.0,
                        VPos::Bottom => l.at.1 as f64 - bh,
                    };
                    (l.text, [x0, y0, x0 + bw, y0 + bh])
                })
                .collect();
            for (a, ba) in boxes.iter().filter(|(t, _)| t.ends_with('%')) {
                for (b, bb) in boxes.iter().filter(|(t, _)| t.ends_with('°')) {
                    let overlap = ba[0] < bb[2] && bb[0] < ba[2] && ba[1] < bb[3] && bb[1] < ba[3];
                    assert!(
                        !overlap,
                        "{a} {ba:?} overlaps {b} {bb:?} at text scale {ts}"
                    );
                }
            }
        }
    }

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
}
