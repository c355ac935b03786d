//! Issue 34: a rotation followed by a translation, sampled once, against
//! torchvision 0.28's `F.affine(img, angle=-θ, translate=[dx, dy], scale=1,
//! shear=0)` on uint8 tensors (fixtures from `tests/fixtures/make_affine.py`,
//! whole and fractional offsets, nearest, bilinear and bicubic (emulated with
//! grid_sample, as the rotation fixtures do), fill 0 and 200), held to
//! the rotation fixtures' bounds: bilinear and bicubic at most 1 level on at
//! most 2 values besides those whose value is a .5 tie (half-pixel offsets);
//! nearest at most the manifest's float32 tie count plus 2 pixels.

use rotbench::poses::Pose;
use rotbench::rotate::{to_u8, Fill, Geometry, Interpolation, RotateOptions, RotationPlan};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

/// (channels, height, width, CHW planes).
fn load(path: &Path) -> (usize, usize, usize, Vec<u8>) {
    let img = image::open(path).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        image::DynamicImage::ImageLuma8(g) => (1, h, w, g.into_raw()),
        other => {
            let rgb = other.into_rgb8().into_raw();
            let mut planes = vec![0u8; 3 * h * w];
            for p in 0..h * w {
                for c in 0..3 {
                    planes[c * h * w + p] = rgb[p * 3 + c];
                }
            }
            (3, h, w, planes)
        }
    }
}

fn transformed(input: &str, interp: Interpolation, pose: Pose, fill: f32) -> Vec<u8> {
    let (c, h, w, src) = load(&dir("rotation").join(input));
    let opts = RotateOptions {
        interpolation: interp,
        fill: Fill::Constant(fill / 255.0),
        mask_circle: false,
    };
    let plan = RotationPlan::new(Geometry::same(h, w), pose, &opts);
    let mut out = vec![0f32; src.len()];
    plan.apply(&src, c, &mut out);
    to_u8(&out)
}

#[test]
fn rotation_then_translation_agrees_with_torchvision_affine() {
    let m: Value =
        serde_json::from_slice(&std::fs::read(dir("affine").join("manifest.json")).unwrap())
            .unwrap();
    let mut checked = 0;
    for e in m["entries"].as_array().unwrap() {
        let interp: Interpolation = e["interpolation"].as_str().unwrap().parse().unwrap();
        let pose = Pose {
            angle: e["angle"].as_f64().unwrap(),
            dx: e["dx"].as_f64().unwrap(),
            dy: e["dy"].as_f64().unwrap(),
        };
        let fill = e["fill"].as_f64().unwrap() as f32;
        let input = e["input"].as_str().unwrap();
        let got = transformed(input, interp, pose, fill);
        let (_, _, _, want) = load(&dir("affine").join(e["output"].as_str().unwrap()));
        assert_eq!(got.len(), want.len());
        let differing = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        let max = got
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        let what = format!("{input} {interp} {} fill {fill}", pose.label());
        // Fills other than a constant, and --mask-circle, act after the source
        // position is found; tests/rotation_fidelity.rs covers them.
        match interp {
            Interpolation::Nearest => {
                let ties = e["num_diff_vs_f64"].as_u64().unwrap() as usize;
                assert!(
                    differing <= ties + 2,
                    "{what}: {differing} values differ, the tie count is {ties}"
                );
            }
            _ => {
                // Plus the exact .5 values (half-pixel offsets), a rounding tie.
                let ties = e["half_ties"].as_u64().unwrap() as usize;
                assert!(max <= 1, "{what}: max |diff| {max}");
                assert!(
                    differing <= ties + 2,
                    "{what}: {differing} values differ, {ties} are .5 ties"
                );
            }
        }
        checked += 1;
    }
    assert_eq!(checked, 84);
}

#[test]
fn a_whole_pixel_shift_moves_the_content_right_and_down() {
    // dx = 2, dy = 1 at 0°: output (x, y) is input (x - 2, y - 1), exactly.
    let (_, h, w, src) = load(&dir("rotation").join("mnist0.png"));
    let pose = Pose {
        angle: 0.0,
        dx: 2.0,
        dy: 1.0,
    };
    let got = transformed("mnist0.png", Interpolation::Bilinear, pose, 0.0);
    for y in 0..h {
        for x in 0..w {
            let want = if x >= 2 && y >= 1 {
                src[(y - 1) * w + x - 2]
            } else {
                0
            };
            assert_eq!(got[y * w + x], want, "pixel ({x}, {y})");
        }
    }
}
