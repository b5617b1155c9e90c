//! The handler over zktraffic's captures (the per-stream decoders have their own tests).

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::client::{ClientConfig, Msg, ServerSpec};
use crate::packet::parse_tcp;
use crate::source::PacketSource;
use crate::tcp::{TcpConfig, TcpTracker};

#[derive(Default)]
struct Rec {
    fle: Vec<(String, Option<i64>, Option<i64>)>,
    zab: Vec<(String, bool)>,
    /// Sender and receiver server ids of each quorum message.
    zab_sids: Vec<(Option<i64>, Option<i64>)>,
    discovered: Vec<(SocketAddr, Proto, Option<i64>)>,
    client: Vec<String>,
    /// TLS notes: connection id, protocol (None: unidentified), server port.
    tls: Vec<(u64, Option<Proto>, u16)>,
    closed: Vec<(Proto, CloseReason)>,
}

impl ServerSink for Rec {
    fn fle(&mut self, m: &FleMsg<'_>) {
        let name = match &m.kind {
            FleKind::Initial(_) => "Initial",
            FleKind::Auth(_) => "Auth",
            FleKind::Notification(_) => "Notification",
            FleKind::Undecodable { .. } => "Undecodable",
        };
        self.fle
            .push((name.into(), m.sender_sid(), m.receiver_sid()));
    }
    fn zab(&mut self, m: &ZabMsg<'_>) {
        let name = match &m.kind {
            ZabKind::Packet(p) => p.packet_type.display_name().unwrap_or("Unknown"),
            ZabKind::Snapshot { .. } => "Snapshot",
            ZabKind::Auth(_) => "Auth",
            ZabKind::Cut { .. } => "Cut",
            ZabKind::Undecodable { .. } => "Undecodable",
        };
        self.zab.push((name.into(), m.from_leader));
        self.zab_sids.push((m.sender_sid(), m.receiver_sid()));
    }
    fn note(&mut self, n: &Note<'_>) {
        match n {
            Note::Discovered { discovery, .. } => self.discovered.push((
                discovery.addr,
                discovery.endpoint.proto,
                discovery.endpoint.sid,
            )),
            Note::Tls { conn, .. } => {
                self.tls
                    .push((conn.id, Some(conn.proto), conn.server.port()))
            }
            Note::TlsUnidentified { id, server, .. } => self.tls.push((*id, None, server.port())),
            Note::Closed { conn, reason, .. } => self.closed.push((conn.proto, *reason)),
        }
    }
}

#[derive(Default)]
struct Clients(Vec<String>);

impl ClientSink for Clients {
    fn message(&mut self, m: &Msg<'_>) {
        self.0
            .push(format!("{:?}", std::mem::discriminant(&m.kind)));
    }
}

fn run(name: &str, spec: EnsembleSpec) -> (Rec, EnsembleStats, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name);
    let mut src = PacketSource::open_file(&path).expect("open fixture");
    let client = ClientHandler::new(
        ServerSpec::default(),
        ClientConfig::default(),
        Clients::default(),
    );
    let mut h = EnsembleHandler::new(spec, client, Rec::default());
    let mut tracker = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp(0);
    while let Some(pkt) = src.next_packet().expect("read") {
        last = pkt.ts;
        if let Ok(seg) = parse_tcp(&pkt) {
            tracker.segment(&mut h, pkt.ts, &seg);
        }
    }
    tracker.finish(&mut h, last);
    let clients = h.client.sink.0.len();
    let mut rec = h.sink;
    rec.client = h.client.sink.0;
    (rec, h.stats, clients)
}

fn counts<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n).or_insert(0) += 1;
    }
    m
}

