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

/// [`num32`] appended to `out`, without a `String` of its own (predictions.csv
/// writes three a row). The shortest digits come from `ryu` (the same digits as
/// the standard library's `{}` and `{:e}`: `num32_is_the_shorter_of_display_and_exp`),
/// and both forms are measured before one is written.
pub fn push_num32(out: &mut String, v: f32) {
    use std::fmt::Write;
    if v.is_nan() {
    } else if v == 0.0 || v.is_infinite() {
        // `0`, `-0`, `inf`, `-inf`: shorter than, or the same as, the scientific form.
        let _ = write!(out, "{v}");
    } else {
        let mut text = ryu::Buffer::new();
        let digits = Digits::of(text.format_finite(v));
        if digits.halfway(v) {
            // ryu rounds an exact tie to even, the standard library up: its digits.
            out.push_str(&shorter(v.to_string(), format!("{v:e}")));
        } else {
            digits.push_shorter(out, v < 0.0);
        }
    }
}

/// A finite nonzero number's significant digits, without leading or trailing
/// zeros, and the power of ten of the first: `d.ddd × 10^exp`.
struct Digits {
    digits: [u8; 17],
    n: usize,
    exp: i32,
}

impl Digits {
    /// Read from ryu's text of the number (`-1.5e-7`, `0.0012`, `120.0`, `1e16`).
    fn of(text: &str) -> Digits {
        let text = text.trim_start_matches('-');
        let (mantissa, power) = match text.split_once('e') {
            Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
            None => (text, 0),
        };
        let point = mantissa.find('.').unwrap_or(mantissa.len()) as i32;
        let (mut digits, mut n, mut leading) = ([b'0'; 17], 0, 0);
        for b in mantissa.bytes().filter(|&b| b != b'.') {
            if n == 0 && b == b'0' {
                leading += 1;
            } else if n < digits.len() {
                digits[n] = b;
                n += 1;
            }
        }
        while n > 1 && digits[n - 1] == b'0' {
            n -= 1;
        }
        Digits {
            digits,
            n,
            exp: point - leading - 1 + power,
        }
    }

    /// Whether `v` lies exactly halfway between these digits and the next
    /// number with as many (one more in the last place): `2|v|` equals
    /// `(2D + 1) × 10^q` for the digits `D` and their last place `10^q`. Both
    /// sides are an odd number times a power of two (the right side is not a
    /// dyadic number unless `5^-q` divides `2D + 1`), so they are equal when
    /// those are.
    fn halfway(&self, v: f32) -> bool {
        let bits = v.abs().to_bits();
        let (biased, fraction) = ((bits >> 23) as i32, bits & 0x7f_ffff);
        let (m, k) = match biased {
            0 => (fraction, -149),
            _ => (fraction | 0x80_0000, biased - 150),
        };
        let zeros = m.trailing_zeros() as i32;
        let (odd_v, power_v) = (u64::from(m >> zeros), zeros + k + 1);
        let q = self.exp - self.n as i32 + 1;
        if power_v != q {
            return false;
        }
        let d = self.digits[..self.n]
            .iter()
            .fold(0u64, |d, &b| d * 10 + u64::from(b - b'0'));
        let odd = 2 * d + 1;
        let Some(five) = 5u64.checked_pow(q.unsigned_abs()) else {
            return false;
        };
        match q >= 0 {
            true => odd.checked_mul(five) == Some(odd_v),
            false => odd % five == 0 && odd / five == odd_v,
        }
    }

    /// Write the positional form (the standard library's `{}`: `0.00012`, `1200`,
    /// `1.5`) or the scientific one (`{:e}`: `1.2e-4`, `1.2e3`), whichever is
    /// shorter, positional on a tie.
    fn push_shorter(&self, out: &mut String, negative: bool) {
        let (d, n, e) = (&self.digits[..self.n], self.n as i32, self.exp);
        let positional = match e >= 0 {
            true => n.max(e + 1) + i32::from(n > e + 1),
            false => 1 - e + n,
        };
        let mut power = itoa::Buffer::new();
        let power = power.format(e);
        let scientific = n + i32::from(n > 1) + 1 + power.len() as i32;
        if negative {
            out.push('-');
        }
        if scientific < positional {
            out.push_str(text(&d[..1]));
            if n > 1 {
                out.push('.');
                out.push_str(text(&d[1..]));
            }
            out.push('e');
            out.push_str(power);
        } else if e < 0 {
            out.push_str("0.");
            (0..-e - 1).for_each(|_| out.push('0'));
            out.push_str(text(d));
        } else if n <= e + 1 {
            out.push_str(text(d));
            (0..e + 1 - n).for_each(|_| out.push('0'));
        } else {
            let whole = (e + 1) as usize;
            out.push_str(text(&d[..whole]));
            out.push('.');
            out.push_str(text(&d[whole..]));
        }
    }
}

/// Digits as text (they are ASCII).
fn text(digits: &[u8]) -> &str {
    std::str::from_utf8(digits).unwrap_or("")
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

    /// num32 as it was first written, from the standard library's two forms.
    fn num32_by_std(v: f32) -> String {
        match v.is_nan() {
            true => String::new(),
            false => shorter(v.to_string(), format!("{v:e}")),
        }
    }

    #[test]
    fn num32_is_the_shorter_of_display_and_exp() {
        // Edges, every power of ten, integers, and two million f32s drawn from
        // every bit pattern (all exponents, subnormals, both signs).
        let mut values = vec![
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            f32::EPSILON,
            f32::from_bits(1),
            f32::from_bits(0x007f_ffff),
            1.0,
            0.5,
            1e-5,
            123456.0,
            16777216.0,
            0.71904725,
            9.514587e-10,
            1.2186858e-8,
        ];
        values.extend((-45..=38).map(|p| 10f32.powi(p)));
        values.extend((0..2000).map(|k| k as f32 * 1000.0));
        let mut state = 11u64;
        values.extend((0..2_000_000).map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            f32::from_bits((state >> 32) as u32)
        }));
        for v in values.iter().flat_map(|&v| [v, -v]) {
            assert_eq!(num32(v), num32_by_std(v), "{v:e} (bits {:#x})", v.to_bits());
        }
    }

    /// Every one of the 2^32 f32s (2,547 s on two cores, passed, with
    /// `cargo test --release -p rotbench-core num32_every_f32 -- --ignored`).
    #[test]
    #[ignore]
    fn num32_every_f32_is_the_shorter_of_display_and_exp() {
        use rayon::prelude::*;
        let bad = (0..=u32::MAX >> 16).into_par_iter().find_any(|&hi| {
            let mut text = String::new();
            (0..=u16::MAX as u32).any(|lo| {
                let v = f32::from_bits(hi << 16 | lo);
                text.clear();
                push_num32(&mut text, v);
                text != num32_by_std(v)
            })
        });
        assert_eq!(bad, None, "a 65,536-value block (its top 16 bits) differs");
    }

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
