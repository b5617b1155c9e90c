//! The packet loop: a source, the decoders, and any number of consumers of one event type.
//!
//! A [`Pipeline`] reads packets from a [`PacketSource`] (file, stdin, live interface),
//! reassembles TCP ([`TcpTracker`]), decodes the client protocol alone ([`Decoder::Client`]) or
//! every ZooKeeper protocol ([`Decoder::Ensemble`]), and hands each decoded message to a
//! [`Consumer`] as an [`Event`]. Consumers compose: a tuple `(A, B)`, a `Vec<C>` or a
//! `Vec<Box<dyn Consumer>>` is a consumer that feeds every part in order.
//!
//! The loop ends at the end of the input, when the [`StopHandle`] is set (Ctrl-C in the binary;
//! a live capture first drains what the kernel already captured), or when a consumer says it is
//! [`Consumer::done`]. Its counters are returned in [`Finished`] and, while it runs, published
//! in a shared [`LiveCounters`] that another thread may read. [`Pipeline::spawn`] runs it on a
//! thread of its own.
//!
//! ```no_run
//! use zkscope_capture::client::{ClientConfig, ServerSpec};
//! use zkscope_capture::pipeline::{Consumer, Decoder, Event, Pipeline, StopHandle};
//! use zkscope_capture::PacketSource;
//!
//! #[derive(Default)]
//! struct Requests(u64);
//! impl Consumer for Requests {
//!     fn event(&mut self, ev: &Event<'_, '_>) {
//!         if let Event::Client(m) = ev {
//!             if matches!(m.kind, zkscope_capture::client::Kind::Request(_)) {
//!                 self.0 += 1;
//!             }
//!         }
//!     }
//! }
//!
//! let source = PacketSource::open_file(std::path::Path::new("zk.pcap"))?;
//! let decoder = Decoder::Client {
//!     spec: ServerSpec { ports: vec![2181], ..ServerSpec::default() },
//!     config: ClientConfig::default(),
//! };
//! let pipeline = Pipeline::new(source, decoder, StopHandle::new());
//! let done = pipeline.run(Requests::default());
//! println!("{} requests in {} packets", done.consumer.0, done.counters.packets.packets);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde::Serialize;

use crate::client::{ClientConfig, ClientHandler, ClientSink, ClientStats, Msg, ServerSpec};
use crate::ensemble::Mode;
use crate::ensemble::{
    Discovery, EnsembleHandler, EnsembleSpec, EnsembleStats, FleMsg, Note, Resolver, ServerSink,
    ZabMsg,
};
use crate::packet::{parse_tcp, RawPacket, Skip, TcpSegment, Timestamp};
use crate::ports::PortTally;
use crate::source::{CaptureError, CaptureStats, PacketSource};
use crate::tcp::{StreamHandler, TcpConfig, TcpStats, TcpTracker};
use crate::writer::PacketWriter;

mod sharded;
pub use sharded::{OrderClock, OrderKey, Shard};

/// One decoded thing, borrowed from the decoder for the duration of [`Consumer::event`].
#[derive(Debug, Clone, Copy)]
pub enum Event<'e, 'a> {
    /// A client-protocol message (request, reply, event, handshake, 4lw, …).
    Client(&'e Msg<'a>),
    /// A leader-election (FLE) message.
    Election(&'e FleMsg<'a>),
    /// A quorum (ZAB) packet.
    Quorum(&'e ZabMsg<'a>),
    /// Something about a connection that is not a message: an endpoint discovered, a TLS
    /// election/quorum connection, a connection closed.
    Note(&'e Note<'a>),
}

/// Receives the pipeline's events (the "push" model: the pipeline does not know who
/// consumes). Only [`Consumer::event`] has to be written.
pub trait Consumer {
    /// One decoded event.
    fn event(&mut self, ev: &Event<'_, '_>);
    /// True once the run should end (output closed, enough collected).
    fn done(&self) -> bool {
        false
    }
    /// Called after each packet of a live capture (a printer flushes its output).
    fn flush(&mut self) {}
}

