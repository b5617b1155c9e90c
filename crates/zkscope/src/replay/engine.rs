//! The replayer: one raw jute connection per captured session (two with `--compare`), requests
//! re-encoded by `zkscope_proto`'s encoder with paths mapped (chroot, sequential names), sent
//! in captured order at the captured pace, each after the replies of other sessions it came
//! after in the capture.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use zkscope_proto::client::{
    decode_event, decode_reply, decode_request, encode_connect_request, encode_request,
    encode_request_mapped, frame, ConnectRequest, ConnectResponse, OpCode, ReplyBody, RequestBody,
    RequestHeader, AUTH_XID, NOTIFICATION_XID, PING_XID,
};

use super::plan::{CapturedSession, Plan};

/// Largest reply accepted (ZooKeeper's own limit is 1 MiB by default).
const MAX_FRAME: usize = 16 << 20;

/// What the replay is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Target ensemble (HOST:PORT each).
    pub targets: Vec<String>,
    /// Second ensemble for `--compare` (reads only).
    pub compare: Option<Vec<String>>,
    /// Pace: captured time divided by this; `None` = as fast as possible.
    pub speed: Option<f64>,
    /// Re-send writes.
    pub allow_writes: bool,
    /// Prefix of every path (`/replay`), without a trailing slash.
    pub chroot: Option<Vec<u8>>,
    /// Digest credentials (`user:password`): each replaces the captured digest auth packets of
    /// the same user (the captured secret itself is never sent).
    pub auth: Vec<Vec<u8>>,
    /// Budget for a TCP connection and its handshake.
    pub connect_timeout: Duration,
    /// Longest wait for something the capture says will come (a reply, another session's
    /// progress, a sequential name).
    pub wait_timeout: Duration,
    /// Longest wait for a captured notification before a request that followed it.
    pub event_wait: Duration,
}

/// Why a captured request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// A write, without `--allow-writes` (or with `--compare`).
    Write,
    /// Captured credentials are never re-sent (auth, SASL).
    Credentials,
    /// setWatches is a reconnection's: the replay's connection never reconnects.
    Reconnect,
    /// The capture lost part of the request.
    Incomplete,
    /// After the session's closeSession.
    AfterClose,
    /// The connection to the target was lost before.
    ConnectionLost,
    /// No connection to the target.
    NotConnected,
}

impl Skip {
    /// Text for reports.
    pub fn text(self) -> &'static str {
        match self {
            Skip::Write => "write (no --allow-writes)",
            Skip::Credentials => "captured credentials",
            Skip::Reconnect => "reconnection only",
            Skip::Incomplete => "not captured whole",
            Skip::AfterClose => "after closeSession",
            Skip::ConnectionLost => "connection lost",
            Skip::NotConnected => "not connected",
        }
    }
}

/// What a read answered, for `--compare`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// getData's data.
    pub data: Option<Option<Vec<u8>>>,
    /// Children, sorted.
    pub children: Option<Vec<Vec<u8>>>,
    /// Stat versions: version, cversion, aversion, dataLength, numChildren.
    pub versions: Option<[i32; 5]>,
    /// The Stat's ephemeral owner (0: persistent), a session of the ensemble that answered.
    pub owner: Option<i64>,
    /// getACL's list (encoded).
    pub acl: Option<Vec<u8>>,
    /// getAllChildrenNumber.
    pub number: Option<i32>,
}

/// A reply the target gave.
#[derive(Debug, Clone)]
pub struct Replied {
    /// Error code.
    pub err: i32,
    /// Send to reply.
    pub latency_ns: i64,
    /// For `--compare`.
    pub answer: Option<Answer>,
}

/// What became of one captured request on one connection.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Not sent, and why.
    pub skipped: Option<Skip>,
    /// Sent.
    pub sent: bool,
    /// Sent this long after the requested pace said (ns).
    pub lag_ns: i64,
    /// Time spent waiting for other sessions' replies first (ns).
    pub order_wait_ns: i64,
    /// When it was sent, from the start of the replay (ns).
    pub sent_at_ns: i64,
    /// The reply.
    pub reply: Option<Replied>,
}

