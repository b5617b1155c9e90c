//! Quorum-port (ZAB) decoders: a stream of unframed `QuorumPacket`s decoded one after the
//! other, each body decoded as sent by the leader, by a learner and by an unknown side, and
//! the snapshot skipper fed the same bytes whole and in small pieces (same outcome).
//!
//! Shared by `fuzz/fuzz_targets/quorum.rs` and the corpus replay in `crates/proto/tests`.

use zkscope_proto::election::Status;
use zkscope_proto::quorum::{
    decode_body, decode_packet, decode_txn, peek_header, plausible_packet_start, PacketType,
    SkipStatus, SnapshotSkipper,
};

/// Feeds `data` in pieces of `step` bytes; returns where the snapshot ended (absolute) or
/// whether it was rejected.
fn skip(data: &[u8], step: usize) -> Option<Result<usize, ()>> {
    let mut sk = SnapshotSkipper::new();
    let mut at = 0;
    for piece in data.chunks(step) {
        match sk.feed(piece) {
            SkipStatus::Consumed(n) => {
                assert_eq!(n, piece.len(), "consumed is not the whole piece");
                at += n;
            }
            SkipStatus::Done(n) => {
                assert!(n <= piece.len());
                return Some(Ok(at + n));
            }
            SkipStatus::Invalid => return Some(Err(())),
        }
    }
    None
}

/// Runs every quorum decoder over `data`; panics on an inconsistency.
pub fn run(data: &[u8]) {
    let mut rest = data;
    // Whole packets, one after the other, as the quorum handler does.
    for _ in 0..64 {
        let _ = peek_header(rest);
        let _ = plausible_packet_start(rest);
        match decode_packet(rest) {
            Status::Complete((n, p)) => {
                assert!(n > 0 && n <= rest.len());
                if let Some(cut) = n.checked_sub(1) {
                    assert!(
                        decode_packet(rest.get(..cut).unwrap_or_default()).is_partial(),
                        "a strict prefix of a packet is not partial"
                    );
                }
                let _ = p.authinfo.iter().count();
                for dir in [None, Some(true), Some(false)] {
                    if let Ok(body) = p.body(dir) {
                        serde_json::to_string(&body).unwrap();
                    }
                    serde_json::to_string(&p.directed(dir)).unwrap();
                }
                rest = rest.get(n..).unwrap_or_default();
            }
            Status::Partial | Status::Invalid(_) => break,
        }
    }
    // The bytes as the data of each packet type.
    if let Some((&ty, body)) = data.split_first() {
        let ty = PacketType(i32::from(ty % 24) - 2);
        for dir in [None, Some(true), Some(false)] {
            if let Ok(b) = decode_body(ty, Some(body), dir) {
                serde_json::to_string(&b).unwrap();
            }
        }
        let _ = decode_body(ty, None, None);
    }
    if let Ok(t) = decode_txn(data) {
        let _ = format!("{t:?}");
    }
    let whole = skip(data, data.len().max(1));
    for step in [1, 3, 7] {
        assert_eq!(
            skip(data, step),
            whole,
            "snapshot skipper depends on the split ({step})"
        );
    }
}
