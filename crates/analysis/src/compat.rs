//! zktraffic's (`zk-dump`) `--count-requests` and `--measure-latency` semantics.
//!
//! - [`ArrivalCounter`] is zk-dump's CountPrinter: it counts requests (handshakes, closes and
//!   auth included; pings only when asked) and watch events as they arrive, until N, keyed by
//!   path (at an aggregation depth), type name or client; [`ArrivalCounter::lines`] gives
//!   `key count` lines sorted by count, ties in first-seen order.
//! - The latency table is an [`crate::Aggregator`] over request/reply pairs (see
//!   [`latency_config`]), printed by [`latency_table`] like zk-dump's LatencyPrinter:
//!   a `tabulate` "simple" table of seconds (`%g`).

use std::collections::HashMap;

use zkscope_capture::client::{Kind, Msg};
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_proto::client::OpCode;

use crate::agg::{Config, Filter, OTHER};
use crate::key::{push_display, GroupKey, PathNorm};

/// zk-dump's `--group-by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatGroup {
    /// The path (or its prefix at the aggregation depth); empty for messages without one.
    Path,
    /// The type name (`ExistsRequest`, `NodeDataChanged`).
    Type,
    /// The client's `ip:port`.
    Client,
}

impl CompatGroup {
    /// zk-dump's name of the grouping (the latency table's first header).
    pub fn name(self) -> &'static str {
        match self {
            CompatGroup::Path => "path",
            CompatGroup::Type => "type",
            CompatGroup::Client => "client",
        }
    }

    /// The equivalent group key.
    pub fn key(self) -> GroupKey {
        match self {
            CompatGroup::Path => GroupKey::Path,
            CompatGroup::Type => GroupKey::Type,
            CompatGroup::Client => GroupKey::Client,
        }
    }
}

/// zk-dump's CountPrinter.
#[derive(Debug)]
pub struct ArrivalCounter {
    group: CompatGroup,
    paths: PathNorm,
    include_pings: bool,
    limit: u64,
    seen: u64,
    max_groups: usize,
    counts: HashMap<Box<str>, (u64, u64)>,
    other: u64,
    buf: String,
}

impl ArrivalCounter {
    /// Counts `limit` requests and events grouped by `group` (paths cut at `depth`, 0 = whole).
    pub fn new(
        group: CompatGroup,
        depth: usize,
        include_pings: bool,
        limit: u64,
        max_groups: usize,
    ) -> Self {
        ArrivalCounter {
            group,
            paths: PathNorm {
                depth,
                fold_sequential: false,
            },
            include_pings,
            limit,
            seen: 0,
            max_groups,
            counts: HashMap::new(),
            other: 0,
            buf: String::new(),
        }
    }

    /// True once `limit` messages were counted.
    pub fn done(&self) -> bool {
        self.seen >= self.limit
    }

    /// Messages counted.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    fn add(&mut self) {
        self.seen += 1;
        if let Some(e) = self.counts.get_mut(self.buf.as_str()) {
            e.0 += 1;
        } else if self.counts.len() < self.max_groups {
            let seq = self.counts.len() as u64;
            self.counts.insert(self.buf.as_str().into(), (1, seq));
        } else {
            self.other += 1;
        }
    }

    /// `(key, count)` by count, descending; ties in first-seen order; the `(other)` row of
    /// keys beyond the group cap last.
    pub fn lines(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64, u64)> = self
            .counts
            .iter()
            .map(|(k, &(n, seq))| (&**k, n, seq))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        let mut out: Vec<(&str, u64)> = v.into_iter().map(|(k, n, _)| (k, n)).collect();
        if self.other > 0 {
            out.push((OTHER, self.other));
        }
        out
    }
}

impl Consumer for ArrivalCounter {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
    fn done(&self) -> bool {
        ArrivalCounter::done(self)
    }
}

impl ArrivalCounter {
    /// One decoded client message.
    pub fn message(&mut self, m: &Msg<'_>) {
        if self.done() {
            return;
        }
        self.buf.clear();
        let (ty, path) = match &m.kind {
            Kind::Request(r) => {
                if r.header.opcode == OpCode::PING && !self.include_pings {
                    return;
                }
                (r.header.opcode.request_type(), r.body.path().map(|p| p.0))
            }
            Kind::ConnectRequest(_) => ("ConnectRequest", None),
            Kind::Event { event, .. } => (
                event.event_type.name().unwrap_or("UnknownWatchEvent"),
                event.path.map(|p| p.0),
            ),
            _ => return,
        };
        match self.group {
            CompatGroup::Path => {
                if let Some(p) = path {
                    self.paths.write(&mut self.buf, p);
                }
            }
            CompatGroup::Type => self.buf.push_str(ty),
            CompatGroup::Client => push_display(&mut self.buf, m.conn.client),
        }
        self.add();
    }
}

