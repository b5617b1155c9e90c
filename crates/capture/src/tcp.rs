//! Flow table and per-direction TCP reassembly (sans-I/O, packet-clocked).
//!
//! [`TcpTracker::segment`] takes one parsed segment at a time and calls a
//! [`StreamHandler`] with in-order stream bytes, gaps and flow lifecycle
//! events. In-order payload is passed through as a borrowed slice; only
//! out-of-order data is copied, into a buffer bounded per direction and in
//! total. Sequence numbers are compared with signed 32-bit distances (wrap
//! safe) and mapped to 64-bit stream offsets internally.

use crate::packet::{TcpSegment, Timestamp};
use crate::pipeline::OrderClock;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Direction of a segment relative to the server side chosen by
/// [`StreamHandler::classify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Direction {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

impl Direction {
    /// The other direction.
    pub fn reverse(self) -> Direction {
        match self {
            Direction::ToServer => Direction::ToClient,
            Direction::ToClient => Direction::ToServer,
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// A connection, oriented client → server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct FlowKey {
    /// Client endpoint.
    pub client: SocketAddr,
    /// Server endpoint.
    pub server: SocketAddr,
}

/// Why a flow was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CloseReason {
    /// Both sides sent FIN.
    Fin,
    /// A RST was seen.
    Rst,
    /// No packet for [`TcpConfig::idle_timeout`] of packet time.
    Idle,
    /// Dropped to stay within [`TcpConfig::max_flows`].
    Evicted,
    /// A new SYN reused the 4-tuple of a flow that was still open.
    Reused,
    /// End of input ([`TcpTracker::finish`]).
    End,
}

/// The consumer of reassembled streams.
///
/// Calls for one flow come in order: `open`, then any mix of `data`/`gap`,
/// then exactly one `close`. All timestamps are packet times.
pub trait StreamHandler {
    /// Per-connection application state stored in the flow table.
    type Conn;
    /// A segment of a flow not yet in the table: return the direction of THIS
    /// segment (`ToServer` if `seg.dst` is the server side) or `None` to
    /// ignore it (it is asked again for the flow's next segment).
    fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction>;
    /// A new flow. `saw_syn`: the handshake was seen, so each direction's
    /// first bytes are the connection's first bytes.
    fn open(&mut self, key: &FlowKey, ts: Timestamp, saw_syn: bool) -> Self::Conn;
    /// The next contiguous bytes of one direction.
    fn data(
        &mut self,
        conn: &mut Self::Conn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        bytes: &[u8],
    );
    /// `lost` bytes of one direction that the capture missed.
    fn gap(
        &mut self,
        conn: &mut Self::Conn,
        key: &FlowKey,
        dir: Direction,
        ts: Timestamp,
        lost: u64,
    );
    /// The flow ends; all its data has been delivered.
    fn close(&mut self, conn: Self::Conn, key: &FlowKey, ts: Timestamp, reason: CloseReason);
}

/// Limits of the tracker.
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// Close flows with no packet for this long (packet time).
    pub idle_timeout: Duration,
    /// Most flows in the table; the least recently active one is evicted.
    pub max_flows: usize,
    /// Most out-of-order bytes buffered per direction.
    pub max_buffer_per_direction: usize,
    /// Most out-of-order bytes buffered over all flows.
    pub max_buffer_total: usize,
    /// Most out-of-order segments buffered per direction.
    pub max_segments_per_direction: usize,
    /// Reorder window: a hole (or data held until the peer's acknowledged bytes arrive) waits
    /// at most this long (packet time) before it is declared lost…
    pub reorder_time: Duration,
    /// …or this many packets of its flow…
    pub reorder_packets: u64,
    /// …or until this many bytes wait behind it.
    pub reorder_bytes: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            idle_timeout: Duration::from_secs(300),
            max_flows: 100_000,
            max_buffer_per_direction: 1 << 20,
            max_buffer_total: 64 << 20,
            max_segments_per_direction: 4096,
            reorder_time: Duration::from_millis(50),
            reorder_packets: 32,
            reorder_bytes: 256 << 10,
        }
    }
}

/// Counters of the tracker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TcpStats {
    /// Segments fed to [`TcpTracker::segment`].
    pub packets: u64,
    /// Captured payload bytes fed.
    pub bytes: u64,
    /// Bytes handed to [`StreamHandler::data`].
    pub bytes_delivered: u64,
    /// Segments of no tracked flow (classified away, bare ACK/FIN/RST of an
    /// unknown flow, or after close).
    pub packets_ignored: u64,
    /// Flows opened.
    pub flows_opened: u64,
    /// Flows closed for any reason (including evictions).
    pub flows_closed: u64,
    /// Open flows closed to respect `max_flows`.
    pub flows_evicted: u64,
    /// Open flows right now.
    pub flows_active: u64,
    /// Segments entirely made of already-delivered data.
    pub retransmitted_segments: u64,
    /// Already-delivered bytes dropped (full and partial overlaps).
    pub retransmitted_bytes: u64,
    /// Exact copies of the previous segment of the same direction (e.g. the
    /// second copy a `-i any` loopback capture shows); dropped.
    pub duplicate_segments: u64,
    /// Bytes of those duplicates.
    pub duplicate_bytes: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order_segments: u64,
    /// In-order segments held back because they acknowledge peer bytes not captured yet (the
    /// capture recorded the answer before what it answers); released in causal order.
    pub held_segments: u64,
    /// Holes and holds that outlived the reorder window.
    pub reorder_window_expired: u64,
    /// Gaps reported to the handler.
    pub gaps: u64,
    /// Bytes reported lost in gaps.
    pub bytes_lost: u64,
    /// Segments whose payload was cut by the snap length.
    pub truncated_packets: u64,
    /// Out-of-order bytes buffered right now.
    pub buffered_bytes: u64,
    /// Highest `buffered_bytes` seen.
    pub buffered_bytes_peak: u64,
}

impl TcpStats {
    /// Adds the counters of a tracker that saw other connections of the same capture. Peaks
    /// add up too: an upper bound of the peak of the whole.
    pub fn merge(&mut self, o: &TcpStats) {
        let TcpStats {
            packets,
            bytes,
            bytes_delivered,
            packets_ignored,
            flows_opened,
            flows_closed,
            flows_evicted,
            flows_active,
            retransmitted_segments,
            retransmitted_bytes,
            duplicate_segments,
            duplicate_bytes,
            out_of_order_segments,
            held_segments,
            reorder_window_expired,
            gaps,
            bytes_lost,
            truncated_packets,
            buffered_bytes,
            buffered_bytes_peak,
        } = o;
        self.packets += packets;
        self.bytes += bytes;
        self.bytes_delivered += bytes_delivered;
        self.packets_ignored += packets_ignored;
        self.flows_opened += flows_opened;
        self.flows_closed += flows_closed;
        self.flows_evicted += flows_evicted;
        self.flows_active += flows_active;
        self.retransmitted_segments += retransmitted_segments;
        self.retransmitted_bytes += retransmitted_bytes;
        self.duplicate_segments += duplicate_segments;
        self.duplicate_bytes += duplicate_bytes;
        self.out_of_order_segments += out_of_order_segments;
        self.held_segments += held_segments;
        self.reorder_window_expired += reorder_window_expired;
        self.gaps += gaps;
        self.bytes_lost += bytes_lost;
        self.truncated_packets += truncated_packets;
        self.buffered_bytes += buffered_bytes;
        self.buffered_bytes_peak += buffered_bytes_peak;
    }
}

// ---------------------------------------------------------------------------
// Reassembly of one direction.

/// Receiver of one direction's output.
trait Out {
    /// Bytes captured at `ts`.
    fn data(&mut self, ts: Timestamp, b: &[u8]);
    fn gap(&mut self, n: u64);
}

enum Chunk {
    /// Bytes, their capture time (delivered late, they keep it) and the peer stream offset
    /// they wait for (0: none): they answer peer bytes not captured yet.
    Data(Box<[u8]>, Timestamp, u64),
    /// Known-lost range (payload cut by the snap length).
    Lost(u64),
}

impl Chunk {
    fn len(&self) -> u64 {
        match self {
            Chunk::Data(d, _, _) => d.len() as u64,
            Chunk::Lost(n) => *n,
        }
    }
    fn mem(&self) -> usize {
        match self {
            Chunk::Data(d, _, _) => d.len(),
            Chunk::Lost(_) => 0,
        }
    }
}

#[derive(Clone, Copy)]
struct Limits {
    per_dir: usize,
    total: usize,
    chunks: usize,
    reorder_time: i64,
    reorder_packets: u64,
    reorder_bytes: usize,
}

struct Cx<'a> {
    stats: &'a mut TcpStats,
    limits: Limits,
    /// The peer's delivered offset, for chunks waiting on it.
    peer_next: u64,
}

