//! A million distinct paths through `count -g path`'s aggregator: the group table stops at
//! its cap, later groups fold into the `(other)` row, and memory stays flat.

#[path = "../../capture/tests/common/live_alloc.rs"]
mod live_alloc;
#[path = "../../capture/tests/common/traffic.rs"]
mod traffic;

use live_alloc::{live, peak, reset_peak};
use traffic::{connect_request, connect_response, get_data, get_data_reply, Conn, Wire};
use zkscope_analysis::{Aggregator, Config, GroupKey};
use zkscope_capture::client::{ClientConfig, ClientHandler, ServerSpec};
use zkscope_capture::pipeline::Feed;
use zkscope_capture::{TcpConfig, TcpTracker};

#[test]
fn a_million_distinct_paths_stay_within_the_group_cap() {
    let cfg = Config {
        keys: vec![GroupKey::Path],
        ..Config::default()
    };
    let cap = cfg.max_groups;
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let h = ClientHandler::new(spec, ClientConfig::default(), Feed(Aggregator::new(&cfg)));
    let mut w = Wire::new(TcpTracker::new(TcpConfig::default()), h);
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    w.send(&mut c, false, &connect_response(0x100));
    let calls = |w: &mut Wire<_>, c: &mut Conn, xids: std::ops::Range<i32>| {
        for xid in xids {
            w.send(c, true, &get_data(xid, &format!("/paths/{xid:09}")));
            w.send(c, false, &get_data_reply(xid, i64::from(xid), b""));
        }
    };
    let total = 1_000_000;
    calls(&mut w, &mut c, 1..cap as i32 + 50_000);
    let settled = live();
    reset_peak();
    calls(&mut w, &mut c, cap as i32 + 50_000..total + 1);
    let grown = peak() - settled;
    assert!(
        grown < 1 << 20,
        "{total} paths grew memory by {grown} bytes"
    );
    w.finish();
    let table = w.h.sink.0.table();
    // The handshake is a call without a path: one group of its own.
    assert_eq!(table.len(), cap);
    let total = total as u64;
    assert_eq!(table.folded, total + 1 - cap as u64);
    assert_eq!(table.total().count, total + 1);
}
