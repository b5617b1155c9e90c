//! Packet sources: pcap/pcapng files (or stdin) and live libpcap captures.
//!
//! Files are streamed through a bounded buffer (1 MiB, grown only for a single larger record,
//! up to 16 MiB); packets are lent out of that buffer without copying. Classic pcap records
//! are read directly (a 16-byte header each); pcapng blocks through pcap-parser's reader.

use crate::packet::{Linktype, RawPacket, Timestamp};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::{PcapNGPacketBlock, PcapReaderIterator};
use pcap_parser::{LegacyPcapReader, PcapBlockOwned, PcapError, PcapNGReader};
use serde::Serialize;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Initial file buffer.
const BUF_INITIAL: usize = 1 << 20;
/// Largest record (and buffer) accepted.
const BUF_MAX: usize = 16 << 20;
/// Most pcapng interfaces per section.
const MAX_IFACES: usize = 1 << 16;

/// Errors of a packet source. Display strings are complete user messages.
#[derive(Debug, thiserror::Error)]
///
/// `name` is the file name (`<stdin>` for `-`), `iface` the interface,
/// `offset` a byte position in the input.
#[allow(missing_docs)]
pub enum CaptureError {
    /// Opening or reading the input failed.
    // The cause is in the message and deliberately not a `source()`: reporters that print the
    // chain (anyhow's `{:#}`) would say it twice.
    #[error("{name}: {}", io_text(.error))]
    Io { name: String, error: io::Error },
    /// Zero-length input.
    #[error("{name}: empty file")]
    Empty { name: String },
    /// Neither pcap nor pcapng magic.
    #[error("{name}: not a pcap or pcapng file")]
    NotPcap { name: String },
    /// The input ends inside a header or record.
    #[error("{name}: file truncated at byte {offset} ({what})")]
    Truncated {
        name: String,
        offset: u64,
        what: &'static str,
    },
    /// A record that cannot be parsed.
    #[error("{name}: corrupt capture file at byte {offset}: {detail}")]
    Corrupt {
        name: String,
        offset: u64,
        detail: String,
    },
    /// A record larger than the 16 MiB buffer limit.
    #[error("{name}: record at byte {offset} is larger than {limit} bytes (corrupt file?)")]
    TooLarge {
        name: String,
        offset: u64,
        limit: usize,
    },
    /// The BPF filter does not compile.
    #[error("invalid capture filter {filter:?} for link type {linktype}: {msg}")]
    Filter {
        filter: String,
        linktype: Linktype,
        msg: String,
    },
    /// Live capture without the needed privileges.
    #[error(
        "cannot capture on {iface}: permission denied ({msg}); live capture needs root or \
         CAP_NET_RAW (e.g. `setcap cap_net_raw,cap_net_admin=eip <binary>`)"
    )]
    Permission { iface: String, msg: String },
    /// Unknown interface.
    #[error("cannot capture on {iface}: no such interface ({msg})")]
    NoSuchInterface { iface: String, msg: String },
    /// Any other libpcap failure.
    #[error("capture on {iface} failed: {msg}")]
    Live { iface: String, msg: String },
}

/// Settings of a live capture.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Bytes captured per packet.
    pub snaplen: i32,
    /// Promiscuous mode.
    pub promisc: bool,
    /// Kernel ring buffer size in bytes.
    pub buffer_size: i32,
    /// BPF filter expression, applied in the kernel.
    pub filter: Option<String>,
    /// Deliver packets as soon as they arrive (no batching delay).
    pub immediate: bool,
    /// Read timeout; bounds how long `next_packet` takes to notice `stop`.
    pub timeout_ms: i32,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 262_144,
            promisc: false,
            buffer_size: 32 << 20,
            filter: None,
            immediate: true,
            timeout_ms: 100,
        }
    }
}

/// libpcap's counters of a live capture.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CaptureStats {
    /// Packets received (`ps_recv`).
    pub received: u64,
    /// Dropped for lack of buffer space (`ps_drop`).
    pub dropped: u64,
    /// Dropped by the interface or driver (`ps_ifdrop`).
    pub if_dropped: u64,
}

/// Where packets come from. Call [`PacketSource::next_packet`] in a loop.
pub struct PacketSource {
    inner: Inner,
}

enum Inner {
    File(Box<FileSource>),
    Live(Box<LiveSource>),
}

impl PacketSource {
    /// Open a pcap or pcapng file (format detected by content); `-` is stdin.
    pub fn open_file(path: &Path) -> Result<Self, CaptureError> {
        Self::open_file_filtered(path, None)
    }

    /// [`PacketSource::open_file`] with a BPF filter evaluated in user space.
    pub fn open_file_filtered(path: &Path, filter: Option<&str>) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        if name == "-" {
            return Self::from_reader("<stdin>", io::stdin(), None, filter);
        }
        let io_err = |error| CaptureError::Io {
            name: name.clone(),
            error,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(io::Error::other("is a directory")));
        }
        let size = meta.is_file().then_some(meta.len());
        Self::from_reader(&name, file, size, filter)
    }

    /// Read a capture from any byte stream; `name` is used in messages and
    /// `size` (if known) in [`PacketSource::position`].
    pub fn from_reader(
        name: &str,
        reader: impl Read + Send + 'static,
        size: Option<u64>,
        filter: Option<&str>,
    ) -> Result<Self, CaptureError> {
        let f = FileSource::new(name, Box::new(reader), size, filter)?;
        Ok(PacketSource {
            inner: Inner::File(Box::new(f)),
        })
    }

    /// Start a live capture on `iface` (`any` works on Linux). `next_packet`
    /// returns `Ok(None)` within `timeout_ms` once `stop` is set.
    pub fn open_live(
        iface: &str,
        opts: LiveOptions,
        stop: Arc<AtomicBool>,
    ) -> Result<Self, CaptureError> {
        let l = LiveSource::open(iface, &opts, stop)?;
        Ok(PacketSource {
            inner: Inner::Live(Box::new(l)),
        })
    }

    /// Make a file source stop early (returning `Ok(None)`) once `stop` is set.
    pub fn set_stop(&mut self, stop: Arc<AtomicBool>) {
        match &mut self.inner {
            Inner::File(f) => f.stop = Some(stop),
            Inner::Live(l) => {
                // Best effort: without a watcher, stop is still seen at the next packet.
                let _ = l.watch(stop.clone());
                l.stop = stop;
            }
        }
    }

    /// The next packet; `None` at end of input or when stopped.
    ///
    /// A file that ends inside a record yields its complete packets first and
    /// then [`CaptureError::Truncated`].
    pub fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        match &mut self.inner {
            Inner::File(f) => f.next_packet(),
            Inner::Live(l) => l.next_packet(),
        }
    }

    /// `(bytes read, total size)` for progress display; `None` for live captures.
    pub fn position(&self) -> Option<(u64, Option<u64>)> {
        match &self.inner {
            Inner::File(f) => Some((f.position(), f.size)),
            Inner::Live(_) => None,
        }
    }

    /// libpcap counters of a live capture (`None` for files or on error).
    pub fn stats(&mut self) -> Option<CaptureStats> {
        match &mut self.inner {
            Inner::File(_) => None,
            Inner::Live(l) => l.cap.as_mut()?.stats().ok().map(|s| CaptureStats {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            }),
        }
    }

    /// The link type of a live capture or classic pcap file (`None` for
    /// pcapng, where it is per interface: see [`RawPacket::linktype`]).
    pub fn linktype(&self) -> Option<Linktype> {
        match &self.inner {
            Inner::File(f) => f.legacy.map(|l| l.0),
            Inner::Live(l) => Some(l.linktype),
        }
    }

    /// File name or interface.
    pub fn name(&self) -> &str {
        match &self.inner {
            Inner::File(f) => &f.name,
            Inner::Live(l) => &l.iface,
        }
    }

    /// The snap length, the most bytes kept of each packet: the file header's (classic pcap),
    /// the smallest of the interfaces described so far (pcapng), the capture's own (live).
    /// `None` when unlimited or not known yet (before the first packet of a file).
    pub fn snaplen(&self) -> Option<u32> {
        let s = match &self.inner {
            Inner::File(f) => f.snaplen,
            Inner::Live(l) => l.snaplen,
        };
        (s != 0).then_some(s)
    }

    /// Whether this is a live capture.
    pub fn is_live(&self) -> bool {
        matches!(self.inner, Inner::Live(_))
    }

    /// Packets of a pcapng file skipped because their interface was not
    /// described (or had an unusable timestamp resolution).
    pub fn skipped_packets(&self) -> u64 {
        match &self.inner {
            Inner::File(f) => f.skipped,
            Inner::Live(_) => 0,
        }
    }
}

