//! ZooKeeper client-port conversations: framing, the connect handshake, four-letter words, TLS
//! detection and request/reply pairing.
//!
//! [`ClientHandler`] is a [`StreamHandler`]: the TCP tracker feeds it reassembled bytes per
//! direction and it hands decoded messages to a [`ClientSink`]. Decoded messages borrow the
//! captured bytes; the only per-request copy is the request's path, kept (in a reused buffer)
//! until its reply arrives so that replies can be reported with what they answer.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use zkscope_proto::client::{
    decode_event, decode_reply, decode_request, four_letter_word, is_tls_client_hello,
    ConnectRequest, ConnectResponse, ErrCode, OpCode, Reply, ReplyHeader, Request, RequestHeader,
    WatchEvent, AUTH_XID, NOTIFICATION_XID, PING_XID, SET_WATCHES_XID,
};
use zkscope_proto::jute::{DecodeError, JStr};

use crate::framer::{FrameEvent, Framer};
use crate::packet::{TcpSegment, Timestamp};
use crate::tcp::{CloseReason, Direction, FlowKey, StreamHandler};

/// Which TCP endpoints are ZooKeeper servers, and which conversations to keep.
#[derive(Debug, Clone, Default)]
pub struct ServerSpec {
    /// Server ports (any address).
    pub ports: Vec<u16>,
    /// Server endpoints (address and port).
    pub servers: Vec<SocketAddr>,
    /// Keep only conversations whose client uses this port.
    pub client_port: Option<u16>,
    /// Keep only conversations with one of these hosts at either end.
    pub include_hosts: Vec<IpAddr>,
    /// Drop conversations with one of these hosts at either end.
    pub exclude_hosts: Vec<IpAddr>,
}

impl ServerSpec {
    fn is_server(&self, a: &SocketAddr) -> bool {
        self.ports.contains(&a.port()) || self.servers.contains(a)
    }

    /// The direction of a segment of a new conversation, or `None` to ignore it.
    pub fn classify(&self, seg: &TcpSegment<'_>) -> Option<Direction> {
        let (src_srv, dst_srv) = (self.is_server(&seg.src), self.is_server(&seg.dst));
        let dir = match (src_srv, dst_srv) {
            (false, true) => Direction::ToServer,
            (true, false) => Direction::ToClient,
            // Both ends look like servers: the SYN's sender is the client.
            (true, true) if seg.flags.syn && seg.flags.ack => Direction::ToClient,
            (true, true) => Direction::ToServer,
            (false, false) => return None,
        };
        let client = if dir == Direction::ToServer {
            &seg.src
        } else {
            &seg.dst
        };
        if self.client_port.is_some_and(|p| p != client.port()) {
            return None;
        }
        let hosts = [seg.src.ip(), seg.dst.ip()];
        if !self.include_hosts.is_empty() && !hosts.iter().any(|h| self.include_hosts.contains(h)) {
            return None;
        }
        if hosts.iter().any(|h| self.exclude_hosts.contains(h)) {
            return None;
        }
        Some(dir)
    }
}

/// Limits and switches of the client decoder.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Largest frame body accepted (ZooKeeper's default `jute.maxbuffer` is 1 MiB; servers can
    /// raise it). Larger length prefixes are treated as garbage.
    pub max_frame: usize,
    /// Pending requests kept per connection before the oldest is evicted.
    pub max_pending_per_conn: usize,
    /// Pending requests kept over all connections.
    pub max_pending_total: usize,
    /// Bytes of a four-letter-word reply kept for display.
    pub max_4lw_reply: usize,
    /// Show auth credentials instead of redacting them.
    pub show_credentials: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame: 16 << 20,
            max_pending_per_conn: 10_000,
            max_pending_total: 1_000_000,
            max_4lw_reply: 64 << 10,
            show_credentials: false,
        }
    }
}

/// One TCP connection to a ZooKeeper server, as messages report it.
#[derive(Debug, Clone, Serialize)]
pub struct ConnInfo {
    /// Serial number of the connection in this run (stable colours, grouping).
    pub id: u64,
    /// The client's address and port.
    pub client: SocketAddr,
    /// The server's address and port.
    pub server: SocketAddr,
    /// The session, once the handshake (or a reconnect request) told it.
    pub session: Option<i64>,
}

