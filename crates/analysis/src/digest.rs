//! The digest: a pt-query-digest-style report of ZooKeeper client traffic.
//!
//! [`Digest`] is a [`Consumer`] of client messages: it turns messages into [`Call`]s with a [`CallBuilder`]
//! and keeps, in bounded memory,
//!
//! - overall figures: time range, servers, totals, latency / request bytes / reply bytes
//!   distributions ([`Metric`]);
//! - request *classes* (operation + normalised path, sequential suffixes folded to `-N`,
//!   aggregation depth honoured), each with its metrics, top clients and sessions, error
//!   codes and a log10 latency histogram ([`Class`]);
//! - sessions (connects, reconnects, expirations, closes, negotiated timeouts), watches (set,
//!   fired) and four-letter words.
//!
//! Pings are counted apart and are not classes. Classes, clients and sessions are capped;
//! what does not fit is folded into `(other)` and counted.
//!
//! Memory: a class keeps its samples in [`LatencyStats`] (4 bytes a sample, a histogram only
//! past the point where it is smaller) and counts its clients and sessions by ids
//! ([`Tally`]) of values the digest keeps once.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::hash::Hash;
use std::net::SocketAddr;

use zkscope_capture::client::{Kind, Msg};
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_proto::client::{ErrCode, OpCode};

use crate::agg::{write_value, NO_REPLY, OTHER};
use crate::call::{Call, CallBuilder, CallKind};
use crate::classes::{ClassOptions, PathClasses, RuleSet};
use crate::hash::FastMap;
use crate::key::{GroupKey, PathNorm};
use crate::latency::LatencyStats;

/// Labels of the latency histogram buckets (log10, pt-query-digest's).
pub const BUCKETS: [&str; 8] = ["1us", "10us", "100us", "1ms", "10ms", "100ms", "1s", "10s+"];

/// A bound of the reported time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeBound {
    /// An absolute capture time.
    At(Timestamp),
    /// Nanoseconds after the first message.
    After(i64),
}

impl TimeBound {
    pub(crate) fn resolve(self, first: Timestamp) -> Timestamp {
        match self {
            TimeBound::At(t) => t,
            TimeBound::After(ns) => Timestamp(first.0.saturating_add(ns)),
        }
    }
}

/// What a [`Digest`] keeps.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Path normalisation of classes (sequential folding is normally on).
    pub paths: PathNorm,
    /// Path classes (pt-query-digest-like folding, user rules); replaces `paths` when set.
    pub classes: Option<ClassOptions>,
    /// Distinct classes kept; later ones fold into `(other)`.
    pub max_classes: usize,
    /// Distinct values (clients, sessions, paths, …) kept per counter; later ones fold into
    /// `(other)`.
    pub max_values: usize,
    /// Only calls that start at or after this.
    pub since: Option<TimeBound>,
    /// Only calls that start before this.
    pub until: Option<TimeBound>,
    /// Stop once a message arrives this long (ns, capture clock) after the first.
    pub duration_ns: Option<i64>,
    /// Connections whose state is kept by the call builder.
    pub max_conns: usize,
    /// Pings are a class too (otherwise only counted, in the header).
    pub include_pings: bool,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            paths: PathNorm {
                depth: 0,
                fold_sequential: true,
            },
            classes: None,
            max_classes: 10_000,
            max_values: 1_000,
            since: None,
            until: None,
            duration_ns: None,
            max_conns: 1 << 20,
            include_pings: false,
        }
    }
}

/// A distribution with exact count, sum, min, max and standard deviation, and quantiles from
/// [`LatencyStats`] (HDR, 3 significant digits).
#[derive(Debug, Clone, Default)]
pub struct Metric {
    dist: LatencyStats,
    sum: f64,
    sumsq: f64,
}

impl Metric {
    /// Records a latency in nanoseconds.
    pub fn record_ns(&mut self, ns: i64) {
        let us = ns.max(0) as f64 / 1e3;
        self.dist.record_ns(ns);
        self.sum += us;
        self.sumsq += us * us;
    }

