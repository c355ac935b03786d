//! Example images, rotated exactly as the sweep rotated them (same
//! [`RotationPlan`](crate::rotate::RotationPlan), interpolation, fill and circle mask): the
//! rotation strip (one sample through every angle, each model's prediction under
//! each frame) and, per angle, a sprite of the misclassified examples' thumbnails
//! for the page's gallery.

use super::canvas::{bitmap_on, PlotErr};
use super::palette::{model_color, BAD, GOOD};
use super::pngenc;
use super::text::{anchored, clip, font, text_width};
use super::View;
use crate::format::deg;
use crate::report::examples::ExamplesFile;
use crate::results::Examples;
use crate::rotate::{to_u8, Geometry, RotateOptions, RotationPlan};
use anyhow::{bail, Result};
use image::imageops::{resize, FilterType};
use image::RgbImage;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

/// Thumbnails larger than this (either side) are scaled down.
const MAX_THUMB: u32 = 64;
/// Misclassified examples shown per model and angle.
pub const GALLERY_CAP: usize = 12;
/// Frames per row of the strip.
const STRIP_COLUMNS: usize = 12;

pub struct Frames {
    pub strip: Strip,
    pub gallery: Gallery,
}

pub struct Strip {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Dataset index and true label of the sample shown.
    pub index: u64,
    pub label: u32,
}

pub struct Gallery {
    /// Thumbnail size in pixels (before the page scales it up).
    pub thumb: (u32, u32),
    /// How many examples were kept (the gallery draws from these only).
    pub kept: usize,
    /// One entry per angle, in display order.
    pub angles: Vec<GalleryAngle>,
}

pub struct GalleryAngle {
    /// PNG of the items' thumbnails side by side, in item order; empty when there are none.
    pub sprite: Vec<u8>,
    pub items: Vec<GalleryItem>,
    /// Per model: how many kept examples it gets wrong at this angle.
    pub wrong: Vec<usize>,
}

pub struct GalleryItem {
    pub index: u64,
    /// The sample's file or record ("" when examples.json predates it).
    pub source: String,
    pub label: u32,
    /// Every model's prediction (-1: NaN or inf logits).
    pub preds: Vec<i32>,
}

fn options(view: &View<'_>) -> Result<RotateOptions> {
    let s = &view.summary.settings;
    Ok(RotateOptions {
        interpolation: s.interpolation,
        fill: s.fill,
        mask_circle: s.mask_circle,
    })
}

fn check(view: &View<'_>, ex: &ExamplesFile) -> Result<()> {
    let n = ex.indices.len();
    let angles = view.models()[0].angles.len();
    if ex.labels.len() != n {
        bail!(
            "examples.json: {} labels for {} samples",
            ex.labels.len(),
            n
        );
    }
    let im = &ex.images;
    if im.channels == 0 || im.height == 0 || im.width == 0 || im.height > 4096 || im.width > 4096 {
        bail!(
            "examples.json: image size {}x{}x{} is not usable",
            im.channels,
            im.height,
            im.width
        );
    }
    if ex.preds.len() != view.models().len()
        || ex
            .preds
            .iter()
            .any(|m| m.len() != angles || m.iter().any(|a| a.len() != n))
    {
        bail!(
            "examples.json does not match summary.json: expected predictions for {} models x {} angles x {} samples",
            view.models().len(),
            angles,
            n
        );
    }
    Ok(())
}

/// One rotated sample as an RGB thumbnail of at most `MAX_THUMB` pixels a side.
struct Thumbs {
    images: Examples,
    size: (u32, u32),
}

impl Thumbs {
    fn new(ex: &ExamplesFile) -> Result<Thumbs> {
        let images = ex.checked_images()?;
        let (w, h) = (images.width as u32, images.height as u32);
        let size = if w.max(h) > MAX_THUMB {
            let s = MAX_THUMB as f64 / w.max(h) as f64;
            (
                ((w as f64 * s).round() as u32).max(1),
                ((h as f64 * s).round() as u32).max(1),
            )
        } else {
            (w, h)
        };
        Ok(Thumbs { images, size })
    }

