//! Encode → split anywhere → reassemble → frame → decode → pair: a generated conversation
//! (handshake, pipelined requests of several kinds, their replies, watch events, pings) is
//! encoded, both directions are cut into TCP segments at arbitrary points, and the decoded
//! messages must be exactly the ones sent, field for field, each reply paired with its request.

#[path = "common/traffic.rs"]
mod traffic;

use proptest::prelude::*;
use traffic::{connect_request, connect_response, frame, Conn, Wire};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Kind, Msg, ServerSpec};
use zkscope_capture::{TcpConfig, TcpTracker};
use zkscope_proto::{ReplyBody, RequestBody};

/// A call: the request, its reply, and an optional watch event before the reply.
#[derive(Debug, Clone)]
struct Call {
    op: i32,
    path: String,
    data: Vec<u8>,
    err: i32,
    event: bool,
}

/// What the decoder reported, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Connect,
    ConnectReply(i64),
    Request {
        xid: i32,
        op: i32,
        path: Option<String>,
    },
    Reply {
        xid: i32,
        err: i32,
        paired_op: Option<i32>,
        data: Option<Vec<u8>>,
    },
    Event {
        path: Option<String>,
    },
}

#[derive(Default)]
struct Log(Vec<Seen>);

impl ClientSink for Log {
    fn message(&mut self, m: &Msg<'_>) {
        assert!(m.error.is_none() && !m.cut, "{m:?}");
        self.0.push(match &m.kind {
            Kind::ConnectRequest(_) => Seen::Connect,
            Kind::ConnectResponse(r) => Seen::ConnectReply(r.session_id),
            Kind::Request(r) => Seen::Request {
                xid: r.header.xid,
                op: r.header.opcode.0,
                path: r.body.path().map(|p| p.to_string()),
            },
            Kind::Reply { reply, request } => Seen::Reply {
                xid: reply.header.xid,
                err: reply.header.err.0,
                paired_op: request.map(|r| r.opcode.0),
                data: match reply.body {
                    ReplyBody::GetData { data, .. } => data.0.map(<[u8]>::to_vec),
                    _ => None,
                },
            },
            Kind::Event { event, .. } => Seen::Event {
                path: event.path.map(|p| p.to_string()),
            },
            other => panic!("unexpected {other:?}"),
        });
    }
}

fn be(v: &mut Vec<u8>, x: impl AsRef<[u8]>) {
    v.extend_from_slice(x.as_ref());
}

fn string(v: &mut Vec<u8>, s: &[u8]) {
    be(v, (s.len() as i32).to_be_bytes());
    be(v, s);
}

/// The request frame and the reply frame of `c` with xid `xid`.
fn encode(c: &Call, xid: i32) -> (Vec<u8>, Vec<u8>) {
    let mut req = Vec::new();
    be(&mut req, xid.to_be_bytes());
    be(&mut req, c.op.to_be_bytes());
    let mut rep = Vec::new();
    be(&mut rep, xid.to_be_bytes());
    be(&mut rep, (1000 + i64::from(xid)).to_be_bytes());
    be(&mut rep, c.err.to_be_bytes());
    match c.op {
        11 => {}
        1 => {
            string(&mut req, c.path.as_bytes());
            string(&mut req, &c.data);
            be(&mut req, 1i32.to_be_bytes());
            be(&mut req, 31i32.to_be_bytes());
            string(&mut req, b"world");
            string(&mut req, b"anyone");
            be(&mut req, 0i32.to_be_bytes());
            if c.err == 0 {
                string(&mut rep, c.path.as_bytes());
            }
        }
        _ => {
            string(&mut req, c.path.as_bytes());
            req.push(u8::from(c.event));
            if c.err == 0 {
                if c.op == 4 {
                    string(&mut rep, &c.data);
                }
                be(&mut rep, [0u8; 68]);
            }
        }
    }
    (frame(&req), frame(&rep))
}