impl<C: Consumer + ?Sized> Consumer for &mut C {
    fn event(&mut self, ev: &Event<'_, '_>) {
        (**self).event(ev);
    }
    fn done(&self) -> bool {
        (**self).done()
    }
    fn flush(&mut self) {
        (**self).flush();
    }
}

impl<C: Consumer + ?Sized> Consumer for Box<C> {
    fn event(&mut self, ev: &Event<'_, '_>) {
        (**self).event(ev);
    }
    fn done(&self) -> bool {
        (**self).done()
    }
    fn flush(&mut self) {
        (**self).flush();
    }
}

/// Both consumers get every event, `A` first; the run ends when either is done.
impl<A: Consumer, B: Consumer> Consumer for (A, B) {
    fn event(&mut self, ev: &Event<'_, '_>) {
        self.0.event(ev);
        self.1.event(ev);
    }
    fn done(&self) -> bool {
        self.0.done() || self.1.done()
    }
    fn flush(&mut self) {
        self.0.flush();
        self.1.flush();
    }
}

/// Every consumer gets every event, in order; the run ends when any is done.
impl<C: Consumer> Consumer for Vec<C> {
    fn event(&mut self, ev: &Event<'_, '_>) {
        for c in self.iter_mut() {
            c.event(ev);
        }
    }
    fn done(&self) -> bool {
        self.iter().any(|c| c.done())
    }
    fn flush(&mut self) {
        for c in self.iter_mut() {
            c.flush();
        }
    }
}

/// A consumer seen as the decoders' sinks ([`ClientSink`], [`ServerSink`]), for code that
/// drives a [`ClientHandler`] or [`TcpTracker`] itself instead of running a [`Pipeline`].
pub struct Feed<C>(pub C);

impl<C: Consumer> ClientSink for Feed<C> {
    fn message(&mut self, m: &Msg<'_>) {
        self.0.event(&Event::Client(m));
    }
}

impl<C: Consumer> ServerSink for Feed<C> {
    fn fle(&mut self, m: &FleMsg<'_>) {
        self.0.event(&Event::Election(m));
    }
    fn zab(&mut self, m: &ZabMsg<'_>) {
        self.0.event(&Event::Quorum(m));
    }
    fn note(&mut self, n: &Note<'_>) {
        self.0.event(&Event::Note(n));
    }
}

/// The ensemble handler has a sink for client messages and one for the others: both feed the
/// same consumer through a shared cell (one borrow flag per message).
struct Shared<'c, C>(&'c RefCell<C>);

impl<C: Consumer> ClientSink for Shared<'_, C> {
    fn message(&mut self, m: &Msg<'_>) {
        self.0.borrow_mut().event(&Event::Client(m));
    }
}

impl<C: Consumer> ServerSink for Shared<'_, C> {
    fn fle(&mut self, m: &FleMsg<'_>) {
        self.0.borrow_mut().event(&Event::Election(m));
    }
    fn zab(&mut self, m: &ZabMsg<'_>) {
        self.0.borrow_mut().event(&Event::Quorum(m));
    }
    fn note(&mut self, n: &Note<'_>) {
        self.0.borrow_mut().event(&Event::Note(n));
    }
}

/// Which protocols to decode.
pub enum Decoder {
    /// The client protocol only, on the selected endpoints (the fast path).
    Client {
        /// Which endpoints are ZooKeeper servers.
        spec: ServerSpec,
        /// Decoder limits.
        config: ClientConfig,
    },
    /// Client, election and quorum protocols, with port discovery and recognition.
    Ensemble {
        /// Selection and mode.
        spec: EnsembleSpec,
        /// The client decoder's limits.
        config: ClientConfig,
        /// Resolves host names found in configurations (default: literals only).
        resolver: Option<Resolver>,
    },
}

/// Stops a running pipeline from another thread or a signal handler. A live source opened
/// with [`StopHandle::flag`] drains what the kernel already captured before it ends.
#[derive(Debug, Clone, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A handle not yet set.
    pub fn new() -> Self {
        StopHandle::default()
    }
    /// Asks the pipeline to stop; returns whether it had already been asked.
    pub fn stop(&self) -> bool {
        self.0.swap(true, Ordering::SeqCst)
    }
    /// Whether [`StopHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    /// The flag itself, for [`PacketSource::open_live`].
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

