//! zkscope on inputs that are broken, hostile or unusual: files that are not
//! captures, truncated captures, random bytes on port 2181, absurd length
//! prefixes, a small snap length, stdin and pcapng input, and contradictory
//! options.
//!
//! Errors must be clean: exit code 2, a `zkscope: error: …` line on stderr,
//! never a panic. Broken *traffic* is not an error: zkscope decodes what it
//! can, exits 0 and counts the problems in its end-of-run summary.
//!
//! Every capture used here is either a fixture in fixtures/real/ or built
//! byte by byte below (pcap + Ethernet + IPv4 + TCP, checksums zero) in a
//! temp dir.

mod support;

use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;
use support::{parse_json_lines, repo_root, run_with_timeout, zkscope, zkscope_bin, TempDir};

// ------------------------------------------------------------------ helpers

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/real").join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    let p = fixture(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_no_panic(out: &Output, what: &str) {
    let err = stderr_of(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what}: zkscope panicked:\n{err}"
    );
    // A signal (abort, segfault) leaves no exit code.
    assert!(
        out.status.code().is_some(),
        "{what}: zkscope was killed by a signal ({:?}):\n{err}",
        out.status
    );
}

/// Exit code exactly 2, `zkscope: error` on stderr, no panic; returns stderr.
fn assert_clean_error(out: &Output, what: &str) -> String {
    assert_no_panic(out, what);
    let err = stderr_of(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: expected exit code 2, got {:?}\nstderr:\n{err}",
        out.status
    );
    assert!(
        err.contains("zkscope: error"),
        "{what}: no 'zkscope: error' line on stderr:\n{err}"
    );
    err
}

/// Exit code 0, no panic, every stdout line a JSON object; returns the messages.
fn assert_success_json(out: &Output, what: &str) -> Vec<Value> {
    assert_no_panic(out, what);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: expected exit code 0\nstderr:\n{}",
        stderr_of(out)
    );
    let (msgs, bad) = parse_json_lines(&stdout_of(out));
    assert!(bad.is_empty(), "{what}: non-JSON output lines: {bad:?}");
    msgs
}

/// A counter of the end-of-run summary: the number just before `label` (as in
/// "3 gaps" or "(120 bytes lost)"), at its first occurrence preceded by one.
fn summary_count(stderr: &str, label: &str) -> u64 {
    for (i, _) in stderr.match_indices(label) {
        let before = stderr[..i].trim_end();
        let token = before
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .trim_start_matches('(');
        if let Ok(n) = token.parse() {
            return n;
        }
    }
    panic!("no counter {label:?} in the summary:\n{stderr}");
}

/// zkscope with a 512 MiB address-space limit: any attempt to allocate
/// what a bogus 2 GB length prefix announces fails (and aborts the process).
fn zkscope_limited(args: &[&str]) -> Output {
    let mut cmd = Command::new(zkscope_bin());
    cmd.args(args);
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 512 << 20,
                rlim_max: 512 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run_with_timeout(cmd, None, Duration::from_secs(60))
}

fn dump_json(path: &Path, extra: &[&str]) -> Output {
    let f = path.to_str().unwrap();
    let mut args = vec!["dump", "-r", f, "--format", "json"];
    args.extend_from_slice(extra);
    zkscope(&args)
}

fn msgs_of(msgs: &[Value], dir: &str, ty: &str) -> Vec<Value> {
    msgs.iter()
        .filter(|m| m["dir"] == dir && m["type"] == ty)
        .cloned()
        .collect()
}

// ------------------------------------------------- capture file construction

const LINKTYPE_ETHERNET: u32 = 1;
const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// A classic little-endian microsecond pcap being written in memory.
struct Pcap {
    buf: Vec<u8>,
    ts_us: u64,
}

