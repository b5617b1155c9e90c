//! One direction of a quorum (ZAB) connection: `QuorumPacket`s back to back (no length
//! prefix), an optional quorum SASL exchange at the start, and the raw snapshot a leader
//! streams after SNAP (protocol.md §3).
//!
//! Packets that lie wholly inside one pushed slice are decoded in place (zero copy). A packet
//! that straddles pushes is completed in a reused buffer with exactly the bytes it still
//! needs, so the next packet is decoded in place again. A gap inside a packet whose length is
//! known (every type but REQUEST carries no authinfo) keeps the stream in sync; any other gap,
//! or a capture that starts mid-stream, makes the stream scan for the next plausible packet
//! and count the bytes it skipped.

use zkscope_proto::election::Zxid;
use zkscope_proto::jute::DecodeError;
use zkscope_proto::quorum::{
    decode_packet, decode_quorum_auth, peek_header, plausible_packet_start, PacketType,
    QuorumAuthPacket, QuorumPacket, SkipStatus, SnapshotSkipper, Status,
};

/// Largest `data` of a packet accepted as a resynchronisation point (it is judged whole).
const RESYNC_MAX_DATA: usize = 64 << 10;
/// Bytes of an undecodable packet's start kept for the report.
const HEAD: usize = 64;

/// What one direction of a quorum stream yields.
#[derive(Debug)]
pub(crate) enum ZabEvent<'a> {
    /// A whole packet of `size` bytes.
    Packet {
        packet: QuorumPacket<'a>,
        size: usize,
    },
    /// A quorum SASL packet at the start of the connection.
    Auth(QuorumAuthPacket<'a>),
    /// The snapshot after SNAP ended (signature read).
    SnapshotDone {
        bytes: u64,
        sessions: u64,
        nodes: u64,
    },
    /// The snapshot could not be followed (bad bytes, or a gap): the stream resynchronises.
    SnapshotLost { bytes: u64 },
    /// Bytes that cannot be a packet (the stream resynchronises after them).
    Invalid { error: DecodeError, head: &'a [u8] },
    /// A packet that lost bytes in a gap; its header was captured.
    Cut {
        packet_type: PacketType,
        zxid: Zxid,
        len: usize,
    },
    /// Bytes skipped while looking for the next packet.
    Skipped(u64),
    /// An incomplete packet (or auth packet) dropped at a gap or at the end.
    PartialDropped { bytes: usize },
}

#[derive(Debug)]
enum State {
    /// Start of the connection: quorum SASL packets may come first.
    Start,
    /// At a packet boundary (or inside the packet held in `buf`).
    Sync,
    /// Skipping the rest of a packet that lost bytes in a gap.
    Hole(u64),
    /// Inside the snapshot that follows SNAP.
    Snapshot(SnapshotSkipper),
    /// Looking for the next plausible packet start.
    Unsynced,
}

/// One direction of a quorum connection.
#[derive(Debug)]
pub(crate) struct ZabStream {
    /// The incomplete packet (`Sync`/`Start`), or unscanned bytes (`Unsynced`).
    buf: Vec<u8>,
    state: State,
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Non-negative length of a jute buffer/string prefix (−1 and other negatives count as 0).
fn len_of(v: i32) -> usize {
    usize::try_from(v).unwrap_or(0)
}

/// Total length of the packet starting `b`, as far as its captured start tells: the exact
/// length once every length field is present, else the bytes needed to read the next one.
/// Only called on a strict prefix that `decode_packet` found `Partial` (lengths in range).
fn packet_need(b: &[u8]) -> usize {
    let Some(data) = i32_at(b, 12) else {
        return 16;
    };
    let mut pos = 16usize.saturating_add(len_of(data));
    let Some(count) = i32_at(b, pos) else {
        return pos.saturating_add(4);
    };
    pos = pos.saturating_add(4);
    for _ in 0..count.max(0) {
        for _ in 0..2 {
            let Some(n) = i32_at(b, pos) else {
                return pos.saturating_add(4);
            };
            pos = pos.saturating_add(4).saturating_add(len_of(n));
            if b.len() < pos {
                return pos;
            }
        }
    }
    pos
}

/// Total length of the quorum SASL packet starting `b` (same contract as [`packet_need`]).
fn auth_need(b: &[u8]) -> usize {
    match i32_at(b, 12) {
        None => 16,
        Some(n) => 16usize.saturating_add(len_of(n)),
    }
}

/// Length of the packet whose header starts `b` when it carries no authinfo entries (every
/// type but REQUEST): header, data, the −1 authinfo count.
fn known_len(b: &[u8]) -> Option<(PacketType, Zxid, usize)> {
    let (ty, zxid) = peek_header(b)?;
    let data = i32_at(b, 12)?;
    if ty == PacketType::REQUEST || !ty.is_known() || data < -1 {
        return None;
    }
    Some((ty, zxid, 20usize.saturating_add(len_of(data))))
}

impl ZabStream {
    /// A stream whose next byte is the connection's first (`synced`) or an unknown position.
    pub(crate) fn new(synced: bool) -> Self {
        ZabStream {
            buf: Vec::new(),
            state: if synced {
                State::Start
            } else {
                State::Unsynced
            },
        }
    }

    /// Feeds the next bytes of this direction.
    pub(crate) fn push(&mut self, mut data: &[u8], out: &mut dyn FnMut(ZabEvent<'_>)) {
        loop {
            let more = match &mut self.state {
                State::Hole(rem) => {
                    let take = data.len().min(usize::try_from(*rem).unwrap_or(usize::MAX));
                    *rem -= take as u64;
                    data = &data[take..];
                    if *rem == 0 {
                        self.state = State::Sync;
                    }
                    !data.is_empty()
                }
                State::Snapshot(sk) => {
                    if !self.buf.is_empty() {
                        // Snapshot bytes that were buffered with the SNAP packet.
                        match sk.feed(&self.buf) {
                            SkipStatus::Consumed(_) => self.buf.clear(),
                            SkipStatus::Done(n) => {
                                out(ZabEvent::SnapshotDone {
                                    bytes: sk.consumed(),
                                    sessions: sk.sessions(),
                                    nodes: sk.nodes(),
                                });
                                self.buf.drain(..n);
                                self.state = State::Sync;
                            }
                            SkipStatus::Invalid => {
                                out(ZabEvent::SnapshotLost {
                                    bytes: sk.consumed(),
                                });
                                self.state = State::Unsynced;
                            }
                        }
                        true
                    } else if data.is_empty() {
                        false
                    } else {
                        match sk.feed(data) {
                            SkipStatus::Consumed(_) => data = &[],
                            SkipStatus::Done(n) => {
                                out(ZabEvent::SnapshotDone {
                                    bytes: sk.consumed(),
                                    sessions: sk.sessions(),
                                    nodes: sk.nodes(),
                                });
                                data = &data[n..];
                                self.state = State::Sync;
                            }
                            SkipStatus::Invalid => {
                                out(ZabEvent::SnapshotLost {
                                    bytes: sk.consumed(),
                                });
                                self.state = State::Unsynced;
                            }
                        }
                        !data.is_empty() || !self.buf.is_empty()
                    }
                }
                State::Start => self.start(&mut data, out),
                State::Sync => self.sync(&mut data, out),
                State::Unsynced => self.resync(&mut data, out),
            };
            if !more {
                return;
            }
        }
    }

    /// Quorum SASL packets at the start; anything else switches to packets. Returns whether
    /// to go on.
    fn start(&mut self, data: &mut &[u8], out: &mut dyn FnMut(ZabEvent<'_>)) -> bool {
        if self.buf.is_empty() {
            if data.is_empty() {
                return false;
            }
            return match decode_quorum_auth(data) {
                Status::Complete((n, p)) => {
                    out(ZabEvent::Auth(p));
                    *data = &data[n..];
                    true
                }
                Status::Partial => {
                    self.buf.extend_from_slice(data);
                    *data = &[];
                    false
                }
                Status::Invalid(_) => {
                    self.state = State::Sync;
                    true
                }
            };
        }
        loop {
            match decode_quorum_auth(&self.buf) {
                Status::Complete((n, p)) => {
                    out(ZabEvent::Auth(p));
                    self.buf.drain(..n);
                    return true;
                }
                Status::Invalid(_) => {
                    self.state = State::Sync;
                    return true;
                }
                Status::Partial => {
                    let want = auth_need(&self.buf).saturating_sub(self.buf.len());
                    let take = want.max(1).min(data.len());
                    if take == 0 {
                        return false;
                    }
                    self.buf.extend_from_slice(&data[..take]);
                    *data = &data[take..];
                }
            }
        }
    }

    /// Decodes packets; returns whether to go on (false: all input used).
    fn sync(&mut self, data: &mut &[u8], out: &mut dyn FnMut(ZabEvent<'_>)) -> bool {
        if self.buf.is_empty() {
            let mut d = *data;
            loop {
                if d.is_empty() {
                    *data = d;
                    return false;
                }
                match decode_packet(d) {
                    Status::Complete((n, packet)) => {
                        let snap = packet.packet_type == PacketType::SNAP;
                        out(ZabEvent::Packet { packet, size: n });
                        d = &d[n..];
                        if snap {
                            self.state = State::Snapshot(SnapshotSkipper::new());
                            *data = d;
                            return true;
                        }
                    }
                    Status::Partial => {
                        self.buf.extend_from_slice(d);
                        *data = &[];
                        return false;
                    }
                    Status::Invalid(error) => {
                        out(ZabEvent::Invalid {
                            error,
                            head: &d[..d.len().min(HEAD)],
                        });
                        out(ZabEvent::Skipped(1));
                        self.state = State::Unsynced;
                        *data = &d[1..];
                        return true;
                    }
                }
            }
        }
        // Packets in the buffer (after a resync there may be several), then the one that
        // straddles: complete it with exactly the bytes it needs.
        let mut off = 0;
        let mut next = State::Sync;
        while let Some(rest) = self.buf.get(off..).filter(|r| !r.is_empty()) {
            match decode_packet(rest) {
                Status::Complete((n, packet)) => {
                    let snap = packet.packet_type == PacketType::SNAP;
                    out(ZabEvent::Packet { packet, size: n });
                    off += n;
                    if snap {
                        next = State::Snapshot(SnapshotSkipper::new());
                        break;
                    }
                }
                Status::Partial => break,
                Status::Invalid(error) => {
                    out(ZabEvent::Invalid {
                        error,
                        head: &rest[..rest.len().min(HEAD)],
                    });
                    out(ZabEvent::Skipped(1));
                    off += 1;
                    next = State::Unsynced;
                    break;
                }
            }
        }
        self.buf.drain(..off);
        if !matches!(next, State::Sync) {
            self.state = next;
            return true;
        }
        if self.buf.is_empty() {
            return !data.is_empty();
        }
        let want = packet_need(&self.buf).saturating_sub(self.buf.len());
        let take = want.max(1).min(data.len());
        if take == 0 {
            return false;
        }
        self.buf.extend_from_slice(&data[..take]);
        *data = &data[take..];
        true
    }

    /// Scans for the next plausible packet start; returns whether to go on.
    ///
    /// A candidate is trusted when it is whole and the packet after it (when present) is
    /// plausible too. The first trusted candidate wins, even after an incomplete one (a false
    /// length could otherwise hold the scan for a long time); with none, the scan waits at the
    /// first incomplete candidate.
    fn resync(&mut self, data: &mut &[u8], out: &mut dyn FnMut(ZabEvent<'_>)) -> bool {
        self.buf.extend_from_slice(data);
        *data = &[];
        let mut at = 0;
        let mut found = None;
        let mut wait = None;
        while self.buf.len() - at >= 16 {
            let b = &self.buf[at..];
            if plausible_packet_start(b) {
                match decode_packet(b) {
                    Status::Complete((n, p)) => {
                        let small = p.data.0.is_none_or(|d| d.len() <= RESYNC_MAX_DATA);
                        let next = &b[n..];
                        let next_ok = next.len() < 16
                            || p.packet_type == PacketType::SNAP
                            || plausible_packet_start(next);
                        if small && next_ok {
                            found = Some(at);
                            break;
                        }
                    }
                    Status::Partial => {
                        let small = i32_at(b, 12).is_some_and(|l| len_of(l) <= RESYNC_MAX_DATA);
                        if small && wait.is_none() {
                            wait = Some(at);
                        }
                    }
                    Status::Invalid(_) => {}
                }
            }
            at += 1;
        }
        let skip = found.or(wait).unwrap_or(at);
        if skip > 0 {
            self.buf.drain(..skip);
            out(ZabEvent::Skipped(skip as u64));
        }
        if found.is_some() {
            self.state = State::Sync;
            return true;
        }
        false
    }

    /// `lost` bytes of this direction are missing.
    pub(crate) fn gap(&mut self, lost: u64, out: &mut dyn FnMut(ZabEvent<'_>)) {
        match &mut self.state {
            State::Hole(rem) => {
                if lost < *rem {
                    *rem -= lost;
                    return;
                }
                if lost == *rem {
                    self.state = State::Sync;
                    return;
                }
            }
            State::Sync if self.buf.len() >= 16 => {
                if let Some((packet_type, zxid, len)) = known_len(&self.buf) {
                    let have = self.buf.len() as u64;
                    if have + lost <= len as u64 {
                        out(ZabEvent::Cut {
                            packet_type,
                            zxid,
                            len,
                        });
                        let rem = len as u64 - have - lost;
                        self.buf.clear();
                        self.state = if rem > 0 {
                            State::Hole(rem)
                        } else {
                            State::Sync
                        };
                        return;
                    }
                }
            }
            State::Snapshot(sk) => {
                out(ZabEvent::SnapshotLost {
                    bytes: sk.consumed(),
                });
            }
            _ => {}
        }
        if !self.buf.is_empty() {
            if matches!(self.state, State::Unsynced) {
                out(ZabEvent::Skipped(self.buf.len() as u64));
            } else {
                out(ZabEvent::PartialDropped {
                    bytes: self.buf.len(),
                });
            }
        }
        self.buf.clear();
        self.state = State::Unsynced;
    }

    /// End of the stream: reports what was left incomplete.
    pub(crate) fn finish(&mut self, out: &mut dyn FnMut(ZabEvent<'_>)) {
        match &self.state {
            State::Snapshot(sk) => out(ZabEvent::SnapshotLost {
                bytes: sk.consumed(),
            }),
            State::Unsynced if !self.buf.is_empty() => {
                out(ZabEvent::Skipped(self.buf.len() as u64));
            }
            _ if !self.buf.is_empty() => out(ZabEvent::PartialDropped {
                bytes: self.buf.len(),
            }),
            _ => {}
        }
        self.buf.clear();
    }
}

/// True when `buf` (the first bytes seen of one direction, not necessarily at a connection
/// start) is a run of complete quorum packets such as ZooKeeper writes: known types, zxid
/// ≥ −1, null authinfo except on REQUEST, possibly ending in an incomplete packet. Returns
/// the packet types seen (leader-only / learner-only evidence) via `seen`.
pub(crate) fn looks_like_zab_stream(buf: &[u8], seen: &mut dyn FnMut(PacketType, bool)) -> bool {
    let mut b = buf;
    let mut whole = 0;
    while b.len() >= 16 {
        if !plausible_packet_start(b) {
            return false;
        }
        match decode_packet(b) {
            Status::Complete((n, p)) => {
                if p.packet_type != PacketType::REQUEST && !p.authinfo.is_null() {
                    return false;
                }
                seen(p.packet_type, p.data.0.is_some());
                whole += 1;
                b = &b[n..];
                if p.packet_type == PacketType::SNAP {
                    break;
                }
            }
            Status::Partial => break,
            Status::Invalid(_) => return false,
        }
    }
    whole > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(ty: i32, zxid: i64, data: Option<&[u8]>) -> Vec<u8> {
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

    #[derive(Default, Debug)]
    struct Got {
        packets: Vec<(i32, i64, usize)>,
        snapshots: Vec<(u64, u64, u64)>,
        lost: u64,
        invalid: usize,
        cut: Vec<(i32, usize)>,
        skipped: u64,
        dropped: usize,
        auth: usize,
    }

    impl Got {
        fn on(&mut self, e: ZabEvent<'_>) {
            match e {
                ZabEvent::Packet { packet, size } => {
                    self.packets
                        .push((packet.packet_type.0, packet.zxid.0, size))
                }
                ZabEvent::Auth(_) => self.auth += 1,
                ZabEvent::SnapshotDone {
                    bytes,
                    sessions,
                    nodes,
                } => self.snapshots.push((bytes, sessions, nodes)),
                ZabEvent::SnapshotLost { bytes } => self.lost += bytes,
                ZabEvent::Invalid { .. } => self.invalid += 1,
                ZabEvent::Cut {
                    packet_type, len, ..
                } => self.cut.push((packet_type.0, len)),
                ZabEvent::Skipped(n) => self.skipped += n,
                ZabEvent::PartialDropped { bytes } => self.dropped += bytes,
            }
        }
    }

    /// A minimal snapshot: no sessions, no ACLs, the root node, then "/" and the signature.
    fn snapshot() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(0i32.to_be_bytes()); // sessions
        v.extend(0i32.to_be_bytes()); // acl map
        v.extend(0i32.to_be_bytes()); // path "" (root)
        v.extend((-1i32).to_be_bytes()); // data null
        v.extend([0u8; 8 + 60]); // acl ref + stat
        v.extend(1i32.to_be_bytes());
        v.push(b'/');
        v.extend(10i32.to_be_bytes());
        v.extend(b"BenWasHere");
        v
    }

    pub(super) fn stream() -> Vec<u8> {
        let mut s = packet(11, 0, Some(&[0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0]));
        s.extend(packet(17, 1 << 32, Some(&[0, 1, 0, 0])));
        s.extend(packet(15, 1 << 32, None));
        s.extend(snapshot());
        s.extend(packet(10, 1 << 32, Some(b"server.1=a:1:2\nversion=0")));
        s.extend(packet(12, -1, None));
        s.extend(packet(5, 7, None));
        s
    }

    #[test]
    fn every_split_point_gives_the_same_packets() {
        let data = stream();
        let mut whole = Got::default();
        ZabStream::new(true).push(&data, &mut |e| whole.on(e));
        assert_eq!(
            whole.packets.iter().map(|p| p.0).collect::<Vec<_>>(),
            [11, 17, 15, 10, 12, 5]
        );
        assert_eq!(whole.snapshots.len(), 1);
        for i in 0..=data.len() {
            for j in (i..=data.len()).step_by(7) {
                let mut s = ZabStream::new(true);
                let mut got = Got::default();
                for c in [&data[..i], &data[i..j], &data[j..]] {
                    s.push(c, &mut |e| got.on(e));
                }
                s.finish(&mut |e| got.on(e));
                assert_eq!(got.packets, whole.packets, "split {i},{j}");
                assert_eq!(got.snapshots, whole.snapshots);
                assert_eq!((got.invalid, got.skipped, got.dropped), (0, 0, 0));
            }
        }
        // One byte at a time.
        let mut s = ZabStream::new(true);
        let mut got = Got::default();
        for c in data.chunks(1) {
            s.push(c, &mut |e| got.on(e));
        }
        assert_eq!(got.packets, whole.packets);
    }

    #[test]
    fn mid_stream_start_resynchronises() {
        let data = stream();
        // Start inside the FOLLOWERINFO: the LEADERINFO is the first packet found.
        let mut s = ZabStream::new(false);
        let mut got = Got::default();
        s.push(&data[5..], &mut |e| got.on(e));
        assert_eq!(got.packets.first().map(|p| p.0), Some(17));
        assert_eq!(got.skipped, 32 - 5);
        assert_eq!(got.packets.len(), 6 - 1);
    }

    #[test]
    fn gap_inside_a_packet_keeps_sync() {
        let mut data = packet(2, 5, Some(&[7u8; 100]));
        data.extend(packet(4, 5, None));
        let mut s = ZabStream::new(true);
        let mut got = Got::default();
        s.push(&data[..30], &mut |e| got.on(e));
        s.gap(50, &mut |e| got.on(e));
        s.push(&data[80..], &mut |e| got.on(e));
        assert_eq!(got.cut, [(2, 120)]);
        assert_eq!(got.packets, [(4, 5, 20)]);
        assert_eq!(got.skipped, 0);
    }

    #[test]
    fn gap_at_a_boundary_resynchronises() {
        let mut data = packet(5, 1, None);
        data.extend(packet(5, 2, None));
        data.extend(packet(5, 3, None));
        let mut s = ZabStream::new(true);
        let mut got = Got::default();
        s.push(&data[..20], &mut |e| got.on(e));
        s.gap(20, &mut |e| got.on(e));
        s.push(&data[40..], &mut |e| got.on(e));
        assert_eq!(got.packets.iter().map(|p| p.1).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn garbage_is_skipped_and_counted() {
        let mut data = vec![0x7fu8; 40];
        data.extend(packet(5, 1, None));
        data.extend(packet(5, 2, None));
        let mut s = ZabStream::new(true);
        let mut got = Got::default();
        s.push(&data, &mut |e| got.on(e));
        assert_eq!(got.invalid, 1);
        assert_eq!(got.skipped, 40);
        assert_eq!(got.packets.len(), 2);
        // Pure garbage never panics and is all counted.
        let mut s = ZabStream::new(false);
        let mut got = Got::default();
        let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for c in junk.chunks(333) {
            s.push(c, &mut |e| got.on(e));
        }
        s.finish(&mut |e| got.on(e));
        assert_eq!(got.skipped as usize + got.dropped, junk.len());
    }

    #[test]
    fn auth_packets_first() {
        let mut data = zkscope_proto::election::QUORUM_AUTH_MAGIC
            .to_be_bytes()
            .to_vec();
        data.extend(1i32.to_be_bytes());
        data.extend(3i32.to_be_bytes());
        data.extend(b"abc");
        data.extend(packet(11, 0, Some(&[0, 0, 0, 0, 0, 0, 0, 2])));
        for i in 0..=data.len() {
            let mut s = ZabStream::new(true);
            let mut got = Got::default();
            s.push(&data[..i], &mut |e| got.on(e));
            s.push(&data[i..], &mut |e| got.on(e));
            assert_eq!((got.auth, got.packets.len()), (1, 1), "split {i}");
        }
    }

    #[test]
    fn stream_recognition() {
        let data = stream();
        let mut types = Vec::new();
        assert!(looks_like_zab_stream(&data[..40], &mut |t, _| types.push(t.0)));
        assert_eq!(types, [11]);
        assert!(!looks_like_zab_stream(
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            &mut |_, _| {}
        ));
        assert!(!looks_like_zab_stream(&data[..10], &mut |_, _| {}));
    }
}
