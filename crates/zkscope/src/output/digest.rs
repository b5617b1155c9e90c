//! The `zkscope digest` report: pt-query-digest-style text, or one JSON object with the same
//! sections (header, profile, a block per class, sessions, watches, four-letter words, and
//! with `--protocol auto` elections and quorum).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use zkscope_analysis::digest::{Class, Digest, Metric, TopValues, BUCKETS};
use zkscope_analysis::fmt::human_us;
use zkscope_analysis::quorum::EnsembleDigest;
use zkscope_capture::packet::Timestamp;

/// Width of the report's title lines (pt-query-digest's `LINE_LENGTH`).
const LINE: usize = 74;
/// Values listed per top-N attribute (clients, sessions, paths).
const TOP: usize = 5;

/// Ranking of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderBy {
    /// Total response time (sum of latencies).
    Total,
    /// Calls.
    Calls,
    /// Mean latency.
    Mean,
    /// 95th percentile latency.
    P95,
    /// 99th percentile latency.
    P99,
    /// Calls answered with an error.
    Errors,
}

/// The report's view of a digest: classes ranked, options that shape it.
pub struct Report<'a> {
    d: &'a Digest,
    ranked: Vec<&'a Class>,
    limit: usize,
    order_by: OrderBy,
    source: String,
    depth: usize,
    /// Election and quorum traffic (`--protocol` other than client).
    pub ensemble: Option<&'a EnsembleDigest>,
}

fn order_value(c: &Class, by: OrderBy) -> f64 {
    match by {
        OrderBy::Total => c.latency.total(),
        OrderBy::Calls => c.calls as f64,
        OrderBy::Mean => c.latency.mean().unwrap_or(-1.0),
        OrderBy::P95 => c.latency.quantile(0.95).unwrap_or(-1.0),
        OrderBy::P99 => c.latency.quantile(0.99).unwrap_or(-1.0),
        OrderBy::Errors => c.errors as f64,
    }
}

impl<'a> Report<'a> {
    /// Ranks the classes of `d` by `order_by`; `limit` classes get a block; `depth` is the
    /// path aggregation depth (shown in the header); `source` names the input.
    pub fn new(
        d: &'a Digest,
        order_by: OrderBy,
        limit: usize,
        depth: usize,
        source: String,
    ) -> Self {
        let mut ranked = d.classes();
        ranked.sort_by(|a, b| {
            order_value(b, order_by)
                .total_cmp(&order_value(a, order_by))
                .then(a.seq.cmp(&b.seq))
        });
        Report {
            d,
            ranked,
            limit,
            order_by,
            source,
            depth,
            ensemble: None,
        }
    }

    fn shown(&self) -> &[&'a Class] {
        let n = self.limit.min(self.ranked.len());
        self.ranked.get(..n).unwrap_or(&[])
    }

    /// Classes below the limit, plus the folded `(other)` class.
    fn misc(&self) -> Option<(u64, f64, usize)> {
        let rest = self.ranked.get(self.limit..).unwrap_or(&[]);
        let mut calls = 0;
        let mut time = 0.0;
        let mut items = rest.len();
        for c in rest {
            calls += c.calls;
            time += c.latency.total();
        }
        if let Some(o) = self.d.other_class() {
            calls += o.calls;
            time += o.latency.total();
            items += 1;
        }
        (items > 0).then_some((calls, time, items))
    }

