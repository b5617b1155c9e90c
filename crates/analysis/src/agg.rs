//! Grouping calls by keys, with counts and latency distributions per group.

use std::sync::Arc;

use zkscope_capture::pipeline::{OrderClock, OrderKey, Shard};

use crate::hash::{FastIndexMap, FastMap};
use std::fmt::Write as _;

use zkscope_capture::client::Msg;
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_proto::client::OpCode;

use crate::call::{Call, CallBuilder, CallKind};
use crate::classes::{ClassOptions, PathClasses};
use crate::digest::TimeBound;
use crate::key::{push_display, push_lossy, GroupKey, PathNorm, UnknownKey, SEP};
use crate::latency::{ns_to_us, LatencyStats};

/// The value of every key of the row that gathers groups beyond the cap.
pub const OTHER: &str = "(other)";

/// The error key of calls without a reply.
pub const NO_REPLY: &str = "(no reply)";

/// Which calls are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter {
    /// Pings.
    pub pings: bool,
    /// closeSession requests.
    pub close: bool,
    /// Connect handshakes.
    pub connects: bool,
    /// Watch notifications (one-sided calls of op `notification`).
    pub events: bool,
    /// Four-letter words.
    pub four_letter: bool,
    /// Requests whose reply was not captured.
    pub unanswered: bool,
}

impl Default for Filter {
    /// Every request (pings, closes and handshakes included) and four-letter word; no events.
    fn default() -> Self {
        Filter {
            pings: true,
            close: true,
            connects: true,
            events: false,
            four_letter: true,
            unanswered: true,
        }
    }
}

impl Filter {
    /// Whether `c` is recorded.
    pub fn accepts(&self, c: &Call<'_>) -> bool {
        let kind_ok = match c.kind {
            CallKind::Request(OpCode::PING) => self.pings,
            CallKind::Request(OpCode::CLOSE_SESSION) => self.close,
            CallKind::Request(_) => true,
            CallKind::Connect { .. } => self.connects,
            CallKind::Event(_) => self.events,
            CallKind::FourLetter(_) => self.four_letter,
        };
        kind_ok && (self.unanswered || c.err.is_some())
    }
}

/// What an [`Aggregator`] groups by and keeps.
#[derive(Debug, Clone)]
pub struct Config {
    /// Group keys, in column order (none: one row for everything).
    pub keys: Vec<GroupKey>,
    /// Path normalisation.
    pub paths: PathNorm,
    /// Path classes (pt-query-digest-like folding, user rules); replaces `paths` when set.
    pub classes: Option<ClassOptions>,
    /// Distinct groups kept; calls of later groups are folded into one `(other)` row.
    pub max_groups: usize,
    /// Keep latency distributions.
    pub latency: bool,
    /// Count calls slower than this (nanoseconds).
    pub slow_ns: Option<i64>,
    /// Which calls are recorded.
    pub filter: Filter,
    /// Stop after this many calls.
    pub limit: Option<u64>,
    /// Stop once a call completes this long (nanoseconds, capture clock) after the first
    /// message.
    pub duration_ns: Option<i64>,
    /// Connections whose state (auth identity, pending handshake) is kept.
    pub max_conns: usize,
    /// Only calls that start at or after this.
    pub since: Option<TimeBound>,
    /// Only calls that start before this.
    pub until: Option<TimeBound>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            keys: vec![GroupKey::Type],
            paths: PathNorm::default(),
            classes: None,
            max_groups: 100_000,
            latency: true,
            slow_ns: None,
            filter: Filter::default(),
            limit: None,
            duration_ns: None,
            max_conns: 1 << 20,
            since: None,
            until: None,
        }
    }
}

/// Counters and the latency distribution of one group.
#[derive(Debug, Clone, Default)]
pub struct Group {
    /// Calls.
    pub count: u64,
    /// Calls answered with an error (not `OK`).
    pub errors: u64,
    /// Calls without a captured reply.
    pub no_reply: u64,
    /// Calls slower than the `slow` threshold.
    pub slow: u64,
    /// Latencies of the answered calls (empty unless [`Config::latency`]).
    pub latency: LatencyStats,
    /// Order of creation (ties in sorts keep first-seen order).
    pub seq: u64,
    /// Where it was first seen in the whole capture, for a table fed one shard of it
    /// ([`GroupTable::set_order_clock`]).
    pub first: OrderKey,
}

