//! Image file bytes to pixels, as torchvision's `ImageFolder` loader sees them:
//! `PIL.Image.open(f).convert("RGB")`, then `convert("L")` (what
//! `transforms.Grayscale` does) for one-channel models.
//!
//! - The format is sniffed from the content, never taken from the file name.
//! - JPEG is decoded by libjpeg-turbo's code (the TurboJPEG API of the vendored
//!   `mozjpeg-sys` build, accurate integer IDCT and fancy upsampling, as PIL and
//!   `torchvision.io.decode_image` use); CMYK JPEGs are read as PIL reads them
//!   (Adobe-inverted) and converted with PIL's `cmyk2rgb`. EXIF orientation is not
//!   applied, as PIL's `Image.open` does not apply it.
//! - Other formats (PNG, BMP, WebP, TIFF, PPM/PGM, GIF) go through the `image`
//!   crate, then to RGB the way PIL converts its modes: alpha is dropped, grey is
//!   copied to R, G and B, 16-bit colour keeps its high byte, and 16-bit grey
//!   (PIL mode `I;16`) is clipped to 255, as PIL clips it.
//! - Grey from RGB is ITU-R 601-2 luma in PIL's fixed point:
//!   `L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16`.

use crate::spec::Grayscale;
use image::{DynamicImage, ImageFormat};

/// Decoded pixels: `channels` (1 or 3) planes of `height x width`, CHW.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planes {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<u8>,
}

impl Planes {
    /// Three planes from interleaved RGB.
    pub fn from_rgb(rgb: &[u8], height: usize, width: usize) -> Planes {
        let n = height * width;
        let mut data = vec![0u8; 3 * n];
        for (p, px) in rgb.chunks_exact(3).enumerate() {
            data[p] = px[0];
            data[n + p] = px[1];
            data[2 * n + p] = px[2];
        }
        Planes {
            channels: 3,
            height,
            width,
            data,
        }
    }

    /// The same image with `channels` planes: PIL's `convert("L")` from RGB, or
    /// grey copied to three planes.
    pub fn to_channels(self, channels: usize) -> Planes {
        self.to_channels_as(channels, Grayscale::Pil)
    }

    /// One grey plane, by `formula` (a grey image stays as it is).
    pub fn to_grey(self, formula: Grayscale) -> Planes {
        if self.channels != 3 {
            return self;
        }
        let n = self.height * self.width;
        let (r, rest) = self.data.split_at(n);
        let (g, b) = rest.split_at(n);
        let data = match formula {
            Grayscale::Pil => (0..n).map(|p| luma(r[p], g[p], b[p])).collect(),
            Grayscale::Rec709 => (0..n).map(|p| rec709(r[p], g[p], b[p])).collect(),
        };
        Planes {
            channels: 1,
            data,
            ..self
        }
    }

    /// [`Planes::to_channels`] with colour made grey by `formula`.
    pub fn to_channels_as(self, channels: usize, formula: Grayscale) -> Planes {
        match (self.channels, channels) {
            (3, 1) => self.to_grey(formula),
            (1, c) if c > 1 => {
                let mut data = Vec::with_capacity(self.data.len() * c);
                for _ in 0..c {
                    data.extend_from_slice(&self.data);
                }
                Planes {
                    channels: c,
                    data,
                    ..self
                }
            }
            _ => self,
        }
    }

    /// Interleaved (HWC) bytes, for encoders.
    pub fn interleaved(&self) -> Vec<u8> {
        let n = self.height * self.width;
        if self.channels == 1 {
            return self.data.clone();
        }
        let mut out = Vec::with_capacity(self.data.len());
        for p in 0..n {
            for c in 0..self.channels {
                out.push(self.data[c * n + p]);
            }
        }
        out
    }
}

/// PIL's `convert("L")` of one RGB pixel (ITU-R 601-2 luma, 16-bit fixed point).
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((19595 * r as u32 + 38470 * g as u32 + 7471 * b as u32 + 0x8000) >> 16) as u8
}