    /// Records a size in bytes (kept as "microseconds" of the underlying histogram).
    pub fn record_bytes(&mut self, b: u64) {
        let ns = i64::try_from(b.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.dist.record_ns(ns);
        self.sum += b as f64;
        self.sumsq += (b as f64) * (b as f64);
    }

    /// Samples.
    pub fn count(&self) -> u64 {
        self.dist.count()
    }
    /// Sum (µs for latencies, bytes for sizes).
    pub fn total(&self) -> f64 {
        self.sum
    }
    /// Smallest sample.
    pub fn min(&self) -> Option<f64> {
        self.dist.min_ns().map(|v| v as f64 / 1e3)
    }
    /// Largest sample.
    pub fn max(&self) -> Option<f64> {
        self.dist.max_ns().map(|v| v as f64 / 1e3)
    }
    /// Mean.
    pub fn mean(&self) -> Option<f64> {
        let n = self.count();
        (n > 0).then(|| self.sum / n as f64)
    }
    /// Population standard deviation.
    pub fn stddev(&self) -> Option<f64> {
        let m = self.mean()?;
        let n = self.count() as f64;
        Some((self.sumsq / n - m * m).max(0.0).sqrt())
    }
    /// Variance-to-mean ratio (index of dispersion), in the metric's unit.
    pub fn variance_to_mean(&self) -> Option<f64> {
        let m = self.mean()?;
        let sd = self.stddev()?;
        Some(if m > 0.0 { sd * sd / m } else { 0.0 })
    }
    /// Quantile `q` (HDR's definition; exact for fewer than 64 samples).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.dist.quantile_us(q).map(|v| v as f64)
    }
}

/// A session id as reports show it: `0x…`, `-` before the handshake told it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub Option<i64>);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(s) => write!(f, "{s:#x}"),
            None => f.write_str("-"),
        }
    }
}

/// Counts per value, at most `cap` distinct values; the rest fold into `(other)`.
#[derive(Debug, Clone)]
pub struct Counter<K> {
    map: FastMap<K, u64>,
    /// Counts of values beyond the cap.
    pub other: u64,
}

impl<K> Default for Counter<K> {
    fn default() -> Self {
        Counter {
            map: FastMap::default(),
            other: 0,
        }
    }
}

impl<K: Hash + Eq + Display> Counter<K> {
    /// Adds `n` to `key` (made by `make` when new).
    pub fn add_with<Q>(&mut self, key: &Q, n: u64, cap: usize, make: impl FnOnce(&Q) -> K)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.map.get_mut(key) {
            *v += n;
        } else if self.map.len() < cap {
            self.map.insert(make(key), n);
        } else {
            self.other += n;
        }
    }

    /// Distinct values kept.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// True when values were folded into `(other)`.
    pub fn capped(&self) -> bool {
        self.other > 0
    }

    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.map.values().sum::<u64>() + self.other
    }

    /// The `n` largest values as text, by count descending then text.
    pub fn top(&self, n: usize) -> Vec<(String, u64)> {
        top_n(self.map.iter().map(|(k, c)| (k.to_string(), *c)), n)
    }
}

