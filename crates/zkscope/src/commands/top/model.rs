//! What `top` aggregates on the capture thread, and what it publishes for the screen.
//!
//! Calls (from [`CallBuilder`]) go into 2 s windows ([`Windowed`]) of a [`TopAgg`]: one keyed
//! table per view (operations, paths, clients, sessions, errors, watches), each bounded to
//! `max_keys` rows (later keys fold into one `(other)` row). The screen reads the closed windows
//! (2 s, 10 s and 40 s rates) and a copy of the open one through the window's snapshot handle;
//! the capture thread also keeps counts since the start (no latencies: they would make the
//! copies heavy), the per-window history of the sparklines, the sessions (negotiated timeout,
//! pending requests, last op) and the ensemble's roles, published behind a mutex that it holds
//! only to swap `Arc`s, at most every [`PUBLISH_WALL`] of wall time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use zkscope_analysis::elections::Tracker;
use zkscope_analysis::hash::FastMap;
use zkscope_analysis::window::{Aggregate, Merge, SnapshotHandle, Window, Windowed};
use zkscope_analysis::{write_value, Call, CallBuilder, CallKind, ClassOptions, Filter, GroupKey};
use zkscope_analysis::{LatencyStats, PathClasses, PathNorm};
use zkscope_capture::client::{Kind, Msg};
use zkscope_capture::pipeline::{Consumer, Event, StopHandle};
use zkscope_capture::Timestamp;
use zkscope_proto::client::OpCode;
use zkscope_proto::election::ServerState;

/// Nanoseconds in a second.
pub const S: i64 = 1_000_000_000;
/// Width of a window: the finest rate column.
pub const WINDOW_NS: i64 = 2 * S;
/// Closed windows kept: 40 s, the widest rate column.
pub const KEEP: usize = 20;
/// Points of the sparklines (one per window: 10 minutes).
pub const HISTORY: usize = 300;
/// Top clients kept per row (space-saving: the heavy hitters are exact enough).
pub const TOP_CLIENTS: usize = 8;
/// Servers remembered from client traffic.
const MAX_SERVERS: usize = 64;
/// Copies for the screen, at most this often (wall clock): a fast replay must not spend its
/// time copying tables.
const PUBLISH_WALL: Duration = Duration::from_millis(200);
/// Capture time between copies of the open window.
const PARTIAL_NS: i64 = S / 2;
/// Separates the two key columns of the errors and watches views.
pub const KEY_SEP: char = '\u{1f}';
/// Key of the row gathering keys beyond the bound.
pub const OTHER: &str = "(other)";

/// The main table's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum View {
    /// Calls by operation.
    Ops,
    /// Calls by path class.
    Paths,
    /// Calls by client address.
    Clients,
    /// Calls by session, with the session's timeout, pending requests and last op.
    Sessions,
    /// Failed calls by error and operation.
    Errors,
    /// Watches set (requests with the watch flag) and fired (notifications) by path class.
    Watches,
}

impl View {
    /// Every view, in the order of the tabs.
    pub const ALL: [View; 6] = [
        View::Ops,
        View::Paths,
        View::Clients,
        View::Sessions,
        View::Errors,
        View::Watches,
    ];

    /// Index into [`TopAgg::tables`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Tab title.
    pub fn title(self) -> &'static str {
        match self {
            View::Ops => "ops",
            View::Paths => "paths",
            View::Clients => "clients",
            View::Sessions => "sessions",
            View::Errors => "errors",
            View::Watches => "watches",
        }
    }

    /// Headers of the key columns.
    pub fn key_titles(self) -> &'static [&'static str] {
        match self {
            View::Ops => &["OP"],
            View::Paths => &["PATH"],
            View::Clients => &["CLIENT"],
            View::Sessions => &["SESSION"],
            View::Errors => &["ERROR", "OP"],
            View::Watches => &["PATH", "WATCH"],
        }
    }

    /// The key that selects it.
    pub fn key(self) -> char {
        match self {
            View::Ops => 'o',
            View::Paths => 'p',
            View::Clients => 'c',
            View::Sessions => 's',
            View::Errors => 'e',
            View::Watches => 'w',
        }
    }
}

/// The slowest call of a row in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SlowCall {
    /// When its reply came.
    pub end: Timestamp,
    /// Its latency.
    pub latency_ns: i64,
    /// Operation.
    pub op: Box<str>,
    /// Raw path (empty without one).
    pub path: Box<str>,
    /// Client `ip:port`.
    pub client: Box<str>,
    /// Error name.
    pub err: Box<str>,
}

