//! A counting global allocator proving that decoding does not allocate.
//!
//! This is the only `unsafe` in the crate's tests: `GlobalAlloc` is an
//! unsafe trait; every method forwards to `System` unchanged.

#[path = "../common/counting_alloc.rs"]
mod counting_alloc;

use crate::frames::{corpus, Kind};
pub use counting_alloc::allocations;

#[test]
fn decoding_and_iterating_never_allocates() {
    for case in corpus() {
        let (res, n) = allocations(|| crate::decode_case(case.kind, &case.bytes));
        assert!(res.is_ok(), "{}: {:?}", case.name, res);
        assert_eq!(n, 0, "{} allocated", case.name);
    }
}

#[test]
fn errors_never_allocate() {
    for case in corpus() {
        for len in 0..case.bytes.len() {
            let (_, n) = allocations(|| crate::decode_case(case.kind, &case.bytes[..len]));
            assert_eq!(n, 0, "{} prefix {len} allocated", case.name);
        }
    }
}

/// Every 4-byte window set to 0x7fffffff: no panic, no allocation.
#[test]
fn huge_lengths_never_allocate() {
    for case in corpus() {
        for at in 0..case.bytes.len().saturating_sub(3) {
            let mut b = case.bytes.clone();
            b[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
            let (_, n) = allocations(|| crate::decode_case(case.kind, &b));
            assert_eq!(n, 0, "{} at {at} allocated", case.name);
            if let Kind::Reply(_) = case.kind {
                for op in (-12..=110).chain([555]) {
                    let kind = Kind::Reply(Some(op));
                    let (_, n) = allocations(|| crate::decode_case(kind, &b));
                    assert_eq!(n, 0, "{} as op {op} at {at} allocated", case.name);
                }
            }
        }
    }
}
