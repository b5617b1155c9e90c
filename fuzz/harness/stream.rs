//! TCP reassembly, framing, pairing and protocol recognition fed arbitrary segment sequences.
//!
//! The input is a list of segments (see [`Seg`]) of up to four connections between clients
//! `10.0.0.1..4` and a server `10.0.0.100` whose port is the first byte's choice (client 2181,
//! election 3888, quorum 2888, or 5555, left to recognition). Each segment's sequence number
//! follows its direction's stream unless the segment says otherwise, and its ACK follows the
//! peer's, so that real-looking streams (the seeds are real captures) stay reachable while
//! anything else is too. The segments go through two pipelines: `TcpTracker` + the client
//! handler, and `TcpTracker` + the ensemble handler (all protocols, port discovery), either
//! with the default limits or with tiny ones (evictions, buffer caps).
//!
//! Shared by `fuzz/fuzz_targets/stream.rs` and the corpus replay in `crates/capture/tests`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use arbitrary::{Result, Unstructured};
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Msg, ServerSpec};
use zkscope_capture::ensemble::{
    EnsembleHandler, EnsembleSpec, FleMsg, Mode, Note, ServerSink, ZabMsg,
};
use zkscope_capture::{StreamHandler, TcpConfig, TcpFlags, TcpSegment, TcpTracker, Timestamp};

/// Server ports the first byte chooses from.
pub const PORTS: [u16; 4] = [2181, 3888, 2888, 5555];

/// One segment of the input.
///
/// Encoding (big-endian), repeated until the input ends:
/// `ctrl` (bit 0: to the client; bits 1–2: connection; bit 3 SYN, 4 FIN, 5 RST, 6 ACK;
/// bit 7: an explicit sequence offset follows), `[i32 offset from the expected sequence
/// number]`, `ext` (bits 0–3: the ACK is the peer's expected sequence number minus
/// `k * 1000`; bits 4–7: `16 * n` payload bytes announced but cut by the snap length),
/// `u8 time step` (×10 ms; 255 jumps 400 s), `u16 payload length`, payload.
#[derive(Debug)]
pub struct Seg<'a> {
    /// Sent by the server.
    pub to_client: bool,
    /// Connection index, 0..4.
    pub conn: u8,
    /// Flags.
    pub flags: TcpFlags,
    /// Offset from the expected sequence number, if any.
    pub seq_offset: Option<i32>,
    /// ACK below the peer's expected sequence number, in thousands.
    pub ack_back: u8,
    /// Payload bytes cut by the snap length.
    pub missing: u32,
    /// Time since the previous segment, in 10 ms steps (255: 400 s).
    pub step: u8,
    /// Payload.
    pub payload: &'a [u8],
}

fn be_u16(u: &mut Unstructured<'_>) -> Result<u16> {
    let b = u.bytes(2)?;
    Ok(u16::from_be_bytes([b[0], b[1]]))
}

impl<'a> Seg<'a> {
    fn parse(u: &mut Unstructured<'a>) -> Result<Self> {
        let ctrl: u8 = u.arbitrary()?;
        let seq_offset = if ctrl & 0x80 != 0 {
            let b = u.bytes(4)?;
            Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        } else {
            None
        };
        let ext: u8 = u.arbitrary()?;
        let step: u8 = u.arbitrary()?;
        let len = usize::from(be_u16(u)?).min(u.len());
        let payload = u.bytes(len)?;
        Ok(Seg {
            to_client: ctrl & 1 != 0,
            conn: (ctrl >> 1) & 3,
            flags: TcpFlags {
                syn: ctrl & 0x08 != 0,
                fin: ctrl & 0x10 != 0,
                rst: ctrl & 0x20 != 0,
                ack: ctrl & 0x40 != 0,
                psh: !payload.is_empty(),
            },
            seq_offset,
            ack_back: ext & 0x0f,
            missing: u32::from(ext >> 4) * 16,
            step,
            payload,
        })
    }
}

/// The decoded input.
#[derive(Debug)]
pub struct Input<'a> {
    /// Server port.
    pub port: u16,
    /// Tiny limits instead of the defaults.
    pub tight: bool,
    /// The segments.
    pub segs: Vec<Seg<'a>>,
}