/// Counters, latencies and heavy clients of one row.
#[derive(Debug, Clone, Default)]
pub struct Stat {
    /// Calls.
    pub count: u64,
    /// Calls answered with an error.
    pub errors: u64,
    /// Calls without a captured reply.
    pub no_reply: u64,
    /// Latencies of answered calls (empty in the counts since the start).
    pub latency: LatencyStats,
    /// Heaviest client addresses (space-saving counts).
    pub clients: Vec<(IpAddr, u64)>,
    /// The slowest call.
    pub slowest: Option<Box<SlowCall>>,
}

impl Stat {
    fn add(&mut self, c: &Call<'_>, client: Option<IpAddr>, latency: bool) {
        self.count += 1;
        match c.err {
            None => self.no_reply += 1,
            Some(e) if !e.is_ok() => self.errors += 1,
            Some(_) => {}
        }
        if let Some(l) = c.latency_ns {
            if latency {
                self.latency.record_ns(l);
            }
            if self.slowest.as_ref().is_none_or(|s| l > s.latency_ns) {
                self.slowest = Some(Box::new(slow_call(c, l)));
            }
        }
        if let Some(cl) = client {
            add_client(&mut self.clients, cl, 1);
        }
    }

    /// Adds another row (`latency`: its distribution too).
    pub fn merge(&mut self, o: &Stat, latency: bool) {
        self.count += o.count;
        self.errors += o.errors;
        self.no_reply += o.no_reply;
        if latency {
            self.latency.merge(&o.latency);
        }
        for (c, n) in &o.clients {
            add_client(&mut self.clients, *c, *n);
        }
        if let Some(s) = &o.slowest {
            if self
                .slowest
                .as_ref()
                .is_none_or(|m| s.latency_ns > m.latency_ns)
            {
                self.slowest = Some(s.clone());
            }
        }
    }
}

/// Space-saving: a full list replaces its smallest entry, which the new key inherits.
fn add_client(list: &mut Vec<(IpAddr, u64)>, client: IpAddr, n: u64) {
    if let Some(e) = list.iter_mut().find(|(c, _)| *c == client) {
        e.1 += n;
    } else if list.len() < TOP_CLIENTS {
        list.push((client, n));
    } else if let Some(min) = list.iter_mut().min_by_key(|(_, k)| *k) {
        *min = (client, min.1 + n);
    }
}

fn slow_call(c: &Call<'_>, latency_ns: i64) -> SlowCall {
    let mut op = String::new();
    write_value(&mut op, GroupKey::Op, PathNorm::default(), c);
    let mut err = String::new();
    write_value(&mut err, GroupKey::Error, PathNorm::default(), c);
    SlowCall {
        end: c.end,
        latency_ns,
        op: op.into(),
        path: c
            .path
            .map(|p| String::from_utf8_lossy(p).into())
            .unwrap_or_default(),
        client: c.conn.client.to_string().into(),
        err: err.into(),
    }
}

/// One view's rows, bounded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Rows by key.
    pub rows: FastMap<Box<str>, Stat>,
    /// Calls of keys beyond the bound.
    pub other: Stat,
}

impl Table {
    fn add(&mut self, key: &str, c: &Call<'_>, client: Option<IpAddr>, max: usize) {
        if let Some(s) = self.rows.get_mut(key) {
            s.add(c, client, true);
        } else if self.rows.len() < max {
            let mut s = Stat::default();
            s.add(c, client, true);
            self.rows.insert(key.into(), s);
        } else {
            self.other.add(c, client, true);
        }
    }

    /// Adds `o`'s rows (a key beyond the bound goes to `(other)`).
    pub fn merge(&mut self, o: &Table, max: usize, latency: bool) {
        for (k, s) in &o.rows {
            if let Some(m) = self.rows.get_mut(k) {
                m.merge(s, latency);
            } else if self.rows.len() < max {
                let mut m = Stat::default();
                m.merge(s, latency);
                self.rows.insert(k.clone(), m);
            } else {
                self.other.merge(s, latency);
            }
        }
        self.other.merge(&o.other, latency);
    }
}