impl Group {
    fn add(&mut self, c: &Call<'_>, latency: bool, slow_ns: Option<i64>) {
        self.count += 1;
        match c.err {
            None => self.no_reply += 1,
            Some(e) if e.is_error() => self.errors += 1,
            Some(_) => {}
        }
        if let Some(l) = c.latency_ns {
            if latency {
                self.latency.record_ns(l);
            }
            if slow_ns.is_some_and(|s| l > s) {
                self.slow += 1;
            }
        }
    }

    /// Adds another group's counts and samples.
    pub fn merge(&mut self, o: &Group) {
        self.count += o.count;
        self.errors += o.errors;
        self.no_reply += o.no_reply;
        self.slow += o.slow;
        self.latency.merge(&o.latency);
    }

    /// The figures a table shows.
    pub fn summary(&self) -> Summary {
        let l = &self.latency;
        let [p50, p95, p99, p999] = l.quantiles_us([0.5, 0.95, 0.99, 0.999]);
        Summary {
            count: self.count,
            errors: self.errors,
            no_reply: self.no_reply,
            slow: self.slow,
            samples: l.count(),
            avg_us: l.mean_us(),
            p50_us: p50,
            p95_us: p95,
            p99_us: p99,
            p999_us: p999,
            max_us: l.max_ns().map(ns_to_us),
        }
    }
}

/// A group's figures (latencies in microseconds; `None` without samples).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    /// Calls.
    pub count: u64,
    /// Calls answered with an error.
    pub errors: u64,
    /// Calls without a captured reply.
    pub no_reply: u64,
    /// Calls slower than the threshold.
    pub slow: u64,
    /// Latency samples (answered calls).
    pub samples: u64,
    /// Exact mean.
    pub avg_us: Option<f64>,
    /// Median.
    pub p50_us: Option<u64>,
    /// 95th percentile.
    pub p95_us: Option<u64>,
    /// 99th percentile.
    pub p99_us: Option<u64>,
    /// 99.9th percentile.
    pub p999_us: Option<u64>,
    /// Exact maximum.
    pub max_us: Option<u64>,
}

/// A column of a table, for sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    /// Calls.
    Count,
    /// Calls answered with an error.
    Errors,
    /// Calls without a reply.
    NoReply,
    /// Calls slower than the threshold.
    Slow,
    /// Mean latency.
    Avg,
    /// Median latency.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest latency.
    Max,
    /// The i-th group key.
    Key(usize),
}

impl Column {
    /// Parses a column name (`count`, `errors`, `no_reply`, `slow`, `avg`, `p50`, `p95`,
    /// `p99`, `p999`, `max`, or one of `keys`; `_us` suffixes are accepted).
    pub fn parse(s: &str, keys: &[GroupKey]) -> Result<Column, UnknownKey> {
        let l = s.trim().to_ascii_lowercase();
        let l = l.strip_suffix("_us").unwrap_or(&l);
        Ok(match l {
            "count" | "calls" => Column::Count,
            "errors" => Column::Errors,
            "no_reply" | "no-reply" => Column::NoReply,
            "slow" => Column::Slow,
            "avg" | "mean" => Column::Avg,
            "p50" | "median" => Column::P50,
            "p95" => Column::P95,
            "p99" => Column::P99,
            "p999" | "p99.9" => Column::P999,
            "max" => Column::Max,
            _ => {
                let k: GroupKey = l.parse()?;
                match keys.iter().position(|&x| x == k) {
                    Some(i) => Column::Key(i),
                    None => return Err(UnknownKey(format!("{s} (not a --group-by key)"))),
                }
            }
        })
    }

    fn metric(self, s: &Summary) -> Option<f64> {
        match self {
            Column::Count => Some(s.count as f64),
            Column::Errors => Some(s.errors as f64),
            Column::NoReply => Some(s.no_reply as f64),
            Column::Slow => Some(s.slow as f64),
            Column::Avg => s.avg_us,
            Column::P50 => s.p50_us.map(|v| v as f64),
            Column::P95 => s.p95_us.map(|v| v as f64),
            Column::P99 => s.p99_us.map(|v| v as f64),
            Column::P999 => s.p999_us.map(|v| v as f64),
            Column::Max => s.max_us.map(|v| v as f64),
            Column::Key(_) => None,
        }
    }
}

/// One row of a table.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    /// The key values, in key order (empty string: the call had none, e.g. no path).
    pub values: Vec<&'a str>,
    /// The group.
    pub group: &'a Group,
    /// Its figures.
    pub summary: Summary,
    /// The `(other)` row.
    pub other: bool,
}

