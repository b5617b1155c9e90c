//! zktraffic's `zk-stats-daemon` statistics: per-path, per-IP and per-auth counters over
//! tumbling windows, with its key scheme (`/json/paths`, `/json/ips`, `/json/auths`,
//! `/json/auths-dump`), and the values a correct decoder gives.
//!
//! A key is a family followed by a path: `GetDataRequest/zk/config`, `reads/`,
//! `total/writes`; per IP the path is followed by `:<ip>` (`per_ip/ExistsRequest/a:10.0.0.1`),
//! per auth by `:<credential>` (`per_auth/ConnectRequest:noauth`). Families, as zktraffic has
//! them:
//!
//! | family | counts |
//! |---|---|
//! | `<RequestName>` (`GetDataRequest`, `CreateEphemeralRequest`, `ReConnectRequest`, …) | requests by path (`/` for requests without one) |
//! | `<RequestName>Bytes` | their length prefixes |
//! | `writes`, `writesBytes`, `reads`, `readsBytes` | requests (and bytes) that change state / the others |
//! | `watches` | reads that leave a watch (and every setWatches) |
//! | `total` | `total/writes`, `total/reads`, `total/writeBytes`, `total/readBytes`: never cut to the top N |
//! | `<ReplyName>` / `Failed<ReplyName>` | replies (per path only), by the request's path |
//! | `<EventName>` (`NodeDataChanged`, …) | watch notifications (per path only) |
//!
//! What zktraffic got wrong and this gets right: requests with xid 0 or 1 are what they are
//! (zktraffic read them as reconnects), every message of a TCP segment is counted (zktraffic
//! saw only the first), top-N trimming keeps the `total` family, and SetAuth credentials are
//! redacted (`digest` → `user:***`) unless [`StatsConfig::show_credentials`].
//!
//! Keys zktraffic never had (its daemon did not decode replies):
//!
//! | key | value |
//! |---|---|
//! | `errors<path>` | replies with an error code, by the request's path (per path, IP and auth) |
//! | `total/replies`, `total/errors`, `total/unanswered`, `total/unpairedReplies` | replies, replies with an error, requests that got none, replies whose request was not captured |
//! | `errorCodes/<NAME>` | replies by error name (`errorCodes/NONODE`) |
//! | `latency/<RequestName>/count`, `…/p50Us`, `…/p90Us`, `…/p99Us`, `…/maxUs` | latency of the window's replies in µs, by request type |
//! | `FourLetterWord/<cmd>` | four-letter words |
//!
//! Memory is bounded: past [`StatsConfig::max_keys`] keys an accumulator keeps the half with
//! the highest counts (heavy hitters survive; `total` stays exact), and the per-client maps
//! are capped too.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use zkscope_capture::client::{ClientSink, Kind, Msg};
use zkscope_capture::packet::Timestamp;
use zkscope_proto::client::{OpCode, RequestBody};

use crate::call::{Call, CallBuilder, CallKind, NOAUTH};
use crate::hash::FastMap;
use crate::key::{push_display, PathNorm};
use crate::latency::{ns_to_us, LatencyStats};

/// Options of the stats (zktraffic's flags).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsConfig {
    /// `--aggregation-depth`: keep this many path components (0 = whole paths).
    pub aggregation_depth: usize,
    /// `--max-results`: keys kept per family when exported (0 = all). `total`, `latency` and
    /// `errorCodes` are never cut.
    pub max_results: usize,
    /// `--exclude-bytes`: no `*Bytes` families, no `total/readBytes`/`total/writeBytes`.
    pub exclude_bytes: bool,
    /// Show SetAuth credentials in keys and in the auths dump instead of `user:***`.
    pub show_credentials: bool,
    /// Count pings (zktraffic's daemon never did).
    pub include_pings: bool,
    /// `--sampling`: the fraction of requests (with their replies) and events counted, in
    /// [0, 1]. The choice is a hash of the connection and the request's capture time, so a
    /// request and its reply are kept or left together, and a replay gives the same values.
    pub sampling: f64,
    /// Keys per accumulator (per path, per IP, per auth) and window before the low counts
    /// are dropped.
    pub max_keys: usize,
    /// Clients in the auths dump per window.
    pub max_clients: usize,
    /// Connections whose auth identity is remembered.
    pub max_conns: usize,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            aggregation_depth: 0,
            max_results: 10,
            exclude_bytes: false,
            show_credentials: false,
            include_pings: false,
            sampling: 1.0,
            max_keys: 20_000,
            max_clients: 10_000,
            max_conns: 100_000,
        }
    }
}

