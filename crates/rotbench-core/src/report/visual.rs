//! The visual report: PNG (and SVG) plots under `plots/` and one self-contained
//! `index.html`, built purely from a [`Summary`] and, when present, the kept
//! example images of [`ExamplesFile`]. Nothing here reads or writes files.
//!
//! Submodules: [`font`] (the embedded font), [`text`] (text styles, widths
//! and clipping), [`palette`] (the colours), [`canvas`] (the bitmap backend
//! that draws its text), [`charts`] (the plotters charts, one file each),
//! [`frames`] (rotated example images), [`pngenc`] (palette PNGs), [`html`]
//! (the page and its escaping).

mod canvas;
mod charts;
mod font;
mod frames;
pub mod html;
mod palette;
mod pngenc;
mod text;

use crate::report::examples::ExamplesFile;
use crate::summary::{ModelSummary, Summary};
use anyhow::{bail, Result};

/// Every report file (path relative to the output folder, bytes).
///
/// `wall_seconds` is the sweep's wall time (from `timing.json`) for the page's
/// run metadata; with it the page is not byte-deterministic, the plots always are.
pub fn render(
    summary: &Summary,
    examples: Option<&ExamplesFile>,
    wall_seconds: Option<f64>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let view = View::new(summary)?;
    font::register()?;
    let plots = charts::all(&view)?;
    let frames = match examples {
        Some(ex) => frames::build(&view, ex)?,
        None => None,
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &plots {
        files.push((format!("plots/{}.png", p.stem), p.png.clone()));
        if let Some(svg) = &p.svg {
            files.push((format!("plots/{}.svg", p.stem), svg.clone().into_bytes()));
        }
    }
    if let Some(f) = &frames {
        files.push(("plots/strip.png".to_string(), f.strip.png.clone()));
    }
    let page = html::page(&view, &plots, frames.as_ref(), wall_seconds)?;
    files.push(("index.html".to_string(), page.into_bytes()));
    Ok(files)
}

/// The summary with its angles in display order and each model's file-name slug,
/// checked once so the drawing code can index without surprises.
pub(crate) struct View<'a> {
    pub summary: &'a Summary,
    /// Indices into every model's `angles` of the rotations alone (no translation),
    /// sorted by angle.
    pub order: Vec<usize>,
    /// A file-name-safe, unique slug per model.
    pub slugs: Vec<String>,
}

impl<'a> View<'a> {
    fn new(summary: &'a Summary) -> Result<View<'a>> {
        let Some(first) = summary.models.first() else {
            bail!("summary has no models; nothing to report");
        };
        if first.angles.is_empty() {
            bail!("summary has no angles; nothing to report");
        }
        for m in &summary.models {
            let same = m.angles.len() == first.angles.len()
                && m.angles
                    .iter()
                    .zip(&first.angles)
                    .all(|(a, b)| a.pose() == b.pose());
            if !same {
                bail!(
                    "summary: model `{}` was evaluated at other angles than `{}`",
                    m.id.name,
                    first.id.name
                );
            }
        }
        // The angle charts show the rotations alone (dx = dy = 0); a grid with
        // translations has its own heatmap.
        let mut order: Vec<usize> = (0..first.angles.len())
            .filter(|&i| first.angles[i].pose().is_rotation())
            .collect();
        order.sort_by(|&a, &b| first.angles[a].angle.total_cmp(&first.angles[b].angle));
        let mut slugs: Vec<String> = Vec::with_capacity(summary.models.len());
        for (i, m) in summary.models.iter().enumerate() {
            let mut s = slug(&m.id.name);
            if slugs.contains(&s) {
                s = format!("{s}-{}", i + 1);
            }
            slugs.push(s);
        }
        Ok(View {
            summary,
            order,
            slugs,
        })
    }

    pub fn models(&self) -> &'a [ModelSummary] {
        &self.summary.models
    }

    /// Angles in display order.
    pub fn angles(&self) -> Vec<f64> {
        self.order
            .iter()
            .map(|&i| self.summary.models[0].angles[i].angle)
            .collect()
    }

    /// Class names of model `m`, padded with numbers if the spec is short.
    pub fn class_names(&self, m: usize) -> Vec<String> {
        let model = &self.summary.models[m];
        let n = model
            .angles
            .first()
            .and_then(|a| {
                a.confusion
                    .iter()
                    .map(|c| c[0].max(c[1]) as usize + 1)
                    .max()
            })
            .unwrap_or(0)
            .max(model.id.spec.classes.len());
        (0..n)
            .map(|c| {
                model
                    .id
                    .spec
                    .classes
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| c.to_string())
            })
            .collect()
    }
}

/// Keep `[A-Za-z0-9_-]`, map everything else to `_`.
fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if s.is_empty() {
        "model".to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_keep_safe_characters_only() {
        assert_eq!(slug("mnist-cnn"), "mnist-cnn");
        assert_eq!(slug("a/b <c>"), "a_b__c_");
        assert_eq!(slug(""), "model");
    }
}