impl Pcap {
    fn new(snaplen: u32) -> Pcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&snaplen.to_le_bytes());
        buf.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        Pcap {
            buf,
            ts_us: 1_700_000_000_000_000,
        }
    }

    fn record(&mut self, frame: &[u8]) {
        self.ts_us += 137;
        let len = frame.len() as u32;
        self.buf
            .extend_from_slice(&((self.ts_us / 1_000_000) as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&((self.ts_us % 1_000_000) as u32).to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(frame);
    }

    fn write(&self, path: &Path) {
        std::fs::write(path, &self.buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

type Endpoint = ([u8; 4], u16);

/// Ethernet + IPv4 (no options) + TCP (no options), lengths right, checksums zero.
fn tcp_frame(
    src: Endpoint,
    dst: Endpoint,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54 + payload.len());
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.1.to_be_bytes());
    f.extend_from_slice(&dst.1.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&ack.to_be_bytes());
    f.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// One TCP connection: keeps both sequence numbers consistent.
struct Conn {
    cli: Endpoint,
    srv: Endpoint,
    cseq: u32,
    sseq: u32,
}

impl Conn {
    fn new(client_port: u16, cisn: u32, sisn: u32) -> Conn {
        Conn {
            cli: ([10, 0, 0, 1], client_port),
            srv: ([10, 0, 0, 2], 2181),
            cseq: cisn,
            sseq: sisn,
        }
    }

    fn handshake(&mut self, p: &mut Pcap) {
        p.record(&tcp_frame(self.cli, self.srv, self.cseq, 0, SYN, &[]));
        self.cseq = self.cseq.wrapping_add(1);
        p.record(&tcp_frame(
            self.srv,
            self.cli,
            self.sseq,
            self.cseq,
            SYN | ACK,
            &[],
        ));
        self.sseq = self.sseq.wrapping_add(1);
        p.record(&tcp_frame(
            self.cli,
            self.srv,
            self.cseq,
            self.sseq,
            ACK,
            &[],
        ));
    }

    fn client_sends(&mut self, p: &mut Pcap, payload: &[u8]) {
        for chunk in payload.chunks(1400) {
            p.record(&tcp_frame(
                self.cli,
                self.srv,
                self.cseq,
                self.sseq,
                PSH | ACK,
                chunk,
            ));
            self.cseq = self.cseq.wrapping_add(chunk.len() as u32);
        }
    }

    fn server_sends(&mut self, p: &mut Pcap, payload: &[u8]) {
        for chunk in payload.chunks(1400) {
            p.record(&tcp_frame(
                self.srv,
                self.cli,
                self.sseq,
                self.cseq,
                PSH | ACK,
                chunk,
            ));
            self.sseq = self.sseq.wrapping_add(chunk.len() as u32);
        }
    }

    fn close(&mut self, p: &mut Pcap) {
        p.record(&tcp_frame(
            self.cli,
            self.srv,
            self.cseq,
            self.sseq,
            FIN | ACK,
            &[],
        ));
        self.cseq = self.cseq.wrapping_add(1);
        p.record(&tcp_frame(
            self.srv,
            self.cli,
            self.sseq,
            self.cseq,
            FIN | ACK,
            &[],
        ));
        self.sseq = self.sseq.wrapping_add(1);
        p.record(&tcp_frame(
            self.cli,
            self.srv,
            self.cseq,
            self.sseq,
            ACK,
            &[],
        ));
    }
}

// ZooKeeper messages (jute, big-endian), each with its 4-byte length prefix.

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn connect_request() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    b.extend_from_slice(&0i64.to_be_bytes()); // lastZxidSeen
    b.extend_from_slice(&30_000i32.to_be_bytes()); // timeOut
    b.extend_from_slice(&0i64.to_be_bytes()); // sessionId
    b.extend_from_slice(&16i32.to_be_bytes()); // passwd
    b.extend_from_slice(&[0; 16]);
    b.push(0); // readOnly
    framed(&b)
}

fn connect_response(session: i64) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&30_000i32.to_be_bytes());
    b.extend_from_slice(&session.to_be_bytes());
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&[7; 16]);
    b.push(0);
    framed(&b)
}

/// getData(path, watch=false) with `xid`.
fn get_data_request(xid: i32, path: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&4i32.to_be_bytes());
    b.extend_from_slice(&(path.len() as i32).to_be_bytes());
    b.extend_from_slice(path.as_bytes());
    b.push(0);
    framed(&b)
}

/// A reply with no body (e.g. an error reply).
fn reply_header(xid: i32, zxid: i64, err: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&zxid.to_be_bytes());
    b.extend_from_slice(&err.to_be_bytes());
    framed(&b)
}

const NONODE: i32 = -101;

/// xorshift64*: deterministic pseudo-random bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Record boundaries of a little-endian classic pcap: the offset of each record header.
fn pcap_records(data: &[u8]) -> Vec<usize> {
    assert_eq!(
        &data[..4],
        &0xa1b2_c3d4u32.to_le_bytes(),
        "expected LE pcap"
    );
    let mut offs = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        offs.push(off);
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        off += 16 + incl;
    }
    assert_eq!(off, data.len(), "fixture does not end on a record boundary");
    offs
}

