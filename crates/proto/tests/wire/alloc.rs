//! A counting global allocator proving that decoding does not allocate.
//!
//! This is the only `unsafe` in the crate's tests: `GlobalAlloc` is an
//! unsafe trait; every method forwards to `System` unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use crate::frames::{corpus, Kind};

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