/// scikit-image's `rgb2gray` of one pixel on the [0, 1] scale (0.2125 R + 0.7154 G +
/// 0.0721 B, added left to right in `f64`), then x 255 truncated to 8 bits: how
/// model-vs-human's stimuli were made (`image_manipulation.py`: `rgb2gray`, then
/// `save_img`'s `(image * 255.0).astype("uint8")`). scikit-image forms the sum as a
/// matrix product, whose rounding can differ in the last bit on some BLAS builds.
pub fn rec709(r: u8, g: u8, b: u8) -> u8 {
    let v = r as f64 / 255.0 * 0.2125 + g as f64 / 255.0 * 0.7154 + b as f64 / 255.0 * 0.0721;
    (v * 255.0) as u8
}

/// What [`decode`] found in the file, for messages and `rotate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub format: ImageFormat,
    /// Whether the file holds a single grey channel (PIL modes `L`, `LA`, `I;16`, `1`).
    pub grey: bool,
}

/// Decode an image file's bytes to RGB planes, as PIL's `convert("RGB")` sees them.
pub fn decode(bytes: &[u8]) -> Result<(Planes, Found), String> {
    if bytes.is_empty() {
        return Err("the image file is empty (0 bytes)".into());
    }
    let format = image::guess_format(bytes).map_err(|_| {
        "not an image format rotbench reads (its first bytes are not PNG, JPEG, BMP, WebP, TIFF, PPM/PGM or GIF)".to_string()
    })?;
    if format == ImageFormat::Jpeg {
        return jpeg::decode(bytes).map(|(p, grey)| (p, Found { format, grey }));
    }
    if let Ok((w, h)) =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), format).into_dimensions()
    {
        check_size(w as usize, h as usize)?;
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(4 * MAX_PIXELS as u64);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| format!("cannot decode the {format:?} image: {e}"))?;
    let grey = matches!(
        img,
        DynamicImage::ImageLuma8(_)
            | DynamicImage::ImageLumaA8(_)
            | DynamicImage::ImageLuma16(_)
            | DynamicImage::ImageLumaA16(_)
    );
    Ok((pil_rgb(img), Found { format, grey }))
}

/// PIL's decompression-bomb limit (`2 * Image.MAX_IMAGE_PIXELS`, where PIL raises
/// `DecompressionBombError`): a header may claim any size, and allocating it would
/// abort the process instead of naming the file.
pub const MAX_PIXELS: usize = 178_956_970;

fn check_size(w: usize, h: usize) -> Result<(), String> {
    if w == 0 || h == 0 {
        return Err(format!("the image claims {w}x{h} pixels: it has none"));
    }
    if w.saturating_mul(h) > MAX_PIXELS {
        return Err(format!(
            "the image claims {w}x{h} pixels, over the {MAX_PIXELS}-pixel limit PIL also enforces (DecompressionBombError); the file is damaged or not meant for a classifier"
        ));
    }
    Ok(())
}

