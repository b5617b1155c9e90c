//! Printers for election (FLE) and quorum (ZAB) messages: one text line per message in the
//! spirit of zktraffic's fle-dump/zab-dump, or JSON lines with `proto` "fle"/"zab".
//!
//! Text: `ts src -> dst fle|zab Type from=SID to=SID key=value…` (sids print `?` when
//! unknown). Zxids print in hex with `epoch:counter`; configurations print as their parsed
//! server lines. JSON: `ts`, `proto`, `type`, `src`, `dst`, `conn`, `from_sid`, `to_sid`,
//! `sender` (initiator/acceptor, leader/learner), `size`, then the decoded fields (`zxid` as
//! an integer plus `zxid_hex`, …).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{self, BufWriter, StdoutLock, Write};
use std::net::SocketAddr;
use std::rc::Rc;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use zkscope_capture::ensemble::{
    Discovery, FleKind, FleMsg, Note, Proto, ServerConn, ZabKind, ZabMsg,
};
use zkscope_capture::packet::Timestamp;
use zkscope_proto::client::OpCode;
use zkscope_proto::election::{config_version, parse_config, ConfigLine, Zxid};
use zkscope_proto::quorum::{PacketType, QuorumBody, TxnRecord};

use zkscope_capture::pipeline::{Consumer, Event};

use crate::output::client::hexdump;
use crate::output::fields::{write_fields, Style};
use crate::output::time::TimeFormat;
use crate::output::Format;

/// Standard output shared by the client printer and this one, so their lines interleave in
/// arrival order through one buffer.
#[derive(Clone)]
pub struct SharedOut(Rc<RefCell<BufWriter<StdoutLock<'static>>>>);

impl SharedOut {
    /// A 64 KiB buffer over locked standard output.
    pub fn stdout() -> Self {
        SharedOut(Rc::new(RefCell::new(BufWriter::with_capacity(
            1 << 16,
            io::stdout().lock(),
        ))))
    }
}

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

/// What the server printer shows.
#[derive(Debug, Clone)]
pub struct ServerPrintOptions {
    pub format: Format,
    /// Show quorum pings (text; JSON always has them).
    pub include_pings: bool,
    /// Every decoded field, one per line.
    pub show: bool,
    /// Hex-dump undecodable bytes.
    pub dump_bad: bool,
    /// Print endpoints learnt from the traffic.
    pub discoveries: bool,
    pub time: TimeFormat,
}

/// Prints election and quorum messages.
pub struct ServerPrinter<W: Write> {
    out: W,
    opts: ServerPrintOptions,
    line: String,
    /// The first write error.
    pub error: Option<io::Error>,
}

/// Body fields left out of one-line text (shown by `--show` and JSON).
const INLINE_SKIP: &[&str] = &[
    "txn_zxid",
    "txn_zxid_hex",
    "txn_type",
    "req_type",
    "acl",
    "config",
    "config_servers",
    "config_version",
    "time",
];

/// A server id, `?` when unknown.
struct Sid(Option<i64>);

impl std::fmt::Display for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("?"),
        }
    }
}

fn sid(s: Option<i64>) -> Sid {
    Sid(s)
}

/// `0x100000002 (1:2)`.
fn zxid_text(out: &mut String, z: Zxid) {
    if z.0 == -1 {
        out.push_str("-1");
    } else {
        let _ = write!(out, "{z} ({})", z.epoch_counter());
    }
}

/// ` servers=[1=host:2888:3888:participant;0.0.0.0:2181 …] config_version=0x…`.
fn config_text(out: &mut String, text: Option<&[u8]>) {
    let Some(text) = text else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        let _ = write!(out, " config=<{} bytes, not UTF-8>", text.len());
        return;
    };
    out.push_str(" servers=[");
    let mut first = true;
    for line in parse_config(text) {
        match line {
            ConfigLine::Server(s) => {
                if !first {
                    out.push(' ');
                }
                first = false;
                let _ = write!(out, "{}=", s.sid);
                for (i, a) in s.addrs.iter().enumerate() {
                    if i > 0 {
                        out.push('|');
                    }
                    if a.host.contains(':') {
                        let _ = write!(out, "[{}]", a.host);
                    } else {
                        out.push_str(a.host);
                    }
                    let _ = write!(out, ":{}:{}", a.quorum_port, a.election_port);
                }
                let _ = write!(out, ":{}", s.role.as_str());
                for (i, c) in [s.client, s.secure_client].into_iter().enumerate() {
                    match c {
                        Some(c) if c.host.contains(':') => {
                            let _ = write!(out, ";[{}]:{}", c.host, c.port);
                        }
                        Some(c) => {
                            let _ = write!(out, ";{}:{}", c.host, c.port);
                        }
                        // `;;secure`: no client address, a secure one.
                        None if i == 0 && s.secure_client.is_some() => out.push(';'),
                        None => {}
                    }
                }
            }
            ConfigLine::Invalid(l) => {
                if !first {
                    out.push(' ');
                }
                first = false;
                let _ = write!(out, "invalid:{l:?}");
            }
            _ => {}
        }
    }
    out.push(']');
    if let Some(v) = config_version(text) {
        let _ = write!(out, " config_version={v}");
    }
}

