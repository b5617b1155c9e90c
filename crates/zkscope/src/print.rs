//! Printers for `zkscope dump`: zk-dump-style paired text, arrival-order text, `--show`
//! (every field, one per line) and JSON lines.

use std::io::{self, Write};

use std::net::SocketAddr;

use serde::Serialize;
use zkscope_capture::client::{ClientSink, ConnInfo, Kind, Msg, PendingRequest, Unanswered};
use zkscope_capture::packet::Timestamp;
use zkscope_capture::tcp::Direction;
use zkscope_proto::client::{ErrCode, OpCode, PING_XID};
use zkscope_proto::jute::JStr;

use crate::fields::{write_fields, Style};
use crate::timefmt::TimeFormat;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per message and line.
    Json,
}

/// What the printer shows and how.
#[derive(Debug, Clone)]
pub struct PrintOptions {
    pub format: Format,
    /// Print each message when it arrives instead of each request with its reply.
    pub unpaired: bool,
    /// Every decoded field, one per line.
    pub show: bool,
    pub include_pings: bool,
    pub colors: bool,
    pub dump_bad: bool,
    pub time: TimeFormat,
}

/// Prints decoded client messages to a writer.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    line: String,
    /// The first write error (a closed pipe ends the run quietly).
    pub error: Option<io::Error>,
}

/// Top-level fields left out of one-line text (they are shown by `--show` and JSON).
const INLINE_SKIP: &[&str] = &["stat", "acl", "children", "passwd_len"];

impl<W: Write> Printer<W> {
    pub fn new(out: W, opts: PrintOptions) -> Self {
        Printer {
            out,
            opts,
            line: String::with_capacity(512),
            error: None,
        }
    }