    /// The text report.
    pub fn text(&self) -> String {
        let d = self.d;
        let mut o = String::new();
        let total_time = d.latency.total();
        let span = d.span_secs();
        let qps = rate(d.calls, span);
        let conc = if span > 0.0 {
            total_time / 1e6 / span
        } else {
            0.0
        };
        title(
            &mut o,
            &format!(
                "# Overall: {} total, {} unique, {} QPS, {:.2}x concurrency ",
                shorten(d.calls as f64),
                d.classes().len() + usize::from(d.other_class().is_some()),
                rate_str(qps),
                conc
            ),
        );
        let _ = writeln!(o, "# Time range: {}", range(d.first, d.last));
        if !self.source.is_empty() {
            let _ = writeln!(o, "# Capture: {}", self.source);
        }
        let _ = writeln!(o, "# Servers: {}", top_list(&d.servers, TOP));
        let _ = writeln!(
            o,
            "# Clients: {} distinct{}; sessions: {} distinct{}",
            d.clients.distinct(),
            plus(&d.clients),
            d.sessions.seen.distinct(),
            plus(&d.sessions.seen),
        );
        let _ = writeln!(
            o,
            "# Errors: {} ({}), no reply: {}, pings: {}, connects: {} (not in the profile){}",
            d.errors,
            pct(d.errors as f64, d.calls as f64),
            d.no_reply,
            d.pings,
            d.sessions.connects + d.sessions.reconnects,
            if d.outside_window > 0 {
                format!(", outside --since/--until: {}", d.outside_window)
            } else {
                String::new()
            }
        );
        if self.depth > 0 {
            let _ = writeln!(o, "# Paths aggregated to depth {}", self.depth);
        }
        attr_header(&mut o, false);
        attr_row(&mut o, "Latency", &d.latency, Unit::Time, None);
        attr_row(&mut o, "Request bytes", &d.request_bytes, Unit::Bytes, None);
        attr_row(&mut o, "Reply bytes", &d.reply_bytes, Unit::Bytes, None);

        // Profile.
        o.push('\n');
        let _ = writeln!(o, "# Profile (ranked by {})", order_name(self.order_by));
        let _ = writeln!(
            o,
            "# Rank Response time     Calls   R/Call    V/M Errors Item"
        );
        let _ = writeln!(
            o,
            "# ==== ================ ====== ======== ====== ====== ====================="
        );
        for (i, c) in self.shown().iter().enumerate() {
            let _ = writeln!(
                o,
                "# {:>4} {:>9} {:>6} {:>6} {:>8} {:>6} {:>6} {}",
                i + 1,
                human_us(c.latency.total()),
                pct(c.latency.total(), total_time),
                shorten(c.calls as f64),
                c.latency.mean().map_or("-".into(), human_us),
                vm(&c.latency),
                c.errors,
                c.label()
            );
        }
        if let Some((calls, time, items)) = self.misc() {
            let _ = writeln!(
                o,
                "# MISC {:>9} {:>6} {:>6} {:>8} {:>6} {:>6} <{} ITEMS>",
                human_us(time),
                pct(time, total_time),
                shorten(calls as f64),
                if calls > 0 {
                    human_us(time / calls as f64)
                } else {
                    "-".into()
                },
                "0.0",
                "",
                items
            );
        }

        // Blocks.
        for (i, c) in self.shown().iter().enumerate() {
            o.push('\n');
            self.block(&mut o, i + 1, c);
        }

        self.sessions_text(&mut o);
        self.watches_text(&mut o);
        self.four_letter_text(&mut o);
        if let Some(e) = self.ensemble.filter(|e| e.seen()) {
            e.elections_text(&mut o);
            e.quorum_text(&mut o);
        }
        self.notes_text(&mut o);
        o
    }