impl<W: Write> ServerPrinter<W> {
    pub fn new(out: W, opts: ServerPrintOptions) -> Self {
        ServerPrinter {
            out,
            opts,
            line: String::with_capacity(512),
            error: None,
        }
    }

    fn end_line(&mut self) {
        if self.error.is_none() {
            if let Err(e) = writeln!(self.out, "{}", self.line) {
                self.error = Some(e);
            }
        }
        self.line.clear();
    }

    fn head(&mut self, ts: Timestamp, src: SocketAddr, dst: SocketAddr, proto: &str, ty: &str) {
        self.opts.time.write(&mut self.line, ts);
        let _ = write!(self.line, " {src} -> {dst} {proto} {ty}");
    }

    fn style(&self) -> (Style, &'static [&'static str]) {
        if self.opts.show {
            (Style::Lines, &[])
        } else {
            (Style::Inline, INLINE_SKIP)
        }
    }

    fn fle_text(&mut self, m: &FleMsg<'_>) {
        let ty = fle_type(&m.kind);
        self.head(m.ts, m.src(), m.dst(), "fle", ty);
        let _ = write!(
            self.line,
            " from={} to={}",
            sid(m.sender_sid()),
            sid(m.receiver_sid())
        );
        match &m.kind {
            FleKind::Initial(i) => {
                let _ = write!(self.line, " sid={} format={}", i.sid, i.format.as_str());
                if !i.address_text.is_empty() {
                    let _ = write!(self.line, " address={}", i.address_text);
                }
            }
            FleKind::Auth(a) => {
                let _ = write!(
                    self.line,
                    " status={} token_len={}",
                    a.status,
                    a.token.0.map_or(0, <[u8]>::len)
                );
            }
            FleKind::Notification(n) => {
                let _ = write!(self.line, " state={} leader={} zxid=", n.state, n.leader);
                zxid_text(&mut self.line, n.zxid);
                let _ = write!(
                    self.line,
                    " election_epoch={} peer_epoch={}",
                    n.election_epoch, n.peer_epoch
                );
                if let Some(v) = n.version {
                    let _ = write!(self.line, " version={v}");
                    if n.version_ignored {
                        self.line.push_str("(ignored)");
                    }
                }
                config_text(&mut self.line, n.config.map(|c| c.0));
                if n.trailing > 0 {
                    let _ = write!(self.line, " trailing_bytes={}", n.trailing);
                }
            }
            FleKind::Undecodable { error, cut, frame } => {
                let _ = write!(self.line, " size={}", m.size);
                if let Some(e) = error {
                    let _ = write!(self.line, " error=\"{e}\"");
                }
                if *cut {
                    self.line.push_str(" (cut: bytes missing from the capture)");
                }
                if self.opts.dump_bad {
                    hexdump(&mut self.line, frame);
                }
            }
        }
        self.end_line();
    }

    fn zab_text(&mut self, m: &ZabMsg<'_>) {
        let (style, skip) = self.style();
        match &m.kind {
            ZabKind::Packet(p) => {
                let ty = p.packet_type;
                if ty == PacketType::PING && !self.opts.include_pings {
                    return;
                }
                let name = ty.display_name().unwrap_or("Unknown");
                self.head(m.ts, m.src(), m.dst(), "zab", name);
                let _ = write!(
                    self.line,
                    " from={} to={}",
                    sid(m.sender_sid()),
                    sid(m.receiver_sid())
                );
                if !ty.is_known() {
                    let _ = write!(self.line, " type={}", ty.0);
                }
                self.line.push_str(" zxid=");
                zxid_text(&mut self.line, p.zxid);
                match p.body(Some(m.from_leader)) {
                    Ok(body) => {
                        write_fields(&mut self.line, &body, style, 4, skip);
                        if !self.opts.show {
                            match &body {
                                QuorumBody::NewLeader { config } => {
                                    config_text(&mut self.line, config.map(|c| c.0))
                                }
                                QuorumBody::Txn(t)
                                | QuorumBody::InformAndActivate { txn: t, .. }
                                    if t.header.op == OpCode::RECONFIG =>
                                {
                                    if let TxnRecord::SetData { data, .. } = t.record {
                                        config_text(&mut self.line, data.0);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => {
                        let _ = write!(self.line, " size={} body_error=\"{e}\"", m.size);
                        if self.opts.dump_bad {
                            hexdump(&mut self.line, p.data.0.unwrap_or_default());
                        }
                    }
                }
                if !p.authinfo.is_null() && self.opts.show {
                    write_fields(&mut self.line, &AuthInfo(p), style, 4, &[]);
                }
            }
            ZabKind::Auth(a) => {
                self.head(m.ts, m.src(), m.dst(), "zab", "QuorumAuth");
                let _ = write!(
                    self.line,
                    " status={} token_len={}",
                    a.status,
                    a.token.0.map_or(0, <[u8]>::len)
                );
            }
            ZabKind::Snapshot {
                bytes,
                sessions,
                nodes,
                complete,
            } => {
                self.head(m.ts, m.src(), m.dst(), "zab", "Snapshot");
                let _ = write!(
                    self.line,
                    " bytes={bytes} sessions={sessions} nodes={nodes}"
                );
                if !complete {
                    self.line
                        .push_str(" (not followed to its end: the stream resynchronises)");
                }
            }
            ZabKind::Cut {
                packet_type, zxid, ..
            } => {
                self.head(
                    m.ts,
                    m.src(),
                    m.dst(),
                    "zab",
                    packet_type.display_name().unwrap_or("Unknown"),
                );
                self.line.push_str(" zxid=");
                zxid_text(&mut self.line, *zxid);
                let _ = write!(
                    self.line,
                    " size={} (cut: bytes missing from the capture)",
                    m.size
                );
            }
            ZabKind::Undecodable { error, head } => {
                self.head(m.ts, m.src(), m.dst(), "zab", "Undecodable");
                let _ = write!(self.line, " error=\"{error}\"");
                if self.opts.dump_bad {
                    hexdump(&mut self.line, head);
                }
            }
        }
        self.end_line();
    }

    fn note_text(&mut self, n: &Note<'_>) {
        match n {
            Note::Discovered { ts, discovery } => {
                if !self.opts.discoveries {
                    return;
                }
                self.opts.time.write(&mut self.line, *ts);
                let e = &discovery.endpoint;
                let _ = write!(
                    self.line,
                    " discovered {} {} sid={} (from {})",
                    e.proto.as_str(),
                    discovery.addr,
                    sid(e.sid),
                    e.source.as_str()
                );
            }
            Note::Tls { ts, conn } => {
                self.head(*ts, conn.client, conn.server, conn.proto.as_str(), "TLS");
                let what = match conn.proto {
                    Proto::Fle => "election connection (sslQuorum)",
                    Proto::Zab => "quorum connection (sslQuorum)",
                    Proto::Client => "client connection",
                };
                let _ = write!(
                    self.line,
                    " conn={} to={} encrypted {what}: not decodable",
                    conn.id,
                    sid(conn.server_sid)
                );
            }
            Note::TlsUnidentified {
                ts,
                id,
                client,
                server,
            } => {
                self.head(*ts, *client, *server, "?", "TLS");
                let _ = write!(
                    self.line,
                    " conn={id} encrypted connection to a ZooKeeper host, port unknown \
                     (sslQuorum? --fle-port/--zab-port): not decodable"
                );
            }
            Note::Closed { .. } => return,
        }
        self.end_line();
    }

    fn json_line(&mut self, write: impl FnOnce(&mut W) -> serde_json::Result<()>) {
        if self.error.is_some() {
            return;
        }
        let r = write(&mut self.out)
            .map_err(io::Error::from)
            .and_then(|_| self.out.write_all(b"\n"));
        if let Err(e) = r {
            self.error = Some(e);
        }
    }
}

fn fle_type(k: &FleKind<'_>) -> &'static str {
    match k {
        FleKind::Initial(_) => "Initial",
        FleKind::Auth(_) => "QuorumAuth",
        FleKind::Notification(_) => "Notification",
        FleKind::Undecodable { .. } => "Undecodable",
    }
}

/// `authinfo` of a REQUEST.
struct AuthInfo<'p, 'a>(&'p zkscope_proto::quorum::QuorumPacket<'a>);

impl Serialize for AuthInfo<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("authinfo", &self.0.authinfo)?;
        m.end()
    }
}

/// The leading fields of every fle/zab JSON line.
struct Head<'a> {
    ts: Timestamp,
    proto: &'static str,
    ty: Option<&'static str>,
    src: SocketAddr,
    dst: SocketAddr,
    conn: &'a ServerConn,
    from_sid: Option<i64>,
    to_sid: Option<i64>,
    sender: &'static str,
    size: usize,
}

impl Head<'_> {
    fn write<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        m.serialize_entry("ts", &(self.ts.micros() as f64 / 1e6))?;
        m.serialize_entry("proto", self.proto)?;
        if let Some(ty) = self.ty {
            m.serialize_entry("type", ty)?;
        }
        m.serialize_entry("src", &self.src)?;
        m.serialize_entry("dst", &self.dst)?;
        m.serialize_entry("conn", &self.conn.id)?;
        m.serialize_entry("from_sid", &self.from_sid)?;
        m.serialize_entry("to_sid", &self.to_sid)?;
        m.serialize_entry("sender", self.sender)?;
        m.serialize_entry("size", &self.size)
    }
}