/// One call with its key in every view (`None`: not in that view).
pub struct Item<'a> {
    /// The call.
    pub call: &'a Call<'a>,
    /// Keys, by [`View::index`].
    pub keys: [Option<&'a str>; 6],
    /// It counts in the totals (the same calls as `zkscope count`).
    pub main: bool,
    /// Client address.
    pub client: IpAddr,
}

/// A window of `top` (or the counts since the start).
#[derive(Debug, Clone)]
pub struct TopAgg {
    /// One table per view, by [`View::index`].
    pub tables: [Table; 6],
    /// Every call of the totals.
    pub total: Stat,
    /// Rows kept per table.
    pub max_keys: usize,
    /// Keep latency distributions (windows yes, counts since the start no).
    pub latency: bool,
}

impl TopAgg {
    /// Empty, with `max_keys` rows per table.
    pub fn new(max_keys: usize, latency: bool) -> Self {
        TopAgg {
            tables: Default::default(),
            total: Stat::default(),
            max_keys: max_keys.max(1),
            latency,
        }
    }
}

impl Aggregate for TopAgg {
    type Input<'a> = Item<'a>;
    fn add(&mut self, it: &Item<'_>) {
        if it.main {
            self.total.add(it.call, None, true);
        }
        for (i, k) in it.keys.iter().enumerate() {
            if let (Some(k), Some(t)) = (k, self.tables.get_mut(i)) {
                let client = (i != View::Clients.index()).then_some(it.client);
                t.add(k, it.call, client, self.max_keys);
            }
        }
    }
    fn empty_like(&self) -> Self {
        TopAgg::new(self.max_keys, self.latency)
    }
}

impl Merge for TopAgg {
    fn merge(&mut self, o: &Self) {
        let lat = self.latency;
        for (t, ot) in self.tables.iter_mut().zip(&o.tables) {
            t.merge(ot, self.max_keys, lat);
        }
        self.total.merge(&o.total, lat);
    }
}

/// One point of the sparklines: a closed window's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Window start.
    pub start: Timestamp,
    /// Calls.
    pub calls: u64,
    /// Failed calls (errors and no reply).
    pub errors: u64,
    /// Median latency (µs).
    pub p50_us: Option<u64>,
    /// 99th percentile (µs).
    pub p99_us: Option<u64>,
}

/// A session as the screen shows it.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client of its latest connection.
    pub client: SocketAddr,
    /// Negotiated timeout (ms), when the handshake was seen.
    pub timeout_ms: Option<i32>,
    /// Requests sent and not yet answered (pings aside).
    pub pending: u32,
    /// Its last operation (pings aside).
    pub last_op: &'static str,
    /// When it was last heard.
    pub last: Timestamp,
    /// closeSession answered.
    pub closed: bool,
}

/// A server of the ensemble as the election traffic shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Its id.
    pub sid: i64,
    /// Its state in its last vote.
    pub state: &'static str,
}

/// The ensemble as the election/quorum traffic shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ensemble {
    /// Servers heard in elections, by id.
    pub servers: Vec<Server>,
    /// The leader of the last round.
    pub leader: Option<i64>,
    /// Its epoch.
    pub epoch: Option<i64>,
    /// Election rounds seen.
    pub rounds: usize,
    /// The last round: start, and its duration if settled.
    pub last_election: Option<(Timestamp, Option<i64>)>,
    /// A round is under way.
    pub electing: bool,
    /// Servers seen in client traffic, with their calls.
    pub client_servers: Vec<(SocketAddr, u64)>,
}

/// What the capture thread publishes besides the windows.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Counts since the start (closed windows; add the open one).
    pub cumulative: Option<Arc<TopAgg>>,
    /// One point per closed window, oldest first.
    pub history: Arc<VecDeque<Point>>,
    /// Sessions by id.
    pub sessions: Arc<HashMap<i64, Session>>,
    /// The ensemble.
    pub ensemble: Arc<Ensemble>,
    /// The capture clock.
    pub now: Option<Timestamp>,
    /// The input ended.
    pub finished: bool,
}

/// A handle on what the capture thread publishes.
#[derive(Debug, Clone)]
pub struct Handles {
    /// The windows.
    pub windows: SnapshotHandle<TopAgg>,
    /// The rest.
    pub published: Arc<Mutex<Published>>,
}