// ------------------------------------------------------------ not captures

#[test]
fn text_file_is_not_a_capture() {
    let dir = TempDir::new("bad-text");
    let p = dir.join("notes.txt");
    std::fs::write(&p, "This is a text file, not a packet capture.\nline two\n").unwrap();
    let out = dump_json(&p, &[]);
    let err = assert_clean_error(&out, "text file");
    assert!(
        err.contains("not a pcap"),
        "text file: message does not say it is not a capture:\n{err}"
    );
    assert!(
        stdout_of(&out).trim().is_empty(),
        "text file: output on stdout"
    );
}

#[test]
fn empty_file() {
    let dir = TempDir::new("bad-empty");
    let p = dir.join("empty.pcap");
    std::fs::write(&p, b"").unwrap();
    let err = assert_clean_error(&dump_json(&p, &[]), "empty file");
    assert!(err.contains("empty"), "empty file: unclear message:\n{err}");
}

#[test]
fn nonexistent_file() {
    let dir = TempDir::new("bad-missing");
    let p = dir.join("no-such-capture.pcap");
    let err = assert_clean_error(&dump_json(&p, &[]), "nonexistent file");
    assert!(
        err.contains("no-such-capture.pcap") && err.contains("No such file"),
        "nonexistent file: message should name the file and the cause:\n{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "said twice:\n{err}");
    assert!(!err.contains("os error"), "{err}");
}

#[test]
fn directory_instead_of_file() {
    let dir = TempDir::new("bad-dir");
    let err = assert_clean_error(&dump_json(dir.path(), &[]), "directory");
    assert!(
        err.contains("directory"),
        "directory: unclear message:\n{err}"
    );
    assert_eq!(
        err.matches("is a directory").count(),
        1,
        "said twice:\n{err}"
    );
}

#[test]
fn broken_pcap_headers() {
    let dir = TempDir::new("bad-headers");
    let full = read_fixture("zk38-session.pcap");

    // Cut inside the 24-byte file header.
    let p = dir.join("half-header.pcap");
    std::fs::write(&p, &full[..10]).unwrap();
    let err = assert_clean_error(&dump_json(&p, &[]), "half a file header");
    assert!(err.contains("truncated"), "half a file header:\n{err}");

    // A record announcing 2 GB of captured data.
    let p = dir.join("huge-record.pcap");
    let mut data = full[..24].to_vec();
    for v in [1u32, 0, 0x7fff_ffff, 0x7fff_ffff] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    data.extend_from_slice(&[0xab; 100]);
    std::fs::write(&p, &data).unwrap();
    let err = assert_clean_error(
        &zkscope_limited(&["dump", "-r", p.to_str().unwrap()]),
        "huge record",
    );
    assert!(
        err.contains("huge-record.pcap"),
        "huge record: file not named:\n{err}"
    );

    // Only a file header: a valid, empty capture.
    let p = dir.join("header-only.pcap");
    std::fs::write(&p, &full[..24]).unwrap();
    let out = dump_json(&p, &[]);
    assert_no_panic(&out, "header-only capture");
    assert!(out.stdout.is_empty());
    // no traffic: its own exit status and a note
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("no packets were read"));
    assert_eq!(summary_count(&stderr_of(&out), "connections"), 0);
}

// ---------------------------------------------------------- truncated file

/// The non-4lw lines (4lw exchanges are printed when their connection ends,
/// which an early end of input changes).
fn without_4lw(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.contains("\"FourLetterWord\""))
        .map(str::to_string)
        .collect()
}

