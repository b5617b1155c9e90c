//! A global allocator that tracks the live heap bytes of the current thread and their peak,
//! for tests that prove state stays bounded under adversarial input (`#[path]`-included by
//! the test binaries that use it; every test there runs on one thread, so per-thread
//! accounting is exact and parallel tests do not disturb each other).
//!
//! `GlobalAlloc` is an unsafe trait; every method forwards to `System` unchanged.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

struct Live;

fn add(n: isize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

// SAFETY: pure delegation to the system allocator; the counters are const-initialised
// thread-local `Cell`s that never allocate (`try_with` tolerates thread teardown).
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            add(l.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let q = unsafe { System.realloc(p, l, n) };
        if !q.is_null() {
            add(n as isize - l.size() as isize);
        }
        q
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        add(-(l.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

/// Heap bytes allocated and not yet freed by this thread (net of frees of other threads'
/// blocks, which these tests do not make).
pub fn live() -> isize {
    LIVE.with(Cell::get)
}

/// Highest [`live`] since the last [`reset_peak`].
pub fn peak() -> isize {
    PEAK.with(Cell::get)
}

/// Starts a new peak measurement at the current live size.
pub fn reset_peak() {
    let l = live();
    PEAK.with(|p| p.set(l));
}