/// Reassembly state of one direction.
#[derive(Default)]
struct Half {
    synced: bool,
    isn: Option<u32>,
    /// Sequence number of stream offset `next_off`.
    next_seq: u32,
    /// Stream offset of the next byte to deliver.
    next_off: u64,
    /// Stream offset of the FIN.
    fin_off: Option<u64>,
    /// Highest offset the peer acknowledged.
    acked_off: u64,
    /// Out-of-order data by stream offset; non-overlapping, all > next_off except held data.
    ooo: BTreeMap<u64, Chunk>,
    buffered: usize,
    /// (seq, len) of the previous segment with data, for exact duplicates.
    last: Option<(u32, u64)>,
    /// The data at `next_off` is buffered, waiting for the peer bytes it acknowledges.
    held: bool,
    /// Since when (packet time, flow packet count) a hole or a hold has been waiting.
    wait: Option<(Timestamp, u64)>,
}

impl Half {
    fn sync(&mut self, next_seq: u32) {
        self.synced = true;
        self.next_seq = next_seq;
        self.next_off = 0;
    }

    fn offset_of(&self, seq: u32) -> i64 {
        self.next_off as i64 + i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    fn advance_to(&mut self, off: u64) {
        // Sequence space is mod 2^32, so truncating the distance is exact.
        self.next_seq = self.next_seq.wrapping_add((off - self.next_off) as u32);
        self.next_off = off;
    }

    fn emit_gap(&mut self, n: u64, cx: &mut Cx<'_>, out: &mut impl Out) {
        if n > 0 {
            cx.stats.gaps += 1;
            cx.stats.bytes_lost += n;
            out.gap(n);
            self.advance_to(self.next_off + n);
        }
    }

    fn emit_data(&mut self, ts: Timestamp, b: &[u8], cx: &mut Cx<'_>, out: &mut impl Out) {
        if !b.is_empty() {
            cx.stats.bytes_delivered += b.len() as u64;
            out.data(ts, b);
            self.advance_to(self.next_off + b.len() as u64);
        }
    }

    /// Pop the first buffered chunk if it starts at or before `next_off` and
    /// deliver its part beyond `next_off`. Returns false if there is none, or if it
    /// waits for peer bytes not delivered yet (unless `force`); `held` tells which.
    fn pop_ready(&mut self, force: bool, cx: &mut Cx<'_>, out: &mut impl Out) -> bool {
        match self.ooo.first_key_value() {
            Some((&k, c)) if k <= self.next_off => {
                if let Chunk::Data(_, _, need) = c {
                    if *need > cx.peer_next && !force {
                        self.held = true;
                        return false;
                    }
                }
            }
            _ => {
                self.held = false;
                return false;
            }
        }
        self.held = false;
        let Some((k, chunk)) = self.ooo.pop_first() else {
            return false;
        };
        self.buffered -= chunk.mem();
        cx.stats.buffered_bytes -= chunk.mem() as u64;
        let skip = self.next_off - k;
        match chunk {
            Chunk::Data(d, ts, _) => {
                let s = usize::try_from(skip).unwrap_or(usize::MAX);
                self.emit_data(ts, d.get(s..).unwrap_or(&[]), cx, out);
            }
            Chunk::Lost(n) => self.emit_gap(n.saturating_sub(skip), cx, out),
        }
        true
    }

    fn release_contiguous(&mut self, cx: &mut Cx<'_>, out: &mut impl Out) {
        while self.pop_ready(false, cx, out) {}
    }

    /// Deliver the first chunk even if it waits for the peer, then what follows it.
    fn release_forced(&mut self, cx: &mut Cx<'_>, out: &mut impl Out) {
        self.pop_ready(true, cx, out);
        self.release_contiguous(cx, out);
    }

    /// Declare everything up to `target` delivered-or-lost: buffered data in
    /// between is delivered, holes become gaps; then release what follows.
    fn skip_to(&mut self, target: u64, cx: &mut Cx<'_>, out: &mut impl Out) {
        while self.next_off < target {
            if self.pop_ready(true, cx, out) {
                continue;
            }
            let upto = match self.ooo.first_key_value() {
                Some((&k, _)) => k.min(target),
                None => target,
            };
            self.emit_gap(upto - self.next_off, cx, out);
        }
        self.release_contiguous(cx, out);
    }

    /// End of stream: deliver everything buffered, gaps for the holes (and up
    /// to the FIN).
    fn drain(&mut self, cx: &mut Cx<'_>, out: &mut impl Out) {
        let last = self.ooo.last_key_value().map_or(0, |(k, c)| k + c.len());
        let target = last.max(self.fin_off.unwrap_or(0));
        self.skip_to(target, cx, out);
    }

    /// The peer acknowledged `ack`: remember how far (a hole before it, once the reorder
    /// window has passed, is lost up to there).
    fn on_peer_ack(&mut self, ack: u32) {
        if let Some(off) = self.acked(ack) {
            self.acked_off = self.acked_off.max(off);
        }
    }

    /// The stream offset `ack` acknowledges, if beyond what was delivered.
    fn acked(&self, ack: u32) -> Option<u64> {
        if !self.synced {
            return None;
        }
        let rel = ack.wrapping_sub(self.next_seq) as i32;
        if rel <= 0 {
            return None;
        }
        let mut off = self.next_off + rel as u64;
        if let Some(f) = self.fin_off {
            off = off.min(f);
        }
        (off > self.next_off).then_some(off)
    }

    /// Where the peer's segment acknowledging `ack` says this stream has data not yet
    /// delivered: the offset to wait for before delivering the peer's data (one byte short of
    /// the acknowledgement, which may cover a FIN not captured yet).
    fn behind(&self, ack: u32) -> Option<u64> {
        let off = self.acked(ack)?.checked_sub(1)?;
        (off > self.next_off).then_some(off)
    }

    fn waiting(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// The reorder window is over: give up the first hole, and the next ones up to what the
    /// peer acknowledged, delivering what lies between (unless it waits for the peer).
    fn expire_hole(&mut self, cx: &mut Cx<'_>, out: &mut impl Out) {
        let Some((&first, _)) = self.ooo.first_key_value() else {
            return;
        };
        let end = self.ooo.last_key_value().map_or(0, |(k, c)| k + c.len());
        let limit = first.max(self.acked_off.min(end));
        while let Some((&k, _)) = self.ooo.first_key_value() {
            if k <= self.next_off || k > limit {
                break;
            }
            self.emit_gap(k - self.next_off, cx, out);
            self.release_contiguous(cx, out);
            if self.held {
                break;
            }
        }
    }

    /// A segment: payload at `seq`, followed by `missing` uncaptured bytes.
    #[allow(clippy::too_many_arguments)]
    fn on_segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        ts: Timestamp,
        need: u64,
        cx: &mut Cx<'_>,
        out: &mut impl Out,
    ) {
        let len = payload.len() as u64 + u64::from(missing);
        if !self.synced {
            if len == 0 && !fin {
                return;
            }
            self.sync(seq); // mid-stream start
        }
        if len > 0 {
            if self.last == Some((seq, len)) {
                cx.stats.duplicate_segments += 1;
                cx.stats.duplicate_bytes += len;
                return;
            }
            self.last = Some((seq, len));
        }
        let start = self.offset_of(seq);
        let mut end = start + len as i64;
        if fin && self.fin_off.is_none() && end >= self.next_off as i64 {
            // A FIN before data already buffered would be inconsistent; keep
            // the buffered data in that case.
            let buffered_end = self.ooo.last_key_value().map_or(0, |(k, c)| k + c.len());
            if end as u64 >= buffered_end {
                self.fin_off = Some(end as u64);
            }
        }
        if len == 0 {
            return;
        }
        if let Some(f) = self.fin_off {
            end = end.min(f as i64);
            if end <= start {
                // Entirely beyond the FIN: junk, count it with retransmissions.
                cx.stats.retransmitted_segments += 1;
                cx.stats.retransmitted_bytes += len;
                return;
            }
        }
        let next = self.next_off as i64;
        let old = (next.min(end) - start).max(0) as u64;
        if end <= next {
            cx.stats.retransmitted_segments += 1;
            cx.stats.retransmitted_bytes += old;
            return;
        }
        cx.stats.retransmitted_bytes += old;
        // From here start < end, end > next_off >= 0.
        if (self.held || need > cx.peer_next) && start <= next {
            // In order but held: it answers peer bytes not captured yet, or follows data that
            // does.
            let skip = usize::try_from(next - start).unwrap_or(usize::MAX);
            let rest = payload.get(skip..).unwrap_or(&[]);
            if self.try_buffer(next as u64, end as u64, rest, ts, need, cx) {
                cx.stats.held_segments += 1;
                self.held = true;
                return;
            }
            // Over a memory limit: deliver now, order with the peer is lost.
            self.release_forced(cx, out);
        }
        if start > next {
            if self.held {
                cx.stats.held_segments += 1;
            } else {
                cx.stats.out_of_order_segments += 1;
            }
            let s = start as u64;
            if s > self.next_off {
                if self.try_buffer(s, end as u64, payload, ts, need, cx) {
                    return;
                }
                // Over a limit: give up holes, oldest first, until it fits.
                while s > self.next_off {
                    let Some((&k, _)) = self.ooo.first_key_value() else {
                        break;
                    };
                    self.skip_to(k.min(s), cx, out);
                    if s > self.next_off && self.try_buffer(s, end as u64, payload, ts, need, cx) {
                        return;
                    }
                }
                // Buffer empty and it still does not fit: deliver it directly.
                self.skip_to(s, cx, out);
            }
        }
        if (end as u64) > self.next_off {
            self.deliver_in_order(start, payload, end as u64, ts, cx, out);
        }
    }

    /// Deliver a segment starting at or before `next_off`, merging buffered
    /// chunks it overlaps (the first copy of a byte wins).
    fn deliver_in_order(
        &mut self,
        start: i64,
        payload: &[u8],
        end: u64,
        ts: Timestamp,
        cx: &mut Cx<'_>,
        out: &mut impl Out,
    ) {
        let data_end = start + payload.len() as i64;
        if self.ooo.is_empty()
            && !self.held
            && start == self.next_off as i64
            && end == data_end as u64
        {
            // The common case: exactly the next bytes, nothing buffered.
            self.emit_data(ts, payload, cx, out);
            return;
        }
        let next0 = self.next_off;
        let mut used = 0u64;
        loop {
            if self.pop_ready(false, cx, out) {
                continue;
            }
            let cur = self.next_off;
            if cur >= end {
                break;
            }
            if self.held {
                // A buffered chunk here waits for the peer: the rest of this segment waits
                // behind it (or, over a memory limit, everything goes now).
                let skip = usize::try_from(cur as i64 - start).unwrap_or(usize::MAX);
                let rest = payload.get(skip..).unwrap_or(&[]);
                if self.try_buffer(cur, end, rest, ts, 0, cx) {
                    used += end - cur;
                    break;
                }
                self.release_forced(cx, out);
                continue;
            }
            let lim = match self.ooo.first_key_value() {
                Some((&k, _)) => k.min(end),
                None => end,
            };
            let (c, l) = (cur as i64, lim as i64);
            if c < data_end {
                let a = (c - start) as usize;
                let b = (l.min(data_end) - start) as usize;
                match payload.get(a..b) {
                    Some(bytes) => self.emit_data(ts, bytes, cx, out),
                    None => break, // unreachable: a <= b <= payload.len()
                }
            }
            let lost_from = self.next_off.max(data_end.max(0) as u64);
            if lim > lost_from {
                self.emit_gap(lim - lost_from, cx, out);
            }
            if self.next_off == cur {
                break; // no progress (cannot happen); never spin
            }
            used += self.next_off - cur;
        }
        // Bytes of this segment already buffered (the buffered copy won).
        cx.stats.retransmitted_bytes += end.saturating_sub(next0).saturating_sub(used);
        self.release_contiguous(cx, out);
    }

    /// Buffer the parts of `[s, e)` not yet buffered, if the limits allow.
    #[allow(clippy::too_many_arguments)]
    fn try_buffer(
        &mut self,
        s: u64,
        e: u64,
        payload: &[u8],
        ts: Timestamp,
        need: u64,
        cx: &mut Cx<'_>,
    ) -> bool {
        // Uncovered sub-ranges of [s, e).
        let mut pieces: Vec<(u64, u64)> = Vec::new();
        let mut cur = s;
        if let Some((&k, c)) = self.ooo.range(..s).next_back() {
            cur = cur.max(k + c.len());
        }
        for (&k, c) in self.ooo.range(s..e) {
            if k > cur {
                pieces.push((cur, k));
            }
            cur = cur.max(k + c.len());
        }
        if cur < e {
            pieces.push((cur, e));
        }
        let data_end = s + payload.len() as u64;
        let mem: u64 = pieces
            .iter()
            .map(|&(a, b)| b.min(data_end).saturating_sub(a))
            .sum();
        let mem = usize::try_from(mem).unwrap_or(usize::MAX);
        if self.buffered.saturating_add(mem) > cx.limits.per_dir
            || (cx.stats.buffered_bytes as usize).saturating_add(mem) > cx.limits.total
            || self.ooo.len() + 2 * pieces.len() > cx.limits.chunks
        {
            return false;
        }
        cx.stats.retransmitted_bytes += (e - s) - pieces.iter().map(|(a, b)| b - a).sum::<u64>();
        for (a, b) in pieces {
            if a < data_end {
                let d = b.min(data_end);
                let bytes = payload
                    .get((a - s) as usize..(d - s) as usize)
                    .unwrap_or(&[]);
                self.ooo.insert(a, Chunk::Data(bytes.into(), ts, need));
            }
            if b > data_end {
                let from = a.max(data_end);
                self.ooo.insert(from, Chunk::Lost(b - from));
            }
        }
        self.buffered += mem;
        cx.stats.buffered_bytes += mem as u64;
        cx.stats.buffered_bytes_peak = cx.stats.buffered_bytes_peak.max(cx.stats.buffered_bytes);
        true
    }
}

/// After a segment of a flow (or a clock tick): release held data whose peer bytes arrived,
/// and give up holes and holds older than the reorder window. `out` may point at either
/// direction; it is turned as needed.
#[inline]
fn settle<O: Out + Turn>(
    halves: &mut [Half; 2],
    pkts: u64,
    now: Timestamp,
    cx: &mut Cx<'_>,
    out: &mut O,
) {
    if !halves[0].waiting() && !halves[1].waiting() {
        // The in-order fast path; a window that ended (its hole filled) is forgotten.
        halves[0].wait = None;
        halves[1].wait = None;
        return;
    }
    settle_waiting(halves, pkts, now, cx, out);
}

/// [`settle`] when data waits.
fn settle_waiting<O: Out + Turn>(
    halves: &mut [Half; 2],
    pkts: u64,
    now: Timestamp,
    cx: &mut Cx<'_>,
    out: &mut O,
) {
    release_held(halves, cx, out);
    let mut expired_any = false;
    for dir in [Direction::ToServer, Direction::ToClient] {
        let peer = &halves[dir.reverse().idx()];
        let peer_next = peer.next_off;
        // Held data waiting for a peer that has a hole is released by that hole's own
        // window (its bytes may still come); only data waiting on nothing is forced out.
        let peer_hole = peer.waiting() && !peer.held;
        let this = &mut halves[dir.idx()];
        if !this.waiting() {
            this.wait = None;
            continue;
        }
        if this.held && peer_hole {
            continue;
        }
        let (t0, p0) = *this.wait.get_or_insert((now, pkts));
        let expired = now.0.saturating_sub(t0.0) > cx.limits.reorder_time
            || pkts.saturating_sub(p0) >= cx.limits.reorder_packets
            || this.buffered > cx.limits.reorder_bytes;
        if !expired {
            continue;
        }
        expired_any = true;
        cx.stats.reorder_window_expired += 1;
        cx.peer_next = peer_next;
        out.turn(dir);
        if this.held {
            // What it waited for was not captured: deliver it anyway. The peer's missing
            // bytes become a gap when its next data shows the hole.
            this.release_forced(cx, out);
        } else {
            this.expire_hole(cx, out);
        }
        this.wait = this.waiting().then_some((now, pkts));
    }
    if expired_any {
        release_held(halves, cx, out);
    }
}

/// Releases held data whose peer bytes have been delivered; a release on one side can let
/// the other go, in a chain as long as the data answers each other.
fn release_held<O: Out + Turn>(halves: &mut [Half; 2], cx: &mut Cx<'_>, out: &mut O) {
    loop {
        let mut progress = false;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let peer_next = halves[dir.reverse().idx()].next_off;
            let this = &mut halves[dir.idx()];
            if this.held {
                let before = this.next_off;
                cx.peer_next = peer_next;
                out.turn(dir);
                this.release_contiguous(cx, out);
                progress |= this.next_off != before;
                if !this.waiting() {
                    this.wait = None;
                }
            }
        }
        if !progress {
            return;
        }
    }
}

