//! Printers for `zkscope dump`: zk-dump-style paired text, arrival-order text, `--show`
//! (every field, one per line) and JSON lines.

use std::collections::HashMap;
use std::io::{self, Write};

use zkscope_capture::client::{ConnInfo, Kind, Msg, PendingRequest, Unanswered};
use zkscope_capture::packet::Timestamp;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_capture::tcp::Direction;
use zkscope_proto::client::{
    implied_opcode, Data, ErrCode, Hex, OpCode, ReplyBody, ReplyHeader, RequestBody, PING_XID,
};

use crate::output::fields::{write_fields, Style};
use crate::output::jsonline::JsonLine;
use crate::output::time::{TimeFormat, TimeWriter};
use crate::output::Format;

/// What the printer shows and how.
#[derive(Debug, Clone)]
pub struct PrintOptions {
    pub format: Format,
    /// Print each message when it arrives instead of each request with its reply.
    pub unpaired: bool,
    /// Only requests whose reply took longer than this many nanoseconds, with their replies.
    pub slow: Option<i64>,
    /// Every decoded field, one per line.
    pub show: bool,
    pub include_pings: bool,
    /// A stable colour per connection (when `highlight` is on).
    pub colors: bool,
    /// ANSI colours in text: error replies red, slow replies yellow.
    pub highlight: bool,
    /// Stop after this many lines (JSON: objects), like tcpdump's -c.
    pub limit: Option<u64>,
    pub dump_bad: bool,
    pub time: TimeFormat,
    /// `--show`: znode data bytes shown at most.
    pub max_data: usize,
}

/// `--show`'s `data:` line: text (escaped, quoted) when the bytes are UTF-8 without control
/// characters other than newlines and tabs, else a hex preview; at most `max` bytes.
fn push_data(out: &mut String, data: Data<'_>, max: usize) {
    use std::fmt::Write as _;
    let Some(b) = data.bytes() else {
        out.push_str("\n    data: null");
        return;
    };
    let cut = b.get(..max).unwrap_or(b);
    // a cut inside a UTF-8 character is still text
    let text = match std::str::from_utf8(cut) {
        Ok(t) => Some(t),
        Err(e) if cut.len() < b.len() && e.error_len().is_none() => {
            std::str::from_utf8(cut.get(..e.valid_up_to()).unwrap_or(&[])).ok()
        }
        Err(_) => None,
    }
    .filter(|t| {
        t.chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t' || c == '\r')
    });
    out.push_str("\n    data: ");
    match text {
        Some(t) => {
            let _ = write!(out, "\"{}\"", t.escape_debug());
        }
        None => {
            out.push_str("hex ");
            for (i, x) in cut.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{x:02x}");
            }
        }
    }
    if cut.len() < b.len() {
        let _ = write!(out, " … ({} bytes, --max-data {max})", b.len());
    }
}

/// Replies at least this slow are highlighted (when colours are on and no --slow is given).
const SLOW_NS: i64 = 100_000_000;

/// Prints decoded client messages to a writer.
pub struct Printer<W: Write> {
    out: W,
    opts: PrintOptions,
    line: String,
    json: JsonLine,
    time: TimeWriter,
    /// Each connection's client and server addresses, rendered once.
    addrs: HashMap<u64, (Box<str>, Box<str>)>,
    /// The first write error (a closed pipe ends the run quietly).
    pub error: Option<io::Error>,
    /// ANSI colour of the line being built (0: none).
    mark: u8,
    /// Lines (JSON objects) written.
    pub written: u64,
    /// Per connection: when its ConnectRequest was seen (the ConnectReply's latency).
    connect_ts: HashMap<u64, Timestamp>,
    /// Per connection: the fields of its SetAuth request, shown with the reply when paired.
    auth_fields: HashMap<u64, String>,
}

/// Connections whose handshake time or auth fields are kept (then the maps start over).
const CONN_STATE_MAX: usize = 65_536;