/// RGB planes from any decoded image, converting as PIL converts its modes to RGB.
fn pil_rgb(img: DynamicImage) -> Planes {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let grey = |g: Vec<u8>| {
        Planes {
            channels: 1,
            height: h,
            width: w,
            data: g,
        }
        .to_channels(3)
    };
    match img {
        DynamicImage::ImageLuma8(g) => grey(g.into_raw()),
        DynamicImage::ImageLumaA8(g) => grey(g.into_raw().chunks_exact(2).map(|p| p[0]).collect()),
        // PIL opens 16-bit grey PNG/TIFF as mode I;16, whose conversion clips at 255.
        DynamicImage::ImageLuma16(g) => {
            grey(g.into_raw().iter().map(|&v| v.min(255) as u8).collect())
        }
        // 16-bit LA and colour: PIL keeps the high byte.
        DynamicImage::ImageLumaA16(g) => grey(
            g.into_raw()
                .chunks_exact(2)
                .map(|p| (p[0] >> 8) as u8)
                .collect(),
        ),
        DynamicImage::ImageRgb8(rgb) => Planes::from_rgb(rgb.as_raw(), h, w),
        DynamicImage::ImageRgba8(rgba) => {
            let rgb: Vec<u8> = rgba
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            Planes::from_rgb(&rgb, h, w)
        }
        DynamicImage::ImageRgb16(rgb) => {
            let rgb: Vec<u8> = rgb.as_raw().iter().map(|&v| (v >> 8) as u8).collect();
            Planes::from_rgb(&rgb, h, w)
        }
        DynamicImage::ImageRgba16(rgba) => {
            let rgb: Vec<u8> = rgba
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
                .collect();
            Planes::from_rgb(&rgb, h, w)
        }
        other => Planes::from_rgb(other.to_rgb8().as_raw(), h, w),
    }
}