/// A request waiting for its reply (or reported as never answered).
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The request's xid.
    pub xid: i32,
    /// The request's opcode.
    pub opcode: OpCode,
    /// Capture time of the request.
    pub ts: Timestamp,
    /// Frame length of the request.
    pub size: u32,
    /// The watch flag, for requests that have one.
    pub watch: Option<bool>,
    path: Vec<u8>,
    has_path: bool,
}

impl PendingRequest {
    /// The request's path, if it had one.
    pub fn path(&self) -> Option<JStr<'_>> {
        self.has_path.then_some(JStr(&self.path))
    }

    /// Whether the reply may overtake replies to earlier requests.
    fn out_of_band(&self) -> bool {
        self.xid < 0 || self.opcode == OpCode::SASL
    }
}

/// A decoded message of a client conversation.
#[derive(Debug)]
pub struct Msg<'a> {
    /// Capture time of the segment that completed the message.
    pub ts: Timestamp,
    /// The connection it belongs to.
    pub conn: &'a ConnInfo,
    /// Frame length (the length prefix; for four-letter words, the command's 4 bytes).
    pub size: u32,
    /// What the message is.
    pub kind: Kind<'a>,
}

/// What a [`Msg`] is.
#[derive(Debug)]
pub enum Kind<'a> {
    /// The client's handshake.
    ConnectRequest(ConnectRequest<'a>),
    /// The server's handshake answer.
    ConnectResponse(ConnectResponse<'a>),
    /// A request.
    Request(Request<'a>),
    /// A reply; `request` is `None` when the request was not captured.
    Reply {
        /// The decoded reply.
        reply: Reply<'a>,
        /// The request it answers.
        request: Option<&'a PendingRequest>,
    },
    /// A watch notification (xid −1).
    Event {
        /// Its reply header (zxid −1 before 3.9).
        header: ReplyHeader,
        /// The event.
        event: WatchEvent<'a>,
    },
    /// A four-letter-word exchange, reported when the server closes the connection.
    FourLetter {
        /// The command, e.g. `ruok`.
        command: &'static str,
        /// The start of the text reply (see [`ClientConfig::max_4lw_reply`]).
        reply: &'a [u8],
        /// The whole reply's length.
        reply_len: u64,
        /// When the reply started.
        reply_ts: Option<Timestamp>,
    },
    /// The connection carries TLS: nothing in it can be decoded.
    Tls {
        /// Which side was seen starting TLS.
        dir: Direction,
    },
    /// A request that never got a reply: the connection closed, a later reply overtook it,
    /// or it was evicted to bound memory.
    Unanswered {
        /// The request.
        request: &'a PendingRequest,
        /// Why it has no reply.
        why: Unanswered,
    },
    /// A frame that did not decode. The stream stays in sync (framing does not depend on it).
    Undecodable {
        /// Which side sent it.
        dir: Direction,
        /// What failed.
        error: DecodeError,
        /// The frame body.
        frame: &'a [u8],
    },
}

/// Why a request is reported unanswered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unanswered {
    /// The connection ended (or the capture did) before the reply.
    Closed,
    /// A reply to a later request arrived first; ZooKeeper answers in order, so this reply was
    /// lost by the capture.
    Skipped,
    /// Too many pending requests: the oldest was dropped.
    Evicted,
}

/// Receives decoded client messages.
pub trait ClientSink {
    /// One decoded message.
    fn message(&mut self, m: &Msg<'_>);
}

/// Counters of the client decoder (everything that was not reported as a message is counted).
#[derive(Debug, Default, Clone, Serialize)]
pub struct ClientStats {
    /// Client-port connections seen.
    pub connections: u64,
    /// Requests decoded (handshakes not included).
    pub requests: u64,
    /// Replies decoded.
    pub replies: u64,
    /// Watch notifications.
    pub events: u64,
    /// ConnectRequests.
    pub connects: u64,
    /// ConnectResponses.
    pub connect_replies: u64,
    /// Four-letter-word exchanges.
    pub four_letter_words: u64,
    /// Connections found to carry TLS.
    pub tls_connections: u64,
    /// Frames whose contents did not decode.
    pub undecodable_frames: u64,
    /// Impossible length prefixes (the stream was resynchronised after each).
    pub bad_lengths: u64,
    /// Bytes skipped while looking for the next frame.
    pub resync_skipped_bytes: u64,
    /// Incomplete frames dropped at a gap or at the end.
    pub partial_frames_dropped: u64,
    /// Gaps in the TCP streams.
    pub tcp_gaps: u64,
    /// Bytes missing in those gaps.
    pub tcp_bytes_lost: u64,
    /// Replies whose request was not captured.
    pub unpaired_replies: u64,
    /// Requests that got no reply.
    pub unanswered_requests: u64,
    /// Pending requests dropped to bound memory.
    pub pending_evicted: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing seen yet in this direction.
    Start,
    /// The first frame is expected to be the handshake (the stream start was seen).
    Handshake,
    /// Past the handshake (or the handshake was not captured).
    Running,
}

/// Per-connection state.
pub struct ClientConn {
    info: ConnInfo,
    up: Framer,
    down: Framer,
    up_phase: Phase,
    down_phase: Phase,
    /// First bytes of the client's stream, held until four-letter words and TLS are ruled out.
    head: [u8; 4],
    head_len: u8,
    mode: Mode,
    pending: VecDeque<PendingRequest>,
    spare: Vec<PendingRequest>,
}

enum Mode {
    Zk,
    FourLetter {
        command: &'static str,
        ts: Timestamp,
        reply: Vec<u8>,
        reply_len: u64,
        reply_ts: Option<Timestamp>,
    },
    Tls,
}

/// The client-protocol [`StreamHandler`].
pub struct ClientHandler<S> {
    /// Which endpoints are servers.
    pub spec: ServerSpec,
    /// Limits.
    pub cfg: ClientConfig,
    /// Where messages go.
    pub sink: S,
    /// What was seen and what was lost.
    pub stats: ClientStats,
    next_id: u64,
    total_pending: usize,
}

/// Smallest frame bodies: a request header, a reply header.
const MIN_REQUEST: usize = 8;
const MIN_REPLY: usize = 16;

impl<S: ClientSink> ClientHandler<S> {
    /// A handler sending messages to `sink`.
    pub fn new(spec: ServerSpec, cfg: ClientConfig, sink: S) -> Self {
        ClientHandler {
            spec,
            cfg,
            sink,
            stats: ClientStats::default(),
            next_id: 0,
            total_pending: 0,
        }
    }

    fn client_bytes(&mut self, c: &mut ClientConn, ts: Timestamp, mut bytes: &[u8]) {
        match &mut c.mode {
            Mode::Zk => {}
            Mode::FourLetter { .. } | Mode::Tls => return,
        }
        if c.head_len < 4 && c.up_phase != Phase::Running {
            let take = (4 - c.head_len as usize).min(bytes.len());
            c.head[c.head_len as usize..c.head_len as usize + take].copy_from_slice(&bytes[..take]);
            c.head_len += take as u8;
            bytes = &bytes[take..];
            if c.head_len < 4 {
                return;
            }
            let head = c.head;
            if let Some(command) = four_letter_word(head) {
                self.stats.four_letter_words += 1;
                c.mode = Mode::FourLetter {
                    command,
                    ts,
                    reply: Vec::new(),
                    reply_len: 0,
                    reply_ts: None,
                };
                return;
            }
            if is_tls_client_hello(&head) {
                self.enter_tls(c, ts, Direction::ToServer);
                return;
            }
            self.feed(c, Direction::ToServer, ts, &head);
        }
        self.feed(c, Direction::ToServer, ts, bytes);
    }

    fn server_bytes(&mut self, c: &mut ClientConn, ts: Timestamp, bytes: &[u8]) {
        match &mut c.mode {
            Mode::Zk => {}
            Mode::Tls => return,
            Mode::FourLetter {
                reply,
                reply_len,
                reply_ts,
                ..
            } => {
                let keep = self.cfg.max_4lw_reply.saturating_sub(reply.len());
                reply.extend_from_slice(&bytes[..keep.min(bytes.len())]);
                *reply_len += bytes.len() as u64;
                reply_ts.get_or_insert(ts);
                return;
            }
        }
        if c.down_phase == Phase::Start && is_tls_client_hello(bytes) {
            self.enter_tls(c, ts, Direction::ToClient);
            return;
        }
        self.feed(c, Direction::ToClient, ts, bytes);
    }

    fn enter_tls(&mut self, c: &mut ClientConn, ts: Timestamp, dir: Direction) {
        self.stats.tls_connections += 1;
        c.mode = Mode::Tls;
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size: 0,
            kind: Kind::Tls { dir },
        });
    }

    /// Runs bytes of one direction through its framer and handles each event.
    fn feed(&mut self, c: &mut ClientConn, dir: Direction, ts: Timestamp, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // Frames may borrow the framer's buffer while the connection is updated, so the framer
        // is taken out of the connection for the push (a cheap move, no allocation).
        let slot = match dir {
            Direction::ToServer => &mut c.up,
            Direction::ToClient => &mut c.down,
        };
        let mut framer = std::mem::replace(slot, Framer::new(0, 0, true));
        let mut validator = |len: usize, head: &[u8]| match dir {
            Direction::ToServer => plausible_request(len, head),
            Direction::ToClient => plausible_reply(len, head),
        };
        framer.push(bytes, &mut validator, &mut |e| match e {
            FrameEvent::Frame { body } => self.frame(c, dir, ts, body),
            FrameEvent::BadLength { .. } => self.stats.bad_lengths += 1,
            FrameEvent::Skipped { bytes } => self.stats.resync_skipped_bytes += bytes,
        });
        match dir {
            Direction::ToServer => c.up = framer,
            Direction::ToClient => c.down = framer,
        }
    }

    /// One complete frame.
    fn frame(&mut self, c: &mut ClientConn, dir: Direction, ts: Timestamp, body: &[u8]) {
        let size = body.len() as u32;
        match dir {
            Direction::ToServer => {
                let phase = std::mem::replace(&mut c.up_phase, Phase::Running);
                let handshake = match phase {
                    Phase::Handshake => true,
                    Phase::Start => ConnectRequest::looks_like(body),
                    Phase::Running => false,
                };
                if handshake {
                    match ConnectRequest::decode(body) {
                        Ok(req) => {
                            self.stats.connects += 1;
                            if req.session_id != 0 {
                                c.info.session = Some(req.session_id);
                            }
                            c.down_phase = Phase::Handshake;
                            self.emit(c, ts, size, Kind::ConnectRequest(req));
                        }
                        Err(error) => self.undecodable(c, dir, ts, body, error),
                    }
                    return;
                }
                self.request(c, ts, body);
            }
            Direction::ToClient => {
                let phase = std::mem::replace(&mut c.down_phase, Phase::Running);
                let handshake = match phase {
                    Phase::Handshake => {
                        !plausible_reply(body.len(), body) || ConnectResponse::looks_like(body)
                    }
                    Phase::Start => ConnectResponse::looks_like(body),
                    Phase::Running => false,
                };
                if handshake {
                    match ConnectResponse::decode(body) {
                        Ok(resp) => {
                            self.stats.connect_replies += 1;
                            c.info.session = (resp.session_id != 0).then_some(resp.session_id);
                            self.emit(c, ts, size, Kind::ConnectResponse(resp));
                        }
                        Err(error) => self.undecodable(c, dir, ts, body, error),
                    }
                    return;
                }
                self.reply(c, ts, body);
            }
        }
    }

    fn request(&mut self, c: &mut ClientConn, ts: Timestamp, body: &[u8]) {
        let size = body.len() as u32;
        let decoded = decode_request(body);
        let header = match &decoded {
            Ok(r) => r.header,
            Err(_) => match RequestHeader::decode(body) {
                Ok(h) => h,
                Err(error) => return self.undecodable(c, Direction::ToServer, ts, body, error),
            },
        };
        // Remember the request until its reply (pings and closes included: they are answered).
        let mut p = c.spare.pop().unwrap_or_else(|| PendingRequest {
            xid: 0,
            opcode: OpCode(0),
            ts,
            size: 0,
            watch: None,
            path: Vec::new(),
            has_path: false,
        });
        p.xid = header.xid;
        p.opcode = header.opcode;
        p.ts = ts;
        p.size = size;
        p.path.clear();
        p.has_path = false;
        p.watch = None;
        if let Ok(r) = &decoded {
            if let Some(path) = r.body.path() {
                p.path.extend_from_slice(path.0);
                p.has_path = true;
            }
            p.watch = r.body.watch();
        }
        if c.pending.len() >= self.cfg.max_pending_per_conn
            || self.total_pending >= self.cfg.max_pending_total
        {
            if let Some(old) = c.pending.pop_front() {
                self.total_pending -= 1;
                self.stats.pending_evicted += 1;
                self.report_unanswered(c, ts, old, Unanswered::Evicted);
            }
        }
        c.pending.push_back(p);
        self.total_pending += 1;
        match decoded {
            Ok(mut req) => {
                self.stats.requests += 1;
                if self.cfg.show_credentials {
                    req.body.reveal_credentials();
                }
                self.emit(c, ts, size, Kind::Request(req));
            }
            Err(error) => self.undecodable(c, Direction::ToServer, ts, body, error),
        }
    }

    fn reply(&mut self, c: &mut ClientConn, ts: Timestamp, body: &[u8]) {
        let size = body.len() as u32;
        let header = match ReplyHeader::decode(body) {
            Ok(h) => h,
            Err(error) => return self.undecodable(c, Direction::ToClient, ts, body, error),
        };
        if header.xid == NOTIFICATION_XID {
            return match decode_event(body) {
                Ok((header, event)) => {
                    self.stats.events += 1;
                    self.emit(c, ts, size, Kind::Event { header, event });
                }
                Err(error) => self.undecodable(c, Direction::ToClient, ts, body, error),
            };
        }
        let found = match c.pending.front() {
            Some(p) if p.xid == header.xid => Some(0),
            _ => c.pending.iter().position(|p| p.xid == header.xid),
        };
        let request = found.and_then(|k| {
            let p = c.pending.remove(k)?;
            self.total_pending -= 1;
            // Replies come in request order, except out-of-band ones (auth, SASL, pings from
            // some clients, UNIMPLEMENTED for unknown opcodes). Earlier normal requests that
            // are still waiting lost their reply in the capture.
            if k > 0 && !p.out_of_band() && header.err != ErrCode::UNIMPLEMENTED {
                let mut i = 0;
                while i < c.pending.len() && i < k {
                    if c.pending[i].out_of_band() {
                        i += 1;
                        continue;
                    }
                    if let Some(old) = c.pending.remove(i) {
                        self.total_pending -= 1;
                        self.report_unanswered(c, ts, old, Unanswered::Skipped);
                    }
                }
            }
            Some(p)
        });
        let opcode = request.as_ref().map(|p| p.opcode);
        if request.is_none() {
            self.stats.unpaired_replies += 1;
        }
        match decode_reply(body, opcode) {
            Ok(reply) => {
                self.stats.replies += 1;
                self.emit(
                    c,
                    ts,
                    size,
                    Kind::Reply {
                        reply,
                        request: request.as_ref(),
                    },
                );
            }
            Err(error) => self.undecodable(c, Direction::ToClient, ts, body, error),
        }
        if let Some(p) = request {
            c.spare.push(p);
        }
    }

    fn report_unanswered(
        &mut self,
        c: &mut ClientConn,
        ts: Timestamp,
        p: PendingRequest,
        why: Unanswered,
    ) {
        self.stats.unanswered_requests += 1;
        self.emit(c, ts, p.size, Kind::Unanswered { request: &p, why });
        c.spare.push(p);
    }

    fn undecodable(
        &mut self,
        c: &ClientConn,
        dir: Direction,
        ts: Timestamp,
        frame: &[u8],
        error: DecodeError,
    ) {
        self.stats.undecodable_frames += 1;
        self.emit(
            c,
            ts,
            frame.len() as u32,
            Kind::Undecodable { dir, error, frame },
        );
    }

    fn emit(&mut self, c: &ClientConn, ts: Timestamp, size: u32, kind: Kind<'_>) {
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size,
            kind,
        });
    }

    fn finish_conn(&mut self, mut c: ClientConn, ts: Timestamp) {
        if let Mode::FourLetter {
            command,
            ts: cmd_ts,
            reply,
            reply_len,
            reply_ts,
        } = std::mem::replace(&mut c.mode, Mode::Zk)
        {
            self.emit(
                &c,
                cmd_ts,
                4,
                Kind::FourLetter {
                    command,
                    reply: &reply,
                    reply_len,
                    reply_ts,
                },
            );
        }
        let dropped = c.up.buffered() + c.down.buffered();
        if dropped > 0 {
            self.stats.partial_frames_dropped += 1;
        }
        while let Some(p) = c.pending.pop_front() {
            self.total_pending -= 1;
            self.report_unanswered(&mut c, ts, p, Unanswered::Closed);
        }
    }
}

