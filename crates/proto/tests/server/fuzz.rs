//! Arbitrary bytes into every public decoder: no panic, no allocation, and
//! consistent results (consumed ≤ input, JSON always serialises).

use proptest::prelude::*;
use zkscope_proto::election::{
    config_version, decode_initial, decode_notification, decode_quorum_auth, parse_config,
    parse_host_port, Status,
};
use zkscope_proto::quorum::{
    decode_body, decode_packet, decode_txn, peek_header, plausible_packet_start, PacketType,
    SkipStatus, SnapshotSkipper,
};

use crate::alloc::allocations;
use crate::frames::{corpus, walk_body, walk_config};

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..400)
}

/// Random bytes, or a corpus message with a few bytes overwritten.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let cases: Vec<Vec<u8>> = corpus().into_iter().map(|c| c.bytes).collect();
    let n = cases.len();
    prop_oneof![
        bytes(),
        (
            0..n,
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)
        )
            .prop_map(move |(i, edits)| {
                let mut b = cases[i].clone();
                for (at, v) in edits {
                    if !b.is_empty() {
                        let k = at.index(b.len());
                        b[k] = v;
                    }
                }
                b
            }),
    ]
}

fn check_stream<T>(s: &Status<(usize, T)>, len: usize) {
    if let Status::Complete((n, _)) = s {
        assert!(*n <= len);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn quorum_decoders(b in mutated(), dir in prop_oneof![Just(None), Just(Some(true)), Just(Some(false))]) {
        let (_, n) = allocations(|| {
            let s = decode_packet(&b);
            check_stream(&s, b.len());
            if let Status::Complete((_, p)) = s {
                p.authinfo.iter().for_each(drop);
                if let Ok(body) = p.body(dir) {
                    walk_body(&body);
                }
            }
            plausible_packet_start(&b);
            peek_header(&b);
            if let Ok(t) = decode_txn(&b) {
                walk_body(&zkscope_proto::quorum::QuorumBody::Txn(t));
            }
        });
        prop_assert_eq!(n, 0);
        if let Status::Complete((_, p)) = decode_packet(&b) {
            serde_json::to_string(&p.directed(dir)).unwrap();
        }
    }

    #[test]
    fn every_body_type(ty in -2i32..=22, b in mutated(), null in any::<bool>(), dir in prop_oneof![Just(None), Just(Some(true)), Just(Some(false))]) {
        let data = if null { None } else { Some(&b[..]) };
        let (r, n) = allocations(|| {
            let r = decode_body(PacketType(ty), data, dir);
            if let Ok(body) = &r {
                walk_body(body);
            }
            r
        });
        prop_assert_eq!(n, 0);
        if let Ok(body) = r {
            serde_json::to_string(&body).unwrap();
        }
    }

    #[test]
    fn election_decoders(b in mutated()) {
        let (_, n) = allocations(|| {
            let s = decode_initial(&b);
            check_stream(&s, b.len());
            if let Status::Complete((_, m)) = s {
                m.addresses().for_each(drop);
            }
            check_stream(&decode_quorum_auth(&b), b.len());
            if let Ok(n) = decode_notification(&b) {
                if let Some(t) = n.config_str() {
                    walk_config(t);
                }
            }
        });
        prop_assert_eq!(n, 0);
        if let Status::Complete((_, m)) = decode_initial(&b) {
            serde_json::to_string(&m).unwrap();
        }
        if let Ok(n) = decode_notification(&b) {
            serde_json::to_string(&n).unwrap();
        }
    }

    #[test]
    fn config_text(s in "(server|group|weight|version|x)?[.0-9a-z=:;|\\[\\] \\-\\n]{0,120}") {
        let (_, n) = allocations(|| {
            walk_config(&s);
            config_version(&s);
            parse_host_port(&s);
        });
        prop_assert_eq!(n, 0);
        for l in parse_config(&s) {
            serde_json::to_string(&l).unwrap();
        }
    }

    #[test]
    fn arbitrary_config_text(s in any::<String>()) {
        for l in parse_config(&s) {
            serde_json::to_string(&l).unwrap();
        }
    }

    #[test]
    fn snapshot_skipper(b in mutated(), step in 1usize..9) {
        let (_, n) = allocations(|| {
            let mut sk = SnapshotSkipper::new();
            for c in b.chunks(step) {
                if !matches!(sk.feed(c), SkipStatus::Consumed(_)) {
                    break;
                }
            }
        });
        prop_assert_eq!(n, 0);
    }
}
