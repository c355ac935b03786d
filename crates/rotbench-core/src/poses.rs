//! The transforms a sweep applies. A [`Pose`] is a rotation about the image
//! centre (degrees, counter-clockwise positive) followed by a translation (pixels
//! of the model's input, positive `dx` to the right, positive `dy` down), sampled
//! once: output pixel `p` samples the source at `R⁻¹(p − c − t) + c`. That is
//! torchvision's `F.affine(img, angle=-θ, translate=[dx, dy], scale=1, shear=0)`
//! (`affine` turns clockwise, `rotate` counter-clockwise).
//!
//! A sweep's poses are the grid `--angles` × `--translate` (on both axes); the
//! upright pose (0°, 0, 0) is every invariance measure's reference. `--worst-of K`
//! draws poses per sample instead, uniform over the ranges the grid spans, from a
//! counter-based generator of (seed, sample, draw), the bootstrap's kind.

use crate::angles::AngleSpecError;
use crate::format::format_angle;
use crate::metrics::bootstrap::mix;
use serde::{Deserialize, Serialize};

/// A rotation, then a translation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub angle: f64,
    #[serde(default)]
    pub dx: f64,
    #[serde(default)]
    pub dy: f64,
}

impl Pose {
    /// A rotation alone.
    pub const fn rotation(angle: f64) -> Pose {
        Pose {
            angle,
            dx: 0.0,
            dy: 0.0,
        }
    }

    /// The reference every invariance measure compares with: no transform.
    pub fn is_upright(&self) -> bool {
        self.angle == 0.0 && self.dx == 0.0 && self.dy == 0.0
    }

    pub fn is_rotation(&self) -> bool {
        self.dx == 0.0 && self.dy == 0.0
    }

    /// `30°`, or `30° at (+1.5, -3) px` with a translation.
    pub fn label(&self) -> String {
        if self.is_rotation() {
            format!("{}°", format_angle(self.angle))
        } else {
            format!(
                "{}° at ({}, {}) px",
                format_angle(self.angle),
                signed(self.dx),
                signed(self.dy)
            )
        }
    }

    /// The same translation (the poses the flip rate walks along).
    pub fn same_shift(&self, other: &Pose) -> bool {
        self.dx == other.dx && self.dy == other.dy
    }
}

impl From<f64> for Pose {
    /// An angle alone: a rotation.
    fn from(angle: f64) -> Pose {
        Pose::rotation(angle)
    }
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", format_angle(v))
    } else {
        format_angle(v)
    }
}

/// The unit of `--translate`: pixels of the model's input, or percent of its
/// width (`dx`) and height (`dy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetUnit {
    #[serde(rename = "px")]
    Pixels,
    #[serde(rename = "%")]
    Percent,
}

/// `--translate SPEC`: offsets (a list or a `start:stop:step` range, as
/// `--angles`) with a required unit, applied on both axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Translate {
    /// As written, for the records.
    pub spec: String,
    pub offsets: Vec<f64>,
    pub unit: OffsetUnit,
}

const TRANSLATE_FORMS: &str = "give offsets with a unit, as a list `-3,0,3px` or a range `-3:4.5:1.5px` (stop excluded), in px (pixels of the model's input) or % (of its width and height), e.g. `--translate=-10:15:5%`";

/// Parse `--translate`. The unit is required: pixels and fractions differ by the
/// image size, and rotbench does not guess which one is meant.
pub fn parse_translate(spec: &str) -> Result<Translate, AngleSpecError> {
    let s = spec.trim();
    let (body, unit) = if let Some(b) = s.strip_suffix("px") {
        (b, OffsetUnit::Pixels)
    } else if let Some(b) = s.strip_suffix('%') {
        (b, OffsetUnit::Percent)
    } else {
        return Err(AngleSpecError(format!(
            "--translate `{s}` has no unit: {TRANSLATE_FORMS}; rotbench does not guess the unit, since offsets in pixels and in fractions of the image differ by its size"
        )));
    };
    let offsets = crate::angles::parse_values(body.trim(), "offset", "translate")
        .map_err(|e| AngleSpecError(format!("--translate `{s}`: {}; {TRANSLATE_FORMS}", e.0)))?;
    Ok(Translate {
        spec: s.to_string(),
        offsets,
        unit,
    })
}

