//! Ensemble traffic: the client (2181), quorum (ZAB, 2888) and leader-election (FLE, 3888)
//! protocols at once.
//!
//! [`EnsembleHandler`] is a [`StreamHandler`]. Each connection is given a protocol:
//!
//! 1. by its server endpoint: ports and `HOST:PORT`s from the command line
//!    ([`EnsembleSpec`]), then endpoints learnt from the traffic itself (the ensemble
//!    configuration `server.N=host:quorum:election[:role];client` in election notifications,
//!    NEWLEADER and reconfig transactions; the election address of initial messages), then
//!    (in [`Mode::Auto`]) the well-known ports;
//! 2. in [`Mode::Auto`], for a connection on an unknown port, by its first bytes
//!    (see `recognise`): the election's initial message, a learner's FOLLOWERINFO, a client's
//!    ConnectRequest or four-letter word, TLS. Mid-stream connections wait (with a bounded
//!    buffer) until their bytes are unambiguous or an endpoint learnt later names them.
//!
//! TLS (`sslQuorum`, `portUnification`) is found per connection: a ClientHello at the start
//! or TLS records mid-stream. On a known endpoint the connection is reported as an encrypted
//! election/quorum connection ([`Note::Tls`]); on an unknown port it waits for its endpoint to
//! be learnt (then [`Note::Tls`]) and, meanwhile, is reported as [`Note::TlsUnidentified`] if
//! its server runs a known ZooKeeper endpoint (other TLS, e.g. HTTPS, stays a counter).
//!
//! Client connections are handed to a wrapped [`ClientHandler`] (its sink gets the client
//! messages); election and quorum messages go to a [`ServerSink`]. Everything that is not
//! reported as a message is counted in [`EnsembleStats`].
//!
//! Orientation: for an election connection the "client" side is the initiator and the
//! "server" side the acceptor (listening on its election port); for a quorum connection the
//! client is the learner and the server the leader (listening on its quorum port).

mod fle;
mod recognise;
mod topology;
mod zab;

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;
use zkscope_proto::client::{is_tls_client_hello, OpCode};
use zkscope_proto::election::{decode_notification, InitialMessage, Notification, Zxid};
use zkscope_proto::jute::DecodeError;
use zkscope_proto::quorum::{PacketType, QuorumAuthPacket, QuorumBody, QuorumPacket};

pub use topology::{Discovery, Endpoint, Resolver, Source};

use crate::client::{ClientConn, ClientHandler, ClientSink};
use crate::packet::{TcpSegment, Timestamp};
use crate::tcp::{CloseReason, Direction, FlowKey, StreamHandler};
use fle::{FleEvent, FleStream};
use recognise::Verdict;
use topology::Topology;
use zab::{ZabEvent, ZabStream};

/// One of ZooKeeper's three protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// Client port (2181).
    Client,
    /// Leader election (3888).
    Fle,
    /// Quorum / atomic broadcast (2888).
    Zab,
}

impl Proto {
    /// `"client"`, `"fle"` or `"zab"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Client => "client",
            Proto::Fle => "fle",
            Proto::Zab => "zab",
        }
    }

    /// ZooKeeper's conventional port.
    pub fn default_port(self) -> u16 {
        match self {
            Proto::Client => 2181,
            Proto::Fle => 3888,
            Proto::Zab => 2888,
        }
    }
}

/// Which protocols to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Election ports only.
    Fle,
    /// Quorum ports only.
    Zab,
    /// All three, recognising connections on unknown ports from their bytes.
    Auto,
}

impl Mode {
    fn only(self) -> Option<Proto> {
        match self {
            Mode::Fle => Some(Proto::Fle),
            Mode::Zab => Some(Proto::Zab),
            Mode::Auto => None,
        }
    }
}

/// Which endpoints speak what, and which conversations to keep.
#[derive(Debug, Clone)]
pub struct EnsembleSpec {
    /// What to decode.
    pub mode: Mode,
    /// Client ports (any address).
    pub client_ports: Vec<u16>,
    /// Client endpoints.
    pub client_servers: Vec<SocketAddr>,
    /// Election ports.
    pub fle_ports: Vec<u16>,
    /// Election endpoints.
    pub fle_servers: Vec<SocketAddr>,
    /// Quorum ports.
    pub zab_ports: Vec<u16>,
    /// Quorum endpoints.
    pub zab_servers: Vec<SocketAddr>,
    /// Keep only client conversations whose client uses this port.
    pub client_port: Option<u16>,
    /// Keep only connections with one of these hosts at either end.
    pub include_hosts: Vec<IpAddr>,
    /// Drop connections with one of these hosts at either end.
    pub exclude_hosts: Vec<IpAddr>,
}

impl EnsembleSpec {
    /// A spec with no ports: the mode's defaults apply.
    pub fn new(mode: Mode) -> Self {
        EnsembleSpec {
            mode,
            client_ports: Vec::new(),
            client_servers: Vec::new(),
            fle_ports: Vec::new(),
            fle_servers: Vec::new(),
            zab_ports: Vec::new(),
            zab_servers: Vec::new(),
            client_port: None,
            include_hosts: Vec::new(),
            exclude_hosts: Vec::new(),
        }
    }

    /// The ports given for `proto`, or its default port when none (or no endpoint) was.
    pub fn ports_of(&self, proto: Proto) -> Vec<u16> {
        let (ports, servers) = match proto {
            Proto::Client => (&self.client_ports, &self.client_servers),
            Proto::Fle => (&self.fle_ports, &self.fle_servers),
            Proto::Zab => (&self.zab_ports, &self.zab_servers),
        };
        if ports.is_empty() && servers.is_empty() {
            vec![proto.default_port()]
        } else {
            ports.clone()
        }
    }
}

