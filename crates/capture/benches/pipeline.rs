//! The capture pipeline without output: `parse_tcp` → `TcpTracker` →
//! `ClientHandler` → a no-op `ClientSink`, over an in-memory capture.
//!
//! `cargo bench -p zkscope-capture --bench pipeline`
//!
//! Input: `bench-data/zk-20k-cs.pcap` at the workspace root, made once by
//! `python3 bench/gen_pcap.py -o bench-data/zk-20k-cs.pcap -n 20000 --coalesce --split`
//! (41,890 packets, 40,400 messages that share and straddle segments) and then
//! reused; `scripts/bench.sh` caches the same file. The whole file is read into
//! memory before timing. If it cannot be generated (no python3), the bench
//! prints why and measures nothing.
//!
//! Two benches, both reported per packet (`Throughput::Elements`):
//! - `pipeline/parse_track_decode`: the packets are pre-split from the pcap
//!   records, so only `parse_tcp` + tracker + client decoder are timed;
//! - `pipeline/with_source`: the same plus `PacketSource::from_reader` over the
//!   in-memory bytes (pcap record parsing, as `zkscope dump -r` does).

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zkscope_capture::client::{
    ClientConfig, ClientHandler, ClientSink, ClientStats, Kind, Msg, ServerSpec,
};
use zkscope_capture::{
    parse_tcp, Linktype, PacketSource, RawPacket, TcpConfig, TcpTracker, Timestamp,
};

const MESSAGES: u64 = 20_000;

/// Counts messages by kind and touches each one, so nothing is optimised away.
#[derive(Default)]
struct Noop {
    msgs: u64,
    requests: u64,
    replies: u64,
}

impl ClientSink for Noop {
    fn message(&mut self, m: &Msg<'_>) {
        self.msgs += 1;
        match m.kind {
            Kind::Request(_) | Kind::ConnectRequest(_) => self.requests += 1,
            Kind::Reply { .. } | Kind::ConnectResponse(_) => self.replies += 1,
            _ => {}
        }
        black_box(m.size);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The capture's bytes, generating the file on first use.
fn load_capture() -> Result<Vec<u8>, String> {
    let root = workspace_root();
    let pcap = root.join("bench-data/zk-20k-cs.pcap");
    if !pcap.is_file() {
        std::fs::create_dir_all(root.join("bench-data")).map_err(|e| e.to_string())?;
        let status = Command::new("python3")
            .arg(root.join("bench/gen_pcap.py"))
            .arg("-o")
            .arg(&pcap)
            .args(["-n", &MESSAGES.to_string(), "--coalesce", "--split"])
            .status()
            .map_err(|e| format!("cannot run python3 bench/gen_pcap.py: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_file(&pcap);
            return Err(format!("bench/gen_pcap.py failed: {status}"));
        }
    }
    std::fs::read(&pcap).map_err(|e| format!("cannot read {}: {e}", pcap.display()))
}

/// Splits a classic pcap (either byte order, µs or ns timestamps) into packets.
fn split_pcap(buf: &[u8]) -> Result<Vec<RawPacket<'_>>, String> {
    let hdr = buf.get(..24).ok_or("file shorter than a pcap header")?;
    let magic = u32::from_le_bytes(hdr[..4].try_into().unwrap());
    let (le, nanos) = match magic {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        _ => return Err(format!("not a classic pcap (magic {magic:#x})")),
    };
    let u32_at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = Linktype(u32_at(hdr, 20) as i32);
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= buf.len() {
        let (sec, frac, caplen, orig) = (
            u32_at(buf, off),
            u32_at(buf, off + 4),
            u32_at(buf, off + 8) as usize,
            u32_at(buf, off + 12),
        );
        let data = buf
            .get(off + 16..off + 16 + caplen)
            .ok_or("truncated pcap record")?;
        let ns = if nanos {
            frac as i64
        } else {
            frac as i64 * 1000
        };
        out.push(RawPacket {
            ts: Timestamp::from_parts(sec as i64, ns),
            linktype,
            data,
            orig_len: orig,
        });
        off += 16 + caplen;
    }
    Ok(out)
}

fn handler() -> ClientHandler<Noop> {
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    ClientHandler::new(spec, ClientConfig::default(), Noop::default())
}

/// One pass over pre-split packets; returns the handler for checking.
fn run_packets(pkts: &[RawPacket<'_>]) -> ClientHandler<Noop> {
    let mut h = handler();
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    for p in pkts {
        last = p.ts;
        if let Ok(seg) = parse_tcp(p) {
            tr.segment(&mut h, p.ts, &seg);
        }
    }
    tr.finish(&mut h, last);
    h
}

/// One pass through `PacketSource` reading the in-memory bytes.
fn run_source(bytes: &Arc<[u8]>) -> ClientHandler<Noop> {
    let mut src = PacketSource::from_reader(
        "memory",
        Cursor::new(bytes.clone()),
        Some(bytes.len() as u64),
        None,
    )
    .expect("in-memory capture opens");
    let mut h = handler();
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    while let Some(p) = src.next_packet().expect("in-memory capture reads") {
        last = p.ts;
        if let Ok(seg) = parse_tcp(&p) {
            tr.segment(&mut h, p.ts, &seg);
        }
    }
    tr.finish(&mut h, last);
    h
}

fn check(what: &str, s: &ClientStats, sink: &Noop) {
    eprintln!(
        "{what}: {} messages ({} requests, {} replies incl. handshakes); decoder: {} requests, {} replies, {} undecodable, {} unpaired replies",
        sink.msgs, sink.requests, sink.replies, s.requests, s.replies, s.undecodable_frames, s.unpaired_replies
    );
}

fn benches(c: &mut Criterion) {
    let bytes = match load_capture() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pipeline bench skipped: {e}");
            return;
        }
    };
    let pkts = match split_pcap(&bytes) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("pipeline bench skipped: bench-data/zk-20k-cs.pcap: {e}");
            return;
        }
    };
    let n = pkts.len() as u64;
    let h = run_packets(&pkts);
    check("zk-20k-cs.pcap", &h.stats, &h.sink);

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(n));
    g.sample_size(30);
    g.measurement_time(std::time::Duration::from_secs(8));
    g.bench_function("parse_track_decode", |b| {
        b.iter(|| run_packets(black_box(&pkts)).sink.msgs)
    });

    let shared: Arc<[u8]> = Arc::from(bytes.as_slice());
    let h = run_source(&shared);
    assert_eq!(h.sink.msgs, run_packets(&pkts).sink.msgs);
    g.bench_function("with_source", |b| {
        b.iter(|| run_source(black_box(&shared)).sink.msgs)
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
