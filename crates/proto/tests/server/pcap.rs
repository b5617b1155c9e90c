//! A tiny test-only pcap walker: classic libpcap, Ethernet, IPv4, TCP.
//!
//! It concatenates the payload of each direction of each TCP connection in
//! capture order. Retransmitted bytes are dropped by sequence number. The
//! zktraffic fixtures are loopback captures that nevertheless miss a few
//! segments (tshark: "Previous segment not captured" in zab_request,
//! zab_followerinfo, zab_informandactivate), so a stream is a list of
//! contiguous chunks: a new chunk starts after each gap.

use std::path::PathBuf;

/// One direction of one TCP connection.
#[derive(Debug, Clone)]
pub struct Stream {
    pub src_port: u16,
    pub dst_port: u16,
    /// Contiguous runs of payload bytes, in order (split at capture gaps).
    pub chunks: Vec<Vec<u8>>,
    /// Payload length of each segment, in order (to compare with
    /// per-segment decoders such as zktraffic).
    pub segments: Vec<usize>,
    next_seq: Option<u32>,
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/zktraffic")
        .join(name)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Every direction of every TCP connection in `name`, in order of first
/// appearance. A SYN on a 4-tuple already seen starts a new stream.
pub fn tcp_streams(name: &str) -> Vec<Stream> {
    let file = std::fs::read(fixture(name)).expect("read pcap");
    let magic = &file[..4];
    let le = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!("{name}: not a classic pcap"),
    };
    let u32_at = |at: usize| {
        let b = [file[at], file[at + 1], file[at + 2], file[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(20), 1, "{name}: linktype must be Ethernet");
    let mut streams: Vec<Stream> = Vec::new();
    // (src ip, src port, dst ip, dst port) -> index of the current stream.
    let mut current: std::collections::HashMap<(u32, u16, u32, u16), usize> = Default::default();
    let mut at = 24;
    while at + 16 <= file.len() {
        let incl = u32_at(at + 8) as usize;
        let frame = &file[at + 16..at + 16 + incl];
        at += 16 + incl;
        if frame.len() < 14 || be16(frame, 12) != 0x0800 {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let total = usize::from(be16(ip, 2)).min(ip.len());
        if ip[9] != 6 {
            continue;
        }
        let (src_ip, dst_ip) = (be32(ip, 12), be32(ip, 16));
        let tcp = &ip[ihl..total];
        let (sport, dport) = (be16(tcp, 0), be16(tcp, 2));
        let seq = be32(tcp, 4);
        let flags = tcp[13];
        let off = usize::from(tcp[12] >> 4) * 4;
        let payload = &tcp[off..];
        let key = (src_ip, sport, dst_ip, dport);
        let syn = flags & 0x02 != 0;
        let idx = match current.get(&key) {
            Some(&i) if !syn => i,
            _ => {
                streams.push(Stream {
                    src_port: sport,
                    dst_port: dport,
                    chunks: vec![Vec::new()],
                    segments: Vec::new(),
                    next_seq: None,
                });
                current.insert(key, streams.len() - 1);
                streams.len() - 1
            }
        };
        let s = &mut streams[idx];
        let start = if syn { seq.wrapping_add(1) } else { seq };
        let next = *s.next_seq.get_or_insert(start);
        if payload.is_empty() {
            continue;
        }
        let ahead = start.wrapping_sub(next);
        if ahead != 0 && ahead < (1 << 30) {
            // Bytes missing from the capture: start a new chunk.
            s.chunks.push(Vec::new());
            s.next_seq = Some(start);
        }
        let next = s.next_seq.unwrap_or(start);
        // Drop bytes already seen (retransmissions).
        let skip = next.wrapping_sub(start) as usize;
        if skip < payload.len() {
            s.chunks
                .last_mut()
                .unwrap()
                .extend_from_slice(&payload[skip..]);
            s.segments.push(payload.len() - skip);
            s.next_seq = Some(start.wrapping_add(payload.len() as u32));
        }
    }
    for s in &mut streams {
        s.chunks.retain(|c| !c.is_empty());
    }
    streams
}
