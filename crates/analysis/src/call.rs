//! Calls: each request together with its outcome (reply, or none), plus connect handshakes,
//! four-letter words and (as one-sided calls) watch events.
//!
//! [`CallBuilder`] turns the message stream of the client decoder into calls. It keeps the
//! little per-connection state that messages do not carry themselves (the auth identity and
//! a handshake waiting for its answer), bounded in size.

use std::collections::BTreeMap;

use zkscope_capture::client::{ConnInfo, Kind, Msg};
use zkscope_capture::packet::Timestamp;
use zkscope_proto::client::{ErrCode, EventType, OpCode, RequestBody};

/// What kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// A request with an opcode.
    Request(OpCode),
    /// A connect handshake (ConnectRequest, answered by ConnectResponse).
    Connect {
        /// The client asked to resume this session (0 = new session).
        session_requested: i64,
    },
    /// A watch notification sent by the server (no request, no latency).
    Event(EventType),
    /// A four-letter-word exchange.
    FourLetter(&'static str),
}

impl CallKind {
    /// zktraffic-style type name (`GetDataRequest`, `ConnectRequest`, `NodeDataChanged`,
    /// `FourLetterWord`).
    pub fn type_name(self) -> &'static str {
        match self {
            CallKind::Request(op) => op.request_type(),
            CallKind::Connect { .. } => "ConnectRequest",
            CallKind::Event(e) => e.name().unwrap_or("UnknownWatchEvent"),
            CallKind::FourLetter(_) => "FourLetterWord",
        }
    }

    /// The opcode, for requests.
    pub fn opcode(self) -> Option<OpCode> {
        match self {
            CallKind::Request(op) => Some(op),
            _ => None,
        }
    }

    /// True for pings.
    pub fn is_ping(self) -> bool {
        self == CallKind::Request(OpCode::PING)
    }
}

/// One call, reported when its outcome is known.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// What it is.
    pub kind: CallKind,
    /// The connection.
    pub conn: &'a ConnInfo,
    /// The connection's auth identity (see [`crate::GroupKey::Auth`]).
    pub auth: &'a str,
    /// The request's path (for events, the event's path).
    pub path: Option<&'a [u8]>,
    /// When the request was captured (for events, when the event was).
    pub start: Timestamp,
    /// When the outcome was known: the reply's capture time, or when the request was found
    /// to have none.
    pub end: Timestamp,
    /// Reply time minus request time, when there was a reply.
    pub latency_ns: Option<i64>,
    /// The reply's error code; `None` when no reply was captured. Connect handshakes answered
    /// with an invalid session report `SESSIONEXPIRED`.
    pub err: Option<ErrCode>,
    /// The watch flag of the request, if it has one.
    pub watch: Option<bool>,
    /// Request frame length (0 for events).
    pub request_size: u32,
    /// Reply frame length (0 when none; the whole reply for four-letter words).
    pub reply_size: u64,
}

/// Identity of connections that did not authenticate.
pub const NOAUTH: &str = "noauth";

#[derive(Debug)]
struct PendingConnect {
    info: ConnInfo,
    ts: Timestamp,
    size: u32,
    session_requested: i64,
}

#[derive(Debug, Default)]
struct ConnState {
    auth: Option<Box<str>>,
    connect: Option<PendingConnect>,
}

/// Builds [`Call`]s out of decoded messages.
#[derive(Debug)]
pub struct CallBuilder {
    conns: BTreeMap<u64, ConnState>,
    max_conns: usize,
    /// Connection states dropped to respect the bound.
    pub conns_evicted: u64,
    /// Replies whose request was not captured (they make no call).
    pub unpaired_replies: u64,
}

impl Default for CallBuilder {
    fn default() -> Self {
        Self::new(1 << 20)
    }
}