extern "C" {
    // libpcap's own version string (the pcap crate links libpcap but does not wrap this).
    fn pcap_lib_version() -> *const std::ffi::c_char;
}

/// The version of the libpcap zkscope runs with, as libpcap says it
/// (`libpcap version 1.10.3 (with TPACKET_V3)`).
#[allow(unsafe_code)]
pub fn libpcap_version() -> String {
    // SAFETY: `pcap_lib_version` takes no argument and returns a pointer to a static,
    // NUL-terminated string owned by libpcap, valid for the life of the process and never
    // written to after; the null check guards a broken library.
    let p = unsafe { pcap_lib_version() };
    if p.is_null() {
        return "libpcap (unknown version)".to_string();
    }
    // SAFETY: non-null, NUL-terminated and static (see above).
    unsafe { std::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// A capture interface, as `tcpdump -D` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// The name to give `-i`.
    pub name: String,
    /// libpcap's description, when it has one.
    pub description: Option<String>,
    /// `Loopback`, `Up`, `Running`.
    pub flags: Vec<&'static str>,
}

/// The interfaces libpcap can capture on (`any` included on Linux).
pub fn list_interfaces() -> Result<Vec<Interface>, CaptureError> {
    let devs = pcap::Device::list().map_err(|e| CaptureError::Live {
        iface: "(list)".to_string(),
        msg: e.to_string(),
    })?;
    Ok(devs
        .into_iter()
        .map(|d| {
            let mut flags = Vec::new();
            if d.flags.is_loopback() {
                flags.push("Loopback");
            }
            if d.flags.is_up() {
                flags.push("Up");
            }
            if d.flags.is_running() {
                flags.push("Running");
            }
            Interface {
                name: d.name,
                description: d.desc,
                flags,
            }
        })
        .collect())
}

/// An I/O error as tcpdump words it: `No such file or directory`, without Rust's
/// ` (os error 2)` suffix.
fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

// ---------------------------------------------------------------------------
// Files.

/// Reader that retries on EINTR and keeps the real I/O error (pcap-parser
/// only reports "read error").
struct Input {
    inner: Box<dyn Read + Send>,
    err: Arc<Mutex<Option<io::Error>>>,
}

impl Input {
    /// An input with nothing to read.
    fn empty() -> Self {
        Input {
            inner: Box::new(io::empty()),
            err: Arc::default(),
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let kind = e.kind();
                    if let Ok(mut slot) = self.err.lock() {
                        *slot = Some(e);
                    }
                    return Err(io::Error::from(kind));
                }
                ok => return ok,
            }
        }
    }
}

