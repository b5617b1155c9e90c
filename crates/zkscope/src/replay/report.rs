//! The replay report, in the digest's vocabulary: operation × path class, captured vs
//! replayed calls, error codes, latency quantiles, notifications, the replayer's own lag, and
//! with `--compare` the answers that differ.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use zkscope_analysis::classes::{ClassOptions, Fold, PathClasses};
use zkscope_analysis::digest::Metric;
use zkscope_proto::client::{ErrCode, EventType, OpCode};

use super::engine::{Answer, Options, Outcome, SessionResult};
use super::plan::Plan;

/// One operation × path class.
#[derive(Debug, Serialize, Default)]
pub struct ClassRow {
    /// Operation name.
    pub op: String,
    /// Path class.
    pub path: String,
    /// Requests captured.
    pub captured_calls: u64,
    /// Requests sent to the target.
    pub replayed_calls: u64,
    /// Requests not sent.
    pub skipped: u64,
    /// Sent, never answered.
    pub no_reply: u64,
    /// Error codes of the captured replies.
    pub captured_errors: BTreeMap<String, u64>,
    /// Error codes of the target's replies.
    pub replayed_errors: BTreeMap<String, u64>,
    /// Replies whose error code differs from the captured one.
    pub differing: u64,
    /// Latency quantiles (ms).
    pub captured_p50_ms: Option<f64>,
    /// Latency quantiles (ms).
    pub captured_p99_ms: Option<f64>,
    /// Latency quantiles (ms).
    pub replayed_p50_ms: Option<f64>,
    /// Latency quantiles (ms).
    pub replayed_p99_ms: Option<f64>,
    /// replayed / captured.
    pub p50_ratio: Option<f64>,
    /// replayed / captured.
    pub p99_ratio: Option<f64>,
}

/// Error codes that differ, by class.
#[derive(Debug, Serialize)]
pub struct ErrDiff {
    /// Operation.
    pub op: String,
    /// Path class.
    pub path: String,
    /// Captured code name.
    pub captured: String,
    /// Replayed code name.
    pub replayed: String,
    /// How many.
    pub count: u64,
}

/// Notifications by event type and path class.
#[derive(Debug, Serialize, Default)]
pub struct EventRow {
    /// Event type.
    pub event: String,
    /// Path class.
    pub path: String,
    /// Captured.
    pub captured: u64,
    /// Received in the replay.
    pub replayed: u64,
    /// Captured but not received.
    pub missing: u64,
    /// Received but not captured.
    pub extra: u64,
}

/// An answer that differs between the two ensembles.
#[derive(Debug, Serialize)]
pub struct AnswerDiff {
    /// Operation.
    pub op: String,
    /// Path (as captured).
    pub path: String,
    /// What differs (`error`, `data`, `children`, `version`…).
    pub field: String,
    /// The `--to` ensemble's value.
    pub target: String,
    /// The `--compare` ensemble's value.
    pub compare: String,
}

/// A session that could not be replayed whole.
#[derive(Debug, Serialize)]
pub struct SessionError {
    /// Captured session id.
    pub session: Option<String>,
    /// What happened.
    pub error: String,
}

/// Distribution summary (ms).
#[derive(Debug, Serialize, Default)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Largest.
    pub max_ms: Option<f64>,
}

impl Quantiles {
    fn of(m: &Metric) -> Self {
        Quantiles {
            count: m.count(),
            p50_ms: m.quantile(0.5).map(us_to_ms),
            p99_ms: m.quantile(0.99).map(us_to_ms),
            max_ms: m.max().map(us_to_ms),
        }
    }
}