/// Counters of the packet loop itself.
#[derive(Debug, Default, Clone, Serialize)]
pub struct LoopStats {
    /// Packets read.
    pub packets: u64,
    /// Their captured bytes.
    pub bytes: u64,
    /// Not IP, or IP but not TCP.
    pub not_tcp: u64,
    /// IP fragments (not reassembled).
    pub fragments: u64,
    /// Malformed headers.
    pub malformed: u64,
    /// Headers cut by the snap length.
    pub truncated_headers: u64,
    /// Packets of a link type that is not decoded.
    pub unsupported_link: u64,
    /// Packets captured shorter than they were on the wire (cut by the snap length).
    pub cut_packets: u64,
    /// The captured length of the first of them: the capture's snap length.
    pub snaplen: Option<u32>,
    /// Capture time of the first packet.
    pub first_ts: Option<Timestamp>,
    /// Capture time of the last packet.
    pub last_ts: Option<Timestamp>,
}

/// Everything the pipeline counts: capture health, reassembly, decoding.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// The packet loop.
    pub packets: LoopStats,
    /// TCP reassembly (gaps, retransmissions, connections).
    pub tcp: TcpStats,
    /// The client decoder (messages, undecodable frames, unpaired replies).
    pub client: ClientStats,
    /// The election/quorum decoders and recognition ([`Decoder::Ensemble`] only).
    pub ensemble: Option<EnsembleStats>,
    /// libpcap's counters of a live capture (kernel drops).
    pub live: Option<CaptureStats>,
}

/// Counters published while the pipeline runs, for another thread to read: packets and bytes
/// after every packet, the full [`Counters`] every few thousand packets, every second of
/// capture time, and at the end.
#[derive(Debug, Default)]
pub struct LiveCounters {
    packets: AtomicU64,
    bytes: AtomicU64,
    snapshot: Mutex<Counters>,
}

