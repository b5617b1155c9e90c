//! `SnapshotSkipper` over synthetic snapshots (protocol.md §3.5), fed whole,
//! byte by byte and in odd pieces, followed by the next QuorumPacket.

use proptest::prelude::*;
use zkscope_proto::election::Status;
use zkscope_proto::quorum::{decode_packet, PacketType, SkipStatus, SnapshotSkipper};

use crate::enc::{packet, snapshot, Enc, WORLD};

fn sample() -> Vec<u8> {
    snapshot(
        &[
            (0x1000_b7d1_4430_0000, 30_000),
            (0x2000_0000_0000_0001, 4_000),
        ],
        &[
            (1, WORLD),
            (2, &[(1, "digest", "u:hash"), (31, "ip", "10.0.0.0/8")]),
            (3, &[]),
        ],
        &[
            ("", Some(b"")),
            ("/zookeeper", None),
            ("/zookeeper/quota", Some(b"")),
            ("/a", Some(&[b'x'; 300])),
            // Paths of one byte that are not the "/" terminator.
            ("x", Some(b"1")),
        ],
    )
}

/// Feeds `snap + next packet` in `chunk`-sized pieces; returns where the
/// skipper said the snapshot ended, in stream offsets.
fn end_with_chunks(stream: &[u8], chunk: usize) -> Option<usize> {
    let mut sk = SnapshotSkipper::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + chunk).min(stream.len());
        match sk.feed(&stream[at..end]) {
            SkipStatus::Consumed(n) => {
                assert_eq!(n, end - at);
                at = end;
            }
            SkipStatus::Done(n) => return Some(at + n),
            SkipStatus::Invalid => return None,
        }
    }
    None
}

#[test]
fn finds_the_end_in_any_chunking() {
    let snap = sample();
    let mut stream = snap.clone();
    stream.extend(packet(10, 0x1_0000_0000, Some(b"version=0"), None));
    for chunk in [1, 2, 3, 7, 13, 64, 500, stream.len()] {
        assert_eq!(
            end_with_chunks(&stream, chunk),
            Some(snap.len()),
            "chunk {chunk}"
        );
    }
    let mut sk = SnapshotSkipper::new();
    assert_eq!(sk.feed(&stream), SkipStatus::Done(snap.len()));
    assert!(sk.is_done());
    assert_eq!(
        (sk.consumed(), sk.sessions(), sk.nodes()),
        (snap.len() as u64, 2, 5)
    );
    // Done is sticky and consumes nothing more.
    assert_eq!(sk.feed(&stream), SkipStatus::Done(0));
    let Status::Complete((_, p)) = decode_packet(&stream[snap.len()..]) else {
        panic!()
    };
    assert_eq!(p.packet_type, PacketType::NEWLEADER);
}

#[test]
fn empty_snapshot_and_exact_end() {
    let snap = snapshot(&[], &[], &[]);
    // count 0, map 0, "/" and the signature.
    assert_eq!(snap.len(), 4 + 4 + 5 + 14);
    let mut sk = SnapshotSkipper::new();
    assert_eq!(sk.feed(&snap[..10]), SkipStatus::Consumed(10));
    assert_eq!(sk.feed(&snap[10..]), SkipStatus::Done(snap.len() - 10));
    assert_eq!(SnapshotSkipper::new().feed(&[]), SkipStatus::Consumed(0));
}

#[test]
fn rejects_what_is_not_a_snapshot() {
    let bad = |b: Vec<u8>| {
        let mut sk = SnapshotSkipper::new();
        assert_eq!(sk.feed(&b), SkipStatus::Invalid, "{b:02x?}");
        assert_eq!(sk.feed(&[0; 4]), SkipStatus::Invalid, "sticky");
    };
    bad(Enc::new().i32(-1).done()); // session count
    bad(Enc::new().i32(0).i32(-1).done()); // ACL map size
    bad(Enc::new().i32(0).i32(1).i64(1).i32(-2).done()); // ACL count
    bad(Enc::new()
        .i32(0)
        .i32(1)
        .i64(1)
        .i32(1)
        .i32(31)
        .i32(0x7fff_ffff)
        .done()); // scheme
    bad(Enc::new().i32(0).i32(0).i32(-1).done()); // null path
    bad(Enc::new().i32(0).i32(0).i32(1 << 21).done()); // path too long
    bad(Enc::new().i32(0).i32(0).i32(0).i32(-7).done()); // data length
    bad(Enc::new().i32(0).i32(0).str("/").i32(9).done()); // signature length
    bad(Enc::new().i32(0).i32(0).str("/").str("BenWasHare").done()); // signature text
}

proptest! {
    #[test]
    fn any_chunking_finds_the_end(cuts in proptest::collection::vec(1usize..40, 1..200)) {
        let snap = sample();
        let mut stream = snap.clone();
        stream.extend(packet(12, -1, None, None));
        let mut sk = SnapshotSkipper::new();
        let mut at = 0;
        let mut end = None;
        for c in cuts.iter().cycle() {
            let e = (at + c).min(stream.len());
            match sk.feed(&stream[at..e]) {
                SkipStatus::Consumed(n) => { prop_assert_eq!(n, e - at); at = e; }
                SkipStatus::Done(n) => { end = Some(at + n); break; }
                SkipStatus::Invalid => break,
            }
            if at == stream.len() { break; }
        }
        prop_assert_eq!(end, Some(snap.len()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300), step in 1usize..17) {
        let mut sk = SnapshotSkipper::new();
        for c in b.chunks(step) {
            match sk.feed(c) {
                SkipStatus::Consumed(n) => prop_assert_eq!(n, c.len()),
                SkipStatus::Done(n) => prop_assert!(n <= c.len()),
                SkipStatus::Invalid => break,
            }
        }
    }
}
