//! Pure image rotation: a sampling [`RotationPlan`] per (size, angle, options), applied to
//! many images.
//!
//! Semantics follow torchvision's `transforms.functional.rotate` on tensors:
//! degrees, counter-clockwise positive, about the centre `((w-1)/2, (h-1)/2)` in
//! pixel-index coordinates, output the same size as the input. Differences from
//! torchvision (all measured in `tests/rotation_fidelity.rs`, listed in the README):
//! - none for a constant fill: like torchvision, an output pixel is
//!   `m * sum(w_i * v_i over taps inside) + (1 - m) * fill` with `m` the summed weight
//!   of the inside taps (torchvision's coverage mask), so edge pixels are
//!   attenuated twice, exactly as torchvision does; torchvision's `fill=None`
//!   (plain zero padding, no second attenuation) is not offered;
//! - multiples of 90 degrees use exact sines and cosines, so on a square image (or
//!   any image whose sides differ by an even number) they are exact pixel
//!   permutations, and 0 degrees is the identity for every interpolation;
//! - any finite angle turns as its exact remainder `angle % 360` ([`reduce_degrees`]),
//!   so 390 turns exactly as 30 and 1e300 as 0; torchvision takes the radians of the
//!   raw angle, which is the same inside (-360, 360);
//! - `edge` and `reflect` fills exist (torchvision's rotate has constant fill only);
//! - bicubic results are not clamped here; `to_u8` clamps to 0..=255.
//!
//! imageproc's `rotate_about_center` turns clockwise for positive angles: our θ
//! equals its −θ.

mod pil;

pub use crate::poses::Pose;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    Nearest,
    Bilinear,
    Bicubic,
    /// Pillow's bilinear affine on 8-bit images, as torchvision 0.2-0.5's affine
    /// drove it on PIL images (how ImageNet-P's frames were made).
    #[serde(rename = "pil-bilinear")]
    PilBilinear,
}

impl Interpolation {
    fn taps(self) -> usize {
        match self {
            Interpolation::Nearest => 1,
            Interpolation::Bilinear | Interpolation::PilBilinear => 4,
            Interpolation::Bicubic => 16,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
            Interpolation::PilBilinear => "pil-bilinear",
        }
    }
}

impl fmt::Display for Interpolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Interpolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            "bicubic" => Ok(Interpolation::Bicubic),
            "pil-bilinear" => Ok(Interpolation::PilBilinear),
            _ => Err(format!(
                "`{s}` is not an interpolation; use nearest, bilinear, bicubic or pil-bilinear"
            )),
        }
    }
}

/// What fills the pixels that come from outside the source image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// A constant on the [0, 1] scale (0 black, 1 white), before normalisation.
    Constant(f32),
    /// Replicate the nearest edge pixel (numpy `pad(mode="edge")`).
    Edge,
    /// Mirror about the border, repeating the edge pixel (numpy `pad(mode="symmetric")`).
    Reflect,
}

impl Fill {
    /// The value that blanked pixels (outside taps, the `--mask-circle` area) take, 0..=255 scale.
    pub fn constant_255(self) -> f32 {
        match self {
            Fill::Constant(v) => v * 255.0,
            Fill::Edge | Fill::Reflect => 0.0,
        }
    }
}

impl fmt::Display for Fill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fill::Constant(v) => write!(f, "{v}"),
            Fill::Edge => f.write_str("edge"),
            Fill::Reflect => f.write_str("reflect"),
        }
    }
}

impl FromStr for Fill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "edge" | "replicate" => Ok(Fill::Edge),
            "reflect" => Ok(Fill::Reflect),
            _ => {
                let v: f32 = s.parse().map_err(|_| {
                    format!("`{s}` is not a fill; use a number in [0, 1] (0 black, 1 white), `edge` or `reflect`")
                })?;
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!(
                        "fill {s} is outside [0, 1]; the constant is on the 0..1 pixel scale (for 0..255 values divide by 255)"
                    ));
                }
                Ok(Fill::Constant(v))
            }
        }
    }
}

impl serde::Serialize for Fill {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Fill {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotateOptions {
    pub interpolation: Interpolation,
    pub fill: Fill,
    /// Blank everything outside the inscribed circle of the output, at every angle.
    pub mask_circle: bool,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            interpolation: Interpolation::Bilinear,
            fill: Fill::Constant(0.0),
            mask_circle: false,
        }
    }
}

impl RotateOptions {
    /// Every combination of interpolation, fill (constant 0 and 0.5, edge, reflect) and
    /// circle mask: 24 options, for checks that must hold under all of them.
    pub fn every_combination() -> Vec<RotateOptions> {
        let mut all = vec![];
        for interpolation in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            for fill in [
                Fill::Constant(0.0),
                Fill::Constant(0.5),
                Fill::Edge,
                Fill::Reflect,
            ] {
                for mask_circle in [false, true] {
                    all.push(RotateOptions {
                        interpolation,
                        fill,
                        mask_circle,
                    });
                }
            }
        }
        all
    }
}

/// Where the output grid sits on the input grid: output pixel `(r, c)` is input
/// position `(r + top, c + left)` *after* rotation about the input's centre. A
/// same-size rotation has `top = left = 0`; "rotate then centre-crop" uses the crop offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub in_h: usize,
    pub in_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub top: usize,
    pub left: usize,
}

impl Geometry {
    /// An `in_h x in_w` image rotated about its centre, then centre-cropped to
    /// `out_h x out_w` (the crop offsets of [`crate::dataset::center_offsets`]).
    pub fn centre_crop(in_h: usize, in_w: usize, out_h: usize, out_w: usize) -> Self {
        let (top, left) = crate::dataset::center_offsets(in_h, in_w, out_h, out_w);
        Geometry {
            in_h,
            in_w,
            out_h,
            out_w,
            top,
            left,
        }
    }

    pub fn same(h: usize, w: usize) -> Self {
        Geometry {
            in_h: h,
            in_w: w,
            out_h: h,
            out_w: w,
            top: 0,
            left: 0,
        }
    }
}