    fn block(&self, o: &mut String, rank: usize, c: &Class) {
        let d = self.d;
        let span = match (c.first, c.last) {
            (Some(a), Some(b)) => (b.0.saturating_sub(a.0)) as f64 / 1e9,
            _ => 0.0,
        };
        let conc = if span > 0.0 {
            c.latency.total() / 1e6 / span
        } else {
            0.0
        };
        title(
            o,
            &format!(
                "# Class {rank}: {} QPS, {:.2}x concurrency, {} ",
                rate_str(rate(c.calls, span)),
                conc,
                c.label()
            ),
        );
        let _ = writeln!(
            o,
            "# This item is included in the report because it matches --limit."
        );
        let _ = writeln!(o, "# Scores: V/M = {}", vm(&c.latency));
        if !c.folded_by.is_empty() {
            let _ = writeln!(o, "# Folded by: {}", d.rule_names(c.folded_by).join(", "));
        }
        let _ = writeln!(o, "# Time range: {}", range(c.first, c.last));
        attr_header(o, true);
        let _ = writeln!(
            o,
            "# {:<13} {:>3} {:>8}",
            "Count",
            pct_int(c.calls as f64, d.calls as f64),
            shorten(c.calls as f64)
        );
        attr_row(o, "Latency", &c.latency, Unit::Time, Some(&d.latency));
        attr_row(
            o,
            "Request bytes",
            &c.request_bytes,
            Unit::Bytes,
            Some(&d.request_bytes),
        );
        attr_row(
            o,
            "Reply bytes",
            &c.reply_bytes,
            Unit::Bytes,
            Some(&d.reply_bytes),
        );
        let errs: Vec<String> = c
            .error_names()
            .iter()
            .map(|(k, n)| format!("{k}({n})"))
            .collect();
        let _ = writeln!(
            o,
            "# Errors: {} of {}: {}",
            c.errors,
            c.calls,
            errs.join(" ")
        );
        if c.watches > 0 {
            let _ = writeln!(o, "# Watches set: {}", c.watches);
        }
        let _ = writeln!(
            o,
            "# Clients: {} distinct{}: {}",
            c.clients.distinct(),
            plus(&d.clients_of(c)),
            top_list(&d.clients_of(c), TOP)
        );
        let _ = writeln!(
            o,
            "# Sessions: {} distinct{}: {}",
            c.sessions.distinct(),
            plus(&d.sessions_of(c)),
            top_list(&d.sessions_of(c), TOP)
        );
        let _ = writeln!(o, "# Latency distribution");
        let max = c.histogram.iter().copied().max().unwrap_or(0);
        for (label, &n) in BUCKETS.iter().zip(c.histogram.iter()) {
            let bars = if n == 0 || max == 0 {
                0
            } else {
                ((n as f64 / max as f64) * 64.0).round().max(1.0) as usize
            };
            let line = format!("# {label:>5}  {}", "#".repeat(bars));
            let _ = writeln!(o, "{}", line.trim_end());
        }
    }

    fn sessions_text(&self, o: &mut String) {
        let s = &self.d.sessions;
        o.push('\n');
        title(o, "# Sessions ");
        let _ = writeln!(
            o,
            "# Connects: {}, reconnects: {}, expirations: {}, unanswered handshakes: {}, closes: {}",
            s.connects, s.reconnects, s.expirations, s.unanswered, s.closes
        );
        let _ = writeln!(
            o,
            "# Distinct sessions in calls: {}{}",
            s.seen.distinct(),
            plus(&s.seen)
        );
        if s.connect_latency.count() > 0 {
            let _ = writeln!(
                o,
                "# Connect latency: avg {}, 95% {}, max {}",
                s.connect_latency.mean().map_or("-".into(), human_us),
                s.connect_latency
                    .quantile(0.95)
                    .map_or("-".into(), human_us),
                s.connect_latency.max().map_or("-".into(), human_us),
            );
        }
        let mut t: Vec<String> = s
            .timeouts
            .iter()
            .map(|(t, n)| format!("{t}ms({n})"))
            .collect();
        if s.timeouts_other > 0 {
            t.push(format!("(other)({})", s.timeouts_other));
        }
        let _ = writeln!(
            o,
            "# Negotiated timeouts: {}",
            if t.is_empty() {
                "-".to_string()
            } else {
                t.join(" ")
            }
        );
        let _ = writeln!(o, "# Top sessions: {}", top_list(&s.seen, TOP));
    }