/// The [`Config`] of zk-dump's LatencyPrinter: `limit` request/reply pairs (handshakes
/// included, closes never, pings only when asked) grouped by `group`.
pub fn latency_config(
    group: CompatGroup,
    depth: usize,
    include_pings: bool,
    limit: u64,
    max_groups: usize,
) -> Config {
    Config {
        keys: vec![group.key()],
        paths: PathNorm {
            depth,
            fold_sequential: false,
        },
        classes: None,
        max_groups,
        latency: true,
        slow_ns: None,
        filter: Filter {
            pings: include_pings,
            close: false,
            connects: true,
            events: false,
            four_letter: false,
            unanswered: false,
        },
        limit: Some(limit),
        duration_ns: None,
        ..Config::default()
    }
}

/// Python's `format(x, "g")`: 6 significant digits, trailing zeros removed, exponent form
/// below 1e-4 and from 1e6.
pub fn fmt_g(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{x:.5e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Digits after the decimal point as `tabulate` counts them (−1 for integers).
fn afterpoint(s: &str) -> isize {
    match s.rfind('.').or_else(|| s.to_ascii_lowercase().rfind('e')) {
        Some(p) => (s.len() - p - 1) as isize,
        None => -1,
    }
}

/// zk-dump's latency table: `tabulate(rows, headers=[group, "avg", "p95", "p99"])` in the
/// "simple" format, values in seconds. Rows are `(key, avg, p95, p99)`.
pub fn latency_table(group: &str, rows: &[(String, f64, f64, f64)]) -> String {
    const PAD: usize = 2;
    let headers = [group, "avg", "p95", "p99"];
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); 4];
    for (k, a, p95, p99) in rows {
        cols[0].push(k.clone());
        cols[1].push(fmt_g(*a));
        cols[2].push(fmt_g(*p95));
        cols[3].push(fmt_g(*p99));
    }
    // Numbers are aligned on their decimal point, then right-aligned.
    for col in cols.iter_mut().skip(1) {
        let max = col.iter().map(|s| afterpoint(s)).max().unwrap_or(-1);
        for s in col.iter_mut() {
            let pad = (max - afterpoint(s)).max(0) as usize;
            s.push_str(&" ".repeat(pad));
        }
    }
    let widths: Vec<usize> = cols
        .iter()
        .zip(headers)
        .map(|(c, h)| {
            c.iter()
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(h.chars().count() + PAD)
        })
        .collect();
    let cell = |i: usize, s: &str| -> String {
        let w = widths[i];
        let n = s.chars().count();
        let fill = " ".repeat(w.saturating_sub(n));
        // Without rows no column is numeric: everything is left-aligned.
        if i == 0 || rows.is_empty() {
            format!("{s}{fill}")
        } else {
            format!("{fill}{s}")
        }
    };
    let mut out = String::new();
    let line = |cells: Vec<String>| cells.join("  ");
    out.push_str(line((0..4).map(|i| cell(i, headers[i])).collect()).trim_end());
    out.push('\n');
    out.push_str(&line(widths.iter().map(|&w| "-".repeat(w)).collect()));
    out.push('\n');
    let table_rows = (0..rows.len()).map(|r| (0..4).map(|i| cell(i, &cols[i][r])).collect());
    for cells in table_rows {
        out.push_str(line(cells).trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_g_format() {
        assert_eq!(fmt_g(0.00723696), "0.00723696");
        assert_eq!(fmt_g(0.007236961), "0.00723696");
        assert_eq!(fmt_g(0.000338078), "0.000338078");
        assert_eq!(fmt_g(0.000531), "0.000531");
        assert_eq!(fmt_g(5.3e-05), "5.3e-05");
        assert_eq!(fmt_g(1.0), "1");
        assert_eq!(fmt_g(1.5), "1.5");
        assert_eq!(fmt_g(123456.0), "123456");
        assert_eq!(fmt_g(1234567.0), "1.23457e+06");
        assert_eq!(fmt_g(0.0001), "0.0001");
        assert_eq!(fmt_g(0.0), "0");
        assert_eq!(fmt_g(-0.5), "-0.5");
        assert_eq!(fmt_g(9.999995e-5), "0.0001");
    }

    #[test]
    fn tabulate_simple_layout() {
        let rows = vec![
            (
                "SetDataRequest".to_string(),
                0.00723696,
                0.00723696,
                0.00723696,
            ),
            (
                "GetChildrenRequest".to_string(),
                0.000338078,
                0.000351,
                0.000351,
            ),
        ];
        // Expected outputs are Python tabulate 0.9's.
        let t = latency_table("type", &rows);
        assert_eq!(
            t,
            "type                        avg         p95         p99\n\
             ------------------  -----------  ----------  ----------\n\
             SetDataRequest      0.00723696   0.00723696  0.00723696\n\
             GetChildrenRequest  0.000338078  0.000351    0.000351\n"
        );
        let rows = vec![
            (String::new(), 5.3e-05, 0.0001, 1.5),
            ("/a".to_string(), 1.0, 2.0, 12345678.0),
        ];
        assert_eq!(
            latency_table("path", &rows),
            "path        avg     p95          p99\n\
             ------  -------  ------  -----------\n\
             \x20       5.3e-05  0.0001  1.5\n\
             /a      1        2       1.23457e+07\n"
        );
        let empty = latency_table("path", &[]);
        assert_eq!(
            empty,
            "path    avg    p95    p99\n------  -----  -----  -----\n"
        );
    }
}
