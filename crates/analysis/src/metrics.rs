//! Prometheus metrics of decoded ZooKeeper traffic (the `prometheus-client` crate).
//!
//! Names follow Prometheus' rules: prefix `zkscope_`, base units (`_seconds`, `_bytes`),
//! `_total` on counters; no summaries and no lifetime minimum or maximum (histograms
//! aggregate across a fleet). Every label has a bounded set of values:
//!
//! | metric | labels |
//! |---|---|
//! | `zkscope_requests_total` | `op` (camelCase, as in JSON lines: `getData`, `connect`, `unknown`), `result` (`ok`, an API or system error name such as `NONODE` or `CONNECTIONLOSS`, `noreply`) |
//! | `zkscope_replies_total` | `op`, `result` (replies whose request was not captured have `op="unknown"`) |
//! | `zkscope_request_bytes_total`, `zkscope_reply_bytes_total` | `op` |
//! | `zkscope_request_duration_seconds` (histogram, 50 µs … 10 s) | `op` |
//! | `zkscope_watches_set_total` | `type`: `data`, `exist`, `child`, `persistent`, `persistent_recursive` (setWatches counts each path) |
//! | `zkscope_watches_fired_total` | `type`: the event (`NodeDataChanged`, …) |
//! | `zkscope_sessions_opened_total`, `zkscope_sessions_reconnected_total`, `zkscope_sessions_expired_total`, `zkscope_sessions_closed_total` | – |
//! | `zkscope_connections` (gauge) | – |
//! | `zkscope_four_letter_words_total` | `command` |
//! | `zkscope_auth_attempts_total` | `scheme` (`digest`, `ip`, `x509`, `sasl`, `world`, `super`, `other`), `result` (never the identity) |
//! | `zkscope_namespace_requests_total`, `zkscope_namespace_request_bytes_total` | `namespace` (the path cut to `namespace_depth` components, for the first `max_namespaces` seen; the rest `other`), `kind` (`read`/`write`) |
//! | `zkscope_client_requests_total` (only with `per_client`) | `client` (IP, the first `max_clients`; the rest `other`) |
//! | `zkscope_elections_total` | `kind`: `election` (a leader elected), `rejoin` (a restarted server finding the leader), `other` |
//! | `zkscope_quorum_proposals_total`, `zkscope_quorum_commits_total`, `zkscope_quorum_proposal_commit_seconds`, `zkscope_election_duration_seconds`, `zkscope_quorum_leader` (sid, −1 unknown) | – |
//! | `zkscope_capture_packets_total`, `zkscope_capture_packets_dropped_total` (kernel), `zkscope_capture_packets_interface_dropped_total`, `zkscope_decode_errors_total`, `zkscope_tcp_gaps_total`, `zkscope_tcp_lost_bytes_total`, `zkscope_resync_skipped_bytes_total`, `zkscope_capture_up` | – |
//!
//! When several servers are watched ([`MetricsConfig::server_label`]), the request, reply,
//! byte and duration families carry a `server` label (`ip:port`, the first
//! `max_servers`; the rest `other`).
//!
//! [`Metrics`] holds the registry (encode it from any thread); a [`Recorder`] updates it
//! from the capture thread, caching each series' handle so that a message costs no
//! allocation once its series exist.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use zkscope_capture::client::{Kind, Msg};
use zkscope_proto::client::{AddWatchMode, ErrCode, KeeperState, OpCode, RequestBody};

use crate::call::{Call, CallKind};
use crate::hash::FastMap;
use crate::key::PathNorm;

/// Upper bounds of the request latency buckets in seconds: ZooKeeper answers reads from
/// memory in tens of microseconds on a quiet server, writes in milliseconds (fsync), and a
/// stalled server in seconds.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the election duration buckets in seconds.
pub const ELECTION_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The OpenMetrics content type (what [`Metrics::encode`] writes).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The classic Prometheus text content type (what [`Metrics::encode_text`] writes).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Cardinality options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Path components in the `namespace` label (1 = ZooKeeper's top-level namespace).
    pub namespace_depth: usize,
    /// Namespaces with their own series; later ones are `other`.
    pub max_namespaces: usize,
    /// Per-client series (`zkscope_client_requests_total{client}`).
    pub per_client: bool,
    /// Clients with their own series; later ones are `other`.
    pub max_clients: usize,
    /// Add a `server` label (several ZooKeeper servers watched on one host).
    pub server_label: bool,
    /// Servers with their own label value; later ones are `other`.
    pub max_servers: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            namespace_depth: 1,
            max_namespaces: 20,
            per_client: false,
            max_clients: 100,
            server_label: false,
            max_servers: 16,
        }
    }
}