/// Read until `buf` holds `n` bytes or the input ends.
fn fill_to(r: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    while buf.len() < n {
        let want = (n - buf.len()).min(chunk.len());
        match r.read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Iface {
    linktype: Linktype,
    /// Timestamp units per second (0 = unusable).
    units: u64,
    /// Nanoseconds per unit when that is an integer.
    mul: Option<u64>,
    offset_ns: i64,
}

impl Iface {
    fn new(linktype: Linktype, tsresol: u8, offset_secs: i64) -> Self {
        let v = u32::from(tsresol & 0x7f);
        let units = if tsresol & 0x80 == 0 {
            10u64.checked_pow(v).unwrap_or(0)
        } else {
            1u64.checked_shl(v).unwrap_or(0)
        };
        let mul = (units != 0 && 1_000_000_000 % units == 0).then(|| 1_000_000_000 / units);
        Iface {
            linktype,
            units,
            mul,
            offset_ns: offset_secs.saturating_mul(1_000_000_000),
        }
    }

    fn ts(&self, high: u32, low: u32) -> Option<Timestamp> {
        let t = (u64::from(high) << 32) | u64::from(low);
        let ns: i64 = match self.mul {
            Some(m) => i64::try_from(u128::from(t) * u128::from(m)).unwrap_or(i64::MAX),
            None if self.units != 0 => {
                i64::try_from(u128::from(t) * 1_000_000_000 / u128::from(self.units))
                    .unwrap_or(i64::MAX)
            }
            None => return None,
        };
        Some(Timestamp(ns.saturating_add(self.offset_ns)))
    }
}

/// BPF programs for a file, compiled per link type on first use.
struct FileFilter {
    expr: String,
    progs: Vec<(Linktype, pcap::BpfProgram)>,
}

impl FileFilter {
    fn compile(expr: &str, lt: Linktype) -> Result<pcap::BpfProgram, CaptureError> {
        let err = |e: pcap::Error| CaptureError::Filter {
            filter: expr.to_string(),
            linktype: lt,
            msg: e.to_string(),
        };
        let cap = pcap::Capture::dead(pcap::Linktype(lt.0)).map_err(err)?;
        cap.compile(expr, true).map_err(err)
    }

    fn matches(&mut self, lt: Linktype, data: &[u8]) -> Result<bool, CaptureError> {
        if let Some((_, p)) = self.progs.iter().find(|(l, _)| *l == lt) {
            return Ok(p.filter(data));
        }
        let p = Self::compile(&self.expr, lt)?;
        let ok = p.filter(data);
        self.progs.push((lt, p));
        Ok(ok)
    }
}

/// What the last `next()` of the reader produced, without borrowing it.
enum Step {
    Packet {
        off: usize,
        start: usize,
        len: usize,
        ts: Timestamp,
        linktype: Linktype,
        orig_len: u32,
    },
    Skip(usize),
    Eof,
    Refill,
    Grow,
    UnexpectedEof,
    ReadError,
    Corrupt(String),
}

struct FileSource {
    name: String,
    reader: Box<dyn PcapReaderIterator + Send>,
    /// Classic pcap files (but the "modified" format) are read by [`Records`] instead of
    /// `reader`, which then only parsed the file header.
    records: Option<Records>,
    capacity: usize,
    /// Bytes of the record lent out last, consumed on the next call.
    pending: usize,
    size: Option<u64>,
    /// Classic pcap: link type and nanosecond timestamps.
    legacy: Option<(Linktype, bool)>,
    ifaces: Vec<Iface>,
    last_ts: Timestamp,
    filter: Option<FileFilter>,
    io_err: Arc<Mutex<Option<io::Error>>>,
    stop: Option<Arc<AtomicBool>>,
    done: bool,
    skipped: u64,
    /// The smallest snap length of the file header or its interfaces (0: none yet).
    snaplen: u32,
}

type Chained = io::Chain<Cursor<Vec<u8>>, Input>;

impl FileSource {
    fn new(
        name: &str,
        inner: Box<dyn Read + Send>,
        size: Option<u64>,
        filter: Option<&str>,
    ) -> Result<Self, CaptureError> {
        let name = name.to_string();
        let io_err = Arc::new(Mutex::new(None));
        let mut input = Input {
            inner,
            err: io_err.clone(),
        };
        let ioe = |error| CaptureError::Io {
            name: name.clone(),
            error,
        };
        let truncated = |what| CaptureError::Truncated {
            name: name.clone(),
            offset: 0,
            what,
        };
        // Detect the format from the first bytes, reading exactly the file
        // header so that a pipe is never waited on for more.
        let mut pre = Vec::with_capacity(64);
        fill_to(&mut input, &mut pre, 4).map_err(ioe)?;
        if pre.is_empty() {
            return Err(CaptureError::Empty { name });
        }
        let magic: [u8; 4] = match pre.get(..4).and_then(|m| m.try_into().ok()) {
            Some(m) => m,
            None => return Err(CaptureError::NotPcap { name }),
        };
        let ng = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => true,
            [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0xc3, 0xd4]
            | [0x4d, 0x3c, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x34, 0xcd, 0xb2, 0xa1] => false,
            _ => return Err(CaptureError::NotPcap { name }),
        };
        if ng {
            fill_to(&mut input, &mut pre, 12).map_err(ioe)?;
            let (Some(len), Some(bom)) = (pre.get(4..8), pre.get(8..12)) else {
                return Err(truncated("incomplete section header"));
            };
            let len = match bom {
                [0x4d, 0x3c, 0x2b, 0x1a] => u32::from_le_bytes([len[0], len[1], len[2], len[3]]),
                [0x1a, 0x2b, 0x3c, 0x4d] => u32::from_be_bytes([len[0], len[1], len[2], len[3]]),
                _ => return Err(CaptureError::NotPcap { name }),
            } as usize;
            if !(28..BUF_INITIAL).contains(&len) || !len.is_multiple_of(4) {
                return Err(CaptureError::Corrupt {
                    name,
                    offset: 0,
                    detail: format!("bad section header length {len}"),
                });
            }
            fill_to(&mut input, &mut pre, len).map_err(ioe)?;
            if pre.len() < len {
                return Err(truncated("incomplete section header"));
            }
        } else {
            fill_to(&mut input, &mut pre, 24).map_err(ioe)?;
            if pre.len() < 24 {
                return Err(truncated("incomplete file header"));
            }
        }
        let src: Chained = Cursor::new(pre).chain(input);
        let corrupt = |e: PcapError<&'static [u8]>| CaptureError::Corrupt {
            name: name.clone(),
            offset: 0,
            detail: format!("bad file header ({e:?})"),
        };
        let header = (!ng)
            .then(|| pcap_parser::pcap::parse_pcap_header(&src.get_ref().0.get_ref()[..]))
            .and_then(Result::ok)
            .map(|(_, h)| h)
            .filter(|h| !h.is_modified_format());
        let mut records = None;
        let reader: Box<dyn PcapReaderIterator + Send> = if ng {
            Box::new(PcapNGReader::new(BUF_INITIAL, src).map_err(corrupt)?)
        } else if let Some(h) = header {
            // pcap-parser only reads the header (24 bytes, already here): records are read
            // by `Records`, the rest of the stream with them.
            let (pre, input) = src.into_inner();
            let pre = pre.into_inner();
            let hdr = Cursor::new(pre.get(..24).unwrap_or(&[]).to_vec());
            let r = LegacyPcapReader::new(64, hdr.chain(Input::empty())).map_err(corrupt)?;
            records = Some(Records::new(
                Cursor::new(pre.get(24..).unwrap_or(&[]).to_vec()).chain(input),
                h.is_bigendian(),
            ));
            Box::new(r)
        } else {
            Box::new(LegacyPcapReader::new(BUF_INITIAL, src).map_err(corrupt)?)
        };
        let mut f = FileSource {
            name,
            reader,
            records,
            capacity: BUF_INITIAL,
            pending: 0,
            size,
            legacy: None,
            ifaces: Vec::new(),
            last_ts: Timestamp::ZERO,
            filter: None,
            io_err,
            stop: None,
            done: false,
            skipped: 0,
            snaplen: 0,
        };
        if let Some(expr) = filter {
            // Check the syntax now (against Ethernet); compiled per link type later.
            FileFilter::compile(expr, Linktype::ETHERNET)?;
            f.filter = Some(FileFilter {
                expr: expr.to_string(),
                progs: Vec::new(),
            });
        }
        Ok(f)
    }

    fn position(&self) -> u64 {
        if let Some(r) = &self.records {
            return 24 + r.offset;
        }
        (self.reader.consumed() + self.pending) as u64
    }

    fn err_corrupt(&self, detail: String) -> CaptureError {
        CaptureError::Corrupt {
            name: self.name.clone(),
            offset: self.position(),
            detail,
        }
    }

    /// Parse the next block and record what it is.
    fn step(&mut self) -> Step {
        let base = self.reader.data().as_ptr() as usize;
        let (off, block) = match self.reader.next() {
            Ok(x) => x,
            Err(PcapError::Eof) => return Step::Eof,
            Err(PcapError::Incomplete(_)) => return Step::Refill,
            Err(PcapError::BufferTooSmall) => return Step::Grow,
            Err(PcapError::UnexpectedEof) => return Step::UnexpectedEof,
            Err(PcapError::ReadError) => return Step::ReadError,
            Err(PcapError::HeaderNotRecognized) => {
                return Step::Corrupt("unknown block".into());
            }
            Err(e) => return Step::Corrupt(format!("unparsable record ({e:?})")),
        };
        // Locate the packet in the buffer so it can be re-borrowed later.
        let packet =
            |d: &[u8], ts, linktype, orig_len| match (d.as_ptr() as usize).checked_sub(base) {
                Some(start) => Step::Packet {
                    off,
                    start,
                    len: d.len(),
                    ts,
                    linktype,
                    orig_len,
                },
                None => Step::Corrupt("internal: packet outside the read buffer".into()),
            };
        match block {
            PcapBlockOwned::LegacyHeader(h) => {
                self.snaplen = h.snaplen;
                self.legacy = Some((
                    Linktype(h.network.0 & 0x03ff_ffff),
                    h.is_nanosecond_precision(),
                ));
                Step::Skip(off)
            }
            PcapBlockOwned::Legacy(b) => {
                let (lt, nanos) = self.legacy.unwrap_or((Linktype::ETHERNET, false));
                let frac = i64::from(b.ts_usec);
                let frac = if nanos { frac } else { frac * 1000 };
                let ts = Timestamp::from_parts(i64::from(b.ts_sec), frac);
                packet(b.data, ts, lt, b.origlen)
            }
            PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                self.ifaces.clear();
                Step::Skip(off)
            }
            PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                // 0: no limit
                if idb.snaplen != 0 && (self.snaplen == 0 || idb.snaplen < self.snaplen) {
                    self.snaplen = idb.snaplen;
                }
                if self.ifaces.len() < MAX_IFACES {
                    let lt = Linktype(idb.linktype.0 & 0x03ff_ffff);
                    self.ifaces
                        .push(Iface::new(lt, idb.if_tsresol, idb.if_tsoffset));
                }
                Step::Skip(off)
            }
            PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                let iface = usize::try_from(epb.if_id)
                    .ok()
                    .and_then(|i| self.ifaces.get(i));
                match iface.and_then(|i| Some((i.linktype, i.ts(epb.ts_high, epb.ts_low)?))) {
                    Some((lt, ts)) => packet(epb.packet_data(), ts, lt, epb.origlen),
                    None => {
                        self.skipped += 1;
                        Step::Skip(off)
                    }
                }
            }
            PcapBlockOwned::NG(Block::SimplePacket(spb)) => match self.ifaces.first() {
                Some(i) => packet(spb.packet_data(), self.last_ts, i.linktype, spb.origlen),
                None => {
                    self.skipped += 1;
                    Step::Skip(off)
                }
            },
            PcapBlockOwned::NG(_) => Step::Skip(off),
        }
    }

    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.done {
            return Ok(None);
        }
        if self.records.is_some() {
            return self.next_record();
        }
        if self.pending > 0 {
            self.reader.consume_noshift(self.pending);
            self.pending = 0;
        }
        let (off, start, len, ts, linktype, orig_len) = loop {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Ok(None);
            }
            match self.step() {
                Step::Packet {
                    off,
                    start,
                    len,
                    ts,
                    linktype,
                    orig_len,
                } => {
                    if let Some(f) = self.filter.as_mut() {
                        let data = self.reader.data().get(start..start + len).unwrap_or(&[]);
                        match f.matches(linktype, data) {
                            Ok(true) => {}
                            Ok(false) => {
                                self.reader.consume_noshift(off);
                                continue;
                            }
                            Err(e) => {
                                self.done = true;
                                return Err(e);
                            }
                        }
                    }
                    break (off, start, len, ts, linktype, orig_len);
                }
                Step::Skip(off) => self.reader.consume_noshift(off),
                Step::Eof => {
                    self.done = true;
                    return Ok(None);
                }
                Step::Refill => {
                    if self.reader.data().len() >= self.capacity {
                        self.grow()?;
                    }
                    if self.reader.refill().is_err() {
                        return Err(self.read_error());
                    }
                }
                Step::Grow => self.grow()?,
                Step::UnexpectedEof => {
                    self.done = true;
                    if self.reader.data().is_empty() {
                        return Ok(None);
                    }
                    return Err(CaptureError::Truncated {
                        name: self.name.clone(),
                        offset: self.position(),
                        what: "incomplete record at end of file",
                    });
                }
                Step::ReadError => return Err(self.read_error()),
                Step::Corrupt(detail) => {
                    self.done = true;
                    return Err(self.err_corrupt(detail));
                }
            }
        };
        self.pending = off;
        self.last_ts = ts;
        let data = self.reader.data().get(start..start + len).unwrap_or(&[]);
        Ok(Some(RawPacket {
            ts,
            linktype,
            data,
            orig_len,
        }))
    }

    /// [`FileSource::next_packet`] for classic pcap files.
    fn next_record(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        if self.legacy.is_none() {
            // The file header, parsed by pcap-parser when the file was opened.
            loop {
                match self.step() {
                    Step::Skip(_) if self.legacy.is_some() => break,
                    Step::Skip(off) => self.reader.consume_noshift(off),
                    _ => {
                        self.done = true;
                        return Err(self.err_corrupt("bad file header".into()));
                    }
                }
            }
        }
        let (linktype, nanos) = self.legacy.unwrap_or((Linktype::ETHERNET, false));
        let Some(r) = self.records.as_mut() else {
            return Ok(None);
        };
        let rec = loop {
            if self
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                return Ok(None);
            }
            let rec = match r.next() {
                Ok(Some(rec)) => rec,
                Ok(None) => {
                    self.done = true;
                    return Ok(None);
                }
                Err(e) => {
                    self.done = true;
                    let offset = 24 + r.offset;
                    return Err(match e {
                        RecordError::Truncated => CaptureError::Truncated {
                            name: self.name.clone(),
                            offset,
                            what: "incomplete record at end of file",
                        },
                        RecordError::TooLarge => CaptureError::TooLarge {
                            name: self.name.clone(),
                            offset,
                            limit: BUF_MAX,
                        },
                        RecordError::Read => io_error(&self.name, &self.io_err),
                    });
                }
            };
            if let Some(f) = self.filter.as_mut() {
                match f.matches(linktype, r.data(&rec)) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.done = true;
                        return Err(e);
                    }
                }
            }
            break rec;
        };
        let frac = i64::from(rec.ts_frac);
        let frac = if nanos { frac } else { frac * 1000 };
        let ts = Timestamp::from_parts(i64::from(rec.ts_sec), frac);
        self.last_ts = ts;
        Ok(Some(RawPacket {
            ts,
            linktype,
            data: r.data(&rec),
            orig_len: rec.orig_len,
        }))
    }

    fn grow(&mut self) -> Result<(), CaptureError> {
        if self.capacity >= BUF_MAX {
            self.done = true;
            return Err(CaptureError::TooLarge {
                name: self.name.clone(),
                offset: self.position(),
                limit: BUF_MAX,
            });
        }
        self.capacity = (self.capacity * 2).min(BUF_MAX);
        self.reader.grow(self.capacity);
        Ok(())
    }

    fn read_error(&mut self) -> CaptureError {
        self.done = true;
        io_error(&self.name, &self.io_err)
    }
}