impl Translate {
    /// The offsets in pixels of a `width` x `height` input: `(dx values, dy values)`.
    /// An offset that moves the image wholly out of view is refused.
    pub fn pixels(&self, width: usize, height: usize) -> Result<(Vec<f64>, Vec<f64>), String> {
        let scale = |size: usize| match self.unit {
            OffsetUnit::Pixels => 1.0,
            OffsetUnit::Percent => size as f64 / 100.0,
        };
        let on = |size: usize| -> Vec<f64> {
            self.offsets
                .iter()
                .map(|o| clean(o * scale(size)))
                .collect()
        };
        let (dxs, dys) = (on(width), on(height));
        for (vals, size, axis) in [(&dxs, width, "width"), (&dys, height, "height")] {
            if let Some(v) = vals.iter().find(|v| v.abs() >= size as f64) {
                return Err(format!(
                    "--translate {}: an offset of {} px moves the {size}-pixel {axis} of the model's input wholly out of view; keep offsets under {size} px",
                    self.spec,
                    format_angle(*v)
                ));
            }
        }
        Ok((dxs, dys))
    }
}

/// A sweep's translations as its settings record them: `--translate` as given and
/// the offsets in pixels of the model's input on each axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shifts {
    pub spec: String,
    pub unit: OffsetUnit,
    pub dx: Vec<f64>,
    pub dy: Vec<f64>,
}

impl Translate {
    /// [`Translate::pixels`] with the spec kept, for the settings.
    pub fn shifts(&self, width: usize, height: usize) -> Result<Shifts, String> {
        let (dx, dy) = self.pixels(width, height)?;
        Ok(Shifts {
            spec: self.spec.clone(),
            unit: self.unit,
            dx,
            dy,
        })
    }
}

/// Round away float noise (1.5 * 3) to 1e-9 pixels.
fn clean(v: f64) -> f64 {
    let r = (v * 1e9).round() / 1e9;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// The grid of poses: every translation `(dx, dy)` (dx outer), and at each every
/// angle in the user's order, so that consecutive poses of one translation are
/// consecutive angles.
pub fn grid(angles: &[f64], dxs: &[f64], dys: &[f64]) -> Vec<Pose> {
    let mut out = Vec::with_capacity(angles.len() * dxs.len() * dys.len());
    for &dx in dxs {
        for &dy in dys {
            out.extend(angles.iter().map(|&angle| Pose { angle, dx, dy }));
        }
    }
    out
}

/// For each pose (sweep order), the position of the pose of the same translation
/// `step` angles on (1: the following angle), wrapping round when that
/// translation's angles go round the circle (one common step, 360° in all).
pub fn next_positions(poses: &[Pose], step: usize) -> Vec<Option<usize>> {
    let mut next = vec![None; poses.len()];
    let mut seen: Vec<usize> = Vec::new();
    for (i, p) in poses.iter().enumerate() {
        if seen.iter().any(|&s| poses[s].same_shift(p)) {
            continue;
        }
        seen.push(i);
        let group: Vec<usize> = (i..poses.len())
            .filter(|&j| poses[j].same_shift(p))
            .collect();
        let angles: Vec<f64> = group.iter().map(|&j| poses[j].angle).collect();
        let ring = crate::metrics::stability::next_positions(&angles, step);
        for (k, n) in ring.into_iter().enumerate() {
            next[group[k]] = n.map(|m| group[m]);
        }
    }
    next
}

/// The continuous ranges `--worst-of K` draws from: `[min, max]` of the grid's
/// angles, dx and dy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ranges {
    pub angle: [f64; 2],
    pub dx: [f64; 2],
    pub dy: [f64; 2],
}

impl Ranges {
    pub fn of(angles: &[f64], dxs: &[f64], dys: &[f64]) -> Ranges {
        let span = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo.is_finite() {
                [lo, hi]
            } else {
                [0.0, 0.0]
            }
        };
        Ranges {
            angle: span(angles),
            dx: span(dxs),
            dy: span(dys),
        }
    }
}

