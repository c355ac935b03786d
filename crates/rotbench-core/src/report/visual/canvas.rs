//! The bitmap backend every PNG is drawn on: plotters' `BitMapBackend` with its
//! text drawing replaced. plotters 0.3.7's ab_glyph path drops each glyph's left
//! side bearing (letters crowd: "cl" reads as "d"); here glyphs are laid out with
//! ab_glyph at sub-pixel positions, kerned, anchored on the cap height, and
//! rotated by the style's transform, using the embedded font. [`bitmap`] and
//! [`bitmap_on`] draw on it; [`PlotErr`] turns plotters' errors into anyhow's.

use super::font;
use ab_glyph::{point, Font, FontRef, GlyphId, PxScale, ScaleFont};
use anyhow::{anyhow, Result};
use plotters::backend::{BitMapBackend, RGBPixel};
use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, DrawingBackend, IntoDrawingArea};
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

/// Map any plotters error into anyhow.
pub trait PlotErr<T> {
    fn pe(self) -> Result<T>;
}

impl<T, E: std::fmt::Display> PlotErr<T> for std::result::Result<T, E> {
    fn pe(self) -> Result<T> {
        self.map_err(|e| anyhow!("drawing a chart: {e}"))
    }
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
    let font = font_ref().ok_or_else(|| anyhow!("the embedded font could not be parsed"))?;
    let backend = BitMapBackend::<RGBPixel>::with_buffer_and_format(buf, size).pe()?;
    let root = Canvas::new(backend, font).into_drawing_area();
    draw(&root)?;
    root.present().pe()?;
    Ok(())
}

type Inner<'a> = BitMapBackend<'a, RGBPixel>;
type Error<'a> = DrawingErrorKind<<Inner<'a> as DrawingBackend>::ErrorType>;

pub struct Canvas<'a> {
    inner: Inner<'a>,
    font: FontRef<'static>,
}

impl<'a> Canvas<'a> {
    pub fn new(inner: Inner<'a>, font: FontRef<'static>) -> Canvas<'a> {
        Canvas { inner, font }
    }
}

/// Pixels (relative to the anchor, before rotation) and their coverage for `text`.
pub fn rasterize(
    font: &FontRef<'_>,
    text: &str,
    size: f32,
    h: HPos,
    v: VPos,
) -> Vec<((i32, i32), f32)> {
    let scale = PxScale::from(size.max(1.0));
    let sf = font.as_scaled(scale);
    let mut caret = 0f32;
    let mut prev: Option<GlyphId> = None;
    let mut ids = Vec::new();
    for ch in text.chars().filter(|c| !c.is_control()) {
        let id = sf.glyph_id(ch);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        ids.push((id, caret));
        caret += sf.h_advance(id);
        prev = Some(id);
    }
    let dx = match h {
        HPos::Left => 0.0,
        HPos::Center => -caret / 2.0,
        HPos::Right => -caret,
    };
    let cap = sf
        .outline_glyph(sf.scaled_glyph('H'))
        .map_or(sf.ascent() * 0.7, |o| -o.px_bounds().min.y);
    let baseline = match v {
        VPos::Top => cap,
        VPos::Center => cap / 2.0,
        VPos::Bottom => sf.descent(),
    };
    let mut px = Vec::new();
    for (id, x) in ids {
        let glyph = id.with_scale_and_position(scale, point(x + dx, baseline));
        if let Some(o) = font.outline_glyph(glyph) {
            let b = o.px_bounds();
            o.draw(|gx, gy, cov| {
                if cov > 0.0 {
                    px.push((
                        (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32),
                        cov.min(1.0),
                    ));
                }
            });
        }
    }
    px
}

impl<'a> DrawingBackend for Canvas<'a> {
    type ErrorType = <Inner<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.inner.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), Error<'a>> {
        self.inner.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.inner.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        ul: BackendCoord,
        br: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_rect(ul, br, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.inner.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.inner.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Error<'a>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), Error<'a>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let anchor = style.anchor();
        let trans = style.transform();
        for ((x, y), cov) in rasterize(
            &self.font,
            text,
            style.size() as f32,
            anchor.h_pos,
            anchor.v_pos,
        ) {
            let (tx, ty) = trans.transform(x, y);
            let c = BackendColor {
                alpha: color.alpha * cov as f64,
                rgb: color.rgb,
            };
            self.inner.draw_pixel((pos.0 + tx, pos.1 + ty), c)?;
        }
        Ok(())
    }
}

/// The embedded font as an ab_glyph font.
pub fn font_ref() -> Option<FontRef<'static>> {
    FontRef::try_from_slice(font::FONT).ok()
}