/// The `n` largest of `(text, count)` pairs, by count descending then text.
fn top_n(it: impl Iterator<Item = (String, u64)>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = it.collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// What a report lists of a counter: distinct values, the largest ones, what was folded.
/// Implemented by [`Counter`] and by a class's [`Tally`] seen through [`Digest::clients_of`] /
/// [`Digest::sessions_of`].
pub trait TopValues {
    /// Distinct values kept.
    fn distinct(&self) -> usize;
    /// Counts of values beyond the cap (`(other)`).
    fn other(&self) -> u64;
    /// The `n` largest values as text, by count descending then text.
    fn top(&self, n: usize) -> Vec<(String, u64)>;
    /// True when values were folded into `(other)`.
    fn capped(&self) -> bool {
        self.other() > 0
    }
}

impl<K: Hash + Eq + Display> TopValues for Counter<K> {
    fn distinct(&self) -> usize {
        Counter::distinct(self)
    }
    fn other(&self) -> u64 {
        self.other
    }
    fn top(&self, n: usize) -> Vec<(String, u64)> {
        Counter::top(self, n)
    }
}

/// Values kept once and numbered in order of first use (client addresses, sessions), so that
/// the counters of many classes hold 4-byte ids instead of the values.
#[derive(Debug, Clone)]
struct Interner<K> {
    ids: FastMap<K, u32>,
    values: Vec<K>,
}

impl<K> Default for Interner<K> {
    fn default() -> Self {
        Interner {
            ids: FastMap::default(),
            values: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Copy> Interner<K> {
    /// The id of `k`, if it has one.
    fn get(&self, k: &K) -> Option<u32> {
        self.ids.get(k).copied()
    }

    /// A new id for `k` (not known yet); `None` once 2^32 values are kept.
    fn add(&mut self, k: K) -> Option<u32> {
        let id = u32::try_from(self.values.len()).ok()?;
        self.ids.insert(k, id);
        self.values.push(k);
        Some(id)
    }
}

impl<K> Interner<K> {
    /// The value of an id.
    fn value(&self, id: u32) -> Option<&K> {
        self.values.get(id as usize)
    }
}

/// Counts per value, by the ids of values the digest keeps once; at most `cap` distinct values,
/// the rest fold into `(other)`. Counts are `u32` (8 bytes an entry) with a spill-over for the
/// (theoretical) values counted more than 4 billion times.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    map: FastMap<u32, u32>,
    /// Multiples of 2^32 of the counts that overflowed.
    carry: Vec<(u32, u64)>,
    /// Counts of values beyond the cap.
    pub other: u64,
}

impl Tally {
    /// Adds one to `k`, interning it in `names` when this tally is the first to keep it.
    fn add<K: Hash + Eq + Copy>(&mut self, names: &mut Interner<K>, k: K, cap: usize) {
        let id = names.get(&k);
        if let Some(id) = id {
            if let Some(v) = self.map.get_mut(&id) {
                match v.checked_add(1) {
                    Some(n) => *v = n,
                    None => {
                        *v = 0;
                        match self.carry.iter_mut().find(|(i, _)| *i == id) {
                            Some((_, c)) => *c += 1 << 32,
                            None => self.carry.push((id, 1 << 32)),
                        }
                    }
                }
                return;
            }
        }
        if self.map.len() >= cap {
            self.other += 1;
            return;
        }
        match id.or_else(|| names.add(k)) {
            Some(id) => {
                self.map.insert(id, 1);
            }
            None => self.other += 1,
        }
    }

    /// Distinct values kept.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// True when values were folded into `(other)`.
    pub fn capped(&self) -> bool {
        self.other > 0
    }

    fn counts(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.map.iter().map(|(&id, &n)| {
            let carry = self
                .carry
                .iter()
                .find(|(i, _)| *i == id)
                .map_or(0, |(_, c)| *c);
            (id, carry + u64::from(n))
        })
    }
}

/// A [`Tally`] with the values its ids stand for.
#[derive(Debug, Clone, Copy)]
pub struct Named<'a, K> {
    tally: &'a Tally,
    names: &'a Interner<K>,
}

impl<K: Display> TopValues for Named<'_, K> {
    fn distinct(&self) -> usize {
        self.tally.distinct()
    }
    fn other(&self) -> u64 {
        self.tally.other
    }
    fn top(&self, n: usize) -> Vec<(String, u64)> {
        let named = self.tally.counts().filter_map(|(id, c)| {
            // Every id of a tally comes from its interner.
            Some((self.names.value(id)?.to_string(), c))
        });
        top_n(named, n)
    }
}

impl<K: Hash + Eq + Display + Copy> Counter<K> {
    /// Adds `n` to `key`.
    pub fn add(&mut self, key: K, n: u64, cap: usize) {
        self.add_with(&key, n, cap, |k| *k);
    }
}

impl Counter<Box<str>> {
    /// Adds `n` to a text value.
    pub fn add_str(&mut self, key: &str, n: u64, cap: usize) {
        self.add_with(key, n, cap, |k: &str| Box::from(k));
    }
}

/// One request class: operation + normalised path.
#[derive(Debug, Clone, Default)]
pub struct Class {
    /// Operation name (`getData`).
    pub op: String,
    /// Normalised path (empty when the operation has none).
    pub path: String,
    /// The folding rules that produced `path` (path classes only).
    pub folded_by: RuleSet,
    /// Order of first appearance.
    pub seq: u64,
    /// Calls.
    pub calls: u64,
    /// Calls answered with an error.
    pub errors: u64,
    /// Calls without a captured reply.
    pub no_reply: u64,
    /// Latency (µs).
    pub latency: Metric,
    /// Request frame length (bytes).
    pub request_bytes: Metric,
    /// Reply frame length (bytes, answered calls).
    pub reply_bytes: Metric,
    /// Requests with the watch flag set.
    pub watches: u64,
    /// First call start.
    pub first: Option<Timestamp>,
    /// Last call end.
    pub last: Option<Timestamp>,
    /// Calls per client `ip:port` (see [`Digest::clients_of`]).
    pub clients: Tally,
    /// Calls per session (see [`Digest::sessions_of`]).
    pub sessions: Tally,
    /// Calls per reply error code (`None`: no reply).
    pub errs: BTreeMap<Option<ErrCode>, u64>,
    /// Latency histogram, see [`BUCKETS`].
    pub histogram: [u64; 8],
}

/// The bucket of a latency: `<10us` → 0, `<100us` → 1, …, `>=10s` → 7.
pub fn bucket(ns: i64) -> usize {
    let mut us = ns.max(0) / 1000;
    let mut i = 0;
    while us >= 10 && i < 7 {
        us /= 10;
        i += 1;
    }
    i
}

/// The values behind the ids of the classes' tallies.
#[derive(Debug, Default)]
struct Names {
    clients: Interner<SocketAddr>,
    sessions: Interner<SessionId>,
}

impl Class {
    fn add(&mut self, c: &Call<'_>, cap: usize, names: &mut Names) {
        self.calls += 1;
        self.first = Some(self.first.map_or(c.start, |t| t.min(c.start)));
        self.last = Some(self.last.map_or(c.end, |t| t.max(c.end)));
        self.request_bytes.record_bytes(u64::from(c.request_size));
        match c.err {
            None => self.no_reply += 1,
            Some(e) if e.is_error() => self.errors += 1,
            Some(_) => {}
        }
        if c.err.is_some() {
            self.reply_bytes.record_bytes(c.reply_size);
        }
        if let Some(l) = c.latency_ns {
            self.latency.record_ns(l);
            if let Some(b) = self.histogram.get_mut(bucket(l)) {
                *b += 1;
            }
        }
        if c.watch == Some(true) {
            self.watches += 1;
        }
        self.clients.add(&mut names.clients, c.conn.client, cap);
        self.sessions
            .add(&mut names.sessions, SessionId(c.conn.session), cap);
        // Bounded: error codes are a small set of i32 values the server sends.
        if self.errs.len() < 256 || self.errs.contains_key(&c.err) {
            *self.errs.entry(c.err).or_default() += 1;
        }
    }

    /// The error codes by name (`OK`, `NONODE`, `(no reply)`), most frequent first.
    pub fn error_names(&self) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self
            .errs
            .iter()
            .map(|(e, n)| {
                let name = match e {
                    Some(e) if !e.is_captured() => "unknown".to_string(),
                    Some(e) => e.to_string(),
                    None => NO_REPLY.to_string(),
                };
                (name, *n)
            })
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }

    /// Label of the class: `getData /a/b`.
    pub fn label(&self) -> String {
        if self.path.is_empty() {
            self.op.clone()
        } else {
            format!("{} {}", self.op, self.path)
        }
    }
}

