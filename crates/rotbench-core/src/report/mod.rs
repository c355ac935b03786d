//! Exporters: each turns results into bytes (one file per format, behind
//! [`Export`]); nothing here touches the filesystem. `crate::output` writes them.

pub mod csv;
pub mod examples;
pub mod files;
pub mod json;
pub mod table;
pub mod visual;

use crate::results::SweepResult;
use crate::summary::Summary;

/// Everything an exporter may read.
pub struct Results<'a> {
    pub summary: &'a Summary,
    /// Per-sample predictions; absent when re-rendering from summary.json alone.
    pub sweep: Option<&'a SweepResult>,
}

pub trait Export {
    /// The file name this exporter writes inside the output folder.
    fn file_name(&self) -> &'static str;
    fn render(&self, results: &Results<'_>) -> anyhow::Result<Vec<u8>>;
}

/// Shortest text that parses back to exactly the same f64 (at most 17
/// significant digits), positional or scientific, whichever is shorter
/// (`0.125`, `2.6727647100921956e-51`); NaN becomes an empty field.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        shorter(format!("{v}"), format!("{v:e}"))
    }
}

/// The shorter of a number's positional and scientific forms (positional on a tie).
pub fn shorter(positional: String, scientific: String) -> String {
    if scientific.len() < positional.len() {
        scientific
    } else {
        positional
    }
}

#[cfg(test)]
mod number_tests {
    use super::num;

    #[test]
    fn numbers_take_their_shorter_exact_form() {
        for (v, text) in [
            (0.125, "0.125"),
            (1.0, "1"),
            (2.6727647100921956e-51, "2.6727647100921956e-51"),
            (1e21, "1e21"),
            (0.001, "1e-3"),
            (0.01, "0.01"),
            (0.0001, "1e-4"),
        ] {
            assert_eq!(num(v), text);
            assert_eq!(num(v).parse::<f64>().unwrap(), v);
        }
        assert_eq!(num(f64::NAN), "");
    }
}
