//! Every strict prefix of every corpus frame is `Truncated`, except the
//! documented shorter-but-valid records (see `frames::Prefix`).

use crate::decode_case;
use crate::frames::{corpus, Prefix};

#[test]
fn full_frames_decode() {
    for case in corpus() {
        if let Err(e) = decode_case(case.kind, &case.bytes) {
            panic!("{}: {e}", case.name);
        }
    }
}

#[test]
fn strict_prefixes_are_truncated() {
    let mut checked = 0;
    for case in corpus() {
        for len in 0..case.bytes.len() {
            let may_be_ok = match case.prefix {
                Prefix::AllTruncated => false,
                Prefix::OkFrom(n) => len >= n,
                Prefix::OkAt(n) => len == n,
            };
            match decode_case(case.kind, &case.bytes[..len]) {
                Ok(()) => assert!(may_be_ok, "{} prefix {len} decoded", case.name),
                Err(e) => {
                    assert!(e.is_truncated(), "{} prefix {len}: {e}", case.name);
                    assert!(e.offset <= len, "{} prefix {len}: {e}", case.name);
                    // The documented exceptions must really decode.
                    assert!(!may_be_ok, "{} prefix {len} failed: {e}", case.name);
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 3000, "{checked}");
}