/// One replayed session.
#[derive(Debug, Default)]
pub struct SessionResult {
    /// Session id the target gave.
    pub session_id: Option<i64>,
    /// Per captured request (target).
    pub outcomes: Vec<Outcome>,
    /// Per captured request (`--compare` ensemble).
    pub compare: Option<Vec<Outcome>>,
    /// Session id the `--compare` ensemble gave.
    pub compare_session_id: Option<i64>,
    /// Notifications (type, path in the capture's names).
    pub events: Vec<(i32, Vec<u8>)>,
    /// What went wrong with the connection, if anything.
    pub error: Option<String>,
    /// Waits for other sessions or names that ran out of time.
    pub order_timeouts: u32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything sessions share.
struct Shared {
    opts: Options,
    created: HashSet<Vec<u8>>,
    /// captured name → replayed name (both without chroot)
    seq: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    /// replayed name → captured name
    seq_rev: Mutex<HashMap<Vec<u8>, Vec<u8>>>,
    seq_version: watch::Sender<u64>,
    progress: Vec<Progress>,
    /// Sessions a wait ran out of time on: nobody waits for them again.
    stalled: Mutex<HashSet<u32>>,
    start: Instant,
    t0: i64,
}

/// Per session: how many of its requests, in order, are done (answered or skipped).
struct Progress {
    done: Mutex<(Vec<bool>, u32)>,
    tx: watch::Sender<u32>,
}

impl Progress {
    fn new(n: usize) -> Self {
        Progress {
            done: Mutex::new((vec![false; n], 0)),
            tx: watch::channel(0).0,
        }
    }
    fn mark(&self, i: usize) {
        let mut g = lock(&self.done);
        let (flags, prefix) = &mut *g;
        if let Some(f) = flags.get_mut(i) {
            *f = true;
        }
        let mut p = *prefix as usize;
        while flags.get(p).copied().unwrap_or(false) {
            p += 1;
        }
        *prefix = p as u32;
        let p = *prefix;
        drop(g);
        self.tx.send_if_modified(|v| {
            let changed = *v != p;
            *v = p;
            changed
        });
    }
    fn mark_all(&self) {
        let mut g = lock(&self.done);
        let n = g.0.len();
        g.0.iter_mut().for_each(|f| *f = true);
        g.1 = n as u32;
        drop(g);
        self.tx.send_replace(n as u32);
    }
}

impl Shared {
    fn record_names(&self, captured: &[Vec<u8>], replayed: &[Vec<u8>]) {
        {
            let mut seq = lock(&self.seq);
            let mut rev = lock(&self.seq_rev);
            for (i, c) in captured.iter().enumerate() {
                let r = replayed.get(i).cloned().unwrap_or_else(|| c.clone());
                rev.insert(r.clone(), c.clone());
                seq.insert(c.clone(), r);
            }
        }
        self.seq_version.send_modify(|v| *v += 1);
    }

    /// Waits until every captured sequential name in `path` has its replayed counterpart.
    /// Returns false when a wait ran out of time (the name then maps to itself).
    async fn resolve(&self, path: &[u8]) -> bool {
        let mut ok = true;
        for end in prefix_ends(path) {
            let Some(prefix) = path.get(..end) else {
                continue;
            };
            if !self.created.contains(prefix) {
                continue;
            }
            let mut rx = self.seq_version.subscribe();
            let known = |_: &u64| lock(&self.seq).contains_key(prefix);
            if timeout(self.opts.wait_timeout, rx.wait_for(known))
                .await
                .is_err()
            {
                ok = false;
                self.record_names(&[prefix.to_vec()], &[]);
            }
        }
        ok
    }

    /// Captured path → the path to send (sequential names mapped, chroot added).
    fn map_out(&self, path: &[u8]) -> Vec<u8> {
        let seq = lock(&self.seq);
        let mut mapped = None;
        for end in prefix_ends(path).into_iter().rev() {
            if let (Some(p), Some(rest)) = (path.get(..end), path.get(end..)) {
                if let Some(r) = seq.get(p) {
                    let mut v = r.clone();
                    v.extend_from_slice(rest);
                    mapped = Some(v);
                    break;
                }
            }
        }
        let path = mapped.unwrap_or_else(|| path.to_vec());
        match &self.opts.chroot {
            Some(root) if path == b"/" => root.clone(),
            Some(root) => {
                let mut v = root.clone();
                v.extend_from_slice(&path);
                v
            }
            None => path,
        }
    }

    /// A path the target sent → the capture's name for it.
    fn map_in(&self, path: &[u8]) -> Vec<u8> {
        let path = match &self.opts.chroot {
            Some(root) if path == root.as_slice() => b"/".to_vec(),
            Some(root) => path.strip_prefix(root.as_slice()).unwrap_or(path).to_vec(),
            None => path.to_vec(),
        };
        let rev = lock(&self.seq_rev);
        for end in prefix_ends(&path).into_iter().rev() {
            if let (Some(p), Some(rest)) = (path.get(..end), path.get(end..)) {
                if let Some(c) = rev.get(p) {
                    let mut v = c.clone();
                    v.extend_from_slice(rest);
                    return v;
                }
            }
        }
        path
    }
}

/// Ends of the prefixes of `path` at component boundaries ("/a/b" → 2, 4).
fn prefix_ends(path: &[u8]) -> Vec<usize> {
    let mut v: Vec<usize> = path
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, &b)| b == b'/')
        .map(|(i, _)| i)
        .collect();
    if path.len() > 1 {
        v.push(path.len());
    }
    v
}

/// A request in flight.
struct Pending {
    xid: i32,
    idx: Option<usize>,
    opcode: OpCode,
    sent: Instant,
    /// Names the captured server chose for this request's creates.
    captured_created: Vec<Vec<u8>>,
    /// The create paths asked (mapped), in order.
    asked: Vec<Vec<u8>>,
}

/// One connection to a target.
struct Conn {
    write: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Mutex<VecDeque<Pending>>,
    next_xid: AtomicI32,
    last_write: Mutex<Instant>,
    results: Mutex<Vec<Outcome>>,
    events: Mutex<Vec<(i32, Vec<u8>)>>,
    events_tx: watch::Sender<u32>,
    lost: Mutex<Option<String>>,
    /// closeSession was sent: the target closing the connection is expected.
    closing: AtomicBool,
    /// Turns true when the connection is lost (ends every wait of the session).
    lost_tx: watch::Sender<bool>,
    session_id: i64,
    timeout_ms: i32,
    /// The primary connection (its replies count as the session's progress; its answers map
    /// sequential names).
    primary: bool,
    compare: bool,
}

async fn read_frame(r: &mut OwnedReadHalf) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await?;
    let n = i32::from_be_bytes(len);
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other(format!("bad frame length {n}")))?;
    let mut body = vec![0u8; n];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Connects to the first of `targets` (from `first` on) that answers the handshake.