impl LiveCounters {
    /// Packets read so far.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }
    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// The last published counters.
    pub fn snapshot(&self) -> Counters {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn publish(&self, c: Counters) {
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = c;
    }
    /// Packets and bytes so far: plain stores, the reader only needs a recent value, the hot
    /// path no lock.
    #[inline]
    fn progress(&self, s: &LoopStats) {
        self.packets.store(s.packets, Ordering::Relaxed);
        self.bytes.store(s.bytes, Ordering::Relaxed);
    }
    /// The counters of a finished run.
    fn finish(&self, c: &Counters) {
        self.progress(&c.packets);
        self.publish(c.clone());
    }
}

/// What a finished run produced.
pub struct Finished<C> {
    /// The consumer, for its results.
    pub consumer: C,
    /// The final counters.
    pub counters: Counters,
    /// Endpoints learnt from the traffic, in order ([`Decoder::Ensemble`]).
    pub discovered: Vec<Discovery>,
    /// The input ended with an error (a truncated file) after the packets before it.
    pub read_error: Option<CaptureError>,
    /// TCP segments per server port, of the connections the decoder did not select (every
    /// connection with [`Mode::Auto`]): where the traffic was when none of it decoded.
    pub ports: PortTally,
    /// The [`Pipeline::write_to`] writer, flushed, and its error if writing failed.
    pub writer: Option<(PacketWriter, Option<CaptureError>)>,
}

/// Called with the bytes read so far, every few thousand packets of a file.
pub type Progress = Box<dyn FnMut(u64) + Send>;

/// Called once, before the packet is decoded, when the first packet cut by the snap length is
/// read; its argument is that packet's captured length (the snap length).
pub type OnCut = Box<dyn FnMut(u32) + Send>;

/// What every loop does with each packet read, before decoding: counts it, notes the snap
/// length (`on_cut` the first time a packet is cut) and writes `-w`. A free function: the
/// packet borrows the source.
#[inline]
fn note_packet(
    pkt: &RawPacket<'_>,
    stats: &mut LoopStats,
    on_cut: &mut Option<OnCut>,
    writer: &mut Option<PacketWriter>,
    write_error: &mut Option<CaptureError>,
) {
    stats.packets += 1;
    stats.bytes += pkt.data.len() as u64;
    stats.first_ts.get_or_insert(pkt.ts);
    stats.last_ts = Some(pkt.ts);
    if pkt.data.len() < pkt.orig_len as usize {
        stats.cut_packets += 1;
        if stats.snaplen.is_none() {
            let snap = u32::try_from(pkt.data.len()).unwrap_or(u32::MAX);
            stats.snaplen = Some(snap);
            if let Some(f) = on_cut.as_mut() {
                f(snap);
            }
        }
    }
    if let Some(w) = writer.as_mut() {
        if let Err(e) = w.write(pkt) {
            *write_error = Some(e);
            *writer = None;
        }
    }
}

impl LoopStats {
    /// Counts a packet that is not a TCP segment to decode.
    fn skipped(&mut self, why: Skip) {
        match why {
            Skip::NotIp | Skip::NotTcp => self.not_tcp += 1,
            Skip::Fragment => self.fragments += 1,
            Skip::Truncated => self.truncated_headers += 1,
            Skip::UnsupportedLinktype(_) => self.unsupported_link += 1,
            Skip::Malformed => self.malformed += 1,
        }
    }
}

/// Feeds a segment to the tracker; tallies its ports when the tracker ignored it (the
/// connections no decoder selected), or always with `tally_all`.
#[inline]
fn track<H: StreamHandler>(
    tracker: &mut TcpTracker<H>,
    handler: &mut H,
    ts: Timestamp,
    seg: &TcpSegment<'_>,
    tally_all: bool,
    ports: &mut PortTally,
) {
    let ignored = tracker.stats().packets_ignored;
    tracker.segment(handler, ts, seg);
    if tally_all || tracker.stats().packets_ignored != ignored {
        ports.add(seg);
    }
}

/// Packets between progress reports and counter snapshots.
const PUBLISH_EVERY: u64 = 4096;
/// Capture time between counter snapshots of a slow live capture.
const PUBLISH_NS: i64 = 1_000_000_000;

/// A source, decoders and the loop between them; see the module docs.
pub struct Pipeline {
    source: PacketSource,
    decoder: Decoder,
    stop: StopHandle,
    live: Arc<LiveCounters>,
    progress: Option<Progress>,
    tcp: TcpConfig,
    on_cut: Option<OnCut>,
    writer: Option<PacketWriter>,
    write_error: Option<CaptureError>,
    tally_all: bool,
}

impl Pipeline {
    /// A pipeline reading `source` with `decoder`, stopped by `stop`.
    pub fn new(source: PacketSource, decoder: Decoder, stop: StopHandle) -> Self {
        Pipeline {
            source,
            decoder,
            stop,
            live: Arc::default(),
            progress: None,
            tcp: TcpConfig::default(),
            on_cut: None,
            writer: None,
            write_error: None,
            tally_all: false,
        }
    }

    /// Calls `f` when the first packet cut by the snap length is read (see [`OnCut`]).
    pub fn on_cut(&mut self, f: OnCut) {
        self.on_cut = Some(f);
    }

    /// Also writes every packet read to `w` (`-w FILE`); a failed write stops the writing,
    /// not the run, and is returned in [`Finished::writer`].
    pub fn write_to(&mut self, w: PacketWriter) {
        self.writer = Some(w);
    }

    /// Reports reading progress of a file (bytes read) to `f`.
    pub fn on_progress(&mut self, f: Progress) {
        self.progress = Some(f);
    }

    /// `(bytes read, total size)` of a file source; `None` for live captures.
    pub fn position(&self) -> Option<(u64, Option<u64>)> {
        self.source.position()
    }

    /// The handle that stops this pipeline.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// The counters published while it runs.
    pub fn live_counters(&self) -> Arc<LiveCounters> {
        self.live.clone()
    }

    /// Runs on a thread of its own; join the handle for the result.
    pub fn spawn<C: Consumer + Send + 'static>(self, consumer: C) -> JoinHandle<Finished<C>> {
        std::thread::spawn(move || self.run(consumer))
    }

