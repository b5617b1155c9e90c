//! A counting global allocator proving that decoding does not allocate,
//! even with huge declared lengths.
//!
//! The only `unsafe` in this test binary: `GlobalAlloc` is an unsafe trait;
//! every method forwards to `System` unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::frames::{corpus, decode_case};

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: pure delegation to the system allocator; the counter is a
// const-initialised thread-local `Cell` that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    let r = f();
    (r, ALLOCS.with(Cell::get) - before)
}

#[test]
fn counter_works() {
    let (_, n) = allocations(|| std::hint::black_box(vec![1u8; 10]));
    assert!(n >= 1);
}

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