/// A server-to-server connection (election or quorum), as messages report it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerConn {
    /// Serial number of the connection in this run (separate from client connections').
    pub id: u64,
    /// Election or quorum.
    pub proto: Proto,
    /// The initiator (election) or learner (quorum).
    pub client: SocketAddr,
    /// The acceptor on its election port, or the leader on its quorum port.
    pub server: SocketAddr,
    /// Server id of the initiator (from its initial message) or learner (FOLLOWERINFO).
    pub client_sid: Option<i64>,
    /// Server id of the acceptor/leader, when its endpoint is in a known configuration.
    pub server_sid: Option<i64>,
    /// The learner is an observer (OBSERVERINFO).
    pub observer: bool,
}

impl ServerConn {
    /// The address and server id of one end: the initiator/learner (`client`) or the
    /// acceptor/leader.
    pub fn end(&self, client: bool) -> (SocketAddr, Option<i64>) {
        if client {
            (self.client, self.client_sid)
        } else {
            (self.server, self.server_sid)
        }
    }
}

/// A decoded election-port message.
#[derive(Debug)]
pub struct FleMsg<'a> {
    /// Capture time of the segment that completed it.
    pub ts: Timestamp,
    /// The connection.
    pub conn: &'a ServerConn,
    /// Sent by the initiator (else by the acceptor).
    pub from_initiator: bool,
    /// Bytes on the wire (frame length for notifications).
    pub size: usize,
    /// What it is.
    pub kind: FleKind<'a>,
}

/// What an [`FleMsg`] is.
#[derive(Debug)]
pub enum FleKind<'a> {
    /// The initiator's first message.
    Initial(InitialMessage<'a>),
    /// A quorum SASL packet.
    Auth(QuorumAuthPacket<'a>),
    /// A vote.
    Notification(Notification<'a>),
    /// Bytes that did not decode (a bad initial message, a frame that is no notification, or
    /// a frame cut by a capture gap).
    Undecodable {
        /// Why (`None` for a frame cut by a gap).
        error: Option<DecodeError>,
        /// The frame lost bytes in a gap.
        cut: bool,
        /// The captured bytes.
        frame: &'a [u8],
    },
}

impl FleMsg<'_> {
    /// Sender's address.
    pub fn src(&self) -> SocketAddr {
        self.conn.end(self.from_initiator).0
    }

    /// Receiver's address.
    pub fn dst(&self) -> SocketAddr {
        self.conn.end(!self.from_initiator).0
    }

    /// Sender's server id, when known.
    pub fn sender_sid(&self) -> Option<i64> {
        self.conn.end(self.from_initiator).1
    }

    /// Receiver's server id, when known.
    pub fn receiver_sid(&self) -> Option<i64> {
        self.conn.end(!self.from_initiator).1
    }
}

/// A decoded quorum-port message.
#[derive(Debug)]
pub struct ZabMsg<'a> {
    /// Capture time of the segment that completed it.
    pub ts: Timestamp,
    /// The connection.
    pub conn: &'a ServerConn,
    /// Sent by the leader (else by the learner).
    pub from_leader: bool,
    /// Bytes on the wire.
    pub size: usize,
    /// What it is.
    pub kind: ZabKind<'a>,
}

/// What a [`ZabMsg`] is.
#[derive(Debug)]
pub enum ZabKind<'a> {
    /// A `QuorumPacket` (decode its body with `packet.body(Some(from_leader))`).
    Packet(QuorumPacket<'a>),
    /// A quorum SASL packet.
    Auth(QuorumAuthPacket<'a>),
    /// The snapshot after SNAP, skipped over.
    Snapshot {
        /// Its length.
        bytes: u64,
        /// Sessions it holds (0 when cut short).
        sessions: u64,
        /// Nodes walked over.
        nodes: u64,
        /// False when it could not be followed to its end (bad bytes or a gap).
        complete: bool,
    },
    /// A packet that lost bytes in a capture gap.
    Cut {
        /// Its type.
        packet_type: PacketType,
        /// Its zxid.
        zxid: Zxid,
        /// Its full length.
        len: usize,
    },
    /// Bytes that are no packet.
    Undecodable {
        /// Why.
        error: DecodeError,
        /// The bytes' start.
        head: &'a [u8],
    },
}

impl ZabMsg<'_> {
    /// Sender's address.
    pub fn src(&self) -> SocketAddr {
        self.conn.end(!self.from_leader).0
    }

    /// Receiver's address.
    pub fn dst(&self) -> SocketAddr {
        self.conn.end(self.from_leader).0
    }

    /// Sender's server id, when known.
    pub fn sender_sid(&self) -> Option<i64> {
        self.conn.end(!self.from_leader).1
    }

    /// Receiver's server id, when known.
    pub fn receiver_sid(&self) -> Option<i64> {
        self.conn.end(self.from_leader).1
    }
}

/// Things worth telling that are not messages.
#[derive(Debug)]
pub enum Note<'a> {
    /// An endpoint learnt from the traffic.
    Discovered {
        /// When.
        ts: Timestamp,
        /// What.
        discovery: &'a Discovery,
    },
    /// An election or quorum connection carries TLS (`sslQuorum`): nothing in it decodes.
    /// Reported once per connection: when its TLS is seen on a known endpoint, or when a TLS
    /// connection on an unknown port is identified later (a configuration named its port).
    Tls {
        /// When.
        ts: Timestamp,
        /// The connection.
        conn: &'a ServerConn,
    },
    /// A TLS connection on a port not known to be ZooKeeper's, to a host that runs a known
    /// ZooKeeper endpoint: an election or quorum connection of an `sslQuorum` ensemble
    /// whose configuration never travelled in clear, most likely. Reported once; if its port
    /// is learnt later, [`Note::Tls`] follows with the same connection id.
    TlsUnidentified {
        /// When.
        ts: Timestamp,
        /// Connection serial (shared with [`ServerConn::id`]).
        id: u64,
        /// The side that spoke first (or the higher port, mid-stream).
        client: SocketAddr,
        /// The listening side (or the lower port, mid-stream).
        server: SocketAddr,
    },
    /// A decoded election or quorum connection ended (after its last messages). A learner
    /// whose quorum connection ends has left its leader (restart, crash, new election).
    Closed {
        /// When.
        ts: Timestamp,
        /// The connection.
        conn: &'a ServerConn,
        /// Why it ended ([`CloseReason::End`]: the input ended, it did not close).
        reason: CloseReason,
    },
}