    /// Runs until the input ends, the stop handle is set, or `consumer` is done.
    pub fn run<C: Consumer>(mut self, consumer: C) -> Finished<C> {
        self.tally_all =
            matches!(&self.decoder, Decoder::Ensemble { spec, .. } if spec.mode == Mode::Auto);
        match std::mem::replace(
            &mut self.decoder,
            Decoder::Client {
                spec: ServerSpec::default(),
                config: ClientConfig::default(),
            },
        ) {
            Decoder::Client { spec, config } => {
                let mut h = ClientHandler::new(spec, config, Feed(consumer));
                let l = self.drive(
                    &mut h,
                    |h| h.sink.0.done(),
                    |h| h.sink.0.flush(),
                    |h| (h.stats.clone(), None),
                );
                let (counters, read_error, ports) = l;
                Finished {
                    consumer: h.sink.0,
                    counters,
                    discovered: Vec::new(),
                    read_error,
                    ports,
                    writer: self.take_writer(),
                }
            }
            Decoder::Ensemble {
                spec,
                config,
                resolver,
            } => {
                let cell = RefCell::new(consumer);
                let client = ClientHandler::new(ServerSpec::default(), config, Shared(&cell));
                let mut h = EnsembleHandler::new(spec, client, Shared(&cell));
                if let Some(r) = resolver {
                    h.set_resolver(r);
                }
                let (counters, read_error, ports) = self.drive(
                    &mut h,
                    |h| h.sink.0.borrow().done(),
                    |h| h.sink.0.borrow_mut().flush(),
                    |h| (h.client.stats.clone(), Some(h.stats.clone())),
                );
                let discovered = h.discovered().to_vec();
                drop(h);
                Finished {
                    consumer: cell.into_inner(),
                    counters,
                    discovered,
                    read_error,
                    ports,
                    writer: self.take_writer(),
                }
            }
        }
    }

    /// The writer, flushed, with the first error it met.
    fn take_writer(&mut self) -> Option<(PacketWriter, Option<CaptureError>)> {
        let mut w = self.writer.take()?;
        let flushed = w.flush().err();
        Some((w, self.write_error.take().or(flushed)))
    }