type Labels = Vec<(&'static str, String)>;
type HistFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

fn election_histogram() -> Histogram {
    Histogram::new(ELECTION_BUCKETS)
}

/// The registry, shareable between threads.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// The exposition in OpenMetrics text (ends with `# EOF`).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// The exposition in the classic Prometheus text format 0.0.4.
    pub fn encode_text(&self) -> String {
        openmetrics_to_text(&self.encode())
    }
}

/// Converts OpenMetrics text (as this crate's encoder writes it) into the classic text
/// format 0.0.4: counters are declared under their `_total` sample name, `# UNIT` and
/// `# EOF` go, `info` and `unknown` become `gauge` and `untyped`.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut types: BTreeMap<&str, &str> = BTreeMap::new();
    for l in om.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            if let Some((name, t)) = rest.split_once(' ') {
                types.insert(name, t);
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for l in om.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = l
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| l.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((kw, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let t = types.get(name).copied().unwrap_or("");
            out.push_str(kw);
            out.push_str(name);
            match t {
                "counter" => out.push_str("_total"),
                "info" => out.push_str("_info"),
                _ => {}
            }
            out.push(' ');
            if kw == "# TYPE " {
                out.push_str(match tail {
                    "info" => "gauge",
                    "unknown" | "stateset" | "gaugehistogram" => "untyped",
                    t => t,
                });
            } else {
                out.push_str(tail);
            }
            out.push('\n');
            continue;
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// A 64-bit total out of a 32-bit counter that wraps (libpcap's `ps_recv`/`ps_drop`/
/// `ps_ifdrop` on Linux are `u_int` sums of the kernel's counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wrap32 {
    last: Option<u32>,
    total: u64,
}

impl Wrap32 {
    /// Takes a new reading and returns the total so far. Between two readings the counter is
    /// assumed to have wrapped at most once (libpcap is read every few seconds; 2³² drops
    /// take far longer).
    pub fn update(&mut self, raw: u32) -> u64 {
        let delta = match self.last {
            None => u64::from(raw),
            Some(l) => u64::from(raw.wrapping_sub(l)),
        };
        self.last = Some(raw);
        self.total = self.total.saturating_add(delta);
        self.total
    }

    /// The total so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Absolute capture and decoder totals, as the capture loop knows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureTotals {
    /// Packets read.
    pub packets: u64,
    /// libpcap's `ps_drop` as read (32 bits, wraps).
    pub kernel_dropped_raw: u32,
    /// libpcap's `ps_ifdrop` as read (32 bits, wraps).
    pub interface_dropped_raw: u32,
    /// Frames that did not decode, bad lengths and partial frames.
    pub decode_errors: u64,
    /// TCP gaps.
    pub tcp_gaps: u64,
    /// Bytes lost in them.
    pub tcp_bytes_lost: u64,
    /// Bytes skipped to resynchronise.
    pub resync_skipped_bytes: u64,
}

/// A counter fed from absolute totals.
#[derive(Debug, Clone, Default)]
struct Absolute {
    c: Counter,
    last: u64,
}

impl Absolute {
    fn set(&mut self, total: u64) {
        if total > self.last {
            self.c.inc_by(total - self.last);
            self.last = total;
        }
    }
}

/// Cached series of a family keyed by small numbers.
#[derive(Debug)]
struct Cached<M> {
    cache: FastMap<(u16, i32, i32), M>,
}

impl<M> Default for Cached<M> {
    fn default() -> Self {
        Cached {
            cache: FastMap::default(),
        }
    }
}

impl<M: Clone> Cached<M> {
    fn get(&mut self, key: (u16, i32, i32), make: impl FnOnce() -> M) -> &M {
        self.cache.entry(key).or_insert_with(make)
    }
}

/// Opcodes outside the known set share one label value (`unknown`).
const UNKNOWN_OP: i32 = i32::MIN;
/// The op of connect handshakes.
const CONNECT_OP: i32 = i32::MIN + 1;
/// `result="noreply"`.
const NO_REPLY: i32 = i32::MIN;
/// Error codes outside the known set.
const UNKNOWN_ERR: i32 = i32::MIN + 1;

fn op_key(op: OpCode) -> i32 {
    if op.is_known() {
        op.0
    } else {
        UNKNOWN_OP
    }
}

fn op_label(k: i32) -> &'static str {
    match k {
        UNKNOWN_OP => "unknown",
        CONNECT_OP => "connect",
        n => OpCode(n).name().unwrap_or("unknown"),
    }
}

fn err_key(e: Option<ErrCode>) -> i32 {
    match e {
        None => NO_REPLY,
        Some(e) if e.name().is_some() => e.0,
        Some(_) => UNKNOWN_ERR,
    }
}

fn result_label(k: i32) -> &'static str {
    match k {
        NO_REPLY => "noreply",
        UNKNOWN_ERR => "UNKNOWN",
        0 => "ok",
        n => ErrCode(n).name().unwrap_or("UNKNOWN"),
    }
}