fn us_to_ms(us: f64) -> f64 {
    (us / 1e3 * 1000.0).round() / 1000.0
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The capture.
    pub source: String,
    /// Targets.
    pub targets: Vec<String>,
    /// `--compare` targets.
    pub compare: Option<Vec<String>>,
    /// Pace (null: as fast as possible).
    pub speed: Option<f64>,
    /// Writes re-sent.
    pub allow_writes: bool,
    /// Chroot.
    pub chroot: Option<String>,
    /// Sessions captured.
    pub sessions_captured: u64,
    /// Sessions connected to the target.
    pub sessions_replayed: u64,
    /// Sessions with a connection error (refused, lost…).
    pub sessions_failed: u64,
    /// What went wrong.
    pub session_errors: Vec<SessionError>,
    /// captured session id → replayed session id.
    pub session_map: BTreeMap<String, String>,
    /// captured sequential name → the target's (where they differ).
    pub sequential_names: BTreeMap<String, String>,
    /// Requests captured (pings excluded).
    pub requests_captured: u64,
    /// Requests sent.
    pub requests_sent: u64,
    /// Requests answered.
    pub requests_answered: u64,
    /// Sent, not answered.
    pub requests_no_reply: u64,
    /// Not sent, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Pings captured (replayed as captured, not in the classes).
    pub pings: u64,
    /// From the first to the last captured request (s).
    pub captured_secs: f64,
    /// From the first to the last request sent (s).
    pub replay_secs: f64,
    /// Per class.
    pub classes: Vec<ClassRow>,
    /// Error codes that differ.
    pub error_differences: Vec<ErrDiff>,
    /// Requests the target could not serve (UNIMPLEMENTED, MARSHALLINGERROR where the capture
    /// had another answer).
    pub unserved: Vec<ErrDiff>,
    /// Notifications.
    pub notifications: Vec<EventRow>,
    /// Notification totals.
    pub notifications_missing: u64,
    /// Notification totals.
    pub notifications_extra: u64,
    /// How late the replayer sent requests behind the requested pace.
    pub lag: Quantiles,
    /// Time spent waiting for the captured order: other sessions' replies, notifications.
    pub order_wait: Quantiles,
    /// Order waits that ran out of time.
    pub order_timeouts: u64,
    /// `--compare`: answers that differ.
    pub answer_differences: Option<Vec<AnswerDiff>>,
}

fn err_name(e: i32) -> String {
    ErrCode(e)
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| e.to_string())
}

fn op_name(op: OpCode) -> String {
    op.name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("op{}", op.0))
}

fn lossy(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if s.chars().count() > 64 {
        let mut t: String = s.chars().take(64).collect();
        t.push('…');
        t
    } else {
        s.into_owned()
    }
}

#[derive(Default)]
struct Acc {
    row: ClassRow,
    cap: Metric,
    rep: Metric,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(c), Some(r)) if c > 0.0 => Some(((r / c) * 100.0).round() / 100.0),
        _ => None,
    }
}