impl Handles {
    /// The latest publication.
    pub fn published(&self) -> Published {
        self.published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Settings of the aggregation.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Rows per table and window, sessions remembered.
    pub max_keys: usize,
    /// Path depth of the paths view (0 = whole paths).
    pub depth: usize,
    /// Path classes (`None`: paths at the depth as they are).
    pub classes: Option<ClassOptions>,
    /// Which calls count (`zkscope count`'s).
    pub filter: Filter,
    /// `--batch`: blocks every this many windows.
    pub batch_windows: Option<u32>,
}

/// Lines of one `--batch` block.
pub type Block = String;

/// The capture thread's state (behind a mutex the ticker also takes to close idle windows).
pub struct TopState {
    settings: Settings,
    calls: CallBuilder,
    recorder: Recorder,
    open_idx: Option<i64>,
    cumulative: TopAgg,
    history: VecDeque<Point>,
    sessions: HashMap<i64, Session>,
    elections: Tracker,
    published: Arc<Mutex<Published>>,
    last_publish: Option<Instant>,
    /// The last copies of the counts since the start and of the history (they change only
    /// when a window closes: `None` until copied again).
    copies: Option<(Arc<TopAgg>, Arc<VecDeque<Point>>)>,
    first: Option<Timestamp>,
    last: Timestamp,
    finished: bool,
    batch: Option<(SyncSender<Block>, TopAgg, u32)>,
    batch_view: View,
    batch_rows: usize,
}

impl TopState {
    /// A state with `settings`; `batch` receives the `--batch` blocks (rows of `view`, at most
    /// `rows`, 0 = all).
    pub fn new(
        settings: Settings,
        batch: Option<SyncSender<Block>>,
        view: View,
        rows: usize,
    ) -> Self {
        let max = settings.max_keys.max(1);
        let windows = Windowed::new(WINDOW_NS, KEEP, TopAgg::new(max, true));
        // Only the screen reads the open window.
        let windows = if batch.is_some() {
            windows
        } else {
            windows.publish_partial_every(PARTIAL_NS)
        };
        let classes = settings.classes.clone().map(PathClasses::new);
        TopState {
            calls: CallBuilder::default(),
            recorder: Recorder {
                settings: settings.clone(),
                windows,
                classes,
                bufs: Default::default(),
                client_servers: BTreeMap::new(),
            },
            open_idx: None,
            cumulative: TopAgg::new(max, false),
            history: VecDeque::new(),
            sessions: HashMap::new(),
            elections: Tracker::default(),
            published: Arc::default(),
            last_publish: None,
            copies: None,
            first: None,
            last: Timestamp::ZERO,
            finished: false,
            batch: batch.map(|tx| (tx, TopAgg::new(max, true), 0)),
            batch_view: view,
            batch_rows: rows,
            settings,
        }
    }

    /// No more `--batch` blocks (the printer's loop ends).
    pub fn close_batch(&mut self) {
        self.batch = None;
    }

    /// Handles for the screen.
    pub fn handles(&self) -> Handles {
        Handles {
            windows: self.recorder.windows.handle(),
            published: self.published.clone(),
        }
    }

    /// One pipeline event.
    pub fn event(&mut self, ev: &Event<'_, '_>) {
        match ev {
            Event::Client(m) => self.message(m),
            _ => {
                self.elections.event(ev);
            }
        }
    }

    fn message(&mut self, m: &Msg<'_>) {
        self.first.get_or_insert(m.ts);
        self.last = self.last.max(m.ts);
        self.track_session(m);
        self.advance(m.ts);
        let TopState {
            calls, recorder, ..
        } = self;
        calls.message(m, &mut |c| recorder.record(c));
        self.after_advance(m.ts);
        self.maybe_publish(false);
    }