    /// Flushes buffered output.
    pub fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
    }

    fn write_line(&mut self, conn: &ConnInfo) {
        if self.error.is_some() {
            self.line.clear();
            return;
        }
        let r = if self.opts.colors && self.opts.format == Format::Text {
            let c = color_of(conn);
            writeln!(self.out, "\x1b[{c}m{}\x1b[0m", self.line)
        } else {
            writeln!(self.out, "{}", self.line)
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
        self.line.clear();
    }

    fn ts(&mut self, ts: Timestamp) {
        self.opts.time.write(&mut self.line, ts);
    }

    fn is_ping(m: &Msg<'_>) -> bool {
        match &m.kind {
            Kind::Request(r) => r.header.opcode == OpCode::PING,
            Kind::Reply { reply, request } => {
                reply.header.xid == PING_XID || request.is_some_and(|p| p.opcode == OpCode::PING)
            }
            Kind::Unanswered { request, .. } => request.opcode == OpCode::PING,
            _ => false,
        }
    }

    fn text(&mut self, m: &Msg<'_>) {
        use std::fmt::Write as _;
        if !self.opts.include_pings && Self::is_ping(m) {
            return;
        }
        let paired = !self.opts.unpaired && !self.opts.show;
        let style = if self.opts.show {
            Style::Lines
        } else {
            Style::Inline
        };
        let skip = if self.opts.show { &[][..] } else { INLINE_SKIP };
        let conn = m.conn;
        match &m.kind {
            Kind::Request(r) => {
                if paired {
                    return; // printed with its reply
                }
                self.head(
                    m.ts,
                    r.header.opcode.request_type(),
                    conn,
                    Direction::ToServer,
                );
                let _ = write!(self.line, " xid={} size={}", r.header.xid, m.size);
                write_fields(&mut self.line, &r.body, style, 4, skip);
            }
            Kind::Reply { reply, request } => {
                if paired {
                    match request {
                        Some(p) => self.pending_line(p, conn),
                        None => {
                            self.line.push_str("(request not captured)");
                            self.write_line(conn);
                        }
                    }
                    self.line.push_str("————► ");
                }
                let opcode = request
                    .map(|p| p.opcode)
                    .or(implied_opcode(reply.header.xid));
                let ty = opcode.map_or("Reply", |o| o.reply_type());
                self.head(m.ts, ty, conn, Direction::ToClient);
                let h = &reply.header;
                let _ = write!(
                    self.line,
                    " xid={} zxid={} err={}",
                    h.xid,
                    Zxid(h.zxid),
                    err_str(h.err)
                );
                if let Some(p) = request {
                    let _ = write!(self.line, " latency={}", Latency(m.ts.0 - p.ts.0));
                }
                write_fields(&mut self.line, &reply.body, style, 4, skip);
            }
            Kind::Event { header, event } => {
                self.head(m.ts, "WatchEvent", conn, Direction::ToClient);
                let _ = write!(self.line, " zxid={}", Zxid(header.zxid));
                write_fields(&mut self.line, event, style, 4, skip);
            }
            Kind::ConnectRequest(c) => {
                self.head(m.ts, "ConnectRequest", conn, Direction::ToServer);
                write_fields(&mut self.line, c, style, 4, skip);
            }
            Kind::ConnectResponse(c) => {
                if paired {
                    self.line.push_str("————► ");
                }
                self.head(m.ts, "ConnectReply", conn, Direction::ToClient);
                write_fields(&mut self.line, c, style, 4, skip);
            }
            Kind::FourLetter {
                command,
                reply,
                reply_len,
                ..
            } => {
                self.head(m.ts, "FourLetterWord", conn, Direction::ToServer);
                let _ = write!(self.line, " command={command} reply_len={reply_len}");
                let text = String::from_utf8_lossy(reply);
                if self.opts.show {
                    for l in text.lines() {
                        let _ = write!(self.line, "\n    | {l}");
                    }
                } else {
                    let first = text.lines().next().unwrap_or("");
                    let _ = write!(self.line, " reply={first:?}");
                    if text.lines().nth(1).is_some() {
                        self.line.push_str(" …");
                    }
                }
            }
            Kind::Tls { dir } => {
                self.head(m.ts, "TLS", conn, *dir);
                self.line.push_str(" encrypted connection: not decodable");
            }
            Kind::Unanswered { request, why } => {
                if !paired {
                    return; // already printed when it arrived
                }
                self.pending_line(request, conn);
                let why = match why {
                    Unanswered::Closed => "connection closed",
                    Unanswered::Skipped => "lost in the capture",
                    Unanswered::Evicted => "evicted: too many pending requests",
                };
                let _ = write!(self.line, "————► (no reply: {why})");
            }
            Kind::Undecodable { dir, error, frame } => {
                self.head(m.ts, "Undecodable", conn, *dir);
                let _ = write!(self.line, " size={} error=\"{error}\"", m.size);
                if self.opts.dump_bad {
                    hexdump(&mut self.line, frame);
                }
            }
        }
        if m.cut {
            self.line.push_str(" (cut: bytes missing from the capture)");
        }
        if let Some(e) = &m.error {
            let _ = write!(self.line, " decode_error=\"{e}\"");
            if self.opts.dump_bad {
                hexdump(&mut self.line, m.frame);
            }
        }
        self.write_line(conn);
    }

    /// `ts Type client -> server session=…` (direction shown by the arrow).
    fn head(&mut self, ts: Timestamp, ty: &str, conn: &ConnInfo, dir: Direction) {
        use std::fmt::Write as _;
        self.ts(ts);
        let arrow = match dir {
            Direction::ToServer => "->",
            Direction::ToClient => "<-",
        };
        let _ = write!(self.line, " {} {arrow} {} {ty}", conn.client, conn.server);
        if let Some(s) = conn.session {
            let _ = write!(self.line, " session={:#x}", s);
        }
    }

    /// Writes (and ends) the line of a request known only from its pending record.
    fn pending_line(&mut self, p: &PendingRequest, conn: &ConnInfo) {
        use std::fmt::Write as _;
        self.head(p.ts, p.opcode.request_type(), conn, Direction::ToServer);
        let _ = write!(self.line, " xid={}", p.xid);
        if let Some(path) = p.path() {
            self.line.push_str(" path=");
            let _ = write!(self.line, "{path}");
        }
        if let Some(w) = p.watch {
            let _ = write!(self.line, " watch={w}");
        }
        let _ = write!(self.line, " size={}", p.size);
        self.write_line(conn);
    }
}

