//! Which protocol a connection on an unknown port speaks, from its first bytes.
//!
//! At a connection start (SYN captured) the initiator speaks first in all three protocols:
//! the election's initial message (−65536/−65535 + sid + address, or a 3.4 sid followed by a
//! notification frame), a learner's FOLLOWERINFO/OBSERVERINFO (or a quorum SASL packet), a
//! client's ConnectRequest or four-letter word, or a TLS ClientHello. Mid-stream, only runs
//! of whole quorum packets, notification frames or TLS records are strong enough evidence.

use zkscope_proto::client::{four_letter_word, is_tls_client_hello, ConnectRequest};
use zkscope_proto::election::{
    decode_notification, MAX_INITIAL_ADDR_LEN, PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2,
    QUORUM_AUTH_MAGIC,
};
use zkscope_proto::quorum::PacketType;

use super::fle::{looks_like_fle_frames, MIN_NOTIFICATION};
use super::zab::looks_like_zab_stream;
use super::Proto;

/// Verdict on the bytes seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not enough bytes to tell.
    Wait,
    /// This protocol; `flip`: the side taken for the client is really the server (the
    /// leader of a quorum connection, the acceptor of an election connection).
    Is { proto: Proto, flip: bool },
    /// A TLS handshake.
    Tls,
    /// Not ZooKeeper.
    No,
}

/// Longest connection start looked at (a ConnectRequest with a 64-byte password is 97).
pub(crate) const LOOK: usize = 256;

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn i64_at(b: &[u8], at: usize) -> Option<i64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(i64::from_be_bytes(a))
}

/// The initiator's first bytes of a connection whose start was captured.
pub(crate) fn at_start(b: &[u8]) -> Verdict {
    let Some(&first) = b.first() else {
        return Verdict::Wait;
    };
    if first == 0x16 {
        if b.len() < 3 {
            return Verdict::Wait;
        }
        if is_tls_client_hello(b) {
            return Verdict::Tls;
        }
    }
    if let Some(w) = b.get(..4) {
        if let Some(word) = four_letter_word([w[0], w[1], w[2], w[3]]) {
            // Exactly the word (`stmk` and its 8-byte mask): then the server's text answer
            // and close decide (see `four_letter_exchange`). More bytes are another protocol
            // (memcached's `stats\r\n`).
            let len = if word == "stmk" { 12 } else { 4 };
            return if b.len() <= len {
                Verdict::Wait
            } else {
                Verdict::No
            };
        }
    }
    let magic = QUORUM_AUTH_MAGIC.to_be_bytes();
    if b.len() < 8 {
        // Every test below needs at least 8 bytes; a prefix of the auth magic needs them too.
        return Verdict::Wait;
    }
    if b.get(..8) == Some(&magic[..]) {
        // Quorum SASL before FOLLOWERINFO (on the election port it follows the initial
        // message, so a connection that starts with it is a quorum one).
        return Verdict::Is {
            proto: Proto::Zab,
            flip: false,
        };
    }
    let Some(long) = i64_at(b, 0) else {
        return Verdict::Wait;
    };
    if long == PROTOCOL_VERSION_V1 || long == PROTOCOL_VERSION_V2 {
        let (Some(sid), Some(len)) = (i64_at(b, 8), i32_at(b, 16)) else {
            return Verdict::Wait;
        };
        let ok =
            sid >= 0 && usize::try_from(len).is_ok_and(|n| (1..=MAX_INITIAL_ADDR_LEN).contains(&n));
        return if ok {
            Verdict::Is {
                proto: Proto::Fle,
                flip: false,
            }
        } else {
            Verdict::No
        };
    }
    // A learner's first packet: FOLLOWERINFO/OBSERVERINFO with a LearnerInfo (8, 12 or 20
    // bytes), zxid = acceptedEpoch << 32.
    let ty = i32_at(b, 0).unwrap_or(0);
    if ty == PacketType::FOLLOWERINFO.0 || ty == PacketType::OBSERVERINFO.0 {
        let (Some(zxid), Some(len)) = (i64_at(b, 4), i32_at(b, 12)) else {
            return Verdict::Wait;
        };
        let ok = zxid >= 0 && zxid as u32 == 0 && (8..=64).contains(&len);
        if ok {
            return Verdict::Is {
                proto: Proto::Zab,
                flip: false,
            };
        }
    }
    // A client's ConnectRequest: length prefix, then the request (checked whole).
    if let Some(len) = i32_at(b, 0) {
        if let Ok(len) = usize::try_from(len) {
            if (ConnectRequest::FIXED_LEN..=ConnectRequest::FIXED_LEN + 65).contains(&len) {
                match b.get(4..4 + len) {
                    Some(body) if ConnectRequest::looks_like(body) => {
                        return Verdict::Is {
                            proto: Proto::Client,
                            flip: false,
                        }
                    }
                    Some(_) => {}
                    None if ConnectRequest::looks_like_prefix(len, &b[4..]) => {
                        return Verdict::Wait
                    }
                    None => {}
                }
            }
        }
    }
    // A 3.4 initiator: its sid alone, then a notification frame.
    if (0..=i64::from(u32::MAX)).contains(&long) {
        let (Some(len), Some(state)) = (i32_at(b, 8), i32_at(b, 12)) else {
            return Verdict::Wait;
        };
        let plausible = usize::try_from(len).is_ok_and(|n| (MIN_NOTIFICATION..=4096).contains(&n))
            && (0..=3).contains(&state);
        if plausible {
            let len = len as usize;
            return match b.get(12..12 + len) {
                Some(body) if decode_notification(body).is_ok() => Verdict::Is {
                    proto: Proto::Fle,
                    flip: false,
                },
                Some(_) => Verdict::No,
                None if b.len() < LOOK => Verdict::Wait,
                None => Verdict::No,
            };
        }
    }
    Verdict::No
}