/// The flow ends: deliver everything buffered, each message after what it answers as far
/// as the holes allow (holes become gaps, first the ones nothing waits behind).
fn flush<O: Out + Turn>(halves: &mut [Half; 2], cx: &mut Cx<'_>, out: &mut O) {
    loop {
        release_held(halves, cx, out);
        if !halves[0].waiting() && !halves[1].waiting() {
            return;
        }
        let dirs = [Direction::ToServer, Direction::ToClient];
        // A hole first (the data behind it may be what the other side waits for), else
        // the held data whose peer cannot move.
        let Some(dir) = dirs
            .into_iter()
            .find(|d| halves[d.idx()].waiting() && !halves[d.idx()].held)
            .or_else(|| dirs.into_iter().find(|d| halves[d.idx()].held))
        else {
            return;
        };
        cx.peer_next = halves[dir.reverse().idx()].next_off;
        out.turn(dir);
        let this = &mut halves[dir.idx()];
        if this.held {
            this.release_forced(cx, out);
        } else if let Some((&k, _)) = this.ooo.first_key_value() {
            let n = k.saturating_sub(this.next_off);
            this.emit_gap(n, cx, out);
            this.release_contiguous(cx, out);
        }
    }
}

/// An [`Out`] whose direction can be changed.
trait Turn {
    fn turn(&mut self, dir: Direction);
}

impl<H: StreamHandler> Turn for Emit<'_, H> {
    fn turn(&mut self, dir: Direction) {
        self.dir = dir;
    }
}

// ---------------------------------------------------------------------------
// Flow table.