/// The read error the input kept (see [`Input`]) of file `name`.
fn io_error(name: &str, kept: &Mutex<Option<io::Error>>) -> CaptureError {
    let error = kept
        .lock()
        .ok()
        .and_then(|mut e| e.take())
        .unwrap_or_else(|| io::Error::other("read error"));
    CaptureError::Io {
        name: name.to_string(),
        error,
    }
}

/// The records of a classic pcap file, read straight from a large buffer: each packet is a
/// slice of it (no copy), and the only per-record work is reading its 16-byte header.
struct Records {
    input: io::Chain<Cursor<Vec<u8>>, Input>,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// File offset (after the file header) of `buf[pos]`.
    offset: u64,
    eof: bool,
    big_endian: bool,
}

/// A record found by [`Records::next`]: its packet is `buf[start..start + len]`.
struct Record {
    start: usize,
    len: usize,
    ts_sec: u32,
    ts_frac: u32,
    orig_len: u32,
}

enum RecordError {
    /// The input ends inside a record.
    Truncated,
    /// A record larger than [`BUF_MAX`].
    TooLarge,
    /// Reading failed (the error is in `FileSource::io_err`).
    Read,
}

impl Records {
    fn new(input: io::Chain<Cursor<Vec<u8>>, Input>, big_endian: bool) -> Self {
        Records {
            input,
            buf: vec![0; BUF_INITIAL],
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
            big_endian,
        }
    }