/// Sorts rows by a column: numbers descending (rows without a value last), keys ascending;
/// ties keep first-seen order.
pub fn sort_rows(rows: &mut [Row<'_>], by: Column) {
    // Rows are large: sorting small keys and permuting once beats moving rows at every step
    // (thousands of groups). `sort_by_cached_key` keeps ties in order, and seq breaks them.
    match by {
        Column::Key(i) => rows.sort_by_cached_key(|r| (r.values.get(i).copied(), r.group.seq)),
        _ => rows.sort_by_cached_key(|r| {
            let v = by.metric(&r.summary);
            // descending by value, rows without one last
            (
                v.is_none(),
                std::cmp::Reverse(v.map_or(0, total_order)),
                r.group.seq,
            )
        }),
    }
}

/// An integer ordered as `f64::total_cmp` orders the float.
fn total_order(x: f64) -> i64 {
    let b = x.to_bits() as i64;
    b ^ (((b >> 63) as u64) >> 1) as i64
}

/// [`GroupTable`]'s raw-path cache entry for a path whose calls go to the `(other)` row.
const FOLDED: u32 = u32::MAX;
/// Raw paths the [`GroupTable`] remembers (about 100 bytes each).
const RAW_CACHE_MAX: usize = 65_536;

/// Groups calls by keys. Memory is bounded by [`Config::max_groups`].
#[derive(Debug, Clone)]
pub struct GroupTable {
    keys: Vec<GroupKey>,
    paths: PathNorm,
    classes: Option<PathClasses>,
    max_groups: usize,
    latency: bool,
    slow_ns: Option<i64>,
    groups: FastIndexMap<Box<str>, Group>,
    /// Tables grouped by path alone: raw path bytes to their group's index in `groups`
    /// ([`FOLDED`]: the `(other)` row), so that a path seen before costs one lookup, not a
    /// fold and a second lookup. Bounded by [`RAW_CACHE_MAX`]; cleared when indices change.
    raw: FastMap<Box<[u8]>, u32>,
    other: Group,
    /// Calls folded into the `(other)` row.
    pub folded: u64,
    buf: String,
    next_seq: u64,
    order: Option<Arc<OrderClock>>,
}

impl GroupTable {
    /// An empty table.
    pub fn new(cfg: &Config) -> Self {
        GroupTable {
            keys: cfg.keys.clone(),
            paths: cfg.paths,
            classes: cfg.classes.clone().map(PathClasses::new),
            max_groups: cfg.max_groups,
            latency: cfg.latency,
            slow_ns: cfg.slow_ns,
            groups: FastIndexMap::default(),
            raw: FastMap::default(),
            other: Group::default(),
            folded: 0,
            buf: String::with_capacity(256),
            next_seq: 0,
            order: None,
        }
    }

    /// An empty table with the same settings (the next window of a windowed table).
    pub fn empty_like(&self) -> Self {
        GroupTable {
            keys: self.keys.clone(),
            paths: self.paths,
            // same rules, fresh cache (a window's paths refold in microseconds)
            classes: self
                .classes
                .as_ref()
                .map(|c| PathClasses::new(c.options().clone())),
            max_groups: self.max_groups,
            latency: self.latency,
            slow_ns: self.slow_ns,
            groups: FastIndexMap::default(),
            raw: FastMap::default(),
            other: Group::default(),
            folded: 0,
            buf: String::with_capacity(256),
            next_seq: 0,
            order: None,
        }
    }

    /// The group keys.
    pub fn keys(&self) -> &[GroupKey] {
        &self.keys
    }

    /// Writes the composite key of `c` into `buf`.
    fn write_key(&mut self, c: &Call<'_>) {
        let out = &mut self.buf;
        out.clear();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(SEP);
            }
            match (&mut self.classes, k, c.path) {
                (Some(pc), GroupKey::Path, Some(p)) => out.push_str(pc.class(p).path),
                _ => write_value(out, *k, self.paths, c),
            }
        }
    }

    /// Adds a call to its group.
    pub fn record(&mut self, c: &Call<'_>) {
        let by_path = match (self.keys.as_slice(), c.path) {
            ([GroupKey::Path], Some(p)) => Some(p),
            _ => None,
        };
        let (latency, slow) = (self.latency, self.slow_ns);
        if let Some(&i) = by_path.and_then(|p| self.raw.get(p)) {
            match self.groups.get_index_mut(i as usize) {
                Some((_, g)) => g.add(c, latency, slow),
                None => self.other.add(c, latency, slow),
            }
            if i == FOLDED {
                self.folded += 1;
            }
            return;
        }
        self.write_key(c);
        let i = if let Some((i, _, g)) = self.groups.get_full_mut(self.buf.as_str()) {
            g.add(c, latency, slow);
            i as u32
        } else if self.groups.len() < self.max_groups {
            let mut g = Group {
                seq: self.next_seq,
                first: self
                    .order
                    .as_ref()
                    .map_or_else(OrderKey::default, |o| o.key(c.conn.id)),
                ..Group::default()
            };
            self.next_seq += 1;
            g.add(c, latency, slow);
            self.groups.insert_full(self.buf.as_str().into(), g).0 as u32
        } else {
            self.folded += 1;
            self.other.add(c, latency, slow);
            FOLDED
        };
        if let Some(p) = by_path {
            if self.raw.len() < RAW_CACHE_MAX {
                self.raw.insert(p.into(), i);
            }
        }
    }

    /// Records, for each new group, where it falls in the whole capture (see
    /// [`zkscope_capture::pipeline::Shard`]): tables fed shards of a capture then merge
    /// ([`GroupTable::merge`]) into the table of the whole.
    pub fn set_order_clock(&mut self, clock: Arc<OrderClock>) {
        self.order = Some(clock);
    }

    /// Merges tables fed disjoint shards of one capture, each with an order clock, into the
    /// table one fed the whole capture holds: the same groups in the same first-seen order,
    /// the same `(other)` row. `None` when a part folded calls into its own `(other)` row:
    /// a group among the first [`Config::max_groups`] of the whole may come late in a shard,
    /// so those calls cannot be told apart.
    pub fn merge(mut parts: Vec<GroupTable>) -> Option<GroupTable> {
        if parts.iter().any(|p| p.folded > 0) {
            return None;
        }
        let mut t = parts.pop()?;
        for p in parts {
            for (k, g) in p.groups {
                match t.groups.get_mut(&k) {
                    Some(mine) => {
                        mine.merge(&g);
                        mine.first = mine.first.min(g.first);
                    }
                    None => {
                        t.groups.insert(k, g);
                    }
                }
            }
            t.other.merge(&p.other);
            t.folded += p.folded;
        }
        let mut order: Vec<(OrderKey, Box<str>)> =
            t.groups.iter().map(|(k, g)| (g.first, k.clone())).collect();
        order.sort_unstable();
        for (i, (_, k)) in order.iter().enumerate() {
            if i < t.max_groups {
                if let Some(g) = t.groups.get_mut(k) {
                    g.seq = i as u64;
                }
            } else if let Some(g) = t.groups.swap_remove(k) {
                t.folded += g.count;
                t.other.merge(&g);
            }
        }
        t.next_seq = t.groups.len() as u64;
        t.raw.clear();
        Some(t)
    }

    /// Distinct groups (the `(other)` row not included).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.folded == 0
    }

    /// The rows, in first-seen order (the `(other)` row not included).
    pub fn rows(&self) -> Vec<Row<'_>> {
        let n = self.keys.len();
        let mut rows: Vec<Row<'_>> = self
            .groups
            .iter()
            .map(|(k, g)| {
                let mut values: Vec<&str> = if n == 0 {
                    Vec::new()
                } else if n == 1 {
                    vec![&**k]
                } else {
                    k.split(SEP).collect()
                };
                values.resize(n, "");
                Row {
                    values,
                    group: g,
                    summary: g.summary(),
                    other: false,
                }
            })
            .collect();
        rows.sort_by_key(|r| r.group.seq);
        rows
    }

    /// The row of the calls folded beyond [`Config::max_groups`], if any.
    pub fn other_row(&self) -> Option<Row<'_>> {
        (self.folded > 0).then(|| Row {
            values: vec![OTHER; self.keys.len()],
            group: &self.other,
            summary: self.other.summary(),
            other: true,
        })
    }

    /// Every call in one group.
    pub fn total(&self) -> Group {
        let mut t = self.other.clone();
        for g in self.groups.values() {
            t.merge(g);
        }
        t
    }
}