impl<'a> Input<'a> {
    /// Decodes as many whole segments as the input holds.
    pub fn parse(data: &'a [u8]) -> Input<'a> {
        let mut u = Unstructured::new(data);
        let head: u8 = u.arbitrary().unwrap_or(0);
        let mut segs = Vec::new();
        while !u.is_empty() && segs.len() < 4096 {
            match Seg::parse(&mut u) {
                Ok(s) => segs.push(s),
                Err(_) => break,
            }
        }
        Input {
            port: PORTS[usize::from(head & 3)],
            tight: head & 4 != 0,
            segs,
        }
    }
}

#[derive(Default)]
struct Sink {
    messages: u64,
}

impl ClientSink for Sink {
    fn message(&mut self, m: &Msg<'_>) {
        self.messages += 1;
        assert!(m.frame.len() <= 16 << 20);
        let _ = format!("{m:?}");
    }
}

impl ServerSink for Sink {
    fn fle(&mut self, m: &FleMsg<'_>) {
        self.messages += 1;
        let _ = (m.src(), m.dst(), m.sender_sid(), m.receiver_sid());
        let _ = format!("{m:?}");
    }
    fn zab(&mut self, m: &ZabMsg<'_>) {
        self.messages += 1;
        let _ = (m.src(), m.dst(), m.sender_sid(), m.receiver_sid());
        let _ = format!("{m:?}");
    }
    fn note(&mut self, n: &Note<'_>) {
        let _ = format!("{n:?}");
    }
}

fn tcp_config(tight: bool) -> TcpConfig {
    if tight {
        TcpConfig {
            idle_timeout: Duration::from_secs(60),
            max_flows: 2,
            max_buffer_per_direction: 3000,
            max_buffer_total: 4000,
            max_segments_per_direction: 8,
            // A small reorder window, so holes still become gaps within a short input.
            reorder_packets: 4,
            reorder_bytes: 2048,
            ..TcpConfig::default()
        }
    } else {
        TcpConfig::default()
    }
}

fn client_config(tight: bool) -> ClientConfig {
    let mut c = ClientConfig::default();
    if tight {
        c.max_frame = 4096;
        c.max_pending_per_conn = 3;
        c.max_pending_total = 5;
        c.max_4lw_reply = 16;
        c.max_partial_total = 8192;
    }
    c
}

/// Feeds the segments to `tracker`, then ends the input; checks the tracker's bounds.
fn drive<H: StreamHandler>(input: &Input<'_>, tracker: &mut TcpTracker<H>, h: &mut H) {
    let server_ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100));
    let server = SocketAddr::new(server_ip, input.port);
    // Next expected sequence number per (connection, direction).
    let mut next = [[0u32; 2]; 4];
    for (c, n) in next.iter_mut().enumerate() {
        *n = [
            1000 + c as u32 * 7919,
            4_294_960_000u32.wrapping_add(c as u32 * 104_729),
        ];
    }
    let mut ts = Timestamp::from_parts(1_700_000_000, 0);
    let cfg = tracker.config().clone();
    for s in &input.segs {
        let c = usize::from(s.conn);
        let client = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1 + s.conn)),
            40000 + u16::from(s.conn),
        );
        let (src, dst, d) = if s.to_client {
            (server, client, 1)
        } else {
            (client, server, 0)
        };
        let expected = next[c][d];
        let seq = match s.seq_offset {
            Some(o) => expected.wrapping_add(o as u32),
            None => expected,
        };
        let ack = next[c][1 - d].wrapping_sub(u32::from(s.ack_back) * 1000);
        let len = s.payload.len() as u32 + s.missing;
        let end = seq
            .wrapping_add(len)
            .wrapping_add(u32::from(s.flags.syn) + u32::from(s.flags.fin));
        // Only moves forward (in sequence space) follow the stream.
        if (end.wrapping_sub(expected) as i32) > 0 {
            next[c][d] = end;
        }
        ts = Timestamp(ts.0.saturating_add(if s.step == 255 {
            400_000_000_000
        } else {
            i64::from(s.step) * 10_000_000
        }));
        let seg = TcpSegment {
            src,
            dst,
            seq,
            ack,
            flags: s.flags,
            payload: s.payload,
            missing: s.missing,
        };
        tracker.segment(h, ts, &seg);
        let st = tracker.stats();
        assert!(
            tracker.flow_count() <= cfg.max_flows,
            "flow table over its cap"
        );
        assert!(
            st.buffered_bytes <= cfg.max_buffer_total as u64,
            "out-of-order buffer over its cap"
        );
    }
    tracker.finish(h, ts);
    let st = tracker.stats();
    assert_eq!(tracker.flow_count(), 0, "flows left after finish");
    assert_eq!(st.flows_active, 0);
    assert_eq!(st.flows_opened, st.flows_closed);
    assert_eq!(st.buffered_bytes, 0, "buffered bytes left after finish");
    assert!(
        st.bytes_delivered <= st.bytes,
        "delivered more than captured"
    );
}

/// Runs both pipelines over the segments decoded from `data`.
pub fn run(data: &[u8]) {
    let input = Input::parse(data);
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };

    let mut tracker = TcpTracker::new(tcp_config(input.tight));
    let mut client = ClientHandler::new(spec.clone(), client_config(input.tight), Sink::default());
    drive(&input, &mut tracker, &mut client);
    let s = &client.stats;
    assert!(
        s.requests + s.replies + s.events + s.connects + s.connect_replies <= client.sink.messages,
        "counted messages that were not reported"
    );

    let mut tracker = TcpTracker::new(tcp_config(input.tight));
    let inner = ClientHandler::new(spec, client_config(input.tight), Sink::default());
    let mut ens = EnsembleHandler::new(EnsembleSpec::new(Mode::Auto), inner, Sink::default());
    drive(&input, &mut tracker, &mut ens);
}