#[test]
fn truncated_file_prints_what_precedes_the_cut_then_fails() {
    let dir = TempDir::new("bad-truncated");
    let full = read_fixture("zk38-session.pcap");
    let full_out = dump_json(&fixture("zk38-session.pcap"), &[]);
    assert_success_json(&full_out, "full fixture");
    let full_lines = without_4lw(&stdout_of(&full_out));

    let records = pcap_records(&full);
    let mid = records[records.len() / 2];
    // Inside a record's data, and inside a record header.
    for (name, cut) in [("in-data", mid + 16 + 10), ("in-header", mid + 9)] {
        let p = dir.join(format!("cut-{name}.pcap"));
        std::fs::write(&p, &full[..cut]).unwrap();
        let out = dump_json(&p, &[]);
        let what = format!("capture cut {name} at byte {cut}");
        let err = assert_clean_error(&out, &what);
        assert!(
            err.contains("truncated"),
            "{what}: error does not mention truncation:\n{err}"
        );
        let (msgs, bad) = parse_json_lines(&stdout_of(&out));
        assert!(bad.is_empty(), "{what}: non-JSON lines {bad:?}");
        assert!(
            msgs.len() > 50,
            "{what}: only {} messages decoded before the cut",
            msgs.len()
        );
        let lines = without_4lw(&stdout_of(&out));
        assert!(
            lines.len() < full_lines.len() && lines[..] == full_lines[..lines.len()],
            "{what}: the messages before the cut are not the start of the full decode"
        );
    }
}

// --------------------------------------------------------- random payloads

/// Three connections to port 2181 carrying random bytes:
/// 1. a proper handshake, then frames with correct length prefixes but random
///    bodies, then raw random segments in both directions;
/// 2. a TCP handshake, then random bytes from the first byte on;
/// 3. no handshake seen (mid-stream), random bytes.
fn random_capture(seed: u64) -> Pcap {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut p = Pcap::new(65535);

    let mut a = Conn::new(40_000 + seed as u16, rng.next() as u32, rng.next() as u32);
    a.handshake(&mut p);
    a.client_sends(&mut p, &connect_request());
    a.server_sends(&mut p, &connect_response(0x1234_5678));
    for i in 0..6 {
        // getData header, then a path length far beyond the frame: cannot decode.
        let mut body = (i + 1i32).to_be_bytes().to_vec();
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&1000i32.to_be_bytes());
        let n = rng.below(40) as usize;
        body.extend(rng.bytes(n));
        a.client_sends(&mut p, &framed(&body));
        let mut body = (i + 1i32).to_be_bytes().to_vec();
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&1000i32.to_be_bytes()); // GetDataResponse data length
        let n = rng.below(40) as usize;
        body.extend(rng.bytes(n));
        a.server_sends(&mut p, &framed(&body));
    }
    for _ in 0..40 {
        let n = 1 + rng.below(400) as usize;
        a.client_sends(&mut p, &rng.bytes(n));
        let n = 1 + rng.below(400) as usize;
        a.server_sends(&mut p, &rng.bytes(n));
    }
    a.close(&mut p);

    let mut b = Conn::new(50_000 + seed as u16, rng.next() as u32, rng.next() as u32);
    b.handshake(&mut p);
    for _ in 0..30 {
        let n = 1 + rng.below(1400) as usize;
        b.client_sends(&mut p, &rng.bytes(n));
        let n = 1 + rng.below(1400) as usize;
        b.server_sends(&mut p, &rng.bytes(n));
    }
    b.close(&mut p);

    let mut c = Conn::new(60_000 + seed as u16, rng.next() as u32, rng.next() as u32);
    for _ in 0..30 {
        let n = 1 + rng.below(600) as usize;
        c.client_sends(&mut p, &rng.bytes(n));
        let n = 1 + rng.below(600) as usize;
        c.server_sends(&mut p, &rng.bytes(n));
    }
    p
}