/// Whether a connection that closed after these first bytes was a four-letter-word exchange:
/// the client sent exactly a word of ZooKeeper's list (with `stmk`, its 8-byte mask) and
/// nothing more, the server answered with text.
pub(crate) fn four_letter_exchange(up: &[u8], down: &[u8]) -> bool {
    let Some(word) = up
        .get(..4)
        .and_then(|w| four_letter_word([w[0], w[1], w[2], w[3]]))
    else {
        return false;
    };
    let len = if word == "stmk" { 12 } else { 4 };
    up.len() == len
        && !down.is_empty()
        && down
            .iter()
            .all(|&c| c.is_ascii_graphic() || matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
}

/// The server side's first bytes of a connection whose start was captured, before the
/// initiator said anything: a leader's LEADERINFO (the learner's FOLLOWERINFO was lost).
pub(crate) fn server_first(b: &[u8]) -> Verdict {
    if b.len() < 16 {
        return Verdict::Wait;
    }
    let is_leaderinfo = i32_at(b, 0) == Some(PacketType::LEADERINFO.0)
        && i64_at(b, 4).is_some_and(|z| z >= 0 && z as u32 == 0)
        && i32_at(b, 12) == Some(4);
    if is_leaderinfo {
        Verdict::Is {
            proto: Proto::Zab,
            flip: false,
        }
    } else {
        Verdict::Wait
    }
}

/// Leader-only and learner-only evidence in a run of quorum packets.
#[derive(Debug, Default, Clone, Copy)]
struct Sides {
    leader: bool,
    learner: bool,
}

fn side_of(ty: PacketType, has_data: bool, s: &mut Sides) {
    match ty {
        PacketType::PROPOSAL
        | PacketType::COMMIT
        | PacketType::SYNC
        | PacketType::INFORM
        | PacketType::COMMITANDACTIVATE
        | PacketType::NEWLEADER
        | PacketType::UPTODATE
        | PacketType::DIFF
        | PacketType::TRUNC
        | PacketType::SNAP
        | PacketType::LEADERINFO
        | PacketType::INFORMANDACTIVATE => s.leader = true,
        PacketType::REQUEST
        | PacketType::ACK
        | PacketType::FOLLOWERINFO
        | PacketType::OBSERVERINFO
        | PacketType::ACKEPOCH => s.learner = true,
        PacketType::PING if has_data => s.learner = true,
        PacketType::PING => s.leader = true,
        _ => {}
    }
}

/// Both directions' first bytes of a connection caught mid-stream (`up` from the side taken
/// for the client). Quorum packets decide who leads.
pub(crate) fn mid_stream(up: &[u8], down: &[u8]) -> Verdict {
    let mut u = Sides::default();
    let mut d = Sides::default();
    let up_zab = looks_like_zab_stream(up, &mut |t, data| side_of(t, data, &mut u));
    let down_zab = looks_like_zab_stream(down, &mut |t, data| side_of(t, data, &mut d));
    if up_zab || down_zab {
        let flip = (u.leader && !u.learner) || (d.learner && !d.leader);
        return Verdict::Is {
            proto: Proto::Zab,
            flip,
        };
    }
    if looks_like_fle_frames(up) || looks_like_fle_frames(down) {
        return Verdict::Is {
            proto: Proto::Fle,
            flip: false,
        };
    }
    if tls_records(up) || tls_records(down) {
        return Verdict::Tls;
    }
    Verdict::Wait
}

/// Longest TLS record body (TLS 1.2 ciphertext: 2^14 + 2048).
const TLS_MAX_RECORD: usize = (1 << 14) + 2048;

/// True when `b` (the first bytes seen of one direction, not necessarily at a connection
/// start) is a run of TLS records: at least one whole record, every header plausible
/// (content type 20–23, version 3.1–3.4, length 1…2^14+2048), possibly ending in an
/// incomplete record. ZooKeeper's own frames and packets start with a zero byte (a length
/// or a packet type below 2^24), so the two cannot be confused at a message boundary.
pub(crate) fn tls_records(b: &[u8]) -> bool {
    let mut rest = b;
    let mut whole = 0;
    while let Some(h) = rest.get(..5) {
        let len = usize::from(u16::from_be_bytes([h[3], h[4]]));
        let plausible = (20..=23).contains(&h[0])
            && h[1] == 3
            && (1..=4).contains(&h[2])
            && (1..=TLS_MAX_RECORD).contains(&len);
        if !plausible {
            return false;
        }
        match rest.get(5 + len..) {
            Some(next) => {
                whole += 1;
                rest = next;
            }
            None => break,
        }
    }
    whole > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts() {
        let mut fle = (-65536i64).to_be_bytes().to_vec();
        fle.extend(3i64.to_be_bytes());
        fle.extend(14i32.to_be_bytes());
        fle.extend(b"127.0.0.1:3888");
        assert_eq!(at_start(&fle[..7]), Verdict::Wait);
        assert_eq!(
            at_start(&fle),
            Verdict::Is {
                proto: Proto::Fle,
                flip: false
            }
        );
        let mut zab = 11i32.to_be_bytes().to_vec();
        zab.extend(0x1_0000_0000i64.to_be_bytes());
        zab.extend(20i32.to_be_bytes());
        assert!(matches!(
            at_start(&zab),
            Verdict::Is {
                proto: Proto::Zab,
                ..
            }
        ));
        let mut conn = 44i32.to_be_bytes().to_vec();
        conn.extend([0u8; 4 + 8]);
        conn.extend(30000i32.to_be_bytes());
        conn.extend([0u8; 8]);
        conn.extend(16i32.to_be_bytes());
        conn.extend([0u8; 16]);
        assert_eq!(at_start(&conn[..20]), Verdict::Wait);
        assert!(matches!(
            at_start(&conn),
            Verdict::Is {
                proto: Proto::Client,
                ..
            }
        ));
        // A four-letter word waits for its answer and close; more bytes are not one.
        assert_eq!(at_start(b"ruok"), Verdict::Wait);
        assert_eq!(at_start(b"stats\r\n"), Verdict::No);
        assert_eq!(at_start(b"stmk\0\0\0\0"), Verdict::Wait);
        assert!(four_letter_exchange(b"ruok", b"imok"));
        assert!(four_letter_exchange(
            b"srvr",
            b"Zookeeper version: 3.8.0\nMode: x\n"
        ));
        assert!(!four_letter_exchange(b"ruok", b""));
        assert!(!four_letter_exchange(b"stat", b"\0\0\0\x10binary"));
        assert!(!four_letter_exchange(
            b"stats\r\n",
            b"STAT pid 1\r\nEND\r\n"
        ));
        assert_eq!(at_start(b"\x16\x03\x01\x02\x00"), Verdict::Tls);
        assert_eq!(at_start(b"GET / HTTP/1.1\r\n\r\n"), Verdict::No);
        assert_eq!(at_start(b"SSH-2.0-OpenSSH_9.2p1\r\n"), Verdict::No);
    }

    #[test]
    fn tls_mid_stream() {
        // Two application-data records, then the start of a third.
        let mut rec = vec![0x17, 3, 3, 0, 4, 1, 2, 3, 4];
        rec.extend([0x17, 3, 3, 0, 2, 9, 9, 0x17, 3, 3, 0x40]);
        assert!(tls_records(&rec));
        assert_eq!(mid_stream(&rec, &[]), Verdict::Tls);
        assert_eq!(mid_stream(&[], &rec[..9]), Verdict::Tls);
        // A header alone, a bad version, a bad next header, ZooKeeper bytes: not TLS.
        assert!(!tls_records(&rec[..7]));
        assert!(!tls_records(&[0x17, 2, 3, 0, 1, 0]));
        assert!(!tls_records(&[0x17, 3, 3, 0, 1, 0, 0x42, 3, 3, 0, 1]));
        let ping = [
            0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert!(!tls_records(&ping));
        assert_ne!(mid_stream(&ping, &[]), Verdict::Tls);
    }
}