async fn connect(
    targets: &[String],
    first: usize,
    timeout_ms: i32,
    budget: Duration,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, i64, i32, String), String> {
    let mut errors = Vec::new();
    for k in 0..targets.len() {
        let Some(t) = targets.get((first + k) % targets.len()) else {
            continue;
        };
        match timeout(budget, handshake(t, timeout_ms)).await {
            Ok(Ok((r, w, id, to))) => return Ok((r, w, id, to, t.clone())),
            Ok(Err(e)) => errors.push(format!("{t}: {e}")),
            Err(_) => errors.push(format!("{t}: no answer in {budget:?}")),
        }
    }
    Err(errors.join("; "))
}

async fn handshake(
    target: &str,
    timeout_ms: i32,
) -> Result<(OwnedReadHalf, OwnedWriteHalf, i64, i32), String> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut r, mut w) = stream.into_split();
    let mut body = Vec::new();
    let passwd = [0u8; 16];
    encode_connect_request(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout: timeout_ms,
            session_id: 0,
            passwd: Some(&passwd),
            read_only: Some(false),
        },
        &mut body,
    )
    .map_err(|e| e.to_string())?;
    let f = frame(&body).map_err(|e| e.to_string())?;
    // A server over its connection limit per client address (maxClientCnxns, 60 by default)
    // closes new connections at once.
    let closed = |e: std::io::Error| {
        format!(
            "the target closed the connection at the handshake ({e}; too many connections \
             from this address for its maxClientCnxns?)"
        )
    };
    w.write_all(&f).await.map_err(closed)?;
    let resp = read_frame(&mut r).await.map_err(closed)?;
    let c = ConnectResponse::decode(&resp).map_err(|e| format!("bad handshake answer: {e}"))?;
    if c.is_expired() {
        return Err("the server refused the session".into());
    }
    Ok((r, w, c.session_id, c.timeout))
}

impl Conn {
    /// Sends one request; `pending` is queued first so that the reply always finds it.
    async fn send(&self, mut p: Pending, mut body: Vec<u8>) -> Result<(), String> {
        if p.xid != PING_XID && p.xid != AUTH_XID {
            p.xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
            if let Some(x) = body.get_mut(..4) {
                x.copy_from_slice(&p.xid.to_be_bytes());
            }
        }
        if p.opcode == OpCode::CLOSE_SESSION {
            self.closing.store(true, Ordering::Relaxed);
        }
        let f = frame(&body).map_err(|e| e.to_string())?;
        let mut w = self.write.lock().await;
        p.sent = Instant::now();
        lock(&self.pending).push_back(p);
        *lock(&self.last_write) = Instant::now();
        w.write_all(&f).await.map_err(|e| {
            let msg = format!("connection lost: the target closed it ({e} while sending)");
            self.lose(&msg);
            msg
        })
    }

    fn lose(&self, why: &str) {
        let mut l = lock(&self.lost);
        if l.is_none() {
            *l = Some(why.to_string());
        }
        drop(l);
        self.lost_tx.send_replace(true);
    }

    /// Waits for `fut` at most `budget`, and not past the loss of the connection: its output
    /// when it completed.
    async fn wait<F: std::future::Future>(&self, budget: Duration, fut: F) -> Option<F::Output> {
        let mut lost = self.lost_tx.subscribe();
        tokio::select! {
            r = timeout(budget, fut) => r.ok(),
            _ = lost.wait_for(|&l| l) => None,
        }
    }

    fn lost(&self) -> Option<String> {
        lock(&self.lost).clone()
    }
}

/// Reads replies and notifications until the connection ends.
async fn reader(conn: Arc<Conn>, shared: Arc<Shared>, session: usize, mut r: OwnedReadHalf) {
    loop {
        let body = match read_frame(&mut r).await {
            Ok(b) => b,
            Err(e) => {
                // After closeSession the target closes the connection: expected once every
                // other request was answered.
                let expected = conn.closing.load(Ordering::Relaxed)
                    && lock(&conn.pending)
                        .iter()
                        .all(|p| p.opcode == OpCode::CLOSE_SESSION || p.opcode == OpCode::PING);
                if !expected {
                    let why = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        "connection lost: the target closed it".to_string()
                    } else {
                        format!("connection lost: the target closed it ({e})")
                    };
                    conn.lose(&why);
                }
                break;
            }
        };
        let Some(xid) = body
            .get(..4)
            .and_then(|x| <[u8; 4]>::try_from(x).ok())
            .map(i32::from_be_bytes)
        else {
            continue;
        };
        if xid == NOTIFICATION_XID {
            if let Ok((_, ev)) = decode_event(&body) {
                if let Some(path) = ev.path.filter(|_| ev.event_type.0 != 0) {
                    let p = shared.map_in(path.as_bytes());
                    lock(&conn.events).push((ev.event_type.0, p));
                    conn.events_tx.send_modify(|n| *n += 1);
                }
            }
            continue;
        }
        let p = {
            let mut q = lock(&conn.pending);
            let Some(pos) = q.iter().position(|p| p.xid == xid) else {
                continue;
            };
            q.remove(pos)
        };
        let Some(p) = p else { continue };
        let latency_ns = i64::try_from(p.sent.elapsed().as_nanos()).unwrap_or(i64::MAX);
        let Ok(reply) = decode_reply(&body, Some(p.opcode)) else {
            continue;
        };
        let err = reply.header.err.0;
        if xid == AUTH_XID && err != 0 {
            conn.lose("authentication failed (the target rejected the --auth credentials)");
        }
        if conn.primary && !p.captured_created.is_empty() {
            let got = created_paths(&reply.body, &p.asked, &shared);
            if err == 0 {
                shared.record_names(&p.captured_created, &got);
            } else {
                shared.record_names(&p.captured_created, &[]);
            }
        }
        if let Some(i) = p.idx {
            let answer = conn.compare.then(|| answer(&reply.body));
            if let Some(o) = lock(&conn.results).get_mut(i) {
                o.reply = Some(Replied {
                    err,
                    latency_ns,
                    answer,
                });
            }
            if conn.primary {
                if let Some(pr) = shared.progress.get(session) {
                    pr.mark(i);
                }
            }
        }
    }
}