/// Distinct keys of the small maps (timeouts, event types): the wire could send any value.
const SMALL_MAP: usize = 64;

/// Adds one to `k`, unless the map is full and `k` is new (then returns false).
fn bump<K: Ord>(m: &mut BTreeMap<K, u64>, k: K, cap: usize) -> bool {
    if m.len() >= cap && !m.contains_key(&k) {
        return false;
    }
    *m.entry(k).or_default() += 1;
    true
}

/// Sessions section.
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    /// Handshakes asking for a new session.
    pub connects: u64,
    /// Handshakes resuming a session (ConnectRequest with a non-zero session id).
    pub reconnects: u64,
    /// Handshakes answered with timeout 0 (session expired / invalid).
    pub expirations: u64,
    /// Handshakes without a captured answer.
    pub unanswered: u64,
    /// closeSession requests.
    pub closes: u64,
    /// Connect latency.
    pub connect_latency: Metric,
    /// Negotiated session timeouts (ms) of successful handshakes.
    pub timeouts: BTreeMap<i32, u64>,
    /// Handshakes whose timeout was beyond the distinct values kept.
    pub timeouts_other: u64,
    /// Distinct sessions seen in calls.
    pub seen: Counter<SessionId>,
}

/// Watches section.
#[derive(Debug, Clone, Default)]
pub struct Watches {
    /// Requests with the watch flag set, per operation.
    pub set_by_op: BTreeMap<String, u64>,
    /// Requests with the watch flag set, per path (normalised).
    pub set_by_path: Counter<Box<str>>,
    /// addWatch requests.
    pub add_watch: u64,
    /// setWatches / setWatches2 requests (re-arming after a reconnect).
    pub set_watches: u64,
    /// Watch events, per event type.
    pub fired_by_type: BTreeMap<String, u64>,
    /// Watch events of types beyond the distinct values kept.
    pub fired_other_types: u64,
    /// Watch events, per path (normalised).
    pub fired_by_path: Counter<Box<str>>,
}

