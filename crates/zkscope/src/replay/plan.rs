//! From a capture to a replay plan: the captured sessions, each with its requests in order
//! (raw frame, time, captured outcome), its notifications, and what a faithful replay must
//! wait for (replies of other sessions that came before a request, notifications).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use zkscope_capture::client::{Kind, Msg};
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_proto::client::{decode_request, OpCode, ReplyBody, RequestBody};

/// A captured reply.
#[derive(Debug, Clone)]
pub struct CapturedReply {
    /// Capture time (ns).
    pub ts: i64,
    /// Error code.
    pub err: i32,
    /// Reply time minus request time.
    pub latency_ns: i64,
    /// Paths created with a name the server chose (sequential): (requested, created).
    pub created: Vec<Vec<u8>>,
}

/// A captured request.
#[derive(Debug, Clone)]
pub struct CapturedReq {
    /// Capture time (ns).
    pub ts: i64,
    /// Opcode.
    pub opcode: OpCode,
    /// The frame body as captured (header + record); empty when it was cut.
    pub frame: Vec<u8>,
    /// The frame was not captured whole or did not decode: it cannot be re-sent.
    pub incomplete: bool,
    /// The request's path (for the report's classes).
    pub path: Option<Vec<u8>>,
    /// Writes, watch-setting reads, closeSession: what other sessions may depend on.
    pub significant: bool,
    /// The captured outcome.
    pub reply: Option<CapturedReply>,
    /// Before this request was sent, these sessions (index, count) had had this many of their
    /// requests answered: a replay waits for the same.
    pub deps: Vec<(u32, u32)>,
    /// Notifications this session had received before this request.
    pub events_before: u32,
}

/// A captured notification.
#[derive(Debug, Clone)]
pub struct CapturedEvent {
    /// Capture time (ns).
    pub ts: i64,
    /// Event type code.
    pub event_type: i32,
    /// Path.
    pub path: Vec<u8>,
}

/// A captured session: one or more connections with the same session id.
#[derive(Debug, Clone, Default)]
pub struct CapturedSession {
    /// Session id, once the capture told it.
    pub id: Option<i64>,
    /// Requested timeout (ms), if the handshake was captured.
    pub timeout: Option<i32>,
    /// Connections seen.
    pub connections: u32,
    /// Requests, in order.
    pub reqs: Vec<CapturedReq>,
    /// Node notifications, in order.
    pub events: Vec<CapturedEvent>,
}

/// Everything a replay needs from the capture.
#[derive(Debug, Default)]
pub struct Plan {
    /// Sessions in order of first appearance.
    pub sessions: Vec<CapturedSession>,
    /// Server endpoints of the captured traffic.
    pub servers: BTreeSet<SocketAddr>,
    /// Names the captured servers chose (sequential creates): a replay maps them.
    pub created: HashSet<Vec<u8>>,
    /// Stats of persistent nodes seen in replies: (path, czxid, ctime) — a server that holds
    /// the same node created at the same zxid and time shares the captured history.
    pub fingerprints: Vec<(Vec<u8>, i64, i64)>,
    /// First captured request (ns).
    pub first_ts: Option<i64>,
}

/// Fingerprints kept.
const MAX_FINGERPRINTS: usize = 16;

/// The consumer that builds a [`Plan`].
#[derive(Debug, Default)]
pub struct Planner {
    plan: Plan,
    conn_session: HashMap<u64, usize>,
    by_id: HashMap<i64, usize>,
    pending: HashMap<(u64, i32), VecDeque<(usize, usize)>>,
    fingerprinted: HashSet<Vec<u8>>,
}

impl Planner {
    fn new_session(&mut self, id: Option<i64>) -> usize {
        let i = self.plan.sessions.len();
        self.plan.sessions.push(CapturedSession {
            id,
            ..CapturedSession::default()
        });
        if let Some(id) = id {
            self.by_id.insert(id, i);
        }
        i
    }

    /// The session of a connection (a connection seen mid-stream gets one).
    fn session_of(&mut self, m: &Msg<'_>) -> usize {
        if let Some(&s) = self.conn_session.get(&m.conn.id) {
            return s;
        }
        let s = match m.conn.session.and_then(|id| self.by_id.get(&id).copied()) {
            Some(s) => s,
            None => self.new_session(m.conn.session),
        };
        if let Some(sess) = self.plan.sessions.get_mut(s) {
            sess.connections += 1;
        }
        self.conn_session.insert(m.conn.id, s);
        s
    }

