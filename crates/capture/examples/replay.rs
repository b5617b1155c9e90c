//! Throughput check: read a capture through `parse_tcp` and the TCP tracker
//! with a no-op handler.
//!
//! `cargo run --release -p zkscope-capture --example replay -- FILE [BPF]`
//! or, live for a few seconds: `... -- --live IFACE SECONDS [BPF]`

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use zkscope_capture::*;

#[derive(Default)]
struct Sink {
    bytes: u64,
    gaps: u64,
}

impl StreamHandler for Sink {
    type Conn = ();
    fn classify(&mut self, seg: &TcpSegment<'_>) -> Option<Direction> {
        Some(if seg.src.port() < seg.dst.port() {
            Direction::ToClient
        } else {
            Direction::ToServer
        })
    }
    fn open(&mut self, _: &FlowKey, _: Timestamp, _: bool) {}
    fn data(&mut self, _: &mut (), _: &FlowKey, _: Direction, _: Timestamp, b: &[u8]) {
        self.bytes += b.len() as u64;
    }
    fn gap(&mut self, _: &mut (), _: &FlowKey, _: Direction, _: Timestamp, n: u64) {
        self.gaps += n;
    }
    fn close(&mut self, _: (), _: &FlowKey, _: Timestamp, _: CloseReason) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let Some(file) = args.get(1) else {
        return Err("usage: replay FILE [BPF]".into());
    };
    let t0 = Instant::now();
    let mut src = if file == "--live" {
        let iface = args.get(2).ok_or("--live IFACE SECONDS [BPF]")?;
        let secs: u64 = args.get(3).ok_or("--live IFACE SECONDS [BPF]")?.parse()?;
        let stop = Arc::new(AtomicBool::new(false));
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<i32>().ok());
        let d = LiveOptions::default();
        let opts = LiveOptions {
            filter: args.get(4).cloned(),
            immediate: env("IMMEDIATE").map_or(d.immediate, |v| v != 0),
            snaplen: env("SNAPLEN").unwrap_or(d.snaplen),
            buffer_size: env("BUFSIZE").unwrap_or(d.buffer_size),
            ..d
        };
        let src = PacketSource::open_live(iface, opts, stop.clone())?;
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::Relaxed);
        });
        src
    } else {
        PacketSource::open_file_filtered(Path::new(file), args.get(2).map(|s| s.as_str()))?
    };
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut h = Sink::default();
    let (mut pkts, mut skipped, mut last) = (0u64, 0u64, Timestamp::ZERO);
    while let Some(p) = src.next_packet()? {
        pkts += 1;
        last = p.ts;
        match parse_tcp(&p) {
            Ok(seg) => tr.segment(&mut h, p.ts, &seg),
            Err(_) => skipped += 1,
        }
    }
    tr.finish(&mut h, last);
    if let Some(s) = src.stats() {
        println!("libpcap: {s:?}, link type {:?}", src.linktype());
    }
    let dt = t0.elapsed().as_secs_f64();
    let st = tr.stats();
    println!(
        "{pkts} packets ({skipped} not TCP) in {dt:.3} s = {:.2} Mpkt/s, {:.0} MB/s; delivered {} B, lost {} B, flows {}, retrans {}, dup {}, ooo {}",
        pkts as f64 / dt / 1e6,
        src.position().map_or(0, |p| p.0) as f64 / dt / 1e6,
        h.bytes,
        h.gaps,
        st.flows_opened,
        st.retransmitted_segments,
        st.duplicate_segments,
        st.out_of_order_segments,
    );
    Ok(())
}
