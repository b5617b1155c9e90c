//! Builds client-port traffic for tests: TCP segments of many connections fed straight to a
//! [`TcpTracker`], and the frames of a few message types (`#[path]`-included).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use zkscope_capture::{StreamHandler, TcpFlags, TcpSegment, TcpTracker, Timestamp};

/// One TCP connection's endpoints and next sequence numbers.
pub struct Conn {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub up: u32,
    pub down: u32,
}

impl Conn {
    /// The `i`-th connection: a distinct client address and port for every `i < 2^32`.
    pub fn new(i: u32) -> Conn {
        let ip = 0x0a00_0000 | (i >> 14);
        Conn {
            client: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), 1024 + (i & 0x3fff) as u16),
            server: "10.255.0.1:2181".parse().unwrap(),
            up: 1_000,
            down: 5_000_000,
        }
    }
}

/// A tracker, its handler and a clock that advances 1 µs per segment.
pub struct Wire<H: StreamHandler> {
    pub tracker: TcpTracker<H>,
    pub h: H,
    pub ts: Timestamp,
}

fn flags(syn: bool, ack: bool) -> TcpFlags {
    TcpFlags {
        syn,
        ack,
        ..TcpFlags::default()
    }
}

impl<H: StreamHandler> Wire<H> {
    pub fn new(tracker: TcpTracker<H>, h: H) -> Self {
        Wire {
            tracker,
            h,
            ts: Timestamp::from_parts(1_700_000_000, 0),
        }
    }

    fn tick(&mut self) -> Timestamp {
        self.ts = Timestamp(self.ts.0 + 1_000);
        self.ts
    }

    /// The client's SYN only.
    pub fn syn(&mut self, c: &mut Conn) {
        let seg = TcpSegment {
            src: c.client,
            dst: c.server,
            seq: c.up.wrapping_sub(1),
            ack: 0,
            flags: flags(true, false),
            payload: &[],
            missing: 0,
        };
        let ts = self.tick();
        self.tracker.segment(&mut self.h, ts, &seg);
    }

    /// SYN and SYN-ACK: both streams start at a frame boundary.
    pub fn handshake(&mut self, c: &mut Conn) {
        self.syn(c);
        let seg = TcpSegment {
            src: c.server,
            dst: c.client,
            seq: c.down.wrapping_sub(1),
            ack: c.up,
            flags: flags(true, true),
            payload: &[],
            missing: 0,
        };
        let ts = self.tick();
        self.tracker.segment(&mut self.h, ts, &seg);
    }

    /// `payload` at `offset` bytes past the direction's next sequence number (0: in order),
    /// which advances only for in-order segments.
    pub fn send_at(&mut self, c: &mut Conn, to_server: bool, offset: u32, payload: &[u8]) {
        let (src, dst, seq, ack) = if to_server {
            (c.client, c.server, c.up, c.down)
        } else {
            (c.server, c.client, c.down, c.up)
        };
        let seg = TcpSegment {
            src,
            dst,
            seq: seq.wrapping_add(offset),
            ack,
            flags: flags(false, true),
            payload,
            missing: 0,
        };
        let ts = self.tick();
        self.tracker.segment(&mut self.h, ts, &seg);
        if offset == 0 {
            let next = seq.wrapping_add(payload.len() as u32);
            if to_server {
                c.up = next;
            } else {
                c.down = next;
            }
        }
    }

    /// In-order `payload`.
    pub fn send(&mut self, c: &mut Conn, to_server: bool, payload: &[u8]) {
        self.send_at(c, to_server, 0, payload);
    }

    /// `n` bytes of one direction that the capture misses.
    pub fn lose(&mut self, c: &mut Conn, to_server: bool, n: usize) {
        let seq = if to_server { &mut c.up } else { &mut c.down };
        *seq = seq.wrapping_add(n as u32);
    }

    /// Ends the input.
    pub fn finish(&mut self) {
        let ts = self.tick();
        self.tracker.finish(&mut self.h, ts);
    }
}

/// `body` behind its length prefix.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// A fresh session's ConnectRequest frame.
pub fn connect_request() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&30_000i32.to_be_bytes());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b.push(0);
    frame(&b)
}

/// The ConnectResponse frame of session `session`.
pub fn connect_response(session: i64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&30_000i32.to_be_bytes());
    b.extend_from_slice(&session.to_be_bytes());
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&[7; 16]);
    b.push(0);
    frame(&b)
}

/// A `getData(path, watch=false)` request frame.
pub fn get_data(xid: i32, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&4i32.to_be_bytes());
    b.extend_from_slice(&(path.len() as i32).to_be_bytes());
    b.extend_from_slice(path.as_bytes());
    b.push(0);
    frame(&b)
}

/// A successful getData reply frame with `data` and a zero `Stat`.
pub fn get_data_reply(xid: i32, zxid: i64, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(&[0; 68]);
    frame(&b)
}