/// A precomputed sampling plan: for every output pixel, `taps` source indices and
/// weights, plus the weight given to the constant fill.
#[derive(Debug, Clone)]
pub struct RotationPlan {
    pub geometry: Geometry,
    pub pose: Pose,
    taps: usize,
    idx: Vec<u32>,
    wts: Vec<f32>,
    /// Summed weight of the taps that fell outside the image (1 for masked pixels).
    fill_w: Vec<f32>,
    /// torchvision's coverage factor for a constant fill: 1 - fill_w (1 for edge/reflect).
    keep: Vec<f32>,
    fill_255: f32,
    /// How a 1-tap plan can be applied without its weights ([`Copying`]).
    copying: Copying,
    /// `pil-bilinear`: each output pixel's Pillow taps (the other fields unused).
    pil: Option<Vec<pil::PilTap>>,
}

/// A 1-tap plan whose every weight is 1 and every fill share 0 (a turn by a
/// multiple of 90 degrees with nothing rotated in) copies source pixels: its sum
/// `1 * v + 0 * fill` is `v` to the bit, for the byte values `v` and finite fills,
/// so applying it can skip the arithmetic; and at 0 degrees it copies them in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copying {
    /// Weights and fill shares apply.
    No,
    /// Output pixel `p` is source pixel `idx[p]`.
    Permutation,
    /// Output pixel `p` is source pixel `p`.
    Identity,
}

thread_local! {
    /// [`RotationPlan::apply`]'s scratch: the source image as f32, one per thread,
    /// so that rotating an image allocates nothing.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// [`RotationPlan::apply_lanes`]'s scratch: a 3-channel source, a pixel a vector.
    #[cfg(target_arch = "x86_64")]
    static LANES: std::cell::RefCell<Vec<lanes::Lanes>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `angle_deg` reduced into [0, 360): the same turn. The remainder `%` is exact for
/// every finite angle (so `1e300` is a well-defined turn, 0 degrees); moving a
/// negative remainder up by 360 rounds at most half an ulp of 360 (3e-14 degrees),
/// and a tiny negative angle whose sum rounds to 360 is 0, as is -0. NaN and
/// infinities give NaN (the angle parsers refuse them).
pub fn reduce_degrees(angle_deg: f64) -> f64 {
    let a = angle_deg.rem_euclid(360.0);
    if a >= 360.0 || a == 0.0 {
        0.0
    } else {
        a
    }
}

/// Exact cos and sin for multiples of 90 degrees; libm for the rest, of the exact
/// remainder `angle_deg % 360` (in (-360, 360), so every angle in that range is
/// converted to radians exactly as torchvision's `math.radians(angle)` does, and
/// `a + 360k` turns exactly as `a`).
pub fn cos_sin(angle_deg: f64) -> (f64, f64) {
    let a = reduce_degrees(angle_deg);
    if a == 0.0 {
        (1.0, 0.0)
    } else if a == 90.0 {
        (0.0, 1.0)
    } else if a == 180.0 {
        (-1.0, 0.0)
    } else if a == 270.0 {
        (0.0, -1.0)
    } else {
        let r = (angle_deg % 360.0).to_radians();
        (r.cos(), r.sin())
    }
}

/// How one output pixel is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    /// The fill only: masked by `mask_circle`, or a non-finite source position.
    Fill,
    /// One source pixel (the position is a pixel centre to 1e-9).
    Integral,
    /// `taps` source pixels.
    Interpolated,
}

