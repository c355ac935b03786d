//! The prediction cache: one entry per (model, angle), keyed by everything the
//! predictions depend on, so that a later run with the same inputs reads them
//! instead of computing them.

use anyhow::Result;
use rotbench::hash::hex;
use rotbench::model::Model;
use rotbench::output;
use rotbench::poses::{Pose, Slot};
use rotbench::results::RunKey;
use rotbench::results::SampleData;

use rotbench::store;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// Bump when the meaning of cached predictions changes.
/// 2: entries hold the true-class probability, the Brier term and the top-k list.
const CACHE_VERSION: u32 = 2;

pub fn default_cache_dir() -> PathBuf {
    rotbench::cache_home().join("predictions")
}

/// Everything that determines one model's predictions at one pose (or draw): the key's
/// fields, and their sha256 (the entry's file name).
pub fn cache_key(model: &Model, run: &RunKey, slot: Slot) -> CacheKey {
    let pose = match slot {
        Slot::Pose(p) => p,
        Slot::Draw(..) => Pose::rotation(0.0),
    };
    let mut fields = json!({
        "cache_version": CACHE_VERSION,
        "model_sha256": model.sha256,
        "spec": model.spec,
        "inference": model.inference.name(),
        "backend": model.backend(),
        "angle": pose.angle,
        "common": run,
    });
    // A translated pose adds its offsets; a rotation's key is the one it always had.
    if !pose.is_rotation() {
        fields["dx"] = json!(pose.dx);
        fields["dy"] = json!(pose.dy);
    }
    // A draw of --worst-of: each sample at its own pose, from the seed and ranges.
    if let Slot::Draw(d, i) = slot {
        fields["angle"] = serde_json::Value::Null;
        fields["draw"] = json!({ "index": i, "seed": d.seed, "ranges": d.ranges });
    }
    CacheKey {
        hash: hex(&Sha256::digest(fields.to_string().as_bytes())),
        fields,
    }
}

/// A cache entry's key. The fields are stored in the entry too, so that an entry
/// says what produced it.
pub struct CacheKey {
    pub hash: String,
    pub fields: Value,
}

pub struct Cache {
    pub dir: PathBuf,
}

impl Cache {
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.bin"))
    }

    /// A cached (1 model x 1 angle) entry, if present, whole and made for `key`.
    pub fn get(&self, key: &CacheKey) -> Option<SampleData> {
        let bytes = std::fs::read(self.path(&key.hash)).ok()?;
        let (h, data) = store::decode(&bytes, "cache entry").ok()?;
        (h.models == 1 && h.angles == 1 && h.present[0][0] && h.meta["key"] == key.fields)
            .then_some(data)
    }

    pub fn put(&self, key: &CacheKey, data: &SampleData) -> Result<()> {
        output::write_atomic(
            &self.path(&key.hash),
            &store::encode(data, json!({ "key": key.fields })),
        )
    }
}

/// One (model, angle) column of a run's data.
pub fn column(data: &SampleData, m: usize, a: usize) -> SampleData {
    let mut d = SampleData::empty(1, 1, data.top_k);
    d.indices = data.indices.clone();
    d.labels = data.labels.clone();
    d.cols[0][0] = data.cols[m][a].clone();
    d
}
