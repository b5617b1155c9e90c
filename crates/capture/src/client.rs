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
    decode_event, decode_event_prefix, decode_reply, decode_request, decode_request_prefix,
    four_letter_word, is_tls_client_hello, ConnectRequest, ConnectResponse, ErrCode, OpCode, Reply,
    ReplyBody, ReplyHeader, Request, RequestBody, RequestHeader, WatchEvent, AUTH_XID,
    NOTIFICATION_XID, PING_XID, SET_WATCHES_XID,
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
    /// Memory of partial frames (frames still arriving, which may be up to `max_frame` each)
    /// kept over all connections; past it, the connection that grows gives up its partial
    /// frame, reported cut from its start (counted in [`ClientStats::partial_frames_shed`]).
    pub max_partial_total: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_frame: 16 << 20,
            max_pending_per_conn: 10_000,
            max_pending_total: 1_000_000,
            max_4lw_reply: 64 << 10,
            show_credentials: false,
            max_partial_total: 64 << 20,
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
    /// Set when the header decoded but the body did not (the message is reported with an
    /// unknown body so that pairing and latency still work).
    pub error: Option<DecodeError>,
    /// The frame body as captured (for hex dumps of bad frames).
    pub frame: &'a [u8],
    /// The frame lost bytes in a gap (snap length, lost segment): only its start was decoded.
    pub cut: bool,
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
    /// Requests decoded (handshakes not included, pings included).
    pub requests: u64,
    /// Pings among the requests.
    pub pings: u64,
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
    /// Frames that lost bytes in a gap but were reported from their captured start.
    pub cut_frames: u64,
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
    /// Server frames with an error code no ZooKeeper sends: bytes misread as a reply (after a
    /// gap or a capture that missed the stream's start), not reported as messages.
    pub misread_frames: u64,
    /// Partial frames given up to keep the memory of frames still arriving, over all
    /// connections, within [`ClientConfig::max_partial_total`] (reported cut from their start).
    pub partial_frames_shed: u64,
}

