//! Property tests: no decoder panics on any input, and whatever decodes can
//! be iterated and serialised.

use proptest::prelude::*;

use crate::frames::{corpus, Kind};
use crate::{walk_reply_body, walk_request_body};
use zkscope_proto::*;

/// Every opcode the reply decoder distinguishes, plus unknown ones.
fn reply_ops() -> Vec<Option<OpCode>> {
    let mut v: Vec<_> = (-12..=23)
        .chain(100..=108)
        .chain([555, i32::MIN, i32::MAX])
        .map(|o| Some(OpCode(o)))
        .collect();
    v.push(None);
    v
}

/// Runs every public decoder over `b`.
fn all_decoders(b: &[u8]) {
    if let Ok(r) = decode_request(b) {
        walk_request_body(&r.body);
        serde_json::to_string(&r).unwrap();
        let _ = format!("{r:?}");
    }
    for op in reply_ops() {
        if let Ok(r) = decode_reply(b, op) {
            walk_reply_body(&r.body);
            serde_json::to_string(&r).unwrap();
            let _ = format!("{r:?}");
        }
    }
    if let Ok((h, e)) = decode_event(b) {
        serde_json::to_string(&(h, e)).unwrap();
    }
    if let Ok(e) = WatchEvent::decode(b) {
        serde_json::to_string(&e).unwrap();
    }
    if let Ok(c) = ConnectRequest::decode(b) {
        serde_json::to_string(&c).unwrap();
    }
    if let Ok(c) = ConnectResponse::decode(b) {
        serde_json::to_string(&c).unwrap();
    }
    if ConnectRequest::looks_like(b) {
        assert!(
            ConnectRequest::decode(b).is_ok(),
            "looks_like but does not decode"
        );
    }
    if ConnectResponse::looks_like(b) {
        assert!(
            ConnectResponse::decode(b).is_ok(),
            "looks_like but does not decode"
        );
    }
    let _ = RequestHeader::decode(b);
    let _ = ReplyHeader::decode(b);
    let _ = is_tls_client_hello(b);
    if let Some(first4) = b.get(..4) {
        let _ = four_letter_word(first4.try_into().unwrap());
    }
}

/// Mutations of a corpus frame: overwrite, insert huge lengths, truncate.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let frames: Vec<Vec<u8>> = corpus().into_iter().map(|c| c.bytes).collect();
    (
        proptest::sample::select(frames),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        prop_oneof![
            Just(i32::MAX),
            Just(-1),
            Just(-2),
            Just(0),
            Just(i32::MIN),
            any::<i32>()
        ],
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut b, flips, at, len, cut)| {
            if !b.is_empty() {
                for (i, v) in flips {
                    let i = i.index(b.len());
                    b[i] = v;
                }
                let at = at.index(b.len());
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&len.to_be_bytes()[..end - at]);
                b.truncate(cut.index(b.len() + 1));
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        all_decoders(&b);
    }

    #[test]
    fn mutated_frames_never_panic(b in mutated()) {
        all_decoders(&b);
    }

    /// Frames that start with a plausible header (so decoding goes deep).
    #[test]
    fn headed_garbage_never_panics(
        xid in any::<i32>(),
        op in prop_oneof![-12..=23i32, 100..=108i32],
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut b = Vec::new();
        b.extend_from_slice(&xid.to_be_bytes());
        b.extend_from_slice(&op.to_be_bytes());
        b.extend_from_slice(&tail);
        all_decoders(&b);
        // As a reply: header + err 0 + tail.
        let mut r = Vec::new();
        r.extend_from_slice(&xid.to_be_bytes());
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(&tail);
        for o in reply_ops() {
            if let Ok(rep) = decode_reply(&r, o) {
                walk_reply_body(&rep.body);
            }
        }
    }
}

/// Exhaustive: every 4-byte window of every frame set to 0x7fffffff (and
/// −2), under the frame's own decoder and all others.
#[test]
fn huge_and_negative_lengths_everywhere() {
    for case in corpus() {
        for at in 0..case.bytes.len().saturating_sub(3) {
            for v in [i32::MAX, -2] {
                let mut b = case.bytes.clone();
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
                let _ = crate::decode_case(case.kind, &b);
                if let Kind::Request = case.kind {
                    all_decoders(&b);
                }
            }
        }
    }
}
