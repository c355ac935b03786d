//! `summary.json`: the full results, deterministic (no timestamps; those go to
//! `timing.json`). Floats are written in shortest round-trip form.

use super::{Export, Results};

pub struct SummaryJson;

impl Export for SummaryJson {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }
    fn render(&self, r: &Results<'_>) -> anyhow::Result<Vec<u8>> {
        let mut v = serde_json::to_vec_pretty(r.summary)?;
        v.push(b'\n');
        Ok(v)
    }
}