/// Created paths of a create or multi reply that differ from the asked ones, in the capture's
/// terms (no chroot).
fn created_paths(body: &ReplyBody<'_>, asked: &[Vec<u8>], shared: &Shared) -> Vec<Vec<u8>> {
    let mut got: Vec<&[u8]> = Vec::new();
    match body {
        ReplyBody::Create { path } | ReplyBody::Create2 { path, .. } => got.push(path.as_bytes()),
        ReplyBody::Multi(results) => {
            for r in results.iter() {
                if let ReplyBody::Create { path } | ReplyBody::Create2 { path, .. } = r.body {
                    got.push(path.as_bytes());
                }
            }
        }
        _ => {}
    }
    got.iter()
        .zip(asked)
        .filter(|(g, a)| **g != a.as_slice())
        .map(|(g, _)| {
            let g: &[u8] = g;
            match &shared.opts.chroot {
                Some(root) => g.strip_prefix(root.as_slice()).unwrap_or(g).to_vec(),
                None => g.to_vec(),
            }
        })
        .collect()
}

fn versions(s: &zkscope_proto::client::Stat) -> [i32; 5] {
    [
        s.version,
        s.cversion,
        s.aversion,
        s.data_length,
        s.num_children,
    ]
}

fn answer(body: &ReplyBody<'_>) -> Answer {
    let mut a = Answer::default();
    let sorted = |c: &zkscope_proto::client::Strings<'_>| {
        let mut v: Vec<Vec<u8>> = c.iter().map(|s| s.as_bytes().to_vec()).collect();
        v.sort();
        v
    };
    match body {
        ReplyBody::GetData { data, stat } => {
            a.data = Some(data.bytes().map(<[u8]>::to_vec));
            a.versions = Some(versions(stat));
            a.owner = Some(stat.ephemeral_owner);
        }
        ReplyBody::Stat { stat } => {
            a.versions = Some(versions(stat));
            a.owner = Some(stat.ephemeral_owner);
        }
        ReplyBody::GetChildren { children } => a.children = Some(sorted(children)),
        ReplyBody::GetChildren2 { children, stat } => {
            a.children = Some(sorted(children));
            a.versions = Some(versions(stat));
            a.owner = Some(stat.ephemeral_owner);
        }
        ReplyBody::GetAcl { acl, stat } => {
            a.acl = Some(acl.raw().to_vec());
            a.versions = Some(versions(stat));
            a.owner = Some(stat.ephemeral_owner);
        }
        ReplyBody::GetAllChildrenNumber { total } => a.number = Some(*total),
        _ => {}
    }
    a
}

/// Sends a ping whenever nothing was written for a third of the session timeout.
async fn keepalive(conn: Arc<Conn>) {
    let every = Duration::from_millis(u64::try_from(conn.timeout_ms.max(300) / 3).unwrap_or(100));
    loop {
        tokio::time::sleep(every / 2).await;
        if conn.lost().is_some() {
            return;
        }
        let idle = lock(&conn.last_write).elapsed();
        if idle >= every {
            let mut body = Vec::new();
            let h = RequestHeader {
                xid: PING_XID,
                opcode: OpCode::PING,
            };
            if encode_request(h, &RequestBody::Empty, &mut body).is_err() {
                return;
            }
            let p = Pending {
                xid: PING_XID,
                idx: None,
                opcode: OpCode::PING,
                sent: Instant::now(),
                captured_created: Vec::new(),
                asked: Vec::new(),
            };
            if conn.send(p, body).await.is_err() {
                return;
            }
        }
    }
}

/// A connection's reader and keepalive tasks.
struct Tasks {
    reader: tokio::task::JoinHandle<()>,
    keepalive: tokio::task::JoinHandle<()>,
}

/// Opens one connection (handshake, auth) and starts its reader and keepalive.
async fn open(
    shared: &Arc<Shared>,
    session: usize,
    targets: &[String],
    timeout_ms: i32,
    n: usize,
    primary: bool,
) -> Result<(Arc<Conn>, Tasks), String> {
    let (r, w, id, to, _) =
        connect(targets, session, timeout_ms, shared.opts.connect_timeout).await?;
    let conn = Arc::new(Conn {
        write: tokio::sync::Mutex::new(w),
        pending: Mutex::new(VecDeque::new()),
        next_xid: AtomicI32::new(1),
        last_write: Mutex::new(Instant::now()),
        results: Mutex::new(vec![Outcome::default(); n]),
        events: Mutex::new(Vec::new()),
        events_tx: watch::channel(0).0,
        lost: Mutex::new(None),
        closing: AtomicBool::new(false),
        lost_tx: watch::channel(false).0,
        session_id: id,
        timeout_ms: to,
        primary,
        compare: shared.opts.compare.is_some(),
    });
    let reader = tokio::spawn(reader(conn.clone(), shared.clone(), session, r));
    let keepalive = tokio::spawn(keepalive(conn.clone()));
    Ok((conn, Tasks { reader, keepalive }))
}

