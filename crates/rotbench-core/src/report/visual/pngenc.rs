//! PNG encoding for the report. Charts have few distinct colours (flat fills,
//! palette lines, anti-aliased edges), so RGB images are written as 8-bit
//! palette PNGs: exact when they have at most 256 colours, otherwise the most
//! frequent colours are kept exactly and the rest are reduced by median cut.
//! That makes them 2–3 times smaller than RGB PNGs, which matters because the
//! page embeds them. Deterministic: the same pixels give the same bytes.

use anyhow::{anyhow, Result};
use std::collections::HashMap;

const PALETTE: usize = 256;
/// Colours kept exactly even when the image has more than 256.
const EXACT: usize = 48;

/// Encode an RGB8 buffer (`w * h * 3` bytes) as a palette PNG.
pub fn rgb(buf: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let pixels: Vec<[u8; 3]> = buf.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect();
    if pixels.len() != w as usize * h as usize {
        return Err(anyhow!("PNG: {} pixels for a {w}x{h} image", pixels.len()));
    }
    let (palette, lookup) = quantize(&pixels);
    let mut indices = Vec::with_capacity(pixels.len());
    for p in &pixels {
        indices.push(
            *lookup
                .get(p)
                .ok_or_else(|| anyhow!("PNG: a colour has no palette entry"))?,
        );
    }
    let flat: Vec<u8> = palette.iter().flatten().copied().collect();
    encode(w, h, png::ColorType::Indexed, Some(flat), &indices)
}

/// Encode an 8-bit grey buffer as PNG.
pub fn gray(buf: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    if buf.len() != w as usize * h as usize {
        return Err(anyhow!("PNG: {} pixels for a {w}x{h} image", buf.len()));
    }
    encode(w, h, png::ColorType::Grayscale, None, buf)
}

fn encode(
    w: u32,
    h: u32,
    color: png::ColorType,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::High);
        if let Some(p) = palette {
            enc.set_palette(p);
            // Palette indices do not predict well; unfiltered rows compress best.
            enc.set_filter(png::Filter::NoFilter);
        }
        let mut writer = enc.write_header().map_err(|e| anyhow!("PNG: {e}"))?;
        writer
            .write_image_data(data)
            .map_err(|e| anyhow!("PNG: {e}"))?;
        writer.finish().map_err(|e| anyhow!("PNG: {e}"))?;
    }
    Ok(out)
}

/// A palette of at most 256 colours and every input colour's index into it.
fn quantize(pixels: &[[u8; 3]]) -> (Vec<[u8; 3]>, HashMap<[u8; 3], u8>) {
    let mut counts: HashMap<[u8; 3], u64> = HashMap::new();
    for p in pixels {
        *counts.entry(*p).or_insert(0) += 1;
    }
    // Most frequent first; ties by colour, so the result does not depend on hashing.
    let mut colors: Vec<([u8; 3], u64)> = counts.into_iter().collect();
    colors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut palette: Vec<[u8; 3]> = Vec::with_capacity(PALETTE);
    let mut lookup: HashMap<[u8; 3], u8> = HashMap::with_capacity(colors.len());
    if colors.len() <= PALETTE {
        for (i, (c, _)) in colors.iter().enumerate() {
            palette.push(*c);
            lookup.insert(*c, i as u8);
        }
        return (palette, lookup);
    }
    let (exact, rest) = colors.split_at(EXACT);
    for (i, (c, _)) in exact.iter().enumerate() {
        palette.push(*c);
        lookup.insert(*c, i as u8);
    }
    for bucket in median_cut(rest.to_vec(), PALETTE - EXACT) {
        let index = palette.len() as u8;
        let total: u64 = bucket.iter().map(|c| c.1).sum::<u64>().max(1);
        let mean = |k: usize| {
            ((bucket.iter().map(|c| c.0[k] as u64 * c.1).sum::<u64>() + total / 2) / total) as u8
        };
        palette.push([mean(0), mean(1), mean(2)]);
        for (c, _) in &bucket {
            lookup.insert(*c, index);
        }
    }
    (palette, lookup)
}

type Bucket = Vec<([u8; 3], u64)>;

/// Split the colours into at most `n` buckets, always cutting the bucket with
/// the widest channel range at its pixel-weighted median.
fn median_cut(colors: Bucket, n: usize) -> Vec<Bucket> {
    let range = |b: &Bucket| -> (usize, u8) {
        (0..3)
            .map(|k| {
                let (lo, hi) = b
                    .iter()
                    .fold((255u8, 0u8), |(lo, hi), c| (lo.min(c.0[k]), hi.max(c.0[k])));
                (k, hi.saturating_sub(lo))
            })
            .max_by_key(|&(k, r)| (r, std::cmp::Reverse(k)))
            .unwrap_or((0, 0))
    };
    let mut buckets = vec![colors];
    while buckets.len() < n {
        let pick = buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() > 1)
            .max_by_key(|(i, b)| (range(b).1, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        let Some(i) = pick else { break };
        let mut b = buckets.swap_remove(i);
        let (k, _) = range(&b);
        b.sort_by(|x, y| x.0[k].cmp(&y.0[k]).then(x.0.cmp(&y.0)));
        let half = b.iter().map(|c| c.1).sum::<u64>() / 2;
        let mut acc = 0;
        let mut cut = 1;
        for (j, c) in b.iter().enumerate() {
            acc += c.1;
            if acc >= half {
                cut = (j + 1).clamp(1, b.len() - 1);
                break;
            }
        }
        let hi = b.split_off(cut);
        buckets.push(b);
        buckets.push(hi);
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(png: &[u8]) -> image::RgbImage {
        image::load_from_memory(png).unwrap().to_rgb8()
    }

    #[test]
    fn few_colours_round_trip_exactly() {
        let (w, h) = (7u32, 5u32);
        let buf: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i * 37 % 256) as u8, (i * 11 % 256) as u8, 200])
            .collect();
        let img = decode(&rgb(&buf, w, h).unwrap());
        assert_eq!(img.as_raw(), &buf);
    }

    #[test]
    fn many_colours_stay_close_and_frequent_ones_exact() {
        let (w, h) = (64u32, 64u32);
        let mut buf = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if x < 32 {
                    buf.extend([255, 255, 255]); // a large flat area
                } else {
                    buf.extend([(x * 8) as u8, (y * 4) as u8, ((x + y) * 2) as u8]);
                }
            }
        }
        let png = rgb(&buf, w, h).unwrap();
        assert_eq!(png, rgb(&buf, w, h).unwrap(), "deterministic");
        let img = decode(&png);
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        let worst = img
            .as_raw()
            .iter()
            .zip(&buf)
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap();
        assert!(worst <= 24, "a channel is off by {worst}");
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_an_error() {
        assert!(rgb(&[0, 0, 0], 2, 2).is_err());
        assert!(gray(&[0, 0, 0], 2, 2).is_err());
    }
}