    fn message(&mut self, m: &Msg<'_>) {
        self.plan.servers.insert(m.conn.server);
        match &m.kind {
            Kind::ConnectRequest(c) => {
                let s = match (c.session_id != 0)
                    .then(|| self.by_id.get(&c.session_id).copied())
                    .flatten()
                {
                    Some(s) => s,
                    None => self.new_session((c.session_id != 0).then_some(c.session_id)),
                };
                if let Some(sess) = self.plan.sessions.get_mut(s) {
                    sess.connections += 1;
                    sess.timeout = Some(c.timeout);
                }
                self.conn_session.insert(m.conn.id, s);
            }
            Kind::ConnectResponse(r) => {
                let s = self.session_of(m);
                if r.session_id != 0 {
                    if let Some(sess) = self.plan.sessions.get_mut(s) {
                        if sess.id.is_none() {
                            sess.id = Some(r.session_id);
                            self.by_id.insert(r.session_id, s);
                        }
                    }
                }
            }
            Kind::Request(r) => {
                let s = self.session_of(m);
                let incomplete =
                    m.cut || m.error.is_some() || matches!(r.body, RequestBody::Partial { .. });
                let significant = r.header.opcode.is_write()
                    || r.body.watch() == Some(true)
                    || matches!(
                        r.header.opcode,
                        OpCode::ADD_WATCH | OpCode::SET_WATCHES | OpCode::SET_WATCHES2
                    );
                let req = CapturedReq {
                    ts: m.ts.0,
                    opcode: r.header.opcode,
                    frame: if incomplete {
                        Vec::new()
                    } else {
                        m.frame.to_vec()
                    },
                    incomplete,
                    path: r.body.path().map(|p| p.as_bytes().to_vec()),
                    significant,
                    reply: None,
                    deps: Vec::new(),
                    events_before: 0,
                };
                if self.plan.first_ts.is_none() {
                    self.plan.first_ts = Some(m.ts.0);
                }
                let Some(sess) = self.plan.sessions.get_mut(s) else {
                    return;
                };
                sess.reqs.push(req);
                let i = sess.reqs.len() - 1;
                self.pending
                    .entry((m.conn.id, r.header.xid))
                    .or_default()
                    .push_back((s, i));
            }
            Kind::Reply { reply, request } => {
                let Some(request) = request else { return };
                let Some(q) = self.pending.get_mut(&(m.conn.id, request.xid)) else {
                    return;
                };
                let Some((s, i)) = q.pop_front() else { return };
                if q.is_empty() {
                    self.pending.remove(&(m.conn.id, request.xid));
                }
                let Some(req) = self
                    .plan
                    .sessions
                    .get_mut(s)
                    .and_then(|sess| sess.reqs.get_mut(i))
                else {
                    return;
                };
                let created = created_names(&req.frame, &reply.body);
                for c in &created {
                    self.plan.created.insert(c.clone());
                }
                req.reply = Some(CapturedReply {
                    ts: m.ts.0,
                    err: reply.header.err.0,
                    latency_ns: m.ts.0 - req.ts,
                    created,
                });
                let stat = match reply.body {
                    ReplyBody::GetData { stat, .. }
                    | ReplyBody::Stat { stat }
                    | ReplyBody::GetChildren2 { stat, .. } => Some(stat),
                    _ => None,
                };
                if let (Some(stat), Some(path)) = (stat, &req.path) {
                    // czxid 0: built-in nodes (/, /zookeeper), the same on every server.
                    if stat.ephemeral_owner == 0
                        && stat.czxid != 0
                        && self.plan.fingerprints.len() < MAX_FINGERPRINTS
                        && self.fingerprinted.insert(path.clone())
                    {
                        self.plan
                            .fingerprints
                            .push((path.clone(), stat.czxid, stat.ctime));
                    }
                }
            }
            Kind::Event { event, .. } => {
                // State events (path-less: disconnected, expired…) are about the connection.
                let Some(path) = event.path else { return };
                if event.event_type.0 == 0 {
                    return;
                }
                let s = self.session_of(m);
                if let Some(sess) = self.plan.sessions.get_mut(s) {
                    sess.events.push(CapturedEvent {
                        ts: m.ts.0,
                        event_type: event.event_type.0,
                        path: path.as_bytes().to_vec(),
                    });
                }
            }
            _ => {}
        }
    }

    /// The plan, with the waits computed.
    pub fn finish(mut self) -> Plan {
        // Drop sessions without requests (four-letter words, handshakes only).
        self.plan.sessions.retain(|s| !s.reqs.is_empty());
        compute_waits(&mut self.plan.sessions);
        self.plan
    }
}

impl Consumer for Planner {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
}