impl<W: Write> ClientSink for Printer<W> {
    fn message(&mut self, m: &Msg<'_>) {
        match self.opts.format {
            Format::Text => self.text(m),
            Format::Json => self.json(m),
        }
    }
}

/// The opcode a reply's special xid implies when its request was not captured.
pub fn implied_opcode(xid: i32) -> Option<OpCode> {
    match xid {
        PING_XID => Some(OpCode::PING),
        -4 => Some(OpCode::AUTH),
        _ => None,
    }
}

fn err_str(e: ErrCode) -> String {
    match e.name() {
        Some(n) => n.to_string(),
        None => e.0.to_string(),
    }
}

/// A zxid: hex, or -1 when absent.
struct Zxid(i64);

impl std::fmt::Display for Zxid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 < 0 {
            write!(f, "{}", self.0)
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

/// A latency in nanoseconds, printed with a readable unit.
struct Latency(i64);

impl std::fmt::Display for Latency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = self.0 as f64 / 1e3;
        if us.abs() < 1000.0 {
            write!(f, "{us:.0}us")
        } else if us.abs() < 1e6 {
            write!(f, "{:.2}ms", us / 1e3)
        } else {
            write!(f, "{:.3}s", us / 1e6)
        }
    }
}

/// ANSI colour code of a connection, stable across runs (derived from the client address).
fn color_of(conn: &ConnInfo) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    let key = conn.client.to_string();
    for b in key.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    31 + (h % 6) as u8
}

fn hexdump(out: &mut String, bytes: &[u8]) {
    use std::fmt::Write as _;
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let _ = write!(out, "\n    {:08x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(b) => {
                    let _ = write!(out, "{b:02x} ");
                }
                None => out.push_str("   "),
            }
            if j == 7 {
                out.push(' ');
            }
        }
        out.push_str(" |");
        for &b in chunk {
            out.push(if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            });
        }
        out.push('|');
    }
}

/// The fields every JSON line starts with (the `--format json` contract: never rename these).
#[derive(Serialize)]
struct Head<'a> {
    ts: f64,
    proto: &'static str,
    dir: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'static str>,
    opcode: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zxid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err_name: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<JStr<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    watch: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_us: Option<f64>,
    size: u32,
    client: SocketAddr,
    server: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<Hex>,
    conn: u64,
    /// The header decoded but the body did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<String>,
    /// The frame lost bytes in a gap; only its start was decoded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cut: bool,
}

/// A session id, serialised as lowercase hex.
struct Hex(i64);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:#x}", self.0))
    }
}

/// Fields of a four-letter-word exchange.
#[derive(Serialize)]
struct FourLetterFields<'a> {
    command: &'static str,
    reply_len: u64,
    reply: std::borrow::Cow<'a, str>,
}

/// Fields of lines that are not messages.
#[derive(Serialize)]
struct Note {
    #[serde(skip_serializing_if = "Option::is_none")]
    encrypted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A JSON line: the head, then the message's own fields.
#[derive(Serialize)]
struct Line<'a, B: Serialize> {
    #[serde(flatten)]
    head: Head<'a>,
    #[serde(flatten)]
    body: B,
}

fn latency_us(from: Timestamp, to: Timestamp) -> f64 {
    (to.0 - from.0) as f64 / 1e3
}

fn err_name(e: ErrCode) -> Option<&'static str> {
    Some(e.name().unwrap_or("UNKNOWN"))
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "request",
        Direction::ToClient => "reply",
    }
}