    fn watches_text(&self, o: &mut String) {
        let w = &self.d.watches;
        o.push('\n');
        title(o, "# Watches ");
        let by_op: Vec<String> = w
            .set_by_op
            .iter()
            .map(|(k, n)| format!("{k}({n})"))
            .collect();
        let set: u64 = w.set_by_op.values().sum();
        let _ = writeln!(
            o,
            "# Set by requests: {}{}{}; addWatch: {}; setWatches: {}",
            set,
            if by_op.is_empty() { "" } else { " " },
            by_op.join(" "),
            w.add_watch,
            w.set_watches
        );
        let _ = writeln!(o, "# Set on paths: {}", top_list(&w.set_by_path, TOP));
        let fired: u64 = w.fired_by_type.values().sum::<u64>() + w.fired_other_types;
        let mut by_type: Vec<String> = w
            .fired_by_type
            .iter()
            .map(|(k, n)| format!("{k}({n})"))
            .collect();
        if w.fired_other_types > 0 {
            by_type.push(format!("(other)({})", w.fired_other_types));
        }
        let _ = writeln!(
            o,
            "# Fired: {}{}{}",
            fired,
            if by_type.is_empty() { "" } else { " " },
            by_type.join(" ")
        );
        let _ = writeln!(o, "# Fired on paths: {}", top_list(&w.fired_by_path, TOP));
    }

    fn four_letter_text(&self, o: &mut String) {
        let f = &self.d.four_letter;
        o.push('\n');
        title(o, "# Four-letter words ");
        if f.commands.is_empty() {
            let _ = writeln!(o, "# None");
            return;
        }
        for (cmd, (n, bytes)) in &f.commands {
            let _ = writeln!(o, "# {cmd:<6} {n:>6} calls, {} reply bytes", bytes);
        }
        if f.latency.count() > 0 {
            let _ = writeln!(
                o,
                "# Latency: avg {}, max {}",
                f.latency.mean().map_or("-".into(), human_us),
                f.latency.max().map_or("-".into(), human_us)
            );
        }
    }

    fn notes_text(&self, o: &mut String) {
        let d = self.d;
        let mut notes = Vec::new();
        if d.folded_calls > 0 {
            notes.push(format!(
                "{} calls of classes beyond --max-classes {} are in the (other) class",
                d.folded_calls,
                d.config().max_classes
            ));
        }
        let capped = [
            ("clients", d.clients.capped()),
            ("sessions", d.sessions.seen.capped()),
            ("servers", d.servers.capped()),
            ("watched paths", d.watches.set_by_path.capped()),
            ("fired paths", d.watches.fired_by_path.capped()),
        ];
        for (what, c) in capped {
            if c {
                notes.push(format!(
                    "{what}: more than --max-values {} distinct, the rest counted as (other)",
                    d.config().max_values
                ));
            }
        }
        if d.classes()
            .iter()
            .any(|c| c.clients.capped() || c.sessions.capped())
        {
            notes.push(format!(
                "some classes have more than --max-values {} clients or sessions (the rest is (other))",
                d.config().max_values
            ));
        }
        if !notes.is_empty() {
            o.push('\n');
            title(o, "# Notes ");
            for n in notes {
                let _ = writeln!(o, "# {n}");
            }
        }
    }

    /// The JSON report: one object with the same sections.
    pub fn json(&self) -> Value {
        let mut v = self.client_json();
        if let (Some(e), Some(obj)) = (self.ensemble, v.as_object_mut()) {
            let (elections, quorum) = e.json();
            obj.insert("elections".into(), elections);
            obj.insert("quorum".into(), quorum);
        }
        v
    }