/// Paths a create (or the creates of a multi) got that differ from the requested ones.
fn created_names(frame: &[u8], body: &ReplyBody<'_>) -> Vec<Vec<u8>> {
    let Ok(req) = decode_request(frame) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut one = |asked: &RequestBody<'_>, got: &ReplyBody<'_>| {
        let asked = match asked {
            RequestBody::Create { path, .. } => path.as_bytes(),
            _ => return,
        };
        let got = match got {
            ReplyBody::Create { path } | ReplyBody::Create2 { path, .. } => path.as_bytes(),
            _ => return,
        };
        if asked != got {
            out.push(got.to_vec());
        }
    };
    match (&req.body, body) {
        (RequestBody::Multi(ops), ReplyBody::Multi(results)) => {
            for (op, res) in ops.iter().zip(results.iter()) {
                one(&op.body, &res.body);
            }
        }
        (asked, got) => one(asked, got),
    }
    out
}

/// Fills `deps` (replies of other sessions captured before each request, as per-session
/// answered-request counts, only where they changed since the session's previous request)
/// and `events_before`.
fn compute_waits(sessions: &mut [CapturedSession]) {
    // (ts, 0 = reply | 1 = request, session, index): a reply at the same instant came first.
    let mut marks: Vec<(i64, u8, u32, u32)> = Vec::new();
    for (s, sess) in sessions.iter().enumerate() {
        for (i, r) in sess.reqs.iter().enumerate() {
            marks.push((r.ts, 1, s as u32, i as u32));
            if let (true, Some(rep)) = (r.significant, &r.reply) {
                marks.push((rep.ts, 0, s as u32, i as u32));
            }
        }
    }
    marks.sort_unstable();
    let mut log: Vec<(u32, u32)> = Vec::new();
    let mut cursor = vec![0usize; sessions.len()];
    let mut latest: HashMap<u32, u32> = HashMap::new();
    for (_, kind, s, i) in marks {
        if kind == 0 {
            log.push((s, i + 1));
            continue;
        }
        let Some(c) = cursor.get_mut(s as usize) else {
            continue;
        };
        latest.clear();
        for &(other, n) in log.get(*c..).unwrap_or_default() {
            if other != s {
                let e = latest.entry(other).or_insert(0);
                *e = (*e).max(n);
            }
        }
        *c = log.len();
        if let Some(req) = sessions
            .get_mut(s as usize)
            .and_then(|x| x.reqs.get_mut(i as usize))
        {
            let mut deps: Vec<(u32, u32)> = latest.iter().map(|(&a, &b)| (a, b)).collect();
            deps.sort_unstable();
            req.deps = deps;
        }
    }
    for sess in sessions.iter_mut() {
        let mut e = 0usize;
        let times: Vec<i64> = sess.events.iter().map(|x| x.ts).collect();
        for r in sess.reqs.iter_mut() {
            while times.get(e).is_some_and(|&t| t < r.ts) {
                e += 1;
            }
            r.events_before = e as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ts: i64, significant: bool, reply_ts: Option<i64>) -> CapturedReq {
        CapturedReq {
            ts,
            opcode: OpCode::GET_DATA,
            frame: Vec::new(),
            incomplete: false,
            path: None,
            significant,
            reply: reply_ts.map(|t| CapturedReply {
                ts: t,
                err: 0,
                latency_ns: t - ts,
                created: Vec::new(),
            }),
            deps: Vec::new(),
            events_before: 0,
        }
    }

    #[test]
    fn waits_follow_the_captured_order() {
        // Session 0 sets a watch (answered at 20) and writes (answered at 50); session 1
        // sends at 10 (before any), 30 (after the watch) and 60 (after both).
        let mut sessions = vec![
            CapturedSession {
                reqs: vec![
                    req(15, true, Some(20)),
                    req(40, true, Some(50)),
                    req(70, false, Some(71)),
                ],
                events: vec![CapturedEvent {
                    ts: 45,
                    event_type: 3,
                    path: b"/a".to_vec(),
                }],
                ..CapturedSession::default()
            },
            CapturedSession {
                reqs: vec![
                    req(10, false, Some(11)),
                    req(30, false, Some(31)),
                    req(60, false, Some(61)),
                ],
                ..CapturedSession::default()
            },
        ];
        compute_waits(&mut sessions);
        let deps = |s: usize, i: usize| sessions[s].reqs[i].deps.clone();
        assert_eq!(deps(1, 0), vec![]);
        assert_eq!(deps(1, 1), vec![(0, 1)]);
        assert_eq!(deps(1, 2), vec![(0, 2)]);
        // Session 1's replies are not significant: session 0 waits for nobody.
        assert_eq!(deps(0, 1), vec![]);
        assert_eq!(sessions[0].reqs[1].events_before, 0);
        assert_eq!(sessions[0].reqs[2].events_before, 1);
    }
}