    fn track_session(&mut self, m: &Msg<'_>) {
        let max = self.settings.max_keys.max(1);
        match &m.kind {
            Kind::ConnectResponse(r) if r.session_id != 0 => {
                if !self.sessions.contains_key(&r.session_id) && self.sessions.len() >= max {
                    evict_oldest(&mut self.sessions);
                }
                let s = self.sessions.entry(r.session_id).or_insert(Session {
                    client: m.conn.client,
                    timeout_ms: None,
                    pending: 0,
                    last_op: "connect",
                    last: m.ts,
                    closed: false,
                });
                s.client = m.conn.client;
                s.timeout_ms = Some(r.timeout);
                s.last = m.ts;
                s.closed = false;
            }
            Kind::Request(r) if r.header.opcode != OpCode::PING => {
                let Some(id) = m.conn.session else { return };
                if !self.sessions.contains_key(&id) && self.sessions.len() >= max {
                    evict_oldest(&mut self.sessions);
                }
                let s = self.sessions.entry(id).or_insert(Session {
                    client: m.conn.client,
                    timeout_ms: None,
                    pending: 0,
                    last_op: "",
                    last: m.ts,
                    closed: false,
                });
                s.pending = s.pending.saturating_add(1);
                s.last = m.ts;
                let name = r.header.opcode.name().unwrap_or("?");
                s.last_op = name;
            }
            Kind::Reply {
                request: Some(p), ..
            }
            | Kind::Unanswered { request: p, .. }
                if p.opcode != OpCode::PING =>
            {
                let Some(s) = m.conn.session.and_then(|id| self.sessions.get_mut(&id)) else {
                    return;
                };
                s.pending = s.pending.saturating_sub(1);
                s.last = s.last.max(m.ts);
                if p.opcode == OpCode::CLOSE_SESSION {
                    s.closed = true;
                }
            }
            _ => {}
        }
    }

    /// Moves the capture clock (an idle live capture: the wall clock minus a margin).
    pub fn tick(&mut self, now: Timestamp) {
        // Before any traffic too: a quiet capture still shows (and prints) its empty windows.
        if self.finished || now <= self.last {
            return;
        }
        self.last = now;
        self.advance(now);
        self.after_advance(now);
        self.maybe_publish(false);
    }

    fn advance(&mut self, ts: Timestamp) {
        self.recorder.windows.advance(ts);
    }

    /// Processes the windows closed since the clock was last at `ts`.
    fn after_advance(&mut self, ts: Timestamp) {
        let idx = ts.0.div_euclid(WINDOW_NS);
        let Some(open) = self.open_idx else {
            self.open_idx = Some(idx);
            return;
        };
        if idx <= open {
            return;
        }
        self.open_idx = Some(idx);
        let snap = self.recorder.windows.handle().read();
        let closed: Vec<Arc<Window<TopAgg>>> = snap
            .closed
            .iter()
            .filter(|w| w.start.0 >= open * WINDOW_NS)
            .cloned()
            .collect();
        // Windows of a long silence beyond the snapshot's reach were empty.
        let seen = closed.len() as i64;
        let missed = (idx - open - seen).clamp(0, HISTORY as i64);
        for i in 0..missed {
            self.history_point(Point {
                start: Timestamp((open + i) * WINDOW_NS),
                ..Point::default()
            });
        }
        for w in &closed {
            self.closed(w);
        }
    }