/// Receives election and quorum messages.
pub trait ServerSink {
    /// An election-port message.
    fn fle(&mut self, m: &FleMsg<'_>);
    /// A quorum-port message.
    fn zab(&mut self, m: &ZabMsg<'_>);
    /// A discovery or a TLS connection.
    fn note(&mut self, _n: &Note<'_>) {}
}

/// Counters of the election and quorum decoders and of protocol recognition.
#[derive(Debug, Default, Clone, Serialize)]
pub struct EnsembleStats {
    /// Election connections.
    pub fle_connections: u64,
    /// Initial messages.
    pub fle_initials: u64,
    /// Notifications.
    pub fle_notifications: u64,
    /// Quorum SASL packets on election connections.
    pub fle_auth_packets: u64,
    /// Frames (or initial messages) that did not decode.
    pub fle_undecodable: u64,
    /// Frames that lost bytes in a gap.
    pub fle_cut_frames: u64,
    /// Impossible length prefixes.
    pub fle_bad_lengths: u64,
    /// Bytes skipped to find the next frame.
    pub fle_skipped_bytes: u64,
    /// Incomplete messages dropped at a gap or at the end.
    pub fle_partial_dropped: u64,
    /// Quorum connections.
    pub zab_connections: u64,
    /// Quorum packets (pings included).
    pub zab_packets: u64,
    /// Of which pings.
    pub zab_pings: u64,
    /// Quorum SASL packets on quorum connections.
    pub zab_auth_packets: u64,
    /// Snapshots skipped over after SNAP.
    pub zab_snapshots: u64,
    /// Their bytes.
    pub zab_snapshot_bytes: u64,
    /// Snapshots that could not be followed to their end.
    pub zab_snapshots_lost: u64,
    /// Bytes that were no packet (each run reported once).
    pub zab_undecodable: u64,
    /// Packets that lost bytes in a gap.
    pub zab_cut_packets: u64,
    /// Bytes skipped to find the next packet.
    pub zab_skipped_bytes: u64,
    /// Incomplete packets dropped at a gap or at the end.
    pub zab_partial_dropped: u64,
    /// Bytes of those.
    pub zab_partial_dropped_bytes: u64,
    /// Election/quorum connections found to carry TLS.
    pub tls_connections: u64,
    /// Connections on unknown ports recognised from their bytes.
    pub recognised: u64,
    /// Connections on unknown ports that were not ZooKeeper (or never said enough).
    pub unrecognised_connections: u64,
    /// Their bytes.
    pub unrecognised_bytes: u64,
    /// Of those, TLS connections on ports never identified.
    pub unrecognised_tls: u64,
    /// Connections on unknown ports that carried no data (refused, idle).
    pub empty_connections: u64,
    /// Bytes of connections left out by the selection (client port filter).
    pub filtered_bytes: u64,
    /// Endpoints claimed by two protocols (the first claim is kept).
    pub endpoint_conflicts: u64,
    /// TCP gaps in election/quorum/unrecognised connections.
    pub tcp_gaps: u64,
    /// Bytes lost in them.
    pub tcp_bytes_lost: u64,
}

/// Per-connection state of an [`EnsembleHandler`].
pub struct EnsembleConn {
    inner: Inner,
}

enum Inner {
    Client { c: Box<ClientConn>, flip: bool },
    Fle(Box<FleConn>),
    Zab(Box<ZabConn>),
    Pending(Box<Pending>),
    TlsPending(Box<TlsPending>),
    Tls,
    Unrecognised,
    Filtered,
}

/// How many deliveries of each direction of a connection caught mid-stream are looked at
/// for TLS records.
const MID_STREAM_TLS_PROBES: u8 = 4;

/// Looks for TLS at the start of an election/quorum connection: the initiator's ClientHello
/// when the start was captured, runs of TLS records in either direction when not.
#[derive(Debug, Clone, Copy)]
struct TlsProbe {
    synced: bool,
    /// Deliveries still to look at, per direction (to server, to client).
    left: [u8; 2],
}

impl TlsProbe {
    fn new(synced: bool) -> Self {
        TlsProbe {
            synced,
            left: if synced {
                [1, 0]
            } else {
                [MID_STREAM_TLS_PROBES; 2]
            },
        }
    }

    /// Whether `bytes`, the next of direction `d` (oriented), show TLS.
    fn is_tls(&mut self, d: Direction, bytes: &[u8]) -> bool {
        let i = usize::from(d == Direction::ToClient);
        if self.left[i] == 0 || bytes.is_empty() {
            return false;
        }
        self.left[i] -= 1;
        if self.synced {
            is_tls_client_hello(bytes)
        } else {
            recognise::tls_records(bytes)
        }
    }

    /// Bytes were lost: what follows is looked at as if caught mid-stream.
    fn gap(&mut self) {
        if self.synced {
            *self = TlsProbe::new(false);
        }
    }
}

/// A TLS connection whose port is not known (yet).
struct TlsPending {
    /// Topology generation last looked at.
    generation: u64,
    /// Its bytes so far.
    bytes: u64,
    /// Serial, once reported as [`Note::TlsUnidentified`].
    reported: Option<u64>,
}

struct FleConn {
    info: ServerConn,
    up: FleStream,
    down: FleStream,
    flip: bool,
    tls: TlsProbe,
}

struct ZabConn {
    info: ServerConn,
    up: ZabStream,
    down: ZabStream,
    flip: bool,
    tls: TlsProbe,
}

/// Bytes held per direction while a connection's protocol is unknown.
const PENDING_MAX: usize = 1024;

#[derive(Default)]
struct Half {
    buf: Vec<u8>,
    /// Bytes after `buf` that were not kept (replayed as a gap).
    extra: u64,
    ts: Timestamp,
    /// The direction's first bytes were lost.
    lost_start: bool,
}

impl Half {
    fn push(&mut self, ts: Timestamp, b: &[u8]) {
        self.ts = ts;
        if self.extra > 0 {
            self.extra += b.len() as u64;
            return;
        }
        let take = PENDING_MAX.saturating_sub(self.buf.len()).min(b.len());
        self.buf.extend_from_slice(&b[..take]);
        self.extra += (b.len() - take) as u64;
    }

    fn gap(&mut self, lost: u64) {
        if self.buf.is_empty() && self.extra == 0 {
            self.lost_start = true;
        }
        self.extra += lost;
    }

    fn bytes(&self) -> u64 {
        self.buf.len() as u64 + self.extra
    }
}

struct Pending {
    saw_syn: bool,
    up: Half,
    down: Half,
    generation: u64,
}

fn orient(dir: Direction, flip: bool) -> Direction {
    if flip {
        dir.reverse()
    } else {
        dir
    }
}

fn orient_key(key: &FlowKey, flip: bool) -> FlowKey {
    if flip {
        FlowKey {
            client: key.server,
            server: key.client,
        }
    } else {
        *key
    }
}

/// The multi-protocol [`StreamHandler`]; see the module docs.
pub struct EnsembleHandler<C, S> {
    /// Selection.
    pub spec: EnsembleSpec,
    /// The client-protocol decoder (its sink gets client messages).
    pub client: ClientHandler<C>,
    /// Where election and quorum messages go.
    pub sink: S,
    /// What was seen and what was lost.
    pub stats: EnsembleStats,
    topo: Topology,
    next_id: u64,
}

/// The handler's parts an event needs (borrowed apart from the connection).
struct Cx<'h, S> {
    sink: &'h mut S,
    stats: &'h mut EnsembleStats,
    topo: &'h mut Topology,
}

impl<S: ServerSink> Cx<'_, S> {
    /// Reports endpoints learnt since the last call.
    fn flush_discoveries(&mut self, ts: Timestamp) {
        if self.topo.fresh.is_empty() {
            return;
        }
        let mut fresh = std::mem::take(&mut self.topo.fresh);
        for d in &fresh {
            self.sink.note(&Note::Discovered { ts, discovery: d });
        }
        fresh.clear();
        self.topo.fresh = fresh;
    }
}

/// The TxnHeader type of a PROPOSAL/INFORM body (`at` = offset of the header).
fn txn_type(data: &[u8], at: usize) -> Option<OpCode> {
    let s = data.get(at + 28..at + 32)?;
    Some(OpCode(i32::from_be_bytes([s[0], s[1], s[2], s[3]])))
}

/// Fills in the server ids of a connection's ends that the traffic has named since: the
/// acceptor/leader from its endpoint in a configuration; the initiator/learner (known from its
/// initial message or FOLLOWERINFO unless caught mid-stream) from its host, when the
/// configuration puts only one server there (real ensembles: one server per host).
fn name_ends(topo: &Topology, info: &mut ServerConn) {
    if info.server_sid.is_none() {
        info.server_sid = topo.sid_of(&info.server, info.proto);
    }
    if info.client_sid.is_none() {
        info.client_sid = topo.sid_of_host(info.client.ip());
    }
}

fn on_fle<S: ServerSink>(
    cx: &mut Cx<'_, S>,
    info: &mut ServerConn,
    from_initiator: bool,
    ts: Timestamp,
    ev: FleEvent<'_>,
) {
    let (size, kind) = match ev {
        FleEvent::Initial(m) => {
            cx.stats.fle_initials += 1;
            if from_initiator {
                info.client_sid = Some(m.sid);
            }
            for a in m.addresses() {
                if let Some(a) = a.to_str() {
                    cx.topo.learn_initial(a, m.sid);
                }
            }
            let size = match m.format.protocol_version() {
                None => 8,
                Some(_) => 20 + m.address_text.0.len(),
            };
            (size, FleKind::Initial(m))
        }
        FleEvent::BadInitial { error, head } => {
            cx.stats.fle_undecodable += 1;
            (
                head.len(),
                FleKind::Undecodable {
                    error: Some(error),
                    cut: false,
                    frame: head,
                },
            )
        }
        FleEvent::Auth(p) => {
            cx.stats.fle_auth_packets += 1;
            (16 + p.token.0.map_or(0, <[u8]>::len), FleKind::Auth(p))
        }
        FleEvent::Frame(body) => match decode_notification(body) {
            Ok(n) => {
                cx.stats.fle_notifications += 1;
                if let Some(c) = n.config {
                    cx.topo.learn_config(c.0, Source::FleConfig);
                }
                (body.len(), FleKind::Notification(n))
            }
            Err(error) => {
                cx.stats.fle_undecodable += 1;
                (
                    body.len(),
                    FleKind::Undecodable {
                        error: Some(error),
                        cut: false,
                        frame: body,
                    },
                )
            }
        },
        FleEvent::Holed { head, len } => {
            cx.stats.fle_cut_frames += 1;
            (
                len,
                FleKind::Undecodable {
                    error: None,
                    cut: true,
                    frame: head,
                },
            )
        }
        FleEvent::BadLength => {
            cx.stats.fle_bad_lengths += 1;
            return;
        }
        FleEvent::Skipped(n) => {
            cx.stats.fle_skipped_bytes += n;
            return;
        }
        FleEvent::PartialDropped => {
            cx.stats.fle_partial_dropped += 1;
            return;
        }
    };
    name_ends(cx.topo, info);
    cx.flush_discoveries(ts);
    cx.sink.fle(&FleMsg {
        ts,
        conn: info,
        from_initiator,
        size,
        kind,
    });
}

fn on_zab<S: ServerSink>(
    cx: &mut Cx<'_, S>,
    info: &mut ServerConn,
    from_leader: bool,
    ts: Timestamp,
    ev: ZabEvent<'_>,
) {
    let (size, kind) = match ev {
        ZabEvent::Packet { packet, size } => {
            cx.stats.zab_packets += 1;
            let ty = packet.packet_type;
            if ty == PacketType::PING {
                cx.stats.zab_pings += 1;
            }
            let data = packet.data.0;
            match ty {
                PacketType::FOLLOWERINFO | PacketType::OBSERVERINFO if !from_leader => {
                    if let Ok(QuorumBody::LearnerInfo(Some(li))) = packet.body(Some(false)) {
                        info.client_sid = Some(li.sid);
                        info.observer = ty == PacketType::OBSERVERINFO;
                    }
                }
                PacketType::NEWLEADER => {
                    if let Some(d) = data {
                        cx.topo.learn_config(d, Source::NewLeader);
                    }
                }
                PacketType::PROPOSAL | PacketType::INFORM | PacketType::INFORMANDACTIVATE => {
                    let at = if ty == PacketType::INFORMANDACTIVATE {
                        8
                    } else {
                        0
                    };
                    let reconfig = data.and_then(|d| txn_type(d, at)) == Some(OpCode::RECONFIG);
                    if reconfig {
                        learn_reconfig(cx.topo, &packet, from_leader);
                    }
                }
                _ => {}
            }
            (size, ZabKind::Packet(packet))
        }
        ZabEvent::Auth(p) => {
            cx.stats.zab_auth_packets += 1;
            (16 + p.token.0.map_or(0, <[u8]>::len), ZabKind::Auth(p))
        }
        ZabEvent::SnapshotDone {
            bytes,
            sessions,
            nodes,
        } => {
            cx.stats.zab_snapshots += 1;
            cx.stats.zab_snapshot_bytes += bytes;
            (
                bytes as usize,
                ZabKind::Snapshot {
                    bytes,
                    sessions,
                    nodes,
                    complete: true,
                },
            )
        }
        ZabEvent::SnapshotLost { bytes } => {
            cx.stats.zab_snapshots_lost += 1;
            cx.stats.zab_snapshot_bytes += bytes;
            (
                bytes as usize,
                ZabKind::Snapshot {
                    bytes,
                    sessions: 0,
                    nodes: 0,
                    complete: false,
                },
            )
        }
        ZabEvent::Invalid { error, head } => {
            cx.stats.zab_undecodable += 1;
            (head.len(), ZabKind::Undecodable { error, head })
        }
        ZabEvent::Cut {
            packet_type,
            zxid,
            len,
        } => {
            cx.stats.zab_cut_packets += 1;
            (
                len,
                ZabKind::Cut {
                    packet_type,
                    zxid,
                    len,
                },
            )
        }
        ZabEvent::Skipped(n) => {
            cx.stats.zab_skipped_bytes += n;
            return;
        }
        ZabEvent::PartialDropped { bytes } => {
            cx.stats.zab_partial_dropped += 1;
            cx.stats.zab_partial_dropped_bytes += bytes as u64;
            return;
        }
    };
    name_ends(cx.topo, info);
    cx.flush_discoveries(ts);
    cx.sink.zab(&ZabMsg {
        ts,
        conn: info,
        from_leader,
        size,
        kind,
    });
}

/// Learns the new configuration of a reconfig transaction.
fn learn_reconfig(topo: &mut Topology, packet: &QuorumPacket<'_>, from_leader: bool) {
    let txn = match packet.body(Some(from_leader)) {
        Ok(QuorumBody::Txn(t)) => t,
        Ok(QuorumBody::InformAndActivate { txn, .. }) => txn,
        _ => return,
    };
    if let zkscope_proto::quorum::TxnRecord::SetData { data, .. } = txn.record {
        if let Some(d) = data.0 {
            topo.learn_config(d, Source::Reconfig);
        }
    }
}

impl<C: ClientSink, S: ServerSink> EnsembleHandler<C, S> {
    /// A handler for `spec`; client connections go to `client`, the others to `sink`.
    pub fn new(spec: EnsembleSpec, client: ClientHandler<C>, sink: S) -> Self {
        let mut topo = Topology::new();
        let protos: &[Proto] = match spec.mode {
            Mode::Fle => &[Proto::Fle],
            Mode::Zab => &[Proto::Zab],
            Mode::Auto => &[Proto::Client, Proto::Fle, Proto::Zab],
        };
        for &p in protos {
            let (ports, servers) = match p {
                Proto::Client => (&spec.client_ports, &spec.client_servers),
                Proto::Fle => (&spec.fle_ports, &spec.fle_servers),
                Proto::Zab => (&spec.zab_ports, &spec.zab_servers),
            };
            for &port in ports {
                topo.add_port(port, p, Source::Option);
            }
            for &s in servers {
                topo.add_option(s, p);
            }
        }
        for &p in protos {
            let given = match p {
                Proto::Client => !spec.client_ports.is_empty() || !spec.client_servers.is_empty(),
                Proto::Fle => !spec.fle_ports.is_empty() || !spec.fle_servers.is_empty(),
                Proto::Zab => !spec.zab_ports.is_empty() || !spec.zab_servers.is_empty(),
            };
            // Auto mode always knows the conventional ports; a single-protocol mode uses its
            // default only when no endpoint was given.
            if spec.mode == Mode::Auto || !given {
                topo.add_port(p.default_port(), p, Source::Default);
            }
        }
        EnsembleHandler {
            spec,
            client,
            sink,
            stats: EnsembleStats::default(),
            topo,
            next_id: 0,
        }
    }