/// Canonical (direction-independent) 4-tuple.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowId {
    a: u128,
    b: u128,
    /// a_port << 16 | b_port, bit 32 = IPv6.
    meta: u64,
}

fn ip_bits(ip: IpAddr) -> (u128, bool) {
    match ip {
        IpAddr::V4(v) => (u128::from(u32::from(v)), false),
        IpAddr::V6(v) => (u128::from(v), true),
    }
}

impl FlowId {
    /// The id and whether `src` is the `a` endpoint.
    fn new(src: SocketAddr, dst: SocketAddr) -> (FlowId, bool) {
        let (s, v6) = ip_bits(src.ip());
        let (d, _) = ip_bits(dst.ip());
        let s = (s, src.port());
        let d = (d, dst.port());
        let src_is_a = s <= d;
        let (a, b) = if src_is_a { (s, d) } else { (d, s) };
        let meta = (u64::from(a.1) << 16) | u64::from(b.1) | (u64::from(v6) << 32);
        (
            FlowId {
                a: a.0,
                b: b.0,
                meta,
            },
            src_is_a,
        )
    }
}

impl Hash for FlowId {
    fn hash<S: Hasher>(&self, h: &mut S) {
        h.write_u64(self.a as u64 ^ (self.b as u64).rotate_left(32));
        h.write_u64((self.a >> 64) as u64 ^ ((self.b >> 64) as u64).rotate_left(17));
        h.write_u64(self.meta);
    }
}

/// Seeded multiply-fold hasher for [`FlowId`] (a few ns per key).
#[derive(Clone)]
struct FlowHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = fold(self.0 ^ v, K);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone)]
struct FlowHasherBuilder(u64);

impl FlowHasherBuilder {
    fn new() -> Self {
        // A per-process random seed makes collisions hard to precompute.
        FlowHasherBuilder(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for FlowHasherBuilder {
    type Hasher = FlowHasher;
    fn build_hasher(&self) -> FlowHasher {
        FlowHasher(self.0)
    }
}

const NIL: u32 = u32::MAX;

struct Flow<C> {
    id: FlowId,
    key: FlowKey,
    /// The client is the `a` endpoint of `id`.
    client_is_a: bool,
    /// `None` once closed (the entry lingers to absorb late packets). Boxed: a handler's
    /// connection state is large, and closed entries (up to `max_flows`) should not be.
    conn: Option<Box<C>>,
    halves: [Half; 2],
    /// Segments of this flow so far (the reorder window's packet clock).
    pkts: u64,
    last_seen: Timestamp,
    /// Position of its last packet in the whole capture, when an [`OrderClock`] is set.
    touched: u64,
    prev: u32,
    next: u32,
}

/// Sink of one direction of one flow.
struct Emit<'x, H: StreamHandler> {
    h: &'x mut H,
    conn: &'x mut H::Conn,
    key: &'x FlowKey,
    dir: Direction,
    ts: Timestamp,
}

impl<H: StreamHandler> Out for Emit<'_, H> {
    fn data(&mut self, ts: Timestamp, b: &[u8]) {
        self.h.data(self.conn, self.key, self.dir, ts, b);
    }
    fn gap(&mut self, n: u64) {
        self.h.gap(self.conn, self.key, self.dir, self.ts, n);
    }
}

/// Packet time between two idle checks of a tracker.
const IDLE_CHECK_NS: i64 = 1_000_000_000;

/// When a tracker fed every packet of a capture runs its once-a-second check: the packets where
/// [`IdleClock::tick`] returns true. A reader that deals packets to several trackers advances
/// all of them at those packets.
#[derive(Debug, Clone)]
pub struct IdleClock {
    now: i64,
    next: i64,
}

impl Default for IdleClock {
    fn default() -> Self {
        IdleClock {
            now: i64::MIN,
            next: i64::MIN,
        }
    }
}

impl IdleClock {
    /// The capture time of the next packet; returns the tracker's clock (the latest time
    /// seen) and whether a whole-capture tracker checks its flows at this packet.
    #[inline]
    pub fn tick(&mut self, ts: Timestamp) -> (Timestamp, bool) {
        self.now = self.now.max(ts.0);
        if self.now >= self.next {
            self.next = self.now.saturating_add(IDLE_CHECK_NS);
            return (Timestamp(self.now), true);
        }
        (Timestamp(self.now), false)
    }

    /// The latest time seen.
    #[inline]
    fn now(&self) -> Timestamp {
        Timestamp(self.now)
    }
}

/// Flow table + reassembly. See the module docs.
pub struct TcpTracker<H: StreamHandler> {
    cfg: TcpConfig,
    lim: Limits,
    map: HashMap<FlowId, u32, FlowHasherBuilder>,
    slots: Vec<Option<Flow<H::Conn>>>,
    free: Vec<u32>,
    /// Most recently active.
    head: u32,
    /// Least recently active.
    tail: u32,
    stats: TcpStats,
    /// The tracker's clock and its once-a-second check: the very clock a reader dealing
    /// packets to several trackers keeps, so that they check where this one would.
    clock: IdleClock,
    order: Option<Arc<OrderClock>>,
    /// Slot of the flow of the previous segment.
    last: Option<u32>,
}

impl<H: StreamHandler> TcpTracker<H> {
    /// An empty tracker.
    pub fn new(cfg: TcpConfig) -> Self {
        // Worked out once: the tracker's configuration never changes.
        let lim = Limits {
            per_dir: cfg.max_buffer_per_direction,
            total: cfg.max_buffer_total,
            chunks: cfg.max_segments_per_direction.max(2),
            reorder_time: i64::try_from(cfg.reorder_time.as_nanos()).unwrap_or(i64::MAX),
            reorder_packets: cfg.reorder_packets,
            reorder_bytes: cfg.reorder_bytes,
        };
        TcpTracker {
            cfg,
            lim,
            map: HashMap::with_hasher(FlowHasherBuilder::new()),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            stats: TcpStats::default(),
            clock: IdleClock::default(),
            order: None,
            last: None,
        }
    }

    /// Tells `clock` which flow the events of the once-a-second check and of
    /// [`TcpTracker::finish`] come from (for a tracker that sees one shard of a capture).
    pub fn set_order_clock(&mut self, clock: Arc<OrderClock>) {
        self.order = Some(clock);
    }

    /// Counters so far.
    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    /// Entries in the flow table (open flows plus recently closed ones).
    pub fn flow_count(&self) -> usize {
        self.map.len()
    }

    /// Configuration in use.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    fn limits(&self) -> Limits {
        self.lim
    }

    /// Feed one segment captured at `ts`.
    pub fn segment(&mut self, h: &mut H, ts: Timestamp, seg: &TcpSegment<'_>) {
        self.stats.packets += 1;
        self.stats.bytes += seg.payload.len() as u64;
        if seg.missing > 0 {
            self.stats.truncated_packets += 1;
        }
        self.advance(h, ts);
        let (id, src_is_a) = FlowId::new(seg.src, seg.dst);
        let syn_only = seg.flags.syn && !seg.flags.ack;
        // Consecutive packets are often of one flow: its slot is checked before the table.
        let last = self.last.filter(|&i| {
            self.slots
                .get(i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|f| f.id == id)
        });
        let idx = match last.or_else(|| self.map.get(&id).copied()) {
            Some(i) => {
                let Some(f) = self.slots.get(i as usize).and_then(Option::as_ref) else {
                    return;
                };
                if f.conn.is_none() {
                    if !syn_only {
                        self.stats.packets_ignored += 1;
                        return;
                    }
                    self.remove(h, i, CloseReason::Reused);
                    match self.create(h, ts, seg, id, src_is_a) {
                        Some(i) => i,
                        None => return,
                    }
                } else if syn_only && self.is_new_syn(f, src_is_a, seg.seq) {
                    // Port reuse while the old flow was still open.
                    self.remove(h, i, CloseReason::Reused);
                    match self.create(h, ts, seg, id, src_is_a) {
                        Some(i) => i,
                        None => return,
                    }
                } else {
                    i
                }
            }
            None => match self.create(h, ts, seg, id, src_is_a) {
                Some(i) => i,
                None => return,
            },
        };
        self.last = Some(idx);
        self.touch(idx, ts);
        self.process(h, idx, ts, seg, src_is_a);
    }

    /// Moves the tracker's clock to `ts` (never back) and, once a second of packet time,
    /// closes idle flows and runs every flow's reorder window. [`TcpTracker::segment`] does it
    /// for each packet; a tracker that sees only some of a capture's packets (one shard of
    /// its connections) is advanced with the time of every packet, or at least of those where
    /// the whole-capture tracker's check falls ([`IdleClock`]), to behave exactly like it.
    #[inline]
    pub fn advance(&mut self, h: &mut H, ts: Timestamp) {
        if self.clock.tick(ts).1 {
            self.check_flows(h);
        }
    }

    #[inline(never)]
    fn check_flows(&mut self, h: &mut H) {
        self.expire_idle(h);
        self.settle_all(h);
    }