/// A family: `pre` + `name` + `suf` (`Failed` + `ExistsReply`, `GetDataRequest` + `Bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Fam {
    pre: &'static str,
    name: &'static str,
    suf: &'static str,
}

impl Fam {
    const fn plain(name: &'static str) -> Fam {
        Fam {
            pre: "",
            name,
            suf: "",
        }
    }

    const fn bytes(name: &'static str) -> Fam {
        Fam {
            pre: "",
            name,
            suf: "Bytes",
        }
    }

    /// Families exported whole: their keys are few and fixed.
    fn never_cut(self) -> bool {
        matches!(self.name, "total" | "errorCodes")
    }
}

const WRITES: Fam = Fam::plain("writes");
const WRITES_BYTES: Fam = Fam::bytes("writes");
const READS: Fam = Fam::plain("reads");
const READS_BYTES: Fam = Fam::bytes("reads");
const WATCHES: Fam = Fam::plain("watches");
const TOTAL: Fam = Fam::plain("total");
const ERRORS: Fam = Fam::plain("errors");
const ERROR_CODES: Fam = Fam::plain("errorCodes");
const FOUR_LETTER: Fam = Fam::plain("FourLetterWord");

/// Counters by family and key, bounded.
#[derive(Debug, Clone, Default)]
struct Accum {
    fams: FastMap<Fam, FastMap<Box<str>, u64>>,
    keys: usize,
    /// Counts dropped with their keys when the map was pruned.
    folded: u64,
}

impl Accum {
    fn add(&mut self, fam: Fam, key: &str, n: u64, cap: usize) {
        let m = self.fams.entry(fam).or_default();
        if let Some(v) = m.get_mut(key) {
            *v += n;
            return;
        }
        m.insert(key.into(), n);
        self.keys += 1;
        if self.keys > cap.max(16) {
            self.prune(cap.max(16) / 2);
        }
    }

    /// Keeps the `keep` highest counts (and every `total` key).
    fn prune(&mut self, keep: usize) {
        let mut counts: Vec<u64> = self
            .fams
            .iter()
            .filter(|(f, _)| !f.never_cut())
            .flat_map(|(_, m)| m.values().copied())
            .collect();
        if counts.len() <= keep {
            return;
        }
        let (_, &mut threshold, _) = counts.select_nth_unstable_by(keep, |a, b| b.cmp(a));
        // Strictly above the threshold always stays; at the threshold, as many as fit.
        let above = counts.iter().filter(|&&c| c > threshold).count();
        let mut room = keep.saturating_sub(above);
        let mut folded = 0;
        let mut kept = 0;
        for (f, m) in self.fams.iter_mut() {
            if f.never_cut() {
                kept += m.len();
                continue;
            }
            m.retain(|_, c| {
                let stay = *c > threshold
                    || (*c == threshold && room > 0 && {
                        room -= 1;
                        true
                    });
                if !stay {
                    folded += *c;
                }
                stay
            });
            kept += m.len();
        }
        self.fams.retain(|_, m| !m.is_empty());
        self.keys = kept;
        self.folded += folded;
    }

    fn merge(&mut self, o: &Accum, cap: usize) {
        for (f, m) in &o.fams {
            for (k, &v) in m {
                self.add(*f, k, v, cap);
            }
            // Families with only zero defaults must exist after a merge too.
            self.fams.entry(*f).or_default();
        }
        self.folded += o.folded;
    }

    #[cfg(test)]
    fn get(&self, fam: Fam, key: &str) -> u64 {
        self.fams
            .get(&fam)
            .and_then(|m| m.get(key))
            .copied()
            .unwrap_or(0)
    }

    fn export(&self, prefix: &str, top: usize, out: &mut BTreeMap<String, u64>) {
        for (f, m) in &self.fams {
            let mut v: Vec<(&str, u64)> = m.iter().map(|(k, &c)| (&**k, c)).collect();
            if top > 0 && !f.never_cut() && v.len() > top {
                v.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                v.truncate(top);
            }
            for (k, c) in v {
                out.insert(format!("{prefix}{}{}{}{k}", f.pre, f.name, f.suf), c);
            }
        }
    }
}