/// Replays one captured session.
async fn session(shared: Arc<Shared>, s: usize, cap: Arc<CapturedSession>) -> SessionResult {
    let n = cap.reqs.len();
    let mut res = SessionResult::default();
    let timeout_ms = cap.timeout.filter(|&t| t > 0).unwrap_or(30_000);
    let progress = shared.progress.get(s);
    // Connect when the capture's session starts sending, not all at once.
    if let (Some(speed), Some(first)) = (shared.opts.speed, cap.reqs.first()) {
        let offset = ((first.ts - shared.t0).max(0) as f64 / speed) as u64;
        tokio::time::sleep_until(shared.start + Duration::from_nanos(offset)).await;
    }
    let skip_all = |why: Skip| {
        vec![
            Outcome {
                skipped: Some(why),
                ..Outcome::default()
            };
            n
        ]
    };
    let (conn, first_tasks) =
        match open(&shared, s, &shared.opts.targets, timeout_ms, n, true).await {
            Ok(c) => c,
            Err(e) => {
                res.error = Some(e);
                res.outcomes = skip_all(Skip::NotConnected);
                if let Some(p) = progress {
                    p.mark_all();
                }
                forget_names(&shared, &cap);
                return res;
            }
        };
    res.session_id = Some(conn.session_id);
    let mut tasks = vec![first_tasks];
    let other = match &shared.opts.compare {
        Some(targets) => match open(&shared, s, targets, timeout_ms, n, false).await {
            Ok((c, t)) => {
                tasks.push(t);
                Some(c)
            }
            Err(e) => {
                res.error = Some(format!("--compare: {e}"));
                None
            }
        },
        None => None,
    };
    let conns: Vec<Arc<Conn>> = std::iter::once(conn.clone()).chain(other.clone()).collect();
    let writes = shared.opts.allow_writes && shared.opts.compare.is_none();
    let mut closed = false;
    let mut event_deficit = 0u32;
    let mut stopped_at = n;
    for (i, req) in cap.reqs.iter().enumerate() {
        if let Some(_why) = conn.lost() {
            stopped_at = i;
            break;
        }
        let set = |o: Outcome| {
            for c in &conns {
                if let Some(slot) = lock(&c.results).get_mut(i) {
                    *slot = o.clone();
                }
            }
        };
        let skip = if closed {
            Some(Skip::AfterClose)
        } else if req.incomplete {
            Some(Skip::Incomplete)
        } else if req.opcode == OpCode::SASL
            || req.opcode == OpCode::AUTH && replacement_auth(&shared.opts, &req.frame).is_none()
        {
            Some(Skip::Credentials)
        } else if matches!(req.opcode, OpCode::SET_WATCHES | OpCode::SET_WATCHES2) {
            Some(Skip::Reconnect)
        } else if req.opcode.is_write() && req.opcode != OpCode::CLOSE_SESSION && !writes {
            // multi (14) counts as a write whatever it holds; multiRead (22) does not
            Some(Skip::Write)
        } else {
            None
        };
        if let Some(why) = skip {
            set(Outcome {
                skipped: Some(why),
                ..Outcome::default()
            });
            if let Some(rep) = &req.reply {
                if !rep.created.is_empty() {
                    shared.record_names(&rep.created, &[]);
                }
            }
            if let Some(p) = progress {
                p.mark(i);
            }
            continue;
        }
        // Order: what other sessions had done before this request was captured.
        let waited = Instant::now();
        for &(other, k) in &req.deps {
            if lock(&shared.stalled).contains(&other) {
                continue;
            }
            if let Some(p) = shared.progress.get(other as usize) {
                let mut rx = p.tx.subscribe();
                if conn
                    .wait(shared.opts.wait_timeout, rx.wait_for(|&d| d >= k))
                    .await
                    .is_none()
                    && conn.lost().is_none()
                {
                    // Waited long enough on that one: never again.
                    res.order_timeouts += 1;
                    lock(&shared.stalled).insert(other);
                }
            }
        }
        // The notifications this session had received by then.
        let want = req.events_before.saturating_sub(event_deficit);
        if want > 0 {
            let mut rx = conn.events_tx.subscribe();
            if conn
                .wait(shared.opts.event_wait, rx.wait_for(|&e| e >= want))
                .await
                .is_none()
            {
                event_deficit += want.saturating_sub(*rx.borrow());
            }
        }
        let order_wait_ns = i64::try_from(waited.elapsed().as_nanos()).unwrap_or(i64::MAX);
        let mut lag_ns = 0;
        if let Some(speed) = shared.opts.speed {
            let offset = ((req.ts - shared.t0).max(0) as f64 / speed) as u64;
            let at = shared.start + Duration::from_nanos(offset);
            tokio::time::sleep_until(at).await;
            lag_ns = i64::try_from(Instant::now().saturating_duration_since(at).as_nanos())
                .unwrap_or(i64::MAX);
        }
        // Sequential names this request refers to must be known first.
        let Ok(decoded) = decode_request(&req.frame) else {
            set(Outcome {
                skipped: Some(Skip::Incomplete),
                ..Outcome::default()
            });
            if let Some(p) = progress {
                p.mark(i);
            }
            continue;
        };
        let mut paths: Vec<Vec<u8>> = decoded
            .body
            .path()
            .map(|p| p.as_bytes().to_vec())
            .into_iter()
            .collect();
        let mut asked_raw: Vec<Vec<u8>> = Vec::new();
        match &decoded.body {
            RequestBody::Multi(ops) => {
                for op in ops.iter() {
                    if let Some(p) = op.body.path() {
                        paths.push(p.as_bytes().to_vec());
                        if matches!(op.body, RequestBody::Create { .. }) {
                            asked_raw.push(p.as_bytes().to_vec());
                        }
                    }
                }
            }
            RequestBody::Create { path, .. } => asked_raw.push(path.as_bytes().to_vec()),
            _ => {}
        }
        for p in &paths {
            let budget = shared.opts.wait_timeout.saturating_mul(2);
            if conn.wait(budget, shared.resolve(p)).await != Some(true) && conn.lost().is_none() {
                res.order_timeouts += 1;
            }
        }
        let mut body = Vec::new();
        if let Some(cred) = (req.opcode == OpCode::AUTH)
            .then(|| replacement_auth(&shared.opts, &req.frame))
            .flatten()
        {
            let mut w = zkscope_proto::client::Writer::new(&mut body);
            w.i32(AUTH_XID);
            w.i32(OpCode::AUTH.0);
            w.i32(0);
            let _ = w.ustring(Some(b"digest"));
            let _ = w.buffer(Some(&cred));
            let mut failed = false;
            for (k, c) in conns.iter().enumerate() {
                let p = Pending {
                    xid: AUTH_XID,
                    idx: Some(i),
                    opcode: OpCode::AUTH,
                    sent: Instant::now(),
                    captured_created: Vec::new(),
                    asked: Vec::new(),
                };
                if let Some(slot) = lock(&c.results).get_mut(i) {
                    slot.sent = true;
                    slot.lag_ns = lag_ns;
                    slot.order_wait_ns = order_wait_ns;
                    slot.sent_at_ns = since_start(&shared);
                }
                if c.send(p, body.clone()).await.is_err() && k == 0 {
                    failed = true;
                }
            }
            if failed {
                stopped_at = i + 1;
                break;
            }
            continue;
        }
        let encoded = encode_request_mapped(
            decoded.header,
            &decoded.body,
            &mut |p| Cow::Owned(shared.map_out(p)),
            &mut body,
        );
        if encoded.is_err() {
            // Unknown opcode: the captured bytes as they are (the xid is replaced on send).
            body = req.frame.clone();
        }
        let asked: Vec<Vec<u8>> = asked_raw.iter().map(|p| shared.map_out(p)).collect();
        let captured_created = req
            .reply
            .as_ref()
            .map(|r| r.created.clone())
            .unwrap_or_default();
        let mut failed = false;
        for (k, c) in conns.iter().enumerate() {
            if let Some(slot) = lock(&c.results).get_mut(i) {
                slot.sent = true;
                slot.lag_ns = lag_ns;
                slot.order_wait_ns = order_wait_ns;
                slot.sent_at_ns = since_start(&shared);
            }
            let p = Pending {
                // pings keep their special xid (the server answers them with it)
                xid: if req.opcode == OpCode::PING {
                    PING_XID
                } else {
                    0
                },
                idx: Some(i),
                opcode: req.opcode,
                sent: Instant::now(),
                captured_created: if k == 0 {
                    captured_created.clone()
                } else {
                    Vec::new()
                },
                asked: asked.clone(),
            };
            if c.send(p, body.clone()).await.is_err() && k == 0 {
                failed = true;
            }
        }
        if failed {
            stopped_at = i + 1;
            break;
        }
        if req.opcode == OpCode::CLOSE_SESSION {
            closed = true;
        }
    }
    // What was not sent because the connection was lost.
    if stopped_at < n {
        for c in &conns {
            let mut r = lock(&c.results);
            for o in r.iter_mut().skip(stopped_at) {
                if !o.sent && o.skipped.is_none() {
                    o.skipped = Some(Skip::ConnectionLost);
                }
            }
        }
    }
    // Notifications still due, then the replies, then the session ends.
    let total_events = cap.events.len() as u32;
    if conn.lost().is_none() && total_events > event_deficit {
        let mut rx = conn.events_tx.subscribe();
        let want = total_events - event_deficit;
        let _ = conn
            .wait(shared.opts.event_wait, rx.wait_for(|&e| e >= want))
            .await;
    }
    if !closed {
        for c in &conns {
            if c.lost().is_none() {
                let mut body = Vec::new();
                let h = RequestHeader {
                    xid: 0,
                    opcode: OpCode::CLOSE_SESSION,
                };
                if encode_request(h, &RequestBody::Empty, &mut body).is_ok() {
                    let p = Pending {
                        xid: 0,
                        idx: None,
                        opcode: OpCode::CLOSE_SESSION,
                        sent: Instant::now(),
                        captured_created: Vec::new(),
                        asked: Vec::new(),
                    };
                    let _ = c.send(p, body).await;
                }
            }
        }
    }
    // A reader ends when the target closes the connection after closeSession; replies still
    // missing then never came.
    let deadline = Instant::now() + shared.opts.wait_timeout;
    for (t, c) in tasks.into_iter().zip(&conns) {
        t.keepalive.abort();
        let abort = t.reader.abort_handle();
        if tokio::time::timeout_at(deadline, t.reader).await.is_err() {
            abort.abort();
            let unanswered = lock(&c.pending).iter().filter(|p| p.idx.is_some()).count();
            if unanswered > 0 {
                c.lose(&format!(
                    "the target left {unanswered} requests unanswered for {:?} (--wait-timeout)",
                    shared.opts.wait_timeout
                ));
            }
        }
    }
    if let Some(p) = progress {
        p.mark_all();
    }
    forget_names(&shared, &cap);
    res.error = res.error.or_else(|| conn.lost());
    if let (None, Some(o)) = (&res.error, &other) {
        res.error = o.lost().map(|e| format!("--compare: {e}"));
    }
    res.outcomes = std::mem::take(&mut *lock(&conn.results));
    res.compare_session_id = other.as_ref().map(|o| o.session_id);
    res.compare = other.map(|o| std::mem::take(&mut *lock(&o.results)));
    res.events = std::mem::take(&mut *lock(&conn.events));
    res
}