/// Appends the value of key `k` for call `c`.
pub fn write_value(out: &mut String, k: GroupKey, paths: PathNorm, c: &Call<'_>) {
    match k {
        GroupKey::Path => {
            if let Some(p) = c.path {
                paths.write(out, p);
            }
        }
        GroupKey::Type => out.push_str(c.kind.type_name()),
        GroupKey::Op => match c.kind {
            CallKind::Request(op) => match op.name() {
                Some(n) => out.push_str(n),
                None => {
                    let _ = write!(out, "{}", op.0);
                }
            },
            CallKind::Connect { .. } => out.push_str("connect"),
            CallKind::Event(_) => out.push_str("notification"),
            CallKind::FourLetter(cmd) => out.push_str(cmd),
        },
        GroupKey::Client => push_display(out, c.conn.client),
        GroupKey::ClientIp => push_display(out, c.conn.client.ip()),
        GroupKey::Session => {
            if let Some(s) = c.conn.session {
                let _ = write!(out, "{s:#x}");
            }
        }
        GroupKey::Auth => push_lossy(out, c.auth.as_bytes()),
        GroupKey::Server => push_display(out, c.conn.server),
        GroupKey::Error => match c.err {
            Some(e) if !e.is_captured() => out.push_str("unknown"),
            Some(e) => match e.name() {
                Some(n) => out.push_str(n),
                None => {
                    let _ = write!(out, "{}", e.0);
                }
            },
            None => out.push_str(NO_REPLY),
        },
    }
}