fn cubic_weights(t: f64) -> [f64; 4] {
    // Keys' cubic convolution with A = -0.75, as PyTorch's grid_sampler uses.
    const A: f64 = -0.75;
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

fn reflect_index(i: i64, n: i64) -> i64 {
    let period = 2 * n;
    let m = i.rem_euclid(period);
    if m >= n {
        period - 1 - m
    } else {
        m
    }
}

/// The most taps one output pixel reads (bicubic: 4 x 4).
const MAX_TAPS: usize = 16;

/// The inverse mapping of one (geometry, angle, options): where each output pixel
/// samples the input. Shared by [`RotationPlan::new`] (which stores every pixel's taps)
/// and [`rotate_into`] (which uses them at once), so the two cannot drift apart.
struct Mapping {
    geometry: Geometry,
    c: f64,
    s: f64,
    /// The translation after the turn, in output pixels (right and down).
    tx: f64,
    ty: f64,
    cx: f64,
    cy: f64,
    ocx: f64,
    ocy: f64,
    radius2: f64,
    opts: RotateOptions,
}

/// One output pixel's taps: `slots[k]` = (source index, weight) for tap `k` of the
/// interpolation (weight 0 for a tap that falls outside the image or has weight 0),
/// and the summed weight of the taps outside, the fill's share. `N` is at least the
/// interpolation's taps (an integral position takes one).
struct Taps<const N: usize> {
    slots: [(u32, f32); N],
    fill_w: f32,
}

/// `x.floor()` without a libm call (x86-64's baseline has no `roundsd`): exact for
/// |x| < 2^63, which every source position of an image is.
#[inline]
fn floor_i64(x: f64) -> i64 {
    let t = x as i64; // truncation toward zero
    if (t as f64) > x {
        t - 1
    } else {
        t
    }
}

/// `(x - x.round()).abs() <= 1e-9`, without a libm call: within 1e-9 of an integer.
/// `x + copysign(0.5, x)` truncated is `x.round()` except where `x` is within an ulp
/// of a half-integer, and there both tests are false.
#[inline]
fn near_integer(x: f64) -> bool {
    let r = (x + 0.5f64.copysign(x)) as i64 as f64;
    (x - r).abs() <= 1e-9
}

impl Mapping {
    fn new(geometry: Geometry, pose: Pose, opts: &RotateOptions) -> Mapping {
        let (c, s) = cos_sin(pose.angle);
        let Geometry {
            in_h,
            in_w,
            out_h,
            out_w,
            ..
        } = geometry;
        let r = out_w.min(out_h) as f64 / 2.0;
        Mapping {
            geometry,
            c,
            s,
            tx: pose.dx,
            ty: pose.dy,
            cx: (in_w as f64 - 1.0) / 2.0,
            cy: (in_h as f64 - 1.0) / 2.0,
            ocx: (out_w as f64 - 1.0) / 2.0,
            ocy: (out_h as f64 - 1.0) / 2.0,
            radius2: r * r,
            opts: *opts,
        }
    }

    /// The source position `(x, y)` in input pixel-index coordinates of output
    /// pixel `(r, col)`, and how it is sampled.
    fn source(&self, r: usize, col: usize) -> (f64, f64, Sample) {
        let g = self.geometry;
        let masked = self.opts.mask_circle && {
            let (dx, dy) = (col as f64 - self.ocx, r as f64 - self.ocy);
            dx * dx + dy * dy > self.radius2
        };
        // Position on the (unrotated) input grid, relative to its centre, less the
        // translation: p samples R⁻¹(p − c − t) + c.
        let xo = (col + g.left) as f64 - self.cx - self.tx;
        let yo = (r + g.top) as f64 - self.cy - self.ty;
        // Inverse of a counter-clockwise turn on a y-down grid.
        let x = xo * self.c - yo * self.s + self.cx;
        let y = xo * self.s + yo * self.c + self.cy;
        let sample = if masked || !(x.is_finite() && y.is_finite()) {
            // Not reachable from the CLI (angles are finite and reduced), but
            // a non-finite position is outside the image, never an index.
            Sample::Fill
        } else if near_integer(x) && near_integer(y) {
            Sample::Integral
        } else {
            Sample::Interpolated
        };
        (x, y, sample)
    }

    /// The taps of a pixel at source position `(x, y)` sampled as `sample`.
    #[inline]
    fn taps<const N: usize>(&self, x: f64, y: f64, sample: Sample) -> Taps<N> {
        let mut t = Taps {
            slots: [(0, 0.0); N],
            fill_w: 0.0,
        };
        if sample == Sample::Fill {
            t.fill_w = 1.0;
            return t;
        }
        let (h, w) = (self.geometry.in_h as i64, self.geometry.in_w as i64);
        let fill = self.opts.fill;
        let mut k = 0;
        let mut put = |xi: i64, yi: i64, wt: f64, t: &mut Taps<N>| {
            if wt != 0.0 {
                let (xi, yi) = match fill {
                    Fill::Constant(_) => (xi, yi),
                    Fill::Edge => (xi.clamp(0, w - 1), yi.clamp(0, h - 1)),
                    Fill::Reflect => (reflect_index(xi, w), reflect_index(yi, h)),
                };
                if xi < 0 || yi < 0 || xi >= w || yi >= h {
                    t.fill_w += wt as f32;
                } else {
                    t.slots[k] = ((yi * w + xi) as u32, wt as f32);
                }
            }
            k += 1;
        };
        let interpolation = if sample == Sample::Integral {
            Interpolation::Nearest
        } else {
            self.opts.interpolation
        };
        match interpolation {
            // An integral position is within 1e-9 of an integer: no tie to break.
            Interpolation::Nearest if sample == Sample::Integral => {
                put(floor_i64(x + 0.5), floor_i64(y + 0.5), 1.0, &mut t)
            }
            Interpolation::Nearest => put(
                x.round_ties_even() as i64,
                y.round_ties_even() as i64,
                1.0,
                &mut t,
            ),
            Interpolation::Bilinear | Interpolation::PilBilinear => {
                let (x0, y0) = (floor_i64(x), floor_i64(y));
                let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                put(x0, y0, (1.0 - fx) * (1.0 - fy), &mut t);
                put(x0 + 1, y0, fx * (1.0 - fy), &mut t);
                put(x0, y0 + 1, (1.0 - fx) * fy, &mut t);
                put(x0 + 1, y0 + 1, fx * fy, &mut t);
            }
            Interpolation::Bicubic => {
                let (x0, y0) = (floor_i64(x), floor_i64(y));
                let wx = cubic_weights(x - x0 as f64);
                let wy = cubic_weights(y - y0 as f64);
                for (j, wyj) in wy.iter().enumerate() {
                    for (i, wxi) in wx.iter().enumerate() {
                        put(x0 - 1 + i as i64, y0 - 1 + j as i64, wxi * wyj, &mut t);
                    }
                }
            }
        }
        t
    }
}

/// Rotate one image (CHW, u8) into `out` (CHW, f32, 0..255 scale) without a plan:
/// each output pixel's taps are worked out and used at once. The result is bit for
/// bit [`RotationPlan::apply`]'s (the same taps, summed in the same order), for images whose
/// size is seen once (rotate-then-crop on images of varied sizes), where building a
/// plan would cost as much as using it and hold megabytes per size.
pub fn rotate_into(
    geometry: Geometry,
    pose: impl Into<Pose>,
    opts: &RotateOptions,
    src: &[u8],
    channels: usize,
    out: &mut [f32],
) {
    let pose = pose.into();
    match opts.interpolation {
        Interpolation::PilBilinear => pil::rotate_into(geometry, pose, opts, src, channels, out),
        Interpolation::Nearest => rotate_taps::<1>(geometry, pose, opts, src, channels, out),
        Interpolation::Bilinear => rotate_taps::<4>(geometry, pose, opts, src, channels, out),
        Interpolation::Bicubic => rotate_taps::<16>(geometry, pose, opts, src, channels, out),
    }
}

/// [`rotate_into`] for an interpolation of `N` taps.
fn rotate_taps<const N: usize>(
    geometry: Geometry,
    pose: Pose,
    opts: &RotateOptions,
    src: &[u8],
    channels: usize,
    out: &mut [f32],
) {
    let m = Mapping::new(geometry, pose, opts);
    let (ip, op) = (
        geometry.in_h * geometry.in_w,
        geometry.out_h * geometry.out_w,
    );
    assert_eq!(src.len(), channels * ip);
    assert_eq!(out.len(), channels * op);
    let fill_255 = opts.fill.constant_255();
    let bilinear = opts.interpolation == Interpolation::Bilinear;
    let (h, w) = (geometry.in_h as i64, geometry.in_w as i64);
    for r in 0..geometry.out_h {
        for col in 0..geometry.out_w {
            let p = r * geometry.out_w + col;
            let (x, y, sample) = m.source(r, col);
            if bilinear && sample == Sample::Interpolated {
                // The common case, with the taps' arithmetic inline: all four taps
                // inside the image (then the fill mode changes nothing, the fill's
                // share is 0 and the coverage 1), weights as `Mapping::taps` makes
                // them, summed in its order.
                let (x0, y0) = (floor_i64(x), floor_i64(y));
                if x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h {
                    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
                    let wts = [
                        ((1.0 - fx) * (1.0 - fy)) as f32,
                        (fx * (1.0 - fy)) as f32,
                        ((1.0 - fx) * fy) as f32,
                        (fx * fy) as f32,
                    ];
                    let i = (y0 * w + x0) as usize;
                    let at = [i, i + 1, i + w as usize, i + w as usize + 1];
                    for ch in 0..channels {
                        let plane = &src[ch * ip..(ch + 1) * ip];
                        let mut acc = 0.0f32;
                        for k in 0..4 {
                            acc += wts[k] * plane[at[k]] as f32;
                        }
                        out[ch * op + p] = acc * 1.0 + 0.0 * fill_255;
                    }
                    continue;
                }
            }
            let t = m.taps::<N>(x, y, sample);
            let keep = 1.0 - t.fill_w;
            for ch in 0..channels {
                let plane = &src[ch * ip..(ch + 1) * ip];
                let mut acc = 0.0f32;
                for &(i, wt) in &t.slots {
                    acc += wt * plane[i as usize] as f32;
                }
                out[ch * op + p] = acc * keep + t.fill_w * fill_255;
            }
        }
    }
}

impl RotationPlan {
    /// The plan of a pose (a rotation, then a translation); an angle alone is a
    /// rotation (`f64` converts).
    pub fn new(geometry: Geometry, pose: impl Into<Pose>, opts: &RotateOptions) -> RotationPlan {
        let pose = pose.into();
        if opts.interpolation == Interpolation::PilBilinear {
            return RotationPlan::pil(geometry, pose, opts);
        }
        let m = Mapping::new(geometry, pose, opts);
        let n = geometry.out_h * geometry.out_w;
        // Source position for every output pixel, and how it is sampled. The one
        // `Sample` decided here both sizes the plan (`taps`) and fills it, so a pixel
        // never writes more taps than the plan holds.
        let mut src = Vec::with_capacity(n);
        for r in 0..geometry.out_h {
            for col in 0..geometry.out_w {
                src.push(m.source(r, col));
            }
        }
        let all_integral = src.iter().all(|&(_, _, s)| s != Sample::Interpolated);
        let taps = if all_integral {
            1
        } else {
            opts.interpolation.taps()
        };
        let mut plan = RotationPlan {
            geometry,
            pose,
            taps,
            idx: vec![0; n * taps],
            wts: vec![0.0; n * taps],
            fill_w: vec![0.0; n],
            keep: vec![1.0; n],
            fill_255: opts.fill.constant_255(),
            copying: Copying::No,
            pil: None,
        };
        for (p, &(x, y, sample)) in src.iter().enumerate() {
            let t = m.taps::<MAX_TAPS>(x, y, sample);
            for (k, &(i, wt)) in t.slots[..taps].iter().enumerate() {
                plan.idx[p * taps + k] = i;
                plan.wts[p * taps + k] = wt;
            }
            plan.fill_w[p] = t.fill_w;
            plan.keep[p] = 1.0 - t.fill_w;
        }
        plan.copying = plan.copying();
        plan
    }

    /// Whether this plan only copies pixels ([`Copying`]).
    fn copying(&self) -> Copying {
        let g = self.geometry;
        let copies = self.pil.is_none()
            && self.taps == 1
            && self.fill_255.is_finite()
            && self.wts.iter().all(|&w| w == 1.0)
            && self.fill_w.iter().all(|&f| f == 0.0);
        if !copies {
            Copying::No
        } else if (g.in_h, g.in_w) == (g.out_h, g.out_w)
            && self.idx.iter().enumerate().all(|(p, &i)| i as usize == p)
        {
            Copying::Identity
        } else {
            Copying::Permutation
        }
    }

    /// A `pil-bilinear` plan: Pillow's taps for every output pixel.
    fn pil(geometry: Geometry, pose: Pose, opts: &RotateOptions) -> RotationPlan {
        let m = pil::PilMap::new(geometry, pose, opts);
        let mut taps = Vec::with_capacity(geometry.out_h * geometry.out_w);
        for r in 0..geometry.out_h {
            for col in 0..geometry.out_w {
                taps.push(m.tap(r, col));
            }
        }
        RotationPlan {
            geometry,
            pose,
            taps: 4,
            idx: vec![],
            wts: vec![],
            fill_w: vec![],
            keep: vec![],
            fill_255: pil::fill_u8(opts),
            copying: Copying::No,
            pil: Some(taps),
        }
    }

    /// Whether the plan can run on the model's device ([`RotationPlan::parts`]):
    /// every plan but Pillow's, whose truncation to 8 bits the weighted sum lacks.
    pub fn on_device_ok(&self) -> bool {
        self.pil.is_none()
    }

    /// The raw plan: `(taps, idx, wts, fill_w, keep, fill_255)`, for the engine's device rotation (`rotbench::rotate_device`).
    pub fn parts(&self) -> (usize, &[u32], &[f32], &[f32], &[f32], f32) {
        (
            self.taps,
            &self.idx,
            &self.wts,
            &self.fill_w,
            &self.keep,
            self.fill_255,
        )
    }

    /// True when every output pixel copies one source pixel (or the fill): no interpolation.
    pub fn is_permutation(&self) -> bool {
        self.pil.is_none() && self.taps == 1
    }

    /// Rotate one image of `channels` planes (CHW, u8) into `out` (CHW, f32, 0..255 scale).
    pub fn apply(&self, src: &[u8], channels: usize, out: &mut [f32]) {
        let g = self.geometry;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        debug_assert_eq!(src.len(), channels * ip);
        debug_assert_eq!(out.len(), channels * op);
        let planes = src.chunks_exact(ip).zip(out.chunks_exact_mut(op));
        match (&self.pil, self.taps) {
            (Some(taps), _) => {
                for (plane, dst) in planes.take(channels) {
                    for (d, &t) in dst.iter_mut().zip(taps) {
                        *d = pil::sample(plane, t, self.fill_255);
                    }
                }
            }
            (None, 1) => match self.copying {
                Copying::Identity => {
                    for (plane, dst) in planes.take(channels) {
                        for (d, &v) in dst.iter_mut().zip(plane) {
                            *d = v as f32;
                        }
                    }
                }
                Copying::Permutation => {
                    for (plane, dst) in planes.take(channels) {
                        for (d, &i) in dst.iter_mut().zip(&self.idx) {
                            *d = plane[i as usize] as f32;
                        }
                    }
                }
                Copying::No => {
                    for (plane, dst) in planes.take(channels) {
                        for p in 0..op {
                            dst[p] = self.wts[p] * plane[self.idx[p] as usize] as f32
                                + self.fill_w[p] * self.fill_255;
                        }
                    }
                }
            },
            // A plan holds 1 tap a pixel (integral sources), 4 (bilinear) or 16 (bicubic).
            (None, 4) => self.apply_taps::<4>(src, channels, out),
            (None, _) => self.apply_taps::<MAX_TAPS>(src, channels, out),
        }
    }
}

impl RotationPlan {
    /// [`RotationPlan::apply`] for a plan of `N` taps a pixel, pixel by pixel: each
    /// pixel's taps are read once for all its channels, and the sum runs over a
    /// fixed number of terms. The same sums in the same order as the general
    /// path, so the same bits.
    fn apply_taps<const N: usize>(&self, src: &[u8], channels: usize, out: &mut [f32]) {
        match channels {
            1 => self.apply_pixels::<N, 1>(src, out),
            #[cfg(target_arch = "x86_64")]
            3 => self.apply_lanes::<N>(src, out),
            #[cfg(not(target_arch = "x86_64"))]
            3 => self.apply_pixels::<N, 3>(src, out),
            _ => self.apply_planes::<N>(src, channels, out),
        }
    }

    /// [`RotationPlan::apply_taps`] for a channel count known when compiling (1, and
    /// 3 off x86-64, where `apply_lanes` does not exist): the source as f32 in this
    /// thread's scratch, and the channel loop unrolled (timed by `cargo run --release
    /// -p rotbench-core --example rotate_speed`; docs/performance.md has the figures).
    fn apply_pixels<const N: usize, const C: usize>(&self, src: &[u8], out: &mut [f32]) {
        let g = self.geometry;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        SCRATCH.with(|cell| {
            let mut floats = cell.borrow_mut();
            floats.clear();
            floats.extend(src[..C * ip].iter().map(|&v| v as f32));
            let mut chunks = floats.chunks_exact(ip);
            let planes: [&[f32]; C] = std::array::from_fn(|_| chunks.next().unwrap_or_default());
            let mut outs = out.chunks_exact_mut(op);
            let dst: [&mut [f32]; C] = std::array::from_fn(|_| outs.next().unwrap_or_default());
            let taps = self.idx.chunks_exact(N).zip(self.wts.chunks_exact(N));
            let cover = self.keep.iter().zip(&self.fill_w);
            for (p, ((i, w), (&keep, &fill_w))) in taps.zip(cover).enumerate().take(op) {
                let fill = fill_w * self.fill_255;
                for c in 0..C {
                    let plane = planes[c];
                    let mut acc = 0.0f32;
                    for k in 0..N {
                        acc += w[k] * plane[i[k] as usize];
                    }
                    if let Some(d) = dst[c].get_mut(p) {
                        *d = acc * keep + fill;
                    }
                }
            }
        })
    }

    /// [`RotationPlan::apply_taps`] for three channels on x86-64: the source
    /// interleaved as one 4-lane vector a pixel (the fourth lane unused), so that a
    /// tap is one load of all three channels and each channel's sum is a lane of
    /// one vector sum. Each lane adds the same products in the same order as
    /// [`apply_pixels`] (`0 + w0 x0 + w1 x1 + ...`, then `· keep + fill`, each
    /// rounded once), so the bits are the same; 1.7× as fast as three planes of
    /// scalar sums for 32×32 bilinear, 2.3× for bicubic (`cargo run --release -p
    /// rotbench-core --example rotate_speed`; docs/performance.md).
    ///
    /// [`apply_pixels`]: RotationPlan::apply_pixels
    #[cfg(target_arch = "x86_64")]
    fn apply_lanes<const N: usize>(&self, src: &[u8], out: &mut [f32]) {
        let g = self.geometry;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        let (red, rest) = src.split_at(ip);
        let (green, blue) = rest.split_at(ip);
        let (d0, rest) = out.split_at_mut(op);
        let (d1, d2) = rest.split_at_mut(op);
        LANES.with(|cell| {
            lanes::rotate::<N>(
                self,
                [red, green, &blue[..ip]],
                &mut cell.borrow_mut(),
                [d0, d1, &mut d2[..op]],
            )
        })
    }

    /// [`RotationPlan::apply_taps`] for any number of channels, plane by plane.
    fn apply_planes<const N: usize>(&self, src: &[u8], channels: usize, out: &mut [f32]) {
        let g = self.geometry;
        let (ip, op) = (g.in_h * g.in_w, g.out_h * g.out_w);
        // The source as f32 once (a vectorised pass), not once per tap.
        let floats: Vec<f32> = src.iter().map(|&v| v as f32).collect();
        let planes: Vec<&[f32]> = floats.chunks_exact(ip).take(channels).collect();
        let mut dst: Vec<&mut [f32]> = out.chunks_exact_mut(op).take(channels).collect();
        let taps = self.idx.chunks_exact(N).zip(self.wts.chunks_exact(N));
        let cover = self.keep.iter().zip(&self.fill_w);
        for (p, ((i, w), (&keep, &fill_w))) in taps.zip(cover).enumerate() {
            let fill = fill_w * self.fill_255;
            for (plane, d) in planes.iter().zip(dst.iter_mut()) {
                let mut acc = 0.0f32;
                for k in 0..N {
                    acc += w[k] * plane[i[k] as usize];
                }
                d[p] = acc * keep + fill;
            }
        }
    }
}

/// [`RotationPlan::apply_lanes`]'s loop: three channels of a pixel as the lanes
/// of one SSE vector (4 × f32). Each lane rounds each product and each sum once,
/// in the order of the scalar path. x86-64 only: elsewhere three channels take
/// the scalar path ([`RotationPlan::apply_pixels`]); the same loop on plain
/// `[f32; 4]` arrays, which the compiler did not vectorise, was slower than it
/// (9.1 against 7.0 µs for 32×32 bilinear, on x86-64).
#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::{
        __m128, _mm_add_ps, _mm_cvtss_f32, _mm_movehl_ps, _mm_movelh_ps, _mm_mul_ps, _mm_set1_ps,
        _mm_set_ps, _mm_setzero_ps, _mm_shuffle_ps, _mm_unpackhi_ps, _mm_unpacklo_ps,
    };

    use super::RotationPlan;

    pub type Lanes = __m128;

    /// Rotate the three planes `src` into `dst` by plan `t` (`N` taps a pixel),
    /// the source interleaved into `pixels` first.
    pub fn rotate<const N: usize>(
        t: &RotationPlan,
        src: [&[u8]; 3],
        pixels: &mut Vec<Lanes>,
        dst: [&mut [f32]; 3],
    ) {
        // SAFETY: `kernel`'s only requirement is SSE, which every x86-64 CPU has:
        // it is part of the baseline that Rust's x86_64 targets compile for.
        unsafe { kernel::<N>(t, src, pixels, dst) }
    }

    #[target_feature(enable = "sse")]
    fn kernel<const N: usize>(
        t: &RotationPlan,
        [red, green, blue]: [&[u8]; 3],
        pixels: &mut Vec<Lanes>,
        [d0, d1, d2]: [&mut [f32]; 3],
    ) {
        pixels.clear();
        let quads = red
            .chunks_exact(4)
            .zip(green.chunks_exact(4))
            .zip(blue.chunks_exact(4));
        for ((r, g), b) in quads {
            pixels.extend(interleave4(r, g, b));
        }
        let tail = red.len() / 4 * 4;
        let rest = red[tail..].iter().zip(&green[tail..]).zip(&blue[tail..]);
        pixels.extend(rest.map(|((&r, &g), &b)| from_rgb(r as f32, g as f32, b as f32)));
        let taps = t.idx.chunks_exact(N).zip(t.wts.chunks_exact(N));
        let cover = t.keep.iter().zip(&t.fill_w);
        let dst = d0.iter_mut().zip(d1.iter_mut()).zip(d2.iter_mut());
        for (((i, w), (&keep, &fill_w)), ((r, g), b)) in taps.zip(cover).zip(dst) {
            let mut acc = zero();
            for k in 0..N {
                acc = add_product(acc, w[k], pixels[i[k] as usize]);
            }
            [*r, *g, *b] = finish(acc, keep, fill_w * t.fill_255);
        }
    }

    #[target_feature(enable = "sse")]
    #[inline]
    fn from_rgb(r: f32, g: f32, b: f32) -> Lanes {
        _mm_set_ps(0.0, b, g, r)
    }

    /// Four pixels of three planes (4 bytes each) as four vectors: a 4 × 4
    /// transpose of the planes and a zero row.
    #[target_feature(enable = "sse")]
    #[inline]
    fn interleave4(r: &[u8], g: &[u8], b: &[u8]) -> [Lanes; 4] {
        let row = |v: &[u8]| _mm_set_ps(v[3] as f32, v[2] as f32, v[1] as f32, v[0] as f32);
        let (r, g, b, z) = (row(r), row(g), row(b), _mm_setzero_ps());
        let (rg_lo, bz_lo) = (_mm_unpacklo_ps(r, g), _mm_unpacklo_ps(b, z));
        let (rg_hi, bz_hi) = (_mm_unpackhi_ps(r, g), _mm_unpackhi_ps(b, z));
        [
            _mm_movelh_ps(rg_lo, bz_lo),
            _mm_movehl_ps(bz_lo, rg_lo),
            _mm_movelh_ps(rg_hi, bz_hi),
            _mm_movehl_ps(bz_hi, rg_hi),
        ]
    }

    #[target_feature(enable = "sse")]
    #[inline]
    fn zero() -> Lanes {
        _mm_setzero_ps()
    }

    /// `acc + w · s`, lane by lane.
    #[target_feature(enable = "sse")]
    #[inline]
    fn add_product(acc: Lanes, w: f32, s: Lanes) -> Lanes {
        _mm_add_ps(acc, _mm_mul_ps(_mm_set1_ps(w), s))
    }

    /// `acc · keep + fill`, lane by lane: the three channels' values.
    #[target_feature(enable = "sse")]
    #[inline]
    fn finish(acc: Lanes, keep: f32, fill: f32) -> [f32; 3] {
        let v = _mm_add_ps(_mm_mul_ps(acc, _mm_set1_ps(keep)), _mm_set1_ps(fill));
        [
            _mm_cvtss_f32(v),
            _mm_cvtss_f32(_mm_shuffle_ps::<0b01_01_01_01>(v, v)),
            _mm_cvtss_f32(_mm_shuffle_ps::<0b10_10_10_10>(v, v)),
        ]
    }
}