    /// The loop proper, whatever the handler.
    fn drive<H: StreamHandler>(
        &mut self,
        handler: &mut H,
        done: impl Fn(&H) -> bool,
        mut flush: impl FnMut(&mut H),
        decoded: impl Fn(&H) -> (ClientStats, Option<EnsembleStats>),
    ) -> (Counters, Option<CaptureError>, PortTally) {
        let live = self.source.is_live();
        let mut tracker = TcpTracker::new(self.tcp.clone());
        let mut stats = LoopStats::default();
        let mut ports = PortTally::new();
        // Auto mode takes every connection: none is "ignored", so all are tallied.
        let tally_all = self.tally_all;
        let mut read_error = None;
        let mut published_ts = i64::MIN;
        loop {
            if !live && self.stop.is_stopped() {
                break;
            }
            let pkt = match self.source.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e);
                    break;
                }
            };
            let ts = pkt.ts;
            note_packet(
                &pkt,
                &mut stats,
                &mut self.on_cut,
                &mut self.writer,
                &mut self.write_error,
            );
            match parse_tcp(&pkt) {
                Ok(seg) => track(&mut tracker, handler, ts, &seg, tally_all, &mut ports),
                Err(why) => stats.skipped(why),
            }
            if live {
                flush(handler);
            }
            if done(handler) {
                break;
            }
            self.live.progress(&stats);
            let periodic = stats.packets % PUBLISH_EVERY == 0;
            if periodic || (live && ts.0.saturating_sub(published_ts) >= PUBLISH_NS) {
                published_ts = ts.0;
                if live {
                    // a kept live session is on disk within a second
                    if let Some(Err(e)) = self.writer.as_mut().map(PacketWriter::flush) {
                        self.write_error = Some(e);
                        self.writer = None;
                    }
                }
                let (client, ensemble) = decoded(handler);
                let live_stats = if live { self.source.stats() } else { None };
                self.live.publish(Counters {
                    packets: stats.clone(),
                    tcp: tracker.stats().clone(),
                    client,
                    ensemble,
                    live: live_stats,
                });
            }
            if periodic {
                if let (Some(report), Some((read, _))) =
                    (self.progress.as_mut(), self.source.position())
                {
                    report(read);
                }
            }
        }
        let end = stats.last_ts.unwrap_or(Timestamp(0));
        tracker.finish(handler, end);
        let (client, ensemble) = decoded(handler);
        let counters = Counters {
            packets: stats,
            tcp: tracker.stats().clone(),
            client,
            ensemble,
            live: self.source.stats(),
        };
        self.live.finish(&counters);
        (counters, read_error, ports)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::ensemble::Mode;

    fn fixture(name: &str) -> PacketSource {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/zktraffic")
            .join(name);
        PacketSource::open_file(&p).expect("fixture")
    }

    fn client() -> Decoder {
        Decoder::Client {
            spec: ServerSpec {
                ports: vec![2181],
                ..ServerSpec::default()
            },
            config: ClientConfig::default(),
        }
    }

    fn ensemble() -> Decoder {
        Decoder::Ensemble {
            spec: EnsembleSpec::new(Mode::Auto),
            config: ClientConfig::default(),
            resolver: None,
        }
    }

    /// Counts events by kind; done after `limit` events.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    struct Tally {
        client: u64,
        election: u64,
        quorum: u64,
        notes: u64,
        limit: Option<u64>,
    }

    impl Tally {
        fn total(&self) -> u64 {
            self.client + self.election + self.quorum + self.notes
        }
    }

    impl Consumer for Tally {
        fn event(&mut self, ev: &Event<'_, '_>) {
            match ev {
                Event::Client(_) => self.client += 1,
                Event::Election(_) => self.election += 1,
                Event::Quorum(_) => self.quorum += 1,
                Event::Note(_) => self.notes += 1,
            }
        }
        fn done(&self) -> bool {
            self.limit.is_some_and(|l| self.total() >= l)
        }
    }

    #[test]
    fn composed_consumers_see_every_event() {
        let p = Pipeline::new(fixture("omni.pcap"), ensemble(), StopHandle::new());
        let run = p.run((Tally::default(), vec![Tally::default(), Tally::default()]));
        let (a, v) = &run.consumer;
        assert!(a.client > 0 && a.election > 0 && a.quorum > 0, "{a:?}");
        assert_eq!(v[0], *a);
        assert_eq!(v[1], *a);
        let c = &run.counters;
        let ens = c.ensemble.as_ref().expect("ensemble counters");
        // Undecodable runs and skipped snapshots are events too, not packets.
        assert!(a.election >= ens.fle_initials + ens.fle_notifications);
        assert!(a.quorum >= ens.zab_packets && ens.zab_packets > 0);
        assert!(c.packets.packets > 0 && c.live.is_none() && run.read_error.is_none());
        assert!(
            !run.discovered.is_empty(),
            "omni.pcap's ports are discovered"
        );
    }

    #[test]
    fn runs_on_its_own_thread_and_publishes_its_counters() {
        let p = Pipeline::new(fixture("dump.pcap"), client(), StopHandle::new());
        let live = p.live_counters();
        let run = p.spawn(Tally::default()).join().expect("pipeline thread");
        assert!(run.consumer.client > 0);
        assert!(run.counters.client.requests + run.counters.client.replies > 0);
        // The last publication is the final count.
        assert_eq!(live.packets(), run.counters.packets.packets);
        assert_eq!(live.bytes(), run.counters.packets.bytes);
        let snap = live.snapshot();
        assert_eq!(snap.packets.packets, run.counters.packets.packets);
        assert_eq!(snap.client.requests, run.counters.client.requests);
        assert_eq!(snap.tcp, run.counters.tcp);
    }

    #[test]
    fn the_stop_handle_ends_a_file_run() {
        let stop = StopHandle::new();
        let p = Pipeline::new(fixture("dump.pcap"), client(), stop.clone());
        assert!(!stop.stop(), "first request");
        assert!(stop.stop(), "asked twice");
        let run = p.run(Tally::default());
        assert_eq!(run.counters.packets.packets, 0);
        assert_eq!(run.consumer.total(), 0);
    }

    #[test]
    fn a_done_consumer_ends_the_run() {
        let full =
            Pipeline::new(fixture("dump.pcap"), client(), StopHandle::new()).run(Tally::default());
        let limited = Tally {
            limit: Some(3),
            ..Tally::default()
        };
        let run = Pipeline::new(fixture("dump.pcap"), client(), StopHandle::new()).run(limited);
        assert!(full.consumer.client > 3);
        assert!(run.counters.packets.packets < full.counters.packets.packets);
        // The end of input still flushes what is pending (unanswered requests), so at least 3.
        assert!(run.consumer.client >= 3);
    }

    /// A classic pcap (Ethernet) of `n` 14-byte frames that are not IP.
    fn not_ip_pcap(n: u32) -> Vec<u8> {
        let mut f = Vec::new();
        // magic, version 2.4 (two u16), zone, sigfigs, snaplen, linktype 1 (Ethernet)
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for i in 0..n {
            for v in [i, 0, 14, 14] {
                f.extend_from_slice(&v.to_le_bytes());
            }
            f.extend_from_slice(&[0; 12]);
            f.extend_from_slice(&[0x88, 0xb5]); // an experimental ethertype
        }
        f
    }

    #[test]
    fn unselected_ports_are_tallied_and_cut_packets_noted() {
        // port 9999 selects nothing: every segment is tallied, the busiest port is 2181
        let decoder = Decoder::Client {
            spec: ServerSpec {
                ports: vec![9999],
                ..ServerSpec::default()
            },
            config: ClientConfig::default(),
        };
        let run =
            Pipeline::new(fixture("dump.pcap"), decoder, StopHandle::new()).run(Tally::default());
        assert_eq!(run.consumer.total(), 0);
        assert_eq!(run.ports.total(), run.counters.tcp.packets);
        assert_eq!(run.ports.top(1).first().map(|p| p.0), Some(2181));
        // selected traffic is not tallied
        let run =
            Pipeline::new(fixture("dump.pcap"), client(), StopHandle::new()).run(Tally::default());
        assert!(
            run.ports.total() < run.counters.tcp.packets / 10,
            "{}",
            run.ports.total()
        );
        assert_eq!(
            (
                run.counters.packets.cut_packets,
                run.counters.packets.snaplen
            ),
            (0, None)
        );
        // a record shorter than on the wire: noted once, with its length
        let mut data = not_ip_pcap(3);
        let second = 24 + 16 + 14;
        data[second + 12..second + 16].copy_from_slice(&60u32.to_le_bytes());
        let src =
            PacketSource::from_reader("mem", std::io::Cursor::new(data), None, None).expect("pcap");
        let mut p = Pipeline::new(src, client(), StopHandle::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        p.on_cut(Box::new(move |snap| {
            s.lock().unwrap_or_else(PoisonError::into_inner).push(snap);
        }));
        let run = p.run(Tally::default());
        assert_eq!(run.counters.packets.cut_packets, 1);
        assert_eq!(run.counters.packets.snaplen, Some(14));
        assert_eq!(
            *seen.lock().unwrap_or_else(PoisonError::into_inner),
            vec![14]
        );
    }

    #[test]
    fn progress_is_reported_for_files() {
        let data = not_ip_pcap(3 * PUBLISH_EVERY as u32);
        let size = data.len() as u64;
        let src = PacketSource::from_reader("mem", std::io::Cursor::new(data), Some(size), None)
            .expect("pcap");
        let mut p = Pipeline::new(src, client(), StopHandle::new());
        let reports = Arc::new(Mutex::new(Vec::new()));
        let r = reports.clone();
        p.on_progress(Box::new(move |read| {
            r.lock().unwrap_or_else(PoisonError::into_inner).push(read);
        }));
        let run = p.run(Tally::default());
        assert_eq!(run.counters.packets.packets, 3 * PUBLISH_EVERY);
        assert_eq!(run.counters.packets.not_tcp, 3 * PUBLISH_EVERY);
        let seen = reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|&r| r <= size));
    }
}