impl Report {
    /// Builds the report.
    pub fn new(
        plan: &Plan,
        results: &[SessionResult],
        names: &[(Vec<u8>, Vec<u8>)],
        opts: &Options,
        source: String,
    ) -> Self {
        let mut classes = PathClasses::new(ClassOptions {
            depth: 0,
            fold: Fold::All,
            user: Vec::new(),
        });
        let mut accs: BTreeMap<(String, String), Acc> = BTreeMap::new();
        let mut errdiff: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
        let mut unserved: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
        let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
        let mut events: BTreeMap<(String, String), EventRow> = BTreeMap::new();
        let mut lag = Metric::default();
        let mut order_wait = Metric::default();
        let mut answer_diffs: Vec<AnswerDiff> = Vec::new();
        let mut r = Report {
            source,
            targets: opts.targets.clone(),
            compare: opts.compare.clone(),
            speed: opts.speed,
            allow_writes: opts.allow_writes && opts.compare.is_none(),
            chroot: opts
                .chroot
                .as_ref()
                .map(|c| String::from_utf8_lossy(c).into_owned()),
            sessions_captured: plan.sessions.len() as u64,
            sessions_replayed: 0,
            sessions_failed: 0,
            session_errors: Vec::new(),
            session_map: BTreeMap::new(),
            sequential_names: BTreeMap::new(),
            requests_captured: 0,
            requests_sent: 0,
            requests_answered: 0,
            requests_no_reply: 0,
            skipped: BTreeMap::new(),
            pings: 0,
            captured_secs: 0.0,
            replay_secs: 0.0,
            classes: Vec::new(),
            error_differences: Vec::new(),
            unserved: Vec::new(),
            notifications: Vec::new(),
            notifications_missing: 0,
            notifications_extra: 0,
            lag: Quantiles::default(),
            order_wait: Quantiles::default(),
            order_timeouts: 0,
            answer_differences: None,
        };
        for (c, t) in names {
            r.sequential_names.insert(
                String::from_utf8_lossy(c).into_owned(),
                String::from_utf8_lossy(t).into_owned(),
            );
        }
        let (mut cap_first, mut cap_last) = (i64::MAX, i64::MIN);
        let (mut rep_first, mut rep_last) = (i64::MAX, i64::MIN);
        let empty = SessionResult::default();
        // Ephemeral owners are sessions of each ensemble: the captured session behind them
        // is what can be compared.
        let mut owners = Owners::default();
        for (k, (res, cap)) in results.iter().zip(&plan.sessions).enumerate() {
            let name = cap
                .id
                .map(|i| format!("the replay of session {i:#x}"))
                .unwrap_or_else(|| format!("the replay of captured session #{k}"));
            if let Some(id) = res.session_id {
                owners.target.insert(id, name.clone());
            }
            if let Some(id) = res.compare_session_id {
                owners.compare.insert(id, name);
            }
        }
        for (k, cap) in plan.sessions.iter().enumerate() {
            let res = results.get(k).unwrap_or(&empty);
            let cap_id = cap.id.map(|i| format!("{i:#x}"));
            if let Some(id) = res.session_id {
                r.sessions_replayed += 1;
                if let Some(c) = &cap_id {
                    r.session_map.insert(c.clone(), format!("{id:#x}"));
                }
            }
            if let Some(e) = &res.error {
                r.sessions_failed += 1;
                r.session_errors.push(SessionError {
                    session: cap_id.clone(),
                    error: e.clone(),
                });
            }
            r.order_timeouts += u64::from(res.order_timeouts);
            for (i, req) in cap.reqs.iter().enumerate() {
                if req.opcode == OpCode::PING {
                    r.pings += 1;
                    continue;
                }
                let def = Outcome::default();
                let out = res.outcomes.get(i).unwrap_or(&def);
                cap_first = cap_first.min(req.ts);
                cap_last = cap_last.max(req.ts);
                if out.sent {
                    rep_first = rep_first.min(out.sent_at_ns);
                    rep_last = rep_last.max(out.sent_at_ns);
                }
                let path = req.path.as_deref().unwrap_or_default();
                let class = if req.path.is_some() {
                    classes.class(path).path.to_string()
                } else {
                    String::new()
                };
                let op = op_name(req.opcode);
                let acc = accs
                    .entry((op.clone(), class.clone()))
                    .or_insert_with(|| Acc {
                        row: ClassRow {
                            op: op.clone(),
                            path: class.clone(),
                            ..ClassRow::default()
                        },
                        ..Acc::default()
                    });
                r.requests_captured += 1;
                acc.row.captured_calls += 1;
                if let Some(rep) = &req.reply {
                    *acc.row
                        .captured_errors
                        .entry(err_name(rep.err))
                        .or_default() += 1;
                    acc.cap.record_ns(rep.latency_ns);
                }
                if let Some(why) = out.skipped {
                    acc.row.skipped += 1;
                    *skipped.entry(why.text().to_string()).or_default() += 1;
                    continue;
                }
                if !out.sent {
                    continue;
                }
                r.requests_sent += 1;
                acc.row.replayed_calls += 1;
                lag.record_ns(out.lag_ns);
                order_wait.record_ns(out.order_wait_ns);
                let Some(got) = &out.reply else {
                    acc.row.no_reply += 1;
                    r.requests_no_reply += 1;
                    continue;
                };
                r.requests_answered += 1;
                *acc.row
                    .replayed_errors
                    .entry(err_name(got.err))
                    .or_default() += 1;
                acc.rep.record_ns(got.latency_ns);
                if let Some(rep) = req.reply.as_ref().filter(|c| c.err != got.err) {
                    acc.row.differing += 1;
                    let key = (
                        op.clone(),
                        class.clone(),
                        err_name(rep.err),
                        err_name(got.err),
                    );
                    if matches!(got.err, -5 | -6) {
                        *unserved.entry(key.clone()).or_default() += 1;
                    }
                    *errdiff.entry(key).or_default() += 1;
                }
                if let (Some(cmp), true) = (&res.compare, opts.compare.is_some()) {
                    if let Some(other) = cmp.get(i).and_then(|o| o.reply.as_ref()) {
                        diff_answers(
                            &op,
                            &String::from_utf8_lossy(path),
                            (got.err, got.answer.as_ref()),
                            (other.err, other.answer.as_ref()),
                            &owners,
                            &mut answer_diffs,
                        );
                    }
                }
            }
            // Notifications: multisets of (type, path) per session.
            let mut want: HashMap<(i32, &[u8]), i64> = HashMap::new();
            for e in &cap.events {
                *want.entry((e.event_type, &e.path)).or_default() += 1;
                let row = event_row(&mut events, &mut classes, e.event_type, &e.path);
                row.captured += 1;
            }
            for (t, p) in &res.events {
                let row = event_row(&mut events, &mut classes, *t, p);
                row.replayed += 1;
                match want.get_mut(&(*t, p.as_slice())) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => {
                        row.extra += 1;
                        r.notifications_extra += 1;
                    }
                }
            }
            for ((t, p), n) in want {
                if n > 0 {
                    let row = event_row(&mut events, &mut classes, t, p);
                    row.missing += n as u64;
                    r.notifications_missing += n as u64;
                }
            }
        }
        let span = |a: i64, b: i64| {
            if b >= a {
                ((b - a) as f64 / 1e6).round() / 1e3
            } else {
                0.0
            }
        };
        r.captured_secs = span(cap_first, cap_last);
        r.replay_secs = span(rep_first, rep_last);
        for (_, mut a) in accs {
            let cq = Quantiles::of(&a.cap);
            let rq = Quantiles::of(&a.rep);
            a.row.captured_p50_ms = cq.p50_ms;
            a.row.captured_p99_ms = cq.p99_ms;
            a.row.replayed_p50_ms = rq.p50_ms;
            a.row.replayed_p99_ms = rq.p99_ms;
            a.row.p50_ratio = ratio(cq.p50_ms, rq.p50_ms);
            a.row.p99_ratio = ratio(cq.p99_ms, rq.p99_ms);
            r.classes.push(a.row);
        }
        let to_rows = |m: BTreeMap<(String, String, String, String), u64>| {
            m.into_iter()
                .map(|((op, path, captured, replayed), count)| ErrDiff {
                    op,
                    path,
                    captured,
                    replayed,
                    count,
                })
                .collect()
        };
        r.error_differences = to_rows(errdiff);
        r.unserved = to_rows(unserved);
        r.skipped = skipped;
        r.notifications = events.into_values().collect();
        r.lag = Quantiles::of(&lag);
        r.order_wait = Quantiles::of(&order_wait);
        if opts.compare.is_some() {
            r.answer_differences = Some(answer_diffs);
        }
        r
    }

    /// True when something kept the replay from completing (a session not connected or cut).
    pub fn incomplete(&self) -> bool {
        self.sessions_failed > 0
    }

    /// The text form.
    pub fn text(&self) -> String {
        let mut o = String::new();
        let pace = match self.speed {
            Some(s) => format!("pace {s}x"),
            None => "as fast as possible".to_string(),
        };
        let _ = writeln!(
            o,
            "# zkscope replay of {} to {}{}",
            self.source,
            self.targets.join(","),
            match &self.compare {
                Some(c) => format!(" and {} (--compare, reads only)", c.join(",")),
                None => String::new(),
            }
        );
        let _ = writeln!(
            o,
            "# {pace}, {}{}",
            if self.allow_writes {
                "writes re-sent"
            } else {
                "reads only"
            },
            self.chroot
                .as_ref()
                .map(|c| format!(", chroot {c}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            o,
            "# Sessions: {} captured, {} replayed, {} with errors",
            self.sessions_captured, self.sessions_replayed, self.sessions_failed
        );
        const SHOWN: usize = 10;
        if self.session_errors.len() > SHOWN {
            let _ = writeln!(
                o,
                "#   (the first {SHOWN}; --format json lists all {})",
                self.session_errors.len()
            );
        }
        for e in self.session_errors.iter().take(SHOWN) {
            let _ = writeln!(
                o,
                "#   session {}: {}",
                e.session.as_deref().unwrap_or("-"),
                e.error
            );
        }
        let _ = writeln!(
            o,
            "# Requests: {} captured over {:.3}s, sent over {:.3}s",
            self.requests_captured, self.captured_secs, self.replay_secs
        );
        let _ = writeln!(
            o,
            "#   {} sent, {} answered, {} without reply; {} pings",
            self.requests_sent, self.requests_answered, self.requests_no_reply, self.pings
        );
        for (why, n) in &self.skipped {
            let _ = writeln!(o, "#   not sent ({why}): {n}");
        }
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "# Replayer lag behind the requested pace: p50 {} ms, p99 {} ms, max {} ms \
             (of which waiting for the captured order — other sessions' replies, \
             notifications: p99 {} ms; {} waits timed out)",
            ms(self.lag.p50_ms),
            ms(self.lag.p99_ms),
            ms(self.lag.max_ms),
            ms(self.order_wait.p99_ms),
            self.order_timeouts
        );
        let _ = writeln!(o);
        let _ = writeln!(o, "# Calls by operation and path class (latency in ms)");
        let _ = writeln!(
            o,
            "# {:<20} {:<32} {:>8} {:>8} {:>7} {:>8} {:>8} {:>6} {:>8} {:>8} {:>6}",
            "op",
            "path",
            "captured",
            "replayed",
            "differ",
            "p50 cap",
            "p50 rep",
            "ratio",
            "p99 cap",
            "p99 rep",
            "ratio"
        );
        for c in &self.classes {
            let _ = writeln!(
                o,
                "  {:<20} {:<32} {:>8} {:>8} {:>7} {:>8} {:>8} {:>6} {:>8} {:>8} {:>6}",
                c.op,
                if c.path.is_empty() { "-" } else { &c.path },
                c.captured_calls,
                c.replayed_calls,
                c.differing,
                ms(c.captured_p50_ms),
                ms(c.replayed_p50_ms),
                c.p50_ratio.map(|v| format!("{v:.2}")).unwrap_or("-".into()),
                ms(c.captured_p99_ms),
                ms(c.replayed_p99_ms),
                c.p99_ratio.map(|v| format!("{v:.2}")).unwrap_or("-".into()),
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "# Error codes that differ (captured → replayed)");
        if self.error_differences.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for d in &self.error_differences {
            let _ = writeln!(
                o,
                "  {} {}: {} → {} ×{}",
                d.op, d.path, d.captured, d.replayed, d.count
            );
        }
        let _ = writeln!(o);
        let _ = writeln!(o, "# Requests the target could not serve");
        if self.unserved.is_empty() {
            let _ = writeln!(o, "  none");
        }
        for d in &self.unserved {
            let _ = writeln!(o, "  {} {}: {} ×{}", d.op, d.path, d.replayed, d.count);
        }
        let _ = writeln!(o);
        let _ = writeln!(
            o,
            "# Notifications: {} missing, {} extra",
            self.notifications_missing, self.notifications_extra
        );
        for e in &self.notifications {
            let _ = writeln!(
                o,
                "  {} {}: captured {}, replayed {}, missing {}, extra {}",
                e.event, e.path, e.captured, e.replayed, e.missing, e.extra
            );
        }
        if let Some(diffs) = &self.answer_differences {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "# Answers that differ (--to vs --compare): {}",
                diffs.len()
            );
            for d in diffs {
                let _ = writeln!(
                    o,
                    "  {} {}: {} {} vs {}",
                    d.op, d.path, d.field, d.target, d.compare
                );
            }
        }
        o
    }
}

