//! Kubernetes resource quantities ("100m", "1Gi", "1e3", "0.5") parsed exactly, with no
//! floating point, rounded up like apimachinery's `Quantity.Value()` / `MilliValue()`.
//! k8s-openapi keeps a quantity as its raw string, so the grammar is implemented here:
//! `<sign>?<digits>[.<digits>]<suffix>` with suffix one of the binary SI units
//! (Ki..Ei), the decimal SI units (n, u, m, "", k, M, G, T, P, E) or an exponent
//! (`e<signed int>` / `E<signed int>`).

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid quantity {raw:?}: {why}")]
pub struct QuantityError {
    pub raw: String,
    pub why: &'static str,
}

/// Most significant digits kept exactly; i128 holds 38 decimal digits.
const MAX_DIGITS: usize = 36;

/// The quantity in whole units, rounded up (memory, storage, pods, extended resources).
pub fn parse_units(raw: &str) -> Result<i64, QuantityError> {
    parse_scaled(raw, 0)
}

/// The quantity in thousandths, rounded up (cpu in millicores).
pub fn parse_milli(raw: &str) -> Result<i64, QuantityError> {
    parse_scaled(raw, 3)
}

/// `value × 10^unit_exp10`, rounded toward +∞, saturated to the i64 range (apimachinery
/// caps quantities at 2^63−1 too).
fn parse_scaled(raw: &str, unit_exp10: i32) -> Result<i64, QuantityError> {
    let err = |why| QuantityError {
        raw: raw.to_string(),
        why,
    };
    let s = raw.trim();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        Some(_) => (false, s),
        None => return Err(err("empty")),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if frac_part.contains('.') {
        return Err(err("more than one decimal point"));
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err(err("no digits"));
    }
    let (exp10, exp2) = parse_suffix(suffix).ok_or_else(|| err("unknown suffix"))?;

    // Leading zeros carry no value; dropping them keeps long "0.000…1" forms exact.
    let all_digits = format!("{int_part}{frac_part}");
    let significant = all_digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if significant.len() > MAX_DIGITS {
        return Err(err("too many significant digits"));
    }
    let mut mantissa: i128 = 0;
    for b in significant.bytes() {
        mantissa = mantissa * 10 + i128::from(b - b'0');
    }
    let frac_digits = i32::try_from(frac_part.len()).map_err(|_| err("too long"))?;
    let total_exp10 = exp10
        .checked_add(unit_exp10)
        .and_then(|e| e.checked_sub(frac_digits))
        .ok_or_else(|| err("exponent out of range"))?;

    let magnitude = scale(mantissa, total_exp10, exp2, negative);
    Ok(if negative {
        magnitude.map_or(i64::MIN, |m| i64::try_from(-m).unwrap_or(i64::MIN))
    } else {
        magnitude.map_or(i64::MAX, |m| i64::try_from(m).unwrap_or(i64::MAX))
    })
}

/// |value| = mantissa × 10^exp10 × 2^exp2, rounded so that the signed value rounds up:
/// the magnitude rounds up for positives and down for negatives. `None` on overflow.
fn scale(mantissa: i128, exp10: i32, exp2: u32, negative: bool) -> Option<i128> {
    let mut m = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            m = m.checked_mul(10)?;
        }
        return Some(m);
    }
    let mut divisor: i128 = 1;
    for _ in 0..exp10.unsigned_abs() {
        match divisor.checked_mul(10) {
            Some(d) => divisor = d,
            // The divisor outgrew any mantissa: the value is a positive fraction below 1.
            None => return Some(if negative { 0 } else { 1 }),
        }
    }
    let q = m / divisor;
    let exact = m % divisor == 0;
    Some(if exact || negative { q } else { q + 1 })
}

