//! The packet loop on several cores, for files: this thread reads the records, parses the
//! headers and deals each TCP segment (its payload copied) to one of N workers by its connection (a symmetric hash of the two endpoints),
//! each worker owning the reassembly, decoding and consumer of its connections; the workers'
//! consumers are then merged ([`Shard::merge`]) into what one consumer fed every event would
//! hold.
//!
//! A worker behaves exactly like the whole-capture loop for its connections: it is told the
//! capture clock of every packet it gets (the latest time seen so far, not only its own) and
//! is advanced at the packets where the whole-capture tracker runs its once-a-second check
//! ([`IdleClock`]), so idle timeouts and reorder windows fire at the same packets. What a merge
//! cannot know from the counts is the order in which the whole-capture loop would have seen
//! things first (tables keep first-seen order for ties): an [`OrderClock`] per worker tells
//! the consumer the position of each event in the whole capture's event order.
//!
//! Limits that span connections are per worker: `--max-flows`, the decoder's pending-request
//! and partial-frame budgets. Results are exact as long as the capture stays within them. One
//! order is approximated: when the once-a-second check releases held data on several
//! connections at one packet, the whole-capture tracker goes through them in its slot order,
//! which a shard cannot know; they are ordered by their last packet instead (this only
//! matters for groups first seen there that then tie in a sorted table).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use super::{
    note_packet, track, Consumer, Counters, Decoder, Feed, Finished, LoopStats, Pipeline,
    PUBLISH_EVERY,
};
use crate::client::{ClientConfig, ClientHandler, ClientStats, ServerSpec};
use crate::packet::{parse_tcp, TcpFlags, TcpSegment, Timestamp};
use crate::ports::PortTally;
use crate::source::CaptureError;
use crate::tcp::{IdleClock, TcpConfig, TcpStats, TcpTracker};

/// Where an event falls in the order of a whole-capture run: compared as a tuple.
pub type OrderKey = (u64, u64, u64);

/// The position of the events a worker emits now in the whole capture's event order: the
/// packet being handled (or the end of input), which part of its handling, and a counter.
/// Written by the worker loop and its tracker, read by its consumer, all on one thread
/// (atomics only make it shareable between them).
#[derive(Debug, Default)]
pub struct OrderClock {
    packet: AtomicU64,
    flow: AtomicU64,
    sub: AtomicU64,
}

impl OrderClock {
    /// Part of a packet's handling: a flow closed (idle timeout, end of input), ordered by its
    /// last packet (the least recently active first, as the tracker closes them).
    pub const CLOSING: u64 = 0;
    /// A flow's reorder window run by the once-a-second check.
    pub const SETTLING: u64 = 1 << 62;
    /// The packet's own segment.
    pub const SEGMENT: u64 = 2 << 62;
    /// After the end of input: what consumers still hold per connection, in the order the
    /// connections appeared.
    pub const CONNECTIONS: u64 = 3 << 62;
    /// The "packet" of everything after the end of input.
    pub const END: u64 = u64::MAX;

    /// Events now come from packet `packet`, part `flow`.
    pub fn at(&self, packet: u64, flow: u64) {
        self.packet.store(packet, Ordering::Relaxed);
        self.set_flow(flow);
    }

    /// Events now come from part `flow` of the same packet.
    pub fn set_flow(&self, flow: u64) {
        self.flow.store(flow, Ordering::Relaxed);
        self.sub.store(0, Ordering::Relaxed);
    }

    /// The packet being handled.
    pub fn packet(&self) -> u64 {
        self.packet.load(Ordering::Relaxed)
    }

    /// The key of the next thing first seen now, by connection `conn` (its serial, which
    /// orders connections after the end of input).
    pub fn key(&self, conn: u64) -> OrderKey {
        let flow = self.flow.load(Ordering::Relaxed);
        let flow = if flow == Self::CONNECTIONS {
            flow | conn
        } else {
            flow
        };
        (
            self.packet(),
            flow,
            self.sub.fetch_add(1, Ordering::Relaxed),
        )
    }
}

/// A consumer whose results can be computed by parts (one per worker) and merged exactly.
pub trait Shard: Consumer + Send + Sized {
    /// Called once in the worker, before any event.
    fn set_order_clock(&mut self, clock: Arc<OrderClock>);
    /// The parts' results merged, or `None` when they cannot give exactly what one consumer
    /// fed every event would hold (then the caller runs the input again on one thread). Each
    /// part's clock is still set: a part that holds state flushed at the end (per-connection
    /// state) sets it to [`OrderClock::CONNECTIONS`] at [`OrderClock::END`] before flushing.
    fn merge(parts: Vec<Self>) -> Option<Self>;
}

/// Records sent to a worker at once.
const BATCH_ITEMS: usize = 1024;
/// Packet bytes sent to a worker at once (a larger packet still goes alone).
const BATCH_BYTES: usize = 256 << 10;
/// Batches queued per worker.
const QUEUE: usize = 8;