    fn client_json(&self) -> Value {
        let d = self.d;
        let span = d.span_secs();
        let total_time = d.latency.total();
        let profile: Vec<Value> = self
            .shown()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "rank": i + 1,
                    "op": c.op,
                    "path": c.path,
                    "item": c.label(),
                    "calls": c.calls,
                    "response_time_us": round3(c.latency.total()),
                    "response_time_pct": round3(share(c.latency.total(), total_time)),
                    "mean_us": c.latency.mean().map(round3),
                    "v_m": c.latency.variance_to_mean().map(|v| round3(v / 1e3)),
                    "errors": c.errors,
                })
            })
            .collect();
        let misc = self.misc().map(|(calls, time, items)| {
            json!({"calls": calls, "response_time_us": round3(time), "items": items})
        });
        let classes: Vec<Value> = self
            .shown()
            .iter()
            .enumerate()
            .map(|(i, c)| class_json(d, i + 1, c))
            .collect();
        let s = &d.sessions;
        let w = &d.watches;
        let timeouts: serde_json::Map<String, Value> = s
            .timeouts
            .iter()
            .map(|(t, n)| (t.to_string(), json!(n)))
            .collect();
        let fourlw: serde_json::Map<String, Value> = d
            .four_letter
            .commands
            .iter()
            .map(|(k, (n, b))| (k.clone(), json!({"calls": n, "reply_bytes": b})))
            .collect();
        json!({
            "header": {
                "capture": self.source,
                "first_ts": d.first.map(ts_secs),
                "last_ts": d.last.map(ts_secs),
                "span_s": round3(span * 1e3) / 1e3,
                "servers": counter_json(&d.servers, usize::MAX),
                "calls": d.calls,
                "unique": d.classes().len() + usize::from(d.other_class().is_some()),
                "errors": d.errors,
                "no_reply": d.no_reply,
                "pings": d.pings,
                "connects": d.sessions.connects + d.sessions.reconnects,
                "outside_window": d.outside_window,
                "clients": d.clients.distinct(),
                "sessions": d.sessions.seen.distinct(),
                "qps": round3(rate(d.calls, span)),
                "concurrency": round3(if span > 0.0 { total_time / 1e6 / span } else { 0.0 }),
                "order_by": order_name(self.order_by),
                "aggregation_depth": self.depth,
                "latency_us": metric_json(&d.latency),
                "request_bytes": metric_json(&d.request_bytes),
                "reply_bytes": metric_json(&d.reply_bytes),
            },
            "profile": profile,
            "misc": misc,
            "classes": classes,
            "other_class": d.other_class().map(|c| class_json(d, 0, c)),
            "sessions": {
                "connects": s.connects,
                "reconnects": s.reconnects,
                "expirations": s.expirations,
                "unanswered": s.unanswered,
                "closes": s.closes,
                "distinct": s.seen.distinct(),
                "connect_latency_us": metric_json(&s.connect_latency),
                "negotiated_timeouts_ms": timeouts,
                "negotiated_timeouts_other": s.timeouts_other,
                "top": counter_json(&s.seen, TOP),
            },
            "watches": {
                "set": w.set_by_op.values().sum::<u64>(),
                "set_by_op": w.set_by_op,
                "set_by_path": counter_json(&w.set_by_path, TOP),
                "add_watch": w.add_watch,
                "set_watches": w.set_watches,
                "fired": w.fired_by_type.values().sum::<u64>() + w.fired_other_types,
                "fired_other_types": w.fired_other_types,
                "fired_by_type": w.fired_by_type,
                "fired_by_path": counter_json(&w.fired_by_path, TOP),
            },
            "four_letter_words": fourlw,
            "folded": {
                "class_calls": d.folded_calls,
                "max_classes": d.config().max_classes,
                "max_values": d.config().max_values,
            },
        })
    }
}

fn class_json(d: &Digest, rank: usize, c: &Class) -> Value {
    let hist: serde_json::Map<String, Value> = BUCKETS
        .iter()
        .zip(c.histogram.iter())
        .map(|(k, n)| (k.to_string(), json!(n)))
        .collect();
    json!({
        "rank": rank,
        "op": c.op,
        "path": c.path,
        "folded_by": d.rule_names(c.folded_by),
        "calls": c.calls,
        "errors": c.errors,
        "no_reply": c.no_reply,
        "watches": c.watches,
        "first_ts": c.first.map(ts_secs),
        "last_ts": c.last.map(ts_secs),
        "v_m": c.latency.variance_to_mean().map(|v| round3(v / 1e3)),
        "latency_us": metric_json(&c.latency),
        "request_bytes": metric_json(&c.request_bytes),
        "reply_bytes": metric_json(&c.reply_bytes),
        "error_codes": c
            .error_names()
            .into_iter()
            .map(|(k, n)| (k, json!(n)))
            .collect::<serde_json::Map<String, Value>>(),
        "clients": counter_json(&d.clients_of(c), TOP),
        "sessions": counter_json(&d.sessions_of(c), TOP),
        "histogram": hist,
    })
}

