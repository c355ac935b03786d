//! Angle specs: parsing `0,90,180` lists and `start:stop:step` ranges into degrees.
//!
//! Degrees, counter-clockwise positive. Ranges exclude `stop`, as Python's
//! `range` does; each angle is `start + i*step` (no accumulated rounding).
//! Every finite angle is accepted and kept as written (it labels its row of
//! output); the rotation turns by its exact remainder mod 360
//! ([`crate::rotate::reduce_degrees`]). NaN and infinities are refused, as are
//! numbers too large for an f64 (`1e400`).

use crate::format::format_angle;
use std::fmt;

/// The most angles one spec may produce.
pub const MAX_ANGLES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AngleSpecError(pub String);

impl fmt::Display for AngleSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for AngleSpecError {}

const FORMS: &str =
    "use a list like `0,90,180` or a range `start:stop:step` (stop excluded), e.g. `0:360:15`";

fn number(text: &str, what: &str, spec: &str, noun: &str) -> Result<f64, AngleSpecError> {
    let t = text.trim();
    let v: f64 = t.parse().map_err(|_| {
        AngleSpecError(format!(
            "{noun} spec `{spec}`: {what} `{t}` is not a number; {FORMS}"
        ))
    })?;
    if !v.is_finite() {
        return Err(AngleSpecError(format!(
            "{noun} spec `{spec}`: {what} `{t}` is not a finite number; {FORMS}"
        )));
    }
    Ok(v)
}

/// Parse an angle spec. Duplicates are an error (each angle is one row of output).
/// Angles are degrees and take no unit; a spec that ends in one (`30px`, `10%`) is
/// a translation given to the wrong flag.
pub fn parse(spec: &str) -> Result<Vec<f64>, AngleSpecError> {
    let s = spec.trim();
    if s.ends_with("px") || s.ends_with('%') {
        return Err(AngleSpecError(format!(
            "angle spec `{s}`: angles are degrees and take no unit; translations go in --translate (`--translate=-3:4.5:1.5px`)"
        )));
    }
    parse_values(s, "angle", "angles")
}

