//! Every strict prefix of every corpus message: stream decoders say
//! `Partial`, body decoders `Err(Truncated)` — except the prefixes listed
//! per case that are themselves complete shorter wire forms (28/36/40-byte
//! notifications, 8/12-byte LearnerInfo, CreateTxnV0, a txn without its
//! digest, a closeSession txn whose first 12 bytes read as a digest, …).

use zkscope_proto::election::{decode_initial, decode_notification, decode_quorum_auth, Status};
use zkscope_proto::quorum::{decode_body, decode_packet, peek_header};
use zkscope_proto::ErrorKind;

use crate::frames::{corpus, decode_case, Kind};

#[test]
fn corpus_decodes_whole() {
    for c in corpus() {
        assert_eq!(decode_case(c.kind, &c.bytes), Ok(()), "{}", c.name);
    }
}

#[test]
fn stream_prefixes_are_partial() {
    for c in corpus() {
        for len in 0..c.bytes.len() {
            let p = &c.bytes[..len];
            let partial = match c.kind {
                Kind::Packet { .. } => decode_packet(p).is_partial(),
                Kind::Initial => decode_initial(p).is_partial(),
                Kind::QuorumAuth => decode_quorum_auth(p).is_partial(),
                Kind::Notification => continue,
            };
            assert!(partial, "{} prefix {len}", c.name);
        }
    }
}

type BodyDecoder = dyn Fn(&[u8]) -> Result<(), ErrorKind>;

#[test]
fn body_prefixes_are_truncated() {
    for c in corpus() {
        let (body, decode): (&[u8], &BodyDecoder) = match c.kind {
            Kind::Packet { from_leader } => {
                let Status::Complete((_, p)) = decode_packet(&c.bytes) else {
                    panic!("{}", c.name)
                };
                let Some(data) = p.data.bytes() else {
                    assert!(c.ok_prefixes.is_empty(), "{}", c.name);
                    continue;
                };
                let ty = p.packet_type;
                (data, &move |d: &[u8]| {
                    decode_body(ty, Some(d), from_leader)
                        .map(drop)
                        .map_err(|e| e.kind)
                })
            }
            Kind::Notification => (&c.bytes[..], &|d: &[u8]| {
                decode_notification(d).map(drop).map_err(|e| e.kind)
            }),
            _ => continue,
        };
        for len in 0..body.len() {
            let r = decode(&body[..len]);
            if c.ok_prefixes.contains(&len) {
                assert_eq!(r, Ok(()), "{} prefix {len} should decode", c.name);
            } else {
                assert_eq!(r, Err(ErrorKind::Truncated), "{} prefix {len}", c.name);
            }
        }
    }
}

#[test]
fn peek_header_needs_12_bytes() {
    for c in corpus() {
        if let Kind::Packet { .. } = c.kind {
            for len in 0..12 {
                assert_eq!(peek_header(&c.bytes[..len]), None);
            }
            assert!(peek_header(&c.bytes[..12]).is_some());
        }
    }
}
