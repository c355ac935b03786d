//! A heatmap (PNG): a grid of values in [0, 1] coloured by a map (Blues or
//! viridis; grey for no value), with row and column labels that thin out when
//! the cells are narrow, the cells' text when they are large enough, and a
//! colour bar. The recall and confusion charts fill one each.

use super::Plot;
use crate::report::visual::canvas::{bitmap, PlotErr};
use crate::report::visual::palette::{blues, viridis, INK, MUTED};
use crate::report::visual::text::{anchored, clip, font, text_width};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// Heatmaps draw every class up to this many; beyond it only the classes with
/// data (named in the title), so that a 1,000-class model's few classes with
/// samples do not vanish into one colour.
pub(super) const HEATMAP_ALL_CLASSES: usize = 60;

/// The colour map of a heatmap.
#[derive(Clone, Copy)]
pub(super) enum Cmap {
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

/// A grid of values in [0, 1] with row and column labels, drawn as cells.
pub(super) struct Heatmap {
    pub(super) title: String,
    pub(super) rows: Vec<String>,
    pub(super) cols: Vec<String>,
    pub(super) x_desc: String,
    pub(super) y_desc: String,
    /// rows × cols in [0, 1]; NaN is drawn grey.
    pub(super) values: Vec<Vec<f64>>,
    /// Text inside each cell, when the cells are large enough.
    pub(super) text: Option<Vec<Vec<String>>>,
    pub(super) cmap: Cmap,
    pub(super) cell: (u32, u32),
    pub(super) legend: String,
    /// The angle of each column, when the columns are angles.
    pub(super) col_angles: Option<Vec<f64>>,
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

/// Draw the title, the cells (with their text when they are large enough),
/// the row and column labels, the axis descriptions and the colour bar.
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

/// The heatmap as a PNG chart of model `model`.
pub(super) fn heat_plot(
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
