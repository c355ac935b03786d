//! A compact binary encoding of per-sample results ([`SampleData`]) plus a JSON
//! header: the format of checkpoints, prediction-cache entries and shard results.
//!
//! Layout (little-endian): `b"RBSAMPLE2\n"`, u64 header length, header JSON
//! ([`Header`]), then indices (u64), labels (u32), and for every model and angle
//! in order: preds (i32), confidence (f32), tv (f32), p_true (f32), brier (f32)
//! — each `len` values — and top_k (u32, `len * top_k` values), or nothing for a
//! (model, angle) that is absent; then a sha256 of everything before it.
//! Version 1 files (before the issue-18 columns) are refused with a note.

use crate::results::SampleData;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"RBSAMPLE2\n";
const MAGIC_V1: &[u8] = b"RBSAMPLE1\n";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Free-form JSON the caller wants to keep beside the data (a run key, a manifest).
    pub meta: serde_json::Value,
    pub len: usize,
    pub models: usize,
    pub angles: usize,
    /// `[model][angle]`: whether that pair holds data.
    pub present: Vec<Vec<bool>>,
    /// The length of each sample's top-k list.
    pub top_k: usize,
}

fn put_u64s(out: &mut Vec<u8>, v: impl Iterator<Item = u64>) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

pub fn encode(data: &SampleData, meta: serde_json::Value) -> Vec<u8> {
    let len = data.len();
    let present: Vec<Vec<bool>> = data
        .cols
        .iter()
        .map(|m| m.iter().map(|a| a.len() == len && len > 0).collect())
        .collect();
    let header = Header {
        meta,
        len,
        models: data.cols.len(),
        angles: data.cols.first().map_or(0, |m| m.len()),
        present: present.clone(),
        top_k: data.top_k,
    };
    let h = serde_json::to_vec(&header).expect("header serialises");
    let mut out = Vec::with_capacity(
        MAGIC.len()
            + 8
            + h.len()
            + len * (12 + (20 + 4 * data.top_k) * header.models * header.angles),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(h.len() as u64).to_le_bytes());
    out.extend_from_slice(&h);
    put_u64s(&mut out, data.indices.iter().copied());
    for l in &data.labels {
        out.extend_from_slice(&l.to_le_bytes());
    }
    for m in 0..header.models {
        for a in 0..header.angles {
            if !present[m][a] {
                continue;
            }
            let c = &data.cols[m][a];
            for v in &c.preds {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in c
                .confidence
                .iter()
                .chain(&c.tv)
                .chain(&c.p_true)
                .chain(&c.brier)
            {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in &c.top_k {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            bail!("{}: truncated", self.what);
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn vec4<T>(&mut self, n: usize, f: fn([u8; 4]) -> T) -> Result<Vec<T>> {
        let s = self.take(n * 4)?;
        Ok(s.chunks_exact(4)
            .map(|c| f([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// Decode; `what` names the file in errors.
pub fn decode(bytes: &[u8], what: &str) -> Result<(Header, SampleData)> {
    if bytes.starts_with(MAGIC_V1) {
        bail!("{what}: written by an older rotbench (sample format 1, without the true-class probability, Brier term and top-k lists); run the sweep or shard again");
    }
    if bytes.len() < MAGIC.len() + 8 + 32 || !bytes.starts_with(MAGIC) {
        bail!("{what}: not a rotbench sample file");
    }
    let (body, digest) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != digest {
        bail!("{what}: checksum mismatch (the file is damaged or was cut short)");
    }
    let mut r = Reader {
        b: body,
        at: MAGIC.len(),
        what,
    };
    let hl = u64::from_le_bytes(r.take(8)?.try_into().unwrap()) as usize;
    let header: Header = serde_json::from_slice(r.take(hl)?)
        .map_err(|e| anyhow::anyhow!("{what}: bad header: {e}"))?;
    let n = header.len;
    let idx = r.take(n * 8)?;
    let indices = idx
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let labels = r.vec4(n, u32::from_le_bytes)?;
    let mut data = SampleData::empty(header.models, header.angles, header.top_k);
    data.indices = indices;
    data.labels = labels;
    for m in 0..header.models {
        for a in 0..header.angles {
            if !header
                .present
                .get(m)
                .and_then(|p| p.get(a))
                .copied()
                .unwrap_or(false)
            {
                continue;
            }
            let c = &mut data.cols[m][a];
            c.preds = r.vec4(n, i32::from_le_bytes)?;
            c.confidence = r.vec4(n, f32::from_le_bytes)?;
            c.tv = r.vec4(n, f32::from_le_bytes)?;
            c.p_true = r.vec4(n, f32::from_le_bytes)?;
            c.brier = r.vec4(n, f32::from_le_bytes)?;
            c.top_k = r.vec4(n * header.top_k, u32::from_le_bytes)?;
        }
    }
    if r.at != body.len() {
        bail!("{what}: {} unexpected trailing bytes", body.len() - r.at);
    }
    Ok((header, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SampleData {
        let mut d = SampleData::empty(2, 3, 2);
        d.indices = vec![5, 6, 7];
        d.labels = vec![1, 0, 2];
        for m in 0..2 {
            for a in 0..3 {
                if m == 1 && a == 2 {
                    continue; // absent pair
                }
                d.cols[m][a] = crate::results::Column {
                    preds: vec![1, -1, 2],
                    confidence: vec![0.5, f32::NAN, 1.0],
                    tv: vec![0.0, 1.0, 0.25],
                    p_true: vec![0.25, 0.0, 1.0],
                    brier: vec![0.5, 2.0, 0.0],
                    top_k: vec![1, 0, u32::MAX, u32::MAX, 2, 1],
                };
            }
        }
        d
    }

    #[test]
    fn a_round_trip_keeps_every_bit() {
        let d = sample();
        let bytes = encode(&d, serde_json::json!({"k": 1}));
        let (h, back) = decode(&bytes, "x").unwrap();
        assert_eq!(h.meta["k"], 1);
        assert!(!h.present[1][2]);
        assert!(back.cols[1][2].is_empty());
        for m in 0..2 {
            for a in 0..3 {
                let (x, y) = (&back.cols[m][a], &d.cols[m][a]);
                assert_eq!(
                    (&x.preds, &x.tv, &x.p_true, &x.brier, &x.top_k),
                    (&y.preds, &y.tv, &y.p_true, &y.brier, &y.top_k)
                );
            }
        }
        assert!(back.cols[0][0].confidence[1].is_nan());
        assert_eq!((back.indices, back.top_k), (d.indices, 2));
    }

    #[test]
    fn damage_is_detected() {
        let mut bytes = encode(&sample(), serde_json::json!(null));
        let n = bytes.len();
        bytes[n / 2] ^= 1;
        assert!(decode(&bytes, "x")
            .unwrap_err()
            .to_string()
            .contains("checksum"));
        assert!(decode(&bytes[..n - 5], "x").is_err());
        let mut old = encode(&sample(), serde_json::json!(null));
        old[..MAGIC_V1.len()].copy_from_slice(MAGIC_V1);
        assert!(decode(&old, "x")
            .unwrap_err()
            .to_string()
            .contains("older rotbench"));
        assert!(decode(b"hello", "x")
            .unwrap_err()
            .to_string()
            .contains("not a rotbench"));
    }
}