/// What a request contributes, whoever counts it.
struct Req<'a> {
    name: &'static str,
    /// Normalised path (`""` when the request has none).
    path: &'a str,
    ip: IpAddr,
    auth: &'a str,
    size: u32,
    write: bool,
    watch: bool,
}

/// One window of stats: mergeable, resettable.
#[derive(Debug, Clone)]
pub struct ZkStats {
    cfg: StatsConfig,
    per_path: Accum,
    per_ip: Accum,
    per_auth: Accum,
    latency: BTreeMap<&'static str, LatencyStats>,
    auths: FastMap<SocketAddr, Box<str>>,
    /// Requests counted.
    pub requests: u64,
    /// Replies counted.
    pub replies: u64,
    /// Watch notifications counted.
    pub events: u64,
    /// Requests and events left out by sampling.
    pub sampled_out: u64,
    /// Clients left out of the auths dump (cap).
    pub clients_dropped: u64,
    /// Start and end of the window (capture clock), once set by its driver.
    pub span: Option<(Timestamp, Timestamp)>,
    buf: String,
}

impl ZkStats {
    /// An empty window (with zktraffic's zero defaults).
    pub fn new(cfg: &StatsConfig) -> Self {
        let mut s = ZkStats {
            cfg: cfg.clone(),
            per_path: Accum::default(),
            per_ip: Accum::default(),
            per_auth: Accum::default(),
            latency: BTreeMap::new(),
            auths: FastMap::default(),
            requests: 0,
            replies: 0,
            events: 0,
            sampled_out: 0,
            clients_dropped: 0,
            span: None,
            buf: String::new(),
        };
        s.defaults();
        s
    }

    /// The configuration.
    pub fn config(&self) -> &StatsConfig {
        &self.cfg
    }

    fn defaults(&mut self) {
        let cap = self.cfg.max_keys;
        for a in [&mut self.per_path, &mut self.per_ip, &mut self.per_auth] {
            a.add(WRITES, "/", 0, cap);
            a.add(READS, "/", 0, cap);
            a.add(TOTAL, "/writes", 0, cap);
            a.add(TOTAL, "/reads", 0, cap);
            if !self.cfg.exclude_bytes {
                a.add(WRITES_BYTES, "/", 0, cap);
                a.add(READS_BYTES, "/", 0, cap);
                a.add(TOTAL, "/writeBytes", 0, cap);
                a.add(TOTAL, "/readBytes", 0, cap);
            }
        }
    }

    /// Empties the window (the zero defaults come back).
    pub fn clear(&mut self) {
        let cfg = self.cfg.clone();
        *self = ZkStats::new(&cfg);
    }