    fn get(&self, plan: &RotationPlan, k: usize) -> RgbImage {
        let im = &self.images;
        let (c, h, w) = (im.channels, im.height, im.width);
        let mut out = vec![0f32; c * h * w];
        plan.apply(im.sample(k), c, &mut out);
        let chw = to_u8(&out);
        let plane = h * w;
        let img = RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let p = y as usize * w + x as usize;
            if c >= 3 {
                image::Rgb([chw[p], chw[plane + p], chw[2 * plane + p]])
            } else {
                image::Rgb([chw[p]; 3])
            }
        });
        if self.size == (w as u32, h as u32) {
            img
        } else {
            resize(&img, self.size.0, self.size.1, FilterType::Triangle)
        }
    }
}

/// The strip and the gallery; `None` when examples.json holds no samples.
pub fn build(view: &View<'_>, ex: &ExamplesFile) -> Result<Option<Frames>> {
    check(view, ex)?;
    if ex.labels.is_empty() {
        return Ok(None);
    }
    let opts = options(view)?;
    let thumbs = Thumbs::new(ex)?;
    let geometry = Geometry::same(ex.images.height, ex.images.width);
    let plans: Vec<RotationPlan> = view
        .order
        .iter()
        .map(|&ai| RotationPlan::new(geometry, view.models()[0].angles[ai].angle, &opts))
        .collect();
    let strip = strip(view, ex, &thumbs, &plans)?;
    let gallery = gallery(view, ex, &thumbs, &plans)?;
    Ok(Some(Frames { strip, gallery }))
}

fn gallery(
    view: &View<'_>,
    ex: &ExamplesFile,
    thumbs: &Thumbs,
    plans: &[RotationPlan],
) -> Result<Gallery> {
    let (tw, th) = thumbs.size;
    let grey = ex.images.channels < 3;
    let mut angles = Vec::with_capacity(plans.len());
    for (d, &ai) in view.order.iter().enumerate() {
        let wrong_of = |m: usize| -> Vec<usize> {
            (0..ex.labels.len())
                .filter(|&k| ex.preds[m][ai][k] != ex.labels[k] as i32)
                .collect()
        };
        let wrong: Vec<Vec<usize>> = (0..view.models().len()).map(wrong_of).collect();
        // The first GALLERY_CAP mistakes of each model, merged in sample order.
        let mut ks: Vec<usize> = wrong
            .iter()
            .flat_map(|w| w.iter().take(GALLERY_CAP).copied())
            .collect();
        ks.sort_unstable();
        ks.dedup();
        let sprite = if ks.is_empty() {
            Vec::new()
        } else {
            let sw = tw * ks.len() as u32;
            let mut rgb = RgbImage::new(sw, th);
            for (j, &k) in ks.iter().enumerate() {
                image::imageops::replace(
                    &mut rgb,
                    &thumbs.get(&plans[d], k),
                    (j as u32 * tw) as i64,
                    0,
                );
            }
            if grey {
                let l: Vec<u8> = rgb.pixels().map(|p| p.0[0]).collect();
                pngenc::gray(&l, sw, th)?
            } else {
                pngenc::rgb(rgb.as_raw(), sw, th)?
            }
        };
        let items = ks
            .iter()
            .map(|&k| GalleryItem {
                index: ex.indices[k],
                source: ex.sources.get(k).cloned().unwrap_or_default(),
                label: ex.labels[k],
                preds: (0..view.models().len())
                    .map(|m| ex.preds[m][ai][k])
                    .collect(),
            })
            .collect();
        angles.push(GalleryAngle {
            sprite,
            items,
            wrong: wrong.iter().map(Vec::len).collect(),
        });
    }
    Ok(Gallery {
        thumb: (tw, th),
        kept: ex.labels.len(),
        angles,
    })
}