/// Names a session's creates would have given that are still unknown map to themselves, so
/// that nobody waits for them.
fn forget_names(shared: &Shared, cap: &CapturedSession) {
    let unknown: Vec<Vec<u8>> = {
        let seq = lock(&shared.seq);
        cap.reqs
            .iter()
            .filter_map(|r| r.reply.as_ref())
            .flat_map(|r| r.created.iter())
            .filter(|c| !seq.contains_key(*c))
            .cloned()
            .collect()
    };
    if !unknown.is_empty() {
        shared.record_names(&unknown, &[]);
    }
}

fn since_start(shared: &Shared) -> i64 {
    i64::try_from(shared.start.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

/// The `--auth` credential that replaces a captured digest auth packet: the one for the same
/// user. Other schemes, and users without one, are not replayed.
fn replacement_auth(opts: &Options, frame: &[u8]) -> Option<Vec<u8>> {
    let r = decode_request(frame).ok()?;
    let RequestBody::Auth {
        scheme, credential, ..
    } = r.body
    else {
        return None;
    };
    if scheme.as_bytes() != b"digest" {
        return None;
    }
    let user = credential.raw.split(|&b| b == b':').next()?;
    opts.auth
        .iter()
        .find(|c| c.split(|&b| b == b':').next() == Some(user))
        .cloned()
}

/// Replays `plan`; results are per captured session, in the plan's order, and the sequential
/// names that differ (captured → replayed).
pub async fn replay(
    plan: Arc<Plan>,
    opts: Options,
) -> (Vec<SessionResult>, Vec<(Vec<u8>, Vec<u8>)>) {
    let created = plan.created.clone();
    let shared = Arc::new(Shared {
        progress: plan
            .sessions
            .iter()
            .map(|s| Progress::new(s.reqs.len()))
            .collect(),
        stalled: Mutex::new(HashSet::new()),
        created,
        seq: Mutex::new(HashMap::new()),
        seq_rev: Mutex::new(HashMap::new()),
        seq_version: watch::channel(0).0,
        start: Instant::now(),
        t0: plan.first_ts.unwrap_or(0),
        opts,
    });
    if !shared.opts.allow_writes || shared.opts.compare.is_some() {
        let names: Vec<Vec<u8>> = plan.created.iter().cloned().collect();
        shared.record_names(&names, &[]);
    }
    let mut handles = Vec::new();
    for (s, sess) in plan.sessions.iter().enumerate() {
        let cap = Arc::new(sess.clone());
        handles.push(tokio::spawn(session(shared.clone(), s, cap)));
    }
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap_or_else(|e| SessionResult {
            error: Some(format!("replay task failed: {e}")),
            ..SessionResult::default()
        }));
    }
    let mut names: Vec<(Vec<u8>, Vec<u8>)> = lock(&shared.seq)
        .iter()
        .filter(|(c, r)| c != r)
        .map(|(c, r)| (c.clone(), r.clone()))
        .collect();
    names.sort();
    (out, names)
}