/// Four-letter words.
#[derive(Debug, Clone, Default)]
pub struct FourLetter {
    /// Per command: exchanges, reply bytes.
    pub commands: BTreeMap<String, (u64, u64)>,
    /// Latency of answered commands.
    pub latency: Metric,
}

/// The digest of a capture. See the module documentation.
#[derive(Debug)]
pub struct Digest {
    cfg: DigestConfig,
    builder: CallBuilder,
    /// Class key (`op path`) → index in `class_list` (= its `seq`).
    classes: FastMap<Box<str>, usize>,
    class_list: Vec<Class>,
    names: Names,
    other: Class,
    /// Calls folded into the `(other)` class.
    pub folded_calls: u64,
    next_seq: u64,
    first_msg: Option<Timestamp>,
    last_msg: Option<Timestamp>,
    /// First and last call in the window.
    pub first: Option<Timestamp>,
    /// See [`Digest::first`].
    pub last: Option<Timestamp>,
    /// Servers (`ip:port`) by calls.
    pub servers: Counter<SocketAddr>,
    /// Clients (`ip:port`) by calls.
    pub clients: Counter<SocketAddr>,
    /// Latency of all classified calls.
    pub latency: Metric,
    /// Request bytes of all classified calls.
    pub request_bytes: Metric,
    /// Reply bytes of all answered classified calls.
    pub reply_bytes: Metric,
    /// Calls in classes.
    pub calls: u64,
    /// … answered with an error.
    pub errors: u64,
    /// … without a reply.
    pub no_reply: u64,
    /// Pings (not classes).
    pub pings: u64,
    /// Calls outside `--since/--until`.
    pub outside_window: u64,
    /// Sessions section.
    pub sessions: Sessions,
    /// Watches section.
    pub watches: Watches,
    /// Four-letter words section.
    pub four_letter: FourLetter,
    stopped: bool,
    buf: String,
    pending_timeouts: HashMap<u64, i32>,
    path_classes: Option<PathClasses>,
}

impl Digest {
    /// An empty digest.
    pub fn new(cfg: DigestConfig) -> Self {
        let cfg_classes = cfg.classes.clone().map(PathClasses::new);
        Digest {
            builder: CallBuilder::new(cfg.max_conns),
            cfg,
            classes: FastMap::default(),
            class_list: Vec::new(),
            names: Names::default(),
            other: Class {
                op: OTHER.to_string(),
                ..Class::default()
            },
            folded_calls: 0,
            next_seq: 0,
            first_msg: None,
            last_msg: None,
            first: None,
            last: None,
            servers: Counter::default(),
            clients: Counter::default(),
            latency: Metric::default(),
            request_bytes: Metric::default(),
            reply_bytes: Metric::default(),
            calls: 0,
            errors: 0,
            no_reply: 0,
            pings: 0,
            outside_window: 0,
            sessions: Sessions::default(),
            watches: Watches::default(),
            four_letter: FourLetter::default(),
            stopped: false,
            buf: String::new(),
            pending_timeouts: HashMap::new(),
            path_classes: cfg_classes,
        }
    }

