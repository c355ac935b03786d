//! Numbers as text, in one home: the exact forms the CSVs and summary.json
//! write ([`num`], [`num32`], [`shorter`]), angles ([`format_angle`], [`deg`]),
//! percentages, p-values, thresholds and durations as the report, the console
//! table and the gate show them. Pure functions; nothing here knows a file.

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

/// [`num`] for an f32 (a per-sample confidence or probability): the shortest
/// text that parses back to the same f32; NaN becomes an empty field.
pub fn num32(v: f32) -> String {
    let mut text = String::new();
    push_num32(&mut text, v);
    text
}

/// [`num32`] appended to `out`: without a `String` of its own for the common
/// case (predictions.csv writes three a row).
pub fn push_num32(out: &mut String, v: f32) {
    use std::fmt::Write;
    if v.is_nan() {
    } else if v == 0.0 || (0.1..10.0).contains(&v.abs()) {
        // Positional is the shorter here, so the scientific form need not be made:
        // with d significant digits, `0.d…` takes d + 2 characters (d + 3 with a
        // sign) against `d.…e-1`'s d + 3 or more, and `d.…` d + 1 against
        // `d.…e0`'s d + 2 or more; 0 is `0` against `0e0`. Most confidences and
        // probabilities fall here (`num32_positional_range_needs_no_scientific_form`).
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&shorter(v.to_string(), format!("{v:e}")));
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

/// Shortest text for an angle: `90`, `137.5`, `-30`, and `7e299` from 1e15 on
/// (plain digits would print all 300 of them).
pub fn format_angle(a: f64) -> String {
    let mut text = String::new();
    push_angle(&mut text, a);
    text
}

/// [`format_angle`] appended to `out`.
pub fn push_angle(out: &mut String, a: f64) {
    use std::fmt::Write;
    let _ = if a.abs() >= 1e15 {
        write!(out, "{a:e}")
    } else if a.fract() == 0.0 {
        write!(out, "{}", a as i64)
    } else {
        write!(out, "{a}")
    };
}

/// An angle as text with its unit: `15°`, `-7.5°`.
pub fn deg(a: f64) -> String {
    format!("{}°", format_angle(a))
}

/// A proportion as a percentage with one decimal, `–` for NaN.
pub fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}%", v * 100.0)
    } else {
        "–".to_string()
    }
}

/// A p-value as a reader expects it: three decimals down to 0.001 (`1.000`,
/// `0.375`), then two significant digits in scientific form (`2.3e-20`).
pub fn format_p(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p >= 0.001 {
        format!("{p:.3}")
    } else if p == 0.0 {
        "0".into()
    } else {
        format!("{p:.1e}")
    }
}

/// A threshold as the user wrote it: the shortest positional text that parses
/// back to the same f64 (`0.05`, `1`).
pub fn plain(v: f64) -> String {
    format!("{v}")
}

/// `value` with enough decimals (4 at least) to tell it apart from `threshold`;
/// within `tolerance` of it (equal as far as a check goes), 4 decimals.
pub fn apart(value: f64, threshold: f64, tolerance: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    for d in 4..=17 {
        let s = format!("{value:.d$}");
        if (value - threshold).abs() <= tolerance || s != format!("{threshold:.d$}") {
            return s;
        }
    }
    format!("{value}")
}

/// A wall time: `12.3 s` under a minute, `4 min 05 s` from one on.
pub fn duration(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        "not recorded".into()
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let s = secs.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num32_positional_range_needs_no_scientific_form() {
        // num32 skips the scientific form for 0 and 0.1 <= |v| < 10: it must give
        // what comparing both forms gives, at the range's edges, and for a million
        // f32s drawn from every bit pattern there and around it.
        let both = |v: f32| shorter(v.to_string(), format!("{v:e}"));
        let mut values = vec![0.0f32, -0.0, 0.1, -0.1, 10.0, 1.0, 9.999999, 0.099999994];
        values.extend([0.1f32, 10.0].iter().flat_map(|&e| {
            let b = e.to_bits();
            [f32::from_bits(b - 1), f32::from_bits(b + 1)]
        }));
        let (lo, hi) = (1e-6f32.to_bits(), 1e6f32.to_bits());
        let mut state = 3u64;
        for _ in 0..1_000_000 {
            state = crate::metrics::bootstrap::mix(state);
            let v = f32::from_bits(lo + (state % u64::from(hi - lo)) as u32);
            values.push(if state >> 63 == 1 { -v } else { v });
        }
        for v in values {
            assert_eq!(num32(v), both(v), "{v:e}");
        }
    }

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

    #[test]
    fn p_values_print_as_a_reader_expects() {
        let shown: Vec<String> = [1.0, 0.375, 0.0123, 0.001, 0.000_95, 2.3e-20, 0.0]
            .map(format_p)
            .to_vec();
        assert_eq!(
            shown,
            ["1.000", "0.375", "0.012", "0.001", "9.5e-4", "2.3e-20", "0"]
        );
    }

    #[test]
    fn angles_format_shortest() {
        assert_eq!(format_angle(90.0), "90");
        assert_eq!(format_angle(137.5), "137.5");
        assert_eq!(format_angle(-30.0), "-30");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(3.21), "3.2 s");
        assert_eq!(duration(125.0), "2 min 05 s");
        assert_eq!(duration(f64::NAN), "not recorded");
    }

    #[test]
    fn percentages_and_angles_read_naturally() {
        assert_eq!(pct(0.98765), "98.8%");
        assert_eq!(pct(f64::NAN), "–");
        assert_eq!(deg(-7.5), "-7.5°");
        assert_eq!(deg(15.0), "15°");
    }
}

/// Seconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic
/// Gregorian calendar, from the days since 1970-01-01 by Hinnant's algorithm).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod utc_tests {
    #[test]
    fn utc_dates_by_hand() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_796_607_000), "2026-12-07 01:30:00 UTC");
    }
}