fn counter_json(c: &impl TopValues, n: usize) -> Value {
    let top: Vec<Value> = c
        .top(n)
        .into_iter()
        .map(|(k, v)| json!({"value": k, "count": v}))
        .collect();
    json!({"distinct": c.distinct(), "other": c.other(), "top": top})
}

fn metric_json(m: &Metric) -> Value {
    json!({
        "count": m.count(),
        "total": round3(m.total()),
        "min": m.min().map(round3),
        "max": m.max().map(round3),
        "avg": m.mean().map(round3),
        "p95": m.quantile(0.95),
        "p99": m.quantile(0.99),
        "stddev": m.stddev().map(round3),
        "median": m.quantile(0.5),
    })
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

fn ts_secs(t: Timestamp) -> f64 {
    round3(t.0 as f64 / 1e3) / 1e6
}

fn order_name(o: OrderBy) -> &'static str {
    match o {
        OrderBy::Total => "total response time",
        OrderBy::Calls => "calls",
        OrderBy::Mean => "mean latency",
        OrderBy::P95 => "95th percentile latency",
        OrderBy::P99 => "99th percentile latency",
        OrderBy::Errors => "errors",
    }
}

fn rate(n: u64, span: f64) -> f64 {
    if span > 0.0 {
        n as f64 / span
    } else {
        0.0
    }
}

fn rate_str(r: f64) -> String {
    if r >= 1000.0 {
        shorten(r)
    } else {
        format!("{r:.2}")
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    }
}

fn pct(part: f64, whole: f64) -> String {
    format!("{:.1}%", share(part, whole))
}

fn pct_int(part: f64, whole: f64) -> String {
    format!("{:.0}", share(part, whole))
}

/// V/M of a latency metric, in milliseconds.
fn vm(m: &Metric) -> String {
    m.variance_to_mean()
        .map_or("-".into(), |v| format!("{:.2}", v / 1e3))
}

