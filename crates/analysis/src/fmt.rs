//! Small text helpers shared by the tables: durations, truncation, column widths.

/// Parses a duration: a number with its unit `ns`, `us`/`µs`, `ms`, `s`, `m`, `h` (`30s`,
/// `50ms`, `1.5m`). Returns nanoseconds. A bare number other than 0 is an error: `--slow 15`
/// could mean 15 ms as well as 15 s.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?} (examples: 30s, 50ms, 2m)"))?;
    let scale = match unit.trim() {
        "" if v == 0.0 => 1.0,
        "" => {
            return Err(format!(
                "duration {s:?} needs a unit: {num}ms, {num}s, {num}m… (ns, us, ms, s, m, h)"
            ))
        }
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "sec" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        u => {
            return Err(format!(
                "bad duration unit {u:?} in {s:?} (ns, us, ms, s, m, h)"
            ))
        }
    };
    let ns = v * scale;
    if !ns.is_finite() || ns > i64::MAX as f64 {
        return Err(format!("duration {s:?} is too long"));
    }
    Ok(ns.round() as i64)
}

/// A latency in microseconds with a readable unit: `518us`, `7.24ms`, `1.250s`.
pub fn human_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}us")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.3}s", us / 1e6)
    }
}

/// `s` cut to at most `width` characters, ending with `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// `s` cut to at most `width` characters by replacing its middle with `…`: both ends of a
/// path say the most (`/clickhouse/tables/…/queue-N`).
pub fn truncate_middle(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_string();
    }
    if width < 3 {
        return truncate(s, width);
    }
    // the end (the leaf) gets the larger half; both halves are cut at a slash when they hold
    // one, so that whole components show
    let mut tail: String = s.chars().skip(n - (width - 1).div_ceil(2)).collect();
    if let Some(i) = tail.find('/') {
        tail.drain(..i);
    }
    let head_len = width - 1 - tail.chars().count();
    let mut head: String = s.chars().take(head_len).collect();
    if let Some(i) = head.rfind('/').filter(|&i| i > 0) {
        head.truncate(i + 1);
    }
    head.push('…');
    head.push_str(&tail);
    head
}

/// Column widths that fit in `total` characters (with `sep` between columns): the
/// shrinkable columns give up characters, widest first, down to their minimum.
pub fn fit_widths(
    natural: &[usize],
    min: &[usize],
    shrinkable: &[bool],
    sep: usize,
    total: usize,
) -> Vec<usize> {
    let mut w = natural.to_vec();
    let seps = sep * natural.len().saturating_sub(1);
    let mut sum: usize = w.iter().sum::<usize>() + seps;
    while sum > total {
        let widest = (0..w.len())
            .filter(|&i| shrinkable.get(i).copied().unwrap_or(false))
            .filter(|&i| w[i] > min.get(i).copied().unwrap_or(0))
            .max_by_key(|&i| (w[i], std::cmp::Reverse(i)));
        match widest {
            Some(i) => {
                w[i] -= 1;
                sum -= 1;
            }
            None => break,
        }
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("50ms"), Ok(50_000_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("0"), Ok(0));
        let e = parse_duration("15").unwrap_err();
        assert!(e.contains("needs a unit: 15ms, 15s"), "{e}");
        assert_eq!(parse_duration("1.5m"), Ok(90_000_000_000));
        assert_eq!(parse_duration("250us"), Ok(250_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1e30h").is_err());
    }

    #[test]
    fn human() {
        assert_eq!(human_us(518.0), "518us");
        assert_eq!(human_us(7240.0), "7.24ms");
        assert_eq!(human_us(1_250_000.0), "1.250s");
    }

    #[test]
    fn truncation() {
        assert_eq!(truncate("/a/b/c", 10), "/a/b/c");
        assert_eq!(truncate("/a/b/c", 6), "/a/b/c");
        assert_eq!(truncate("/a/b/c", 5), "/a/b…");
        assert_eq!(truncate("/é/é", 3), "/é…");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate_middle("/a/b/c", 6), "/a/b/c");
        assert_eq!(
            truncate_middle("/clickhouse/tables/01/db/t/replicas/r1/queue/queue-N", 25),
            "/clickhouse/…/queue-N"
        );
        assert_eq!(truncate_middle("/é/é/é", 5), "/é…/é");
        assert_eq!(truncate_middle("abcdefghij", 5), "ab…ij");
        assert_eq!(truncate_middle("abcdef", 2), "a…");
        for w in 0..12 {
            assert!(truncate_middle("/abcdefghijklmnop", w).chars().count() <= w);
        }
    }

    #[test]
    fn widths_shrink_widest_shrinkable_first() {
        let w = fit_widths(&[40, 20, 5], &[8, 8, 5], &[true, true, false], 2, 50);
        assert_eq!(w.iter().sum::<usize>() + 4, 50);
        assert_eq!(w, vec![21, 20, 5]);
        // Cannot go below the minimums.
        let w = fit_widths(&[40, 20, 5], &[8, 8, 5], &[true, true, false], 2, 10);
        assert_eq!(w, vec![8, 8, 5]);
        // Already fits.
        assert_eq!(
            fit_widths(&[3, 4], &[1, 1], &[true, true], 2, 100),
            vec![3, 4]
        );
    }
}
