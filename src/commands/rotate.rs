//! `rotbench rotate`: one image through the sweep's decoding and rotation code
//! path, written in the format the output name asks for.

use crate::cli::RotateArgs;
use anyhow::{anyhow, bail, Result};
use rotbench::dataset::decode::{decode, Planes};
use rotbench::rotate::{to_u8, Geometry, RotationPlan};
use rotbench::{angles, output};
use std::process::ExitCode;

pub fn rotate(args: RotateArgs) -> Result<ExitCode> {
    let angle = angles::parse(&args.angle).map_err(|e| anyhow!("--angle: {e}"))?;
    if angle.len() != 1 {
        bail!("--angle {}: give one angle", args.angle);
    }
    let format = image::ImageFormat::from_path(&args.output)
        .ok()
        .filter(|f| f.writing_enabled())
        .ok_or_else(|| {
            anyhow!(
                "{}: the output name has no image extension rotbench writes; end it in .png, .jpg, .bmp, .tif, .webp, .ppm or .pgm",
                args.output.display()
            )
        })?;
    let opts = args.rotation.options();
    let bytes = std::fs::read(&args.input)
        .map_err(|e| anyhow!("{}: cannot read ({e})", args.input.display()))?;
    // The format comes from the bytes, as in the sweep; grey files stay grey.
    let (planes, found) = decode(&bytes).map_err(|e| anyhow!("{}: {e}", args.input.display()))?;
    let planes = planes.to_channels(if found.grey { 1 } else { 3 });
    let (c, h, w) = (planes.channels, planes.height, planes.width);
    let plan = RotationPlan::new(Geometry::same(h, w), angle[0], &opts);
    let mut out = vec![0f32; planes.data.len()];
    plan.apply(&planes.data, c, &mut out);
    let rotated = Planes {
        data: to_u8(&out),
        ..planes
    };
    let pixels = rotated.interleaved();
    let img = if c == 1 {
        image::GrayImage::from_raw(w as u32, h as u32, pixels).map(image::DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(w as u32, h as u32, pixels).map(image::DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| anyhow!("internal: {w}x{h} image of {c} channels"))?;
    let mut encoded = std::io::Cursor::new(Vec::new());
    img.write_to(&mut encoded, format).map_err(|e| {
        anyhow!(
            "{}: cannot encode as {format:?} ({e}); choose .png",
            args.output.display()
        )
    })?;
    output::write_atomic(&args.output, encoded.get_ref()).map_err(|e| {
        anyhow!(
            "{}: cannot write the output ({e:#}); choose a writable path",
            args.output.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
