//! Once its series exist, the metrics recorder allocates nothing per message or call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use zkscope_analysis::metrics::{self, MetricsConfig, Recorder};
use zkscope_analysis::CallBuilder;
use zkscope_capture::client::{ClientConfig, ClientHandler, ClientSink, Msg, ServerSpec};
use zkscope_capture::{parse_tcp, PacketSource, TcpConfig, TcpTracker, Timestamp};

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local Cell that
// allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if ON.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Counts the allocations made inside the recorder only.
struct Probe {
    rec: Recorder,
    calls: CallBuilder,
}

fn counted<T>(f: impl FnOnce() -> T) -> T {
    ON.with(|o| o.set(true));
    let v = f();
    ON.with(|o| o.set(false));
    v
}

impl ClientSink for Probe {
    fn message(&mut self, m: &Msg<'_>) {
        let Probe { rec, calls } = self;
        counted(|| rec.message(m));
        calls.message(m, &mut |c| counted(|| rec.call(c)));
    }
}

fn replay(probe: Probe) -> Probe {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic/dump.pcap");
    let mut src = PacketSource::open_file(&path).expect("open fixture");
    let spec = ServerSpec {
        ports: vec![2181],
        ..ServerSpec::default()
    };
    let mut h = ClientHandler::new(spec, ClientConfig::default(), probe);
    let mut tr = TcpTracker::new(TcpConfig::default());
    let mut last = Timestamp::ZERO;
    while let Some(p) = src.next_packet().expect("read") {
        last = p.ts;
        if let Ok(seg) = parse_tcp(&p) {
            tr.segment(&mut h, p.ts, &seg);
        }
    }
    tr.finish(&mut h, last);
    h.sink
}

#[test]
fn no_allocation_once_series_exist() {
    let (m, rec) = metrics::new(&MetricsConfig::default());
    let probe = replay(Probe {
        rec,
        calls: CallBuilder::default(),
    });
    let first = COUNT.with(Cell::get);
    assert!(first > 0, "the first pass creates the series");
    COUNT.with(|c| c.set(0));
    let _probe = replay(probe);
    assert_eq!(COUNT.with(Cell::get), 0);
    assert!(m
        .encode()
        .contains("zkscope_requests_total{op=\"exists\",result=\"NONODE\"} 6\n"));
}