    fn history_point(&mut self, p: Point) {
        self.copies = None;
        self.history.push_back(p);
        while self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn closed(&mut self, w: &Window<TopAgg>) {
        self.copies = None;
        self.cumulative.merge(&w.agg);
        let t = &w.agg.total;
        let [p50, p99] = t.latency.quantiles_us([0.5, 0.99]);
        self.history_point(Point {
            start: w.start,
            calls: t.count,
            errors: t.errors + t.no_reply,
            p50_us: p50,
            p99_us: p99,
        });
        if let Some((_, acc, n)) = &mut self.batch {
            acc.merge(&w.agg);
            *n += 1;
            let every = self.settings.batch_windows.unwrap_or(1).max(1);
            if *n >= every || !w.complete {
                self.emit_block(w.end);
            }
        }
    }

    fn emit_block(&mut self, end: Timestamp) {
        let Some((tx, acc, n)) = &mut self.batch else {
            return;
        };
        let empty = acc.empty_like();
        let interval = std::mem::replace(acc, empty);
        let secs = f64::from(*n) * (WINDOW_NS as f64 / S as f64);
        *n = 0;
        let block = super::batch::block(
            &interval,
            &self.cumulative,
            self.batch_view,
            self.batch_rows,
            end,
            secs,
        );
        // The printer has gone (stdout closed): nothing more to say.
        let _ = tx.send(block);
    }

    /// Copies what the screen reads, at most every [`PUBLISH_WALL`] unless `force`.
    fn maybe_publish(&mut self, force: bool) {
        if self.batch.is_some() && !force {
            return;
        }
        let now = Instant::now();
        if !force && self.last_publish.is_some_and(|t| now - t < PUBLISH_WALL) {
            return;
        }
        self.last_publish = Some(now);
        let (cumulative, history) = self
            .copies
            .get_or_insert_with(|| {
                (
                    Arc::new(self.cumulative.clone()),
                    Arc::new(self.history.clone()),
                )
            })
            .clone();
        let p = Published {
            cumulative: Some(cumulative),
            history,
            sessions: Arc::new(self.sessions.clone()),
            ensemble: Arc::new(self.ensemble()),
            now: (self.last != Timestamp::ZERO).then_some(self.last),
            finished: self.finished,
        };
        *self
            .published
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = p;
    }

    fn ensemble(&self) -> Ensemble {
        let rounds = self.elections.rounds();
        let mut e = Ensemble {
            rounds: rounds.len(),
            client_servers: self
                .recorder
                .client_servers
                .iter()
                .map(|(a, n)| (*a, *n))
                .collect(),
            ..Ensemble::default()
        };
        if let Some(r) = rounds.last() {
            e.leader = r.leader();
            e.epoch = r.zab_epoch.map(i64::from).or_else(|| r.epoch());
            let settled = r.all_settled() || r.agreed.is_some();
            e.electing = !r.closed && !settled;
            e.last_election = Some((r.start, settled.then(|| r.end().0 - r.start.0)));
            e.servers = r
                .votes
                .iter()
                .map(|(sid, v)| Server {
                    sid: *sid,
                    // A server seen settling (quorum traffic) has the role it settled in.
                    state: if !r.settled.contains_key(sid) {
                        role(v.state, *sid, e.leader)
                    } else if e.leader == Some(*sid) {
                        "leader"
                    } else if r.observers.contains(sid) {
                        "observer"
                    } else {
                        "follower"
                    },
                })
                .collect();
        }
        e
    }

    /// End of input: open calls and the open window close.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        let TopState {
            calls,
            recorder,
            last,
            ..
        } = self;
        calls.finish(*last, &mut |c| recorder.record(c));
        self.recorder.windows.finish(self.last);
        if let Some(open) = self.open_idx {
            let snap = self.recorder.windows.handle().read();
            if let Some(w) = snap.closed.back().filter(|w| w.start.0 >= open * WINDOW_NS) {
                let w = w.clone();
                self.closed(&w);
            }
        }
        self.finished = true;
        self.maybe_publish(true);
    }
}

/// Turns calls into window inputs (the part of the state the call builder's callback needs).
struct Recorder {
    settings: Settings,
    windows: Windowed<TopAgg>,
    classes: Option<PathClasses>,
    bufs: [String; 6],
    client_servers: BTreeMap<SocketAddr, u64>,
}

impl Recorder {
    fn record(&mut self, c: &Call<'_>) {
        let Some(on) = keys(c, &self.settings, self.classes.as_mut(), &mut self.bufs) else {
            return;
        };
        let main = self.settings.filter.accepts(c);
        if main {
            count_server(&mut self.client_servers, c.conn.server);
        }
        let bufs = &self.bufs;
        let keys: [Option<&str>; 6] = std::array::from_fn(|i| on[i].then(|| bufs[i].as_str()));
        self.windows.add(
            c.end,
            &Item {
                call: c,
                keys,
                main,
                client: c.conn.client.ip(),
            },
        );
    }
}

fn role(state: ServerState, sid: i64, leader: Option<i64>) -> &'static str {
    match state {
        ServerState::LEADING => "leader",
        ServerState::FOLLOWING => "follower",
        ServerState::OBSERVING => "observer",
        ServerState::LOOKING if leader == Some(sid) => "leader?",
        ServerState::LOOKING => "looking",
        _ => "?",
    }
}

fn count_server(map: &mut BTreeMap<SocketAddr, u64>, server: SocketAddr) {
    if let Some(n) = map.get_mut(&server) {
        *n += 1;
    } else if map.len() < MAX_SERVERS {
        map.insert(server, 1);
    }
}

/// Makes room: drops the tenth of the sessions heard from longest ago (closed ones first), so
/// that a storm of new sessions costs one pass per tenth, not one per session.
fn evict_oldest(sessions: &mut HashMap<i64, Session>) {
    let mut ages: Vec<((bool, Timestamp), i64)> = sessions
        .iter()
        .map(|(id, s)| ((!s.closed, s.last), *id))
        .collect();
    let n = (ages.len() / 10).max(1);
    if ages.len() > n {
        ages.select_nth_unstable(n - 1);
    }
    for (_, id) in ages.iter().take(n) {
        sessions.remove(id);
    }
}