#[test]
fn random_payloads_on_the_client_port() {
    let dir = TempDir::new("bad-random");
    for seed in 1..=6u64 {
        let path = dir.join(format!("random-{seed}.pcap"));
        random_capture(seed).write(&path);
        let what = format!("random payloads, seed {seed}");
        let out = dump_json(&path, &["--dump-bad-packet"]);
        let msgs = assert_success_json(&out, &what);
        let err = stderr_of(&out);
        assert_eq!(summary_count(&err, "connections"), 3, "{what}:\n{err}");
        let undecodable = summary_count(&err, "undecodable frames");
        let bad_lengths = summary_count(&err, "bad length prefixes");
        let skipped = summary_count(&err, "bytes skipped to resynchronise");
        assert!(
            undecodable >= 6,
            "{what}: {undecodable} undecodable frames\n{err}"
        );
        assert!(
            bad_lengths > 0,
            "{what}: no bad length prefix counted\n{err}"
        );
        assert!(skipped > 0, "{what}: no bytes skipped\n{err}");
        // Undecodable frames are JSON lines of type Undecodable, or typed lines
        // with a decode_error when the header decoded but the body did not.
        let lines = msgs
            .iter()
            .filter(|m| m["type"] == "Undecodable" || m.get("decode_error").is_some())
            .count() as u64;
        assert_eq!(
            lines, undecodable,
            "{what}: undecodable frames in the JSON output do not match the summary"
        );
        // The real handshake of connection 1 is still decoded.
        assert_eq!(
            msgs_of(&msgs, "request", "ConnectRequest").len(),
            1,
            "{what}"
        );
        assert_eq!(msgs_of(&msgs, "reply", "ConnectReply").len(), 1, "{what}");
        // The text printer (with hex dumps of bad frames) survives it too.
        let f = path.to_str().unwrap();
        let text = zkscope(&["dump", "-r", f, "--dump-bad-packet", "--show", "-p"]);
        assert_no_panic(&text, &format!("{what} (text)"));
        assert_eq!(
            text.status.code(),
            Some(0),
            "{what} (text)\n{}",
            stderr_of(&text)
        );
    }
}

// ------------------------------------------------------ absurd length prefixes

/// Connections each sending a bad 4-byte length prefix (`prefix`), then a
/// valid getData request, answered NONODE, then a second request/reply pair.
/// The prefix comes 1) in the same segment as the request, 2) in its own
/// segment, 3) split across two segments. Returns the paths requested.
fn bad_prefix_capture(prefix: [u8; 4], path: &Path) -> Vec<String> {
    let mut p = Pcap::new(65535);
    let mut paths = Vec::new();
    for variant in 0..3u16 {
        let mut c = Conn::new(41_000 + variant, 1000 + u32::from(variant), 90_000);
        c.handshake(&mut p);
        c.client_sends(&mut p, &connect_request());
        c.server_sends(&mut p, &connect_response(0x77 + i64::from(variant)));
        let first = format!("/after/bad/prefix/{variant}");
        let req = get_data_request(1, &first);
        match variant {
            0 => c.client_sends(&mut p, &[&prefix[..], &req].concat()),
            1 => {
                c.client_sends(&mut p, &prefix);
                c.client_sends(&mut p, &req);
            }
            _ => {
                c.client_sends(&mut p, &prefix[..2]);
                c.client_sends(&mut p, &[&prefix[2..], &req].concat());
            }
        }
        c.server_sends(&mut p, &reply_header(1, 0x100, NONODE));
        let second = format!("/second/{variant}");
        c.client_sends(&mut p, &get_data_request(2, &second));
        c.server_sends(&mut p, &reply_header(2, 0x101, NONODE));
        c.close(&mut p);
        paths.push(first);
        paths.push(second);
    }
    p.write(path);
    paths
}

fn check_resync_after_bad_prefix(prefix: [u8; 4], label: &str) {
    let dir = TempDir::new("bad-prefix");
    let path = dir.join(format!("{label}.pcap"));
    let paths = bad_prefix_capture(prefix, &path);
    let f = path.to_str().unwrap();
    let out = zkscope_limited(&["dump", "-r", f, "--format", "json"]);
    let what = format!("length prefix {label}");
    let msgs = assert_success_json(&out, &what);
    let err = stderr_of(&out);
    let requests = msgs_of(&msgs, "request", "GetDataRequest");
    let replies = msgs_of(&msgs, "reply", "GetDataReply");
    for p in &paths {
        assert!(
            requests.iter().any(|m| m["path"] == p.as_str()),
            "{what}: request for {p} not decoded after the bad prefix\n{err}"
        );
        assert!(
            replies
                .iter()
                .any(|m| m["path"] == p.as_str() && m["err_name"] == "NONODE"),
            "{what}: the reply to {p} is not paired with its request\n{err}"
        );
    }
    assert_eq!(requests.len(), paths.len(), "{what}: extra requests");
    assert_eq!(
        summary_count(&err, "bad length prefixes"),
        3,
        "{what}:\n{err}"
    );
    assert_eq!(
        summary_count(&err, "bytes skipped to resynchronise"),
        12,
        "{what}: expected exactly the 4 prefix bytes skipped per connection\n{err}"
    );
    assert_eq!(
        summary_count(&err, "undecodable frames"),
        0,
        "{what}:\n{err}"
    );
    assert_eq!(
        summary_count(&err, "replies without a captured request"),
        0,
        "{what}:\n{err}"
    );
}