const SCHEMES: [&str; 7] = ["digest", "ip", "x509", "sasl", "world", "super", "other"];

fn scheme_index(s: &[u8]) -> u8 {
    SCHEMES
        .iter()
        .position(|k| k.as_bytes() == s)
        .unwrap_or(SCHEMES.len() - 1) as u8
}

/// Updates the metrics (one per capture thread).
#[derive(Debug)]
pub struct Recorder {
    cfg: MetricsConfig,
    requests: Family<Labels, Counter>,
    replies: Family<Labels, Counter>,
    request_bytes: Family<Labels, Counter>,
    reply_bytes: Family<Labels, Counter>,
    duration: HistFamily,
    watches_set: Family<Labels, Counter>,
    watches_fired: Family<Labels, Counter>,
    four_letter: Family<Labels, Counter>,
    auth: Family<Labels, Counter>,
    namespace_requests: Family<Labels, Counter>,
    namespace_bytes: Family<Labels, Counter>,
    client_requests: Family<Labels, Counter>,
    sessions_opened: Counter,
    sessions_reconnected: Counter,
    sessions_expired: Counter,
    sessions_closed: Counter,
    connections: Gauge,
    proposals: Counter,
    commits: Counter,
    proposal_commit: Histogram,
    elections: Family<Labels, Counter>,
    election_duration: Histogram,
    leader: Gauge,
    packets: Absolute,
    kernel_dropped: Absolute,
    interface_dropped: Absolute,
    decode_errors: Absolute,
    tcp_gaps: Absolute,
    tcp_bytes_lost: Absolute,
    resync_bytes: Absolute,
    capture_up: Gauge,
    kernel_wrap: Wrap32,
    interface_wrap: Wrap32,
    c_requests: Cached<Counter>,
    c_replies: Cached<Counter>,
    c_request_bytes: Cached<Counter>,
    c_reply_bytes: Cached<Counter>,
    c_duration: Cached<Histogram>,
    c_misc: Cached<Counter>,
    servers: FastMap<SocketAddr, u16>,
    server_names: Vec<String>,
    namespaces: FastMap<Box<str>, (Counter, Counter, Counter, Counter)>,
    ns_other: Option<(Counter, Counter, Counter, Counter)>,
    clients: FastMap<IpAddr, Counter>,
    client_other: Option<Counter>,
    auth_scheme: BTreeMap<u64, u8>,
    proposed: BTreeMap<i64, i64>,
    last_commit: Option<i64>,
    buf: String,
}

/// Connections whose auth scheme is remembered until the auth reply.
const MAX_AUTH_PENDING: usize = 10_000;
/// Proposals waiting for their commit.
const MAX_PROPOSED: usize = 10_000;

/// Misc counter families in [`Recorder::c_misc`].
const WATCH_SET: u16 = 0;
const WATCH_FIRED: u16 = 1;
const FOUR_LETTER: u16 = 2;
const AUTH: u16 = 3;

/// Watch set types (index of the label value).
const WATCH_TYPES: [&str; 5] = [
    "data",
    "exist",
    "child",
    "persistent",
    "persistent_recursive",
];

/// Label values of a series, with the `server` label when configured.
fn labels(cfg: &MetricsConfig, names: &[String], server: u16, mut l: Labels) -> Labels {
    if cfg.server_label {
        let name = match server {
            u16::MAX => "other".to_string(),
            i => names
                .get(usize::from(i).wrapping_sub(1))
                .cloned()
                .unwrap_or_else(|| "other".to_string()),
        };
        l.push(("server", name));
    }
    l
}

