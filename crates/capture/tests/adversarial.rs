//! Adversarial input: state and memory stay bounded whatever the wire carries — huge length
//! prefixes, endless pipelining without replies, millions of connections, a SYN flood, a slow
//! drip of one-byte segments (in order, and ahead of a hole that never fills).
//!
//! Memory is the live heap of the test's thread (`common/live_alloc.rs`): each test measures
//! it once the caps are reached and again after many times more input, and asserts it stayed
//! flat; the tracker's and decoder's counters show the caps at work.

#[path = "common/live_alloc.rs"]
mod live_alloc;
#[path = "common/traffic.rs"]
mod traffic;

use live_alloc::{live, peak, reset_peak};
use traffic::{connect_request, connect_response, frame, get_data, get_data_reply, Conn, Wire};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Msg, ServerSpec};
use zkscope_capture::{TcpConfig, TcpTracker};

const MIB: isize = 1 << 20;

/// Counts messages by kind.
#[derive(Default)]
struct Count {
    requests: u64,
    messages: u64,
}

impl ClientSink for Count {
    fn message(&mut self, m: &Msg<'_>) {
        self.messages += 1;
        if matches!(m.kind, zkscope_capture::client::Kind::Request(_)) {
            self.requests += 1;
        }
    }
}

fn wire(tcp: TcpConfig, client: ClientConfig) -> Wire<ClientHandler<Count>> {
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    Wire::new(
        TcpTracker::new(tcp),
        ClientHandler::new(spec, client, Count::default()),
    )
}

/// `n` bytes of zeros in 1448-byte segments (a zero length prefix is never a frame).
fn zeros(w: &mut Wire<ClientHandler<Count>>, c: &mut Conn, n: usize) {
    let seg = [0u8; 1448];
    let mut left = n;
    while left > 0 {
        let k = left.min(seg.len());
        w.send(c, true, &seg[..k]);
        left -= k;
    }
}

#[test]
fn a_length_prefix_beyond_the_maximum_buffers_nothing() {
    let mut w = wire(TcpConfig::default(), ClientConfig::default());
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    let base = live();
    reset_peak();
    // 2 GiB announced, 32 MiB sent: all of it is garbage to skip, none of it is kept.
    w.send(&mut c, true, &0x7fff_ffffu32.to_be_bytes());
    zeros(&mut w, &mut c, 32 << 20);
    assert!(
        peak() - base < MIB,
        "skipping garbage held {} bytes",
        peak() - base
    );
    assert!(w.h.stats.bad_lengths >= 1);
    w.finish();
}

#[test]
fn a_large_frame_costs_what_arrives_and_is_freed() {
    let mut w = wire(TcpConfig::default(), ClientConfig::default());
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    let base = live();
    reset_peak();
    // 15 MiB announced (under the 16 MiB maximum): the buffer grows with the 4 MiB that
    // arrive, not with the announced length.
    w.send(&mut c, true, &(15u32 << 20).to_be_bytes());
    zeros(&mut w, &mut c, 4 << 20);
    let held = peak() - base;
    assert!(held < 9 * MIB, "a 4 MiB partial frame held {held} bytes");
    // The connection resets: the partial frame goes with it.
    w.finish();
    assert!(
        live() - base < MIB,
        "{} bytes left after the connection closed",
        live() - base
    );
}

#[test]
fn endless_pipelining_without_replies_is_capped() {
    let client = ClientConfig::default();
    let cap = client.max_pending_per_conn as u64;
    let mut w = wire(TcpConfig::default(), client);
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    w.send(&mut c, false, &connect_response(0x100));
    // Distinct paths of the same length: each pending request keeps its path.
    let mut batch = Vec::new();
    let mut xid = 0;
    let mut send = |w: &mut Wire<ClientHandler<Count>>, c: &mut Conn, n: i32| {
        for _ in 0..n / 16 {
            batch.clear();
            for _ in 0..16 {
                xid += 1;
                batch.extend_from_slice(&get_data(xid, &format!("/pipelined/{xid:012}")));
            }
            w.send(c, true, &batch);
        }
    };
    send(&mut w, &mut c, 3 * cap as i32);
    let settled = live();
    reset_peak();
    send(&mut w, &mut c, 300_000);
    let grown = peak() - settled;
    assert!(grown < MIB / 4, "pending state grew by {grown} bytes");
    let s = &w.h.stats;
    assert_eq!(s.requests, 3 * cap + 300_000);
    assert_eq!(s.pending_evicted, s.requests - cap);
    w.finish();
    assert_eq!(w.h.sink.requests, 3 * cap + 300_000);
}

/// Opens `n` connections (SYN, SYN-ACK, ConnectRequest, one request), none of them closed.
fn open_connections(w: &mut Wire<ClientHandler<Count>>, from: u32, n: u32, syn_only: bool) {
    let (hello, req) = (connect_request(), get_data(1, "/flood"));
    for i in from..from + n {
        let mut c = Conn::new(i);
        if syn_only {
            w.syn(&mut c);
        } else {
            w.handshake(&mut c);
            w.send(&mut c, true, &hello);
            w.send(&mut c, true, &req);
        }
    }
}