    fn is_new_syn(&self, f: &Flow<H::Conn>, src_is_a: bool, seq: u32) -> bool {
        let dir = if src_is_a == f.client_is_a {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let half = &f.halves[dir.idx()];
        half.isn != Some(seq) && (half.synced || half.isn.is_some())
    }

    /// Open a flow for a segment with no table entry, if it deserves one.
    fn create(
        &mut self,
        h: &mut H,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
        id: FlowId,
        src_is_a: bool,
    ) -> Option<u32> {
        if !seg.flags.syn && seg.payload.is_empty() && seg.missing == 0 {
            self.stats.packets_ignored += 1;
            return None;
        }
        let Some(dir) = h.classify(seg) else {
            self.stats.packets_ignored += 1;
            return None;
        };
        let key = match dir {
            Direction::ToServer => FlowKey {
                client: seg.src,
                server: seg.dst,
            },
            Direction::ToClient => FlowKey {
                client: seg.dst,
                server: seg.src,
            },
        };
        let cap = self.cfg.max_flows.max(1);
        while self.map.len() >= cap && self.tail != NIL {
            let t = self.tail;
            self.remove(h, t, CloseReason::Evicted);
        }
        let conn = h.open(&key, ts, seg.flags.syn);
        self.stats.flows_opened += 1;
        self.stats.flows_active += 1;
        let flow = Flow {
            id,
            key,
            client_is_a: (dir == Direction::ToServer) == src_is_a,
            conn: Some(Box::new(conn)),
            halves: [Half::default(), Half::default()],
            pkts: 0,
            last_seen: ts,
            touched: 0,
            prev: NIL,
            next: NIL,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    *slot = Some(flow);
                }
                i
            }
            None => {
                self.slots.push(Some(flow));
                u32::try_from(self.slots.len() - 1).unwrap_or(NIL)
            }
        };
        self.map.insert(id, idx);
        self.link_front(idx);
        Some(idx)
    }

    fn process(
        &mut self,
        h: &mut H,
        idx: u32,
        ts: Timestamp,
        seg: &TcpSegment<'_>,
        src_is_a: bool,
    ) {
        let limits = self.limits();
        let Some(flow) = self.slots.get_mut(idx as usize).and_then(Option::as_mut) else {
            return;
        };
        let dir = if src_is_a == flow.client_is_a {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        flow.pkts += 1;
        let Flow {
            key,
            conn,
            halves,
            pkts,
            ..
        } = flow;
        let Some(conn) = conn.as_mut() else {
            self.stats.packets_ignored += 1;
            return;
        };
        let mut cx = Cx {
            stats: &mut self.stats,
            limits,
            peer_next: u64::MAX,
        };
        let [to_server, to_client] = halves;
        let (this, other) = match dir {
            Direction::ToServer => (to_server, to_client),
            Direction::ToClient => (to_client, to_server),
        };
        let mut seq = seg.seq;
        if seg.flags.syn {
            if this.isn.is_none() && !this.synced {
                this.isn = Some(seg.seq);
                this.sync(seg.seq.wrapping_add(1));
            }
            if seg.flags.ack && !other.synced {
                // SYN-ACK acknowledges the client's ISN + 1.
                other.isn = Some(seg.ack.wrapping_sub(1));
                other.sync(seg.ack);
            }
            seq = seq.wrapping_add(1);
        }
        // A segment that answers peer bytes not captured yet (captures on `any` or on
        // multi-queue NICs can record the answer first) waits until they arrive.
        let need = if seg.flags.ack {
            other.behind(seg.ack).unwrap_or(0)
        } else {
            0
        };
        cx.peer_next = other.next_off;
        let mut out = Emit {
            h: &mut *h,
            conn: &mut *conn,
            key: &*key,
            dir,
            ts,
        };
        this.on_segment(
            seq,
            seg.payload,
            seg.missing,
            seg.flags.fin,
            ts,
            need,
            &mut cx,
            &mut out,
        );
        if seg.flags.ack {
            other.on_peer_ack(seg.ack);
        }
        let fins = this.fin_off.is_some() && other.fin_off.is_some();
        settle(halves, *pkts, self.clock.now(), &mut cx, &mut out);
        let reason = if seg.flags.rst {
            Some(CloseReason::Rst)
        } else if fins {
            Some(CloseReason::Fin)
        } else {
            None
        };
        if let Some(r) = reason {
            self.close(h, idx, r);
        }
    }

    /// Deliver what is left and hand the connection to `close`; the entry stays
    /// (closed) until it idles out, is evicted, or a new SYN reuses it.
    fn close(&mut self, h: &mut H, idx: u32, reason: CloseReason) {
        let limits = self.limits();
        let ts = self.clock.now();
        let Some(flow) = self.slots.get_mut(idx as usize).and_then(Option::as_mut) else {
            return;
        };
        let Some(mut conn) = flow.conn.take() else {
            return;
        };
        let mut cx = Cx {
            stats: &mut self.stats,
            limits,
            peer_next: u64::MAX,
        };
        {
            let mut out = Emit {
                h: &mut *h,
                conn: &mut conn,
                key: &flow.key,
                dir: Direction::ToServer,
                ts,
            };
            flush(&mut flow.halves, &mut cx, &mut out);
        }
        for half in &mut flow.halves {
            half.wait = None;
        }
        cx.peer_next = u64::MAX;
        for dir in [Direction::ToServer, Direction::ToClient] {
            let mut out = Emit {
                h: &mut *h,
                conn: &mut conn,
                key: &flow.key,
                dir,
                ts,
            };
            flow.halves[dir.idx()].drain(&mut cx, &mut out);
        }
        // Release any buffer left (data beyond a FIN).
        for half in &mut flow.halves {
            cx.stats.buffered_bytes -= half.buffered as u64;
            half.buffered = 0;
            half.ooo.clear();
        }
        self.stats.flows_closed += 1;
        self.stats.flows_active -= 1;
        if reason == CloseReason::Evicted {
            self.stats.flows_evicted += 1;
        }
        h.close(*conn, &flow.key, ts, reason);
    }

    /// Close (if still open) and drop the entry.
    fn remove(&mut self, h: &mut H, idx: u32, reason: CloseReason) {
        self.close(h, idx, reason);
        self.unlink(idx);
        if let Some(flow) = self.slots.get_mut(idx as usize).and_then(Option::take) {
            self.map.remove(&flow.id);
            self.free.push(idx);
        }
    }

    fn expire_idle(&mut self, h: &mut H) {
        let limit =
            self.clock.now().0.saturating_sub(
                i64::try_from(self.cfg.idle_timeout.as_nanos()).unwrap_or(i64::MAX),
            );
        while self.tail != NIL {
            let t = self.tail;
            let (seen, touched) = match self.slots.get(t as usize).and_then(Option::as_ref) {
                Some(f) => (f.last_seen, f.touched),
                None => break,
            };
            if seen.0 > limit {
                break;
            }
            if let Some(o) = &self.order {
                o.set_flow(OrderClock::CLOSING | touched);
            }
            self.remove(h, t, CloseReason::Idle);
        }
    }

    /// Runs the reorder window of every flow with data waiting, so that a quiet flow's
    /// held data goes out on the clock of the others.
    fn settle_all(&mut self, h: &mut H) {
        let limits = self.limits();
        let now = self.clock.now();
        for flow in self.slots.iter_mut().flatten() {
            if !flow.halves.iter().any(Half::waiting) {
                continue;
            }
            let Some(conn) = flow.conn.as_mut() else {
                continue;
            };
            if let Some(o) = &self.order {
                o.set_flow(OrderClock::SETTLING | flow.touched);
            }
            let mut cx = Cx {
                stats: &mut self.stats,
                limits,
                peer_next: u64::MAX,
            };
            let mut out = Emit {
                h: &mut *h,
                conn,
                key: &flow.key,
                dir: Direction::ToServer,
                ts: now,
            };
            settle(&mut flow.halves, flow.pkts, now, &mut cx, &mut out);
        }
    }

    /// End of input: deliver buffered data (gaps for holes) and close every
    /// open flow with [`CloseReason::End`]; the table is emptied.
    pub fn finish(&mut self, h: &mut H, ts: Timestamp) {
        // Every flow closes now: no check is due.
        self.clock.tick(ts);
        while self.tail != NIL {
            let t = self.tail;
            if let (Some(o), Some(f)) = (
                &self.order,
                self.slots.get(t as usize).and_then(Option::as_ref),
            ) {
                o.set_flow(OrderClock::CLOSING | f.touched);
            }
            self.remove(h, t, CloseReason::End);
        }
    }

    // LRU list (intrusive, over slot indices).

    fn links(&mut self, i: u32) -> Option<&mut Flow<H::Conn>> {
        self.slots.get_mut(i as usize).and_then(Option::as_mut)
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = match self.links(i) {
            Some(f) => {
                let pn = (f.prev, f.next);
                f.prev = NIL;
                f.next = NIL;
                pn
            }
            None => return,
        };
        match self.links(p) {
            Some(f) => f.next = n,
            None => self.head = n,
        }
        match self.links(n) {
            Some(f) => f.prev = p,
            None => self.tail = p,
        }
    }

    fn link_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(f) = self.links(i) {
            f.prev = NIL;
            f.next = old;
        }
        match self.links(old) {
            Some(f) => f.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    fn touch(&mut self, i: u32, ts: Timestamp) {
        let packet = self.order.as_ref().map_or(0, |o| o.packet());
        if let Some(f) = self.links(i) {
            if ts > f.last_seen {
                f.last_seen = ts;
            }
            f.touched = packet;
        }
        if self.head != i {
            self.unlink(i);
            self.link_front(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::TcpFlags;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Open(FlowKey, bool),
        Data(Direction, Vec<u8>),
        Gap(Direction, u64),
        Close(FlowKey, CloseReason),
    }

    /// Records events; port 2181 is the server.
    #[derive(Default)]
    struct Rec {
        ev: Vec<Ev>,
    }

    impl StreamHandler for Rec {
        type Conn = u32;
        fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
            if seg.dst.port() == 2181 {
                Some(Direction::ToServer)
            } else if seg.src.port() == 2181 {
                Some(Direction::ToClient)
            } else {
                None
            }
        }
        fn open(&mut self, key: &FlowKey, _ts: Timestamp, saw_syn: bool) -> u32 {
            self.ev.push(Ev::Open(*key, saw_syn));
            7
        }
        fn data(&mut self, c: &mut u32, _k: &FlowKey, dir: Direction, _ts: Timestamp, b: &[u8]) {
            assert_eq!(*c, 7);
            // Merge adjacent data events so tests compare streams, not segmentation.
            if let Some(Ev::Data(d, v)) = self.ev.last_mut() {
                if *d == dir {
                    v.extend_from_slice(b);
                    return;
                }
            }
            self.ev.push(Ev::Data(dir, b.to_vec()));
        }
        fn gap(&mut self, _c: &mut u32, _k: &FlowKey, dir: Direction, _ts: Timestamp, n: u64) {
            self.ev.push(Ev::Gap(dir, n));
        }
        fn close(&mut self, _c: u32, key: &FlowKey, _ts: Timestamp, r: CloseReason) {
            self.ev.push(Ev::Close(*key, r));
        }
    }

    const C: &str = "10.0.0.1:40000";
    const S: &str = "10.0.0.2:2181";
    use Direction::{ToClient as TC, ToServer as TS};

    fn key() -> FlowKey {
        FlowKey {
            client: C.parse().unwrap(),
            server: S.parse().unwrap(),
        }
    }

    fn flags(s: &str) -> TcpFlags {
        TcpFlags {
            syn: s.contains('S'),
            ack: s.contains('A'),
            fin: s.contains('F'),
            rst: s.contains('R'),
            psh: s.contains('P'),
        }
    }

    struct T {
        tr: TcpTracker<Rec>,
        h: Rec,
        ts: i64,
    }

    impl T {
        fn new() -> Self {
            Self::with(TcpConfig::default())
        }
        fn with(cfg: TcpConfig) -> Self {
            T {
                tr: TcpTracker::new(cfg),
                h: Rec::default(),
                ts: 1_000_000_000_000,
            }
        }
        /// Client → server segment.
        fn c(&mut self, seq: u32, ack: u32, f: &str, p: &[u8]) {
            self.seg(C, S, seq, ack, f, p, 0)
        }
        /// Server → client segment.
        fn s(&mut self, seq: u32, ack: u32, f: &str, p: &[u8]) {
            self.seg(S, C, seq, ack, f, p, 0)
        }
        #[allow(clippy::too_many_arguments)]
        fn seg(
            &mut self,
            src: &str,
            dst: &str,
            seq: u32,
            ack: u32,
            f: &str,
            p: &[u8],
            missing: u32,
        ) {
            self.ts += 1_000;
            let seg = TcpSegment {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                seq,
                ack,
                flags: flags(f),
                payload: p,
                missing,
            };
            self.tr.segment(&mut self.h, Timestamp(self.ts), &seg);
        }
        fn handshake(&mut self, cisn: u32, sisn: u32) {
            self.c(cisn, 0, "S", b"");
            self.s(sisn, cisn.wrapping_add(1), "SA", b"");
            self.c(cisn.wrapping_add(1), sisn.wrapping_add(1), "A", b"");
        }
        fn events(&mut self) -> Vec<Ev> {
            std::mem::take(&mut self.h.ev)
        }
        fn finish(&mut self) {
            self.tr.finish(&mut self.h, Timestamp(self.ts));
        }
    }

    fn data(d: Direction, b: &[u8]) -> Ev {
        Ev::Data(d, b.to_vec())
    }

    #[test]
    fn in_order_both_directions_then_fin() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"hello");
        t.c(106, 5001, "PA", b" world");
        t.s(5001, 112, "PA", b"reply");
        t.c(112, 5006, "FA", b"");
        t.s(5006, 113, "FA", b"");
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"hello world"),
                data(TC, b"reply"),
                Ev::Close(key(), CloseReason::Fin)
            ]
        );
        // The last ACK hits the closed entry and is ignored.
        t.c(113, 5007, "A", b"");
        assert!(t.events().is_empty());
        let st = t.tr.stats().clone();
        assert_eq!(
            (st.flows_opened, st.flows_closed, st.flows_active),
            (1, 1, 0)
        );
        assert_eq!(st.bytes_delivered, 16);
        assert_eq!(st.packets_ignored, 1);
    }

    #[test]
    fn out_of_order_three_segments_reversed() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(109, 5001, "PA", b"ccc");
        t.c(105, 5001, "PA", b"bbbb");
        assert_eq!(t.events(), vec![Ev::Open(key(), true)]);
        t.c(101, 5001, "PA", b"aaaa");
        assert_eq!(t.events(), vec![data(TS, b"aaaabbbbccc")]);
        let st = t.tr.stats();
        assert_eq!(st.out_of_order_segments, 2);
        assert_eq!(st.buffered_bytes, 0);
        assert_eq!(st.buffered_bytes_peak, 7);
    }

    #[test]
    fn retransmission_dropped() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"abc");
        t.s(5001, 104, "A", b"");
        t.c(104, 5001, "PA", b"def");
        t.c(101, 5001, "PA", b"abc"); // late retransmission
        t.finish();
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"abcdef"),
                Ev::Close(key(), CloseReason::End)
            ]
        );
        assert_eq!(t.tr.stats().retransmitted_segments, 1);
        assert_eq!(t.tr.stats().retransmitted_bytes, 3);
    }

    #[test]
    fn partial_overlap_delivers_new_part_first_copy_wins() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"abcd");
        t.c(103, 5001, "PA", b"XXef"); // overlaps "cd": old bytes dropped
        t.c(109, 5001, "PA", b"ij"); // buffered at offset 8
        t.c(107, 5001, "PA", b"ghYY"); // fills the hole; buffered "ij" wins over "YY"
        t.finish();
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"abcdefghij"),
                Ev::Close(key(), CloseReason::End)
            ]
        );
        assert_eq!(t.tr.stats().retransmitted_bytes, 2 + 2);
    }

    #[test]
    fn overlapping_out_of_order_segments() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(105, 5001, "PA", b"efgh");
        t.c(103, 5001, "PA", b"cdXXXXij"); // covers the buffered one, adds both ends
        t.c(101, 5001, "PA", b"ab");
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), data(TS, b"abcdefghij")]
        );
        assert_eq!(t.tr.stats().retransmitted_bytes, 4);
    }

    #[test]
    fn loopback_duplicates() {
        let mut t = T::new();
        for _ in 0..2 {
            t.c(100, 0, "S", b"");
        }
        for _ in 0..2 {
            t.s(5000, 101, "SA", b"");
        }
        for (seq, p) in [(101, &b"one"[..]), (104, b"two")] {
            t.c(seq, 5001, "PA", p);
            t.c(seq, 5001, "PA", p);
        }
        t.s(5001, 107, "PA", b"r");
        t.s(5001, 107, "PA", b"r");
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), data(TS, b"onetwo"), data(TC, b"r")]
        );
        assert_eq!(t.tr.stats().duplicate_segments, 3);
        assert_eq!(t.tr.stats().duplicate_bytes, 7);
        assert_eq!(t.tr.stats().flows_opened, 1);
    }

    #[test]
    fn sequence_wrap() {
        let mut t = T::new();
        let isn = u32::MAX - 5;
        t.handshake(isn, 7);
        // Payload spans the 2^32 wrap; the second segment arrives first.
        t.c(isn.wrapping_add(9), 8, "PA", b"89");
        t.c(isn.wrapping_add(1), 8, "PA", b"01234567");
        t.c(isn.wrapping_add(11), 8, "PA", b"ab");
        t.c(isn.wrapping_add(1), 8, "PA", b"012"); // retransmission across the wrap
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), data(TS, b"0123456789ab")]
        );
        assert_eq!(t.tr.stats().retransmitted_bytes, 3);
    }

    #[test]
    fn hole_declared_after_the_reorder_window() {
        let mut t = T::with(TcpConfig {
            reorder_packets: 2,
            ..TcpConfig::default()
        });
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"aaaa");
        // 105..109 never captured.
        t.c(109, 5001, "PA", b"cccc");
        assert_eq!(t.events(), vec![Ev::Open(key(), true), data(TS, b"aaaa")]);
        t.s(5001, 113, "A", b""); // server has everything up to 113
        assert!(t.events().is_empty(), "a reordered segment may still come");
        t.s(5001, 113, "A", b"");
        assert_eq!(t.events(), vec![Ev::Gap(TS, 4), data(TS, b"cccc")]);
        // An ACK without a hole behind it changes nothing.
        t.s(5001, 120, "A", b"");
        assert!(t.events().is_empty());
        // A later out-of-order segment waits too, then uses the ACK already seen.
        t.c(120, 5001, "PA", b"zz");
        assert!(t.events().is_empty());
        t.ts += 60_000_000; // the reorder window is 50 ms of packet time
        t.s(5001, 122, "A", b"");
        assert_eq!(t.events(), vec![Ev::Gap(TS, 7), data(TS, b"zz")]);
        assert_eq!((t.tr.stats().gaps, t.tr.stats().bytes_lost), (2, 11));
        assert_eq!(t.tr.stats().reorder_window_expired, 2);
    }

    #[test]
    fn segment_captured_after_the_peer_acked_it_is_not_lost() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"aaaa");
        // The server's ACK for 105..113 is captured before both segments, the second first.
        t.s(5001, 113, "A", b"");
        t.c(109, 5001, "PA", b"cccc");
        t.c(105, 5001, "PA", b"bbbb");
        t.finish();
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"aaaabbbbcccc"),
                Ev::Close(key(), CloseReason::End)
            ]
        );
        assert_eq!(t.tr.stats().gaps, 0);
    }

    #[test]
    fn answer_captured_before_its_request_is_delivered_after_it() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"req1");
        t.s(5001, 105, "PA", b"rep1");
        // The reply to req2 (it acknowledges 109) is captured before req2.
        t.s(5005, 109, "PA", b"rep2");
        t.s(5009, 109, "PA", b"evnt");
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), data(TS, b"req1"), data(TC, b"rep1")]
        );
        t.c(105, 5005, "PA", b"req2");
        assert_eq!(t.events(), vec![data(TS, b"req2"), data(TC, b"rep2evnt")]);
        t.c(109, 5013, "PA", b"more");
        assert_eq!(t.events(), vec![data(TS, b"more")]);
        assert_eq!(t.tr.stats().held_segments, 2);
        assert_eq!(t.tr.stats().gaps, 0);
    }

    #[test]
    fn held_answer_goes_out_when_its_request_was_lost() {
        let mut t = T::with(TcpConfig {
            reorder_packets: 3,
            ..TcpConfig::default()
        });
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"req1");
        // req2 (105..109) was lost by the capture; its reply acknowledges it.
        t.s(5001, 109, "PA", b"rep2");
        t.c(109, 5005, "PA", b"req3");
        t.s(5005, 113, "PA", b"rep3");
        assert_eq!(t.events(), vec![Ev::Open(key(), true), data(TS, b"req1")]);
        t.c(113, 5009, "A", b"");
        assert!(t.events().is_empty());
        // The request-side hole is given up when its window ends; then each message goes
        // out after what it answers.
        t.c(113, 5009, "A", b"");
        assert_eq!(
            t.events(),
            vec![
                Ev::Gap(TS, 4),
                data(TC, b"rep2"),
                data(TS, b"req3"),
                data(TC, b"rep3")
            ]
        );
        assert_eq!((t.tr.stats().gaps, t.tr.stats().bytes_lost), (1, 4));
    }

    #[test]
    fn hole_on_buffer_cap() {
        let mut t = T::with(TcpConfig {
            max_buffer_per_direction: 10,
            ..TcpConfig::default()
        });
        t.handshake(100, 5000);
        t.c(103, 5001, "PA", b"cccc"); // hole 101..103
        t.c(109, 5001, "PA", b"eeee"); // hole 107..109; 8 bytes buffered
        assert_eq!(t.events(), vec![Ev::Open(key(), true)]);
        t.c(115, 5001, "PA", b"gggg"); // 12 > 10: give up the first hole
        assert_eq!(t.events(), vec![Ev::Gap(TS, 2), data(TS, b"cccc")]);
        t.c(107, 5001, "PA", b"dd");
        assert_eq!(t.events(), vec![data(TS, b"ddeeee")]);
        // A segment bigger than the whole cap is delivered after a gap.
        t.c(125, 5001, "PA", b"0123456789AB");
        assert_eq!(
            t.events(),
            vec![
                Ev::Gap(TS, 2),
                data(TS, b"gggg"),
                Ev::Gap(TS, 6),
                data(TS, b"0123456789AB")
            ]
        );
        assert_eq!(t.tr.stats().buffered_bytes, 0);
    }

    #[test]
    fn global_buffer_cap() {
        let mut t = T::with(TcpConfig {
            max_buffer_total: 6,
            ..TcpConfig::default()
        });
        t.handshake(100, 5000);
        t.c(105, 5001, "PA", b"eeee");
        t.s(5005, 101, "PA", b"EEEE"); // would be 8 > 6 in total
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), Ev::Gap(TC, 4), data(TC, b"EEEE")]
        );
    }

    #[test]
    fn fin_waits_for_hole_then_closes_with_gap() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"ab");
        t.c(105, 5001, "FPA", b"ef"); // 103..105 missing, FIN at 107
        t.s(5001, 103, "FA", b""); // server FIN without acking the hole
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"ab"),
                Ev::Gap(TS, 2),
                data(TS, b"ef"),
                Ev::Close(key(), CloseReason::Fin)
            ]
        );
    }

    #[test]
    fn rst_closes_after_flush() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"ab");
        t.c(105, 5001, "PA", b"ef");
        t.s(5001, 103, "RA", b"");
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"ab"),
                Ev::Gap(TS, 2),
                data(TS, b"ef"),
                Ev::Close(key(), CloseReason::Rst)
            ]
        );
        // Late data on the reset flow is ignored.
        t.c(107, 5001, "PA", b"gh");
        assert!(t.events().is_empty());
    }

    #[test]
    fn port_reuse() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.c(101, 5001, "PA", b"first");
        t.c(106, 5001, "RA", b"");
        t.handshake(90_000, 7000); // same tuple, new connection
        t.c(90_001, 7001, "PA", b"second");
        // New SYN while the old flow is still open (its close was missed).
        t.handshake(200_000, 8000);
        t.c(200_001, 8001, "PA", b"third");
        // A retransmitted SYN is not a new connection.
        t.c(200_000, 0, "S", b"");
        t.finish();
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"first"),
                Ev::Close(key(), CloseReason::Rst),
                Ev::Open(key(), true),
                data(TS, b"second"),
                Ev::Close(key(), CloseReason::Reused),
                Ev::Open(key(), true),
                data(TS, b"third"),
                Ev::Close(key(), CloseReason::End),
            ]
        );
    }

    #[test]
    fn idle_eviction() {
        let mut t = T::with(TcpConfig {
            idle_timeout: Duration::from_secs(10),
            ..TcpConfig::default()
        });
        t.c(101, 5001, "PA", b"x");
        t.seg("10.0.0.9:1", S, 1, 1, "PA", b"y", 0);
        t.ts += 5_000_000_000;
        t.seg("10.0.0.9:1", S, 2, 1, "PA", b"z", 0); // keeps the second flow alive
        t.ts += 6_000_000_000;
        t.seg("10.0.0.9:1", S, 3, 1, "PA", b"w", 0);
        let ev = t.events();
        assert!(ev.contains(&Ev::Close(key(), CloseReason::Idle)), "{ev:?}");
        assert_eq!(t.tr.flow_count(), 1);
        assert_eq!(t.tr.stats().flows_active, 1);
    }

    #[test]
    fn flow_cap_evicts_least_recently_active() {
        let mut t = T::with(TcpConfig {
            max_flows: 2,
            ..TcpConfig::default()
        });
        t.seg("10.0.0.1:1", S, 1, 1, "PA", b"a", 0);
        t.seg("10.0.0.1:2", S, 1, 1, "PA", b"b", 0);
        t.seg("10.0.0.1:1", S, 2, 1, "PA", b"c", 0); // 1 is now the most recent
        t.seg("10.0.0.1:3", S, 1, 1, "PA", b"d", 0); // evicts 2
        let closes: Vec<_> = t
            .events()
            .into_iter()
            .filter_map(|e| match e {
                Ev::Close(k, r) => Some((k.client.port(), r)),
                _ => None,
            })
            .collect();
        assert_eq!(closes, vec![(2, CloseReason::Evicted)]);
        assert_eq!(t.tr.stats().flows_evicted, 1);
        assert_eq!(t.tr.flow_count(), 2);
    }

    #[test]
    fn mid_stream_start() {
        let mut t = T::new();
        t.s(9000, 300, "PA", b"reply-tail"); // first packet seen: server data
        t.c(300, 9010, "PA", b"req");
        t.s(8990, 303, "PA", b"old"); // before our start: dropped
        t.c(0, 0, "A", b""); // bare ACK of a known flow is fine
        t.seg("10.0.0.5:5", S, 1, 1, "A", b"", 0); // bare ACK of unknown flow: ignored
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), false),
                data(TC, b"reply-tail"),
                data(TS, b"req")
            ]
        );
        assert_eq!(t.tr.flow_count(), 1);
        // Non-ZooKeeper traffic is classified away.
        t.seg("10.0.0.5:5", "10.0.0.6:80", 1, 1, "PA", b"GET", 0);
        assert_eq!(t.tr.flow_count(), 1);
    }

    #[test]
    fn truncated_payload_becomes_gap() {
        let mut t = T::new();
        t.handshake(100, 5000);
        t.seg(C, S, 101, 5001, "PA", b"abc", 7); // 10 bytes, 3 captured
        t.seg(C, S, 121, 5001, "PA", b"xy", 3); // out of order, also truncated
        t.seg(C, S, 111, 5001, "PA", b"klm", 7);
        t.finish();
        assert_eq!(
            t.events(),
            vec![
                Ev::Open(key(), true),
                data(TS, b"abc"),
                Ev::Gap(TS, 7),
                data(TS, b"klm"),
                Ev::Gap(TS, 7),
                data(TS, b"xy"),
                Ev::Gap(TS, 3),
                Ev::Close(key(), CloseReason::End)
            ]
        );
        assert_eq!(t.tr.stats().truncated_packets, 3);
        assert_eq!(t.tr.stats().bytes_lost, 17);
    }

    #[test]
    fn syn_ack_first_gives_both_isns() {
        let mut t = T::new();
        t.s(5000, 101, "SA", b""); // client SYN missed
        t.c(101, 5001, "PA", b"hi");
        t.s(5001, 103, "PA", b"yo");
        assert_eq!(
            t.events(),
            vec![Ev::Open(key(), true), data(TS, b"hi"), data(TC, b"yo")]
        );
    }

    // ---- property tests ----

    /// A scripted stream, cut into segments, shuffled, duplicated, partly
    /// dropped and truncated: the output must be the stream with gaps.
    #[derive(Default)]
    struct Checker {
        /// Reconstructed stream per direction; `None` = reported lost.
        out: [Vec<Option<u8>>; 2],
        /// Keep `out` (else only count).
        record: bool,
        delivered: u64,
        lost: u64,
        closes: u32,
    }

    impl StreamHandler for Checker {
        type Conn = ();
        fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
            Some(if seg.dst.port() == 2181 { TS } else { TC })
        }
        fn open(&mut self, _: &FlowKey, _: Timestamp, _: bool) {}
        fn data(&mut self, _: &mut (), _: &FlowKey, d: Direction, _: Timestamp, b: &[u8]) {
            assert!(!b.is_empty());
            self.delivered += b.len() as u64;
            if self.record {
                self.out[d.idx()].extend(b.iter().map(|&x| Some(x)));
            }
        }
        fn gap(&mut self, _: &mut (), _: &FlowKey, d: Direction, _: Timestamp, n: u64) {
            assert!(n > 0);
            self.lost += n;
            if self.record {
                self.out[d.idx()].extend(std::iter::repeat_n(None, n as usize));
            }
        }
        fn close(&mut self, _: (), _: &FlowKey, _: Timestamp, _: CloseReason) {
            self.closes += 1;
        }
    }

    /// (isn, stream, cuts (offset, len), per-segment actions, shuffle seed)
    type Script = (u32, Vec<u8>, Vec<(usize, usize)>, Vec<u8>, u64);

    fn stream_strategy() -> impl Strategy<Value = Script> {
        (
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..400),
            proptest::collection::vec((0usize..400, 1usize..60), 1..60),
            proptest::collection::vec(0u8..8, 60),
            any::<u64>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn reassembly_delivers_each_byte_at_most_once_in_place(
            (isn, stream, cuts, actions, seed) in stream_strategy(),
            small_cap in any::<bool>(),
        ) {
            let cfg = TcpConfig {
                max_buffer_per_direction: if small_cap { 50 } else { 1 << 20 },
                max_segments_per_direction: if small_cap { 6 } else { 4096 },
                ..TcpConfig::default()
            };
            let mut tr: TcpTracker<Checker> = TcpTracker::new(cfg);
            let mut h = Checker { record: true, ..Checker::default() };
            let c: SocketAddr = C.parse().unwrap();
            let s: SocketAddr = S.parse().unwrap();
            let mk = |seq: u32, f: &str, p: &'static [u8], missing: u32| TcpSegment {
                src: c, dst: s, seq, ack: 0, flags: flags(f), payload: p, missing,
            };
            let stream: &'static [u8] = Box::leak(stream.into_boxed_slice());
            let mut ts = 0i64;
            tr.segment(&mut h, Timestamp(ts), &mk(isn, "S", b"", 0));
            // Build segments from random (offset, len) cuts plus a full cover.
            let mut segs: Vec<(usize, usize, u32)> = cuts
                .iter()
                .map(|&(o, l)| (o % stream.len(), l, 0))
                .map(|(o, l, m)| (o, l.min(stream.len() - o), m))
                .collect();
            let mut o = 0;
            while o < stream.len() {
                let l = (7 + (seed as usize % 13)).min(stream.len() - o);
                segs.push((o, l, 0));
                o += l;
            }
            // Deterministic shuffle / drop / truncate / duplicate.
            let mut r = seed | 1;
            let mut rnd = || { r ^= r << 13; r ^= r >> 7; r ^= r << 17; r };
            for i in (1..segs.len()).rev() {
                if rnd() % 3 == 0 {
                    let j = (rnd() as usize) % (i + 1);
                    segs.swap(i, j);
                }
            }
            let mut sent = Vec::new();
            for (i, &(o, l, _)) in segs.iter().enumerate() {
                match actions[i % actions.len()] {
                    0 => continue, // dropped by the capture
                    1 => { // truncated by the snap length
                        let keep = l / 2;
                        sent.push((o, keep, (l - keep) as u32));
                    }
                    2 => { sent.push((o, l, 0)); sent.push((o, l, 0)); }
                    _ => sent.push((o, l, 0)),
                }
            }
            for (o, l, m) in sent {
                ts += 1000;
                let seq = isn.wrapping_add(1).wrapping_add(o as u32);
                tr.segment(&mut h, Timestamp(ts), &mk(seq, "PA", &stream[o..o + l], m));
            }
            tr.finish(&mut h, Timestamp(ts));
            let out = &h.out[TS.idx()];
            prop_assert!(out.len() <= stream.len(), "{} > {}", out.len(), stream.len());
            for (i, b) in out.iter().enumerate() {
                if let Some(b) = b {
                    prop_assert_eq!(*b, stream[i], "byte {}", i);
                }
            }
            let st = tr.stats();
            let delivered = out.iter().filter(|b| b.is_some()).count() as u64;
            prop_assert_eq!(st.bytes_delivered, delivered);
            prop_assert_eq!(st.bytes_lost, out.len() as u64 - delivered);
            prop_assert_eq!(st.buffered_bytes, 0);
            prop_assert_eq!(h.closes, 1);
        }

        /// Arbitrary garbage: no panic, consistent accounting, bounded buffers.
        #[test]
        fn arbitrary_segments_never_panic(
            segs in proptest::collection::vec(
                (any::<bool>(), 0u8..4, any::<u32>(), any::<u32>(), any::<u8>(),
                 proptest::collection::vec(any::<u8>(), 0..40), 0u32..50, 0i64..3_000_000_000),
                1..120),
            near in any::<bool>(),
        ) {
            let cfg = TcpConfig {
                max_flows: 3,
                idle_timeout: Duration::from_secs(2),
                max_buffer_per_direction: 100,
                max_buffer_total: 150,
                max_segments_per_direction: 8,
                ..TcpConfig::default()
            };
            let mut tr: TcpTracker<Checker> = TcpTracker::new(cfg);
            let mut h = Checker::default();
            let mut ts = 0i64;
            let mut base = 0u32;
            for (to_server, port, seq, ack, fl, payload, missing, dt) in segs {
                ts += dt;
                let (seq, ack) = if near { (base.wrapping_add(seq % 200), ack % 200) } else { (seq, ack) };
                base = base.wrapping_add(3);
                let client: SocketAddr = format!("10.0.0.1:{}", 1000 + u16::from(port)).parse().unwrap();
                let server: SocketAddr = S.parse().unwrap();
                let (src, dst) = if to_server { (client, server) } else { (server, client) };
                let seg = TcpSegment {
                    src, dst, seq, ack, flags: TcpFlags::from_bits(fl), payload: &payload, missing,
                };
                tr.segment(&mut h, Timestamp(ts), &seg);
                prop_assert!(tr.stats().buffered_bytes <= 150);
            }
            tr.finish(&mut h, Timestamp(ts));
            let st = tr.stats();
            prop_assert_eq!(st.bytes_delivered, h.delivered);
            prop_assert_eq!(st.bytes_lost, h.lost);
            prop_assert!(h.delivered <= st.bytes);
            prop_assert_eq!(st.buffered_bytes, 0);
            prop_assert_eq!(st.flows_active, 0);
            prop_assert_eq!(st.flows_opened, st.flows_closed);
            prop_assert_eq!(u64::from(h.closes), st.flows_closed);
            prop_assert_eq!(tr.flow_count(), 0);
        }
    }
}
