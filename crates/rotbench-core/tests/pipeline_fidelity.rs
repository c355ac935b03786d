//! Issue 21: the pixels and the sample order rotbench reads, against PIL 13,
//! torchvision 0.28.0 and `ImageFolder` on the committed fixtures of
//! tests/fixtures/make_pipeline.py (tests/fixtures/pipeline/). Each comparison
//! is exact: the largest difference must be 0 levels.

use rotbench_core::dataset::{
    self, decode::decode, ClassFolders, OpenOptions, Planes, Sources, Target,
};
use rotbench_core::spec::Resize;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fx(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pipeline")
        .join(rel)
}

fn manifest() -> Value {
    serde_json::from_slice(&std::fs::read(fx("manifest.json")).unwrap()).unwrap()
}

fn cases(prefix: &str) -> Vec<Value> {
    let cases: Vec<Value> = manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no {prefix} cases in the manifest");
    cases
}

/// Our decode of a fixture file (format sniffed from the bytes).
fn ours(rel: &str) -> Planes {
    decode(&std::fs::read(fx(rel)).unwrap())
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .0
}

/// An expected PNG written by the generator, as planes (L stays one plane).
fn expected(rel: &str) -> Planes {
    let img = image::open(fx(rel)).unwrap();
    let (w, h) = (img.width() as usize, img.height() as usize);
    match img {
        image::DynamicImage::ImageLuma8(g) => Planes {
            channels: 1,
            height: h,
            width: w,
            data: g.into_raw(),
        },
        other => Planes::from_rgb(other.to_rgb8().as_raw(), h, w),
    }
}

/// The largest difference in levels; shapes must agree.
fn max_diff(what: &str, a: &Planes, b: &Planes) -> u8 {
    assert_eq!(
        (a.channels, a.height, a.width),
        (b.channels, b.height, b.width),
        "{what}: shape"
    );
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn grayscale_is_pils_convert_l_on_every_colour_class() {
    let got = ours("grayscale/colours.png").to_channels(1);
    assert_eq!(
        max_diff("colours", &got, &expected("grayscale/colours.L.png")),
        0
    );
    let green = ours("grayscale/green.png").to_channels(1);
    assert!(
        green.data.iter().all(|&v| v == 150),
        "pure green is 150, as PIL gives"
    );
    assert_eq!(
        max_diff("green", &green, &expected("grayscale/green.L.png")),
        0
    );
}

#[test]
fn every_kind_of_jpeg_decodes_to_the_pixels_pil_and_decode_image_give() {
    let mut worst = Vec::new();
    for c in cases("jpeg/") {
        let input = c["input"].as_str().unwrap();
        let want = c["expected"].as_str().unwrap();
        let want = expected(want);
        worst.push((input.to_string(), max_diff(input, &ours(input), &want)));
        // For the record (`--nocapture`): the `image` crate's own JPEG decoder,
        // which rotbench used before, against the same pixels.
        let theirs = image::open(fx(input)).unwrap().to_rgb8();
        let theirs = Planes::from_rgb(theirs.as_raw(), want.height, want.width);
        eprintln!(
            "{input}: libjpeg-turbo 0, the image crate's decoder {} levels",
            max_diff(input, &theirs, &want)
        );
    }
    assert_eq!(
        worst.len(),
        8,
        "4:2:0, 4:2:2, 4:4:4, progressive, grey, CMYK, EXIF, restart"
    );
    assert!(
        worst.iter().all(|(_, d)| *d == 0),
        "largest differences from PIL: {worst:?}"
    );
}

/// `Resize` then, when `crop` is given, `CenterCrop`, through the dataset path.
fn through_the_dataset(
    input: &str,
    channels: usize,
    resize: Resize,
    out: (usize, usize),
) -> Planes {
    let planes = ours(input);
    let target = Target {
        channels,
        height: out.0,
        width: out.1,
    };
    let opts = OpenOptions {
        resize: Some(resize),
        crop_first: true,
        ..Default::default()
    };
    let (data, h, w) = dataset::convert(planes, target, &opts).unwrap();
    Planes {
        channels,
        height: h,
        width: w,
        data,
    }
}

#[test]
fn resize_is_torchvision_resize_on_a_pil_image_bit_for_bit() {
    for c in cases("resize/") {
        let name = c["name"].as_str().unwrap();
        let want = expected(c["expected"].as_str().unwrap());
        let channels = if name.contains("gray") { 1 } else { 3 };
        let got = if name.contains("pipeline") {
            // Compose([Grayscale?, Resize(32), CenterCrop(28)]) on pil_loader's image.
            through_the_dataset("resize/photo.png", channels, Resize::Shorter(32), (28, 28))
        } else {
            let input = c["input"].as_str().unwrap();
            let (w, h) = (want.width, want.height);
            through_the_dataset(input, channels, Resize::Exact([h, w]), (h, w))
        };
        assert_eq!(max_diff(name, &got, &want), 0, "{name}");
    }
}

#[test]
fn rgba_palette_16_bit_and_misnamed_files_read_as_pil_loader_reads_them() {
    for c in cases("rotate-naming/") {
        let name = c["name"].as_str().unwrap();
        let mut got = ours(c["input"].as_str().unwrap());
        if name.ends_with(".L") {
            got = got.to_channels(1);
        }
        assert_eq!(
            max_diff(name, &got, &expected(c["expected"].as_str().unwrap())),
            0,
            "{name}"
        );
    }
}

#[test]
fn an_image_folder_has_imagefolders_samples_in_its_order_and_lists_what_it_leaves_out() {
    let order: Value =
        serde_json::from_slice(&std::fs::read(fx("folder/order.json")).unwrap()).unwrap();
    let decoded: Value =
        serde_json::from_slice(&std::fs::read(fx("folder/decoded.json")).unwrap()).unwrap();
    let classes: Vec<String> = ["cat", "dog"].map(String::from).to_vec();
    let target = Target {
        channels: 3,
        height: 8,
        width: 8,
    };
    let opts = OpenOptions {
        class_folders: Some(ClassFolders::Sorted),
        ..Default::default()
    };
    let space = dataset::LabelSpace::plain(&classes);
    let mut source = dataset::open(&fx("folder/tree"), target, &space, &opts).unwrap();
    let info = source.info().clone();
    let samples = order["samples"].as_array().unwrap();
    let want: Vec<String> = samples
        .iter()
        .map(|s| s[0].as_str().unwrap().to_string())
        .collect();
    let Sources::Files(names) = &info.sources else {
        panic!("an image folder names its files: {:?}", info.sources)
    };
    assert_eq!(names, &want, "ImageFolder(...).samples order");
    let ignored: Vec<&str> = info.ignored.iter().map(|f| f.path.as_str()).collect();
    let skipped: Vec<&str> = order["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(
        ignored, skipped,
        "every file ImageFolder leaves out is listed"
    );

    let chunk = source.next_chunk(100).unwrap().unwrap();
    assert_eq!(chunk.len(), want.len());
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(
            chunk.labels[i],
            s[1].as_u64().unwrap() as u32,
            "{}",
            want[i]
        );
        let hex = decoded["samples"][&want[i]]["rgb_hex"].as_str().unwrap();
        let rgb: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap())
            .collect();
        let want_px = Planes::from_rgb(&rgb, 8, 8);
        let got = Planes {
            channels: 3,
            height: 8,
            width: 8,
            data: chunk.pixels[i * 192..(i + 1) * 192].to_vec(),
        };
        assert_eq!(max_diff(&want[i], &got, &want_px), 0, "{}", want[i]);
    }
}
