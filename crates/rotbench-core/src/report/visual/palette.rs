//! The colours every image and the page share: each model's colour, the ink
//! and grid of the charts, right and wrong in the strip, and the colour maps
//! of the heatmaps (ColorBrewer's Blues, viridis).

use plotters::style::RGBColor;

/// The models' colours, in order (the first eight of matplotlib's tab10).
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
/// Text and reference lines.
pub const INK: RGBColor = RGBColor(33, 37, 41);
/// Axes, tick labels and secondary text.
pub const MUTED: RGBColor = RGBColor(108, 117, 125);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(226, 230, 234);
/// A right prediction (the strip).
pub const GOOD: RGBColor = RGBColor(25, 135, 84);
/// A wrong prediction, a calibration gap.
pub const BAD: RGBColor = RGBColor(200, 35, 51);

/// The colour of model `i` in every chart.
pub fn model_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A colour as the page writes it: `#rrggbb`.
pub fn colour_hex(c: RGBColor) -> String {
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

/// The "Blues" map at `v` in [0, 1].
pub fn blues(v: f64) -> RGBColor {
    ramp(&BLUES, v)
}

/// The viridis map at `v` in [0, 1].
pub fn viridis(v: f64) -> RGBColor {
    ramp(&VIRIDIS, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_ramps_hit_their_ends() {
        assert_eq!(blues(0.0), RGBColor(247, 251, 255));
        assert_eq!(blues(1.0), RGBColor(8, 48, 107));
        assert_eq!(blues(f64::NAN), RGBColor(247, 251, 255));
        assert_eq!(viridis(2.0), RGBColor(253, 231, 37));
    }
}