/// Builds the registry and its recorder.
pub fn new(cfg: &MetricsConfig) -> (Metrics, Recorder) {
    let mut reg = Registry::with_prefix("zkscope");
    let requests = Family::<Labels, Counter>::default();
    reg.register(
        "requests",
        "Client requests by operation and result (ok, error name, noreply)",
        requests.clone(),
    );
    let replies = Family::<Labels, Counter>::default();
    reg.register(
        "replies",
        "Client replies by operation and result",
        replies.clone(),
    );
    let request_bytes = Family::<Labels, Counter>::default();
    reg.register_with_unit(
        "request",
        "Client request bytes (length prefixes) by operation",
        Unit::Bytes,
        request_bytes.clone(),
    );
    let reply_bytes = Family::<Labels, Counter>::default();
    reg.register_with_unit(
        "reply",
        "Client reply bytes (length prefixes) by operation",
        Unit::Bytes,
        reply_bytes.clone(),
    );
    let duration: HistFamily = Family::new_with_constructor(latency_histogram);
    reg.register_with_unit(
        "request_duration",
        "Time from a request to its reply, by operation",
        Unit::Seconds,
        duration.clone(),
    );
    let watches_set = Family::<Labels, Counter>::default();
    reg.register(
        "watches_set",
        "Watches left by requests, by type",
        watches_set.clone(),
    );
    let watches_fired = Family::<Labels, Counter>::default();
    reg.register(
        "watches_fired",
        "Watch notifications sent to clients, by event type",
        watches_fired.clone(),
    );
    let four_letter = Family::<Labels, Counter>::default();
    reg.register(
        "four_letter_words",
        "Four-letter-word commands",
        four_letter.clone(),
    );
    let auth = Family::<Labels, Counter>::default();
    reg.register(
        "auth_attempts",
        "Authentication attempts by scheme and result",
        auth.clone(),
    );
    let namespace_requests = Family::<Labels, Counter>::default();
    reg.register(
        "namespace_requests",
        "Client requests by path namespace and kind (read, write)",
        namespace_requests.clone(),
    );
    let namespace_bytes = Family::<Labels, Counter>::default();
    reg.register_with_unit(
        "namespace_request",
        "Client request bytes by path namespace and kind",
        Unit::Bytes,
        namespace_bytes.clone(),
    );
    let client_requests = Family::<Labels, Counter>::default();
    if cfg.per_client {
        reg.register(
            "client_requests",
            "Client requests by client address",
            client_requests.clone(),
        );
    }
    let counter = |reg: &mut Registry, name: &str, help: &str| {
        let c = Counter::default();
        reg.register(name, help, c.clone());
        c
    };
    let sessions_opened = counter(&mut reg, "sessions_opened", "New sessions established");
    let sessions_reconnected = counter(
        &mut reg,
        "sessions_reconnected",
        "Sessions resumed on a new connection",
    );
    let sessions_expired = counter(
        &mut reg,
        "sessions_expired",
        "Sessions found expired (handshake refused or Expired notification)",
    );
    let sessions_closed = counter(&mut reg, "sessions_closed", "closeSession requests");
    let connections = Gauge::default();
    reg.register(
        "connections",
        "Client connections currently tracked",
        connections.clone(),
    );
    let proposals = counter(
        &mut reg,
        "quorum_proposals",
        "Quorum proposals (distinct zxids)",
    );
    let commits = counter(
        &mut reg,
        "quorum_commits",
        "Quorum commits (distinct zxids)",
    );
    let proposal_commit = latency_histogram();
    reg.register_with_unit(
        "quorum_proposal_commit",
        "Time from a proposal to its first commit",
        Unit::Seconds,
        proposal_commit.clone(),
    );
    let elections = Family::<Labels, Counter>::default();
    reg.register(
        "elections",
        "Election rounds seen, by kind (election, rejoin)",
        elections.clone(),
    );
    // Zero series up front: "no election yet" is 0, not absent.
    for kind in ["election", "rejoin"] {
        let _ = elections.get_or_create(&vec![("kind", kind.to_string())]);
    }
    let election_duration = election_histogram();
    reg.register_with_unit(
        "election_duration",
        "Duration of leader elections (first LOOKING vote to settled)",
        Unit::Seconds,
        election_duration.clone(),
    );
    let leader = Gauge::default();
    leader.set(-1);
    reg.register(
        "quorum_leader",
        "Server id of the current leader (-1 unknown)",
        leader.clone(),
    );
    let abs = |reg: &mut Registry, name: &str, help: &str, unit: Option<Unit>| {
        let a = Absolute::default();
        match unit {
            Some(u) => reg.register_with_unit(name, help, u, a.c.clone()),
            None => reg.register(name, help, a.c.clone()),
        }
        a
    };
    let packets = abs(&mut reg, "capture_packets", "Packets captured", None);
    let kernel_dropped = abs(
        &mut reg,
        "capture_packets_dropped",
        "Packets the kernel dropped (capture buffer full)",
        None,
    );
    let interface_dropped = abs(
        &mut reg,
        "capture_packets_interface_dropped",
        "Packets the interface dropped (promiscuous captures only)",
        None,
    );
    let decode_errors = abs(
        &mut reg,
        "decode_errors",
        "Frames that did not decode, impossible lengths and dropped partial frames",
        None,
    );
    let tcp_gaps = abs(&mut reg, "tcp_gaps", "Gaps in captured TCP streams", None);
    let tcp_bytes_lost = abs(
        &mut reg,
        "tcp_lost",
        "Bytes missing in TCP gaps",
        Some(Unit::Bytes),
    );
    let resync_bytes = abs(
        &mut reg,
        "resync_skipped",
        "Bytes skipped to find the next frame",
        Some(Unit::Bytes),
    );
    let capture_up = Gauge::default();
    reg.register(
        "capture_up",
        "1 while the capture runs, 0 once it stopped or failed",
        capture_up.clone(),
    );
    reg.register(
        "build",
        "zkscope version",
        Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
    );
    let rec = Recorder {
        cfg: cfg.clone(),
        requests,
        replies,
        request_bytes,
        reply_bytes,
        duration,
        watches_set,
        watches_fired,
        four_letter,
        auth,
        namespace_requests,
        namespace_bytes,
        client_requests,
        sessions_opened,
        sessions_reconnected,
        sessions_expired,
        sessions_closed,
        connections,
        proposals,
        commits,
        proposal_commit,
        elections,
        election_duration,
        leader,
        packets,
        kernel_dropped,
        interface_dropped,
        decode_errors,
        tcp_gaps,
        tcp_bytes_lost,
        resync_bytes,
        capture_up,
        kernel_wrap: Wrap32::default(),
        interface_wrap: Wrap32::default(),
        c_requests: Cached::default(),
        c_replies: Cached::default(),
        c_request_bytes: Cached::default(),
        c_reply_bytes: Cached::default(),
        c_duration: Cached::default(),
        c_misc: Cached::default(),
        servers: FastMap::default(),
        server_names: Vec::new(),
        namespaces: FastMap::default(),
        ns_other: None,
        clients: FastMap::default(),
        client_other: None,
        auth_scheme: BTreeMap::new(),
        proposed: BTreeMap::new(),
        last_commit: None,
        buf: String::new(),
    };
    (Metrics { registry: reg }, rec)
}

