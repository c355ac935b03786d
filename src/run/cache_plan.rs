//! What a sweep computes. Every (model, angle) pair is first looked up in the
//! prediction cache; the rest is computed, together with each computing model's
//! reference angle (`PosePlan::with_reference`). After the run, [`CachePlan::fill`]
//! puts the cached pairs into the run's data and stores the computed ones.

use super::cache::{cache_key, Cache, CacheKey};
use anyhow::{bail, Result};
use rotbench::model::Model;
use rotbench::poses::Slot;
use rotbench::results::SampleData;
use rotbench::results::{PosePlan, RunKey};
use serde_json::{json, Value};

pub struct CachePlan {
    pub cache: Option<Cache>,
    /// `[model][angle]`: each pair's cache key.
    pub keys: Vec<Vec<CacheKey>>,
    /// `[model][angle]`: the cached samples, where the cache has them.
    pub cached: Vec<Vec<Option<SampleData>>>,
    /// `[model][angle]`: compute this pair.
    pub compute: Vec<Vec<bool>>,
    /// `[model]`: its predictions may be cached (not a model run in training mode,
    /// whose next run would draw different ones).
    pub cacheable: Vec<bool>,
}

impl CachePlan {
    /// `len`: the samples this run streams (an entry holding more is not this run's).
    pub fn new(
        models: &[Model],
        angles: &PosePlan,
        slots: &[Slot],
        run: &RunKey,
        cache: Option<Cache>,
        len: usize,
    ) -> CachePlan {
        let keys: Vec<Vec<CacheKey>> = models
            .iter()
            .map(|m| slots.iter().map(|&p| cache_key(m, run, p)).collect())
            .collect();
        let cacheable: Vec<bool> = models.iter().map(|m| !m.training.is_on()).collect();
        let mut cached = vec![vec![None; slots.len()]; models.len()];
        if let Some(c) = &cache {
            for (m, row) in keys.iter().enumerate().filter(|(m, _)| cacheable[*m]) {
                for (a, k) in row.iter().enumerate() {
                    // With --skip-bad-images an entry holds only the samples that decoded
                    // (the key pins the data's bytes, so those are the same every time);
                    // after the run its indices are checked against this run's.
                    cached[m][a] = c.get(k).filter(|d| !d.is_empty() && d.len() <= len);
                }
            }
        }
        let mut compute: Vec<Vec<bool>> = cached
            .iter()
            .map(|r| r.iter().map(|c| c.is_none()).collect())
            .collect();
        // New angles compare with the reference's softmax, so it runs again too; a
        // reference switched on here was cached (compute is "not cached"): drop it.
        for m in angles.with_reference(&mut compute) {
            cached[m][angles.reference] = None;
        }
        CachePlan {
            cache,
            keys,
            cached,
            compute,
            cacheable,
        }
    }

    /// True when any pair is computed (else the run only reads the cache).
    pub fn any_compute(&self) -> bool {
        self.compute.iter().flatten().any(|&c| c)
    }

    /// Pairs the cache answered.
    pub fn cached_pairs(&self) -> usize {
        self.compute.iter().flatten().filter(|&&c| !c).count()
    }

    /// A resumed run computes what its checkpoint computed: `saved`, the pairs the
    /// interrupted run computed (recorded beside its checkpoint), when they cover
    /// every pair this run must compute. A pair that the cache answers now (the
    /// interrupted run, or another job, stored it meanwhile) is computed again
    /// rather than mixed with the checkpoint's samples; predictions are
    /// deterministic, so the results are the same. Returns false when `saved`
    /// misses a pair this run must compute (the cache lost it): the checkpoint
    /// cannot be continued.
    pub fn adopt(&mut self, saved: &[Vec<bool>]) -> bool {
        let shape_ok = saved.len() == self.compute.len()
            && saved
                .iter()
                .zip(&self.compute)
                .all(|(s, c)| s.len() == c.len());
        let covers = shape_ok
            && saved
                .iter()
                .flatten()
                .zip(self.compute.iter().flatten())
                .all(|(&s, &c)| s || !c);
        if !covers {
            return false;
        }
        self.compute = saved.to_vec();
        for (row, computed) in self.cached.iter_mut().zip(&self.compute) {
            for (entry, &c) in row.iter_mut().zip(computed) {
                if c {
                    *entry = None;
                }
            }
        }
        true
    }

    /// The checkpoint's key: a resumed run must have been started with these.
    /// What the cache happened to hold is not part of it (see [`CachePlan::adopt`]).
    pub fn checkpoint_key(
        &self,
        models: &[Model],
        run: &RunKey,
        slots: &[Slot],
        batch_size: &str,
    ) -> Value {
        json!({
            "rotbench_version": env!("CARGO_PKG_VERSION"),
            "models": models.iter().map(|m| (&m.sha256, &m.spec, m.inference.name())).collect::<Vec<_>>(),
            "common": run,
            "slots": slots.iter().map(Slot::label).collect::<Vec<_>>(),
            "worst_of": slots.iter().find_map(|s| match s { Slot::Draw(d, _) => Some(*d), Slot::Pose(_) => None }),
            "batch_size": batch_size.trim(),
        })
    }

    /// Put the cached pairs into `data` (checked against its samples), then store
    /// the computed ones. Returns warnings for pairs the cache could not store.
    pub fn fill(
        &mut self,
        data: &mut SampleData,
        names: &[&str],
        slots: &[Slot],
    ) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for (m, row) in std::mem::take(&mut self.cached).into_iter().enumerate() {
            for (a, entry) in row.into_iter().enumerate() {
                if let Some(e) = entry {
                    if e.indices != data.indices || e.labels != data.labels {
                        bail!("the prediction cache entry for {} at {} does not match the data; rerun with --no-cache", names[m], slots[a].label());
                    }
                    if e.top_k != data.top_k {
                        bail!("the prediction cache entry for {} at {} keeps top-{} lists, not top-{}; rerun with --no-cache", names[m], slots[a].label(), e.top_k, data.top_k);
                    }
                    data.cols[m][a] = e.cols[0][0].clone();
                } else if let (Some(c), true) = (&self.cache, self.cacheable[m]) {
                    if let Err(e) = c.put(&self.keys[m][a], &super::cache::column(data, m, a)) {
                        warnings.push(format!("cannot update the prediction cache: {e:#}"));
                    }
                }
            }
        }
        Ok(warnings)
    }
}