/// Top-level fields left out of one-line text (they are shown by `--show` and JSON).
const INLINE_SKIP: &[&str] = &["stat", "acl", "children", "passwd_len"];

impl<W: Write> Printer<W> {
    pub fn new(out: W, opts: PrintOptions) -> Self {
        let time = TimeWriter::new(opts.time);
        Printer {
            out,
            opts,
            line: String::with_capacity(512),
            json: JsonLine::default(),
            time,
            addrs: HashMap::new(),
            error: None,
            mark: 0,
            written: 0,
            connect_ts: HashMap::new(),
            auth_fields: HashMap::new(),
        }
    }

    /// Whether the `-c N` limit is reached.
    pub fn limit_reached(&self) -> bool {
        self.opts.limit.is_some_and(|n| self.written >= n)
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
        if self.error.is_some() || self.limit_reached() {
            self.line.clear();
            return;
        }
        let colour = match (self.opts.highlight, self.mark, self.opts.colors) {
            (false, _, _) => None,
            (true, 0, true) => Some(color_of(conn)),
            (true, 0, false) => None,
            (true, m, _) => Some(m),
        };
        let r = match colour {
            Some(c) if self.opts.format == Format::Text => {
                writeln!(self.out, "\x1b[{c}m{}\x1b[0m", self.line)
            }
            _ => writeln!(self.out, "{}", self.line),
        };
        if let Err(e) = r {
            self.error = Some(e);
        }
        self.written += 1;
        self.mark = 0;
        self.line.clear();
    }

    fn ts(&mut self, ts: Timestamp) {
        self.time.write(&mut self.line, ts);
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
                    // printed with its reply; SetAuth's scheme and (redacted) identity with it
                    if r.header.opcode == OpCode::AUTH {
                        let mut f = String::new();
                        write_fields(&mut f, &r.body, Style::Inline, 4, INLINE_SKIP);
                        if self.auth_fields.len() >= CONN_STATE_MAX {
                            self.auth_fields.clear();
                        }
                        self.auth_fields.insert(conn.id, f);
                    }
                    return;
                }
                self.head(
                    m.ts,
                    r.header.opcode.request_type(),
                    conn,
                    Direction::ToServer,
                );
                let _ = write!(self.line, " xid={} size={}", r.header.xid, m.size);
                write_fields(&mut self.line, &r.body, style, 4, skip);
                if self.opts.show {
                    if let RequestBody::Create { data, .. } | RequestBody::SetData { data, .. } =
                        &r.body
                    {
                        push_data(&mut self.line, *data, self.opts.max_data);
                    }
                }
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
                    ErrName(h.err)
                );
                if let Some(p) = request {
                    let _ = write!(self.line, " latency={}", Latency(m.ts.0 - p.ts.0));
                    if m.ts.0 - p.ts.0 >= self.opts.slow.unwrap_or(SLOW_NS) {
                        self.mark = 33;
                    }
                }
                if h.err.is_error() {
                    self.mark = 31;
                }
                write_fields(&mut self.line, &reply.body, style, 4, skip);
                if let (true, ReplyBody::GetData { data, .. }) = (self.opts.show, &reply.body) {
                    push_data(&mut self.line, *data, self.opts.max_data);
                }
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
                if let Some(t) = self.connect_ts.remove(&conn.id) {
                    let _ = write!(self.line, " latency={}", Latency(m.ts.0 - t.0));
                }
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
        if self.addrs.len() >= 65_536 && !self.addrs.contains_key(&conn.id) {
            self.addrs.clear();
        }
        let (client, server) = self.addrs.entry(conn.id).or_insert_with(|| {
            (
                conn.client.to_string().into_boxed_str(),
                conn.server.to_string().into_boxed_str(),
            )
        });
        for part in [" ", client, " ", arrow, " ", server, " ", ty] {
            self.line.push_str(part);
        }
        // (a ConnectReply carries the session in its own fields)
        if let Some(s) = conn.session.filter(|_| ty != "ConnectReply") {
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
        if p.opcode == OpCode::AUTH {
            if let Some(f) = self.auth_fields.remove(&conn.id) {
                self.line.push_str(&f);
            }
        }
        let _ = write!(self.line, " size={}", p.size);
        self.write_line(conn);
    }
}