impl ClientStats {
    /// Adds the counters of a decoder that saw other connections of the same capture.
    pub fn merge(&mut self, o: &ClientStats) {
        let ClientStats {
            connections,
            requests,
            pings,
            replies,
            events,
            connects,
            connect_replies,
            four_letter_words,
            tls_connections,
            undecodable_frames,
            bad_lengths,
            resync_skipped_bytes,
            partial_frames_dropped,
            cut_frames,
            tcp_gaps,
            tcp_bytes_lost,
            unpaired_replies,
            unanswered_requests,
            pending_evicted,
            misread_frames,
            partial_frames_shed,
        } = o;
        self.connections += connections;
        self.requests += requests;
        self.pings += pings;
        self.replies += replies;
        self.events += events;
        self.connects += connects;
        self.connect_replies += connect_replies;
        self.four_letter_words += four_letter_words;
        self.tls_connections += tls_connections;
        self.undecodable_frames += undecodable_frames;
        self.bad_lengths += bad_lengths;
        self.resync_skipped_bytes += resync_skipped_bytes;
        self.partial_frames_dropped += partial_frames_dropped;
        self.cut_frames += cut_frames;
        self.tcp_gaps += tcp_gaps;
        self.tcp_bytes_lost += tcp_bytes_lost;
        self.unpaired_replies += unpaired_replies;
        self.unanswered_requests += unanswered_requests;
        self.pending_evicted += pending_evicted;
        self.misread_frames += misread_frames;
        self.partial_frames_shed += partial_frames_shed;
    }
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
    /// Memory held by every connection's framers ([`Framer::held`]).
    partial_held: usize,
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
            partial_held: 0,
        }
    }

    /// The next connection opened gets the serial number `id + 1` (serials then follow the
    /// order connections appear in, as long as `id` only grows).
    pub fn set_last_conn_id(&mut self, id: u64) {
        self.next_id = id;
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
            self.feed(c, Direction::ToServer, ts, Input::Bytes(&head));
        }
        self.feed(c, Direction::ToServer, ts, Input::Bytes(bytes));
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
        self.feed(c, Direction::ToClient, ts, Input::Bytes(bytes));
    }

    fn enter_tls(&mut self, c: &mut ClientConn, ts: Timestamp, dir: Direction) {
        self.stats.tls_connections += 1;
        c.mode = Mode::Tls;
        self.emit(c, ts, 0, Kind::Tls { dir });
    }

    /// Runs bytes (or a gap) of one direction through its framer and handles each event.
    fn feed(&mut self, c: &mut ClientConn, dir: Direction, ts: Timestamp, input: Input<'_>) {
        // Frames may borrow the framer's buffer while the connection is updated, so the framer
        // is taken out of the connection meanwhile (a cheap move, no allocation).
        let slot = match dir {
            Direction::ToServer => &mut c.up,
            Direction::ToClient => &mut c.down,
        };
        let mut framer = std::mem::replace(slot, Framer::new(0, 0, true));
        let held = framer.held();
        macro_rules! events {
            () => {
                |e: FrameEvent<'_>| {
                    match e {
                        FrameEvent::Frame { body } => self.frame(c, dir, ts, body),
                        FrameEvent::Holed { head, len } => self.holed(c, dir, ts, head, len),
                        FrameEvent::Candidate { len, body } => {
                            return self.plausible(c, dir, len, body)
                        }
                        FrameEvent::BadLength { .. } => self.stats.bad_lengths += 1,
                        FrameEvent::Skipped { bytes } => self.stats.resync_skipped_bytes += bytes,
                    }
                    false
                }
            };
        }
        match input {
            Input::Bytes(bytes) => framer.push(bytes, &mut events!()),
            Input::Gap(lost) => {
                if framer.gap(lost, &mut events!()) {
                    self.stats.partial_frames_dropped += 1;
                }
            }
        }
        self.partial_held = self.partial_held - held + framer.held();
        if self.partial_held > self.cfg.max_partial_total {
            let held = framer.held();
            if framer.shed(&mut events!()) {
                self.stats.partial_frames_shed += 1;
            }
            self.partial_held = self.partial_held - held + framer.held();
        }
        match dir {
            Direction::ToServer => c.up = framer,
            Direction::ToClient => c.down = framer,
        }
    }

    /// Whether a frame found while resynchronising is believable. `body` is the whole frame
    /// when `body.len() == len`.
    fn plausible(&self, c: &ClientConn, dir: Direction, len: usize, body: &[u8]) -> bool {
        let whole = body.len() == len;
        match dir {
            Direction::ToServer => {
                if whole && ConnectRequest::looks_like(body) {
                    return true;
                }
                if !plausible_request_header(body) {
                    return false;
                }
                if !whole {
                    // A path at the start must look like one as far as it was captured.
                    let op = RequestHeader::decode(body).map(|h| h.opcode);
                    return !op.is_ok_and(OpCode::starts_with_path)
                        || body.get(12).is_none_or(|&b| b == b'/');
                }
                // A whole frame must decode exactly, and a path must look like one.
                match decode_request(body) {
                    Ok(r) => {
                        r.trailing == 0 && r.body.path().is_none_or(|p| p.0.first() == Some(&b'/'))
                    }
                    Err(_) => false,
                }
            }
            Direction::ToClient => {
                if whole && ConnectResponse::looks_like(body) {
                    return true;
                }
                let Ok(h) = ReplyHeader::decode(body) else {
                    return false;
                };
                if h.err.name().is_none() {
                    return false;
                }
                let opcode = match h.xid {
                    NOTIFICATION_XID => {
                        return h.err == ErrCode::OK
                            && len >= MIN_REPLY + 12
                            && (!whole || decode_event(body).is_ok());
                    }
                    PING_XID | AUTH_XID | SET_WATCHES_XID => return h.zxid >= 0,
                    x if x <= 0 || h.zxid < 0 => return false,
                    // With requests pending, a reply must answer one of them.
                    x if !c.pending.is_empty() => match c.pending.iter().find(|p| p.xid == x) {
                        Some(p) => Some(p.opcode),
                        None => return false,
                    },
                    _ => None,
                };
                !whole || decode_reply(body, opcode).is_ok_and(|r| r.trailing == 0)
            }
        }
    }

    /// A frame that lost bytes in a gap: report what its start tells.
    fn holed(
        &mut self,
        c: &mut ClientConn,
        dir: Direction,
        ts: Timestamp,
        head: &[u8],
        len: usize,
    ) {
        match dir {
            Direction::ToServer => {
                let phase = std::mem::replace(&mut c.up_phase, Phase::Running);
                let handshake = match phase {
                    Phase::Handshake => true,
                    Phase::Start => ConnectRequest::looks_like_prefix(len, head),
                    Phase::Running => false,
                };
                if handshake {
                    // A cut ConnectRequest: the server's answer is still the handshake.
                    c.down_phase = Phase::Handshake;
                    let req = ConnectRequest::decode_prefix(head);
                    self.stats.connects += 1;
                    self.stats.cut_frames += 1;
                    if req.session_id != 0 {
                        c.info.session = Some(req.session_id);
                    }
                    self.emit_cut(c, ts, len, head, Kind::ConnectRequest(req));
                    return;
                }
                match decode_request_prefix(head) {
                    Ok(req) => self.record_request(c, req, FrameInfo::cut(ts, len, head)),
                    Err(_) => self.stats.partial_frames_dropped += 1,
                }
            }
            Direction::ToClient => {
                let phase = std::mem::replace(&mut c.down_phase, Phase::Running);
                let handshake = match phase {
                    Phase::Handshake => true,
                    Phase::Start => lone_connect_response(len, head),
                    Phase::Running => false,
                };
                if handshake {
                    // A cut ConnectResponse still tells the session (protocolVersion, timeOut,
                    // sessionId come first).
                    let resp = ConnectResponse::decode_prefix(head);
                    if head.len() >= 16 {
                        c.info.session = (resp.session_id != 0).then_some(resp.session_id);
                    }
                    self.stats.connect_replies += 1;
                    self.stats.cut_frames += 1;
                    self.emit_cut(c, ts, len, head, Kind::ConnectResponse(resp));
                    return;
                }
                // Fields of the header the snap length cut off read as 0 (see the proto
                // crate's prefix decoders); the xid is enough to pair.
                match decode_event_prefix(head) {
                    Ok((header, _)) if head.len() >= 16 && !plausible_err(header.err) => {
                        self.stats.misread_frames += 1;
                    }
                    Ok((header, event)) if header.xid == NOTIFICATION_XID => {
                        self.stats.events += 1;
                        self.stats.cut_frames += 1;
                        self.emit_cut(c, ts, len, head, Kind::Event { header, event });
                    }
                    Ok((mut header, _)) => {
                        if head.len() < 16 {
                            // cut inside its header: the 0 read for the error code means nothing
                            header.err = ErrCode::NOT_CAPTURED;
                        }
                        let reply = Reply {
                            header,
                            body: ReplyBody::Unknown {
                                len: len.saturating_sub(MIN_REPLY),
                            },
                            trailing: 0,
                        };
                        self.record_reply(c, reply, FrameInfo::cut(ts, len, head));
                    }
                    Err(_) => self.stats.partial_frames_dropped += 1,
                }
            }
        }
    }

    /// Reports a message decoded from the captured start of a frame that lost bytes.
    fn emit_cut(&mut self, c: &ClientConn, ts: Timestamp, len: usize, head: &[u8], kind: Kind<'_>) {
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size: len as u32,
            kind,
            error: None,
            frame: head,
            cut: true,
        });
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
                    Phase::Handshake => ConnectResponse::looks_like(body),
                    Phase::Start => lone_connect_response(body.len(), body),
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
        let (req, error) = match decode_request(body) {
            Ok(req) => (req, None),
            Err(error) => match RequestHeader::decode(body) {
                // The header is fine: report it with an opaque body so pairing still works.
                Ok(header) => {
                    let req = Request {
                        header,
                        body: RequestBody::Unknown {
                            len: body.len().saturating_sub(8),
                        },
                        trailing: 0,
                    };
                    (req, Some(error))
                }
                Err(error) => return self.undecodable(c, Direction::ToServer, ts, body, error),
            },
        };
        self.record_request(c, req, FrameInfo::whole(ts, body, error));
    }

    /// Remembers a request until its reply and reports it.
    fn record_request(&mut self, c: &mut ClientConn, mut req: Request<'_>, f: FrameInfo<'_>) {
        let FrameInfo {
            ts,
            size,
            error,
            frame,
            cut,
        } = f;
        let mut p = c.spare.pop().unwrap_or_else(|| PendingRequest {
            xid: 0,
            opcode: OpCode(0),
            ts,
            size: 0,
            watch: None,
            path: Vec::new(),
            has_path: false,
        });
        p.xid = req.header.xid;
        p.opcode = req.header.opcode;
        p.ts = ts;
        p.size = size;
        p.path.clear();
        p.has_path = false;
        if let Some(path) = req.body.path() {
            p.path.extend_from_slice(path.0);
            p.has_path = true;
        }
        p.watch = req.body.watch();
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
        self.stats.requests += 1;
        if req.header.opcode == OpCode::PING {
            self.stats.pings += 1;
        }
        if error.is_some() {
            self.stats.undecodable_frames += 1;
        }
        if cut {
            self.stats.cut_frames += 1;
        }
        if self.cfg.show_credentials {
            req.body.reveal_credentials();
        }
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size,
            kind: Kind::Request(req),
            error,
            frame,
            cut,
        });
    }

    fn reply(&mut self, c: &mut ClientConn, ts: Timestamp, body: &[u8]) {
        let size = body.len() as u32;
        let header = match ReplyHeader::decode(body) {
            Ok(h) => h,
            Err(error) => return self.undecodable(c, Direction::ToClient, ts, body, error),
        };
        if !plausible_err(header.err) {
            self.stats.misread_frames += 1;
            return;
        }
        if header.xid == NOTIFICATION_XID {
            return match decode_event(body) {
                Ok((header, event)) => {
                    self.stats.events += 1;
                    self.emit(c, ts, size, Kind::Event { header, event });
                }
                Err(error) => self.undecodable(c, Direction::ToClient, ts, body, error),
            };
        }
        let opcode = self.peek_opcode(c, header.xid);
        let (reply, error) = match decode_reply(body, opcode) {
            Ok(reply) => (reply, None),
            Err(error) => {
                let reply = Reply {
                    header,
                    body: ReplyBody::Unknown {
                        len: body.len().saturating_sub(MIN_REPLY),
                    },
                    trailing: 0,
                };
                (reply, Some(error))
            }
        };
        self.record_reply(c, reply, FrameInfo::whole(ts, body, error));
    }

    /// The opcode of the pending request a reply with `xid` answers, if any.
    fn peek_opcode(&self, c: &ClientConn, xid: i32) -> Option<OpCode> {
        match c.pending.front() {
            Some(p) if p.xid == xid => Some(p.opcode),
            _ => c.pending.iter().find(|p| p.xid == xid).map(|p| p.opcode),
        }
    }

    /// Pairs a reply with its request and reports it.
    fn record_reply(&mut self, c: &mut ClientConn, reply: Reply<'_>, f: FrameInfo<'_>) {
        let FrameInfo {
            ts,
            size,
            error,
            frame,
            cut,
        } = f;
        let header = reply.header;
        let found = match c.pending.front() {
            Some(p) if p.xid == header.xid => Some(0),
            _ => c.pending.iter().position(|p| p.xid == header.xid),
        };
        let mut request = None;
        if let Some(k) = found {
            if let Some(p) = c.pending.remove(k) {
                self.total_pending -= 1;
                // Replies come in request order, except out-of-band ones (auth, SASL,
                // UNIMPLEMENTED for unknown opcodes). Earlier normal requests still waiting
                // lost their reply in the capture.
                if k > 0 && !p.out_of_band() && header.err != ErrCode::UNIMPLEMENTED {
                    // Only the `k` requests older than this one; a removal shifts the rest
                    // down, so count visits rather than positions.
                    let mut i = 0;
                    for _ in 0..k {
                        if c.pending.get(i).is_some_and(PendingRequest::out_of_band) {
                            i += 1;
                        } else if let Some(old) = c.pending.remove(i) {
                            self.total_pending -= 1;
                            self.report_unanswered(c, ts, old, Unanswered::Skipped);
                        }
                    }
                }
                request = Some(p);
            }
        }
        if request.is_none() {
            self.stats.unpaired_replies += 1;
        }
        self.stats.replies += 1;
        if error.is_some() {
            self.stats.undecodable_frames += 1;
        }
        if cut {
            self.stats.cut_frames += 1;
        }
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size,
            kind: Kind::Reply {
                reply,
                request: request.as_ref(),
            },
            error,
            frame,
            cut,
        });
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
        let frame = match &kind {
            Kind::Undecodable { frame, .. } => *frame,
            _ => &[],
        };
        self.sink.message(&Msg {
            ts,
            conn: &c.info,
            size,
            kind,
            error: None,
            frame,
            cut: false,
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
        self.partial_held -= c.up.held() + c.down.held();
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
            // Even after a SYN the server's first frame is checked rather than assumed: the
            // ConnectRequest may be missing from the capture.
            down_phase: Phase::Start,
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
        ts: Timestamp,
        lost: u64,
    ) {
        self.stats.tcp_gaps += 1;
        self.stats.tcp_bytes_lost += lost;
        if !matches!(c.mode, Mode::Zk) {
            return;
        }
        if c.up_phase != Phase::Running && dir == Direction::ToServer && c.head_len < 4 {
            // The connection's first bytes are gone: no 4lw/TLS check, just resynchronise.
            let (head, n) = (c.head, c.head_len as usize);
            c.head_len = 4;
            c.up_phase = Phase::Running;
            self.feed(c, dir, ts, Input::Bytes(&head[..n]));
        }
        self.feed(c, dir, ts, Input::Gap(lost));
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

/// Where a decoded message came from.
struct FrameInfo<'f> {
    ts: Timestamp,
    /// The frame's length prefix.
    size: u32,
    /// The body did not decode (the header did).
    error: Option<DecodeError>,
    /// The captured bytes.
    frame: &'f [u8],
    /// Bytes of the frame were lost in a gap.
    cut: bool,
}

impl<'f> FrameInfo<'f> {
    fn whole(ts: Timestamp, frame: &'f [u8], error: Option<DecodeError>) -> Self {
        FrameInfo {
            ts,
            size: frame.len() as u32,
            error,
            frame,
            cut: false,
        }
    }

    fn cut(ts: Timestamp, len: usize, head: &'f [u8]) -> Self {
        FrameInfo {
            ts,
            size: len as u32,
            error: None,
            frame: head,
            cut: true,
        }
    }
}

/// What a framer is fed.
enum Input<'a> {
    Bytes(&'a [u8]),
    Gap(u64),
}

/// Whether `err` can come from a ZooKeeper server: 0, the system errors (−1…) and the API
/// errors (−100…), with room for codes added by later versions. Anything else is a sign that
/// the bytes were not a reply header at all.
fn plausible_err(err: ErrCode) -> bool {
    (-199..=0).contains(&err.0)
}

/// Whether the first server frame of a connection whose ConnectRequest was not seen is a
/// ConnectResponse: a 16-byte password makes it 36 bytes, 37 with the readOnly flag.
fn lone_connect_response(len: usize, head: &[u8]) -> bool {
    matches!(len, 36 | 37) && ConnectResponse::looks_like_prefix(len, head)
}

/// Whether a request header is possible (used to resynchronise).
fn plausible_request_header(head: &[u8]) -> bool {
    let Ok(h) = RequestHeader::decode(head) else {
        return false;
    };
    if !h.opcode.is_known() || h.opcode == OpCode(0) {
        return false;
    }
    match h.xid {
        PING_XID => h.opcode == OpCode::PING,
        AUTH_XID => h.opcode == OpCode::AUTH,
        SET_WATCHES_XID => h.opcode == OpCode::SET_WATCHES || h.opcode == OpCode::SET_WATCHES2,
        x => x > 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every message as a short description.
    #[derive(Default)]
    struct Rec(Vec<String>);

    impl ClientSink for Rec {
        fn message(&mut self, m: &Msg<'_>) {
            let s = match &m.kind {
                Kind::ConnectRequest(c) => format!("connect sid={:#x}", c.session_id),
                Kind::ConnectResponse(c) => format!("connected sid={:#x}", c.session_id),
                Kind::Request(r) => format!(
                    "req {} xid={} path={}",
                    r.header.opcode.request_type(),
                    r.header.xid,
                    r.body.path().map(|p| p.to_string()).unwrap_or_default()
                ),
                Kind::Reply { reply, request } => format!(
                    "reply xid={} err={} req={} lat={}",
                    reply.header.xid,
                    reply.header.err.0,
                    request.map_or("-".to_string(), |p| format!(
                        "{}:{}",
                        p.opcode.0,
                        p.path().map(|p| p.to_string()).unwrap_or_default()
                    )),
                    request.map_or(-1, |p| m.ts.0 - p.ts.0)
                ),
                Kind::Event { event, .. } => format!(
                    "event {} {}",
                    event.event_type.0,
                    event.path.map(|p| p.to_string()).unwrap_or_default()
                ),
                Kind::FourLetter {
                    command,
                    reply,
                    reply_len,
                    ..
                } => format!(
                    "4lw {command} {} {reply_len}",
                    String::from_utf8_lossy(reply)
                ),
                Kind::Tls { .. } => "tls".to_string(),
                Kind::Unanswered { request, why } => {
                    format!("unanswered xid={} {why:?}", request.xid)
                }
                Kind::Undecodable { error, .. } => format!("undecodable {error}"),
            };
            self.0.push(s);
        }
    }

    fn key() -> FlowKey {
        FlowKey {
            client: "10.0.0.1:40000".parse().unwrap(),
            server: "10.0.0.2:2181".parse().unwrap(),
        }
    }

    fn handler() -> ClientHandler<Rec> {
        let spec = ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        };
        ClientHandler::new(spec, ClientConfig::default(), Rec::default())
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn ustr(v: &mut Vec<u8>, s: &str) {
        v.extend((s.len() as i32).to_be_bytes());
        v.extend(s.as_bytes());
    }

    fn connect_req(session: i64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0i32.to_be_bytes());
        b.extend(0i64.to_be_bytes());
        b.extend(30000i32.to_be_bytes());
        b.extend(session.to_be_bytes());
        b.extend(16i32.to_be_bytes());
        b.extend([0u8; 16]);
        b.push(0);
        frame(&b)
    }

    fn connect_resp(session: i64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(0i32.to_be_bytes());
        b.extend(30000i32.to_be_bytes());
        b.extend(session.to_be_bytes());
        b.extend(16i32.to_be_bytes());
        b.extend([7u8; 16]);
        b.push(0);
        frame(&b)
    }

    fn get_data(xid: i32, path: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(xid.to_be_bytes());
        b.extend(4i32.to_be_bytes());
        ustr(&mut b, path);
        b.push(1);
        frame(&b)
    }

    fn header_req(xid: i32, op: i32, rest: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(xid.to_be_bytes());
        b.extend(op.to_be_bytes());
        b.extend(rest);
        frame(&b)
    }

    fn reply(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(xid.to_be_bytes());
        b.extend(zxid.to_be_bytes());
        b.extend(err.to_be_bytes());
        frame(&b)
    }

    /// A successful getData reply (data "v", zero Stat).
    fn data_reply(xid: i32, zxid: i64) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(xid.to_be_bytes());
        b.extend(zxid.to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend(1i32.to_be_bytes());
        b.push(b'v');
        b.extend([0u8; 68]);
        frame(&b)
    }

    fn event(path: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((-1i32).to_be_bytes());
        b.extend((-1i64).to_be_bytes());
        b.extend(0i32.to_be_bytes());
        b.extend(3i32.to_be_bytes());
        b.extend(3i32.to_be_bytes());
        ustr(&mut b, path);
        frame(&b)
    }

    const UP: Direction = Direction::ToServer;
    const DOWN: Direction = Direction::ToClient;

    /// Plays a script of (direction, time in µs, bytes) on one connection and closes it.
    fn play(h: &mut ClientHandler<Rec>, saw_syn: bool, script: &[(Direction, i64, Vec<u8>)]) {
        let k = key();
        let mut c = h.open(&k, Timestamp(0), saw_syn);
        for (dir, t, bytes) in script {
            h.data(&mut c, &k, *dir, Timestamp(t * 1000), bytes);
        }
        h.close(c, &k, Timestamp(1_000_000_000), CloseReason::Fin);
    }

    #[test]
    fn handshake_then_paired_request() {
        let mut h = handler();
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (DOWN, 10, connect_resp(0x1234)),
                (UP, 20, get_data(1, "/a")),
                (DOWN, 25, reply(1, 9, -101)),
            ],
        );
        assert_eq!(
            h.sink.0,
            vec![
                "connect sid=0x0",
                "connected sid=0x1234",
                "req GetDataRequest xid=1 path=/a",
                "reply xid=1 err=-101 req=4:/a lat=5000",
            ]
        );
        assert_eq!(
            (h.stats.requests, h.stats.replies, h.stats.connects),
            (1, 1, 1)
        );
    }

    #[test]
    fn partial_frames_share_one_memory_budget() {
        // Every connection sends the first 192 KiB of a 1 MiB setData: without a global
        // budget, 8 connections would hold 1.5 MiB of frames in progress.
        const CAP: usize = 256 << 10;
        const CHUNK: usize = 64 << 10;
        const BIG: usize = 1 << 20;
        let spec = ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        };
        let cfg = ClientConfig {
            max_partial_total: CAP,
            ..ClientConfig::default()
        };
        let mut h = ClientHandler::new(spec, cfg, Rec::default());
        let keys: Vec<FlowKey> = (0..8u16)
            .map(|i| FlowKey {
                client: SocketAddr::from(([10, 0, 0, 1], 40000 + i)),
                server: "10.0.0.2:2181".parse().unwrap(),
            })
            .collect();
        let mut conns: Vec<ClientConn> = keys
            .iter()
            .map(|k| {
                let mut c = h.open(k, Timestamp(0), true);
                h.data(&mut c, k, UP, Timestamp(0), &connect_req(0));
                h.data(&mut c, k, DOWN, Timestamp(1), &connect_resp(7));
                c
            })
            .collect();
        let mut big = Vec::with_capacity(BIG + 4);
        big.extend((BIG as i32).to_be_bytes());
        big.extend(1i32.to_be_bytes()); // xid
        big.extend(5i32.to_be_bytes()); // setData
        ustr(&mut big, "/big");
        big.extend(((BIG - 24) as i32).to_be_bytes());
        big.resize(BIG + 4 - 4, 0);
        big.extend((-1i32).to_be_bytes()); // version
        assert_eq!(big.len(), BIG + 4);
        let held = |conns: &[ClientConn]| -> usize {
            conns.iter().map(|c| c.up.held() + c.down.held()).sum()
        };
        for chunk in big[..3 * CHUNK].chunks(CHUNK) {
            for (c, k) in conns.iter_mut().zip(&keys) {
                h.data(c, k, UP, Timestamp(2), chunk);
            }
            assert!(held(&conns) <= CAP, "{} > {CAP}", held(&conns));
        }
        assert!(h.stats.partial_frames_shed > 0);
        assert_eq!(h.partial_held, held(&conns));
        // The connections that gave up their frame kept their place in the stream: the rest
        // of the frame is skipped and the next request decodes.
        for (c, k) in conns.iter_mut().zip(&keys) {
            h.data(c, k, UP, Timestamp(3), &big[3 * CHUNK..]);
            h.data(c, k, UP, Timestamp(4), &get_data(2, "/after"));
        }
        let after = h.sink.0.iter();
        let after = after.filter(|m| *m == "req GetDataRequest xid=2 path=/after");
        assert_eq!(after.count(), keys.len());
        let big_reqs = h.sink.0.iter().filter(|m| m.contains("path=/big"));
        assert_eq!(big_reqs.count(), keys.len(), "{:?}", h.sink.0);
        for (c, k) in conns.into_iter().zip(&keys) {
            h.close(c, k, Timestamp(5), CloseReason::Fin);
        }
        assert_eq!(h.partial_held, 0);
    }

    #[test]
    fn one_message_per_byte_decodes_the_same() {
        let mut h = handler();
        let mut up = connect_req(0);
        up.extend(get_data(1, "/abc"));
        up.extend(get_data(2, "/d"));
        let mut down = connect_resp(5);
        down.extend(data_reply(1, 1));
        down.extend(event("/abc"));
        down.extend(data_reply(2, 1));
        let mut script = Vec::new();
        for (i, b) in up.iter().enumerate() {
            script.push((UP, i as i64, vec![*b]));
        }
        for (i, b) in down.iter().enumerate() {
            script.push((DOWN, 1000 + i as i64, vec![*b]));
        }
        play(&mut h, true, &script);
        assert_eq!(h.sink.0.len(), 7, "{:?}", h.sink.0);
        assert_eq!(h.sink.0[5], "event 3 /abc");
        assert!(h.sink.0[6].starts_with("reply xid=2 err=0 req=4:/d"));
    }

    #[test]
    fn four_letter_word_is_reported_at_close() {
        let mut h = handler();
        play(
            &mut h,
            true,
            &[
                (UP, 0, b"ru".to_vec()),
                (UP, 1, b"ok".to_vec()),
                (DOWN, 2, b"im".to_vec()),
                (DOWN, 3, b"ok".to_vec()),
            ],
        );
        assert_eq!(h.sink.0, vec!["4lw ruok imok 4"]);
        assert_eq!(h.stats.four_letter_words, 1);
    }

    #[test]
    fn tls_marks_the_connection() {
        let mut h = handler();
        play(
            &mut h,
            true,
            &[
                (UP, 0, vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]),
                (DOWN, 1, vec![0x16, 0x03, 0x03, 0x00, 0x7a]),
            ],
        );
        assert_eq!(h.sink.0, vec!["tls"]);
        assert_eq!(h.stats.tls_connections, 1);
    }

    #[test]
    fn mid_stream_capture_reports_unpaired_replies() {
        let mut h = handler();
        play(
            &mut h,
            false,
            &[
                (DOWN, 0, reply(7, 3, 0)),
                (UP, 1, get_data(8, "/x")),
                (DOWN, 2, data_reply(8, 3)),
            ],
        );
        assert_eq!(h.sink.0[0], "reply xid=7 err=0 req=- lat=-1");
        assert!(h.sink.0[2].starts_with("reply xid=8 err=0 req=4:/x"));
        assert_eq!(h.stats.unpaired_replies, 1);
    }

    #[test]
    fn later_reply_proves_earlier_replies_lost() {
        let mut h = handler();
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (DOWN, 1, connect_resp(1)),
                (UP, 2, get_data(1, "/a")),
                (UP, 3, get_data(2, "/b")),
                (UP, 4, get_data(3, "/c")),
                (DOWN, 5, data_reply(3, 1)),
            ],
        );
        assert_eq!(
            &h.sink.0[5..],
            [
                "unanswered xid=1 Skipped",
                "unanswered xid=2 Skipped",
                "reply xid=3 err=0 req=4:/c lat=1000"
            ]
        );
    }

    #[test]
    fn lost_reply_in_a_pipeline_costs_only_its_pair() {
        let mut h = handler();
        let mut script = vec![(UP, 0, connect_req(0)), (DOWN, 1, connect_resp(1))];
        for xid in 1..=5 {
            script.push((UP, 1 + i64::from(xid), get_data(xid, "/p")));
        }
        // The reply to xid 2 was lost by the capture.
        for xid in [1, 3, 4, 5] {
            script.push((DOWN, 10 + i64::from(xid), data_reply(xid, 1)));
        }
        play(&mut h, true, &script);
        let got = &h.sink.0[7..];
        assert!(got[0].starts_with("reply xid=1 err=0 req=4:/p"), "{got:?}");
        assert_eq!(got[1], "unanswered xid=2 Skipped");
        for (line, xid) in got[2..].iter().zip([3, 4, 5]) {
            assert!(
                line.starts_with(&format!("reply xid={xid} err=0 req=4:/p")),
                "{got:?}"
            );
        }
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(h.stats.unanswered_requests, 1);
        assert_eq!(h.stats.unpaired_replies, 0);
    }

    #[test]
    fn connect_response_after_a_lost_connect_request() {
        let mut h = handler();
        let k = key();
        let mut c = h.open(&k, Timestamp(0), true);
        // The ConnectRequest's segment was not captured.
        h.gap(&mut c, &k, UP, Timestamp(0), connect_req(0).len() as u64);
        h.data(&mut c, &k, DOWN, Timestamp(1000), &connect_resp(0x3a98));
        h.data(&mut c, &k, UP, Timestamp(2000), &get_data(1, "/a"));
        h.data(&mut c, &k, DOWN, Timestamp(3000), &data_reply(1, 1));
        h.close(c, &k, Timestamp(4000), CloseReason::Fin);
        assert_eq!(h.sink.0[0], "connected sid=0x3a98");
        assert!(h.sink.0[2].starts_with("reply xid=1 err=0 req=4:/a"));
        assert_eq!(h.stats.connect_replies, 1);
        assert_eq!(h.stats.unpaired_replies, 0);
        assert_eq!(h.stats.misread_frames, 0);
    }

    #[test]
    fn cut_handshakes_events_and_replies_are_reported_from_their_start() {
        // A snap length of 80 bytes on Ethernet leaves 14 bytes of each segment's payload.
        let mut h = handler();
        let k = key();
        let mut c = h.open(&k, Timestamp(0), true);
        let cut = |h: &mut ClientHandler<Rec>, c: &mut ClientConn, dir, t, f: Vec<u8>| {
            h.data(c, &k, dir, Timestamp(t), &f[..14]);
            h.gap(c, &k, dir, Timestamp(t), (f.len() - 14) as u64);
        };
        cut(&mut h, &mut c, UP, 0, connect_req(0));
        cut(&mut h, &mut c, DOWN, 1000, connect_resp(0x77));
        cut(&mut h, &mut c, UP, 2000, get_data(1, "/a"));
        cut(&mut h, &mut c, DOWN, 3000, data_reply(1, 1));
        cut(&mut h, &mut c, DOWN, 4000, event("/a"));
        h.close(c, &k, Timestamp(5000), CloseReason::Fin);
        assert_eq!(
            h.sink.0,
            [
                "connect sid=0x0",
                "connected sid=0x0",
                "req GetDataRequest xid=1 path=",
                // cut inside its header: the error code was not captured
                "reply xid=1 err=-2147483648 req=4: lat=1000",
                "event 0 "
            ]
        );
        assert_eq!(h.stats.cut_frames, 5);
        assert_eq!((h.stats.connects, h.stats.connect_replies), (1, 1));
        assert_eq!((h.stats.replies, h.stats.events), (1, 1));
        assert_eq!(h.stats.unanswered_requests, 0);
    }

    #[test]
    fn impossible_error_code_is_a_misread_frame() {
        let mut h = handler();
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (DOWN, 1, connect_resp(1)),
                (UP, 2, get_data(1, "/a")),
                (DOWN, 3, reply(1, 5, -429_129_724)),
                (DOWN, 4, reply(1, 5, 0)),
            ],
        );
        assert_eq!(h.stats.misread_frames, 1);
        assert_eq!(h.stats.replies, 1);
        assert!(
            h.sink.0[3].starts_with("reply xid=1 err=0 req=4:/a"),
            "{:?}",
            h.sink.0
        );
        assert!(h.sink.0.iter().all(|l| !l.contains("-429129724")));
    }

    #[test]
    fn out_of_band_replies_do_not_evict_earlier_requests() {
        let mut h = handler();
        let mut auth = Vec::new();
        auth.extend(0i32.to_be_bytes());
        ustr(&mut auth, "digest");
        ustr(&mut auth, "u:p");
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (DOWN, 1, connect_resp(1)),
                (UP, 2, get_data(1, "/a")),
                (UP, 3, header_req(-4, 100, &auth)),
                (UP, 4, header_req(2, 555, b"keeper-extension")),
                // The auth and UNIMPLEMENTED replies overtake the getData reply.
                (DOWN, 5, reply(-4, 0, 0)),
                (DOWN, 6, reply(2, 1, -6)),
                (DOWN, 7, data_reply(1, 1)),
            ],
        );
        let got = &h.sink.0[5..];
        assert_eq!(got[0], "reply xid=-4 err=0 req=100: lat=2000");
        assert_eq!(got[1], "reply xid=2 err=-6 req=555: lat=2000");
        assert!(got[2].starts_with("reply xid=1 err=0 req=4:/a"));
        assert_eq!(h.stats.unanswered_requests, 0);
        assert!(h.sink.0[3].starts_with("req SetAuthRequest"));
        assert!(h.sink.0[4].starts_with("req UnknownRequest xid=2"));
    }

    #[test]
    fn pending_requests_are_bounded_and_closed_ones_reported() {
        let mut h = handler();
        h.cfg.max_pending_per_conn = 2;
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (UP, 1, get_data(1, "/a")),
                (UP, 2, get_data(2, "/b")),
                (UP, 3, get_data(3, "/c")),
            ],
        );
        let unanswered: Vec<&String> = h
            .sink
            .0
            .iter()
            .filter(|s| s.starts_with("unanswered"))
            .collect();
        assert_eq!(
            unanswered,
            [
                "unanswered xid=1 Evicted",
                "unanswered xid=2 Closed",
                "unanswered xid=3 Closed"
            ]
        );
        assert_eq!(h.stats.pending_evicted, 1);
        assert_eq!(h.total_pending, 0);
    }

    #[test]
    fn gap_inside_a_frame_keeps_sync() {
        let mut h = handler();
        let k = key();
        let mut c = h.open(&k, Timestamp(0), true);
        h.data(&mut c, &k, UP, Timestamp(0), &connect_req(0));
        let big = get_data(1, "/a-long-path-that-gets-cut");
        h.data(&mut c, &k, UP, Timestamp(1), &big[..10]);
        h.gap(&mut c, &k, UP, Timestamp(2), 7);
        let mut rest = big[17..].to_vec();
        rest.extend(get_data(2, "/next"));
        h.data(&mut c, &k, UP, Timestamp(3), &rest);
        h.close(c, &k, Timestamp(4), CloseReason::Fin);
        assert!(h
            .sink
            .0
            .contains(&"req GetDataRequest xid=2 path=/next".to_string()));
        // The cut frame's header was not captured whole: dropped, but counted.
        assert_eq!(h.stats.partial_frames_dropped, 1);
        assert_eq!(h.stats.resync_skipped_bytes, 0);
        assert_eq!(h.stats.undecodable_frames, 0);
    }

    #[test]
    fn cut_frames_keep_their_header_and_pairing() {
        let mut h = handler();
        let k = key();
        let mut c = h.open(&k, Timestamp(0), true);
        h.data(&mut c, &k, UP, Timestamp(0), &connect_req(0));
        h.data(&mut c, &k, DOWN, Timestamp(0), &connect_resp(9));
        // A request whose path was captured but whose tail was not (snap length).
        let req = get_data(1, "/kept");
        h.data(&mut c, &k, UP, Timestamp(1000), &req[..21]);
        h.gap(&mut c, &k, UP, Timestamp(1000), (req.len() - 21) as u64);
        let rep = data_reply(1, 4);
        h.data(&mut c, &k, DOWN, Timestamp(3000), &rep[..30]);
        h.gap(&mut c, &k, DOWN, Timestamp(3000), (rep.len() - 30) as u64);
        h.data(&mut c, &k, UP, Timestamp(4000), &get_data(2, "/next"));
        h.data(&mut c, &k, DOWN, Timestamp(5000), &data_reply(2, 4));
        h.close(c, &k, Timestamp(6000), CloseReason::Fin);
        assert_eq!(
            &h.sink.0[2..],
            [
                "req GetDataRequest xid=1 path=/kept",
                "reply xid=1 err=0 req=4:/kept lat=2000",
                "req GetDataRequest xid=2 path=/next",
                "reply xid=2 err=0 req=4:/next lat=1000",
            ]
        );
        assert_eq!(h.stats.resync_skipped_bytes, 0);
        assert_eq!((h.stats.undecodable_frames, h.stats.cut_frames), (0, 2));
    }

    #[test]
    fn unknown_opcode_reply_keeps_the_stream_in_sync() {
        let mut h = handler();
        let mut r = reply(1, 5, 0);
        // A ClickHouse-Keeper-like reply body for an opcode this decoder does not know.
        let body_len = r.len() - 4 + 6;
        r.splice(0..4, (body_len as i32).to_be_bytes());
        r.extend(b"abcdef");
        play(
            &mut h,
            true,
            &[
                (UP, 0, connect_req(0)),
                (DOWN, 1, connect_resp(1)),
                (UP, 2, header_req(1, 501, b"xyz")),
                (UP, 3, get_data(2, "/z")),
                (DOWN, 4, r),
                (DOWN, 5, data_reply(2, 5)),
            ],
        );
        assert!(h.sink.0[4].starts_with("reply xid=1 err=0 req=501:"));
        assert!(h.sink.0[5].starts_with("reply xid=2 err=0 req=4:/z"));
        assert_eq!(h.stats.undecodable_frames, 0);
    }

    #[test]
    fn server_spec_classifies_and_filters() {
        let seg = |src: &str, dst: &str| TcpSegment {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: 0,
            ack: 0,
            flags: crate::packet::TcpFlags::default(),
            payload: &[],
            missing: 0,
        };
        let mut spec = ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        };
        assert_eq!(
            spec.classify(&seg("10.0.0.1:5000", "10.0.0.2:2181")),
            Some(Direction::ToServer)
        );
        assert_eq!(
            spec.classify(&seg("[::1]:2181", "[::1]:5000")),
            Some(Direction::ToClient)
        );
        assert_eq!(spec.classify(&seg("10.0.0.1:5000", "10.0.0.2:80")), None);
        spec.client_port = Some(5001);
        assert_eq!(spec.classify(&seg("10.0.0.1:5000", "10.0.0.2:2181")), None);
        spec.client_port = None;
        spec.exclude_hosts = vec!["10.0.0.1".parse().unwrap()];
        assert_eq!(spec.classify(&seg("10.0.0.1:5000", "10.0.0.2:2181")), None);
        spec.exclude_hosts.clear();
        spec.include_hosts = vec!["10.0.0.9".parse().unwrap()];
        assert_eq!(spec.classify(&seg("10.0.0.1:5000", "10.0.0.2:2181")), None);
        spec.ports.clear();
        spec.include_hosts.clear();
        spec.servers = vec!["10.0.0.2:2181".parse().unwrap()];
        assert_eq!(
            spec.classify(&seg("10.0.0.2:2181", "10.0.0.1:5000")),
            Some(Direction::ToClient)
        );
        assert_eq!(spec.classify(&seg("10.0.0.3:2181", "10.0.0.1:5000")), None);
    }
}