#[test]
fn length_prefix_of_2_gb_then_resync() {
    check_resync_after_bad_prefix(0x7fff_ffffi32.to_be_bytes(), "0x7fffffff");
}

#[test]
fn negative_length_prefixes_then_resync() {
    check_resync_after_bad_prefix((-1i32).to_be_bytes(), "-1");
    check_resync_after_bad_prefix(i32::MIN.to_be_bytes(), "i32-min");
}

/// With --max-frame raised above 2 GB the bogus prefix is accepted as a frame
/// start: zkscope must then wait for bytes that never come without
/// allocating what the prefix announces (the run has a 512 MiB address-space
/// limit), and report the partial frame at the end.
#[test]
fn length_prefix_of_2_gb_accepted_by_max_frame_allocates_nothing() {
    let dir = TempDir::new("bad-prefix-maxframe");
    let path = dir.join("2gb.pcap");
    bad_prefix_capture(0x7fff_ffffi32.to_be_bytes(), &path);
    let f = path.to_str().unwrap();
    let out = zkscope_limited(&[
        "dump",
        "-r",
        f,
        "--format",
        "json",
        "--max-frame",
        "4294967295",
    ]);
    let what = "2 GB prefix with --max-frame 4294967295";
    let msgs = assert_success_json(&out, what);
    let err = stderr_of(&out);
    assert_eq!(
        msgs_of(&msgs, "request", "ConnectRequest").len(),
        3,
        "{what}"
    );
    assert_eq!(
        summary_count(&err, "bad length prefixes"),
        0,
        "{what}:\n{err}"
    );
    assert!(
        summary_count(&err, "partial frames dropped at gaps") >= 3,
        "{what}: the never-completed frames are not reported\n{err}"
    );
}

// ---------------------------------------------------------------- snap length

/// The records of a classic LE pcap cut to `snaplen` captured bytes.
fn with_snaplen(data: &[u8], snaplen: usize) -> Vec<u8> {
    let mut out = data[..24].to_vec();
    out[16..20].copy_from_slice(&(snaplen as u32).to_le_bytes());
    for off in pcap_records(data) {
        let incl = u32::from_le_bytes(data[off + 8..off + 12].try_into().unwrap()) as usize;
        let cap = incl.min(snaplen);
        out.extend_from_slice(&data[off..off + 8]);
        out.extend_from_slice(&(cap as u32).to_le_bytes());
        out.extend_from_slice(&data[off + 12..off + 16]);
        out.extend_from_slice(&data[off + 16..off + 16 + cap]);
    }
    out
}

fn count(msgs: &[Value], dir: &str, ty: &str) -> usize {
    msgs_of(msgs, dir, ty).len()
}

#[test]
fn snaplen_96_decodes_small_messages_and_counts_the_loss() {
    let dir = TempDir::new("bad-snaplen");
    let full_path = fixture("zk38-session.pcap");
    let full_out = dump_json(&full_path, &[]);
    let full = assert_success_json(&full_out, "full fixture");
    let path = dir.join("snap96.pcap");
    std::fs::write(&path, with_snaplen(&read_fixture("zk38-session.pcap"), 96)).unwrap();
    let out = dump_json(&path, &[]);
    let what = "snaplen 96";
    let snap = assert_success_json(&out, what);
    let err = stderr_of(&out);
    assert!(
        summary_count(&err, "truncated packets") > 0,
        "{what}:\n{err}"
    );
    assert!(summary_count(&err, "bytes lost)") > 0, "{what}:\n{err}");
    assert!(summary_count(&err, "gaps (") > 0, "{what}:\n{err}");
    // 96 bytes = 66 of Ethernet/IPv4/TCP with timestamps + 30 of payload:
    // pings and closes (12-byte requests, 20-byte replies) are whole.
    for (dir, ty) in [
        ("request", "PingRequest"),
        ("reply", "PingReply"),
        ("request", "CloseRequest"),
        ("reply", "CloseReply"),
    ] {
        let n = count(&full, dir, ty);
        assert!(n > 0, "fixture has no {ty}");
        assert_eq!(
            count(&snap, dir, ty),
            n,
            "{what}: {ty} not all decoded\n{err}"
        );
    }
    assert!(
        snap.iter().filter(|m| m["dir"] == "request").count() * 3
            >= full.iter().filter(|m| m["dir"] == "request").count(),
        "{what}: fewer than a third of the requests decoded\n{err}"
    );
    // Nothing is invented: every request/reply decoded from the cut packets is
    // one of the full capture's (same connection, xid, type / error).
    let key = |m: &Value| {
        (
            m["conn"].clone(),
            m["dir"].clone(),
            m["xid"].clone(),
            if m["dir"] == "request" {
                m["type"].clone()
            } else {
                m["err"].clone()
            },
        )
    };
    let known: std::collections::HashSet<_> = full.iter().map(key).collect();
    for m in snap
        .iter()
        .filter(|m| m["dir"] == "request" || m["dir"] == "reply")
    {
        assert!(
            known.contains(&key(m)),
            "{what}: message not in the full capture: {m}"
        );
    }
}

