//! The pcap/pcapng reader on an arbitrary byte buffer, with and without a BPF filter, each
//! packet parsed down to TCP and fed through reassembly and the client decoder.
//!
//! Shared by `fuzz/fuzz_targets/pcap.rs` and the corpus replay in `crates/capture/tests`.

use std::io::Cursor;

use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Msg, ServerSpec};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};

struct Sink;

impl ClientSink for Sink {
    fn message(&mut self, m: &Msg<'_>) {
        let _ = format!("{:?}", m.kind);
    }
}

fn read(data: &[u8], filter: Option<&str>) {
    let size = data.len() as u64;
    let Ok(mut src) =
        PacketSource::from_reader("fuzz", Cursor::new(data.to_vec()), Some(size), filter)
    else {
        return;
    };
    let _ = src.linktype();
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), Sink);
    let mut tracker = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    let mut packets = 0u64;
    while let Ok(Some(pkt)) = src.next_packet() {
        packets += 1;
        // Every record takes at least 16 bytes of the file (pcapng more).
        assert!(
            packets <= size / 16 + 1,
            "more packets than the file can hold"
        );
        assert!(pkt.data.len() as u64 <= size, "packet larger than the file");
        last = pkt.ts;
        if let Ok(seg) = parse_tcp(&pkt) {
            assert!(seg.payload.len() <= pkt.data.len());
            tracker.segment(&mut h, pkt.ts, &seg);
        }
        if let Some((pos, _)) = src.position() {
            assert!(pos <= size, "read past the end of the input");
        }
    }
    tracker.finish(&mut h, last);
    let _ = src.skipped_packets();
}

/// Reads `data` as a capture file, then again through a BPF filter.
pub fn run(data: &[u8]) {
    read(data, None);
    read(data, Some("tcp port 2181"));
}