/// pt-query-digest's `shorten`: `%d` under 1000, else `%.2f` with k, M, G.
fn shorten(v: f64) -> String {
    let mut v = v;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

/// Bytes with binary units: `518`, `1.55k`, `2.10M`.
fn bytes(v: f64) -> String {
    let mut v = v;
    let mut unit = 0;
    const UNITS: [&str; 5] = ["", "k", "M", "G", "T"];
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

/// A title line padded with `_` to the report width.
fn title(o: &mut String, s: &str) {
    let n = s.chars().count();
    let _ = writeln!(o, "{s}{}", "_".repeat(LINE.saturating_sub(n)));
}

fn fmt_ts(t: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
        .map(|d| d.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_else(|| t.0.to_string())
}

fn range(a: Option<Timestamp>, b: Option<Timestamp>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!(
            "{} to {} ({:.3}s)",
            fmt_ts(a),
            fmt_ts(b),
            (b.0.saturating_sub(a.0)) as f64 / 1e9
        ),
        _ => "(no calls)".to_string(),
    }
}

fn plus(c: &impl TopValues) -> &'static str {
    if c.capped() {
        "+ (capped)"
    } else {
        ""
    }
}

fn top_list(c: &impl TopValues, n: usize) -> String {
    let mut v: Vec<String> = c
        .top(n)
        .into_iter()
        .map(|(k, n)| {
            let k = if k.is_empty() { "-" } else { k.as_str() };
            format!("{k}({n})")
        })
        .collect();
    let more = c.distinct().saturating_sub(n);
    if more > 0 {
        v.push(format!("… {more} more"));
    }
    if c.other() > 0 {
        v.push(format!("(other)({})", c.other()));
    }
    if v.is_empty() {
        "-".to_string()
    } else {
        v.join(" ")
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Time,
    Bytes,
}

fn unit_fmt(v: Option<f64>, u: Unit) -> String {
    match (v, u) {
        (None, _) => "-".to_string(),
        (Some(v), Unit::Time) => human_us(v),
        (Some(v), Unit::Bytes) => bytes(v),
    }
}

fn attr_header(o: &mut String, with_pct: bool) {
    let p = if with_pct { "pct " } else { "" };
    let q = if with_pct { "=== " } else { "" };
    let _ = writeln!(
        o,
        "# Attribute     {p}   total      min      max      avg      95%   stddev   median"
    );
    let _ = writeln!(
        o,
        "# ============= {q}======== ======== ======== ======== ======== ======== ========"
    );
}

fn attr_row(o: &mut String, name: &str, m: &Metric, u: Unit, whole: Option<&Metric>) {
    let p = whole.map_or(String::new(), |w| {
        format!("{:>3} ", pct_int(m.total(), w.total()))
    });
    let total = if m.count() == 0 {
        "-".to_string()
    } else {
        unit_fmt(Some(m.total()), u)
    };
    let _ = writeln!(
        o,
        "# {name:<13} {p}{total:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        unit_fmt(m.min(), u),
        unit_fmt(m.max(), u),
        unit_fmt(m.mean(), u),
        unit_fmt(m.quantile(0.95), u),
        unit_fmt(m.stddev(), u),
        unit_fmt(m.quantile(0.5), u),
    );
}

/// The election and quorum sections of the report.
trait EnsembleReport {
    fn elections_text(&self, o: &mut String);
    fn quorum_text(&self, o: &mut String);
    fn json(&self) -> (Value, Value);
}

impl EnsembleReport for EnsembleDigest {
    fn elections_text(&self, o: &mut String) {
        o.push('\n');
        title(o, "# Elections ");
        let rounds = self.tracker.summaries();
        if rounds.is_empty() {
            let _ = writeln!(o, "# None ({} election messages)", self.fle_messages);
            return;
        }
        let _ = writeln!(
            o,
            "# Round Kind     Start                      Duration Leader Epoch Participants"
        );
        let _ = writeln!(
            o,
            "# ===== ======== ========================== ======== ====== ===== ============"
        );
        for (i, r) in rounds.iter().enumerate() {
            let dur = r.end.0.saturating_sub(r.start.0) as f64 / 1e3;
            let _ = writeln!(
                o,
                "# {:>5} {:<8} {:<26} {:>8} {:>6} {:>5} {}{}",
                i + 1,
                r.kind,
                fmt_ts(r.start),
                human_us(dur),
                r.leader.map_or("-".into(), |l| l.to_string()),
                r.epoch.map_or("-".into(), |e| e.to_string()),
                join(&r.participants),
                if r.complete { "" } else { " (incomplete)" }
            );
        }
    }

    fn quorum_text(&self, o: &mut String) {
        let q = &self.quorum;
        o.push('\n');
        title(o, "# Quorum ");
        if q.dirs.is_empty() && q.undecodable == 0 {
            let _ = writeln!(o, "# None");
            return;
        }
        let _ = writeln!(o, "# Time range: {}", range(q.first, q.last));
        let _ = writeln!(
            o,
            "# Packets: {} ({} pings, not in the table), proposals: {}, commits: {}",
            q.packets, q.pings, q.proposals, q.commits
        );
        match q.latency_us() {
            Some((p50, p95, max)) => {
                let _ = writeln!(
                    o,
                    "# Proposal to commit: {} matched, p50 {}, p95 {}, max {}",
                    q.commit_latency.len(),
                    human_us(p50),
                    human_us(p95),
                    human_us(max)
                );
            }
            None => {
                let _ = writeln!(o, "# Proposal to commit: none matched");
            }
        }
        let _ = writeln!(
            o,
            "# Sync: {} snapshots ({} bytes), {} diffs, {} truncs sent",
            q.snaps,
            bytes(q.snapshot_bytes as f64),
            q.diffs,
            q.truncs
        );
        if q.auth + q.cut + q.undecodable > 0 {
            let _ = writeln!(
                o,
                "# Auth packets: {}, cut by gaps: {}, undecodable: {}",
                q.auth, q.cut, q.undecodable
            );
        }
        let _ = writeln!(o, "# Type               From leader From learner");
        let _ = writeln!(o, "# ================== =========== ============");
        let names: BTreeSet<&String> = q.from_leader.keys().chain(q.from_learner.keys()).collect();
        for n in names {
            let _ = writeln!(
                o,
                "# {:<18} {:>11} {:>12}",
                n,
                q.from_leader.get(n).copied().unwrap_or(0),
                q.from_learner.get(n).copied().unwrap_or(0)
            );
        }
        if !q.learners.is_empty() {
            let _ = writeln!(o, "# Learners:");
            for (addr, l) in &q.learners {
                let _ = writeln!(
                    o,
                    "#   {} {}{} -> leader {}{}",
                    if l.observer { "observer" } else { "follower" },
                    l.sid.map_or(String::new(), |s| format!("sid {s} ")),
                    addr,
                    l.leader_sid.map_or(String::new(), |s| format!("sid {s} ")),
                    l.leader
                );
            }
        }
        let _ = writeln!(o, "# Connections:");
        for (d, c) in &q.dirs {
            let types: Vec<String> = c.by_type.iter().map(|(t, n)| format!("{t}={n}")).collect();
            let _ = writeln!(
                o,
                "#   {}: {} pings, {} bytes{}{}",
                d.label(),
                c.pings,
                c.bytes,
                if types.is_empty() { "" } else { ", " },
                types.join(" ")
            );
        }
    }

    fn json(&self) -> (Value, Value) {
        let rounds: Vec<Value> = self
            .tracker
            .summaries()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "round": i + 1,
                    "kind": r.kind,
                    "start_ts": ts_secs(r.start),
                    "end_ts": ts_secs(r.end),
                    "duration_ms": round3(r.end.0.saturating_sub(r.start.0) as f64 / 1e6),
                    "leader": r.leader,
                    "epoch": r.epoch,
                    "zab_epoch": r.zab_epoch,
                    "participants": r.participants,
                    "looking": r.looking,
                    "complete": r.complete,
                })
            })
            .collect();
        let q = &self.quorum;
        let dirs: Vec<Value> = q
            .dirs
            .iter()
            .map(|(d, c)| {
                json!({
                    "src": d.src.to_string(),
                    "src_sid": d.src_sid,
                    "dst": d.dst.to_string(),
                    "dst_sid": d.dst_sid,
                    "from_leader": d.from_leader,
                    "pings": c.pings,
                    "bytes": c.bytes,
                    "by_type": c.by_type,
                })
            })
            .collect();
        let learners: Vec<Value> = q
            .learners
            .iter()
            .map(|(a, l)| {
                json!({
                    "addr": a.to_string(),
                    "sid": l.sid,
                    "observer": l.observer,
                    "leader": l.leader.to_string(),
                    "leader_sid": l.leader_sid,
                    "first_ts": ts_secs(l.first),
                })
            })
            .collect();
        let lat = q.latency_us();
        let quorum = json!({
            "first_ts": q.first.map(ts_secs),
            "last_ts": q.last.map(ts_secs),
            "packets": q.packets,
            "pings": q.pings,
            "from_leader": q.from_leader,
            "from_learner": q.from_learner,
            "proposals": q.proposals,
            "commits": q.commits,
            "commit_latency": {
                "matched": q.commit_latency.len(),
                "p50_us": lat.map(|l| round3(l.0)),
                "p95_us": lat.map(|l| round3(l.1)),
                "max_us": lat.map(|l| round3(l.2)),
            },
            "snapshots": q.snaps,
            "snapshot_bytes": q.snapshot_bytes,
            "diffs": q.diffs,
            "truncs": q.truncs,
            "auth": q.auth,
            "cut": q.cut,
            "undecodable": q.undecodable,
            "learners": learners,
            "connections": dirs,
        });
        let elections = json!({
            "messages": self.fle_messages,
            "rounds": rounds,
        });
        (elections, quorum)
    }
}

fn join(v: &[i64]) -> String {
    let s: Vec<String> = v.iter().map(i64::to_string).collect();
    if s.is_empty() {
        "-".into()
    } else {
        s.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortening() {
        assert_eq!(shorten(999.0), "999");
        assert_eq!(shorten(1550.0), "1.55k");
        assert_eq!(bytes(2048.0), "2.00k");
    }
}