fn event(path: &str) -> Vec<u8> {
    let mut e = Vec::new();
    be(&mut e, (-1i32).to_be_bytes());
    be(&mut e, (-1i64).to_be_bytes());
    be(&mut e, 0i32.to_be_bytes());
    be(&mut e, 3i32.to_be_bytes());
    be(&mut e, 3i32.to_be_bytes());
    string(&mut e, path.as_bytes());
    frame(&e)
}

fn call() -> impl Strategy<Value = Call> {
    (
        prop_oneof![Just(1), Just(3), Just(4), Just(11)],
        "(/[a-z0-9]{1,6}){1,3}",
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![3 => Just(0), 1 => Just(-101), 1 => Just(-110)],
        any::<bool>(),
    )
        .prop_map(|(op, path, data, err, event)| Call {
            op,
            err: if op == 11 { 0 } else { err },
            event: event && op != 11 && op != 1,
            path,
            data,
        })
}

/// Sends `bytes` in pieces whose sizes cycle through `cuts`.
fn send_cut(
    w: &mut Wire<ClientHandler<Log>>,
    c: &mut Conn,
    to_server: bool,
    bytes: &[u8],
    cuts: &[usize],
    k: &mut usize,
) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = cuts[*k % cuts.len()].min(rest.len());
        *k += 1;
        w.send(c, to_server, &rest[..n]);
        rest = &rest[n..];
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn conversations_survive_any_segmentation(
        batches in proptest::collection::vec(proptest::collection::vec(call(), 1..5), 1..8),
        cuts in proptest::collection::vec(1usize..80, 1..20),
    ) {
        let spec = ServerSpec { ports: vec![2181], ..ServerSpec::default() };
        let h = ClientHandler::new(spec, ClientConfig::default(), Log::default());
        let mut w = Wire::new(TcpTracker::new(TcpConfig::default()), h);
        let mut c = Conn::new(7);
        w.handshake(&mut c);
        let mut k = 0;
        let mut want = vec![Seen::Connect, Seen::ConnectReply(0x1234)];
        send_cut(&mut w, &mut c, true, &connect_request(), &cuts, &mut k);
        send_cut(&mut w, &mut c, false, &connect_response(0x1234), &cuts, &mut k);
        let mut xid = 0;
        for batch in &batches {
            let (mut up, mut down) = (Vec::new(), Vec::new());
            let mut replies = Vec::new();
            for call in batch {
                let id = if call.op == 11 { -2 } else { xid += 1; xid };
                let (req, rep) = encode(call, id);
                up.extend_from_slice(&req);
                want.push(Seen::Request {
                    xid: id,
                    op: call.op,
                    path: (call.op != 11).then(|| call.path.clone()),
                });
                if call.event {
                    down.extend_from_slice(&event(&call.path));
                    replies.push(Seen::Event { path: Some(call.path.clone()) });
                }
                down.extend_from_slice(&rep);
                replies.push(Seen::Reply {
                    xid: id,
                    err: call.err,
                    paired_op: Some(call.op),
                    data: (call.op == 4 && call.err == 0).then(|| call.data.clone()),
                });
            }
            want.extend(replies);
            send_cut(&mut w, &mut c, true, &up, &cuts, &mut k);
            send_cut(&mut w, &mut c, false, &down, &cuts, &mut k);
        }
        w.finish();
        prop_assert_eq!(&w.h.sink.0, &want);
        let s = &w.h.stats;
        prop_assert_eq!((s.unpaired_replies, s.unanswered_requests, s.resync_skipped_bytes), (0, 0, 0));
    }
}

#[test]
fn request_bodies_are_what_the_roundtrip_encodes() {
    // The encoder above against the decoder, once, outside proptest.
    let c = Call {
        op: 1,
        path: "/a".into(),
        data: b"xy".to_vec(),
        err: 0,
        event: false,
    };
    let (req, _) = encode(&c, 5);
    let r = zkscope_proto::decode_request(&req[4..]).unwrap();
    assert!(matches!(r.body, RequestBody::Create { .. }));
}
