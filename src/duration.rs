//! Parsing and printing of human durations such as `1800`, `500ms`, `30s`, `10m`, `1h30m`.

use std::time::Duration;

/// The longest interval or debounce accepted: a year is far beyond any sensible use and keeps
/// every deadline computation far from overflow.
const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a duration. A plain number is seconds (`1800`, `0.5`); otherwise a sequence of
/// number-unit pairs with units `ms`, `s`, `m`, `h`, `d` (`1h30m`). Zero and negative values
/// are rejected.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t.starts_with('-') {
        return Err(format!(
            "'{text}' is negative; give a positive duration such as 30s or 10m"
        ));
    }
    let total = if let Ok(secs) = t.parse::<f64>() {
        seconds(secs, text)?
    } else {
        let mut total = Duration::ZERO;
        let mut rest = t;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(|| {
                    format!("'{text}' has a number without a unit (use ms, s, m, h or d)")
                })?;
            if num_len == 0 {
                return Err(invalid(text));
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| invalid(text))?;
            rest = &rest[num_len..];
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let scale = match &rest[..unit_len] {
                "ms" => 0.001,
                "s" | "sec" | "secs" => 1.0,
                "m" | "min" | "mins" => 60.0,
                "h" => 3600.0,
                "d" => 86400.0,
                _ => return Err(invalid(text)),
            };
            rest = &rest[unit_len..];
            total = total
                .checked_add(seconds(value * scale, text)?)
                .ok_or_else(|| too_long(text))?;
        }
        total
    };
    if total.is_zero() {
        return Err(format!(
            "'{text}' is zero; give a positive duration such as 30s or 10m"
        ));
    }
    if total > MAX {
        return Err(too_long(text));
    }
    Ok(total)
}

fn seconds(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(invalid(text));
    }
    if secs > MAX.as_secs_f64() {
        return Err(too_long(text));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn invalid(text: &str) -> String {
    format!("'{text}' is not a duration: use seconds (1800) or a number with a unit: 500ms, 30s, 10m, 1h")
}

fn too_long(text: &str) -> String {
    format!("'{text}' is too long: at most 366 days")
}

/// Prints a duration the way a person would write it: `600ms`, `30s`, `10m`, `1h30m`.
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        return format!("{:.3}s", d.as_secs_f64());
    }
    let mut secs = d.as_secs();
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_are_seconds() {
        assert_eq!(parse("1800"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn units_and_sequences() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172800)));
    }

    #[test]
    fn rejects_zero_negative_and_garbage() {
        for bad in [
            "0", "0s", "-5", "-1s", "", "abc", "10x", "s", "1.2.3s", "10 m", "nan", "inf", "400d",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn shows_round_trip() {
        for text in ["500ms", "30s", "10m", "1h30m", "1d"] {
            assert_eq!(show(parse(text).unwrap()), text);
        }
        assert_eq!(show(Duration::from_millis(1500)), "1.500s");
    }
}