    /// The rules of a class's [`Class::folded_by`], user rules spelt out.
    pub fn rule_names(&self, rules: RuleSet) -> Vec<String> {
        match &self.path_classes {
            Some(pc) => pc.rule_names(rules),
            None => rules.names().map(str::to_string).collect(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DigestConfig {
        &self.cfg
    }

    /// True once `--duration` elapsed.
    pub fn done(&self) -> bool {
        self.stopped
    }

    /// Reports the handshakes still unanswered (call at the end of the input).
    pub fn finish(&mut self) {
        let end = self.last_msg.unwrap_or(Timestamp::ZERO);
        let mut builder = std::mem::take(&mut self.builder);
        builder.finish(end, &mut |c| self.take(c, None));
        self.builder = builder;
    }

    /// The classes (the `(other)` class not included), in first-seen order.
    pub fn classes(&self) -> Vec<&Class> {
        self.class_list.iter().collect()
    }

    /// Calls of a class (of this digest) per client `ip:port`.
    pub fn clients_of<'a>(&'a self, c: &'a Class) -> Named<'a, SocketAddr> {
        Named {
            tally: &c.clients,
            names: &self.names.clients,
        }
    }

    /// Calls of a class (of this digest) per session.
    pub fn sessions_of<'a>(&'a self, c: &'a Class) -> Named<'a, SessionId> {
        Named {
            tally: &c.sessions,
            names: &self.names.sessions,
        }
    }

    /// The `(other)` class, when classes were folded.
    pub fn other_class(&self) -> Option<&Class> {
        (self.folded_calls > 0).then_some(&self.other)
    }

    /// Wall span of the window in seconds (first call start to last call end).
    pub fn span_secs(&self) -> f64 {
        match (self.first, self.last) {
            (Some(a), Some(b)) => (b.0.saturating_sub(a.0)) as f64 / 1e9,
            _ => 0.0,
        }
    }

    fn in_window(&self, t: Timestamp) -> bool {
        let Some(first) = self.first_msg else {
            return true;
        };
        if self.cfg.since.is_some_and(|b| t < b.resolve(first)) {
            return false;
        }
        self.cfg.until.is_none_or(|b| t < b.resolve(first))
    }

    fn take(&mut self, c: &Call<'_>, timeout: Option<i32>) {
        if !self.in_window(c.start) {
            self.outside_window += 1;
            return;
        }
        let cap = self.cfg.max_values;
        match c.kind {
            CallKind::Request(OpCode::PING) if !self.cfg.include_pings => {
                self.pings += 1;
                return;
            }
            CallKind::Connect { session_requested } => {
                if session_requested != 0 {
                    self.sessions.reconnects += 1;
                } else {
                    self.sessions.connects += 1;
                }
                match (c.err, timeout) {
                    (None, _) => self.sessions.unanswered += 1,
                    // the answer was cut before its session and timeout
                    (Some(e), _) if !e.is_captured() => {}
                    (Some(_), Some(t)) if t <= 0 => self.sessions.expirations += 1,
                    (Some(e), _) if e.is_error() => self.sessions.expirations += 1,
                    (Some(_), Some(t)) => {
                        if !bump(&mut self.sessions.timeouts, t, SMALL_MAP) {
                            self.sessions.timeouts_other += 1;
                        }
                    }
                    (Some(_), None) => {}
                }
                if let Some(l) = c.latency_ns {
                    self.sessions.connect_latency.record_ns(l);
                }
                return;
            }
            CallKind::Event(e) => {
                let known = match e.name() {
                    Some(n) => self.watches.fired_by_type.get_mut(n),
                    None => None,
                };
                if let Some(n) = known {
                    *n += 1;
                } else {
                    let name = e.name().map_or_else(|| e.0.to_string(), str::to_string);
                    if !bump(&mut self.watches.fired_by_type, name, SMALL_MAP) {
                        self.watches.fired_other_types += 1;
                    }
                }
                self.buf.clear();
                match (&mut self.path_classes, c.path) {
                    (Some(pc), Some(p)) => self.buf.push_str(pc.class(p).path),
                    (None, Some(p)) => self.cfg.paths.write(&mut self.buf, p),
                    _ => {}
                }
                self.watches.fired_by_path.add_str(&self.buf, 1, cap);
                return;
            }
            CallKind::FourLetter(cmd) => {
                let e = self
                    .four_letter
                    .commands
                    .entry(cmd.to_string())
                    .or_default();
                e.0 += 1;
                e.1 += c.reply_size;
                if let Some(l) = c.latency_ns {
                    self.four_letter.latency.record_ns(l);
                }
                return;
            }
            CallKind::Request(op) => {
                if op == OpCode::CLOSE_SESSION {
                    self.sessions.closes += 1;
                } else if op == OpCode::ADD_WATCH {
                    self.watches.add_watch += 1;
                } else if op == OpCode::SET_WATCHES || op == OpCode::SET_WATCHES2 {
                    self.watches.set_watches += 1;
                }
            }
        }
        // A classified request.
        self.first = Some(self.first.map_or(c.start, |t| t.min(c.start)));
        self.last = Some(self.last.map_or(c.end, |t| t.max(c.end)));
        self.calls += 1;
        match c.err {
            None => self.no_reply += 1,
            Some(e) if e.is_error() => self.errors += 1,
            Some(_) => {}
        }
        if let Some(l) = c.latency_ns {
            self.latency.record_ns(l);
        }
        self.request_bytes.record_bytes(u64::from(c.request_size));
        if c.err.is_some() {
            self.reply_bytes.record_bytes(c.reply_size);
        }
        self.servers.add(c.conn.server, 1, cap);
        self.clients.add(c.conn.client, 1, cap);
        if let Some(s) = c.conn.session {
            self.sessions.seen.add(SessionId(Some(s)), 1, cap);
        }
        let buf = &mut self.buf;
        // Class key: op, a space, path.
        buf.clear();
        write_value(buf, GroupKey::Op, PathNorm::default(), c);
        let op_len = buf.len();
        buf.push(' ');
        let mut folded_by = RuleSet::default();
        match (&mut self.path_classes, c.path) {
            (Some(pc), Some(p)) => {
                let class = pc.class(p);
                buf.push_str(class.path);
                folded_by = class.rules;
            }
            _ => write_value(buf, GroupKey::Path, self.cfg.paths, c),
        }
        if c.watch == Some(true) {
            let op = buf.get(..op_len).unwrap_or("");
            match self.watches.set_by_op.get_mut(op) {
                Some(n) => *n += 1,
                None => {
                    self.watches.set_by_op.insert(op.to_string(), 1);
                }
            }
            let path = buf.get(op_len + 1..).unwrap_or("");
            self.watches.set_by_path.add_str(path, 1, cap);
        }
        let names = &mut self.names;
        let known = self.classes.get(buf.as_str()).copied();
        if let Some(cl) = known.and_then(|i| self.class_list.get_mut(i)) {
            cl.add(c, cap, names);
        } else if self.class_list.len() < self.cfg.max_classes {
            let mut cl = Class {
                op: buf.get(..op_len).unwrap_or("").to_string(),
                path: buf.get(op_len + 1..).unwrap_or("").to_string(),
                seq: self.next_seq,
                folded_by,
                ..Class::default()
            };
            self.next_seq += 1;
            cl.add(c, cap, names);
            self.classes
                .insert(buf.as_str().into(), self.class_list.len());
            self.class_list.push(cl);
        } else {
            self.folded_calls += 1;
            self.other.add(c, cap, names);
        }
    }
}

impl Consumer for Digest {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
    fn done(&self) -> bool {
        Digest::done(self)
    }
}

impl Digest {
    /// One decoded client message.
    pub fn message(&mut self, m: &Msg<'_>) {
        if self.stopped {
            return;
        }
        let first = *self.first_msg.get_or_insert(m.ts);
        if let Some(d) = self.cfg.duration_ns {
            if m.ts.0.saturating_sub(first.0) >= d {
                self.stopped = true;
                return;
            }
        }
        self.last_msg = Some(self.last_msg.map_or(m.ts, |t| t.max(m.ts)));
        let timeout = match &m.kind {
            Kind::ConnectResponse(r) => Some(r.timeout),
            _ => None,
        };
        if let Some(t) = timeout {
            // Bounded: one entry, consumed by the call this message makes.
            self.pending_timeouts.insert(m.conn.id, t);
        }
        let mut builder = std::mem::take(&mut self.builder);
        builder.message(m, &mut |c| {
            let t = match c.kind {
                CallKind::Connect { .. } if c.err.is_some() => {
                    self.pending_timeouts.remove(&c.conn.id)
                }
                _ => None,
            };
            self.take(c, t);
        });
        self.builder = builder;
        self.pending_timeouts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log10() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(9_999), 0);
        assert_eq!(bucket(10_000), 1);
        assert_eq!(bucket(999_999), 2);
        assert_eq!(bucket(1_000_000), 3);
        assert_eq!(bucket(50_000_000), 4);
        assert_eq!(bucket(999_000_000), 5);
        assert_eq!(bucket(1_000_000_000), 6);
        assert_eq!(bucket(10_000_000_000), 7);
        assert_eq!(bucket(i64::MAX), 7);
        assert_eq!(bucket(-3), 0);
    }

    #[test]
    fn metric_figures() {
        let mut m = Metric::default();
        for b in [10u64, 20, 30, 40] {
            m.record_bytes(b);
        }
        assert_eq!(m.count(), 4);
        assert_eq!(m.total(), 100.0);
        assert_eq!(m.min(), Some(10.0));
        assert_eq!(m.max(), Some(40.0));
        assert_eq!(m.mean(), Some(25.0));
        assert_eq!(m.quantile(0.5), Some(20.0));
        assert_eq!(m.quantile(0.95), Some(40.0));
        let sd = m.stddev().unwrap();
        assert!((sd - 125f64.sqrt()).abs() < 1e-9);
        assert!((m.variance_to_mean().unwrap() - 5.0).abs() < 1e-9);
        let mut l = Metric::default();
        l.record_ns(1_500_000);
        assert_eq!(l.total(), 1500.0);
    }

    fn handshake(d: &mut Digest, id: u64, requested: i64, timeout: i32, t: i64) {
        use zkscope_capture::client::ConnInfo;
        use zkscope_proto::client::{ConnectRequest, ConnectResponse};
        let conn = ConnInfo {
            id,
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.0.2:2181".parse().unwrap(),
            session: None,
        };
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: 30_000,
            session_id: requested,
            passwd: None,
            read_only: None,
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: if timeout > 0 { 0x42 } else { 0 },
            passwd: None,
            read_only: None,
        };
        let msg = |ts: i64, kind| Msg {
            ts: Timestamp(ts),
            conn: &conn,
            size: 44,
            kind,
            error: None,
            frame: &[],
            cut: false,
        };
        d.message(&msg(t, Kind::ConnectRequest(req)));
        d.message(&msg(t + 1000, Kind::ConnectResponse(resp)));
    }

    #[test]
    fn sessions_count_connects_reconnects_and_expirations() {
        let mut d = Digest::new(DigestConfig::default());
        handshake(&mut d, 1, 0, 10_000, 1_000_000);
        handshake(&mut d, 2, 0x42, 10_000, 2_000_000);
        handshake(&mut d, 3, 0x43, 0, 3_000_000);
        d.finish();
        let s = &d.sessions;
        assert_eq!((s.connects, s.reconnects, s.expirations), (1, 2, 1));
        assert_eq!(s.timeouts.get(&10_000), Some(&2));
        assert_eq!(s.connect_latency.count(), 3);
        assert_eq!(d.calls, 0, "handshakes are not classes");
    }

    #[test]
    fn tallies_share_values_and_fold_beyond_the_cap() {
        let mut names: Interner<SessionId> = Interner::default();
        let (mut a, mut b) = (Tally::default(), Tally::default());
        for s in [1, 2, 1, 3, 1] {
            a.add(&mut names, SessionId(Some(s)), 2);
        }
        b.add(&mut names, SessionId(Some(3)), 2);
        b.add(&mut names, SessionId(None), 2);
        let top = |t: &Tally, names: &Interner<SessionId>| Named { tally: t, names }.top(5);
        assert_eq!(
            top(&a, &names),
            vec![("0x1".to_string(), 3), ("0x2".to_string(), 1)]
        );
        assert_eq!(a.other, 1);
        assert!(a.capped());
        // Session 3 was first kept by `b`; `a` folded it without keeping it.
        assert_eq!(names.values.len(), 4);
        assert_eq!(
            top(&b, &names),
            vec![("-".to_string(), 1), ("0x3".to_string(), 1)]
        );
        // Counts past u32::MAX carry over.
        let id = names.get(&SessionId(Some(1))).unwrap();
        if let Some(v) = a.map.get_mut(&id) {
            *v = u32::MAX - 1;
        }
        for _ in 0..3 {
            a.add(&mut names, SessionId(Some(1)), 2);
        }
        assert_eq!(
            top(&a, &names)[0],
            ("0x1".to_string(), u64::from(u32::MAX) + 2)
        );
    }

    #[test]
    fn counters_fold_beyond_the_cap() {
        let mut c: Counter<Box<str>> = Counter::default();
        c.add_str("a", 3, 2);
        c.add_str("b", 5, 2);
        c.add_str("c", 1, 2);
        c.add_str("a", 1, 2);
        assert_eq!(c.top(5), vec![("b".to_string(), 5), ("a".to_string(), 4)]);
        assert_eq!(c.other, 1);
        assert!(c.capped());
        assert_eq!(c.total(), 10);
    }
}
