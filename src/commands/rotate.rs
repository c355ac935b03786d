//! `rotbench rotate`: one image through the sweep's rotation code path, to PNG.

use crate::cli::RotateArgs;
use anyhow::{anyhow, bail, Context, Result};
use rotbench::rotate::{to_u8, Geometry, Plan};
use rotbench::{angles, output};
use std::process::ExitCode;

pub fn rotate(args: RotateArgs) -> Result<ExitCode> {
    let angle = angles::parse(&args.angle).map_err(|e| anyhow!("--angle: {e}"))?;
    if angle.len() != 1 {
        bail!("--angle {}: give one angle", args.angle);
    }
    let opts = args.rotation.options();
    let img = image::open(&args.input).map_err(|e| {
        anyhow!(
            "{}: cannot read the image ({e}); give a PNG or JPEG file",
            args.input.display()
        )
    })?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = matches!(
        img.color(),
        image::ColorType::L8
            | image::ColorType::L16
            | image::ColorType::La8
            | image::ColorType::La16
    );
    let (channels, planes) = if gray {
        (1, img.into_luma8().into_raw())
    } else {
        let planes = rotbench::dataset::rgb_planes(&img.into_rgb8());
        (3, planes)
    };
    let plan = Plan::new(Geometry::same(h, w), angle[0], &opts);
    let mut out = vec![0f32; planes.len()];
    plan.apply(&planes, channels, &mut out);
    let bytes = to_u8(&out);
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    let interleaved: Vec<u8> = if channels == 1 {
        bytes
    } else {
        (0..w * h)
            .flat_map(|p| (0..3).map(move |c| (c, p)))
            .map(|(c, p)| bytes[c * w * h + p])
            .collect()
    };
    use image::ImageEncoder;
    encoder
        .write_image(
            &interleaved,
            w as u32,
            h as u32,
            if channels == 1 {
                image::ExtendedColorType::L8
            } else {
                image::ExtendedColorType::Rgb8
            },
        )
        .context("encoding the PNG")?;
    output::write_atomic(&args.output, &png).map_err(|e| {
        anyhow!(
            "{}: cannot write the output ({e:#}); choose a writable path",
            args.output.display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
