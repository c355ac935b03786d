//! Text on the charts and the rotation strip, in the embedded font: a style
//! at a size ([`font`]), anchored, measured ([`text_width`]) and cut to a
//! length ([`clip`]).

use super::font::FAMILY;
use super::palette::INK;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{IntoFont, TextStyle};

/// The embedded font at `size` pixels, in ink.
pub fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FAMILY, size).into_font()).color(&INK)
}

/// `style`, anchored at its `h` and `v` sides.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_adds_an_ellipsis_only_when_cutting() {
        assert_eq!(clip("seven", 8), "seven");
        assert_eq!(clip("abcdefghij", 5), "abcd…");
    }
}