impl Recorder {
    /// The server's index for the `server` label (0 when the label is off).
    fn server(&mut self, s: SocketAddr) -> u16 {
        if !self.cfg.server_label {
            return 0;
        }
        if let Some(&i) = self.servers.get(&s) {
            return i;
        }
        if self.server_names.len() < self.cfg.max_servers {
            let i = self.server_names.len() as u16 + 1;
            self.server_names.push(s.to_string());
            self.servers.insert(s, i);
            i
        } else {
            u16::MAX
        }
    }

    /// A counter of the small families, its labels built only the first time.
    fn misc(&mut self, fam: u16, a: i32, b: i32) -> &Counter {
        let (watches_set, watches_fired, four_letter, auth) = (
            &self.watches_set,
            &self.watches_fired,
            &self.four_letter,
            &self.auth,
        );
        self.c_misc.get((fam, a, b), || {
            let pick = |names: &[&'static str]| {
                names
                    .get(usize::try_from(a).unwrap_or(usize::MAX))
                    .copied()
                    .unwrap_or("other")
                    .to_string()
            };
            let (family, l): (&Family<Labels, Counter>, Labels) = match fam {
                WATCH_SET => (watches_set, vec![("type", pick(&WATCH_TYPES))]),
                WATCH_FIRED => (
                    watches_fired,
                    vec![(
                        "type",
                        zkscope_proto::client::EventType(a)
                            .name()
                            .unwrap_or("UnknownWatchEvent")
                            .to_string(),
                    )],
                ),
                FOUR_LETTER => (four_letter, vec![("command", pick(&FOUR_LETTER_WORDS))]),
                _ => (
                    auth,
                    vec![
                        ("scheme", pick(&SCHEMES)),
                        ("result", result_label(b).to_string()),
                    ],
                ),
            };
            family.get_or_create(&l).clone()
        })
    }