/// A [`Consumer`] that turns client messages into calls and groups them: the engine of
/// `zkscope count` and `zkscope latency`. Sans-I/O, clocked by capture timestamps.
#[derive(Debug)]
pub struct Aggregator {
    calls: CallBuilder,
    table: GroupTable,
    filter: Filter,
    limit: Option<u64>,
    duration_ns: Option<i64>,
    first_ts: Option<Timestamp>,
    last_ts: Option<Timestamp>,
    recorded: u64,
    stopped: bool,
    window: (Option<TimeBound>, Option<TimeBound>),
    outside_window: u64,
    kinds: Kinds,
    order: Option<Arc<OrderClock>>,
}

/// The recorded calls by kind, and the pings the filter left out: the totals every command
/// states the same way (requests never include handshakes; pings only when asked).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    /// Requests (pings among them when they are recorded).
    pub requests: u64,
    /// Pings among `requests`.
    pub pings: u64,
    /// Connect handshakes.
    pub connects: u64,
    /// Four-letter words.
    pub four_letter_words: u64,
    /// Watch notifications.
    pub events: u64,
    /// Pings not recorded (the filter leaves them out).
    pub pings_left_out: u64,
}

impl Kinds {
    /// Adds the counts of another part of the same capture.
    pub fn add(&mut self, o: &Kinds) {
        self.requests += o.requests;
        self.pings += o.pings;
        self.connects += o.connects;
        self.four_letter_words += o.four_letter_words;
        self.events += o.events;
        self.pings_left_out += o.pings_left_out;
    }
}

impl Aggregator {
    /// The recorded calls by kind.
    pub fn kinds(&self) -> Kinds {
        self.kinds
    }

    /// Calls left out by `since`/`until`.
    pub fn outside_window(&self) -> u64 {
        self.outside_window
    }

    /// An aggregator with its configuration.
    pub fn new(cfg: &Config) -> Self {
        Aggregator {
            calls: CallBuilder::new(cfg.max_conns),
            table: GroupTable::new(cfg),
            filter: cfg.filter,
            limit: cfg.limit,
            duration_ns: cfg.duration_ns,
            window: (cfg.since, cfg.until),
            outside_window: 0,
            kinds: Kinds::default(),
            first_ts: None,
            last_ts: None,
            recorded: 0,
            stopped: false,
            order: None,
        }
    }

    /// True once the call limit or the duration was reached: later calls are ignored.
    pub fn done(&self) -> bool {
        self.stopped
    }

    /// Calls recorded.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The table.
    pub fn table(&self) -> &GroupTable {
        &self.table
    }

    /// The call builder's counters.
    pub fn calls(&self) -> &CallBuilder {
        &self.calls
    }

    /// Capture time of the first and last messages seen.
    pub fn time_range(&self) -> Option<(Timestamp, Timestamp)> {
        Some((self.first_ts?, self.last_ts?))
    }

    /// Records the handshakes still unanswered at the end of the input.
    pub fn finish(&mut self) {
        let end = self.last_ts.unwrap_or(Timestamp::ZERO);
        let Aggregator {
            calls,
            table,
            filter,
            limit,
            duration_ns,
            first_ts,
            recorded,
            stopped,
            window,
            outside_window,
            kinds,
            ..
        } = self;
        let mut st = State {
            table,
            filter,
            limit: *limit,
            duration_ns: *duration_ns,
            first_ts: *first_ts,
            recorded,
            stopped,
            window: *window,
            outside_window,
            kinds,
        };
        calls.finish(end, &mut |c| st.take(c));
    }
}

