//! Durations in config files: `10` (seconds, zk_monitor's `cancel_timeout`), `1.5`, `"500ms"`,
//! `"30s"`, `"5m"`, `"1h30m"`, `"2d"`.

use std::time::Duration;

/// Parses a duration written with units (`500ms`, `30s`, `5m`, `1h30m`, `2d`) or a plain
/// number of seconds (`10`, `2.5`).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return from_secs(secs);
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return Err(format!(
                "invalid duration {t:?} (use e.g. 30s, 5m, 1h30m, 500ms)"
            ));
        }
        let n: f64 = rest[..num_end]
            .parse()
            .map_err(|_| format!("invalid number in duration {t:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_end].trim();
        rest = rest[unit_end..].trim_start();
        let mult = match unit {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => {
                return Err(format!(
                    "missing unit in duration {t:?} (use e.g. 30s, 5m, 1h30m, 500ms)"
                ))
            }
            u => {
                return Err(format!(
                    "unknown unit {u:?} in duration {t:?} (ms, s, m, h, d)"
                ))
            }
        };
        total += n * mult;
    }
    from_secs(total)
}

/// A non-negative, finite number of seconds.
pub fn from_secs(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!(
            "duration must be a non-negative number of seconds, got {secs}"
        ));
    }
    if secs > 10.0 * 365.0 * 86400.0 {
        return Err(format!("duration {secs} s is too long"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Formats like `1h30m`, `45s`, `250ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut s = ms / 1000;
    let mut out = String::new();
    for (unit, len) in [("d", 86400), ("h", 3600), ("m", 60)] {
        if s >= len {
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
        }
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172800));
        assert!(parse("").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("10x").is_err());
        assert!(parse("m").is_err());
        assert!(parse("1.2.3s").is_err());
        assert!(parse("NaN").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(61)), "1m1s");
    }
}