    /// Request-side facts a [`Call`] does not carry: watches set, auth schemes, namespaces,
    /// clients, closes, expiry notifications, unpaired replies.
    pub fn message(&mut self, m: &Msg<'_>) {
        match &m.kind {
            Kind::Request(r) => {
                let op = r.header.opcode;
                match &r.body {
                    RequestBody::PathWatch { watch: true, .. } => {
                        let t = match op {
                            OpCode::GET_DATA => 0,
                            OpCode::EXISTS => 1,
                            _ => 2,
                        };
                        self.misc(WATCH_SET, t, 0).inc();
                    }
                    RequestBody::AddWatch { mode, .. } => {
                        let t = if *mode == AddWatchMode::PERSISTENT_RECURSIVE {
                            4
                        } else {
                            3
                        };
                        self.misc(WATCH_SET, t, 0).inc();
                    }
                    RequestBody::SetWatches {
                        data,
                        exist,
                        child,
                        persistent,
                        persistent_recursive,
                        ..
                    } => {
                        let lens = [
                            data.len(),
                            exist.len(),
                            child.len(),
                            persistent.map_or(0, |v| v.len()),
                            persistent_recursive.map_or(0, |v| v.len()),
                        ];
                        for (t, n) in lens.into_iter().enumerate() {
                            if n > 0 {
                                self.misc(WATCH_SET, t as i32, 0).inc_by(n as u64);
                            }
                        }
                    }
                    RequestBody::Auth { scheme, .. } => {
                        if !self.auth_scheme.contains_key(&m.conn.id)
                            && self.auth_scheme.len() >= MAX_AUTH_PENDING
                        {
                            self.auth_scheme.pop_first();
                        }
                        self.auth_scheme.insert(m.conn.id, scheme_index(scheme.0));
                    }
                    _ => {}
                }
                if op == OpCode::CLOSE_SESSION {
                    self.sessions_closed.inc();
                }
                if op == OpCode::PING {
                    return;
                }
                let path = match &r.body {
                    RequestBody::Multi(ops) => ops.iter().find_map(|o| o.body.path()),
                    b => b.path(),
                };
                if let Some(p) = path {
                    self.namespace(p.0, op.is_write(), m.size);
                }
                if self.cfg.per_client {
                    self.client(m.conn.client.ip()).inc();
                }
            }
            Kind::ConnectRequest(_) if self.cfg.per_client => {
                self.client(m.conn.client.ip()).inc();
            }
            Kind::Event { event, .. } if event.state == KeeperState::EXPIRED => {
                self.sessions_expired.inc();
            }
            Kind::Reply {
                reply,
                request: None,
            } => {
                let op = match reply.header.xid {
                    -2 => op_key(OpCode::PING),
                    -4 => op_key(OpCode::AUTH),
                    _ => UNKNOWN_OP,
                };
                let s = self.server(m.conn.server);
                let key = (s, op, err_key(Some(reply.header.err)));
                self.reply_counters(key, u64::from(m.size));
            }
            _ => {}
        }
    }

    fn namespace(&mut self, path: &[u8], write: bool, size: u32) {
        self.buf.clear();
        PathNorm {
            depth: self.cfg.namespace_depth.max(1),
            fold_sequential: false,
        }
        .write(&mut self.buf, path);
        let make = |fam: &Family<Labels, Counter>, bytes: &Family<Labels, Counter>, ns: &str| {
            let l = |k: &str| vec![("namespace", ns.to_string()), ("kind", k.to_string())];
            // One statement per series: a family's guard must be gone before the next
            // `get_or_create` (which may take its write lock).
            let reads = fam.get_or_create(&l("read")).clone();
            let writes = fam.get_or_create(&l("write")).clone();
            let read_bytes = bytes.get_or_create(&l("read")).clone();
            let write_bytes = bytes.get_or_create(&l("write")).clone();
            (reads, writes, read_bytes, write_bytes)
        };
        let c = if let Some(c) = self.namespaces.get(self.buf.as_str()) {
            c
        } else if self.namespaces.len() < self.cfg.max_namespaces {
            let c = make(&self.namespace_requests, &self.namespace_bytes, &self.buf);
            self.namespaces.entry(self.buf.as_str().into()).or_insert(c)
        } else {
            self.ns_other.get_or_insert_with(|| {
                make(&self.namespace_requests, &self.namespace_bytes, "other")
            })
        };
        if write {
            c.1.inc();
            c.3.inc_by(u64::from(size));
        } else {
            c.0.inc();
            c.2.inc_by(u64::from(size));
        }
    }

    fn client(&mut self, ip: IpAddr) -> &Counter {
        if self.clients.contains_key(&ip) || self.clients.len() < self.cfg.max_clients {
            let fam = &self.client_requests;
            return self
                .clients
                .entry(ip)
                .or_insert_with(|| fam.get_or_create(&vec![("client", ip.to_string())]).clone());
        }
        let fam = &self.client_requests;
        self.client_other.get_or_insert_with(|| {
            fam.get_or_create(&vec![("client", "other".to_string())])
                .clone()
        })
    }

    fn reply_counters(&mut self, key: (u16, i32, i32), size: u64) {
        let (cfg, names) = (&self.cfg, &self.server_names);
        let fam = &self.replies;
        self.c_replies
            .get(key, || {
                let l = vec![
                    ("op", op_label(key.1).to_string()),
                    ("result", result_label(key.2).to_string()),
                ];
                fam.get_or_create(&labels(cfg, names, key.0, l)).clone()
            })
            .inc();
        let fam = &self.reply_bytes;
        self.c_reply_bytes
            .get((key.0, key.1, 0), || {
                let l = vec![("op", op_label(key.1).to_string())];
                fam.get_or_create(&labels(cfg, names, key.0, l)).clone()
            })
            .inc_by(size);
    }