#[derive(Clone, Copy)]
enum Item {
    /// A segment, parsed by the reader; its payload is `data[start..start + len]`.
    Packet {
        index: u64,
        /// The latest capture time so far.
        now: Timestamp,
        ts: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: TcpFlags,
        missing: u32,
        start: usize,
        len: usize,
        /// The whole-capture tracker checks its flows at this packet.
        check: bool,
    },
    /// Another worker's packet at which the whole-capture tracker checks its flows.
    Check { index: u64, now: Timestamp },
}

#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    items: Vec<Item>,
}

/// What a worker hands back.
struct Done<C> {
    consumer: C,
    tcp: TcpStats,
    client: ClientStats,
    ports: PortTally,
}

/// The stable symmetric hash of a connection's endpoints: both directions go to one worker.
fn shard_of(a: &SocketAddr, b: &SocketAddr, n: usize) -> usize {
    fn bits(e: &SocketAddr) -> u64 {
        let ip = match e.ip() {
            std::net::IpAddr::V4(ip) => u64::from(u32::from(ip)),
            std::net::IpAddr::V6(ip) => {
                let v = u128::from(ip);
                (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
            }
        };
        mix(ip ^ (u64::from(e.port()) << 48))
    }
    fn mix(mut x: u64) -> u64 {
        x ^= x >> 31;
        x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^ (x >> 29)
    }
    let h = mix(bits(a).wrapping_add(bits(b)));
    ((h >> 32) % n as u64) as usize
}

#[allow(clippy::too_many_arguments)]
fn worker<C: Shard>(
    spec: ServerSpec,
    config: ClientConfig,
    tcp: TcpConfig,
    tally_all: bool,
    mut consumer: C,
    batches: Receiver<Batch>,
    free: Sender<Batch>,
    end: Receiver<Timestamp>,
) -> Done<C> {
    let clock = Arc::new(OrderClock::default());
    consumer.set_order_clock(clock.clone());
    let mut h = ClientHandler::new(spec, config, Feed(consumer));
    let mut tracker = TcpTracker::new(tcp);
    tracker.set_order_clock(clock.clone());
    // The ports of the segments the tracker ignored, as the one-thread loop tallies them.
    let mut ports = PortTally::new();
    for mut batch in batches {
        for item in &batch.items {
            match *item {
                Item::Check { index, now } => {
                    clock.at(index, OrderClock::CLOSING);
                    tracker.advance(&mut h, now);
                }
                Item::Packet {
                    index,
                    now,
                    ts,
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    missing,
                    start,
                    len,
                    check,
                } => {
                    if check {
                        clock.at(index, OrderClock::CLOSING);
                    }
                    tracker.advance(&mut h, now);
                    clock.at(index, OrderClock::SEGMENT);
                    h.set_last_conn_id(index);
                    let seg = TcpSegment {
                        src,
                        dst,
                        seq,
                        ack,
                        flags,
                        payload: batch.data.get(start..start + len).unwrap_or(&[]),
                        missing,
                    };
                    track(&mut tracker, &mut h, ts, &seg, tally_all, &mut ports);
                }
            }
        }
        batch.items.clear();
        batch.data.clear();
        // The reader may have finished already: then the batch is simply dropped.
        let _ = free.send(batch);
    }
    let last = end.recv().unwrap_or(Timestamp(0));
    clock.at(OrderClock::END, OrderClock::CLOSING);
    tracker.finish(&mut h, last);
    Done {
        tcp: tracker.stats().clone(),
        client: h.stats.clone(),
        consumer: h.sink.0,
        ports,
    }
}

/// The reader's side of one worker.
struct Lane {
    tx: SyncSender<Batch>,
    batch: Batch,
}

impl Pipeline {
    /// Runs on `threads` workers plus this thread (see the module docs), each worker feeding
    /// a consumer made by `make`; the consumers are merged at the end. `None` when they
    /// could not be merged exactly ([`Shard::merge`]): run the input again on one thread.
    /// Falls back to [`Pipeline::run`] on one consumer for live captures, the ensemble
    /// decoder, or fewer than 2 threads. Live counters are published for packets and bytes
    /// only, the full counters at the end.
    pub fn run_sharded<C: Shard>(
        self,
        threads: usize,
        make: impl Fn() -> C,
    ) -> Option<Finished<C>> {
        let client = matches!(self.decoder, Decoder::Client { .. });
        if threads < 2 || !client || self.source.is_live() {
            return Some(self.run(make()));
        }
        self.sharded(threads, make)
    }

    fn sharded<C: Shard>(mut self, n: usize, make: impl Fn() -> C) -> Option<Finished<C>> {
        let (spec, config) = match &self.decoder {
            Decoder::Client { spec, config } => (spec.clone(), config.clone()),
            Decoder::Ensemble { .. } => (ServerSpec::default(), ClientConfig::default()),
        };
        let (free_tx, free_rx) = mpsc::channel::<Batch>();
        let mut stats = LoopStats::default();
        let mut read_error = None;
        let results: Vec<Done<C>> = std::thread::scope(|scope| {
            let mut lanes = Vec::with_capacity(n);
            let mut ends = Vec::with_capacity(n);
            let mut handles = Vec::with_capacity(n);
            for _ in 0..n {
                let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
                let (end_tx, end_rx) = mpsc::channel::<Timestamp>();
                let (spec, config, tcp) = (spec.clone(), config.clone(), self.tcp.clone());
                let tally_all = self.tally_all;
                let consumer = make();
                let free = free_tx.clone();
                handles.push(
                    std::thread::Builder::new()
                        .name("zkscope-shard".into())
                        .spawn_scoped(scope, move || {
                            worker(spec, config, tcp, tally_all, consumer, rx, free, end_rx)
                        }),
                );
                lanes.push(Lane {
                    tx,
                    batch: Batch::default(),
                });
                ends.push(end_tx);
            }
            read_error = self.deal(&mut lanes, &free_rx, &mut stats);
            for lane in &mut lanes {
                let batch = std::mem::take(&mut lane.batch);
                if !batch.items.is_empty() {
                    let _ = lane.tx.send(batch);
                }
            }
            drop(lanes);
            let last = stats.last_ts.unwrap_or(Timestamp(0));
            for e in ends {
                let _ = e.send(last);
            }
            handles
                .into_iter()
                .filter_map(|h| h.ok()?.join().ok())
                .collect()
        });
        let mut counters = Counters {
            packets: stats,
            ..Counters::default()
        };
        let mut parts = Vec::with_capacity(results.len());
        let mut ports = PortTally::new();
        for d in results {
            counters.tcp.merge(&d.tcp);
            counters.client.merge(&d.client);
            ports.merge(&d.ports);
            parts.push(d.consumer);
        }
        // A worker that could not start (or panicked) leaves its connections out: say so
        // rather than print partial results as whole.
        if parts.len() < n && read_error.is_none() {
            read_error = Some(CaptureError::Io {
                name: self.source.name().to_string(),
                error: std::io::Error::other("a decoding thread failed"),
            });
        }
        let consumer = C::merge(parts)?;
        self.live.finish(&counters);
        Some(Finished {
            consumer,
            counters,
            discovered: Vec::new(),
            read_error,
            ports,
            writer: self.take_writer(),
        })
    }

    /// Reads the input and deals its segments to the lanes.
    fn deal(
        &mut self,
        lanes: &mut [Lane],
        free: &Receiver<Batch>,
        stats: &mut LoopStats,
    ) -> Option<CaptureError> {
        let n = lanes.len();
        let mut clock = IdleClock::default();
        let mut index = 0u64;
        loop {
            if self.stop.is_stopped() {
                return None;
            }
            let pkt = match self.source.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return None,
                Err(e) => return Some(e),
            };
            note_packet(
                &pkt,
                stats,
                &mut self.on_cut,
                &mut self.writer,
                &mut self.write_error,
            );
            match parse_tcp(&pkt) {
                Ok(seg) => {
                    index += 1;
                    let w = shard_of(&seg.src, &seg.dst, n);
                    let (now, check) = clock.tick(pkt.ts);
                    if check {
                        for (i, lane) in lanes.iter_mut().enumerate() {
                            if i != w {
                                lane.batch.items.push(Item::Check { index, now });
                            }
                        }
                    }
                    let lane = &mut lanes[w];
                    let start = lane.batch.data.len();
                    lane.batch.data.extend_from_slice(seg.payload);
                    lane.batch.items.push(Item::Packet {
                        index,
                        now,
                        ts: pkt.ts,
                        src: seg.src,
                        dst: seg.dst,
                        seq: seg.seq,
                        ack: seg.ack,
                        flags: seg.flags,
                        missing: seg.missing,
                        start,
                        len: seg.payload.len(),
                        check,
                    });
                    for lane in lanes.iter_mut() {
                        if lane.batch.items.len() >= BATCH_ITEMS
                            || lane.batch.data.len() >= BATCH_BYTES
                        {
                            let next = free.try_recv().unwrap_or_default();
                            let full = std::mem::replace(&mut lane.batch, next);
                            if lane.tx.send(full).is_err() {
                                return None; // a worker is gone: its join reports it
                            }
                        }
                    }
                }
                Err(why) => stats.skipped(why),
            }
            self.live.progress(stats);
            if stats.packets.is_multiple_of(PUBLISH_EVERY) {
                if let (Some(report), Some((read, _))) =
                    (self.progress.as_mut(), self.source.position())
                {
                    report(read);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_go_to_one_shard() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2181".parse().unwrap();
        let c: SocketAddr = "[2001:db8::1]:40001".parse().unwrap();
        for n in 2..8 {
            assert_eq!(shard_of(&a, &b, n), shard_of(&b, &a, n));
            assert_eq!(shard_of(&c, &b, n), shard_of(&b, &c, n));
            assert!(shard_of(&a, &b, n) < n);
        }
        // Connections spread over the shards.
        let mut seen = [0u32; 4];
        for p in 0..400u16 {
            let a = SocketAddr::from(([10, 0, 0, 1], 30000 + p));
            seen[shard_of(&a, &b, 4)] += 1;
        }
        assert!(seen.iter().all(|&k| k > 50), "{seen:?}");
    }
}