// ----------------------------------------------------- stdin and pcapng input

#[test]
fn stdin_gives_the_same_output_as_the_file() {
    let pcap = fixture("zk38-session.pcap");
    let from_file = dump_json(&pcap, &["-q"]);
    assert_success_json(&from_file, "from file");
    for input in ["zk38-session.pcap", "zk38-session.pcapng"] {
        let mut cmd = Command::new(zkscope_bin());
        cmd.args(["dump", "-r", "-", "--format", "json", "-q"]);
        let out = run_with_timeout(cmd, Some(&read_fixture(input)), Duration::from_secs(60));
        let what = format!("{input} on stdin");
        let msgs = assert_success_json(&out, &what);
        assert!(msgs.len() > 300, "{what}: {} messages", msgs.len());
        assert!(
            stdout_of(&out) == stdout_of(&from_file),
            "{what}: output differs from `-r FILE`"
        );
    }
    // Empty standard input is an error like an empty file.
    let mut cmd = Command::new(zkscope_bin());
    cmd.args(["dump", "-r", "-"]);
    let out = run_with_timeout(cmd, Some(b""), Duration::from_secs(60));
    assert_clean_error(&out, "empty stdin");
}

#[test]
fn pcapng_gives_the_same_messages_as_pcap() {
    let a = assert_success_json(&dump_json(&fixture("zk38-session.pcap"), &[]), "pcap");
    let b = assert_success_json(&dump_json(&fixture("zk38-session.pcapng"), &[]), "pcapng");
    assert!(a.len() > 300, "pcap: {} messages", a.len());
    assert_eq!(
        a.len(),
        b.len(),
        "pcap and pcapng decode to different message counts"
    );
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x, y, "message {i} differs between pcap and pcapng");
    }
}

// ------------------------------------------------------------- bad options

#[test]
fn include_and_exclude_host_cannot_be_mixed() {
    let f = fixture("zk38-session.pcap");
    let f = f.to_str().unwrap();
    let out = zkscope(&[
        "dump",
        "-r",
        f,
        "--include-host",
        "127.0.0.1",
        "--exclude-host",
        "10.0.0.1",
    ]);
    let err = assert_clean_error(&out, "--include-host with --exclude-host");
    assert!(
        err.contains("--include-host") && err.contains("--exclude-host"),
        "the message should name both flags:\n{err}"
    );
    assert!(stdout_of(&out).is_empty(), "output despite the usage error");
}

#[test]
fn server_with_a_bad_port() {
    let f = fixture("zk38-session.pcap");
    let f = f.to_str().unwrap();
    for (server, needle) in [
        ("127.0.0.1:99999", "99999"),
        ("127.0.0.1:http", "http"),
        ("127.0.0.1:-1", "-1"),
        ("127.0.0.1", "HOST:PORT"),
    ] {
        let out = zkscope(&["dump", "-r", f, "--server", server]);
        let what = format!("--server {server}");
        let err = assert_clean_error(&out, &what);
        assert!(
            err.contains("--server") && err.contains(needle),
            "{what}: unclear message:\n{err}"
        );
        assert!(
            stdout_of(&out).is_empty(),
            "{what}: output despite the error"
        );
    }
    // A port clap itself rejects is a usage error with the same exit code.
    let out = zkscope(&["dump", "-r", f, "--port", "70000"]);
    assert_no_panic(&out, "--port 70000");
    assert_eq!(
        out.status.code(),
        Some(2),
        "--port 70000:\n{}",
        stderr_of(&out)
    );
    assert!(stderr_of(&out).contains("70000"));
}
