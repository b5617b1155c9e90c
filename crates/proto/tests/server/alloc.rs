//! A counting global allocator proving that decoding does not allocate,
//! even with huge declared lengths.
//!
//! The only `unsafe` in this test binary: `GlobalAlloc` is an unsafe trait;
//! every method forwards to `System` unchanged.

#[path = "../common/counting_alloc.rs"]
mod counting_alloc;

use crate::frames::{corpus, decode_case};
pub use counting_alloc::allocations;

#[test]
fn decoding_and_iterating_never_allocates() {
    for c in corpus() {
        let (res, n) = allocations(|| decode_case(c.kind, &c.bytes));
        assert_eq!(res, Ok(()), "{}", c.name);
        assert_eq!(n, 0, "{} allocated", c.name);
        for len in 0..c.bytes.len() {
            let (_, n) = allocations(|| decode_case(c.kind, &c.bytes[..len]));
            assert_eq!(n, 0, "{} prefix {len} allocated", c.name);
        }
    }
}

/// Every 4-byte window set to a huge or negative length: no panic, no
/// allocation, and stream decoders never wait for more than the caps allow.
#[test]
fn huge_lengths_never_allocate() {
    for c in corpus() {
        for at in 0..c.bytes.len().saturating_sub(3) {
            for v in [0x7fff_ffffu32, 0x8000_0000, 0xffff_fffe, 0x0400_0001] {
                let mut b = c.bytes.clone();
                b[at..at + 4].copy_from_slice(&v.to_be_bytes());
                let (_, n) = allocations(|| decode_case(c.kind, &b));
                assert_eq!(n, 0, "{} window {at}={v:#x}", c.name);
            }
        }
    }
}