impl Serialize for Head<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        self.write(&mut m)?;
        m.end()
    }
}

/// A JSON line: the head, then the message's own fields (both flat maps, no buffering).
#[derive(Serialize)]
struct Line<'h, 'b, B: Serialize> {
    #[serde(flatten)]
    head: &'h Head<'h>,
    #[serde(flatten)]
    body: &'b B,
}

#[derive(Serialize)]
struct Bad {
    error: Option<String>,
    cut: bool,
}

#[derive(Serialize)]
struct SnapshotFields {
    bytes: u64,
    sessions: u64,
    nodes: u64,
    complete: bool,
}

#[derive(Serialize)]
struct CutFields {
    type_code: i32,
    zxid: i64,
    zxid_hex: String,
    cut: bool,
}

fn fle_json<W: Write>(out: &mut W, msg: &FleMsg<'_>) -> serde_json::Result<()> {
    let head = Head {
        ts: msg.ts,
        proto: "fle",
        ty: Some(fle_type(&msg.kind)),
        src: msg.src(),
        dst: msg.dst(),
        conn: msg.conn,
        from_sid: msg.sender_sid(),
        to_sid: msg.receiver_sid(),
        sender: if msg.from_initiator {
            "initiator"
        } else {
            "acceptor"
        },
        size: msg.size,
    };
    let head = &head;
    match &msg.kind {
        FleKind::Initial(i) => serde_json::to_writer(out, &Line { head, body: i }),
        FleKind::Auth(a) => serde_json::to_writer(out, &Line { head, body: a }),
        FleKind::Notification(n) => serde_json::to_writer(out, &Line { head, body: n }),
        FleKind::Undecodable { error, cut, .. } => {
            let body = Bad {
                error: error.as_ref().map(ToString::to_string),
                cut: *cut,
            };
            serde_json::to_writer(out, &Line { head, body: &body })
        }
    }
}