/// Name of class `c` for model `m`, `invalid` for a NaN/inf prediction.
pub fn class_name(names: &[String], c: i64) -> String {
    if c < 0 {
        "invalid (NaN/inf)".to_string()
    } else {
        names
            .get(c as usize)
            .cloned()
            .unwrap_or_else(|| format!("class {c}"))
    }
}

fn strip(
    view: &View<'_>,
    ex: &ExamplesFile,
    thumbs: &Thumbs,
    plans: &[RotationPlan],
) -> Result<Strip> {
    let models = view.models();
    let reference = models[0]
        .angles
        .iter()
        .position(|a| a.reference)
        .unwrap_or(view.order[0]);
    // The first sample the first model gets right upright, else the first sample.
    let k = (0..ex.labels.len())
        .find(|&k| ex.preds[0][reference][k] == ex.labels[k] as i32)
        .unwrap_or(0);
    let (tw, th) = thumbs.size;
    let scale = (56 / tw.max(th)).max(1);
    let (fw, fh) = (tw * scale, th * scale);
    let cell_w = fw.max(72) + 12;
    let line_h = 16u32;
    let row_h = 20 + fh + 6 + line_h * models.len() as u32 + 14;
    let n = plans.len();
    let cols = n.min(STRIP_COLUMNS) as u32;
    let rows = n.div_ceil(STRIP_COLUMNS) as u32;
    let names: Vec<Vec<String>> = (0..models.len()).map(|m| view.class_names(m)).collect();
    let title = format!(
        "Sample #{} (true class: {}) at every angle, with each model's prediction",
        ex.indices[k],
        clip(&class_name(&names[0], ex.labels[k] as i64), 32)
    );
    let legend_h = if models.len() > 1 { 22 } else { 0 };
    let top = 44 + legend_h;
    let width = (cols * cell_w + 32).max(text_width(&title, 18.0) + 40);
    let height = top + rows * row_h + 8;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    let x0 = (width - cols * cell_w) / 2;
    let origin = |d: usize| -> (u32, u32) {
        let (r, c) = ((d / STRIP_COLUMNS) as u32, (d % STRIP_COLUMNS) as u32);
        (x0 + c * cell_w, top + r * row_h)
    };
    // Pixels first, upscaled by whole factors so small images stay crisp.
    for (d, plan) in plans.iter().enumerate() {
        let img = thumbs.get(plan, k);
        let (cx, cy) = origin(d);
        let fx = cx + (cell_w - fw) / 2;
        let fy = cy + 20;
        for y in 0..fh {
            for x in 0..fw {
                let p = img.get_pixel(x / scale, y / scale).0;
                let o = (((fy + y) * width + fx + x) * 3) as usize;
                buf[o..o + 3].copy_from_slice(&p);
            }
        }
    }
    let label = ex.labels[k] as i32;
    bitmap_on(&mut buf, (width, height), |root| {
        root.draw(&Text::new(
            title.clone(),
            (width as i32 / 2, 12),
            anchored(font(18.0), HPos::Center, VPos::Top),
        ))
        .pe()?;
        if models.len() > 1 {
            let items: Vec<String> = models.iter().map(|m| clip(&m.id.name, 32)).collect();
            let total: u32 = items.iter().map(|s| 18 + text_width(s, 14.0) + 18).sum();
            let mut x = (width.saturating_sub(total) / 2) as i32;
            for (i, s) in items.iter().enumerate() {
                root.draw(&Rectangle::new(
                    [(x, 38), (x + 10, 48)],
                    model_color(i).filled(),
                ))
                .pe()?;
                root.draw(&Text::new(
                    s.clone(),
                    (x + 16, 43),
                    anchored(font(14.0), HPos::Left, VPos::Center),
                ))
                .pe()?;
                x += (18 + text_width(s, 14.0) + 18) as i32;
            }
        }
        for (d, &ai) in view.order.iter().enumerate() {
            let (cx, cy) = origin(d);
            let (cx, cy) = (cx as i32, cy as i32);
            let mid = cx + cell_w as i32 / 2;
            root.draw(&Text::new(
                deg(models[0].angles[ai].angle),
                (mid, cy + 2),
                anchored(font(14.0), HPos::Center, VPos::Top),
            ))
            .pe()?;
            let fx = cx + (cell_w - fw) as i32 / 2;
            let fy = cy + 20;
            root.draw(&Rectangle::new(
                [(fx - 1, fy - 1), (fx + fw as i32, fy + fh as i32)],
                RGBColor(206, 212, 218).stroke_width(1),
            ))
            .pe()?;
            for (m, preds) in ex.preds.iter().enumerate() {
                let p = preds[ai][k];
                let y = fy + fh as i32 + 6 + (m as u32 * line_h) as i32 + line_h as i32 / 2;
                let color = if p == label { GOOD } else { BAD };
                let max_chars =
                    ((cell_w as usize).saturating_sub(if models.len() > 1 { 16 } else { 4 })) / 7;
                let text = clip(&class_name(&names[m], p as i64), max_chars.max(3));
                if models.len() > 1 {
                    let tw = text_width(&text, 14.0) as i32;
                    let sx = mid - (tw + 10) / 2;
                    root.draw(&Rectangle::new(
                        [(sx, y - 3), (sx + 6, y + 3)],
                        model_color(m).filled(),
                    ))
                    .pe()?;
                    root.draw(&Text::new(
                        text,
                        (sx + 10, y),
                        anchored(font(14.0).color(&color), HPos::Left, VPos::Center),
                    ))
                    .pe()?;
                } else {
                    root.draw(&Text::new(
                        text,
                        (mid, y),
                        anchored(font(14.0).color(&color), HPos::Center, VPos::Center),
                    ))
                    .pe()?;
                }
            }
        }
        Ok(())
    })?;
    let png = pngenc::rgb(&buf, width, height)?;
    Ok(Strip {
        png,
        width,
        height,
        index: ex.indices[k],
        label: ex.labels[k],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn examples(c: usize, h: usize, w: usize, pixels: Vec<u8>) -> ExamplesFile {
        ExamplesFile {
            images: Examples {
                channels: c,
                height: h,
                width: w,
                count: 1,
                pixels,
            },
            indices: vec![0],
            sources: vec![],
            labels: vec![0],
            preds: vec![vec![vec![0]]],
        }
    }

    #[test]
    fn colour_planes_become_rgb_pixels() {
        // 3x2 CHW image: red plane 10.., green 20.., blue 30..
        let (h, w) = (2, 3);
        let px: Vec<u8> = (0..3)
            .flat_map(|c| (0..6).map(move |i| (10 * (c + 1) + i) as u8))
            .collect();
        let ex = examples(3, h, w, px);
        let thumbs = Thumbs::new(&ex).unwrap();
        let plan = RotationPlan::new(Geometry::same(h, w), 0.0, &RotateOptions::default());
        let img = thumbs.get(&plan, 0);
        assert_eq!(img.dimensions(), (3, 2));
        assert_eq!(img.get_pixel(1, 1).0, [14, 24, 34]);
    }

    #[test]
    fn large_images_are_scaled_down_to_thumbnails() {
        let (h, w) = (200, 100);
        let ex = examples(1, h, w, vec![128; h * w]);
        let thumbs = Thumbs::new(&ex).unwrap();
        assert_eq!(thumbs.size, (32, 64));
        let plan = RotationPlan::new(Geometry::same(h, w), 0.0, &RotateOptions::default());
        let img = thumbs.get(&plan, 0);
        assert_eq!(img.dimensions(), (32, 64));
        assert_eq!(img.get_pixel(16, 32).0, [128, 128, 128]);
    }

    #[test]
    fn class_names_cover_invalid_and_unknown_predictions() {
        let names = vec!["cat".to_string()];
        assert_eq!(class_name(&names, 0), "cat");
        assert_eq!(class_name(&names, -1), "invalid (NaN/inf)");
        assert_eq!(class_name(&names, 7), "class 7");
    }
}