#[test]
fn omni_auto_without_ports() {
    let (rec, stats, clients) = run("omni.pcap", EnsembleSpec::new(Mode::Auto));
    let zab = counts(rec.zab.iter().map(|z| z.0.as_str()));
    let want: BTreeMap<&str, usize> = [
        ("FollowerInfo", 2),
        ("LeaderInfo", 2),
        ("AckEpoch", 2),
        ("Diff", 1),
        ("Ack", 8),
        ("UpToDate", 2),
        ("Snap", 1),
        ("Snapshot", 1),
        ("NewLeader", 2),
        ("Ping", 120),
        ("Request", 3),
        ("Proposal", 4),
        ("Commit", 4),
        ("Sync", 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(zab, want);
    let fle = counts(rec.fle.iter().map(|f| f.0.as_str()));
    assert_eq!(
        fle,
        [("Initial", 3), ("Notification", 9)].into_iter().collect()
    );
    // Every notification's sender is known (initial messages and the config name them).
    assert!(rec.fle.iter().all(|f| f.1.is_some()), "{:?}", rec.fle);
    assert!(clients >= 8, "{:?}", rec.client);
    // Every election/quorum connection's end is noted once: two election connections were
    // reset in the capture, the others were still open when it ended.
    let ends = counts(rec.closed.iter().map(|(p, r)| match (p, r) {
        (Proto::Fle, CloseReason::Rst) => "fle rst",
        (Proto::Fle, CloseReason::End) => "fle end",
        (Proto::Zab, CloseReason::End) => "zab end",
        _ => "other",
    }));
    assert_eq!(
        ends,
        [("fle rst", 2), ("fle end", 3), ("zab end", 2)]
            .into_iter()
            .collect()
    );
    assert_eq!(
        rec.closed.len() as u64,
        stats.fle_connections + stats.zab_connections
    );
    assert_eq!(stats.fle_undecodable + stats.zab_undecodable, 0);
    assert_eq!(stats.zab_skipped_bytes + stats.fle_skipped_bytes, 0);
    // The config names all nine endpoints (localhost = 127.0.0.1 and ::1).
    let v4: Vec<_> = rec
        .discovered
        .iter()
        .filter(|d| d.0.is_ipv4())
        .map(|d| (d.0.port(), d.1))
        .collect();
    for (port, proto) in [
        (2780, Proto::Zab),
        (2781, Proto::Zab),
        (2782, Proto::Zab),
        (2783, Proto::Fle),
        (2784, Proto::Fle),
        (2785, Proto::Fle),
        (2182, Proto::Client),
        (2183, Proto::Client),
    ] {
        assert!(v4.contains(&(port, proto)), "{port} {proto:?}: {v4:?}");
    }
}

#[test]
fn zab_fixtures_on_their_port() {
    let spec = || {
        let mut s = EnsembleSpec::new(Mode::Zab);
        s.zab_ports = vec![20022];
        s
    };
    let (rec, stats, _) = run("zab_followerinfo.pcap", spec());
    let zab = counts(rec.zab.iter().map(|z| z.0.as_str()));
    assert_eq!(zab.get("NewLeader"), Some(&2));
    assert_eq!(zab.get("FollowerInfo"), Some(&2));
    assert_eq!(zab.get("Ping"), Some(&10));
    assert_eq!(stats.zab_undecodable, 0);
    let (rec, _, _) = run("zab_request.pcap", spec());
    let zab = counts(rec.zab.iter().map(|z| z.0.as_str()));
    assert_eq!(
        zab,
        [
            ("Ping", 57),
            ("Request", 3),
            ("Proposal", 6),
            ("Ack", 6),
            ("Commit", 6)
        ]
        .into_iter()
        .collect()
    );
}

// ------------------------------------------------------- handler, driven by hand

type Handler = EnsembleHandler<Clients, Rec>;

fn key(client: u16, server: u16) -> FlowKey {
    FlowKey {
        client: SocketAddr::from(([127, 0, 0, 1], client)),
        server: SocketAddr::from(([127, 0, 0, 1], server)),
    }
}

fn handler(mode: Mode) -> Handler {
    let client = ClientHandler::new(
        ServerSpec::default(),
        ClientConfig::default(),
        Clients::default(),
    );
    EnsembleHandler::new(EnsembleSpec::new(mode), client, Rec::default())
}

/// A connection between two ports of 127.0.0.1, driven by hand through a handler.
struct Conn {
    key: FlowKey,
    state: EnsembleConn,
}

impl Conn {
    fn open(h: &mut Handler, client: u16, server: u16, ts: i64, saw_syn: bool) -> Conn {
        let key = key(client, server);
        let state = h.open(&key, Timestamp(ts), saw_syn);
        Conn { key, state }
    }

    fn data(&mut self, h: &mut Handler, dir: Direction, ts: i64, bytes: &[u8]) {
        h.data(&mut self.state, &self.key, dir, Timestamp(ts), bytes);
    }

    fn close(self, h: &mut Handler, ts: i64, reason: CloseReason) {
        h.close(self.state, &self.key, Timestamp(ts), reason);
    }
}

/// The start of a TLS ClientHello record.
const CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00";

fn zab_packet(ty: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend(zxid.to_be_bytes());
    match data {
        None => v.extend((-1i32).to_be_bytes()),
        Some(d) => {
            v.extend((d.len() as i32).to_be_bytes());
            v.extend(d);
        }
    }
    v.extend((-1i32).to_be_bytes());
    v
}

/// Server 2's initial election message (protocol version -65536, address 127.0.0.1:3889).
fn fle_initial() -> Vec<u8> {
    let mut init = (-65536i64).to_be_bytes().to_vec();
    init.extend(2i64.to_be_bytes());
    init.extend(14i32.to_be_bytes());
    init.extend(b"127.0.0.1:3889");
    init
}

/// A framed election notification (LOOKING, a vote for server 1, version 2) carrying the
/// configuration `cfg`.
fn fle_notification(cfg: &[u8]) -> Vec<u8> {
    let mut body = 0i32.to_be_bytes().to_vec();
    body.extend(1i64.to_be_bytes());
    body.extend(0i64.to_be_bytes());
    body.extend(1i64.to_be_bytes());
    body.extend(0i64.to_be_bytes());
    body.extend(2i32.to_be_bytes());
    body.extend((cfg.len() as i32).to_be_bytes());
    body.extend(cfg);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(&body);
    frame
}

#[test]
fn tls_on_an_election_port_is_reported() {
    let mut h = handler(Mode::Auto);
    let mut c = Conn::open(&mut h, 50000, 3888, 1, true);
    c.data(&mut h, Direction::ToServer, 2, CLIENT_HELLO);
    c.data(&mut h, Direction::ToClient, 3, b"\x16\x03\x03\x00\x10");
    c.close(&mut h, 4, CloseReason::Fin);
    assert_eq!(h.stats.tls_connections, 1);
    assert!(h.sink.fle.is_empty());
    // On an unknown port TLS is just not ZooKeeper.
    let mut c = Conn::open(&mut h, 50001, 443, 1, true);
    c.data(&mut h, Direction::ToServer, 2, CLIENT_HELLO);
    c.close(&mut h, 4, CloseReason::Fin);
    assert_eq!(
        (h.stats.unrecognised_connections, h.stats.unrecognised_tls),
        (1, 1)
    );
}

#[test]
fn mid_stream_quorum_connection_on_unknown_ports() {
    let mut h = handler(Mode::Auto);
    // The tracker guessed the lower port (the learner's here) is the server.
    let mut c = Conn::open(&mut h, 41000, 35000, 1, false);
    // The leader (key.client) pings; the learner answers with its sessions.
    let ping = zab_packet(5, 0x1_0000_0004, None);
    c.data(&mut h, Direction::ToServer, 2, &ping);
    let mut sessions = 0x1234i64.to_be_bytes().to_vec();
    sessions.extend(30000i32.to_be_bytes());
    let reply = zab_packet(5, 0x1_0000_0004, Some(&sessions));
    c.data(&mut h, Direction::ToClient, 3, &reply);
    let proposal = zab_packet(2, 0x1_0000_0005, None);
    c.data(&mut h, Direction::ToServer, 4, &proposal);
    c.close(&mut h, 5, CloseReason::Fin);
    assert_eq!(h.stats.recognised, 1);
    // Flipped: the pings and the proposal come from the leader.
    let got: Vec<_> = h.sink.zab.iter().map(|(t, l)| (t.as_str(), *l)).collect();
    assert_eq!(got, [("Ping", true), ("Ping", false), ("Proposal", true)]);
    // The leader's quorum endpoint is now known.
    assert!(h
        .discovered()
        .iter()
        .any(|d| d.addr.port() == 41000 && d.endpoint.proto == Proto::Zab));
}

#[test]
fn a_connection_waits_until_a_config_names_its_endpoint() {
    let mut h = handler(Mode::Auto);
    // Mid-stream bytes that prove nothing yet (a short frame on an unknown port).
    let mut c = Conn::open(&mut h, 52000, 7000, 1, false);
    c.data(&mut h, Direction::ToServer, 2, b"\x00\x00\x00\x01");
    assert_eq!(h.stats.recognised, 0);
    // An election connection elsewhere announces port 7000 as server 1's client port.
    let mut ec = Conn::open(&mut h, 52001, 3888, 3, true);
    let mut init = fle_initial();
    init.extend(fle_notification(
        b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:7000\nversion=0",
    ));
    ec.data(&mut h, Direction::ToServer, 4, &init);
    assert_eq!(h.sink.fle.len(), 2);
    // The pending connection's next bytes find its endpoint known: a client connection now.
    c.data(&mut h, Direction::ToServer, 5, b"\x00\x00\x00\x08");
    assert_eq!(h.stats.recognised, 1);
    assert_eq!(h.client.stats.connections, 1);
    c.close(&mut h, 6, CloseReason::Fin);
    ec.close(&mut h, 6, CloseReason::Fin);
}

/// Election and quorum connections caught mid-stream (no initial message, no FOLLOWERINFO)
/// name their initiator/learner from its host once a configuration puts one server there;
/// on a host running several servers (test ensembles) they stay unnamed.
#[test]
fn mid_stream_ends_are_named_by_their_host() {
    let cfg = b"server.1=10.0.0.1:2888:3888:participant;10.0.0.1:2181\n\
server.2=10.0.0.2:2888:3888:participant;10.0.0.2:2181\n\
server.3=10.0.0.3:2888:3888:participant;10.0.0.3:2181\nversion=100000000";
    let mut h = handler(Mode::Auto);
    let at = |host: u8, port: u16| SocketAddr::from(([10, 0, 0, host], port));
    // server 3's long-lived election connection to server 1, caught mid-stream
    let k = FlowKey {
        client: at(3, 40000),
        server: at(1, 3888),
    };
    let mut c = h.open(&k, Timestamp(1), false);
    let n = fle_notification(cfg);
    h.data(&mut c, &k, Direction::ToServer, Timestamp(2), &n);
    h.data(&mut c, &k, Direction::ToClient, Timestamp(3), &n);
    // server 2 follows leader 1 over a quorum connection caught mid-stream
    let q = FlowKey {
        client: at(2, 40001),
        server: at(1, 2888),
    };
    let mut qc = h.open(&q, Timestamp(4), false);
    let proposal = zab_packet(2, 0x1_0000_0005, None);
    h.data(&mut qc, &q, Direction::ToClient, Timestamp(5), &proposal);
    let ack = zab_packet(3, 0x1_0000_0005, None);
    h.data(&mut qc, &q, Direction::ToServer, Timestamp(6), &ack);
    assert_eq!(
        h.sink.fle,
        [
            ("Notification".to_string(), Some(3), Some(1)),
            ("Notification".to_string(), Some(1), Some(3)),
        ]
    );
    assert_eq!(h.sink.zab_sids, [(Some(1), Some(2)), (Some(2), Some(1))]);
    h.close(c, &k, Timestamp(7), CloseReason::Fin);
    h.close(qc, &q, Timestamp(7), CloseReason::Fin);

    // all on one host: nothing to tell the initiator by
    let mut h = handler(Mode::Auto);
    let mut c = Conn::open(&mut h, 40000, 3888, 1, false);
    let n = fle_notification(
        b"server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\nversion=0",
    );
    c.data(&mut h, Direction::ToServer, 2, &n);
    c.data(&mut h, Direction::ToServer, 3, &n);
    assert_eq!(
        h.sink.fle.last(),
        Some(&("Notification".to_string(), None, Some(1)))
    );
    c.close(&mut h, 4, CloseReason::Fin);
}

/// TLS application-data records of these body lengths, back to back.
fn tls_records(lens: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    for &n in lens {
        v.extend([0x17, 3, 3]);
        v.extend(n.to_be_bytes());
        v.extend((0..u32::from(n)).map(|i| (i * 37 % 251) as u8));
    }
    v
}

#[test]
fn tls_caught_mid_stream_on_a_known_port_is_reported_not_resynchronised() {
    let mut h = handler(Mode::Auto);
    let mut c = Conn::open(&mut h, 41000, 2888, 1, false);
    c.data(&mut h, Direction::ToClient, 2, &tls_records(&[45]));
    c.data(&mut h, Direction::ToServer, 3, &tls_records(&[45, 61]));
    c.data(&mut h, Direction::ToClient, 4, &tls_records(&[2000]));
    c.close(&mut h, 5, CloseReason::Fin);
    assert_eq!(h.sink.tls, [(1, Some(Proto::Zab), 2888)]);
    assert_eq!(h.stats.tls_connections, 1);
    assert!(h.sink.zab.is_empty(), "{:?}", h.sink.zab);
    assert_eq!(h.stats.zab_skipped_bytes + h.stats.zab_undecodable, 0);
    // A real quorum stream caught mid-stream is not taken for TLS.
    let mut c = Conn::open(&mut h, 41001, 2888, 1, false);
    let mut pings = zab_packet(5, 7, None);
    pings.extend(zab_packet(5, 8, None));
    c.data(&mut h, Direction::ToClient, 2, &pings);
    assert_eq!(h.sink.zab.len(), 2);
    assert_eq!(h.sink.tls.len(), 1);
}

#[test]
fn tls_on_an_unknown_port_is_identified_once_its_port_is_learnt() {
    let mut h = handler(Mode::Auto);
    // A TLS connection to port 7100, before anything is known about 127.0.0.1.
    let mut tc = Conn::open(&mut h, 52100, 7100, 1, true);
    tc.data(&mut h, Direction::ToServer, 2, CLIENT_HELLO);
    tc.data(&mut h, Direction::ToClient, 3, &tls_records(&[30]));
    assert!(
        h.sink.tls.is_empty(),
        "not a ZooKeeper host yet: {:?}",
        h.sink.tls
    );
    // A four-letter word shows a ZooKeeper client port on that host: the TLS connection is
    // now reported, its protocol still unknown.
    let mut wc = Conn::open(&mut h, 52101, 7000, 4, true);
    wc.data(&mut h, Direction::ToServer, 4, b"srvr");
    wc.data(
        &mut h,
        Direction::ToClient,
        4,
        b"Zookeeper version: 3.8.0\nMode: standalone\n",
    );
    wc.close(&mut h, 5, CloseReason::Fin);
    tc.data(&mut h, Direction::ToServer, 6, &tls_records(&[30]));
    assert_eq!(h.sink.tls, [(1, None, 7100)]);
    // An election notification's configuration names 7100 as server 1's quorum port.
    let mut ec = Conn::open(&mut h, 52001, 3888, 7, true);
    let mut init = fle_initial();
    init.extend(fle_notification(
        b"server.1=127.0.0.1:7100:3888:participant;127.0.0.1:7000\nversion=0",
    ));
    ec.data(&mut h, Direction::ToServer, 8, &init);
    // Its next bytes (or its close) identify it, under the same connection id.
    tc.data(&mut h, Direction::ToClient, 9, &tls_records(&[30]));
    tc.data(&mut h, Direction::ToClient, 10, &tls_records(&[30]));
    tc.close(&mut h, 11, CloseReason::Fin);
    ec.close(&mut h, 11, CloseReason::Fin);
    assert_eq!(h.sink.tls, [(1, None, 7100), (1, Some(Proto::Zab), 7100)]);
    assert_eq!(h.stats.tls_connections, 1);
    assert_eq!(h.stats.unrecognised_tls, 0);
    // Identified at its close: the endpoint was learnt after its last bytes.
    let mut h = handler(Mode::Auto);
    let mut tc = Conn::open(&mut h, 52200, 7100, 1, false);
    tc.data(&mut h, Direction::ToServer, 2, &tls_records(&[30, 30]));
    let mut ec = Conn::open(&mut h, 52001, 3888, 3, true);
    ec.data(&mut h, Direction::ToServer, 4, &init);
    tc.close(&mut h, 5, CloseReason::End);
    assert_eq!(h.sink.tls, [(2, Some(Proto::Zab), 7100)]);
    assert_eq!(h.stats.unrecognised_connections, 0);
}

/// Bytes of a real election and quorum conversation, for mutation.
fn real_streams() -> Vec<Vec<u8>> {
    let init = fle_initial();
    let mut zab = zab_packet(11, 0, Some(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0]));
    zab.extend(zab_packet(15, 1 << 32, None));
    zab.extend([0u8; 12]);
    zab.extend(zab_packet(5, 1, None));
    vec![init, zab]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Arbitrary (or mutated real) bytes in any pieces, with gaps, on known and unknown
    /// ports, started or mid-stream: never a panic, and every connection is closed cleanly.
    #[test]
    fn never_panics(
        base in proptest::sample::select(vec![0usize, 1, 2]),
        noise in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
        flips in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        server in proptest::sample::select(vec![3888u16, 2888, 2181, 9999]),
        syn in proptest::bool::ANY,
        gap_at in proptest::option::of(0usize..6),
    ) {
        let mut data = match base {
            0 => noise.clone(),
            n => {
                let mut d = real_streams().swap_remove(n - 1);
                d.extend(&noise);
                d
            }
        };
        for (at, b) in flips {
            if let Some(x) = data.get_mut(at) {
                *x ^= b;
            }
        }
        let mut cuts = cuts;
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut h = handler(Mode::Auto);
        let k = key(40000, server);
        let mut c = h.open(&k, Timestamp(1), syn);
        let mut from = 0;
        for (i, to) in cuts.into_iter().enumerate() {
            let to = to.min(data.len());
            if to < from {
                continue;
            }
            let dir = if i % 2 == 0 { Direction::ToServer } else { Direction::ToClient };
            h.data(&mut c, &k, dir, Timestamp(2 + i as i64), &data[from..to]);
            if gap_at == Some(i) {
                h.gap(&mut c, &k, dir, Timestamp(2 + i as i64), 17);
            }
            from = to;
        }
        h.close(c, &k, Timestamp(100), CloseReason::End);
    }
}