/// (decimal exponent, binary exponent) of a suffix.
fn parse_suffix(suffix: &str) -> Option<(i32, u32)> {
    let binary = |k: u32| Some((0, 10 * k));
    match suffix {
        "" => Some((0, 0)),
        "n" => Some((-9, 0)),
        "u" => Some((-6, 0)),
        "m" => Some((-3, 0)),
        "k" => Some((3, 0)),
        "M" => Some((6, 0)),
        "G" => Some((9, 0)),
        "T" => Some((12, 0)),
        "P" => Some((15, 0)),
        "E" => Some((18, 0)),
        "Ki" => binary(1),
        "Mi" => binary(2),
        "Gi" => binary(3),
        "Ti" => binary(4),
        "Pi" => binary(5),
        "Ei" => binary(6),
        _ => {
            let exp = suffix.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Bounded so that later arithmetic cannot overflow; anything this large
            // saturates or rounds to the smallest unit anyway.
            let e: i32 = exp.parse().ok()?;
            (-1000..=1000).contains(&e).then_some((e, 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms_in_millicores() {
        let cases = [
            ("100m", 100),
            ("1", 1000),
            ("0.5", 500),
            (".5", 500),
            ("1.", 1000),
            ("2.25", 2250),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("+3", 3000),
            ("250000u", 250),
            ("1k", 1_000_000),
            ("0", 0),
            ("0.0001", 1), // rounds up like MilliValue()
            ("1500000n", 2),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_milli(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn memory_forms_in_bytes() {
        let cases = [
            ("1Gi", 1 << 30),
            ("512Mi", 512 << 20),
            ("1G", 1_000_000_000),
            ("1.5Gi", 3 << 29),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("123Mi", 123 << 20),
            ("0.5Ki", 512),
            ("1m", 1), // 0.001 byte rounds up to 1
            ("100m", 1),
            ("1Ei", 1 << 60),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_units(raw), Ok(want), "{raw}");
        }
    }

    #[test]
    fn huge_values_saturate_and_tiny_round_up() {
        assert_eq!(parse_units("16Ei"), Ok(i64::MAX));
        assert_eq!(parse_units("1e100"), Ok(i64::MAX));
        assert_eq!(parse_units("1e-100"), Ok(1));
        assert_eq!(
            parse_units("0.000000000000000000000000000000000000000000001"),
            Ok(1)
        );
    }

    #[test]
    fn negatives_round_toward_positive_infinity() {
        assert_eq!(parse_units("-1.5"), Ok(-1));
        assert_eq!(parse_milli("-1"), Ok(-1000));
    }

    #[test]
    fn malformed_is_an_error_naming_the_input() {
        for raw in [
            "", "abc", "1.2.3", "1Xi", "1e", "1e+", "--1", "1 Gi", "1gi", "e3", ".",
        ] {
            let e = parse_units(raw).expect_err(raw);
            assert_eq!(e.raw, raw);
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const SUFFIXES: [(&str, i128); 12] = [
        ("", 1),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("Ei", 1 << 60),
    ];

    proptest! {
        /// An integer with any whole-unit suffix is exactly n × unit, or saturates.
        #[test]
        fn integers_scale_exactly(n in 0i64..1_000_000_000, s in 0usize..SUFFIXES.len()) {
            let (suffix, unit) = SUFFIXES[s];
            let want = (i128::from(n) * unit).min(i128::from(i64::MAX));
            prop_assert_eq!(i128::from(parse_units(&format!("{n}{suffix}")).unwrap()), want);
        }

        /// Millicores of a decimal with up to three places are exact; more places round up.
        #[test]
        fn decimals_in_millis(whole in 0i64..100_000, frac in 0u32..1_000_000, places in 1usize..7) {
            let frac_str = format!("{frac:06}")[..places].to_string();
            let text = format!("{whole}.{frac_str}");
            let digits: i128 = frac_str.parse().unwrap();
            let scale = 10i128.pow(places as u32);
            let exact_milli_num = i128::from(whole) * scale * 1000 + digits * 1000;
            let want = (exact_milli_num + scale - 1) / scale; // ceil
            prop_assert_eq!(i128::from(parse_milli(&text).unwrap()), want);
        }

        /// The exponent form equals the decimal-SI form of the same value.
        #[test]
        fn exponent_matches_si(n in 0i64..1_000_000, e in 0usize..4) {
            let si = ["", "k", "M", "G"][e];
            prop_assert_eq!(
                parse_units(&format!("{n}e{}", e * 3)).unwrap(),
                parse_units(&format!("{n}{si}")).unwrap()
            );
        }
    }
}
