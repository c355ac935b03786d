//! The one font every PNG uses: Go Regular (BSD-3-Clause, `crates/rotbench-core/assets/fonts/`),
//! compiled into the binary and registered with plotters' ab_glyph renderer, so
//! text renders the same on a machine without system fonts or fontconfig.

use anyhow::{anyhow, Result};
use plotters::style::{register_font, FontStyle};
use std::sync::OnceLock;

/// The family name the charts ask for.
pub const FAMILY: &str = "sans-serif";

pub static FONT: &[u8] = include_bytes!("../../../assets/fonts/Go-Regular.ttf");
static REGISTERED: OnceLock<bool> = OnceLock::new();

/// Register the embedded font under the generic family names (once per process).
pub fn register() -> Result<()> {
    let ok = *REGISTERED.get_or_init(|| {
        ["sans-serif", "serif", "monospace"]
            .iter()
            .all(|family| register_font(family, FontStyle::Normal, FONT).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(anyhow!(
            "the embedded font (crates/rotbench-core/assets/fonts/Go-Regular.ttf) could not be parsed"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_font_registers() {
        super::register().unwrap();
        super::register().unwrap();
    }
}