    fn data(&self, r: &Record) -> &[u8] {
        self.buf.get(r.start..r.start + r.len).unwrap_or(&[])
    }

    fn next(&mut self) -> Result<Option<Record>, RecordError> {
        loop {
            let avail = self.end - self.pos;
            let header = self
                .buf
                .get(self.pos..self.pos + 16)
                .and_then(|h| <[u8; 16]>::try_from(h).ok());
            if let (true, Some(h)) = (avail >= 16, header) {
                let word = |i: usize| {
                    let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
                    if self.big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                };
                let caplen = word(8) as usize;
                let need = 16 + caplen;
                if avail >= need {
                    let rec = Record {
                        start: self.pos + 16,
                        len: caplen,
                        ts_sec: word(0),
                        ts_frac: word(4),
                        orig_len: word(12),
                    };
                    self.pos += need;
                    self.offset += need as u64;
                    return Ok(Some(rec));
                }
                if need >= BUF_MAX {
                    return Err(RecordError::TooLarge);
                }
                if need > self.buf.len() {
                    let size = (self.buf.len() * 2).max(need).min(BUF_MAX);
                    self.buf.resize(size, 0);
                }
            }
            if self.eof {
                return if avail == 0 {
                    Ok(None)
                } else {
                    Err(RecordError::Truncated)
                };
            }
            // Move the partial record to the front and read as much as fits.
            self.buf.copy_within(self.pos..self.end, 0);
            self.end = avail;
            self.pos = 0;
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(_) => return Err(RecordError::Read),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Live capture.

struct LiveSource {
    /// `None` only if switching to non-blocking mode for the drain failed (then reading ends).
    cap: Option<pcap::Capture<pcap::Active>>,
    stop: Arc<AtomicBool>,
    /// Set once `stop` was seen: the capture is non-blocking and reads what the kernel had
    /// already buffered, until it is empty or this deadline passes.
    drain_until: Option<std::time::Instant>,
    /// Without immediate mode (TPACKET_V3), packets become readable when the kernel retires
    /// their block, at the latest after the read timeout: a drain goes on polling until then.
    drain_settle: std::time::Duration,
    drain_quiet: Option<std::time::Instant>,
    /// Cleared on drop; ends the watcher threads.
    alive: Arc<AtomicBool>,
    linktype: Linktype,
    iface: String,
    nanos: bool,
    snaplen: u32,
}

impl Drop for LiveSource {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

fn live_error(iface: &str, e: pcap::Error) -> CaptureError {
    let msg = e.to_string();
    let lower = msg.to_ascii_lowercase();
    let iface = iface.to_string();
    if lower.contains("permission") || lower.contains("not permitted") {
        CaptureError::Permission { iface, msg }
    } else if lower.contains("no such device") || lower.contains("doesn't exist") {
        CaptureError::NoSuchInterface { iface, msg }
    } else {
        CaptureError::Live { iface, msg }
    }
}

impl LiveSource {
    fn open(iface: &str, opts: &LiveOptions, stop: Arc<AtomicBool>) -> Result<Self, CaptureError> {
        let cap = pcap::Capture::from_device(iface)
            .map_err(|e| live_error(iface, e))?
            .snaplen(opts.snaplen)
            .promisc(opts.promisc)
            .buffer_size(opts.buffer_size)
            .immediate_mode(opts.immediate)
            .timeout(opts.timeout_ms.max(1));
        // Nanosecond stamps are reliable on Linux; elsewhere keep microseconds.
        #[cfg(target_os = "linux")]
        let (cap, nanos) = (cap.precision(pcap::Precision::Nano), true);
        #[cfg(not(target_os = "linux"))]
        let nanos = false;
        let mut cap = cap.open().map_err(|e| live_error(iface, e))?;
        let linktype = Linktype(cap.get_datalink().0);
        if let Some(f) = &opts.filter {
            cap.filter(f, true).map_err(|e| CaptureError::Filter {
                filter: f.clone(),
                linktype,
                msg: e.to_string(),
            })?;
        }
        let mut l = LiveSource {
            cap: Some(cap),
            stop: stop.clone(),
            drain_until: None,
            drain_settle: if opts.immediate {
                std::time::Duration::ZERO
            } else {
                std::time::Duration::from_millis(
                    u64::try_from(opts.timeout_ms.max(1)).unwrap_or(1000) + 50,
                )
            },
            drain_quiet: None,
            alive: Arc::new(AtomicBool::new(true)),
            linktype,
            iface: iface.to_string(),
            nanos,
            snaplen: u32::try_from(opts.snaplen).unwrap_or(0),
        };
        l.watch(stop)?;
        Ok(l)
    }

    /// On Linux, libpcap's read timeout does not make `pcap_next_ex` return
    /// while no packet arrives, so a small thread turns `stop` into
    /// `pcap_breakloop` (which wakes the blocked read).
    fn watch(&mut self, stop: Arc<AtomicBool>) -> Result<(), CaptureError> {
        let Some(cap) = self.cap.as_mut() else {
            return Ok(());
        };
        let breaker = cap.breakloop_handle();
        let alive = self.alive.clone();
        std::thread::Builder::new()
            .name("zkscope-capture-stop".into())
            .spawn(move || {
                while alive.load(Ordering::Relaxed) {
                    if stop.load(Ordering::Relaxed) {
                        breaker.breakloop();
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            })
            .map(drop)
            .map_err(|e| CaptureError::Live {
                iface: self.iface.clone(),
                msg: format!("cannot start the stop watcher thread: {e}"),
            })
    }

    /// Ctrl-C (or `--duration`) was seen: rather than drop what the kernel already captured
    /// (the replies to the last requests, typically), read on without blocking until the
    /// buffer is empty, for at most a second in case traffic keeps flowing.
    fn start_drain(&mut self) {
        let now = std::time::Instant::now();
        self.drain_until = Some(now + std::time::Duration::from_secs(1));
        self.drain_quiet = Some(now + self.drain_settle);
        self.cap = self.cap.take().and_then(|c| c.setnonblock().ok());
    }

    #[allow(unsafe_code)]
    fn next_packet(&mut self) -> Result<Option<RawPacket<'_>>, CaptureError> {
        // The loop cannot return the borrowed packet directly (a conditional
        // return of a borrow inside a loop is rejected by today's borrow
        // checker), so it records the packet's location and rebuilds the
        // slice below.
        let (hdr, ptr, len) = loop {
            if self.stop.load(Ordering::Relaxed) && self.drain_until.is_none() {
                self.start_drain();
            }
            if self
                .drain_until
                .is_some_and(|t| std::time::Instant::now() >= t)
            {
                return Ok(None);
            }
            let Some(cap) = self.cap.as_mut() else {
                return Ok(None);
            };
            match cap.next_packet() {
                Ok(p) => break (*p.header, p.data.as_ptr(), p.data.len()),
                // Nothing buffered: go on waiting, or, when draining, the drain is complete.
                Err(pcap::Error::TimeoutExpired) => {
                    if self.drain_until.is_some() {
                        if self
                            .drain_quiet
                            .is_some_and(|t| std::time::Instant::now() < t)
                        {
                            // A block may still be open: poll until the kernel retires it.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            continue;
                        }
                        return Ok(None);
                    }
                }
                // pcap_breakloop (from the watcher) ends one read this way, blocked or not;
                // the loop then sees `stop` and drains.
                Err(pcap::Error::NoMorePackets) => {}
                Err(e) => return Err(live_error(&self.iface, e)),
            }
        };
        let data: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: `ptr`/`len` are exactly the slice the pcap crate built
            // from `pcap_next_ex`'s buffer for the handle in `self.cap`.
            // libpcap keeps that buffer valid until the next read from (or
            // close of) the same handle. The slice returned here borrows
            // `self` mutably for its whole lifetime, so no other call on
            // `self.cap` (next_packet, stats, drop) can happen while it lives.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        };
        // timeval fields are narrower than i64 on some platforms.
        #[allow(clippy::useless_conversion)]
        let (secs, frac) = (i64::from(hdr.ts.tv_sec), i64::from(hdr.ts.tv_usec));
        let frac = if self.nanos { frac } else { frac * 1000 };
        Ok(Some(RawPacket {
            ts: Timestamp::from_parts(secs, frac),
            linktype: self.linktype,
            data,
            orig_len: hdr.len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    /// The message names the file and the cause once, even when a reporter prints the chain.
    #[test]
    fn io_errors_say_it_once() {
        let full = |e: &CaptureError| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(c) = src {
                s.push_str(&format!(": {c}"));
                src = c.source();
            }
            s
        };
        let Err(e) = PacketSource::open_file(Path::new("/nonexistent/x.pcap")) else {
            panic!("opened a missing file")
        };
        assert_eq!(full(&e), "/nonexistent/x.pcap: No such file or directory");
        let dir = std::env::temp_dir();
        let Err(e) = PacketSource::open_file(&dir) else {
            panic!("opened a directory")
        };
        assert_eq!(full(&e), format!("{}: is a directory", dir.display()));
    }

    /// zktraffic's captures, shipped in the repo.
    fn zk_fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic")
    }

    fn fixtures() -> Vec<PathBuf> {
        let dir = &zk_fixtures();
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    struct Pkt {
        ts: Timestamp,
        linktype: Linktype,
        data: Vec<u8>,
        orig_len: u32,
    }

    fn read_all(src: &mut PacketSource) -> (Vec<Pkt>, Option<CaptureError>) {
        let mut v = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Some(p)) => v.push(Pkt {
                    ts: p.ts,
                    linktype: p.linktype,
                    data: p.data.to_vec(),
                    orig_len: p.orig_len,
                }),
                Ok(None) => return (v, None),
                Err(e) => return (v, Some(e)),
            }
        }
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<(Vec<Pkt>, Option<CaptureError>), CaptureError> {
        let n = bytes.len() as u64;
        let mut s = PacketSource::from_reader("mem", Cursor::new(bytes), Some(n), None)?;
        Ok(read_all(&mut s))
    }

    fn tcpdump_count(p: &Path) -> Option<usize> {
        let out = Command::new("tcpdump")
            .arg("-r")
            .arg(p)
            .arg("-nn")
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| out.stdout.iter().filter(|&&b| b == b'\n').count())
    }

    /// A classic pcap in memory.
    fn pcap(be: bool, nanos: bool, linktype: u32, recs: &[(u32, u32, &[u8], u32)]) -> Vec<u8> {
        let w32 = |v: &mut Vec<u8>, x: u32| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let w16 = |v: &mut Vec<u8>, x: u16| {
            v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
        };
        let mut v = Vec::new();
        w32(&mut v, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w16(&mut v, 2);
        w16(&mut v, 4);
        w32(&mut v, 0);
        w32(&mut v, 0);
        w32(&mut v, 65535);
        w32(&mut v, linktype);
        for &(s, frac, d, orig) in recs {
            w32(&mut v, s);
            w32(&mut v, frac);
            w32(&mut v, d.len() as u32);
            w32(&mut v, orig);
            v.extend_from_slice(d);
        }
        v
    }

    /// A pcapng writer for tests (little-endian unless `be`).
    #[derive(Default)]
    struct Ng {
        be: bool,
        buf: Vec<u8>,
    }

    impl Ng {
        fn u16(&self, v: u16) -> [u8; 2] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn u32(&self, v: u32) -> [u8; 4] {
            if self.be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        }
        fn block(&mut self, ty: u32, body: &[u8]) -> &mut Self {
            let mut b = body.to_vec();
            while !b.len().is_multiple_of(4) {
                b.push(0);
            }
            let len = self.u32((b.len() + 12) as u32);
            let ty = self.u32(ty);
            self.buf.extend_from_slice(&ty);
            self.buf.extend_from_slice(&len);
            self.buf.extend_from_slice(&b);
            self.buf.extend_from_slice(&len);
            self
        }
        fn shb(&mut self) -> &mut Self {
            let mut b = self.u32(0x1a2b_3c4d).to_vec();
            b.extend_from_slice(&self.u16(1));
            b.extend_from_slice(&self.u16(0));
            b.extend_from_slice(&[0xff; 8]); // section length: unknown
            self.block(0x0a0d_0d0a, &b)
        }
        fn idb(&mut self, linktype: u16, tsresol: Option<u8>) -> &mut Self {
            let mut b = self.u16(linktype).to_vec();
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(&self.u32(0));
            if let Some(r) = tsresol {
                b.extend_from_slice(&self.u16(9)); // if_tsresol
                b.extend_from_slice(&self.u16(1));
                b.extend_from_slice(&[r, 0, 0, 0]);
                b.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
            }
            self.block(1, &b)
        }
        fn epb(&mut self, if_id: u32, ts: u64, data: &[u8], orig: u32) -> &mut Self {
            let mut b = self.u32(if_id).to_vec();
            b.extend_from_slice(&self.u32((ts >> 32) as u32));
            b.extend_from_slice(&self.u32(ts as u32));
            b.extend_from_slice(&self.u32(data.len() as u32));
            b.extend_from_slice(&self.u32(orig));
            b.extend_from_slice(data);
            self.block(6, &b)
        }
        fn spb(&mut self, data: &[u8]) -> &mut Self {
            let mut b = self.u32(data.len() as u32).to_vec();
            b.extend_from_slice(data);
            self.block(3, &b)
        }
    }

    #[test]
    fn fixtures_match_tcpdump_count() {
        let files = fixtures();
        assert!(!files.is_empty(), "no fixtures found");
        let mut total = 0;
        for f in files {
            let mut s = PacketSource::open_file(&f).unwrap();
            let (pkts, err) = read_all(&mut s);
            assert!(err.is_none(), "{}: {err:?}", f.display());
            let size = std::fs::metadata(&f).unwrap().len();
            assert_eq!(s.position(), Some((size, Some(size))), "{}", f.display());
            assert!(pkts.iter().all(|p| p.linktype == Linktype::ETHERNET));
            if let Some(n) = tcpdump_count(&f) {
                assert_eq!(pkts.len(), n, "{}", f.display());
            }
            total += pkts.len();
        }
        assert!(total > 1000);
    }

    #[test]
    fn fixture_parses_to_tcp() {
        let f = &zk_fixtures().join("set_data.pcap");
        let mut s = PacketSource::open_file(f).unwrap();
        let mut n = 0;
        while let Some(p) = s.next_packet().unwrap() {
            let seg = crate::packet::parse_tcp(&p).unwrap();
            assert!(seg.src.port() == 2181 || seg.dst.port() == 2181);
            n += 1;
        }
        assert_eq!(n, 74);
    }

    #[test]
    fn classic_pcap_variants() {
        let recs: &[(u32, u32, &[u8], u32)] = &[(10, 5, b"abcd", 4), (11, 999_999, b"efghij", 60)];
        for be in [false, true] {
            for nanos in [false, true] {
                let (p, err) = read_bytes(pcap(be, nanos, 101, recs)).unwrap();
                assert!(err.is_none());
                assert_eq!(p.len(), 2);
                assert_eq!(p[0].data, b"abcd");
                assert_eq!(p[1].data, b"efghij");
                assert_eq!(p[1].orig_len, 60);
                assert_eq!(p[0].linktype, Linktype::RAW);
                let m = if nanos { 1 } else { 1000 };
                assert_eq!(p[0].ts, Timestamp::from_parts(10, 5 * m));
                assert_eq!(p[1].ts, Timestamp::from_parts(11, 999_999 * m));
            }
        }
    }

    #[test]
    fn pcapng_interfaces_resolution_and_unknown_blocks() {
        for be in [false, true] {
            pcapng_interfaces(be);
        }
    }

    fn pcapng_interfaces(be: bool) {
        let mut ng = Ng {
            be,
            ..Ng::default()
        };
        ng.shb()
            .idb(1, None) // microseconds (default)
            .idb(113, Some(9)) // nanoseconds
            .block(0x0bad_0001, b"unknown block type")
            .epb(0, 1_500_000, b"ether", 5)
            .epb(1, 2_000_000_123, b"cooked!", 100)
            .epb(7, 0, b"no such interface", 17)
            .block(5, &[0; 12]) // interface statistics
            .spb(b"simple")
            .idb(101, Some(0x80 | 10)) // 2^-10 s
            .epb(2, 3 * 1024 + 512, b"raw", 3);
        // A second section resets the interfaces.
        ng.shb().idb(276, Some(3)).epb(0, 4_000, b"sll2", 4);
        let bytes = ng.buf.clone();
        let mut s =
            PacketSource::from_reader("mem.pcapng", Cursor::new(bytes), None, None).unwrap();
        let (p, err) = read_all(&mut s);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<_> = p
            .iter()
            .map(|p| (p.linktype.0, p.ts.0, p.data.as_slice(), p.orig_len))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1_500_000_000, &b"ether"[..], 5),
                (113, 2_000_000_123, b"cooked!", 100),
                (1, 2_000_000_123, b"simple", 6),
                (101, 3_500_000_000, b"raw", 3),
                (276, 4_000_000_000, b"sll2", 4),
            ]
        );
        assert_eq!(s.skipped_packets(), 1);
        assert_eq!(s.linktype(), None);
    }

    #[test]
    fn pcapng_of_a_fixture_matches_pcap() {
        // Convert a fixture by hand (editcap may be missing) and compare.
        let f = &zk_fixtures().join("omni.pcap");
        let mut s = PacketSource::open_file(f).unwrap();
        let (orig, _) = read_all(&mut s);
        let mut ng = Ng::default();
        ng.shb().idb(1, Some(9));
        for p in &orig {
            ng.epb(0, p.ts.0 as u64, &p.data, p.orig_len);
        }
        let path = std::env::temp_dir().join(format!("zkscope-test-{}.pcapng", std::process::id()));
        std::fs::write(&path, &ng.buf).unwrap();
        let mut s = PacketSource::open_file(&path).unwrap();
        let (conv, err) = read_all(&mut s);
        assert!(err.is_none());
        assert_eq!(
            s.position(),
            Some((ng.buf.len() as u64, Some(ng.buf.len() as u64)))
        );
        let _ = std::fs::remove_file(&path);
        assert_eq!(conv.len(), orig.len());
        for (a, b) in orig.iter().zip(&conv) {
            assert_eq!((a.ts, &a.data, a.orig_len), (b.ts, &b.data, b.orig_len));
        }
    }

    #[test]
    fn empty_text_and_short_files() {
        let e = PacketSource::from_reader("x", Cursor::new(Vec::new()), None, None).err();
        assert_eq!(e.unwrap().to_string(), "x: empty file");
        let e =
            PacketSource::from_reader("t.txt", Cursor::new(b"hello world\n".to_vec()), None, None)
                .err();
        assert_eq!(e.unwrap().to_string(), "t.txt: not a pcap or pcapng file");
        let e = PacketSource::from_reader("s", Cursor::new(vec![0xd4]), None, None).err();
        assert!(matches!(e, Some(CaptureError::NotPcap { .. })));
        let e = PacketSource::from_reader(
            "h",
            Cursor::new(vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0]),
            None,
            None,
        )
        .err();
        assert!(matches!(e, Some(CaptureError::Truncated { .. })), "{e:?}");
        let e = PacketSource::open_file(Path::new("/nonexistent/zk.pcap"))
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("/nonexistent/zk.pcap: "), "{e}");
        let e = PacketSource::open_file(Path::new("/tmp")).err().unwrap();
        assert!(e.to_string().contains("directory"), "{e}");
    }

    #[test]
    fn interfaces_include_loopback() {
        let list = list_interfaces().unwrap();
        assert!(
            list.iter()
                .any(|i| i.name == "lo" && i.flags.contains(&"Loopback")),
            "{list:?}"
        );
    }

    #[test]
    fn libpcap_names_its_version() {
        let v = libpcap_version();
        assert!(v.starts_with("libpcap version "), "{v}");
    }

    #[test]
    fn snap_length_is_known_after_the_header() {
        let mut bytes = pcap(false, false, 1, &[(1, 0, b"first", 5)]);
        bytes[16..20].copy_from_slice(&96u32.to_le_bytes());
        let mut s = PacketSource::from_reader("s96", Cursor::new(bytes), None, None).unwrap();
        assert!(s.next_packet().unwrap().is_some());
        assert_eq!(s.snaplen(), Some(96));
        // pcapng: the interface's (none here), then a limited one
        let mut ng = Ng::default();
        ng.shb().idb(1, None).epb(0, 1, b"one", 3);
        let mut buf = ng.buf.clone();
        let mut s = PacketSource::from_reader("ng", Cursor::new(buf.clone()), None, None).unwrap();
        assert!(s.next_packet().unwrap().is_some());
        assert_eq!(s.snaplen(), None);
        // the IDB's snaplen field: after its header (8), link type and reserved (4)
        let idb = u32::from_le_bytes(buf[4..8].try_into().unwrap()) as usize; // SHB length
        buf[idb + 12..idb + 16].copy_from_slice(&80u32.to_le_bytes());
        let mut s = PacketSource::from_reader("ng80", Cursor::new(buf), None, None).unwrap();
        assert!(s.next_packet().unwrap().is_some());
        assert_eq!(s.snaplen(), Some(80));
    }

    #[test]
    fn truncated_mid_record_delivers_then_errors() {
        let full = pcap(
            false,
            false,
            1,
            &[(1, 0, b"first", 5), (2, 0, b"second packet", 13)],
        );
        for cut in [full.len() - 3, full.len() - 13, full.len() - 16] {
            let (p, err) = read_bytes(full[..cut].to_vec()).unwrap();
            assert_eq!(p.len(), 1, "cut {cut}");
            let e = err.expect("truncation error");
            assert!(
                matches!(e, CaptureError::Truncated { offset: 45, .. }),
                "{e:?}"
            );
            assert!(e.to_string().contains("truncated"), "{e}");
        }
        // Same for pcapng.
        let mut ng = Ng::default();
        ng.shb()
            .idb(1, None)
            .epb(0, 1, b"one", 3)
            .epb(0, 2, b"two", 3);
        let cut = ng.buf.len() - 5;
        let (p, err) = read_bytes(ng.buf[..cut].to_vec()).unwrap();
        assert_eq!(p.len(), 1);
        assert!(
            matches!(err, Some(CaptureError::Truncated { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn oversized_record_is_an_error_not_an_allocation() {
        let mut v = pcap(false, false, 1, &[(1, 0, b"ok", 2)]);
        // caplen 0x7fffffff: impossible record.
        v.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]);
        v.extend_from_slice(&[0; 64]);
        let (p, err) = read_bytes(v).unwrap();
        assert_eq!(p.len(), 1);
        assert!(
            matches!(
                err,
                Some(CaptureError::TooLarge { .. }) | Some(CaptureError::Truncated { .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn big_records_grow_the_buffer() {
        let big = vec![7u8; 3 << 20];
        let v = pcap(
            false,
            false,
            1,
            &[
                (1, 0, b"a", 1),
                (2, 0, &big, big.len() as u32),
                (3, 0, b"b", 1),
            ],
        );
        let (p, err) = read_bytes(v).unwrap();
        assert!(err.is_none(), "{err:?}");
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].data.len(), 3 << 20);
    }

    /// A reader returning one byte per call, like a slow pipe.
    struct Trickle(Cursor<Vec<u8>>);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(1);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn short_reads() {
        let f = std::fs::read(zk_fixtures().join("create.pcap")).unwrap();
        let mut s = PacketSource::from_reader("pipe", Trickle(Cursor::new(f)), None, None).unwrap();
        let (p, err) = read_all(&mut s);
        assert!(err.is_none());
        assert_eq!(p.len(), 99);
        let mut ng = Ng::default();
        ng.shb()
            .idb(1, None)
            .epb(0, 1, b"one", 3)
            .epb(0, 2, b"two", 3);
        let mut s =
            PacketSource::from_reader("pipe", Trickle(Cursor::new(ng.buf)), None, None).unwrap();
        assert_eq!(read_all(&mut s).0.len(), 2);
    }

    #[test]
    fn io_error_is_reported_with_name() {
        /// The file header, then an error.
        struct Fail(Cursor<Vec<u8>>);
        impl Read for Fail {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::other("disk on fire")),
                    n => Ok(n),
                }
            }
        }
        let h = pcap(false, false, 1, &[]);
        let mut s = PacketSource::from_reader("f.pcap", Fail(Cursor::new(h)), None, None).unwrap();
        let e = s.next_packet().err().unwrap();
        assert_eq!(e.to_string(), "f.pcap: disk on fire");
    }

    #[test]
    fn bpf_filter_on_files() {
        let f = &zk_fixtures().join("omni.pcap");
        let all = read_all(&mut PacketSource::open_file(f).unwrap()).0.len();
        let mut s = PacketSource::open_file_filtered(f, Some("tcp port 2181")).unwrap();
        let (p, err) = read_all(&mut s);
        assert!(err.is_none());
        assert!(!p.is_empty() && p.len() < all, "{} of {all}", p.len());
        for pk in &p {
            let raw = RawPacket {
                ts: pk.ts,
                linktype: pk.linktype,
                data: &pk.data,
                orig_len: pk.orig_len,
            };
            let seg = crate::packet::parse_tcp(&raw).unwrap();
            assert!(seg.src.port() == 2181 || seg.dst.port() == 2181);
        }
        if let Some(out) = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(f)
            .arg("tcp port 2181")
            .output()
            .ok()
            .filter(|o| o.status.success())
        {
            assert_eq!(p.len(), out.stdout.iter().filter(|&&b| b == b'\n').count());
        }
        let e = PacketSource::open_file_filtered(f, Some("tcp port"))
            .err()
            .unwrap();
        assert!(matches!(e, CaptureError::Filter { .. }), "{e}");
    }

    #[test]
    fn stop_flag_ends_file_reading() {
        let f = &zk_fixtures().join("omni.pcap");
        let mut s = PacketSource::open_file(f).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        s.set_stop(stop.clone());
        assert!(s.next_packet().unwrap().is_some());
        stop.store(true, Ordering::Relaxed);
        assert!(s.next_packet().unwrap().is_none());
    }

    #[test]
    fn live_errors_are_clear() {
        let stop = Arc::new(AtomicBool::new(false));
        let e = PacketSource::open_live("zkscope-no-such-if0", LiveOptions::default(), stop)
            .err()
            .unwrap();
        let m = e.to_string();
        assert!(m.contains("zkscope-no-such-if0"), "{m}");
    }

    proptest::proptest! {
        /// Arbitrary bytes after a valid header never panic or loop.
        #[test]
        fn arbitrary_files_never_panic(ng in proptest::bool::ANY,
                                      tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut v = if ng {
                let mut n = Ng::default();
                n.shb().idb(1, None);
                n.buf
            } else {
                pcap(false, false, 1, &[])
            };
            v.extend_from_slice(&tail);
            if let Ok(mut s) = PacketSource::from_reader("p", Cursor::new(v), None, None) {
                let mut n = 0;
                while let Ok(Some(_)) = s.next_packet() {
                    n += 1;
                    proptest::prop_assert!(n < 1000);
                }
            }
        }
    }
}