    /// Adds another window's counts (same configuration).
    pub fn merge(&mut self, o: &ZkStats) {
        let cap = self.cfg.max_keys;
        self.per_path.merge(&o.per_path, cap);
        self.per_ip.merge(&o.per_ip, cap);
        self.per_auth.merge(&o.per_auth, cap);
        for (k, l) in &o.latency {
            self.latency.entry(k).or_default().merge(l);
        }
        for (c, a) in &o.auths {
            self.auth_seen(*c, a);
        }
        self.requests += o.requests;
        self.replies += o.replies;
        self.events += o.events;
        self.sampled_out += o.sampled_out;
        self.clients_dropped += o.clients_dropped;
        self.span = match (self.span, o.span) {
            (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
            (a, b) => a.or(b),
        };
    }

    fn auth_seen(&mut self, client: SocketAddr, auth: &str) {
        if let Some(v) = self.auths.get_mut(&client) {
            if **v != *auth {
                *v = auth.into();
            }
        } else if self.auths.len() < self.cfg.max_clients {
            self.auths.insert(client, auth.into());
        } else {
            self.clients_dropped += 1;
        }
    }

    fn request(&mut self, r: &Req<'_>) {
        self.requests += 1;
        let cap = self.cfg.max_keys;
        let bytes = !self.cfg.exclude_bytes;
        let size = u64::from(r.size);
        let path = if r.path.is_empty() { "/" } else { r.path };
        let fam = Fam::plain(r.name);
        let fam_bytes = Fam::bytes(r.name);
        let (rw, rw_bytes, tot, tot_bytes) = if r.write {
            (WRITES, WRITES_BYTES, "/writes", "/writeBytes")
        } else {
            (READS, READS_BYTES, "/reads", "/readBytes")
        };
        let watch = !r.write && r.watch;
        let mut buf = std::mem::take(&mut self.buf);
        for (i, a) in [&mut self.per_path, &mut self.per_ip, &mut self.per_auth]
            .into_iter()
            .enumerate()
        {
            // zktraffic defaults an empty path to `/` per path only: per IP the key is
            // `:<ip>` (`per_ip/ConnectRequest:127.0.0.1`).
            let key: &str = match i {
                0 => path,
                _ => {
                    buf.clear();
                    buf.push_str(r.path);
                    buf.push(':');
                    if i == 1 {
                        push_display(&mut buf, r.ip);
                    } else {
                        buf.push_str(r.auth);
                    }
                    &buf
                }
            };
            a.add(fam, key, 1, cap);
            a.add(rw, key, 1, cap);
            a.add(TOTAL, tot, 1, cap);
            if bytes {
                a.add(fam_bytes, key, size, cap);
                a.add(rw_bytes, key, size, cap);
                a.add(TOTAL, tot_bytes, size, cap);
            }
            if watch {
                a.add(WATCHES, key, 1, cap);
            }
        }
        self.buf = buf;
    }

    fn outcome(&mut self, c: &Call<'_>, path: &str, req_name: &'static str) {
        let cap = self.cfg.max_keys;
        let Some(err) = c.err else {
            self.per_path.add(TOTAL, "/unanswered", 1, cap);
            return;
        };
        self.replies += 1;
        let reply = match c.kind {
            CallKind::Request(op) => op.reply_type(),
            CallKind::Connect { .. } if err.is_ok() || !err.is_captured() => "ConnectReply",
            CallKind::Connect { .. } => "SessionExpiration",
            _ => return,
        };
        // Connect handshakes carry no error code: an expired session has its own name.
        let failed = err.is_error() && !matches!(c.kind, CallKind::Connect { .. });
        let fam = Fam {
            pre: if failed { "Failed" } else { "" },
            name: reply,
            suf: "",
        };
        self.per_path.add(fam, path, 1, cap);
        self.per_path.add(TOTAL, "/replies", 1, cap);
        if failed {
            self.per_path.add(TOTAL, "/errors", 1, cap);
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            buf.push('/');
            buf.push_str(err.name().unwrap_or("UNKNOWN"));
            self.per_path.add(ERROR_CODES, &buf, 1, cap);
            let p = if path.is_empty() { "/" } else { path };
            self.per_path.add(ERRORS, p, 1, cap);
            buf.clear();
            buf.push_str(path);
            buf.push(':');
            push_display(&mut buf, c.conn.client.ip());
            self.per_ip.add(ERRORS, &buf, 1, cap);
            buf.clear();
            buf.push_str(path);
            buf.push(':');
            buf.push_str(c.auth);
            self.per_auth.add(ERRORS, &buf, 1, cap);
            self.buf = buf;
        }
        if let Some(ns) = c.latency_ns {
            self.latency.entry(req_name).or_default().record_ns(ns);
        }
    }

    fn unpaired_reply(&mut self) {
        self.replies += 1;
        let cap = self.cfg.max_keys;
        self.per_path.add(TOTAL, "/replies", 1, cap);
        self.per_path.add(TOTAL, "/unpairedReplies", 1, cap);
    }

    fn event(&mut self, name: &'static str, path: &str) {
        self.events += 1;
        let p = if path.is_empty() { "/" } else { path };
        self.per_path.add(Fam::plain(name), p, 1, self.cfg.max_keys);
    }

    fn four_letter(&mut self, cmd: &str) {
        let mut key = String::with_capacity(5);
        key.push('/');
        key.push_str(cmd);
        self.per_path.add(FOUR_LETTER, &key, 1, self.cfg.max_keys);
    }

    fn latency_keys(&self, out: &mut BTreeMap<String, u64>) {
        for (name, l) in &self.latency {
            let [p50, p90, p99] = l.quantiles_us([0.5, 0.9, 0.99]);
            out.insert(format!("latency/{name}/count"), l.count());
            for (k, v) in [("p50Us", p50), ("p90Us", p90), ("p99Us", p99)] {
                if let Some(v) = v {
                    out.insert(format!("latency/{name}/{k}"), v);
                }
            }
            if let Some(m) = l.max_ns() {
                out.insert(format!("latency/{name}/maxUs"), ns_to_us(m));
            }
        }
    }

    /// `/json/paths`: `{"<family><path>": count}` cut to the top `max_results` per family.
    pub fn paths(&self) -> BTreeMap<String, u64> {
        self.paths_top(self.cfg.max_results)
    }

    /// `/json/paths` cut to `top` keys per family (0 = all).
    pub fn paths_top(&self, top: usize) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        self.per_path.export("", top, &mut out);
        self.latency_keys(&mut out);
        out
    }