    /// Resolves host names found in configurations (the default knows only address
    /// literals and `localhost`).
    pub fn set_resolver(&mut self, r: Resolver) {
        self.topo.set_resolver(r);
    }

    /// Endpoints learnt from the traffic so far, in order.
    pub fn discovered(&self) -> &[Discovery] {
        &self.topo.learnt
    }

    /// The protocol at `addr`, if known and decoded in this mode.
    fn known(&self, addr: &SocketAddr) -> Option<Proto> {
        let p = self.topo.lookup(addr)?.proto;
        match self.spec.mode.only() {
            Some(only) if only != p => None,
            _ => Some(p),
        }
    }

    fn cx(&mut self) -> Cx<'_, S> {
        Cx {
            sink: &mut self.sink,
            stats: &mut self.stats,
            topo: &mut self.topo,
        }
    }

    /// A new election/quorum connection as messages report it: `k` oriented (client =
    /// initiator/learner), the server's id when a known configuration names its endpoint.
    fn server_conn(&self, id: u64, proto: Proto, k: &FlowKey) -> ServerConn {
        ServerConn {
            id,
            proto,
            client: k.client,
            server: k.server,
            client_sid: None,
            server_sid: self.topo.sid_of(&k.server, proto),
            observer: false,
        }
    }

    /// A connection of a known protocol. `key` as the tracker oriented it; `flip` when its
    /// server side is really `key.client`.
    fn make(
        &mut self,
        proto: Proto,
        key: &FlowKey,
        ts: Timestamp,
        synced: bool,
        flip: bool,
    ) -> Inner {
        let k = orient_key(key, flip);
        if proto == Proto::Client {
            if self.spec.client_port.is_some_and(|p| p != k.client.port()) {
                return Inner::Filtered;
            }
            let c = self.client.open(&k, ts, synced);
            return Inner::Client {
                c: Box::new(c),
                flip,
            };
        }
        self.next_id += 1;
        let info = self.server_conn(self.next_id, proto, &k);
        if proto == Proto::Fle {
            self.stats.fle_connections += 1;
            Inner::Fle(Box::new(FleConn {
                info,
                up: FleStream::new(true, synced),
                down: FleStream::new(false, synced),
                flip,
                tls: TlsProbe::new(synced),
            }))
        } else {
            self.stats.zab_connections += 1;
            Inner::Zab(Box::new(ZabConn {
                info,
                up: ZabStream::new(synced),
                down: ZabStream::new(synced),
                flip,
                tls: TlsProbe::new(synced),
            }))
        }
    }