impl<S: ClientSink> StreamHandler for ClientHandler<S> {
    type Conn = ClientConn;

    fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
        self.spec.classify(seg)
    }

    fn open(&mut self, key: &FlowKey, _ts: Timestamp, saw_syn: bool) -> ClientConn {
        self.stats.connections += 1;
        self.next_id += 1;
        let start = if saw_syn {
            Phase::Handshake
        } else {
            Phase::Start
        };
        ClientConn {
            info: ConnInfo {
                id: self.next_id,
                client: key.client,
                server: key.server,
                session: None,
            },
            up: Framer::new(MIN_REQUEST, self.cfg.max_frame, saw_syn),
            down: Framer::new(MIN_REPLY.min(20), self.cfg.max_frame, saw_syn),
            up_phase: start,
            down_phase: if saw_syn {
                Phase::Running
            } else {
                Phase::Start
            },
            head: [0; 4],
            head_len: 0,
            mode: Mode::Zk,
            pending: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    fn data(
        &mut self,
        conn: &mut ClientConn,
        _key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
    ) {
        match dir {
            Direction::ToServer => self.client_bytes(conn, ts, bytes),
            Direction::ToClient => self.server_bytes(conn, ts, bytes),
        }
    }

    fn gap(
        &mut self,
        c: &mut ClientConn,
        _key: &FlowKey,
        dir: Direction,
        _ts: Timestamp,
        lost: u64,
    ) {
        self.stats.tcp_gaps += 1;
        self.stats.tcp_bytes_lost += lost;
        if !matches!(c.mode, Mode::Zk) {
            return;
        }
        let framer = match dir {
            Direction::ToServer => &mut c.up,
            Direction::ToClient => &mut c.down,
        };
        if framer.gap() > 0 {
            self.stats.partial_frames_dropped += 1;
        }
        // The handshake cannot be trusted to be next any more.
        match dir {
            Direction::ToServer => {
                c.up_phase = Phase::Running;
                c.head_len = 4;
            }
            Direction::ToClient => c.down_phase = Phase::Running,
        }
    }

    fn close(&mut self, conn: ClientConn, _key: &FlowKey, ts: Timestamp, _reason: CloseReason) {
        self.finish_conn(conn, ts);
    }
}

/// Whether a frame could be a client request (used to resynchronise after a gap).
fn plausible_request(len: usize, head: &[u8]) -> bool {
    if ConnectRequest::looks_like_prefix(len, head) {
        return true;
    }
    let Ok(h) = RequestHeader::decode(head) else {
        return false;
    };
    if h.opcode.name().is_none() || h.opcode == OpCode(0) {
        return false;
    }
    match h.xid {
        PING_XID => h.opcode == OpCode::PING,
        AUTH_XID => h.opcode == OpCode::AUTH,
        SET_WATCHES_XID => h.opcode == OpCode::SET_WATCHES || h.opcode == OpCode::SET_WATCHES2,
        x => x > 0,
    }
}

/// Whether a frame could be a server reply or notification.
fn plausible_reply(len: usize, head: &[u8]) -> bool {
    if len < MIN_REPLY {
        return ConnectResponse::looks_like_prefix(len, head);
    }
    let Ok(h) = ReplyHeader::decode(head) else {
        return false;
    };
    if h.err.name().is_none() {
        return false;
    }
    match h.xid {
        NOTIFICATION_XID => h.err == ErrCode::OK && len >= MIN_REPLY + 12,
        PING_XID | AUTH_XID | SET_WATCHES_XID => h.zxid >= 0,
        x => x > 0 && h.zxid >= 0,
    }
}