impl<W: Write> Consumer for Printer<W> {
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
    fn done(&self) -> bool {
        self.error.is_some() || self.limit_reached()
    }
    fn flush(&mut self) {
        Printer::flush(self);
    }
}

impl<W: Write> Printer<W> {
    /// Prints one client message (or holds a request until its reply).
    pub fn message(&mut self, m: &Msg<'_>) {
        if let Kind::ConnectRequest(_) = &m.kind {
            if self.connect_ts.len() >= CONN_STATE_MAX {
                self.connect_ts.clear();
            }
            self.connect_ts.insert(m.conn.id, m.ts);
        }
        if let Some(limit) = self.opts.slow {
            // The slow-request log shows replies (with their requests) and nothing else.
            let slow = match &m.kind {
                Kind::Reply {
                    request: Some(p), ..
                } => m.ts.0 - p.ts.0 > limit,
                _ => false,
            };
            if !slow {
                return;
            }
        }
        match self.opts.format {
            Format::Text => self.text(m),
            Format::Json => self.json(m),
        }
    }
}

/// An error code by name, or its number when it has none.
struct ErrName(ErrCode);

impl std::fmt::Display for ErrName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.0.is_captured() {
            return f.write_str("?");
        }
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0 .0),
        }
    }
}

/// A zxid: hex, -1 when absent, `?` when the capture cut it off.
struct Zxid(i64);

impl std::fmt::Display for Zxid {
    /// `0x100000002 (1:2)`: hex, then epoch:counter, as the election and quorum printers do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == ReplyHeader::ZXID_NOT_CAPTURED {
            f.write_str("?")
        } else if self.0 < 0 {
            write!(f, "{}", self.0)
        } else {
            write!(
                f,
                "{:#x} ({}:{})",
                self.0,
                self.0 >> 32,
                self.0 & 0xffff_ffff
            )
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
    let mut eat = |b: u8| h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    match conn.client.ip() {
        std::net::IpAddr::V4(ip) => ip.octets().into_iter().for_each(&mut eat),
        std::net::IpAddr::V6(ip) => ip.octets().into_iter().for_each(&mut eat),
    }
    conn.client
        .port()
        .to_be_bytes()
        .into_iter()
        .for_each(&mut eat);
    31 + (h % 6) as u8
}

/// Appends a hex dump of `bytes` (16 per line, with their ASCII) to `out`.
pub(crate) fn hexdump(out: &mut String, bytes: &[u8]) {
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

fn latency_us(from: Timestamp, to: Timestamp) -> f64 {
    (to.0 - from.0) as f64 / 1e3
}

fn err_name(e: ErrCode) -> &'static str {
    if !e.is_captured() {
        return "unknown";
    }
    e.name().unwrap_or("UNKNOWN")
}

fn dir_name(d: Direction) -> &'static str {
    match d {
        Direction::ToServer => "request",
        Direction::ToClient => "reply",
    }
}

