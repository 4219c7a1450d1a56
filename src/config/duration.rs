//! Durations in config files: a number of seconds (`30`, `0.5`) or a string with a unit
//! (`"500ms"`, `"30s"`, `"2m"`, `"1h"`).

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Most fractional digits honoured; the rest are below a nanosecond for every unit.
const MAX_FRACTION_DIGITS: usize = 18;

/// Parses a duration string; `None` when it is not one.
///
/// Accepted: an unsigned decimal number (`30`, `1.5`) optionally followed by a unit — `ms`,
/// `s`, `m` or `h` (a bare number is seconds); surrounding whitespace and a space before the
/// unit are allowed. Rejected: empty text, signs, exponents, unknown units, compound forms
/// (`1h30m`) and values too large for [`Duration`]. Zero parses (callers that need a
/// positive timeout check that themselves). The arithmetic is exact integer arithmetic, so
/// `"0.1s"` is exactly 100 ms.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_nanos: u128 = match unit.trim_start() {
        "" | "s" => NANOS_PER_SEC,
        "ms" => 1_000_000,
        "m" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        _ => return None,
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return None,
        None => (number, ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole_nanos = whole.parse::<u128>().ok()?.checked_mul(unit_nanos)?;
    let fraction = &fraction[..fraction.len().min(MAX_FRACTION_DIGITS)];
    let fraction_nanos = if fraction.is_empty() {
        0
    } else {
        let scale = 10u128.pow(u32::try_from(fraction.len()).ok()?);
        fraction.parse::<u128>().ok()?.checked_mul(unit_nanos)? / scale
    };
    let nanos = whole_nanos.checked_add(fraction_nanos)?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let subsec = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("30"), Some(Duration::from_secs(30)));
    }

    #[test]
    fn fractions_are_exact() {
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.1"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5ms"), Some(Duration::from_micros(2500)));
        assert_eq!(
            parse_duration("0.0000000001234567890123s"),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn whitespace_and_zero() {
        assert_eq!(parse_duration(" 30 s "), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    }

    #[test]
    fn rejects_garbage() {
        for text in [
            "", " ", "s", "-1", "-1s", "+1s", "1e3", "soon", "1.", ".5", "1..2", "1.2.3", "1 h 2",
            "1h30m", "30S", "1d", "ms5", "NaN", "inf",
        ] {
            assert_eq!(parse_duration(text), None, "{text:?}");
        }
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(parse_duration("99999999999999999999999h"), None);
        assert_eq!(parse_duration(&"9".repeat(60)), None);
        assert_eq!(
            parse_duration("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_duration("18446744073709551616"), None);
    }
}