fn event_row<'m>(
    rows: &'m mut BTreeMap<(String, String), EventRow>,
    classes: &mut PathClasses,
    t: i32,
    path: &[u8],
) -> &'m mut EventRow {
    let name = EventType(t)
        .name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("event{t}"));
    let class = classes.class(path).path.to_string();
    rows.entry((name.clone(), class.clone()))
        .or_insert_with(|| EventRow {
            event: name,
            path: class,
            ..EventRow::default()
        })
}

/// Replayed session ids of each ensemble → the captured session they replay.
#[derive(Default)]
struct Owners {
    target: HashMap<i64, String>,
    compare: HashMap<i64, String>,
}

fn diff_answers(
    op: &str,
    path: &str,
    (err_a, a): (i32, Option<&Answer>),
    (err_b, b): (i32, Option<&Answer>),
    owners: &Owners,
    out: &mut Vec<AnswerDiff>,
) {
    let mut push = |field: &str, x: String, y: String| {
        out.push(AnswerDiff {
            op: op.to_string(),
            path: path.to_string(),
            field: field.to_string(),
            target: x,
            compare: y,
        })
    };
    if err_a != err_b {
        push("error", err_name(err_a), err_name(err_b));
        return;
    }
    let (Some(a), Some(b)) = (a, b) else { return };
    if a.data != b.data {
        let show = |d: &Option<Option<Vec<u8>>>| match d {
            Some(Some(v)) => format!("{:?}", lossy(v)),
            Some(None) => "null".to_string(),
            None => "-".to_string(),
        };
        push("data", show(&a.data), show(&b.data));
    }
    if a.children != b.children {
        let show = |c: &Option<Vec<Vec<u8>>>| match c {
            Some(v) => format!(
                "[{}]",
                v.iter().map(|x| lossy(x)).collect::<Vec<_>>().join(",")
            ),
            None => "-".to_string(),
        };
        push("children", show(&a.children), show(&b.children));
    }
    if let (Some(x), Some(y)) = (a.versions, b.versions) {
        let names = [
            "version",
            "cversion",
            "aversion",
            "dataLength",
            "numChildren",
        ];
        for ((n, p), q) in names.iter().zip(x).zip(y) {
            if p != q {
                push(n, p.to_string(), q.to_string());
            }
        }
    }
    let owner = |o: Option<i64>, map: &HashMap<i64, String>| match o {
        None => "-".to_string(),
        Some(0) => "persistent".to_string(),
        Some(id) => map
            .get(&id)
            .cloned()
            // a session of that ensemble's own clients: ids cannot be compared
            .unwrap_or_else(|| "ephemeral of another session".to_string()),
    };
    let (oa, ob) = (
        owner(a.owner, &owners.target),
        owner(b.owner, &owners.compare),
    );
    if oa != ob {
        push("ephemeralOwner", oa, ob);
    }
    if a.acl != b.acl {
        push("acl", "…".into(), "…".into());
    }
    if a.number != b.number {
        push(
            "number",
            format!("{:?}", a.number),
            format!("{:?}", b.number),
        );
    }
}