    /// Whether a pending connection's protocol is now known.
    fn judge(&self, p: &mut Pending, key: &FlowKey) -> Verdict {
        if p.generation != self.topo.generation {
            p.generation = self.topo.generation;
            if let Some(proto) = self.known(&key.server) {
                return Verdict::Is { proto, flip: false };
            }
            if let Some(proto) = self.known(&key.client) {
                return Verdict::Is { proto, flip: true };
            }
        }
        if p.saw_syn && !p.up.lost_start {
            if p.up.buf.is_empty() {
                return recognise::server_first(&p.down.buf);
            }
            return match recognise::at_start(&p.up.buf) {
                Verdict::Wait if p.up.buf.len() >= recognise::LOOK || p.up.extra > 0 => Verdict::No,
                v => v,
            };
        }
        recognise::mid_stream(&p.up.buf, &p.down.buf)
    }

    /// Acts on a verdict about a pending connection.
    fn settle(&mut self, conn: &mut EnsembleConn, key: &FlowKey, ts: Timestamp, v: Verdict) {
        let (proto, flip) = match v {
            Verdict::Wait => return,
            Verdict::Is { proto, flip } => (proto, flip),
            Verdict::No => {
                if let Inner::Pending(p) = &conn.inner {
                    self.stats.unrecognised_connections += 1;
                    self.stats.unrecognised_bytes += p.up.bytes() + p.down.bytes();
                }
                conn.inner = Inner::Unrecognised;
                return;
            }
            Verdict::Tls => {
                let bytes = match &conn.inner {
                    Inner::Pending(p) => p.up.bytes() + p.down.bytes(),
                    _ => 0,
                };
                conn.inner = Inner::TlsPending(Box::new(TlsPending {
                    generation: self.topo.generation,
                    bytes,
                    reported: None,
                }));
                self.check_tls(conn, key, ts);
                return;
            }
        };
        let Inner::Pending(p) = std::mem::replace(&mut conn.inner, Inner::Unrecognised) else {
            return;
        };
        self.stats.recognised += 1;
        let synced = p.saw_syn && !p.up.lost_start && !p.down.lost_start;
        if synced || proto == Proto::Zab {
            // The listening side is now known (a mid-stream election connection's is not).
            let server = if flip { key.client } else { key.server };
            if self.known(&server).is_none() {
                self.topo.learn(server, proto, None, Source::Bytes);
                self.cx().flush_discoveries(ts);
            }
        }
        conn.inner = self.make(proto, key, ts, synced, flip);
        for (dir, half) in [(Direction::ToServer, &p.up), (Direction::ToClient, &p.down)] {
            if !half.buf.is_empty() {
                self.deliver(conn, key, dir, half.ts, &half.buf);
            }
            if half.extra > 0 {
                self.lose(conn, key, dir, half.ts, half.extra);
            }
        }
    }