    /// `/json/ips`: keys `per_ip/<family><path>:<ip>`.
    pub fn ips(&self) -> BTreeMap<String, u64> {
        self.ips_top(self.cfg.max_results)
    }

    /// [`ZkStats::ips`] cut to `top` keys per family (0 = all).
    pub fn ips_top(&self, top: usize) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        self.per_ip.export("per_ip/", top, &mut out);
        out
    }

    /// `/json/auths`: keys `per_auth/<family><path>:<auth>`.
    pub fn auths(&self) -> BTreeMap<String, u64> {
        self.auths_top(self.cfg.max_results)
    }

    /// [`ZkStats::auths`] cut to `top` keys per family (0 = all).
    pub fn auths_top(&self, top: usize) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        self.per_auth.export("per_auth/", top, &mut out);
        out
    }

    /// `/json/auths-dump`: `{"ip:port": credential or "noauth"}` for the clients that sent a
    /// request or a ping in the window (credentials redacted unless configured). A connected
    /// client pings at least every third of its session timeout, so a window longer than that
    /// lists every connected client; zktraffic's map instead kept every client ever seen,
    /// forever.
    pub fn auths_dump(&self) -> BTreeMap<String, String> {
        self.auths
            .iter()
            .map(|(c, a)| (c.to_string(), a.to_string()))
            .collect()
    }

    /// One per-path value before trimming (0 when absent), by its exported key.
    pub fn path_value(&self, key: &str) -> u64 {
        lookup(&self.per_path, key)
    }

    /// Counts dropped with their keys to bound memory (all accumulators).
    pub fn keys_folded(&self) -> u64 {
        self.per_path.folded + self.per_ip.folded + self.per_auth.folded
    }

    /// Keys held (all accumulators).
    pub fn keys(&self) -> usize {
        self.per_path.keys + self.per_ip.keys + self.per_auth.keys
    }
}

fn lookup(a: &Accum, key: &str) -> u64 {
    a.fams
        .iter()
        .filter_map(|(f, m)| {
            let rest = key
                .strip_prefix(f.pre)?
                .strip_prefix(f.name)?
                .strip_prefix(f.suf)?;
            m.get(rest).copied()
        })
        .max()
        .unwrap_or(0)
}

/// zktraffic's writes; 3.5+ container/TTL creates and container deletes join them. Everything
/// else (connect, close, check, sync, setWatches, auth …) counts as a read, as in zktraffic.
fn is_write(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::CREATE
            | OpCode::CREATE2
            | OpCode::CREATE_CONTAINER
            | OpCode::CREATE_TTL
            | OpCode::DELETE
            | OpCode::DELETE_CONTAINER
            | OpCode::SET_DATA
            | OpCode::MULTI
            | OpCode::SET_ACL
            | OpCode::RECONFIG
    )
}

