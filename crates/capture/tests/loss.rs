//! Lost segments must cost only the messages they carried: no phantom message made of other
//! bytes, no pairing lost for the requests around them. (The end-to-end version, with ground
//! truth and 2% of the segments dropped, is `crates/zkscope/tests/robustness.rs`.)

#[path = "common/traffic.rs"]
mod traffic;

use traffic::{connect_request, connect_response, get_data, get_data_reply, Conn, Wire};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Kind, Msg, ServerSpec};
use zkscope_capture::{TcpConfig, TcpTracker};

/// What each message was: `("request" | "reply" | …, xid, paired)`.
#[derive(Default)]
struct Log(Vec<(&'static str, Option<i32>, bool)>);

impl ClientSink for Log {
    fn message(&mut self, m: &Msg<'_>) {
        self.0.push(match &m.kind {
            Kind::ConnectRequest(_) => ("connect", None, false),
            Kind::ConnectResponse(_) => ("connect_reply", None, false),
            Kind::Request(r) => ("request", Some(r.header.xid), false),
            Kind::Reply { reply, request } => ("reply", Some(reply.header.xid), request.is_some()),
            Kind::Unanswered { request, .. } => ("unanswered", Some(request.xid), false),
            Kind::Event { .. } => ("event", None, false),
            _ => ("other", None, false),
        });
    }
}

fn wire() -> Wire<ClientHandler<Log>> {
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let h = ClientHandler::new(spec, ClientConfig::default(), Log::default());
    Wire::new(TcpTracker::new(TcpConfig::default()), h)
}

#[test]
fn a_lost_connect_request_leaves_the_connect_response_a_connect_response() {
    let mut w = wire();
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.lose(&mut c, true, connect_request().len());
    w.send(&mut c, false, &connect_response(0x100));
    w.send(&mut c, true, &get_data(1, "/a"));
    w.send(&mut c, false, &get_data_reply(1, 5, b"x"));
    w.finish();
    let log = &w.h.sink.0;
    assert!(
        !log.iter().any(|m| m.0 == "reply" && m.1 == Some(0)),
        "the ConnectResponse became a reply: {log:?}"
    );
    assert_eq!(w.h.stats.connect_replies, 1, "{log:?}");
    assert!(log.contains(&("reply", Some(1), true)), "{log:?}");
}

#[test]
fn a_lost_reply_leaves_the_later_requests_pending() {
    let mut w = wire();
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    w.send(&mut c, false, &connect_response(0x100));
    for xid in 1..=5 {
        w.send(&mut c, true, &get_data(xid, &format!("/n{xid}")));
    }
    w.send(&mut c, false, &get_data_reply(1, 5, b"x"));
    w.lose(&mut c, false, get_data_reply(2, 6, b"x").len());
    let mut rest = get_data_reply(3, 7, b"x");
    rest.extend_from_slice(&get_data_reply(4, 8, b"x"));
    w.send(&mut c, false, &rest);
    w.send(&mut c, false, &get_data_reply(5, 9, b"x"));
    w.finish();
    let log = &w.h.sink.0;
    for xid in [1, 3, 4, 5] {
        assert!(
            log.contains(&("reply", Some(xid), true)),
            "reply {xid} unpaired: {log:?}"
        );
    }
    assert!(log.contains(&("unanswered", Some(2), false)), "{log:?}");
    assert_eq!(w.h.stats.unanswered_requests, 1, "{log:?}");
    assert_eq!(w.h.stats.unpaired_replies, 0, "{log:?}");
}