impl CallBuilder {
    /// A builder keeping state for at most `max_conns` connections (only connections that
    /// authenticated or are in their handshake have state; the oldest is dropped first).
    pub fn new(max_conns: usize) -> Self {
        CallBuilder {
            conns: BTreeMap::new(),
            max_conns: max_conns.max(1),
            conns_evicted: 0,
            unpaired_replies: 0,
        }
    }

    fn auth_of(&self, conn: u64) -> &str {
        self.conns
            .get(&conn)
            .and_then(|s| s.auth.as_deref())
            .unwrap_or(NOAUTH)
    }

    fn state(&mut self, conn: u64, out: &mut impl FnMut(&Call<'_>)) -> &mut ConnState {
        if !self.conns.contains_key(&conn) && self.conns.len() >= self.max_conns {
            if let Some((_, old)) = self.conns.pop_first() {
                self.conns_evicted += 1;
                if let Some(p) = old.connect {
                    let auth = old.auth.as_deref().unwrap_or(NOAUTH);
                    out(&unanswered_connect(&p, auth, p.ts));
                }
            }
        }
        self.conns.entry(conn).or_default()
    }

    fn tidy(&mut self, conn: u64) {
        if let Some(s) = self.conns.get(&conn) {
            if s.auth.is_none() && s.connect.is_none() {
                self.conns.remove(&conn);
            }
        }
    }

    /// Turns one message into zero or one call (an eviction may flush one more).
    pub fn message(&mut self, m: &Msg<'_>, out: &mut impl FnMut(&Call<'_>)) {
        let conn = m.conn;
        match &m.kind {
            Kind::Request(r) => {
                if let RequestBody::Auth {
                    scheme, credential, ..
                } = &r.body
                {
                    let id = identity(scheme.0, credential.raw, credential.digest);
                    self.state(conn.id, out).auth = Some(id.into_boxed_str());
                } else if r.header.opcode == OpCode::SASL
                    && self.conns.get(&conn.id).is_none_or(|s| s.auth.is_none())
                {
                    self.state(conn.id, out).auth = Some("sasl".into());
                }
            }
            Kind::Reply { reply, request } => {
                let Some(p) = request else {
                    self.unpaired_replies += 1;
                    return;
                };
                let call = Call {
                    kind: CallKind::Request(p.opcode),
                    conn,
                    auth: self.auth_of(conn.id),
                    path: p.path().map(|j| j.0),
                    start: p.ts,
                    end: m.ts,
                    latency_ns: Some(m.ts.0.saturating_sub(p.ts.0)),
                    err: Some(reply.header.err),
                    watch: p.watch,
                    request_size: p.size,
                    reply_size: u64::from(m.size),
                };
                out(&call);
            }
            Kind::Unanswered { request: p, .. } => {
                let call = Call {
                    kind: CallKind::Request(p.opcode),
                    conn,
                    auth: self.auth_of(conn.id),
                    path: p.path().map(|j| j.0),
                    start: p.ts,
                    end: m.ts,
                    latency_ns: None,
                    err: None,
                    watch: p.watch,
                    request_size: p.size,
                    reply_size: 0,
                };
                out(&call);
            }
            Kind::ConnectRequest(c) => {
                let p = PendingConnect {
                    info: conn.clone(),
                    ts: m.ts,
                    size: m.size,
                    session_requested: c.session_id,
                };
                let st = self.state(conn.id, out);
                // A new handshake on the same connection: the previous one got no answer.
                let old = st.connect.replace(p);
                if let Some(old) = old {
                    let auth = self.auth_of(conn.id);
                    out(&unanswered_connect(&old, auth, m.ts));
                }
            }
            Kind::ConnectResponse(resp) => {
                let Some(p) = self.conns.get_mut(&conn.id).and_then(|s| s.connect.take()) else {
                    return;
                };
                self.tidy(conn.id);
                // protocolVersion, timeOut, sessionId: 16 bytes, unless the capture cut them
                let err = if m.cut && m.frame.len() < 16 {
                    ErrCode::NOT_CAPTURED
                } else if resp.session_id == 0 || resp.timeout <= 0 {
                    ErrCode::SESSION_EXPIRED
                } else {
                    ErrCode::OK
                };
                let call = Call {
                    kind: CallKind::Connect {
                        session_requested: p.session_requested,
                    },
                    conn,
                    auth: self.auth_of(conn.id),
                    path: None,
                    start: p.ts,
                    end: m.ts,
                    latency_ns: Some(m.ts.0.saturating_sub(p.ts.0)),
                    err: Some(err),
                    watch: None,
                    request_size: p.size,
                    reply_size: u64::from(m.size),
                };
                out(&call);
            }
            Kind::Event { header, event } => {
                let call = Call {
                    kind: CallKind::Event(event.event_type),
                    conn,
                    auth: self.auth_of(conn.id),
                    path: event.path.map(|j| j.0),
                    start: m.ts,
                    end: m.ts,
                    latency_ns: None,
                    err: Some(header.err),
                    watch: None,
                    request_size: 0,
                    reply_size: u64::from(m.size),
                };
                out(&call);
            }
            Kind::FourLetter {
                command,
                reply_len,
                reply_ts,
                ..
            } => {
                let call = Call {
                    kind: CallKind::FourLetter(command),
                    conn,
                    auth: NOAUTH,
                    path: None,
                    start: m.ts,
                    end: reply_ts.unwrap_or(m.ts),
                    latency_ns: reply_ts.map(|t| t.0.saturating_sub(m.ts.0)),
                    err: reply_ts.map(|_| ErrCode::OK),
                    watch: None,
                    request_size: m.size,
                    reply_size: *reply_len,
                };
                out(&call);
            }
            _ => {}
        }
    }