/// Parse a list or range of values named `noun` (`angle`, `offset`; `plural` in
/// messages). Duplicates are an error.
pub fn parse_values(spec: &str, noun: &str, plural: &str) -> Result<Vec<f64>, AngleSpecError> {
    let s = spec.trim();
    if s.is_empty() {
        return Err(AngleSpecError(format!("the {noun} spec is empty; {FORMS}")));
    }
    let number = |text: &str, what: &str, spec: &str| number(text, what, spec, noun);
    let angles = if s.contains(':') {
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 3 {
            return Err(AngleSpecError(format!(
                "{noun} spec `{s}`: a range needs exactly three parts; {FORMS}"
            )));
        }
        let start = number(parts[0], "start", s)?;
        let stop = number(parts[1], "stop", s)?;
        let step = number(parts[2], "step", s)?;
        if step == 0.0 {
            return Err(AngleSpecError(format!(
                "{noun} spec `{s}`: the step is 0, which never reaches the stop; use a non-zero step such as `0:360:15`"
            )));
        }
        let count = ((stop - start) / step).ceil();
        if count <= 0.0 {
            return Err(AngleSpecError(format!(
                "{noun} spec `{s}` holds no {plural}: with step {step} the range must go from start towards stop; {FORMS}"
            )));
        }
        if count > MAX_ANGLES as f64 {
            return Err(AngleSpecError(format!(
                "{noun} spec `{s}` gives {count} {plural}, more than the limit of {MAX_ANGLES}; use a larger step"
            )));
        }
        let count = count as usize;
        (0..count)
            .map(|i| clean(start + i as f64 * step))
            .filter(|a| if step > 0.0 { *a < stop } else { *a > stop })
            .collect::<Vec<_>>()
    } else {
        let items: Vec<&str> = s.split(',').collect();
        if items.len() > MAX_ANGLES {
            return Err(AngleSpecError(format!(
                "{noun} spec has {} {plural}, more than the limit of {MAX_ANGLES}",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.trim().is_empty() {
                return Err(AngleSpecError(format!(
                    "{noun} spec `{s}` has an empty item; {FORMS}"
                )));
            }
            out.push(clean(number(item, noun, s)?));
        }
        out
    };
    if angles.is_empty() {
        return Err(AngleSpecError(format!(
            "{noun} spec `{s}` holds no {plural}; {FORMS}"
        )));
    }
    if let Some(a) = angles.iter().find(|a| !a.is_finite()) {
        return Err(AngleSpecError(format!(
            "{noun} spec `{s}` gives the {noun} {a}, which is not a finite number; {FORMS}"
        )));
    }
    // A set, not a scan of the angles before each one: a 100,000-angle range was
    // quadratic (seconds; found by the `angles` fuzz target as a slow input).
    let mut seen = std::collections::HashSet::with_capacity(angles.len());
    for a in &angles {
        // -0 equals 0, as `==` says.
        let key = if *a == 0.0 { 0u64 } else { a.to_bits() };
        if !seen.insert(key) {
            return Err(AngleSpecError(format!(
                "{noun} spec `{s}` lists {} twice; list each {noun} once",
                format_angle(*a)
            )));
        }
    }
    Ok(angles)
}

/// Below this magnitude an f64 resolves 1e-9 degrees (2^53 / 1e9), so rounding to
/// 1e-9 is meaningful and `a * 1e9` cannot overflow.
const CLEAN_BELOW: f64 = 9.0e6;

/// Round away float noise from `start + i*step` (e.g. 0.1*3) to 1e-9 degrees.
/// Larger angles are kept as they are (their spacing is already coarser).
fn clean(a: f64) -> f64 {
    if !(a.abs() < CLEAN_BELOW) {
        return a;
    }
    let r = (a * 1e9).round() / 1e9;
    if r == 0.0 {
        0.0 // no negative zero
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_keeps_its_order() {
        assert_eq!(
            parse("0,90,180,270").unwrap(),
            vec![0.0, 90.0, 180.0, 270.0]
        );
        assert_eq!(parse(" 45 , -30,137.5").unwrap(), vec![45.0, -30.0, 137.5]);
    }

    #[test]
    fn a_range_excludes_stop() {
        assert_eq!(parse("0:360:90").unwrap(), vec![0.0, 90.0, 180.0, 270.0]);
        assert_eq!(parse("0:360:15").unwrap().len(), 24);
        assert_eq!(parse("0:1:0.1").unwrap().len(), 10);
        assert_eq!(parse("0:0.3:0.1").unwrap(), vec![0.0, 0.1, 0.2]);
        assert_eq!(parse("90:-1:-45").unwrap(), vec![90.0, 45.0, 0.0]);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        assert!(parse("0:360:0").unwrap_err().0.contains("step is 0"));
        assert!(parse("abc").unwrap_err().0.contains("not a number"));
        assert!(parse("nan").unwrap_err().0.contains("not a finite number"));
        assert!(parse("inf").unwrap_err().0.contains("not a finite number"));
        assert!(parse("").unwrap_err().0.contains("empty"));
        assert!(parse("0,,90").unwrap_err().0.contains("empty item"));
        assert!(parse("0:360:0.001").unwrap_err().0.contains("limit"));
        assert!(parse("360:0:15").unwrap_err().0.contains("no angles"));
        assert!(parse("0:360").unwrap_err().0.contains("three parts"));
        assert!(parse("0,90,0").unwrap_err().0.contains("twice"));
        assert!(parse("0,-0").unwrap_err().0.contains("twice"));
    }

    #[test]
    fn huge_angles_keep_their_value_instead_of_overflowing_to_infinity() {
        // Regression (issue #16, item 6): 1e300 * 1e9 overflowed in `clean`.
        assert_eq!(parse("1e300").unwrap(), vec![1e300]);
        assert_eq!(parse("-1.7976931348623157e308").unwrap(), vec![f64::MIN]);
        assert_eq!(parse("1e20,7e299").unwrap(), vec![1e20, 7e299]);
        assert!(parse("1e400")
            .unwrap_err()
            .0
            .contains("not a finite number"));
        assert!(parse("-inf").unwrap_err().0.contains("not a finite number"));
        assert!(parse("0:1e309:1")
            .unwrap_err()
            .0
            .contains("not a finite number"));
        assert_eq!(format_angle(7e299), "7e299");
        assert_eq!(format_angle(-1e20), "-1e20");
    }

    #[test]
    fn exactly_the_limit_is_allowed() {
        assert_eq!(parse("0:100000:1").unwrap().len(), MAX_ANGLES);
        assert!(parse("0:100001:1").is_err());
    }

    /// Fuzzing found `1:663131:7` (94,733 angles) taking seconds: the duplicate
    /// check was quadratic. The limit's worth of angles now parses in milliseconds.
    #[test]
    fn fuzz_slow_unit_a_range_of_many_angles_parses_quickly() {
        let t = std::time::Instant::now();
        assert_eq!(parse("1:663131:7").unwrap().len(), 94_733);
        let list: Vec<String> = (0..MAX_ANGLES).map(|i| i.to_string()).collect();
        assert_eq!(parse(&list.join(",")).unwrap().len(), MAX_ANGLES);
        let mut dup = list[..MAX_ANGLES - 1].to_vec();
        dup.push("17".into());
        assert!(parse(&dup.join(","))
            .unwrap_err()
            .0
            .contains("lists 17 twice"));
        let took = t.elapsed().as_secs_f64();
        assert!(took < 1.0, "{took} s (the quadratic check took seconds)");
    }
}