struct State<'s> {
    table: &'s mut GroupTable,
    filter: &'s Filter,
    limit: Option<u64>,
    duration_ns: Option<i64>,
    first_ts: Option<Timestamp>,
    recorded: &'s mut u64,
    stopped: &'s mut bool,
    window: (Option<TimeBound>, Option<TimeBound>),
    outside_window: &'s mut u64,
    kinds: &'s mut Kinds,
}

impl State<'_> {
    fn take(&mut self, c: &Call<'_>) {
        if *self.stopped {
            return;
        }
        if !self.filter.accepts(c) {
            if c.kind.is_ping() {
                self.kinds.pings_left_out += 1;
            }
            return;
        }
        if let Some(first) = self.first_ts {
            let (since, until) = self.window;
            if since.is_some_and(|b| c.start < b.resolve(first))
                || until.is_some_and(|b| c.start >= b.resolve(first))
            {
                *self.outside_window += 1;
                return;
            }
        }
        if let (Some(d), Some(first)) = (self.duration_ns, self.first_ts) {
            if c.end.0.saturating_sub(first.0) >= d {
                *self.stopped = true;
                return;
            }
        }
        self.table.record(c);
        *self.recorded += 1;
        let k = &mut *self.kinds;
        match c.kind {
            CallKind::Request(_) => {
                k.requests += 1;
                k.pings += u64::from(c.kind.is_ping());
            }
            CallKind::Connect { .. } => k.connects += 1,
            CallKind::FourLetter(_) => k.four_letter_words += 1,
            CallKind::Event(_) => k.events += 1,
        }
        if self.limit.is_some_and(|n| *self.recorded >= n) {
            *self.stopped = true;
        }
    }
}

/// Shards of a file run on several cores (`count`/`latency --threads`). Exact without a call
/// limit, a duration or a time window (they need the whole capture's first message), which
/// the callers do not shard; not mergeable once a shard reaches `max_groups`.
impl Shard for Aggregator {
    fn set_order_clock(&mut self, clock: Arc<OrderClock>) {
        self.table.set_order_clock(clock.clone());
        self.order = Some(clock);
    }

    fn merge(mut parts: Vec<Self>) -> Option<Self> {
        for p in &mut parts {
            // Handshakes still unanswered, as the whole capture's run records them after
            // its end: in the order connections appeared.
            if let Some(o) = &p.order {
                o.at(OrderClock::END, OrderClock::CONNECTIONS);
            }
            p.finish();
        }
        let mut merged = parts.pop()?;
        let mut tables = Vec::with_capacity(parts.len() + 1);
        for p in parts {
            merged.calls.conns_evicted += p.calls.conns_evicted;
            merged.calls.unpaired_replies += p.calls.unpaired_replies;
            merged.first_ts = min_ts(merged.first_ts, p.first_ts);
            merged.last_ts = merged.last_ts.max(p.last_ts);
            merged.recorded += p.recorded;
            merged.outside_window += p.outside_window;
            merged.kinds.add(&p.kinds);
            merged.stopped |= p.stopped;
            tables.push(p.table);
        }
        let empty = merged.table.empty_like();
        tables.push(std::mem::replace(&mut merged.table, empty));
        merged.table = GroupTable::merge(tables)?;
        merged.table.order = None;
        merged.order = None;
        Some(merged)
    }
}

fn min_ts(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Consumer for Aggregator {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
    fn done(&self) -> bool {
        Aggregator::done(self)
    }
}

impl Aggregator {
    /// One decoded client message.
    pub fn message(&mut self, m: &Msg<'_>) {
        if self.stopped {
            return;
        }
        self.first_ts.get_or_insert(m.ts);
        self.last_ts = Some(self.last_ts.map_or(m.ts, |t| t.max(m.ts)));
        let Aggregator {
            calls,
            table,
            filter,
            limit,
            duration_ns,
            first_ts,
            recorded,
            stopped,
            window,
            outside_window,
            kinds,
            ..
        } = self;
        let mut st = State {
            table,
            filter,
            limit: *limit,
            duration_ns: *duration_ns,
            first_ts: *first_ts,
            recorded,
            stopped,
            window: *window,
            outside_window,
            kinds,
        };
        calls.message(m, &mut |c| st.take(c));
    }
}