    fn deliver(
        &mut self,
        conn: &mut EnsembleConn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
    ) {
        let verdict = match &mut conn.inner {
            Inner::Client { c, flip } => {
                let k = orient_key(key, *flip);
                self.client.data(c, &k, orient(dir, *flip), ts, bytes);
                return;
            }
            Inner::Fle(f) => {
                let d = orient(dir, f.flip);
                if f.tls.is_tls(d, bytes) {
                    self.tls(conn, ts);
                    return;
                }
                let mut cx = Cx {
                    sink: &mut self.sink,
                    stats: &mut self.stats,
                    topo: &mut self.topo,
                };
                let FleConn { info, up, down, .. } = &mut **f;
                let (stream, from_initiator) = match d {
                    Direction::ToServer => (up, true),
                    Direction::ToClient => (down, false),
                };
                stream.push(bytes, &mut |ev| {
                    on_fle(&mut cx, info, from_initiator, ts, ev)
                });
                return;
            }
            Inner::Zab(z) => {
                let d = orient(dir, z.flip);
                if z.tls.is_tls(d, bytes) {
                    self.tls(conn, ts);
                    return;
                }
                let mut cx = Cx {
                    sink: &mut self.sink,
                    stats: &mut self.stats,
                    topo: &mut self.topo,
                };
                let ZabConn { info, up, down, .. } = &mut **z;
                let (stream, from_leader) = match d {
                    Direction::ToServer => (up, false),
                    Direction::ToClient => (down, true),
                };
                stream.push(bytes, &mut |ev| on_zab(&mut cx, info, from_leader, ts, ev));
                return;
            }
            Inner::Pending(p) => {
                match dir {
                    Direction::ToServer => p.up.push(ts, bytes),
                    Direction::ToClient => p.down.push(ts, bytes),
                }
                self.judge(p, key)
            }
            Inner::TlsPending(t) => {
                t.bytes += bytes.len() as u64;
                if t.generation != self.topo.generation {
                    t.generation = self.topo.generation;
                    self.check_tls(conn, key, ts);
                }
                return;
            }
            Inner::Tls => return,
            Inner::Unrecognised => {
                self.stats.unrecognised_bytes += bytes.len() as u64;
                return;
            }
            Inner::Filtered => {
                self.stats.filtered_bytes += bytes.len() as u64;
                return;
            }
        };
        self.settle(conn, key, ts, verdict);
    }