/// Writes the keys of `c` into `bufs`; which views it is in, `None` when in none.
fn keys(
    c: &Call<'_>,
    settings: &Settings,
    classes: Option<&mut PathClasses>,
    bufs: &mut [String; 6],
) -> Option<[bool; 6]> {
    let main = settings.filter.accepts(c);
    let watch = match c.kind {
        CallKind::Event(_) => true,
        CallKind::Request(_) => c.watch == Some(true),
        _ => false,
    };
    if !main && !watch {
        return None;
    }
    for b in bufs.iter_mut() {
        b.clear();
    }
    let norm = PathNorm {
        depth: settings.depth,
        fold_sequential: false,
    };
    let [ops, paths, clients, sessions, errors, watches] = bufs;
    // The path class, in the paths view's buffer (the watches view copies it).
    if let Some(p) = c.path {
        match classes {
            Some(pc) => paths.push_str(pc.class(p).path),
            None => norm.write(paths, p),
        }
    }
    let mut on = [false; 6];
    if main {
        write_value(ops, GroupKey::Op, norm, c);
        on[View::Ops.index()] = true;
        on[View::Paths.index()] = c.path.is_some();
        write_value(clients, GroupKey::ClientIp, norm, c);
        on[View::Clients.index()] = true;
        if c.conn.session.is_some() {
            write_value(sessions, GroupKey::Session, norm, c);
            on[View::Sessions.index()] = true;
        }
        if c.err.is_none_or(|e| !e.is_ok()) {
            write_value(errors, GroupKey::Error, norm, c);
            errors.push(KEY_SEP);
            write_value(errors, GroupKey::Op, norm, c);
            on[View::Errors.index()] = true;
        }
    }
    if watch {
        let w = watches;
        w.push_str(paths);
        w.push(KEY_SEP);
        match c.kind {
            CallKind::Event(_) => w.push_str(c.kind.type_name()),
            _ => {
                w.push_str("set ");
                write_value(w, GroupKey::Op, norm, c);
            }
        }
        on[View::Watches.index()] = true;
    }
    Some(on)
}

/// Paces a replay at capture speed (or `speed` times it), and holds it while paused.
pub struct Pacer {
    /// Capture seconds per wall second; `None`: as fast as possible.
    pub speed: Option<f64>,
    /// Hold the replay.
    pub paused: Arc<AtomicBool>,
    /// Gives up waiting when set.
    pub stop: StopHandle,
    base: Option<(Instant, i64)>,
}

impl Pacer {
    /// A pacer at `speed`.
    pub fn new(speed: Option<f64>, paused: Arc<AtomicBool>, stop: StopHandle) -> Self {
        Pacer {
            speed,
            paused,
            stop,
            base: None,
        }
    }

    /// Waits until the wall clock reaches capture time `ts` (scaled).
    pub fn pace(&mut self, ts: Timestamp) {
        if self.paused.load(Ordering::Relaxed) {
            while self.paused.load(Ordering::Relaxed) && !self.stop.is_stopped() {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.base = None;
        }
        let Some(speed) = self.speed.filter(|s| *s > 0.0) else {
            return;
        };
        let (wall0, ts0) = *self.base.get_or_insert((Instant::now(), ts.0));
        let ahead_ns = (ts.0.saturating_sub(ts0)) as f64 / speed;
        let target = wall0 + Duration::from_nanos(ahead_ns.max(0.0) as u64);
        loop {
            let now = Instant::now();
            if now >= target || self.stop.is_stopped() {
                return;
            }
            if self.paused.load(Ordering::Relaxed) {
                return self.pace(ts);
            }
            std::thread::sleep((target - now).min(Duration::from_millis(50)));
        }
    }
}

/// The pipeline's consumer: paces (replays), then takes the state's lock.
pub struct Feed {
    /// Pacing of a replay (`None`: live).
    pub pacer: Option<Pacer>,
    /// The state.
    pub state: Arc<Mutex<TopState>>,
}

impl Consumer for Feed {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Some(p) = &mut self.pacer {
            if let Some(ts) = event_ts(ev) {
                p.pace(ts);
            }
        }
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .event(ev);
    }
}

fn event_ts(ev: &Event<'_, '_>) -> Option<Timestamp> {
    match ev {
        Event::Client(m) => Some(m.ts),
        Event::Election(m) => Some(m.ts),
        Event::Quorum(m) => Some(m.ts),
        Event::Note(_) => None,
    }
}