/// The result of asking whether a target is one of the captured servers.
pub async fn answers_as_captured(plan: &Plan, target: &str, budget: Duration) -> Option<String> {
    use tokio::net::lookup_host;
    if let Ok(addrs) = lookup_host(target).await {
        for a in addrs {
            if plan.servers.contains(&a) {
                return Some(format!("{target} is {a}, a server of the capture"));
            }
        }
    }
    if plan.fingerprints.is_empty() {
        return None;
    }
    // A target that does not answer within the budget cannot be told apart (and will fail the
    // replay anyway).
    timeout(budget, same_nodes(plan, target))
        .await
        .ok()
        .flatten()
}

/// Whether `target` holds a node of the capture's fingerprints (same czxid and ctime).
async fn same_nodes(plan: &Plan, target: &str) -> Option<String> {
    let (mut r, mut w, _, _) = handshake(target, 10_000).await.ok()?;
    let mut found = None;
    for (k, (path, czxid, ctime)) in plan.fingerprints.iter().enumerate() {
        let mut body = Vec::new();
        let h = RequestHeader {
            xid: k as i32 + 1,
            opcode: OpCode::EXISTS,
        };
        let b = RequestBody::PathWatch {
            path: zkscope_proto::JStr(path),
            watch: false,
        };
        if encode_request(h, &b, &mut body).is_err() {
            continue;
        }
        let Ok(f) = frame(&body) else { continue };
        if w.write_all(&f).await.is_err() {
            break;
        }
        let Ok(rep) = read_frame(&mut r).await else {
            break;
        };
        if let Ok(reply) = decode_reply(&rep, Some(OpCode::EXISTS)) {
            if let ReplyBody::Stat { stat } = reply.body {
                if stat.czxid == *czxid && stat.ctime == *ctime {
                    found = Some(format!(
                        "{target} holds {} created at the captured zxid {czxid:#x} and time: \
                         it is a captured server or a copy of its data",
                        String::from_utf8_lossy(path)
                    ));
                    break;
                }
            }
        }
    }
    let mut body = Vec::new();
    let h = RequestHeader {
        xid: 1000,
        opcode: OpCode::CLOSE_SESSION,
    };
    if encode_request(h, &RequestBody::Empty, &mut body).is_ok() {
        if let Ok(f) = frame(&body) {
            let _ = w.write_all(&f).await;
        }
    }
    found
}