fn zab_json<W: Write>(out: &mut W, msg: &ZabMsg<'_>) -> serde_json::Result<()> {
    let ty = match &msg.kind {
        // The packet's own fields start with `type`.
        ZabKind::Packet(_) => None,
        ZabKind::Auth(_) => Some("QuorumAuth"),
        ZabKind::Snapshot { .. } => Some("Snapshot"),
        ZabKind::Cut { packet_type, .. } => Some(packet_type.display_name().unwrap_or("Unknown")),
        ZabKind::Undecodable { .. } => Some("Undecodable"),
    };
    let head = Head {
        ts: msg.ts,
        proto: "zab",
        ty,
        src: msg.src(),
        dst: msg.dst(),
        conn: msg.conn,
        from_sid: msg.sender_sid(),
        to_sid: msg.receiver_sid(),
        sender: if msg.from_leader { "leader" } else { "learner" },
        size: msg.size,
    };
    let head = &head;
    match &msg.kind {
        ZabKind::Packet(p) => {
            let body = p.directed(Some(msg.from_leader));
            serde_json::to_writer(out, &Line { head, body: &body })
        }
        ZabKind::Auth(a) => serde_json::to_writer(out, &Line { head, body: a }),
        ZabKind::Snapshot {
            bytes,
            sessions,
            nodes,
            complete,
        } => {
            let body = SnapshotFields {
                bytes: *bytes,
                sessions: *sessions,
                nodes: *nodes,
                complete: *complete,
            };
            serde_json::to_writer(out, &Line { head, body: &body })
        }
        ZabKind::Cut {
            packet_type, zxid, ..
        } => {
            let body = CutFields {
                type_code: packet_type.0,
                zxid: zxid.0,
                zxid_hex: zxid.to_string(),
                cut: true,
            };
            serde_json::to_writer(out, &Line { head, body: &body })
        }
        ZabKind::Undecodable { error, .. } => {
            let body = Bad {
                error: Some(error.to_string()),
                cut: false,
            };
            serde_json::to_writer(out, &Line { head, body: &body })
        }
    }
}