/// A hash of a request's identity for sampling (SplitMix64 finaliser).
fn sample_hash(conn: u64, ts: Timestamp) -> u64 {
    let mut z = conn
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(ts.0 as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per-connection state behind the stats (auth credentials), and the call builder that
/// pairs replies; it writes into whichever window it is given.
#[derive(Debug)]
pub struct StatsTracker {
    cfg: StatsConfig,
    norm: PathNorm,
    calls: CallBuilder,
    creds: BTreeMap<u64, Box<str>>,
    /// Credential connections forgotten to respect the bound.
    pub conns_evicted: u64,
    path: String,
    cred: String,
    threshold: Option<u64>,
}

impl StatsTracker {
    /// A tracker with these options.
    pub fn new(cfg: &StatsConfig) -> Self {
        let s = cfg.sampling.clamp(0.0, 1.0);
        StatsTracker {
            cfg: cfg.clone(),
            norm: PathNorm {
                depth: cfg.aggregation_depth,
                fold_sequential: false,
            },
            calls: CallBuilder::new(cfg.max_conns),
            creds: BTreeMap::new(),
            conns_evicted: 0,
            path: String::new(),
            cred: String::new(),
            // None = keep everything.
            threshold: (s < 1.0).then_some((s * u64::MAX as f64) as u64),
        }
    }

    fn sampled(&self, conn: u64, ts: Timestamp) -> bool {
        self.threshold
            .is_none_or(|t| t > 0 && sample_hash(conn, ts) <= t)
    }

    fn cred_of(&self, conn: u64) -> &str {
        self.creds.get(&conn).map_or(NOAUTH, |c| &**c)
    }

    /// Counts one message into `win` and hands the calls it completes to `on_call`.
    pub fn message(&mut self, m: &Msg<'_>, win: &mut ZkStats, on_call: &mut dyn FnMut(&Call<'_>)) {
        let conn = m.conn;
        match &m.kind {
            Kind::Request(r) => {
                let op = r.header.opcode;
                if op == OpCode::PING && !self.cfg.include_pings {
                    // Pings still go through the call builder below, and keep an idle
                    // client in the window's auths dump (every live session pings).
                    win.auth_seen(conn.client, self.cred_of(conn.id));
                } else if !self.sampled(conn.id, m.ts) {
                    win.sampled_out += 1;
                } else {
                    self.count_request(m, r.header.opcode, &r.body, win);
                }
            }
            Kind::ConnectRequest(c) => {
                if self.sampled(conn.id, m.ts) {
                    let name = if c.session_id != 0 {
                        "ReConnectRequest"
                    } else {
                        "ConnectRequest"
                    };
                    let auth = self.creds.get(&conn.id).map_or(NOAUTH, |c| &**c);
                    win.auth_seen(conn.client, auth);
                    win.request(&Req {
                        name,
                        path: "",
                        ip: conn.client.ip(),
                        auth,
                        size: m.size,
                        write: false,
                        watch: false,
                    });
                } else {
                    win.sampled_out += 1;
                }
            }
            Kind::Reply {
                request: None,
                reply,
            } => {
                let ping = reply.header.xid == -2;
                if (!ping || self.cfg.include_pings) && self.sampled(conn.id, m.ts) {
                    win.unpaired_reply();
                }
            }
            _ => {}
        }
        let StatsTracker {
            calls,
            cfg,
            norm,
            path,
            threshold,
            ..
        } = self;
        let threshold = *threshold;
        calls.message(m, &mut |c| {
            on_call(c);
            record_call(c, cfg, *norm, path, threshold, win);
        });
    }

    /// Flushes the handshakes still waiting at the end of the input into `win`.
    pub fn finish(
        &mut self,
        end: Timestamp,
        win: &mut ZkStats,
        on_call: &mut dyn FnMut(&Call<'_>),
    ) {
        let StatsTracker {
            calls,
            cfg,
            norm,
            path,
            threshold,
            ..
        } = self;
        let threshold = *threshold;
        calls.finish(end, &mut |c| {
            on_call(c);
            record_call(c, cfg, *norm, path, threshold, win);
        });
    }

    fn count_request(
        &mut self,
        m: &Msg<'_>,
        op: OpCode,
        body: &RequestBody<'_>,
        win: &mut ZkStats,
    ) {
        let conn = m.conn;
        let mut name = op.request_type();
        let mut raw_path = body.path().map(|p| p.0);
        let mut auth_for_key = None;
        match body {
            RequestBody::Create { mode, .. } if mode.is_ephemeral() => {
                name = "CreateEphemeralRequest";
            }
            RequestBody::Multi(ops) => {
                raw_path = ops.iter().find_map(|o| o.body.path().map(|p| p.0));
            }
            RequestBody::Auth { credential, .. } => {
                let mut c = *credential;
                c.redact = !self.cfg.show_credentials;
                self.cred.clear();
                push_display(&mut self.cred, c);
                // zktraffic's SetAuth path is `/` + the credential; the request itself has no
                // auth suffix (`per_auth/SetAuthRequest/tacos:tacos:`).
                self.path.clear();
                self.path.push('/');
                self.path.push_str(&self.cred);
                auth_for_key = Some("");
                if !self.creds.contains_key(&conn.id) && self.creds.len() >= self.cfg.max_conns {
                    self.creds.pop_first();
                    self.conns_evicted += 1;
                }
                self.creds.insert(conn.id, self.cred.as_str().into());
            }
            _ => {}
        }
        if op == OpCode::SASL && !self.creds.contains_key(&conn.id) {
            if self.creds.len() >= self.cfg.max_conns {
                self.creds.pop_first();
                self.conns_evicted += 1;
            }
            self.creds.insert(conn.id, "sasl".into());
        }
        if auth_for_key.is_none() {
            self.path.clear();
            if let Some(p) = raw_path {
                self.norm.write(&mut self.path, p);
            }
        }
        let watch = body.watch() == Some(true)
            || matches!(
                op,
                OpCode::SET_WATCHES | OpCode::SET_WATCHES2 | OpCode::ADD_WATCH
            );
        let cred = self.cred_of(conn.id);
        win.auth_seen(conn.client, cred);
        win.request(&Req {
            name,
            path: &self.path,
            ip: conn.client.ip(),
            auth: auth_for_key.unwrap_or(cred),
            size: m.size,
            write: is_write(op),
            watch,
        });
    }
}

fn record_call(
    c: &Call<'_>,
    cfg: &StatsConfig,
    norm: PathNorm,
    path: &mut String,
    threshold: Option<u64>,
    win: &mut ZkStats,
) {
    if threshold.is_some_and(|t| t == 0 || sample_hash(c.conn.id, c.start) > t) {
        if matches!(c.kind, CallKind::Event(_)) {
            win.sampled_out += 1;
        }
        return;
    }
    path.clear();
    if let Some(p) = c.path {
        norm.write(path, p);
    }
    match c.kind {
        CallKind::Request(op) => {
            if op == OpCode::PING && !cfg.include_pings {
                return;
            }
            win.outcome(c, path, op.request_type());
        }
        CallKind::Connect { session_requested } => {
            let name = if session_requested != 0 {
                "ReConnectRequest"
            } else {
                "ConnectRequest"
            };
            win.outcome(c, path, name);
        }
        CallKind::Event(e) => win.event(e.name().unwrap_or("UnknownWatchEvent"), path),
        CallKind::FourLetter(cmd) => win.four_letter(cmd),
    }
}

/// Tumbling windows of [`ZkStats`] on the capture clock: the daemon serves the last complete
/// one. Windows are aligned to multiples of their length since the epoch.
#[derive(Debug)]
pub struct WindowedStats {
    tracker: StatsTracker,
    cur: ZkStats,
    last: Option<ZkStats>,
    window_ns: i64,
    start: Option<i64>,
    completed: u64,
}

impl WindowedStats {
    /// Windows of `window_ns` nanoseconds (at least 1 ms).
    pub fn new(cfg: &StatsConfig, window_ns: i64) -> Self {
        WindowedStats {
            tracker: StatsTracker::new(cfg),
            cur: ZkStats::new(cfg),
            last: None,
            window_ns: window_ns.max(1_000_000),
            start: None,
            completed: 0,
        }
    }

    /// Moves the clock: closes the open window once `now` is past its end (an idle capture
    /// calls this on a timer with the capture clock). Returns true when a window closed.
    pub fn advance(&mut self, now: Timestamp) -> bool {
        let w = self.window_ns;
        let Some(start) = self.start else {
            self.start = Some(now.0.div_euclid(w) * w);
            return false;
        };
        if now.0 < start.saturating_add(w) {
            return false;
        }
        let new_start = now.0.div_euclid(w) * w;
        let mut done = std::mem::replace(&mut self.cur, ZkStats::new(&self.tracker.cfg));
        if new_start > start.saturating_add(w) {
            // Whole windows without traffic passed: the last complete one is empty.
            done.clear();
            done.span = Some((Timestamp(new_start - w), Timestamp(new_start)));
        } else {
            done.span = Some((Timestamp(start), Timestamp(start + w)));
        }
        self.last = Some(done);
        self.start = Some(new_start);
        self.completed += 1;
        true
    }

    /// End of input: pending handshakes are counted and the open window closes (it becomes
    /// the last complete one, however short).
    pub fn finish(&mut self, end: Timestamp) {
        self.finish_with(end, &mut |_| {});
    }

    /// [`WindowedStats::finish`], handing the flushed calls to `on_call`.
    pub fn finish_with(&mut self, end: Timestamp, on_call: &mut dyn FnMut(&Call<'_>)) {
        self.tracker.finish(end, &mut self.cur, on_call);
        let start = self.start.unwrap_or(end.0);
        let mut done = std::mem::replace(&mut self.cur, ZkStats::new(&self.tracker.cfg));
        done.span = Some((Timestamp(start), end.max(Timestamp(start))));
        self.last = Some(done);
        self.start = None;
        self.completed += 1;
    }

    /// Counts one message (moving the clock first), handing completed calls to `on_call`.
    pub fn message_with(&mut self, m: &Msg<'_>, on_call: &mut dyn FnMut(&Call<'_>)) {
        self.advance(m.ts);
        self.tracker.message(m, &mut self.cur, on_call);
    }

    /// The last complete window.
    pub fn last(&self) -> Option<&ZkStats> {
        self.last.as_ref()
    }

    /// The open window.
    pub fn current(&self) -> &ZkStats {
        &self.cur
    }

    /// Windows closed so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// The tracker (connection state counters).
    pub fn tracker(&self) -> &StatsTracker {
        &self.tracker
    }
}

impl ClientSink for WindowedStats {
    fn message(&mut self, m: &Msg<'_>) {
        self.message_with(m, &mut |_| {});
    }
}

/// A [`ClientSink`] counting everything into one window (no rotation): tests and one-shot
/// reports.
#[derive(Debug)]
pub struct StatsSink {
    /// The tracker.
    pub tracker: StatsTracker,
    /// The counts.
    pub stats: ZkStats,
}

impl StatsSink {
    /// A sink with these options.
    pub fn new(cfg: &StatsConfig) -> Self {
        StatsSink {
            tracker: StatsTracker::new(cfg),
            stats: ZkStats::new(cfg),
        }
    }

    /// Counts the handshakes still waiting at the end of the input.
    pub fn finish(&mut self, end: Timestamp) {
        self.tracker.finish(end, &mut self.stats, &mut |_| {});
    }
}

impl ClientSink for StatsSink {
    fn message(&mut self, m: &Msg<'_>) {
        self.tracker.message(m, &mut self.stats, &mut |_| {});
    }
}

/// Keys of zktraffic's defaults, for callers that need to tell them apart.
pub fn is_default_key(key: &str) -> bool {
    let k = key
        .strip_prefix("per_ip/")
        .or_else(|| key.strip_prefix("per_auth/"))
        .unwrap_or(key);
    matches!(
        k,
        "writes/"
            | "reads/"
            | "writesBytes/"
            | "readsBytes/"
            | "total/writes"
            | "total/reads"
            | "total/writeBytes"
            | "total/readBytes"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_keeps_heavy_hitters_and_totals() {
        let mut a = Accum::default();
        for i in 0..1000u64 {
            a.add(READS, &format!("/p{i}"), 1, 100);
            a.add(TOTAL, "/reads", 1, 100);
        }
        for _ in 0..50 {
            a.add(READS, "/hot", 1, 100);
        }
        assert!(a.keys <= 101);
        assert_eq!(a.get(TOTAL, "/reads"), 1000);
        assert!(a.get(READS, "/hot") >= 50);
        assert!(a.folded > 0);
    }

    #[test]
    fn export_cuts_families_but_not_totals() {
        let mut a = Accum::default();
        for (i, n) in [5u64, 3, 9, 1].iter().enumerate() {
            a.add(READS, &format!("/p{i}"), *n, 100);
        }
        for k in ["/writes", "/reads", "/writeBytes", "/readBytes"] {
            a.add(TOTAL, k, 7, 100);
        }
        let mut out = BTreeMap::new();
        a.export("", 2, &mut out);
        let keys: Vec<&str> = out.keys().map(|s| s.as_str()).collect();
        assert_eq!(
            keys,
            [
                "reads/p0",
                "reads/p2",
                "total/readBytes",
                "total/reads",
                "total/writeBytes",
                "total/writes"
            ]
        );
    }

    #[test]
    fn sampling_is_all_or_nothing_at_the_ends() {
        let all = StatsTracker::new(&StatsConfig::default());
        assert!(all.sampled(1, Timestamp(5)));
        let none = StatsTracker::new(&StatsConfig {
            sampling: 0.0,
            ..StatsConfig::default()
        });
        assert!(!none.sampled(1, Timestamp(5)));
        let half = StatsTracker::new(&StatsConfig {
            sampling: 0.5,
            ..StatsConfig::default()
        });
        let kept = (0..10_000)
            .filter(|i| half.sampled(7, Timestamp(*i)))
            .count();
        assert!((4_000..6_000).contains(&kept), "{kept}");
    }
}
