//! Decoder micro-benchmarks: one frame body (the bytes after the 4-byte
//! length prefix) per iteration, reported as bytes of frame body per second.
//!
//! `cargo bench -p zkscope-proto --bench decode`
//!
//! The frames are built here with a tiny jute writer so the bench does not
//! depend on fixtures; each is checked once (decodes `Ok` into the expected
//! variant) before it is timed, so a broken frame cannot bench the error path.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use zkscope_proto::client::{decode_reply, decode_request, OpCode, ReplyBody, RequestBody};

/// Minimal jute encoder (big-endian ints, length-prefixed strings/buffers).
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(v as u8);
        self
    }
    fn buf(&mut self, b: &[u8]) -> &mut Self {
        self.i32(b.len() as i32);
        self.0.extend_from_slice(b);
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.buf(s.as_bytes())
    }
    /// `Stat` (68 bytes).
    fn stat(&mut self, data_len: i32, num_children: i32) -> &mut Self {
        self.i64(0x5_0000_1234) // czxid
            .i64(0x5_000f_4242) // mzxid
            .i64(1_700_000_000_000) // ctime
            .i64(1_700_000_123_456) // mtime
            .i32(7) // version
            .i32(3) // cversion
            .i32(0) // aversion
            .i64(0) // ephemeralOwner
            .i32(data_len)
            .i32(num_children)
            .i64(0x5_000f_4000) // pzxid
    }
    /// `Id` + perms: one ACL entry.
    fn acl(&mut self, perms: i32, scheme: &str, id: &str) -> &mut Self {
        self.i32(perms).str(scheme).str(id)
    }
    fn multi_header(&mut self, op: i32, done: bool) -> &mut Self {
        self.i32(op).bool(done).i32(-1)
    }
}

/// `getData("/services/payments/config/instance-0042", watch=true)`, xid 1234.
fn get_data_request() -> Vec<u8> {
    let mut w = W::default();
    w.i32(1234).i32(OpCode::GET_DATA.0);
    w.str("/services/payments/config/instance-0042").bool(true);
    w.0
}

/// The reply to it: 96 bytes of data and a Stat.
fn get_data_reply() -> Vec<u8> {
    let data = [b'x'; 96];
    let mut w = W::default();
    w.i32(1234).i64(0x5_000f_5000).i32(0);
    w.buf(&data).stat(data.len() as i32, 0);
    w.0
}

/// `create("/locks/job-scheduler/lock-", 32 bytes, [world:anyone ALL, digest READ], ephemeral|sequential)`.
fn create_request() -> Vec<u8> {
    let mut w = W::default();
    w.i32(77).i32(OpCode::CREATE.0);
    w.str("/locks/job-scheduler/lock-").buf(&[0xa5; 32]);
    w.i32(2)
        .acl(31, "world", "anyone")
        .acl(1, "digest", "reader:9Tqk6cJ8zv0Th1D5V1PcUqGxdq0=");
    w.i32(3); // EPHEMERAL_SEQUENTIAL
    w.0
}

/// A multi of 5 ops: check, create, setData, delete, create.
fn multi_request() -> Vec<u8> {
    let mut w = W::default();
    w.i32(4242).i32(OpCode::MULTI.0);
    w.multi_header(OpCode::CHECK.0, false)
        .str("/app/config")
        .i32(12);
    w.multi_header(OpCode::CREATE.0, false)
        .str("/app/config/shard-0007")
        .buf(b"{\"leader\":\"10.0.0.7:2888\"}")
        .i32(1)
        .acl(31, "world", "anyone")
        .i32(0);
    w.multi_header(OpCode::SET_DATA.0, false)
        .str("/app/config/version")
        .buf(b"13")
        .i32(12);
    w.multi_header(OpCode::DELETE.0, false)
        .str("/app/config/shard-0003")
        .i32(-1);
    w.multi_header(OpCode::CREATE.0, false)
        .str("/app/audit/entry-")
        .buf(&[0u8; 48])
        .i32(1)
        .acl(31, "world", "anyone")
        .i32(2);
    w.multi_header(-1, true);
    w.0
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");

    let f = get_data_request();
    assert!(matches!(
        decode_request(&f).expect("getData request decodes").body,
        RequestBody::PathWatch { watch: true, .. }
    ));
    g.throughput(Throughput::Bytes(f.len() as u64));
    g.bench_function("getData_request", |b| {
        b.iter(|| decode_request(black_box(&f)))
    });

    let f = get_data_reply();
    assert!(matches!(
        decode_reply(&f, Some(OpCode::GET_DATA))
            .expect("getData reply decodes")
            .body,
        ReplyBody::GetData { .. }
    ));
    g.throughput(Throughput::Bytes(f.len() as u64));
    g.bench_function("getData_reply_stat", |b| {
        b.iter(|| decode_reply(black_box(&f), black_box(Some(OpCode::GET_DATA))))
    });

    let f = create_request();
    match decode_request(&f).expect("create request decodes").body {
        RequestBody::Create { acl, .. } => assert_eq!(acl.len(), 2),
        other => panic!("create decoded as {other:?}"),
    }
    g.throughput(Throughput::Bytes(f.len() as u64));
    g.bench_function("create_request_acl", |b| {
        b.iter(|| decode_request(black_box(&f)))
    });

    let f = multi_request();
    match decode_request(&f).expect("multi request decodes").body {
        RequestBody::Multi(ops) => {
            assert_eq!(ops.len(), 5);
            assert_eq!(ops.iter().count(), 5);
        }
        other => panic!("multi decoded as {other:?}"),
    }
    g.throughput(Throughput::Bytes(f.len() as u64));
    // Decoding validates every sub-op once (MultiOps::read).
    g.bench_function("multi5_request", |b| {
        b.iter(|| decode_request(black_box(&f)))
    });
    // ... and a consumer that then walks the ops (as the printers do) decodes them again.
    g.bench_function("multi5_request_iter", |b| {
        b.iter(|| {
            let r = decode_request(black_box(&f)).ok()?;
            let RequestBody::Multi(ops) = r.body else {
                return None;
            };
            let mut n = 0usize;
            for op in ops.iter() {
                n += op.body.path().map_or(0, |p| p.0.len());
            }
            Some(n)
        })
    });

    g.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