impl<W: Write> Printer<W> {
    /// One message as a JSON line (the `--format json` contract: fields are never renamed).
    fn json(&mut self, m: &Msg<'_>) {
        if matches!(m.kind, Kind::Unanswered { .. }) || self.error.is_some() || self.limit_reached()
        {
            return; // unanswered requests were printed when they arrived; the summary counts them
        }
        let j = &mut self.json;
        j.begin(m.ts);
        j.name("proto", "client");
        match &m.kind {
            Kind::Request(r) => {
                let op = r.header.opcode;
                j.name("dir", "request");
                j.name("type", op.request_type());
                if let Some(name) = op.name() {
                    j.name("op", name);
                }
                j.int("opcode", op.0.into());
                j.int("xid", r.header.xid.into());
                Self::json_tail(j, m);
                j.flatten(&r.body);
            }
            Kind::Reply { reply, request } => {
                let op = request
                    .map(|p| p.opcode)
                    .or(implied_opcode(reply.header.xid));
                let h = &reply.header;
                j.name("dir", "reply");
                j.name("type", op.map_or("Reply", |o| o.reply_type()));
                if let Some(name) = op.and_then(|o| o.name()) {
                    j.name("op", name);
                }
                j.opt_int("opcode", op.map(|o| o.0.into()));
                j.int("xid", h.xid.into());
                // a header cut inside its zxid: null, no zxid_hex
                j.opt_int("zxid", h.zxid_captured().then_some(h.zxid));
                if h.zxid >= 0 {
                    j.value("zxid_hex", &Hex(h.zxid));
                }
                // a reply cut inside its header: no error code (null), err_name "unknown"
                j.opt_int("err", h.err.is_captured().then(|| h.err.0.into()));
                j.name("err_name", err_name(h.err));
                if let Some(p) = request {
                    if let Some(path) = p.path() {
                        j.text("path", path.0);
                    }
                    if let Some(w) = p.watch {
                        j.bool("watch", w);
                    }
                    j.float("latency_us", latency_us(p.ts, m.ts));
                }
                Self::json_tail(j, m);
                j.flatten(&reply.body);
            }
            Kind::Event { header, event } => {
                j.name("dir", "event");
                j.name("type", "WatchEvent");
                j.opt_int("opcode", None);
                j.int("xid", header.xid.into());
                // a header cut inside its zxid: null, no zxid_hex
                j.opt_int("zxid", header.zxid_captured().then_some(header.zxid));
                if header.zxid >= 0 {
                    j.value("zxid_hex", &Hex(header.zxid));
                }
                j.int("err", header.err.0.into());
                j.name("err_name", err_name(header.err));
                Self::json_tail(j, m);
                j.flatten(event);
            }
            Kind::ConnectRequest(req) => {
                j.name("dir", "request");
                j.name("type", "ConnectRequest");
                j.name("op", "connect");
                j.opt_int("opcode", None);
                Self::json_tail(j, m);
                j.flatten(req);
            }
            Kind::ConnectResponse(resp) => {
                j.name("dir", "reply");
                j.name("type", "ConnectReply");
                j.name("op", "connect");
                j.opt_int("opcode", None);
                if let Some(t) = self.connect_ts.remove(&m.conn.id) {
                    j.float("latency_us", latency_us(t, m.ts));
                }
                Self::json_tail(j, m);
                j.flatten(resp);
            }
            Kind::FourLetter {
                command,
                reply,
                reply_len,
                reply_ts,
            } => {
                j.name("dir", "4lw");
                j.name("type", "FourLetterWord");
                j.opt_int("opcode", None);
                if let Some(t) = reply_ts {
                    j.float("latency_us", latency_us(m.ts, *t));
                }
                Self::json_tail(j, m);
                j.name("command", command);
                j.int("reply_len", *reply_len as i64);
                j.text("reply", reply);
            }
            Kind::Tls { dir } => {
                j.name("dir", dir_name(*dir));
                j.name("type", "TlsConnection");
                j.opt_int("opcode", None);
                Self::json_tail(j, m);
                j.bool("encrypted", true);
            }
            Kind::Undecodable { dir, error, .. } => {
                j.name("dir", dir_name(*dir));
                j.name("type", "Undecodable");
                j.opt_int("opcode", None);
                Self::json_tail(j, m);
                j.value("error", &error.to_string());
            }
            Kind::Unanswered { .. } => return,
        }
        let line = j.finish();
        if let Err(e) = self.out.write_all(line) {
            self.error = Some(e);
        }
        self.written += 1;
    }

    /// Fields after the headers: size, addresses, session, decoding problems.
    fn json_tail(j: &mut JsonLine, m: &Msg<'_>) {
        j.int("size", m.size.into());
        j.conn(m.conn);
        if let Some(e) = &m.error {
            j.value("decode_error", &e.to_string());
        }
        if m.cut {
            j.bool("cut", true);
        }
    }
}
