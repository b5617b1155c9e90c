//! Packet capture and TCP reassembly for zkscope.
//!
//! # Brief overview
//!
//! - [`PacketSource`] yields [`RawPacket`]s from a pcap/pcapng file, stdin or
//!   a live libpcap capture, lending each packet out of its buffer.
//! - [`parse_tcp`] decodes the link, IP and TCP headers of a packet into a
//!   [`TcpSegment`] whose payload borrows the packet, or says why not ([`Skip`]).
//! - [`TcpTracker`] keeps the flow table and reassembles each direction,
//!   calling a [`StreamHandler`] with in-order bytes, gaps and open/close
//!   events. It is clocked by packet timestamps only.
//! - [`client::ClientHandler`] is the client-protocol [`StreamHandler`]: framing
//!   ([`framer`]), decoding, request/reply pairing; it reports [`client::Msg`]s to a
//!   [`client::ClientSink`]. [`ensemble::EnsembleHandler`] adds the election and quorum
//!   protocols and recognises connections on unknown ports; it reports to a
//!   [`ensemble::ServerSink`] too.
//! - [`pipeline::Pipeline`] is the packet loop over all of that: a source, a decoder choice,
//!   and one [`pipeline::Consumer`] (or a tuple or `Vec` of them) that receives every decoded
//!   [`pipeline::Event`]; it counts what it could not decode, publishes its counters while it
//!   runs, stops on a [`pipeline::StopHandle`] and can run on its own thread. Views (printers,
//!   analyses) implement `Consumer`; the sink traits are the decoders' plumbing.
//!
//! Data flow: packets ([`PacketSource`]) → link/IP/TCP headers ([`parse_tcp`]) → TCP streams
//! ([`TcpTracker`]) → frames ([`framer`]) → messages ([`client`], [`ensemble`]) → events for
//! consumers ([`pipeline`]).
//!
//! The loop by hand, for a custom [`StreamHandler`]:
//!
//! ```no_run
//! use zkscope_capture::*;
//!
//! struct Count(u64);
//! impl StreamHandler for Count {
//!     type Conn = ();
//!     fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
//!         match (seg.src.port(), seg.dst.port()) {
//!             (_, 2181) => Some(Direction::ToServer),
//!             (2181, _) => Some(Direction::ToClient),
//!             _ => None,
//!         }
//!     }
//!     fn open(&mut self, _: &FlowKey, _: Timestamp, _: bool) {}
//!     fn data(&mut self, _: &mut (), _: &FlowKey, _: Direction, _: Timestamp, b: &[u8]) {
//!         self.0 += b.len() as u64;
//!     }
//!     fn gap(&mut self, _: &mut (), _: &FlowKey, _: Direction, _: Timestamp, _: u64) {}
//!     fn close(&mut self, _: (), _: &FlowKey, _: Timestamp, _: CloseReason) {}
//! }
//!
//! let mut src = PacketSource::open_file(std::path::Path::new("zk.pcap"))?;
//! let mut tracker = TcpTracker::new(TcpConfig::default());
//! let mut h = Count(0);
//! let mut last = Timestamp::ZERO;
//! while let Some(pkt) = src.next_packet()? {
//!     last = pkt.ts;
//!     if let Ok(seg) = parse_tcp(&pkt) {
//!         tracker.segment(&mut h, pkt.ts, &seg);
//!     }
//! }
//! tracker.finish(&mut h, last);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod client;
// Election (FLE) and quorum (ZAB) decoding, protocol recognition (issue 3).
pub mod ensemble;
pub mod framer;
pub mod packet;
pub mod pipeline;
pub mod ports;
pub mod source;
pub mod tcp;
pub mod writer;

pub use packet::{parse_tcp, Linktype, RawPacket, Skip, TcpFlags, TcpSegment, Timestamp};
pub use source::{CaptureError, CaptureStats, LiveOptions, PacketSource};
pub use tcp::{CloseReason, Direction, FlowKey, StreamHandler, TcpConfig, TcpStats, TcpTracker};