/// JPEG through libjpeg-turbo's TurboJPEG API (C; errors come back as codes, so
/// a broken file is an error message, never an abort).
mod jpeg {
    use super::Planes;
    // Links the vendored libjpeg-turbo build (the declarations below are ours).
    use mozjpeg_sys as _;
    use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};

    const TJPF_RGB: c_int = 0;
    const TJPF_CMYK: c_int = 11;
    const TJCS_CMYK: c_int = 3;
    const TJCS_YCCK: c_int = 4;
    const TJCS_GRAY: c_int = 2;

    extern "C" {
        fn tjInitDecompress() -> *mut c_void;
        fn tjDecompressHeader3(
            handle: *mut c_void,
            jpeg: *const u8,
            size: c_ulong,
            width: *mut c_int,
            height: *mut c_int,
            subsamp: *mut c_int,
            colorspace: *mut c_int,
        ) -> c_int;
        fn tjDecompress2(
            handle: *mut c_void,
            jpeg: *const u8,
            size: c_ulong,
            dst: *mut u8,
            width: c_int,
            pitch: c_int,
            height: c_int,
            pixel_format: c_int,
            flags: c_int,
        ) -> c_int;
        fn tjGetErrorStr2(handle: *mut c_void) -> *mut c_char;
        fn tjDestroy(handle: *mut c_void) -> c_int;
    }

    /// TurboJPEG's error codes: -1 for an error; warnings (corrupt but decodable
    /// data) also return -1 and are treated as errors, like a truncated file.
    struct Handle(*mut c_void);

    impl Handle {
        fn error(&self, what: &str) -> String {
            // SAFETY: the handle is live; the message is a static or per-handle C string.
            let msg = unsafe { CStr::from_ptr(tjGetErrorStr2(self.0)) };
            format!("cannot decode the JPEG ({what}: {})", msg.to_string_lossy())
        }
    }

    impl Drop for Handle {
        fn drop(&mut self) {
            // SAFETY: created by tjInitDecompress, destroyed once.
            unsafe { tjDestroy(self.0) };
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<(Planes, bool), String> {
        // SAFETY: no arguments; null on allocation failure.
        let handle = Handle(unsafe { tjInitDecompress() });
        if handle.0.is_null() {
            return Err("cannot start the JPEG decoder".into());
        }
        let (mut w, mut h, mut sub, mut cs) = (0, 0, 0, 0);
        // SAFETY: bytes outlives the call; the out-pointers are valid.
        let rc = unsafe {
            tjDecompressHeader3(
                handle.0,
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                &mut w,
                &mut h,
                &mut sub,
                &mut cs,
            )
        };
        if rc != 0 {
            return Err(handle.error("header"));
        }
        let (w, h) = (w as usize, h as usize);
        super::check_size(w, h)?;
        let cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
        let bpp = if cmyk { 4 } else { 3 };
        let mut buf = vec![0u8; w * h * bpp];
        // SAFETY: buf holds width * height * bpp bytes, the size TurboJPEG writes.
        let rc = unsafe {
            tjDecompress2(
                handle.0,
                bytes.as_ptr(),
                bytes.len() as c_ulong,
                buf.as_mut_ptr(),
                w as c_int,
                (w * bpp) as c_int,
                h as c_int,
                if cmyk { TJPF_CMYK } else { TJPF_RGB },
                0,
            )
        };
        if rc != 0 {
            return Err(handle.error("data"));
        }
        if cmyk {
            buf = buf.chunks_exact(4).flat_map(cmyk_to_rgb).collect();
        }
        Ok((Planes::from_rgb(&buf, h, w), cs == TJCS_GRAY))
    }

    /// PIL reads CMYK JPEG data as Adobe-inverted (raw mode `CMYK;I`), then
    /// `convert("RGB")` computes `R = 255 - K' - C' (255 - K') / 255` in its
    /// rounded fixed point, where `C' = 255 - C` and `K' = 255 - K` are the
    /// inverted values; with the inversion folded in, that is
    /// `K - MULDIV255(255 - C, K)`.
    fn cmyk_to_rgb(p: &[u8]) -> [u8; 3] {
        let k = p[3] as i32;
        let muldiv255 = |a: i32, b: i32| {
            let t = a * b + 128;
            ((t >> 8) + t) >> 8
        };
        let ch = |c: u8| (k - muldiv255(255 - c as i32, k)).clamp(0, 255) as u8;
        [ch(p[0]), ch(p[1]), ch(p[2])]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(img: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut bytes), format)
            .unwrap();
        bytes
    }

    #[test]
    fn luma_is_pils_601_formula() {
        assert_eq!(luma(0, 255, 0), 150);
        assert_eq!(luma(255, 0, 0), 76);
        assert_eq!(luma(0, 0, 255), 29);
        for v in 0..=255u8 {
            assert_eq!(luma(v, v, v), v, "grey stays grey");
        }
    }

    #[test]
    fn the_format_comes_from_the_bytes_not_the_name() {
        let png = encoded(
            image::RgbImage::from_pixel(3, 2, image::Rgb([0, 255, 0])).into(),
            ImageFormat::Png,
        );
        let (p, found) = decode(&png).unwrap();
        assert_eq!(found.format, ImageFormat::Png);
        assert_eq!((p.channels, p.height, p.width), (3, 2, 3));
        assert_eq!(p.to_channels(1).data, vec![150; 6]);
        assert!(decode(b"not an image")
            .unwrap_err()
            .contains("not an image format"));
        assert!(
            decode(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 1]).is_err(),
            "a truncated JPEG is an error"
        );
    }

    #[test]
    fn a_header_claiming_a_huge_image_is_an_error_not_an_allocation() {
        let mut jpg = encoded(
            image::RgbImage::from_pixel(8, 8, image::Rgb([9, 99, 199])).into(),
            ImageFormat::Jpeg,
        );
        assert!(decode(&jpg).is_ok());
        // SOF0: FF C0, length (2), precision (1), height (2), width (2).
        let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        jpg[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]); // 60000 x 60000
        let e = decode(&jpg).unwrap_err();
        assert!(e.contains("60000x60000") && e.contains("limit"), "{e}");
        let mut png = encoded(
            image::GrayImage::from_pixel(4, 4, image::Luma([1])).into(),
            ImageFormat::Png,
        );
        png[16..24].copy_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60]); // IHDR width, height
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]); // the IHDR chunk's type and data
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let e = decode(&png).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        // Found by the `decode` fuzz target: a PBM 0 pixels wide and 522,940,246 high
        // passed the pixel limit, and resizing it built a multi-gigabyte filter table.
        let pbm = b"P40\x0a\x0a0522940246 0000\x0e\x00\xbc\x00P688\x00";
        let e = decode(pbm).unwrap_err();
        assert!(e.contains("0x522940246") && e.contains("has none"), "{e}");
    }
}