    /// A TLS connection on an unknown port: identified if its endpoint is known now, else
    /// reported once as unidentified when its server runs a known ZooKeeper endpoint.
    fn check_tls(&mut self, conn: &mut EnsembleConn, key: &FlowKey, ts: Timestamp) {
        let Inner::TlsPending(t) = &mut conn.inner else {
            return;
        };
        let found = match (self.known(&key.server), self.known(&key.client)) {
            (Some(p), _) => Some((p, false)),
            (None, Some(p)) => Some((p, true)),
            (None, None) => None,
        };
        let Some((proto, flip)) = found else {
            if t.reported.is_none() && self.topo.is_zk_host(key.server.ip()) {
                self.next_id += 1;
                t.reported = Some(self.next_id);
                self.sink.note(&Note::TlsUnidentified {
                    ts,
                    id: self.next_id,
                    client: key.client,
                    server: key.server,
                });
            }
            return;
        };
        let id = match t.reported {
            Some(id) => id,
            None => {
                self.next_id += 1;
                self.next_id
            }
        };
        let info = self.server_conn(id, proto, &orient_key(key, flip));
        match proto {
            Proto::Client => self.client.stats.tls_connections += 1,
            Proto::Fle => {
                self.stats.fle_connections += 1;
                self.stats.tls_connections += 1;
            }
            Proto::Zab => {
                self.stats.zab_connections += 1;
                self.stats.tls_connections += 1;
            }
        }
        conn.inner = Inner::Tls;
        self.sink.note(&Note::Tls { ts, conn: &info });
    }

    /// An election/quorum connection turned out to carry TLS.
    fn tls(&mut self, conn: &mut EnsembleConn, ts: Timestamp) {
        let info = match std::mem::replace(&mut conn.inner, Inner::Tls) {
            Inner::Fle(f) => f.info,
            Inner::Zab(z) => z.info,
            _ => return,
        };
        self.stats.tls_connections += 1;
        self.sink.note(&Note::Tls { ts, conn: &info });
    }

    fn lose(
        &mut self,
        conn: &mut EnsembleConn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        lost: u64,
    ) {
        match &mut conn.inner {
            Inner::Client { c, flip } => {
                let k = orient_key(key, *flip);
                self.client.gap(c, &k, orient(dir, *flip), ts, lost);
            }
            Inner::Fle(f) => {
                f.tls.gap();
                let d = orient(dir, f.flip);
                let mut cx = Cx {
                    sink: &mut self.sink,
                    stats: &mut self.stats,
                    topo: &mut self.topo,
                };
                let FleConn { info, up, down, .. } = &mut **f;
                let (stream, from_initiator) = match d {
                    Direction::ToServer => (up, true),
                    Direction::ToClient => (down, false),
                };
                stream.gap(lost, &mut |ev| {
                    on_fle(&mut cx, info, from_initiator, ts, ev)
                });
            }
            Inner::Zab(z) => {
                z.tls.gap();
                let d = orient(dir, z.flip);
                let mut cx = Cx {
                    sink: &mut self.sink,
                    stats: &mut self.stats,
                    topo: &mut self.topo,
                };
                let ZabConn { info, up, down, .. } = &mut **z;
                let (stream, from_leader) = match d {
                    Direction::ToServer => (up, false),
                    Direction::ToClient => (down, true),
                };
                stream.gap(lost, &mut |ev| on_zab(&mut cx, info, from_leader, ts, ev));
            }
            Inner::Pending(p) => match dir {
                Direction::ToServer => p.up.gap(lost),
                Direction::ToClient => p.down.gap(lost),
            },
            Inner::TlsPending(_) | Inner::Tls | Inner::Unrecognised | Inner::Filtered => {}
        }
    }
}

