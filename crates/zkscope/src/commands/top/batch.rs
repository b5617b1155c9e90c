//! `--batch`: one plain block per interval (like `top -b`), for logs and scripts.
//!
//! ```text
//! --- 2026-11-22 16:05:02 UTC  interval 2s  calls 12 (cumulative 176)  errors 1 (cumulative 22)  packets 444  kernel drops 0  decode errors 0  tcp gaps 0
//! OP              INTERVAL  CUMULATIVE  ERRORS  CUM_ERRORS      P50      P99
//! getData                4          29       0           4    312us    1.20ms
//! ```
//!
//! Rows are the keys with calls in the interval, busiest first; key columns are separated by
//! two spaces at least, so a script splits on runs of spaces.

use std::fmt::Write as _;

use zkscope_analysis::fmt::human_us;
use zkscope_capture::Timestamp;

use super::model::{Stat, TopAgg, View, KEY_SEP, OTHER, S};

/// The block of an interval ending at `end`, `secs` long.
pub fn block(
    interval: &TopAgg,
    cumulative: &TopAgg,
    view: View,
    max_rows: usize,
    end: Timestamp,
    secs: f64,
) -> String {
    let mut out = String::new();
    let when = chrono::DateTime::from_timestamp(end.0.div_euclid(S), 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| end.0.to_string());
    let (it, ct) = (&interval.total, &cumulative.total);
    let _ = writeln!(
        out,
        "--- {when}  interval {secs}s  calls {} (cumulative {})  errors {} (cumulative {})",
        it.count, ct.count, it.errors, ct.errors
    );
    let idx = view.index();
    let (Some(t), Some(ctab)) = (interval.tables.get(idx), cumulative.tables.get(idx)) else {
        return out;
    };
    let mut rows: Vec<(&str, &Stat, Option<&Stat>)> = t
        .rows
        .iter()
        .map(|(k, s)| (&**k, s, ctab.rows.get(k)))
        .filter(|(_, s, _)| s.count > 0)
        .collect();
    rows.sort_by(|a, b| {
        b.1.count
            .cmp(&a.1.count)
            .then(b.2.map_or(0, |s| s.count).cmp(&a.2.map_or(0, |s| s.count)))
            .then(a.0.cmp(b.0))
    });
    if max_rows > 0 {
        rows.truncate(max_rows);
    }
    if t.other.count > 0 {
        rows.push((OTHER, &t.other, Some(&ctab.other)));
    }
    let titles = view.key_titles();
    let mut widths: Vec<usize> = titles.iter().map(|t| t.len()).collect();
    for (k, _, _) in &rows {
        for (i, part) in k.split(KEY_SEP).enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(part.chars().count());
            }
        }
    }
    for (t, w) in titles.iter().zip(&widths) {
        let _ = write!(out, "{t:<w$}  ");
    }
    let _ = writeln!(
        out,
        "{:>8}  {:>10}  {:>6}  {:>10}  {:>8}  {:>8}",
        "INTERVAL", "CUMULATIVE", "ERRORS", "CUM_ERRORS", "P50", "P99"
    );
    for (k, s, c) in rows {
        let mut parts = k.split(KEY_SEP);
        for w in &widths {
            let p = parts.next().unwrap_or("");
            let p = if p.is_empty() { "-" } else { p };
            let _ = write!(out, "{p:<w$}  ");
        }
        let [p50, p99] = s.latency.quantiles_us([0.5, 0.99]);
        let lat = |v: Option<u64>| v.map_or("-".to_string(), |v| human_us(v as f64));
        let _ = writeln!(
            out,
            "{:>8}  {:>10}  {:>6}  {:>10}  {:>8}  {:>8}",
            s.count,
            c.map_or(0, |c| c.count),
            s.errors,
            c.map_or(0, |c| c.errors),
            lat(p50),
            lat(p99)
        );
    }
    out
}