fn connections_are_capped(syn_only: bool, total: u32) {
    let tcp = TcpConfig::default();
    let max = tcp.max_flows;
    let mut w = wire(tcp, ClientConfig::default());
    // Fill the table well past its cap, then many times more.
    open_connections(&mut w, 0, 2 * max as u32, syn_only);
    let settled = live();
    reset_peak();
    open_connections(&mut w, 2 * max as u32, total - 2 * max as u32, syn_only);
    let grown = peak() - settled;
    assert!(
        grown < 4 * MIB,
        "{total} connections grew memory by {grown} bytes"
    );
    assert!(w.tracker.flow_count() <= max);
    let st = w.tracker.stats().clone();
    assert!(st.flows_evicted >= u64::from(total) - max as u64, "{st:?}");
    w.finish();
    if !syn_only {
        assert_eq!(w.h.stats.requests, u64::from(total));
    }
}

#[test]
fn a_million_connections_keep_the_flow_table_capped() {
    connections_are_capped(false, 1_000_000);
}

#[test]
fn a_syn_flood_keeps_the_flow_table_capped() {
    connections_are_capped(true, 1_000_000);
}

#[test]
fn a_slow_drip_of_one_byte_segments_decodes_everything() {
    let mut w = wire(TcpConfig::default(), ClientConfig::default());
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    w.send(&mut c, false, &connect_response(0x100));
    let drip = |w: &mut Wire<ClientHandler<Count>>, c: &mut Conn, xids: std::ops::Range<i32>| {
        for xid in xids {
            for b in get_data(xid, &format!("/drip/{xid:06}")) {
                w.send(c, true, &[b]);
            }
            w.send(c, false, &get_data_reply(xid, 7, b"v"));
        }
    };
    drip(&mut w, &mut c, 1..100);
    let settled = live();
    reset_peak();
    drip(&mut w, &mut c, 100..5_100);
    let grown = peak() - settled;
    assert!(grown < 16 << 10, "dripping grew memory by {grown} bytes");
    w.finish();
    let s = &w.h.stats;
    assert_eq!((s.requests, s.replies), (5_099, 5_099));
    assert_eq!((s.unpaired_replies, s.unanswered_requests), (0, 0));
}

#[test]
fn one_byte_segments_ahead_of_a_hole_are_capped() {
    let tcp = TcpConfig::default();
    let (max_bytes, max_segs) = (tcp.max_buffer_per_direction, tcp.max_segments_per_direction);
    let mut w = wire(tcp, ClientConfig::default());
    let mut c = Conn::new(1);
    w.handshake(&mut c);
    w.send(&mut c, true, &connect_request());
    // One byte is never sent; a million single bytes follow it.
    let drip = |w: &mut Wire<ClientHandler<Count>>, c: &mut Conn, from: u32, n: u32| {
        for off in from..from + n {
            w.send_at(c, true, 1 + off, b"x");
            let st = w.tracker.stats();
            assert!(st.buffered_bytes as usize <= max_bytes.min(max_segs));
        }
    };
    drip(&mut w, &mut c, 0, 2 * max_segs as u32);
    let settled = live();
    reset_peak();
    drip(&mut w, &mut c, 2 * max_segs as u32, 1_000_000);
    let grown = peak() - settled;
    assert!(
        grown < MIB / 4,
        "the out-of-order buffer grew by {grown} bytes"
    );
    w.finish();
    assert!(w.tracker.stats().gaps >= 1);
}

#[test]
fn huge_prefixes_on_many_connections_hold_only_what_arrived() {
    // Each connection announces a 15 MiB frame and sends 64 KiB of it: memory is what was
    // sent (no preallocation from the announced length), freed when the flows close.
    let mut w = wire(TcpConfig::default(), ClientConfig::default());
    let base = live();
    let mut conns: Vec<Conn> = (0..200).map(Conn::new).collect();
    for c in &mut conns {
        w.handshake(c);
        w.send(c, true, &connect_request());
        w.send(c, true, &(15u32 << 20).to_be_bytes());
    }
    for c in &mut conns {
        zeros(&mut w, c, 64 << 10);
    }
    let held = live() - base;
    assert!(
        held < 200 * ((2 * 64) << 10) + 4 * MIB,
        "200 × 64 KiB partial frames hold {held} bytes"
    );
    w.finish();
    assert!(
        live() - base < MIB,
        "{} bytes left after the end",
        live() - base
    );
}

#[test]
fn the_frame_of_a_frame_helper_is_its_length() {
    assert_eq!(frame(b"abc"), vec![0, 0, 0, 3, b'a', b'b', b'c']);
}