/// Round a rotated image to u8 as torchvision does for uint8 tensors
/// (`torch.round`, ties to even), clamping to 0..=255 first.
pub fn to_u8(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .map(|v| v.clamp(0.0, 255.0).round_ties_even() as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rot(img: &[u8], h: usize, w: usize, angle: f64, opts: &RotateOptions) -> Vec<u8> {
        let plan = RotationPlan::new(Geometry::same(h, w), angle, opts);
        let mut out = vec![0.0; img.len()];
        plan.apply(img, img.len() / (h * w), &mut out);
        to_u8(&out)
    }

    #[test]
    fn the_libm_free_floor_and_integer_test_agree_with_libm() {
        let mut state = 11u64;
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            1e-10,
            -1e-10,
            3.0 - 1e-9,
        ];
        values.extend([
            0.49999999999999994,
            -0.49999999999999994,
            7.000000001,
            6.999999999,
        ]);
        for _ in 0..200_000 {
            state = crate::metrics::bootstrap::mix(state);
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            let k = (state % 2001) as f64 - 1000.0;
            // Integers, near-integers (either side of the 1e-9 tolerance), half-integers, anything.
            values.extend([
                k,
                k + 1e-9 * (u - 0.5) * 2.5,
                k + 0.5,
                k + u,
                (u - 0.5) * 1e6,
            ]);
        }
        for &x in &values {
            assert_eq!(floor_i64(x) as f64, x.floor(), "floor {x}");
            assert_eq!(
                near_integer(x),
                (x - x.round()).abs() <= 1e-9,
                "near_integer {x}"
            );
            if near_integer(x) {
                assert_eq!(
                    floor_i64(x + 0.5),
                    x.round_ties_even() as i64,
                    "nearest {x}"
                );
            }
        }
    }

    #[test]
    fn rotating_without_a_plan_is_bit_for_bit_the_plans_result() {
        // Every interpolation, fill and mask, at angles that are exact permutations,
        // near-permutations and neither, into a centre crop (odd and even offsets)
        // and at the same size, for 1 to 4 channels (each count has its own path in
        // `apply`): rotate_into must equal RotationPlan::apply to the bit.
        let mut state = 7u64;
        let mut next = || {
            state = crate::metrics::bootstrap::mix(state);
            state
        };
        let (h, w) = (23, 30);
        let mut checked = 0;
        for c in 1..=4 {
            let img: Vec<u8> = (0..c * h * w).map(|_| next() as u8).collect();
            let geometries = [
                Geometry::same(h, w),
                Geometry::centre_crop(h, w, 16, 16),
                Geometry::centre_crop(h, w, 17, 20),
            ];
            for opts in RotateOptions::every_combination() {
                for angle in [0.0, 90.0, 180.0, 270.0, 1e-10, 17.5, 45.0, -33.0, 200.25] {
                    for g in geometries {
                        let n = c * g.out_h * g.out_w;
                        let (mut a, mut b) = (vec![0f32; n], vec![0f32; n]);
                        RotationPlan::new(g, angle, &opts).apply(&img, c, &mut a);
                        rotate_into(g, angle, &opts, &img, c, &mut b);
                        let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                        assert!(same, "{c} channels, {opts:?} {angle} {g:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 3 * 4 * 2 * 9 * 3);
    }

    fn marked(h: usize, w: usize, r: usize, c: usize) -> Vec<u8> {
        let mut v = vec![0u8; h * w];
        v[r * w + c] = 255;
        v
    }

    fn where_is(img: &[u8], w: usize) -> (usize, usize) {
        let p = img
            .iter()
            .position(|&v| v == 255)
            .expect("marked pixel survives");
        (p / w, p % w)
    }

    #[test]
    fn a_marked_pixel_moves_counter_clockwise() {
        // 5x5, mark on the right of centre (row 2, col 4). +90 CCW takes it to the top.
        let img = marked(5, 5, 2, 4);
        let opts = RotateOptions::default();
        assert_eq!(where_is(&rot(&img, 5, 5, 90.0, &opts), 5), (0, 2));
        assert_eq!(where_is(&rot(&img, 5, 5, 180.0, &opts), 5), (2, 0));
        assert_eq!(where_is(&rot(&img, 5, 5, 270.0, &opts), 5), (4, 2));
        assert_eq!(where_is(&rot(&img, 5, 5, -90.0, &opts), 5), (4, 2));
        // The top-right corner goes to the top-left corner at +90.
        let img = marked(4, 4, 0, 3);
        assert_eq!(where_is(&rot(&img, 4, 4, 90.0, &opts), 4), (0, 0));
    }

    #[test]
    fn small_positive_angles_also_turn_counter_clockwise() {
        // A pixel right of centre on a large grid moves up (row decreases) at +30.
        let img = marked(41, 41, 20, 35);
        let opts = RotateOptions {
            interpolation: Interpolation::Nearest,
            ..Default::default()
        };
        let (r, c) = where_is(&rot(&img, 41, 41, 30.0, &opts), 41);
        // Expected: (20 - 15 sin 30, 20 + 15 cos 30) = (12.5, 32.99)
        assert!(r == 12 || r == 13, "row {r}");
        assert_eq!(c, 33);
    }

    #[test]
    fn zero_degrees_is_the_identity_for_every_interpolation() {
        let img: Vec<u8> = (0..(7 * 9 * 3)).map(|i| (i * 37 % 256) as u8).collect();
        for interp in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            for fill in [Fill::Constant(0.3), Fill::Edge, Fill::Reflect] {
                let opts = RotateOptions {
                    interpolation: interp,
                    fill,
                    mask_circle: false,
                };
                let plan = RotationPlan::new(Geometry::same(7, 9), 0.0, &opts);
                let mut out = vec![0.0; img.len()];
                plan.apply(&img, 3, &mut out);
                let exact: Vec<f32> = img.iter().map(|&v| v as f32).collect();
                assert_eq!(out, exact, "{interp} {fill}");
                assert!(plan.is_permutation());
            }
        }
    }

    #[test]
    fn ninety_degrees_is_an_exact_permutation_on_square_images() {
        let (h, w) = (6, 6);
        let img: Vec<u8> = (0..h * w).map(|i| (i * 7) as u8).collect();
        for interp in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            let opts = RotateOptions {
                interpolation: interp,
                ..Default::default()
            };
            let once = rot(&img, h, w, 90.0, &opts);
            let mut sorted_in = img.clone();
            let mut sorted_out = once.clone();
            sorted_in.sort();
            sorted_out.sort();
            assert_eq!(
                sorted_in, sorted_out,
                "{interp}: 90 degrees permutes pixels"
            );
            // out[r][c] = in[c][w-1-r] for a CCW quarter turn.
            for r in 0..h {
                for c in 0..w {
                    assert_eq!(once[r * w + c], img[c * w + (w - 1 - r)]);
                }
            }
            let four = (0..4).fold(img.clone(), |acc, _| rot(&acc, h, w, 90.0, &opts));
            assert_eq!(four, img);
            assert_eq!(rot(&img, h, w, 360.0, &opts), img);
        }
    }

    #[test]
    fn constant_fill_fills_the_corners() {
        let img = vec![100u8; 10 * 10];
        let opts = RotateOptions {
            fill: Fill::Constant(1.0),
            ..Default::default()
        };
        let out = rot(&img, 10, 10, 45.0, &opts);
        assert_eq!(out[0], 255, "corner comes from outside");
        assert_eq!(out[5 * 10 + 5], 100, "centre stays");
        let edge = rot(
            &img,
            10,
            10,
            45.0,
            &RotateOptions {
                fill: Fill::Edge,
                ..Default::default()
            },
        );
        assert!(
            edge.iter().all(|&v| v == 100),
            "edge fill of a flat image is flat"
        );
        let refl = rot(
            &img,
            10,
            10,
            45.0,
            &RotateOptions {
                fill: Fill::Reflect,
                ..Default::default()
            },
        );
        assert!(
            refl.iter().all(|&v| v == 100),
            "reflect fill of a flat image is flat"
        );
    }

    #[test]
    fn mask_circle_blanks_corners_at_every_angle() {
        let img = vec![200u8; 8 * 8];
        let opts = RotateOptions {
            mask_circle: true,
            ..Default::default()
        };
        for a in [0.0, 33.0, 90.0] {
            let out = rot(&img, 8, 8, a, &opts);
            assert_eq!(out[0], 0, "corner blanked at {a}");
            assert_eq!(out[3 * 8 + 4], 200, "centre kept at {a}");
        }
    }

    #[test]
    fn bilinear_weights_sum_to_one_inside() {
        let plan = RotationPlan::new(Geometry::same(9, 9), 17.0, &RotateOptions::default());
        let p = 4 * 9 + 4;
        let s: f32 = plan.wts[p * 4..p * 4 + 4].iter().sum();
        assert!((s - 1.0).abs() < 1e-6);
        assert_eq!(plan.fill_w[p], 0.0);
    }

    #[test]
    fn any_finite_angle_turns_exactly_as_its_remainder_mod_360() {
        let (h, w) = (9, 7);
        let img: Vec<u8> = (0..h * w).map(|i| (i * 29 % 256) as u8).collect();
        let raw = |angle: f64, opts: &RotateOptions| {
            let plan = RotationPlan::new(Geometry::same(h, w), angle, opts);
            let mut out = vec![0.0; img.len()];
            plan.apply(&img, 1, &mut out);
            out
        };
        for interp in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            let opts = RotateOptions {
                interpolation: interp,
                ..Default::default()
            };
            // (angle, its remainder mod 360, computed exactly by hand or by fmod).
            for (a, r) in [
                (7e299, 72.0),
                (1e300, 0.0),
                (-1e300, 0.0),
                (1e20, 280.0),
                (f64::MAX, 128.0),
                (3_600_000_030.0, 30.0),
                (-719.5, -359.5),
                (390.0, 30.0),
            ] {
                assert_eq!(a % 360.0, r, "{a}");
                assert_eq!(raw(a, &opts), raw(r, &opts), "{interp} at {a}");
            }
        }
    }

    #[test]
    fn angles_reduce_into_0_to_360_with_tiny_negatives_at_0() {
        assert_eq!(reduce_degrees(-90.0), 270.0);
        assert_eq!(reduce_degrees(725.0), 5.0);
        assert_eq!(reduce_degrees(7e299), 72.0);
        // -1e-300 + 360 rounds to 360, which is the same turn as 0.
        assert_eq!(reduce_degrees(-1e-300).to_bits(), 0.0f64.to_bits());
        assert_eq!(reduce_degrees(-0.0).to_bits(), 0.0f64.to_bits());
        assert_eq!(reduce_degrees(-360.0).to_bits(), 0.0f64.to_bits());
        for a in [
            -1e-300,
            -1e-17,
            -5e-324,
            f64::MIN,
            -1e300,
            359.99999999999994,
        ] {
            let r = reduce_degrees(a);
            assert!((0.0..360.0).contains(&r), "{a} reduces to {r}");
        }
        assert!(reduce_degrees(f64::NAN).is_nan());
        assert!(reduce_degrees(f64::INFINITY).is_nan());
    }

    #[test]
    fn a_non_finite_angle_gives_the_fill_instead_of_an_out_of_bounds_index() {
        // Regression (issue #16, item 6): `--angle 1e300` reached the plan as inf; its
        // NaN source positions counted as integral for sizing the plan (1 tap) and as
        // not integral for filling it (4 taps), writing past the end.
        let img = vec![100u8; 5 * 5];
        for angle in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            for interp in [
                Interpolation::Bilinear,
                Interpolation::Bicubic,
                Interpolation::Nearest,
            ] {
                for fill in [Fill::Constant(0.5), Fill::Edge, Fill::Reflect] {
                    let opts = RotateOptions {
                        interpolation: interp,
                        fill,
                        mask_circle: false,
                    };
                    let plan = RotationPlan::new(Geometry::same(5, 5), angle, &opts);
                    let mut out = vec![0.0; img.len()];
                    plan.apply(&img, 1, &mut out);
                    assert!(
                        out.iter().all(|&v| v == fill.constant_255()),
                        "{angle} {interp} {fill}: {out:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn reflect_index_mirrors_with_the_edge_repeated() {
        let got: Vec<i64> = (-3..7).map(|i| reflect_index(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }

    #[test]
    fn fill_parses_numbers_and_words() {
        assert_eq!("0".parse::<Fill>().unwrap(), Fill::Constant(0.0));
        assert_eq!("edge".parse::<Fill>().unwrap(), Fill::Edge);
        assert_eq!("reflect".parse::<Fill>().unwrap(), Fill::Reflect);
        assert!("255".parse::<Fill>().unwrap_err().contains("divide by 255"));
        assert!("red".parse::<Fill>().is_err());
    }
}