    /// Reports the handshakes still waiting for an answer as calls without a reply (at the
    /// end of the input).
    pub fn finish(&mut self, end: Timestamp, out: &mut impl FnMut(&Call<'_>)) {
        for st in self.conns.values_mut() {
            if let Some(p) = st.connect.take() {
                let auth = st.auth.as_deref().unwrap_or(NOAUTH);
                out(&unanswered_connect(&p, auth, end.max(p.ts)));
            }
        }
        self.conns.retain(|_, s| s.auth.is_some());
    }

    /// Connections with state.
    pub fn tracked_connections(&self) -> usize {
        self.conns.len()
    }
}

fn unanswered_connect<'a>(p: &'a PendingConnect, auth: &'a str, end: Timestamp) -> Call<'a> {
    Call {
        kind: CallKind::Connect {
            session_requested: p.session_requested,
        },
        conn: &p.info,
        auth,
        path: None,
        start: p.ts,
        end,
        latency_ns: None,
        err: None,
        watch: None,
        request_size: p.size,
        reply_size: 0,
    }
}

/// The identity an auth packet establishes: the user of `digest` credentials (never what
/// follows the colon), otherwise the scheme's name.
pub fn identity(scheme: &[u8], credential: &[u8], digest: bool) -> String {
    let mut out = String::new();
    let user = digest
        .then(|| credential.iter().position(|&b| b == b':'))
        .flatten()
        .and_then(|i| credential.get(..i));
    match user {
        Some(u) if !u.is_empty() => crate::key::push_lossy(&mut out, u),
        _ => crate::key::push_lossy(&mut out, scheme),
    }
    if out.is_empty() {
        out.push_str("unknown");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_never_holds_the_secret() {
        assert_eq!(identity(b"digest", b"alice:s3cret", true), "alice");
        assert_eq!(identity(b"digest", b"nocolon", true), "digest");
        assert_eq!(identity(b"digest", b":pw", true), "digest");
        assert_eq!(identity(b"ip", b"10.0.0.1", false), "ip");
        assert_eq!(identity(b"", b"x:y", false), "unknown");
        assert_eq!(identity(b"digest", b"b\xffob:pw", true), "b\u{fffd}ob");
    }
}