impl<W: Write> Printer<W> {
    fn json(&mut self, m: &Msg<'_>) {
        if matches!(m.kind, Kind::Unanswered { .. }) || self.error.is_some() {
            return; // unanswered requests were printed when they arrived; the summary counts them
        }
        let c = m.conn;
        let mut head = Head {
            ts: m.ts.micros() as f64 / 1e6,
            proto: "client",
            dir: "request",
            ty: "",
            op: None,
            opcode: None,
            xid: None,
            zxid: None,
            err: None,
            err_name: None,
            path: None,
            watch: None,
            latency_us: None,
            size: m.size,
            client: c.client,
            server: c.server,
            session: c.session.map(Hex),
            conn: c.id,
            decode_error: m.error.as_ref().map(ToString::to_string),
            cut: m.cut,
        };
        let out = &mut self.out;
        let r = match &m.kind {
            Kind::Request(r) => {
                let op = r.header.opcode;
                head.ty = op.request_type();
                head.op = op.name();
                head.opcode = Some(op.0);
                head.xid = Some(r.header.xid);
                serde_json::to_writer(
                    &mut *out,
                    &Line {
                        head,
                        body: &r.body,
                    },
                )
            }
            Kind::Reply { reply, request } => {
                let op = request
                    .map(|p| p.opcode)
                    .or(implied_opcode(reply.header.xid));
                head.dir = "reply";
                head.ty = op.map_or("Reply", |o| o.reply_type());
                head.op = op.and_then(|o| o.name());
                head.opcode = op.map(|o| o.0);
                head.xid = Some(reply.header.xid);
                head.zxid = Some(reply.header.zxid);
                head.err = Some(reply.header.err.0);
                head.err_name = err_name(reply.header.err);
                if let Some(p) = request {
                    head.path = p.path();
                    head.watch = p.watch;
                    head.latency_us = Some(latency_us(p.ts, m.ts));
                }
                serde_json::to_writer(
                    &mut *out,
                    &Line {
                        head,
                        body: &reply.body,
                    },
                )
            }
            Kind::Event { header, event } => {
                head.dir = "event";
                head.ty = "WatchEvent";
                head.xid = Some(header.xid);
                head.zxid = Some(header.zxid);
                head.err = Some(header.err.0);
                head.err_name = err_name(header.err);
                serde_json::to_writer(&mut *out, &Line { head, body: event })
            }
            Kind::ConnectRequest(req) => {
                head.ty = "ConnectRequest";
                head.op = Some("connect");
                serde_json::to_writer(&mut *out, &Line { head, body: req })
            }
            Kind::ConnectResponse(resp) => {
                head.dir = "reply";
                head.ty = "ConnectReply";
                head.op = Some("connect");
                serde_json::to_writer(&mut *out, &Line { head, body: resp })
            }
            Kind::FourLetter {
                command,
                reply,
                reply_len,
                reply_ts,
            } => {
                head.dir = "4lw";
                head.ty = "FourLetterWord";
                head.latency_us = reply_ts.map(|t| latency_us(m.ts, t));
                let body = FourLetterFields {
                    command,
                    reply_len: *reply_len,
                    reply: String::from_utf8_lossy(reply),
                };
                serde_json::to_writer(&mut *out, &Line { head, body })
            }
            Kind::Tls { dir } => {
                head.dir = dir_name(*dir);
                head.ty = "TlsConnection";
                let body = Note {
                    encrypted: Some(true),
                    error: None,
                };
                serde_json::to_writer(&mut *out, &Line { head, body })
            }
            Kind::Undecodable { dir, error, .. } => {
                head.dir = dir_name(*dir);
                head.ty = "Undecodable";
                let body = Note {
                    encrypted: None,
                    error: Some(error.to_string()),
                };
                serde_json::to_writer(&mut *out, &Line { head, body })
            }
            Kind::Unanswered { .. } => Ok(()),
        };
        let r = r
            .map_err(io::Error::from)
            .and_then(|_| out.write_all(b"\n"));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}