    /// A completed call: requests, replies, bytes, latency, sessions, notifications,
    /// four-letter words, auth outcomes.
    pub fn call(&mut self, c: &Call<'_>) {
        let op = match c.kind {
            CallKind::Request(op) => op_key(op),
            CallKind::Connect { session_requested } => {
                match c.err {
                    Some(e) if e.is_ok() && session_requested == 0 => self.sessions_opened.inc(),
                    Some(e) if e.is_ok() => self.sessions_reconnected.inc(),
                    // the answer was cut before its session: not an expiration
                    Some(e) if !e.is_captured() => 0,
                    Some(_) => self.sessions_expired.inc(),
                    None => 0,
                };
                CONNECT_OP
            }
            CallKind::Event(e) => {
                self.misc(WATCH_FIRED, e.0, 0).inc();
                return;
            }
            CallKind::FourLetter(cmd) => {
                let i = FOUR_LETTER_WORDS
                    .iter()
                    .position(|w| *w == cmd)
                    .unwrap_or(FOUR_LETTER_WORDS.len()) as i32;
                self.misc(FOUR_LETTER, i, 0).inc();
                return;
            }
        };
        let s = self.server(c.conn.server);
        let res = err_key(c.err);
        let (cfg, names) = (&self.cfg, &self.server_names);
        let op_only = || vec![("op", op_label(op).to_string())];
        let fam = &self.requests;
        self.c_requests
            .get((s, op, res), || {
                let l = vec![
                    ("op", op_label(op).to_string()),
                    ("result", result_label(res).to_string()),
                ];
                fam.get_or_create(&labels(cfg, names, s, l)).clone()
            })
            .inc();
        let fam = &self.request_bytes;
        self.c_request_bytes
            .get((s, op, 0), || {
                fam.get_or_create(&labels(cfg, names, s, op_only())).clone()
            })
            .inc_by(u64::from(c.request_size));
        if let Some(ns) = c.latency_ns {
            let fam = &self.duration;
            self.c_duration
                .get((s, op, 0), || {
                    fam.get_or_create(&labels(cfg, names, s, op_only())).clone()
                })
                .observe(ns.max(0) as f64 / 1e9);
        }
        if c.err.is_some() {
            self.reply_counters((s, op, res), c.reply_size);
        }
        if c.kind == CallKind::Request(OpCode::AUTH) || c.kind == CallKind::Request(OpCode::SASL) {
            let scheme = if c.kind == CallKind::Request(OpCode::SASL) {
                3
            } else {
                self.auth_scheme
                    .remove(&c.conn.id)
                    .unwrap_or(SCHEMES.len() as u8 - 1)
            };
            self.misc(AUTH, i32::from(scheme), res).inc();
        }
    }