/// A uniform number in `[0, 1)` from a 64-bit hash (its top 53 bits).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Draw `draw` (0-based) of the sample at dataset position `sample`: uniform over
/// `ranges`, from [`mix`] of the seed, the sample and the draw, so a draw does not
/// depend on threads, batches, shards or resumes. Each coordinate uses its own
/// stream (`k` = 0 angle, 1 dx, 2 dy).
pub fn draw_pose(seed: u64, sample: u64, draw: u64, ranges: &Ranges) -> Pose {
    let base = mix(mix(seed ^ 0x243F_6A88_85A3_08D3)
        ^ sample.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let at = |k: u64, [lo, hi]: [f64; 2]| {
        let h = mix(base ^ (draw.wrapping_mul(3) + k + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        lo + (hi - lo) * unit(h)
    };
    Pose {
        angle: at(0, ranges.angle),
        dx: at(1, ranges.dx),
        dy: at(2, ranges.dy),
    }
}

/// `--worst-of K --seed S`: K draws of a pose per sample, uniform over `ranges`
/// (the span of `--angles` and `--translate`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Draws {
    pub k: usize,
    pub seed: u64,
    pub ranges: Ranges,
}

impl Draws {
    /// Draw `draw` of the sample at dataset position `sample`.
    pub fn pose(&self, sample: u64, draw: usize) -> Pose {
        draw_pose(self.seed, sample, draw as u64, &self.ranges)
    }
}

/// What one column of a sweep's data holds: a pose for every sample, or one
/// draw of `--worst-of` (a pose per sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Slot {
    Pose(Pose),
    Draw(Draws, usize),
}

/// A sweep's columns: its poses, then its draws.
pub fn slots(poses: &[Pose], draws: Option<Draws>) -> Vec<Slot> {
    let mut v: Vec<Slot> = poses.iter().map(|&p| Slot::Pose(p)).collect();
    if let Some(d) = draws {
        v.extend((0..d.k).map(|i| Slot::Draw(d, i)));
    }
    v
}

impl Slot {
    /// `30°`, `30° at (+1.5, -3) px`, or `draw 3 of --worst-of 10`.
    pub fn label(&self) -> String {
        match self {
            Slot::Pose(p) => p.label(),
            Slot::Draw(d, i) => format!("draw {i} of --worst-of {}", d.k),
        }
    }
}

/// The published worst-of-k selection (Engstrom et al., `spatial_attack.py`,
/// transcribed): going through the draws in order with `max_xent = 0` and
/// `all_correct = true`, a draw replaces the worst so far when it is wrong while
/// all before it were right, or when it is as right as all before it and its
/// cross-entropy exceeds every earlier one; then `max_xent` and `all_correct`
/// take it in. With `p_true` the probability of the true class, cross-entropy
/// `-ln p_true` exceeds `max_xent` exactly when `p_true` is below every earlier
/// one (and below 1, for `max_xent = 0`). `None` when no draw was chosen (every
/// draw right with `p_true = 1`: the published code keeps the untransformed
/// image).
pub fn worst_draw(correct: &[bool], p_true: &[f32]) -> Option<usize> {
    let mut worst = None;
    let mut min_p = 1.0f32;
    let mut all_correct = true;
    for (i, (&c, &p)) in correct.iter().zip(p_true).enumerate() {
        let higher_xent = p < min_p;
        if (higher_xent && c == all_correct) || (!c && all_correct) {
            worst = Some(i);
        }
        min_p = min_p.min(p);
        all_correct &= c;
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_translation_needs_its_unit() {
        let t = parse_translate("-3:4.5:1.5px").unwrap();
        assert_eq!(t.offsets, [-3.0, -1.5, 0.0, 1.5, 3.0]);
        assert_eq!(t.unit, OffsetUnit::Pixels);
        let p = parse_translate("-10,0,10%").unwrap();
        assert_eq!(
            p.pixels(28, 20).unwrap(),
            (vec![-2.8, 0.0, 2.8], vec![-2.0, 0.0, 2.0])
        );
        let e = parse_translate("3").unwrap_err().0;
        assert!(
            e.contains("has no unit") && e.contains("px") && e.contains('%'),
            "{e}"
        );
        assert!(parse_translate("3cm").is_err());
        let e = parse_translate("3,x px").unwrap_err().0;
        assert!(e.contains("offset `x` is not a number"), "{e}");
        let e = parse_translate("-28,0px")
            .unwrap()
            .pixels(28, 28)
            .unwrap_err();
        assert!(e.contains("wholly out of view"), "{e}");
    }

    #[test]
    fn the_grid_walks_angles_within_each_translation() {
        let g = grid(&[0.0, 90.0, 180.0, 270.0], &[-1.0, 1.0], &[0.0]);
        assert_eq!(g.len(), 8);
        assert_eq!(
            g[1],
            Pose {
                angle: 90.0,
                dx: -1.0,
                dy: 0.0
            }
        );
        assert_eq!(
            g[4],
            Pose {
                angle: 0.0,
                dx: 1.0,
                dy: 0.0
            }
        );
        let next = next_positions(&g, 1);
        assert_eq!(next[0], Some(1));
        assert_eq!(next[3], Some(0), "circular within its translation");
        assert_eq!(next[7], Some(4));
        assert_eq!(Pose::rotation(30.0).label(), "30°");
        assert_eq!(g[5].label(), "90° at (+1, 0) px");
    }

    #[test]
    fn draws_are_uniform_keyed_and_in_range() {
        let r = Ranges::of(&[-30.0, 30.0], &[-3.0, 3.0], &[-3.0, 3.0]);
        let a = draw_pose(1, 17, 3, &r);
        assert_eq!(a, draw_pose(1, 17, 3, &r), "the same key, the same pose");
        assert_ne!(a, draw_pose(2, 17, 3, &r));
        assert_ne!(a, draw_pose(1, 18, 3, &r));
        assert_ne!(a, draw_pose(1, 17, 4, &r));
        let (mut lo, mut hi, mut sum) = (f64::MAX, f64::MIN, 0.0);
        for s in 0..10_000 {
            let p = draw_pose(7, s, 0, &r);
            assert!((-30.0..30.0).contains(&p.angle) && (-3.0..3.0).contains(&p.dx));
            lo = lo.min(p.angle);
            hi = hi.max(p.angle);
            sum += p.dx;
        }
        assert!(lo < -29.9 && hi > 29.9, "{lo} {hi}");
        assert!((sum / 10_000.0).abs() < 0.06, "mean dx {}", sum / 10_000.0);
    }

    #[test]
    fn the_worst_draw_follows_the_published_rule() {
        // All right: the lowest true-class probability.
        assert_eq!(worst_draw(&[true, true, true], &[0.9, 0.6, 0.7]), Some(1));
        // The first wrong draw replaces any right one ...
        assert_eq!(worst_draw(&[true, false, true], &[0.5, 0.8, 0.1]), Some(1));
        // ... and a later wrong one only with a higher cross-entropy than every
        // earlier draw, right or wrong (max_xent counts them all).
        assert_eq!(worst_draw(&[true, false, false], &[0.1, 0.3, 0.2]), Some(1));
        assert_eq!(
            worst_draw(&[true, false, false], &[0.1, 0.3, 0.05]),
            Some(2)
        );
        // p_true = 1 everywhere: cross-entropy 0 never exceeds 0.
        assert_eq!(worst_draw(&[true, true], &[1.0, 1.0]), None);
    }

    #[test]
    fn draws_depend_on_the_seed_the_sample_and_the_draw_only() {
        let d = Draws {
            k: 10,
            seed: 7,
            ranges: Ranges::of(&[-30.0, 30.0], &[-3.0, 3.0], &[-3.0, 3.0]),
        };
        let p = d.pose(123, 4);
        assert_eq!(p, d.pose(123, 4));
        assert_ne!(p, d.pose(124, 4));
        assert_ne!(p, d.pose(123, 5));
        assert!((-30.0..=30.0).contains(&p.angle) && (-3.0..=3.0).contains(&p.dx));
    }
}