/// Creates the chroot node and its parents (empty data, open ACL) when missing.
pub async fn ensure_chroot(
    targets: &[String],
    root: &[u8],
    budget: Duration,
) -> Result<(), String> {
    let (mut r, mut w, _, _, _) = connect(targets, 0, 10_000, budget).await?;
    let mut xid = 1;
    for end in prefix_ends(root) {
        let Some(p) = root.get(..end) else { continue };
        let mut body = Vec::new();
        let mut wr = zkscope_proto::client::Writer::new(&mut body);
        wr.i32(xid);
        wr.i32(OpCode::CREATE.0);
        let _ = wr.ustring(Some(p));
        let _ = wr.buffer(Some(b""));
        // world:anyone, all permissions
        wr.i32(1);
        wr.i32(31);
        let _ = wr.ustring(Some(b"world"));
        let _ = wr.ustring(Some(b"anyone"));
        wr.i32(0);
        let f = frame(&body).map_err(|e| e.to_string())?;
        w.write_all(&f).await.map_err(|e| e.to_string())?;
        let rep = timeout(budget, read_frame(&mut r))
            .await
            .map_err(|_| "no answer creating the chroot".to_string())?
            .map_err(|e| e.to_string())?;
        let h = decode_reply(&rep, Some(OpCode::CREATE)).map_err(|e| e.to_string())?;
        if h.header.err.0 != 0 && h.header.err.0 != -110 {
            return Err(format!(
                "cannot create {}: {}",
                String::from_utf8_lossy(p),
                h.header.err.name().unwrap_or("error")
            ));
        }
        xid += 1;
    }
    let mut body = Vec::new();
    let h = RequestHeader {
        xid,
        opcode: OpCode::CLOSE_SESSION,
    };
    if encode_request(h, &RequestBody::Empty, &mut body).is_ok() {
        if let Ok(f) = frame(&body) {
            let _ = w.write_all(&f).await;
            let _ = timeout(budget, read_frame(&mut r)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(chroot: Option<&str>) -> Shared {
        Shared {
            opts: Options {
                targets: Vec::new(),
                compare: None,
                speed: None,
                allow_writes: true,
                chroot: chroot.map(|c| c.as_bytes().to_vec()),
                auth: vec![b"app:secret".to_vec()],
                connect_timeout: Duration::from_secs(1),
                wait_timeout: Duration::from_secs(1),
                event_wait: Duration::from_secs(1),
            },
            created: HashSet::new(),
            seq: Mutex::new(HashMap::new()),
            seq_rev: Mutex::new(HashMap::new()),
            seq_version: watch::channel(0).0,
            progress: Vec::new(),
            stalled: Mutex::new(HashSet::new()),
            start: Instant::now(),
            t0: 0,
        }
    }

    #[test]
    fn paths_map_both_ways() {
        let sh = shared(Some("/r"));
        sh.record_names(
            &[b"/l/n-0000000042".to_vec()],
            &[b"/l/n-0000000003".to_vec()],
        );
        assert_eq!(sh.map_out(b"/l/n-0000000042"), b"/r/l/n-0000000003");
        assert_eq!(sh.map_out(b"/l/n-0000000042/x"), b"/r/l/n-0000000003/x");
        // a longer name that merely starts the same is another node
        assert_eq!(sh.map_out(b"/l/n-00000000421"), b"/r/l/n-00000000421");
        assert_eq!(sh.map_out(b"/"), b"/r");
        assert_eq!(sh.map_in(b"/r/l/n-0000000003/x"), b"/l/n-0000000042/x");
        assert_eq!(sh.map_in(b"/r"), b"/");
        let plain = shared(None);
        assert_eq!(plain.map_out(b"/a"), b"/a");
    }

    #[test]
    fn auth_is_replaced_only_for_the_same_digest_user() {
        let sh = shared(None);
        let auth = |scheme: &[u8], cred: &[u8]| {
            let mut f = Vec::new();
            let mut w = zkscope_proto::client::Writer::new(&mut f);
            w.i32(AUTH_XID);
            w.i32(OpCode::AUTH.0);
            w.i32(0);
            w.ustring(Some(scheme)).unwrap();
            w.buffer(Some(cred)).unwrap();
            f
        };
        assert_eq!(
            replacement_auth(&sh.opts, &auth(b"digest", b"app:captured")),
            Some(b"app:secret".to_vec())
        );
        assert_eq!(
            replacement_auth(&sh.opts, &auth(b"digest", b"other:x")),
            None
        );
        assert_eq!(replacement_auth(&sh.opts, &auth(b"ip", b"app:x")), None);
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_ends(b"/a/bc/d"), vec![2, 5, 7]);
        assert_eq!(prefix_ends(b"/"), Vec::<usize>::new());
    }
}