impl<C: ClientSink, S: ServerSink> StreamHandler for EnsembleHandler<C, S> {
    type Conn = EnsembleConn;

    fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
        let hosts = [seg.src.ip(), seg.dst.ip()];
        let spec = &self.spec;
        if !spec.include_hosts.is_empty() && !hosts.iter().any(|h| spec.include_hosts.contains(h)) {
            return None;
        }
        if hosts.iter().any(|h| spec.exclude_hosts.contains(h)) {
            return None;
        }
        let (src, dst) = (self.known(&seg.src), self.known(&seg.dst));
        let syn_ack = seg.flags.syn && seg.flags.ack;
        let syn_only = seg.flags.syn && !seg.flags.ack;
        match (src.is_some(), dst.is_some()) {
            (false, true) => Some(Direction::ToServer),
            (true, false) => Some(Direction::ToClient),
            (true, true) if syn_ack => Some(Direction::ToClient),
            (true, true) => Some(Direction::ToServer),
            (false, false) if self.spec.mode != Mode::Auto => None,
            (false, false) if syn_only => Some(Direction::ToServer),
            (false, false) if syn_ack => Some(Direction::ToClient),
            // Mid-stream: guess the lower port listens; recognition may flip it.
            (false, false) if seg.src.port() < seg.dst.port() => Some(Direction::ToClient),
            (false, false) => Some(Direction::ToServer),
        }
    }

    fn open(&mut self, key: &FlowKey, ts: Timestamp, saw_syn: bool) -> EnsembleConn {
        let inner = match (self.known(&key.server), self.known(&key.client)) {
            (Some(p), _) => self.make(p, key, ts, saw_syn, false),
            (None, Some(p)) => self.make(p, key, ts, saw_syn, true),
            (None, None) => Inner::Pending(Box::new(Pending {
                saw_syn,
                up: Half::default(),
                down: Half::default(),
                generation: self.topo.generation,
            })),
        };
        EnsembleConn { inner }
    }

    fn data(
        &mut self,
        conn: &mut EnsembleConn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
    ) {
        self.deliver(conn, key, dir, ts, bytes);
    }

    fn gap(
        &mut self,
        conn: &mut EnsembleConn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        lost: u64,
    ) {
        if !matches!(conn.inner, Inner::Client { .. }) {
            self.stats.tcp_gaps += 1;
            self.stats.tcp_bytes_lost += lost;
        }
        self.lose(conn, key, dir, ts, lost);
    }

    fn close(&mut self, conn: EnsembleConn, key: &FlowKey, ts: Timestamp, reason: CloseReason) {
        match conn.inner {
            Inner::Client { c, flip } => {
                self.client.close(*c, &orient_key(key, flip), ts, reason);
            }
            Inner::Fle(mut f) => {
                let mut cx = self.cx();
                let FleConn { info, up, down, .. } = &mut *f;
                up.finish(&mut |ev| on_fle(&mut cx, info, true, ts, ev));
                down.finish(&mut |ev| on_fle(&mut cx, info, false, ts, ev));
                self.sink.note(&Note::Closed {
                    ts,
                    conn: info,
                    reason,
                });
            }
            Inner::Zab(mut z) => {
                let mut cx = self.cx();
                let ZabConn { info, up, down, .. } = &mut *z;
                up.finish(&mut |ev| on_zab(&mut cx, info, false, ts, ev));
                down.finish(&mut |ev| on_zab(&mut cx, info, true, ts, ev));
                self.sink.note(&Note::Closed {
                    ts,
                    conn: info,
                    reason,
                });
            }
            Inner::Pending(p)
                if matches!(reason, CloseReason::Fin | CloseReason::Rst)
                    && p.saw_syn
                    && !p.up.lost_start
                    && p.up.extra == 0
                    && recognise::four_letter_exchange(&p.up.buf, &p.down.buf) =>
            {
                // A four-letter word, answered with text, then the connection closed: the
                // evidence ZooKeeper's own protocol gives.
                let mut conn = EnsembleConn {
                    inner: Inner::Pending(p),
                };
                let client = Verdict::Is {
                    proto: Proto::Client,
                    flip: false,
                };
                self.settle(&mut conn, key, ts, client);
                if matches!(conn.inner, Inner::Client { .. } | Inner::Filtered) {
                    self.close(conn, key, ts, reason);
                }
            }
            Inner::Pending(p) => {
                let bytes = p.up.bytes() + p.down.bytes();
                if bytes > 0 {
                    self.stats.unrecognised_connections += 1;
                    self.stats.unrecognised_bytes += bytes;
                } else {
                    self.stats.empty_connections += 1;
                }
            }
            Inner::TlsPending(t) => {
                // A last look: its endpoint may have been learnt since its last bytes.
                let mut conn = EnsembleConn {
                    inner: Inner::TlsPending(t),
                };
                self.check_tls(&mut conn, key, ts);
                if let Inner::TlsPending(t) = conn.inner {
                    self.stats.unrecognised_connections += 1;
                    self.stats.unrecognised_bytes += t.bytes;
                    self.stats.unrecognised_tls += 1;
                }
            }
            Inner::Tls | Inner::Unrecognised | Inner::Filtered => {}
        }
    }
}

#[cfg(test)]
mod tests;
