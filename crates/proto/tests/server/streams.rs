//! Stream-level decoding of the fixtures with the crate's decoders, the way
//! a stream decoder would drive them.

use std::collections::BTreeMap;

use zkscope_proto::election::{self, decode_initial, decode_notification, Status};
use zkscope_proto::quorum::{
    decode_packet, plausible_packet_start, PacketType, QuorumPacket, SkipStatus, SnapshotSkipper,
};

use crate::pcap::{tcp_streams, Stream};

/// One decoded quorum packet and where it came from.
#[derive(Debug, Clone)]
pub struct Zab {
    pub packet: QuorumPacket<'static>,
    pub from_leader: bool,
    pub src_port: u16,
    pub dst_port: u16,
}

/// What a quorum stream decode found besides packets.
#[derive(Debug, Default, Clone)]
pub struct ZabStats {
    /// Bytes skipped to resynchronise after a capture gap.
    pub resync_skipped: usize,
    /// Snapshots walked over (bytes, sessions, nodes).
    pub snapshots: Vec<(u64, u64, u64)>,
    /// Bytes left undecoded at the end of a chunk (a packet cut by a gap).
    pub partial_tails: usize,
}

/// Decodes every quorum stream of `pcap` involving one of `leader_ports`
/// (the side listening on it is the leader).
pub fn zab(pcap: &str, leader_ports: &[u16]) -> (Vec<Zab>, ZabStats) {
    let mut out = Vec::new();
    let mut stats = ZabStats::default();
    for s in tcp_streams(pcap) {
        if leader_ports.contains(&s.src_port) || leader_ports.contains(&s.dst_port) {
            decode_zab_stream(&s, leader_ports.contains(&s.src_port), &mut out, &mut stats);
        }
    }
    (out, stats)
}

fn decode_zab_stream(s: &Stream, from_leader: bool, out: &mut Vec<Zab>, stats: &mut ZabStats) {
    for (i, chunk) in s.chunks.iter().enumerate() {
        // The test keeps the decoded packets: leak the (small) fixture bytes.
        let chunk: &'static [u8] = Box::leak(chunk.clone().into_boxed_slice());
        let mut buf = chunk;
        if i > 0 {
            // After a capture gap: resynchronise on a plausible packet start.
            let skip = (0..buf.len())
                .find(|&at| plausible_packet_start(&buf[at..]))
                .unwrap_or(buf.len());
            stats.resync_skipped += skip;
            buf = &buf[skip..];
        }
        let mut skipper: Option<SnapshotSkipper> = None;
        while !buf.is_empty() {
            if let Some(sk) = skipper.as_mut() {
                match sk.feed(buf) {
                    SkipStatus::Done(n) => {
                        stats
                            .snapshots
                            .push((sk.consumed(), sk.sessions(), sk.nodes()));
                        buf = &buf[n..];
                        skipper = None;
                        continue;
                    }
                    other => panic!("snapshot in {}->{}: {other:?}", s.src_port, s.dst_port),
                }
            }
            match decode_packet(buf) {
                Status::Complete((n, packet)) => {
                    if packet.packet_type == PacketType::SNAP {
                        skipper = Some(SnapshotSkipper::new());
                    }
                    out.push(Zab {
                        packet,
                        from_leader,
                        src_port: s.src_port,
                        dst_port: s.dst_port,
                    });
                    buf = &buf[n..];
                }
                Status::Partial => {
                    stats.partial_tails += buf.len();
                    break;
                }
                Status::Invalid(e) => panic!(
                    "{}->{}: {e} at {:02x?}",
                    s.src_port,
                    s.dst_port,
                    &buf[..buf.len().min(32)]
                ),
            }
        }
    }
}

/// Counts by zktraffic name.
pub fn counts<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for n in names {
        *m.entry(n.to_string()).or_insert(0) += 1;
    }
    m
}

pub fn zab_counts(msgs: &[Zab]) -> BTreeMap<String, usize> {
    counts(
        msgs.iter()
            .map(|z| z.packet.packet_type.display_name().unwrap_or("Unknown")),
    )
}

/// One decoded election-port message.
#[derive(Debug, Clone)]
pub enum Fle {
    Initial(election::InitialMessage<'static>),
    Notification(election::Notification<'static>),
}

/// Decodes every election stream involving `port`: the initiator's stream
/// (towards `port`) starts with an initial message; then both directions
/// carry `int length + body` frames.
pub fn fle(pcap: &str, port: u16) -> Vec<(Stream, Vec<Fle>)> {
    let mut out = Vec::new();
    for s in tcp_streams(pcap) {
        if s.src_port != port && s.dst_port != port {
            continue;
        }
        if s.chunks.is_empty() {
            continue;
        }
        assert_eq!(s.chunks.len(), 1, "FLE stream with a capture gap");
        let data: &'static [u8] = Box::leak(s.chunks[0].clone().into_boxed_slice());
        let mut buf = data;
        let mut msgs = Vec::new();
        if s.dst_port == port {
            match decode_initial(buf) {
                Status::Complete((n, init)) => {
                    msgs.push(Fle::Initial(init));
                    buf = &buf[n..];
                }
                other => panic!("initial: {other:?}"),
            }
        }
        while !buf.is_empty() {
            let len = i32::from_be_bytes(buf[..4].try_into().unwrap());
            let len = usize::try_from(len).unwrap();
            assert!((1..=election::MAX_MESSAGE_LEN).contains(&len));
            let body = &buf[4..4 + len];
            msgs.push(Fle::Notification(decode_notification(body).unwrap()));
            buf = &buf[4 + len..];
        }
        out.push((s, msgs));
    }
    out
}