/// `{"ts":…,"proto":"zkscope","type":"Discovered","endpoint":…,"role":…,"sid":…,"source":…}`.
struct NoteLine<'n, 'a>(&'n Note<'a>);

impl Serialize for NoteLine<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Note::Discovered { ts, discovery } => {
                let Discovery { addr, endpoint } = discovery;
                m.serialize_entry("ts", &(ts.micros() as f64 / 1e6))?;
                m.serialize_entry("proto", "zkscope")?;
                m.serialize_entry("type", "Discovered")?;
                m.serialize_entry("endpoint", addr)?;
                m.serialize_entry("role", endpoint.proto.as_str())?;
                m.serialize_entry("sid", &endpoint.sid)?;
                m.serialize_entry("source", endpoint.source.as_str())?;
            }
            Note::Tls { ts, conn } => {
                m.serialize_entry("ts", &(ts.micros() as f64 / 1e6))?;
                m.serialize_entry("proto", conn.proto.as_str())?;
                m.serialize_entry("type", "TlsConnection")?;
                m.serialize_entry("src", &conn.client)?;
                m.serialize_entry("dst", &conn.server)?;
                m.serialize_entry("conn", &conn.id)?;
                m.serialize_entry("to_sid", &conn.server_sid)?;
                m.serialize_entry("encrypted", &true)?;
            }
            Note::TlsUnidentified {
                ts,
                id,
                client,
                server,
            } => {
                m.serialize_entry("ts", &(ts.micros() as f64 / 1e6))?;
                m.serialize_entry("proto", "unknown")?;
                m.serialize_entry("type", "TlsConnection")?;
                m.serialize_entry("src", client)?;
                m.serialize_entry("dst", server)?;
                m.serialize_entry("conn", id)?;
                m.serialize_entry("encrypted", &true)?;
            }
            // not printed (filtered in `note`)
            Note::Closed { .. } => {}
        }
        m.end()
    }
}

impl<W: Write> ServerPrinter<W> {
    /// Prints an election message.
    pub fn fle(&mut self, m: &FleMsg<'_>) {
        match self.opts.format {
            Format::Text => self.fle_text(m),
            Format::Json => self.json_line(|o| fle_json(o, m)),
        }
    }

    /// Prints a quorum packet.
    pub fn zab(&mut self, m: &ZabMsg<'_>) {
        match self.opts.format {
            Format::Text => self.zab_text(m),
            Format::Json => self.json_line(|o| zab_json(o, m)),
        }
    }

    /// Prints a discovery or a TLS connection.
    pub fn note(&mut self, n: &Note<'_>) {
        // Connection ends are for the election tracker, not printed.
        let quiet = match n {
            Note::Discovered { .. } => !self.opts.discoveries,
            Note::Closed { .. } => true,
            Note::Tls { .. } | Note::TlsUnidentified { .. } => false,
        };
        if quiet {
            return;
        }
        match self.opts.format {
            Format::Text => self.note_text(n),
            Format::Json => self.json_line(|o| serde_json::to_writer(o, &NoteLine(n))),
        }
    }
}

impl<W: Write> Consumer for ServerPrinter<W> {
    fn event(&mut self, ev: &Event<'_, '_>) {
        match ev {
            Event::Election(m) => self.fle(m),
            Event::Quorum(m) => self.zab(m),
            Event::Note(n) => self.note(n),
            Event::Client(_) => {}
        }
    }
    fn done(&self) -> bool {
        self.error.is_some()
    }
    fn flush(&mut self) {
        if self.error.is_none() {
            if let Err(e) = self.out.flush() {
                self.error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config_text;

    #[test]
    fn config_text_brackets_ipv6_client_addresses() {
        // What ZooKeeper 3.8 sends for `server.1=[::1]:2888:3888;[::1]:2181`.
        let mut s = String::new();
        config_text(
            &mut s,
            Some(
                b"server.1=[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181\n\
                  server.2=zk2:2888:3888:observer;;[::1]:2281\nversion=100000000",
            ),
        );
        assert_eq!(
            s,
            " servers=[1=[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181 \
             2=zk2:2888:3888:observer;;[::1]:2281] config_version=0x100000000"
        );
    }
}
