//! Election and quorum connections encoded, cut into TCP segments at arbitrary points and
//! decoded by the ensemble handler: every initial message, vote and quorum packet comes out
//! once, in order, field for field.

use std::net::SocketAddr;

use proptest::prelude::*;
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Msg, ServerSpec};
use zkscope_capture::ensemble::{
    EnsembleHandler, EnsembleSpec, FleKind, FleMsg, Mode, ServerSink, ZabKind, ZabMsg,
};
use zkscope_capture::{TcpFlags, TcpSegment, TcpTracker, Timestamp};

struct NoClient;
impl ClientSink for NoClient {
    fn message(&mut self, m: &Msg<'_>) {
        panic!("client message on a server port: {m:?}");
    }
}

/// Decoded messages: (from the initiator/leader, what).
#[derive(Default)]
struct Log(Vec<(bool, Vec<i64>)>);

impl ServerSink for Log {
    fn fle(&mut self, m: &FleMsg<'_>) {
        let v = match &m.kind {
            FleKind::Initial(i) => vec![-1, i.sid],
            FleKind::Notification(n) => vec![
                n.state.0.into(),
                n.leader,
                n.zxid.0,
                n.election_epoch,
                n.peer_epoch,
            ],
            other => panic!("{other:?}"),
        };
        self.0.push((m.from_initiator, v));
    }
    fn zab(&mut self, m: &ZabMsg<'_>) {
        let v = match &m.kind {
            ZabKind::Packet(p) => {
                let mut v = vec![p.packet_type.0.into(), p.zxid.0];
                v.extend(p.data.0.unwrap_or_default().iter().map(|&b| i64::from(b)));
                v
            }
            other => panic!("{other:?}"),
        };
        self.0.push((m.from_leader, v));
    }
}

/// Feeds `up` (client → server) then `down` through a tracker in pieces cycling through
/// `cuts`, and returns what the handler decoded.
fn run(mode: Mode, port: u16, up: &[u8], down: &[u8], cuts: &[usize]) -> Vec<(bool, Vec<i64>)> {
    let spec = ServerSpec::default();
    let client = ClientHandler::new(spec, ClientConfig::default(), NoClient);
    let mut h = EnsembleHandler::new(EnsembleSpec::new(mode), client, Log::default());
    let mut t = TcpTracker::new(Default::default());
    let (c, s): (SocketAddr, SocketAddr) = (
        "10.0.0.2:40000".parse().unwrap(),
        SocketAddr::new("10.0.0.1".parse().unwrap(), port),
    );
    let mut ts = Timestamp::from_parts(1_700_000_000, 0);
    let mut seg =
        |t: &mut TcpTracker<_>, h: &mut _, src, dst, seq: u32, ack, syn, payload: &[u8]| {
            ts = Timestamp(ts.0 + 1000);
            let flags = TcpFlags {
                syn,
                ack: ack != 0,
                ..TcpFlags::default()
            };
            t.segment(
                h,
                ts,
                &TcpSegment {
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    payload,
                    missing: 0,
                },
            );
        };
    let (mut cs, mut ss) = (100u32, 9000u32);
    seg(&mut t, &mut h, c, s, cs - 1, 0, true, &[]);
    seg(&mut t, &mut h, s, c, ss - 1, cs, true, &[]);
    let mut k = 0;
    for (to_server, bytes) in [(true, up), (false, down)] {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = cuts[k % cuts.len()].min(rest.len());
            k += 1;
            let (p, r) = rest.split_at(n);
            if to_server {
                seg(&mut t, &mut h, c, s, cs, ss, false, p);
                cs += n as u32;
            } else {
                seg(&mut t, &mut h, s, c, ss, cs, false, p);
                ss += n as u32;
            }
            rest = r;
        }
    }
    t.finish(&mut h, Timestamp(i64::MAX / 2));
    h.sink.0
}

type Vote = (i32, i64, i64, i64, i64);

fn vote() -> impl Strategy<Value = Vote> {
    (0..4i32, 1..10i64, 0..i64::MAX, 0..1000i64, 0..1000i64)
}

fn notification(v: &Vote) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&40i32.to_be_bytes());
    b.extend_from_slice(&v.0.to_be_bytes());
    for x in [v.1, v.2, v.3, v.4] {
        b.extend_from_slice(&x.to_be_bytes());
    }
    b.extend_from_slice(&1i32.to_be_bytes());
    b
}

fn packet(ty: i32, zxid: i64, data: &Option<Vec<u8>>) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&ty.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    match data {
        None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(d) => {
            b.extend_from_slice(&(d.len() as i32).to_be_bytes());
            b.extend_from_slice(d);
        }
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn election_connections_survive_any_segmentation(
        sid in 1..10i64,
        ours in proptest::collection::vec(vote(), 0..6),
        theirs in proptest::collection::vec(vote(), 0..6),
        cuts in proptest::collection::vec(1usize..60, 1..12),
    ) {
        let addr = b"10.0.0.2:3888";
        let mut up = Vec::new();
        up.extend_from_slice(&(-65536i64).to_be_bytes());
        up.extend_from_slice(&sid.to_be_bytes());
        up.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        up.extend_from_slice(addr);
        let mut want = vec![(true, vec![-1, sid])];
        for v in &ours {
            up.extend_from_slice(&notification(v));
            want.push((true, vec![v.0.into(), v.1, v.2, v.3, v.4]));
        }
        let mut down = Vec::new();
        for v in &theirs {
            down.extend_from_slice(&notification(v));
            want.push((false, vec![v.0.into(), v.1, v.2, v.3, v.4]));
        }
        prop_assert_eq!(run(Mode::Fle, 3888, &up, &down, &cuts), want);
    }

    #[test]
    fn quorum_connections_survive_any_segmentation(
        learner in proptest::collection::vec((prop_oneof![Just(3), Just(5)], any::<i64>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))), 1..6),
        leader in proptest::collection::vec((prop_oneof![Just(4), Just(5), Just(12)], any::<i64>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))), 0..6),
        cuts in proptest::collection::vec(1usize..60, 1..12),
    ) {
        let (mut up, mut down, mut want) = (Vec::new(), Vec::new(), Vec::new());
        for (ty, zxid, data) in &learner {
            up.extend_from_slice(&packet(*ty, *zxid, data));
            let mut v = vec![i64::from(*ty), *zxid];
            v.extend(data.iter().flatten().map(|&b| i64::from(b)));
            want.push((false, v));
        }
        for (ty, zxid, data) in &leader {
            down.extend_from_slice(&packet(*ty, *zxid, data));
            let mut v = vec![i64::from(*ty), *zxid];
            v.extend(data.iter().flatten().map(|&b| i64::from(b)));
            want.push((true, v));
        }
        prop_assert_eq!(run(Mode::Zab, 2888, &up, &down, &cuts), want);
    }
}