    /// The number of client connections currently tracked.
    pub fn set_connections(&self, n: u64) {
        self.connections.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Whether the capture runs.
    pub fn set_capture_up(&self, up: bool) {
        self.capture_up.set(i64::from(up));
    }

    /// New capture totals (counters move by the difference; libpcap's 32-bit drop counts
    /// are unwrapped).
    pub fn capture(&mut self, t: &CaptureTotals) {
        self.packets.set(t.packets);
        let k = self.kernel_wrap.update(t.kernel_dropped_raw);
        self.kernel_dropped.set(k);
        let i = self.interface_wrap.update(t.interface_dropped_raw);
        self.interface_dropped.set(i);
        self.decode_errors.set(t.decode_errors);
        self.tcp_gaps.set(t.tcp_gaps);
        self.tcp_bytes_lost.set(t.tcp_bytes_lost);
        self.resync_bytes.set(t.resync_skipped_bytes);
    }

    /// Kernel drops so far (64-bit, unwrapped).
    pub fn kernel_dropped(&self) -> u64 {
        self.kernel_wrap.total()
    }

    /// A quorum PROPOSAL (or INFORM) for `zxid` seen at `ts_ns`.
    pub fn proposal(&mut self, zxid: i64, ts_ns: i64) {
        if self.last_commit.is_some_and(|c| zxid <= c) || self.proposed.contains_key(&zxid) {
            return;
        }
        if self.proposed.len() >= MAX_PROPOSED {
            self.proposed.pop_first();
        }
        self.proposed.insert(zxid, ts_ns);
        self.proposals.inc();
    }

    /// A quorum COMMIT (or COMMITANDACTIVATE, INFORM on observers) for `zxid` at `ts_ns`.
    pub fn commit(&mut self, zxid: i64, ts_ns: i64) {
        if self.last_commit.is_some_and(|c| zxid <= c) {
            return;
        }
        self.last_commit = Some(zxid);
        self.commits.inc();
        if let Some(p) = self.proposed.remove(&zxid) {
            self.proposal_commit
                .observe(ts_ns.saturating_sub(p).max(0) as f64 / 1e9);
        }
        // Older proposals are committed too (commits are in zxid order).
        while self
            .proposed
            .first_key_value()
            .is_some_and(|(z, _)| *z < zxid)
        {
            self.proposed.pop_first();
        }
    }

    /// A finished election round of `kind` (`election`, `rejoin`; others count as `other`).
    pub fn election(&mut self, kind: &str, duration_ns: i64, leader: Option<i64>) {
        let kind = match kind {
            "election" | "rejoin" => kind,
            _ => "other",
        };
        self.elections
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
        self.election_duration
            .observe(duration_ns.max(0) as f64 / 1e9);
        if let Some(l) = leader {
            self.leader.set(l);
        }
    }

    /// The leader as seen in quorum traffic.
    pub fn set_leader(&self, sid: i64) {
        self.leader.set(sid);
    }
}

/// Four-letter words with their own label value (ZooKeeper 3.4–3.9); others are `other`.
const FOUR_LETTER_WORDS: [&str; 20] = [
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "hash", "isro", "mntr", "ruok", "srst",
    "srvr", "stat", "stmk", "wchc", "wchp", "wchs", "kill", "reqs",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap32_unwraps_libpcap_counters() {
        let mut w = Wrap32::default();
        assert_eq!(w.update(10), 10);
        assert_eq!(w.update(15), 15);
        // The 32-bit counter wraps: 15 → u32::MAX is 2^32-16 more, then 5 more past 0.
        assert_eq!(w.update(u32::MAX), u64::from(u32::MAX));
        assert_eq!(w.update(4), u64::from(u32::MAX) + 5);
        assert_eq!(w.update(4), u64::from(u32::MAX) + 5);
        // Several wraps in a row keep counting.
        let mut total = w.total();
        for _ in 0..3 {
            total += 1 << 31;
            let raw = (total & 0xffff_ffff) as u32;
            assert_eq!(w.update(raw), total);
        }
        assert!(w.total() > u64::from(u32::MAX) * 2);
    }

    #[test]
    fn text_format_declares_counters_with_total() {
        let (m, mut r) = new(&MetricsConfig::default());
        r.capture(&CaptureTotals {
            packets: 3,
            ..CaptureTotals::default()
        });
        let om = m.encode();
        assert!(om.contains("# TYPE zkscope_capture_packets counter\n"));
        assert!(om.contains("zkscope_capture_packets_total 3\n"));
        assert!(om.ends_with("# EOF\n"));
        let t = m.encode_text();
        assert!(
            t.contains("# TYPE zkscope_capture_packets_total counter\n"),
            "{t}"
        );
        assert!(t.contains("# HELP zkscope_capture_packets_total Packets captured"));
        assert!(t.contains("zkscope_capture_packets_total 3\n"));
        assert!(t.contains("# TYPE zkscope_build_info gauge\n"), "{t}");
        assert!(!t.contains("# EOF") && !t.contains("# UNIT"));
    }

    #[test]
    fn capture_counters_follow_totals_and_wraps() {
        let (m, mut r) = new(&MetricsConfig::default());
        r.capture(&CaptureTotals {
            kernel_dropped_raw: u32::MAX - 1,
            ..CaptureTotals::default()
        });
        r.capture(&CaptureTotals {
            kernel_dropped_raw: 3,
            ..CaptureTotals::default()
        });
        let want = u64::from(u32::MAX) + 4;
        assert_eq!(r.kernel_dropped(), want);
        assert!(m
            .encode()
            .contains(&format!("zkscope_capture_packets_dropped_total {want}\n")));
    }

    #[test]
    fn proposals_and_commits_pair_by_zxid() {
        let (m, mut r) = new(&MetricsConfig::default());
        r.proposal(0x1_0000_0001, 1_000_000);
        r.proposal(0x1_0000_0001, 1_100_000); // to another follower
        r.commit(0x1_0000_0001, 3_000_000);
        r.commit(0x1_0000_0001, 3_100_000);
        let om = m.encode();
        assert!(om.contains("zkscope_quorum_proposals_total 1\n"), "{om}");
        assert!(om.contains("zkscope_quorum_commits_total 1\n"));
        assert!(om.contains("zkscope_quorum_proposal_commit_seconds_count 1\n"));
        assert!(om.contains("zkscope_quorum_proposal_commit_seconds_bucket{le=\"0.0025\"} 1\n"));
    }
}
