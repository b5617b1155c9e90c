//! Tumbling windows on the capture clock, readable while capture continues.
//!
//! [`Windowed`] feeds an [`Aggregate`] until the capture clock (packet timestamps, never the
//! wall clock: replaying a file gives the same windows) leaves the window, then closes it and
//! starts an empty one. Windows are aligned on multiples of their width since the epoch (2 s
//! windows start on even seconds), so views with the same width agree. Time that passes with
//! no input closes windows too: each missed window is reported, empty (at most `keep` of them,
//! memory stays bounded whatever the gap). [`Windowed::finish`] closes the open window at the
//! end of the input, marked incomplete.
//!
//! The last `keep` closed windows and, at most every `partial_every` of capture time, a copy of
//! the window being filled are published in a [`Snapshot`] behind a mutex that the capture
//! thread holds only to swap `Arc`s: a reader ([`SnapshotHandle::read`], from an HTTP handler
//! or a screen refresh) never waits for an aggregation, and the hot path takes no lock except
//! when a window closes or a partial copy is published.
//!
//! ```
//! use zkscope_analysis::window::{Aggregate, Windowed};
//! use zkscope_capture::Timestamp;
//!
//! /// Counts items.
//! #[derive(Debug, Default, Clone)]
//! struct Count(u64);
//! impl Aggregate for Count {
//!     type Input<'a> = ();
//!     fn add(&mut self, _: &()) {
//!         self.0 += 1;
//!     }
//!     fn empty_like(&self) -> Self {
//!         Count(0)
//!     }
//! }
//!
//! const S: i64 = 1_000_000_000;
//! let mut w = Windowed::new(2 * S, 8, Count(0));
//! let snapshots = w.handle(); // for another thread
//! w.add(Timestamp(10 * S), &());
//! w.add(Timestamp(11 * S), &());
//! w.add(Timestamp(12 * S), &()); // closes [10 s, 12 s)
//! assert_eq!(snapshots.last_complete().map(|w| w.agg.0), Some(2));
//! w.finish(Timestamp(13 * S));
//! let s = snapshots.read();
//! assert_eq!(s.closed.len(), 2);
//! assert!(s.finished);
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use zkscope_capture::client::Msg;
use zkscope_capture::pipeline::{Consumer, Event};
use zkscope_capture::Timestamp;

use crate::agg::GroupTable;
use crate::call::{Call, CallBuilder};

/// An aggregate that can be windowed: it takes inputs and can make an empty copy of itself
/// (same settings, no data) for the next window.
pub trait Aggregate {
    /// What it aggregates (may borrow, e.g. [`Call`]).
    type Input<'a>: ?Sized;
    /// Adds one input.
    fn add(&mut self, input: &Self::Input<'_>);
    /// An empty aggregate with the same settings.
    fn empty_like(&self) -> Self;
}

/// An aggregate whose windows can be added up (for rates over several windows: `top`'s 10 s
/// and 40 s out of 2 s windows).
pub trait Merge {
    /// Adds `other` into `self`.
    fn merge(&mut self, other: &Self);
}

/// One window and what was aggregated in it.
#[derive(Debug)]
pub struct Window<A> {
    /// Its start (aligned on a multiple of the width).
    pub start: Timestamp,
    /// Its end (exclusive): start + width, or for the window closed at the end of the input
    /// (or a partial copy), the last time seen.
    pub end: Timestamp,
    /// The window ran to its end.
    pub complete: bool,
    /// The aggregate.
    pub agg: A,
}

/// What readers see: recent closed windows (oldest first) and a copy of the open one.
#[derive(Debug)]
pub struct Snapshot<A> {
    /// The last closed windows, oldest first (at most `keep`).
    pub closed: VecDeque<Arc<Window<A>>>,
    /// The window being filled, as of its last publication.
    pub partial: Option<Arc<Window<A>>>,
    /// The input ended ([`Windowed::finish`]).
    pub finished: bool,
}

impl<A> Clone for Snapshot<A> {
    fn clone(&self) -> Self {
        Snapshot {
            closed: self.closed.clone(),
            partial: self.partial.clone(),
            finished: self.finished,
        }
    }
}

impl<A> Default for Snapshot<A> {
    fn default() -> Self {
        Snapshot {
            closed: VecDeque::new(),
            partial: None,
            finished: false,
        }
    }
}

impl<A: Merge + Clone> Snapshot<A> {
    /// The last `n` closed windows added up (fewer if fewer were closed), with their span.
    pub fn merged(&self, n: usize) -> Option<Window<A>> {
        let skip = self.closed.len().saturating_sub(n);
        let mut it = self.closed.iter().skip(skip);
        let first = it.next()?;
        let mut out = Window {
            start: first.start,
            end: first.end,
            complete: first.complete,
            agg: first.agg.clone(),
        };
        for w in it {
            out.agg.merge(&w.agg);
            out.end = w.end;
            out.complete &= w.complete;
        }
        Some(out)
    }
}

/// A reader's handle on a [`Windowed`]'s snapshot; cheap to clone, `Send` when `A` is.
#[derive(Debug)]
pub struct SnapshotHandle<A>(Arc<Mutex<Snapshot<A>>>);

impl<A> Clone for SnapshotHandle<A> {
    fn clone(&self) -> Self {
        SnapshotHandle(self.0.clone())
    }
}

impl<A> SnapshotHandle<A> {
    /// The current snapshot (clones `Arc`s, not aggregates).
    pub fn read(&self) -> Snapshot<A> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    /// The last window that ran to its end.
    pub fn last_complete(&self) -> Option<Arc<Window<A>>> {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.closed.iter().rev().find(|w| w.complete).cloned()
    }
    /// The window being filled, as of its last publication.
    pub fn partial(&self) -> Option<Arc<Window<A>>> {
        let s = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        s.partial.clone()
    }
}

/// Tumbling windows of an aggregate; see the module docs.
#[derive(Debug)]
pub struct Windowed<A> {
    width: i64,
    keep: usize,
    partial_every: Option<i64>,
    current: A,
    /// Start of the open window; `None` before the first input.
    start: Option<i64>,
    /// Latest time seen in the open window.
    last: i64,
    /// When a partial copy was last published.
    published: i64,
    shared: Arc<Mutex<Snapshot<A>>>,
}

impl<A: Aggregate> Windowed<A> {
    /// Windows `width_ns` wide (at least 1 ns) of copies of `empty`, keeping the last `keep`
    /// closed ones (at least 1) in the snapshot.
    pub fn new(width_ns: i64, keep: usize, empty: A) -> Self {
        Windowed {
            width: width_ns.max(1),
            keep: keep.max(1),
            partial_every: None,
            current: empty,
            start: None,
            last: 0,
            published: i64::MIN,
            shared: Arc::default(),
        }
    }

    /// Also publish a copy of the open window, at most every `ns` of capture time (a clone of
    /// the aggregate each time: choose `ns` so that this stays cheap).
    pub fn publish_partial_every(mut self, ns: i64) -> Self {
        self.partial_every = Some(ns.max(1));
        self
    }

    /// A handle for readers.
    pub fn handle(&self) -> SnapshotHandle<A> {
        SnapshotHandle(self.shared.clone())
    }

    /// The window width in nanoseconds.
    pub fn width(&self) -> i64 {
        self.width
    }

    /// The open window's aggregate.
    pub fn current(&self) -> &A {
        &self.current
    }

    /// Adds an input seen at `ts`. An input older than the open window (capture timestamps
    /// may go back a little) counts in the open window.
    pub fn add(&mut self, ts: Timestamp, input: &A::Input<'_>)
    where
        A: Clone,
    {
        self.advance(ts);
        self.current.add(input);
    }

    /// Moves the clock to `ts` without input: closes the windows that ended before it.
    pub fn advance(&mut self, ts: Timestamp)
    where
        A: Clone,
    {
        let t = ts.0;
        let start = match self.start {
            Some(s) => s,
            None => {
                let s = t.div_euclid(self.width) * self.width;
                self.start = Some(s);
                self.last = t;
                s
            }
        };
        if t >= start.saturating_add(self.width) {
            self.roll(t);
        } else {
            self.last = self.last.max(t);
        }
        if let Some(every) = self.partial_every {
            if t.saturating_sub(self.published) >= every {
                self.published = t;
                self.publish_partial();
            }
        }
    }

    /// Closes the open window (it and every empty window up to the one holding `t`).
    fn roll(&mut self, t: i64) {
        let Some(start) = self.start else {
            return;
        };
        let end = start.saturating_add(self.width);
        let next = self.current.empty_like();
        let full = std::mem::replace(&mut self.current, next);
        let mut closed = vec![Window {
            start: Timestamp(start),
            end: Timestamp(end),
            complete: true,
            agg: full,
        }];
        let new_start = t.div_euclid(self.width) * self.width;
        // Empty windows in a gap: only the last `keep` can be seen in the snapshot.
        let missed = (new_start.saturating_sub(end) / self.width).max(0) as u64;
        let shown = missed.min(self.keep as u64) as i64;
        for i in (0..shown).rev() {
            let s = new_start - (i + 1) * self.width;
            closed.push(Window {
                start: Timestamp(s),
                end: Timestamp(s + self.width),
                complete: true,
                agg: self.current.empty_like(),
            });
        }
        self.start = Some(new_start);
        self.last = t;
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        for w in closed {
            s.closed.push_back(Arc::new(w));
        }
        while s.closed.len() > self.keep {
            s.closed.pop_front();
        }
        s.partial = None;
    }

    /// Publishes a copy of the open window now.
    pub fn publish_partial(&mut self)
    where
        A: Clone,
    {
        let Some(start) = self.start else {
            return;
        };
        let w = Arc::new(Window {
            start: Timestamp(start),
            end: Timestamp(self.last),
            complete: false,
            agg: self.current.clone(),
        });
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .partial = Some(w);
    }

    /// The input ended at `end`: closes the open window, incomplete, ending at the last time
    /// seen (or `end` if later), and marks the snapshot finished.
    pub fn finish(&mut self, end: Timestamp) {
        let mut s = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(start) = self.start.take() {
            let next = self.current.empty_like();
            let agg = std::mem::replace(&mut self.current, next);
            let stop = self.last.max(end.0).min(start.saturating_add(self.width));
            s.closed.push_back(Arc::new(Window {
                start: Timestamp(start),
                end: Timestamp(stop),
                complete: false,
                agg,
            }));
            while s.closed.len() > self.keep {
                s.closed.pop_front();
            }
        }
        s.partial = None;
        s.finished = true;
    }
}

/// A [`GroupTable`] per window: `serve`'s per-window statistics.
impl Aggregate for GroupTable {
    type Input<'a> = Call<'a>;
    fn add(&mut self, c: &Call<'_>) {
        self.record(c);
    }
    fn empty_like(&self) -> Self {
        GroupTable::empty_like(self)
    }
}

/// A pipeline consumer that turns client messages into [`Call`]s and windows them by the time
/// their outcome was known: plug any aggregate of calls in.
pub struct CallWindows<A> {
    calls: CallBuilder,
    windows: Windowed<A>,
    last: Timestamp,
}

impl<A> CallWindows<A>
where
    A: for<'a> Aggregate<Input<'a> = Call<'a>> + Clone,
{
    /// Calls into `windows`.
    pub fn new(windows: Windowed<A>) -> Self {
        CallWindows {
            calls: CallBuilder::default(),
            windows,
            last: Timestamp::ZERO,
        }
    }

    /// A handle for readers.
    pub fn handle(&self) -> SnapshotHandle<A> {
        self.windows.handle()
    }

    /// One decoded client message.
    pub fn message(&mut self, m: &Msg<'_>) {
        self.last = self.last.max(m.ts);
        let windows = &mut self.windows;
        windows.advance(m.ts);
        self.calls.message(m, &mut |c| windows.add(c.end, c));
    }

    /// End of input: the calls still open (unanswered handshakes) and the open window.
    pub fn finish(&mut self) {
        let windows = &mut self.windows;
        self.calls.finish(self.last, &mut |c| windows.add(c.end, c));
        self.windows.finish(self.last);
    }
}

impl<A> Consumer for CallWindows<A>
where
    A: for<'a> Aggregate<Input<'a> = Call<'a>> + Clone,
{
    fn event(&mut self, ev: &Event<'_, '_>) {
        if let Event::Client(m) = ev {
            self.message(m);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    /// Counts inputs and sums their values.
    #[derive(Debug, Default, Clone, PartialEq, Eq)]
    struct Sum {
        n: u64,
        total: u64,
    }

    impl Aggregate for Sum {
        type Input<'a> = u64;
        fn add(&mut self, v: &u64) {
            self.n += 1;
            self.total += v;
        }
        fn empty_like(&self) -> Self {
            Sum::default()
        }
    }

    impl Merge for Sum {
        fn merge(&mut self, o: &Self) {
            self.n += o.n;
            self.total += o.total;
        }
    }

    fn spans(s: &Snapshot<Sum>) -> Vec<(i64, i64, u64, bool)> {
        s.closed
            .iter()
            .map(|w| (w.start.0 / S, w.end.0, w.agg.n, w.complete))
            .collect()
    }

    #[test]
    fn boundaries_are_aligned_and_half_open() {
        let mut w = Windowed::new(2 * S, 10, Sum::default());
        let h = w.handle();
        w.add(Timestamp(11 * S), &1); // window [10, 12)
        w.add(Timestamp(12 * S - 1), &1);
        assert!(h.read().closed.is_empty(), "the window has not ended");
        w.add(Timestamp(12 * S), &1); // first instant of [12, 14)
        let s = h.read();
        assert_eq!(spans(&s), vec![(10, 12 * S, 2, true)]);
        assert_eq!(w.current().n, 1);
    }

    #[test]
    fn gaps_give_empty_windows_bounded_by_keep() {
        let mut w = Windowed::new(S, 3, Sum::default());
        let h = w.handle();
        w.add(Timestamp(100 * S), &5);
        w.add(Timestamp(103 * S + 5), &7); // 101 and 102 passed with no input
        let s = h.read();
        assert_eq!(
            spans(&s),
            vec![
                (100, 101 * S, 1, true),
                (101, 102 * S, 0, true),
                (102, 103 * S, 0, true)
            ]
        );
        // A long silence: only `keep` windows are kept, all empty, the last just before now.
        w.advance(Timestamp(1_000_000 * S));
        let s = h.read();
        assert_eq!(
            spans(&s),
            vec![
                (999_997, 999_998 * S, 0, true),
                (999_998, 999_999 * S, 0, true),
                (999_999, 1_000_000 * S, 0, true)
            ]
        );
        assert_eq!(w.current().n, 0);
    }

    #[test]
    fn end_of_input_closes_the_open_window() {
        let mut w = Windowed::new(10 * S, 4, Sum::default());
        let h = w.handle();
        w.add(Timestamp(20 * S), &1);
        w.add(Timestamp(23 * S), &2);
        assert!(h.last_complete().is_none());
        w.finish(Timestamp(24 * S));
        let s = h.read();
        assert!(s.finished);
        assert_eq!(spans(&s), vec![(20, 24 * S, 2, false)]);
        assert_eq!(s.closed.back().map(|w| w.agg.total), Some(3));
        // Incomplete windows are not "the last complete one".
        assert!(h.last_complete().is_none());
    }

    #[test]
    fn nothing_seen_finishes_empty() {
        let mut w = Windowed::new(S, 4, Sum::default());
        let h = w.handle();
        w.finish(Timestamp(5 * S));
        let s = h.read();
        assert!(s.finished && s.closed.is_empty() && s.partial.is_none());
    }

    #[test]
    fn late_inputs_count_in_the_open_window() {
        let mut w = Windowed::new(S, 4, Sum::default());
        let h = w.handle();
        w.add(Timestamp(10 * S), &1);
        w.add(Timestamp(11 * S), &1);
        w.add(Timestamp(11 * S - 10), &1); // slightly out of order
        assert_eq!(w.current().n, 2);
        assert_eq!(spans(&h.read()), vec![(10, 11 * S, 1, true)]);
    }

    #[test]
    fn partial_copies_are_published_on_the_capture_clock() {
        let mut w = Windowed::new(10 * S, 4, Sum::default()).publish_partial_every(S);
        let h = w.handle();
        w.add(Timestamp(10 * S), &1);
        assert_eq!(
            h.partial().map(|p| p.agg.n),
            Some(0),
            "published before the add"
        );
        w.add(Timestamp(10 * S + 1), &1); // less than a second later: not republished
        assert_eq!(h.partial().map(|p| p.agg.n), Some(0));
        w.add(Timestamp(11 * S + 1), &1);
        let p = h.partial().expect("partial");
        assert_eq!((p.agg.n, p.complete, p.start.0), (2, false, 10 * S));
        w.add(Timestamp(20 * S), &1); // closes: the partial copy is gone until republished
        assert_eq!(h.last_complete().map(|w| w.agg.n), Some(3));
    }

    #[test]
    fn merged_adds_up_the_last_windows() {
        let mut w = Windowed::new(S, 10, Sum::default());
        let h = w.handle();
        for t in 0..5 {
            w.add(Timestamp(t * S), &(t as u64));
        }
        w.advance(Timestamp(5 * S));
        let m = h.read().merged(3).expect("windows");
        assert_eq!(
            (m.start.0, m.end.0, m.agg.n, m.agg.total),
            (2 * S, 5 * S, 3, 9)
        );
        let all = h.read().merged(100).expect("windows");
        assert_eq!((all.agg.n, all.agg.total), (5, 10));
    }

    #[test]
    fn snapshots_are_read_while_capture_continues() {
        let mut w = Windowed::new(S, 1000, Sum::default()).publish_partial_every(S / 2);
        let h = w.handle();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (h, stop) = (h.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                let mut seen_closed = 0;
                loop {
                    let done = stop.load(std::sync::atomic::Ordering::SeqCst);
                    let s = h.read();
                    // Windows are published whole and in order, whatever the interleaving.
                    assert!(s.closed.len() >= seen_closed);
                    seen_closed = s.closed.len();
                    for pair in s.closed.iter().collect::<Vec<_>>().windows(2) {
                        assert_eq!(pair[0].end, pair[1].start);
                    }
                    for c in &s.closed {
                        assert_eq!(c.agg.n, 10, "a closed window has all its inputs");
                    }
                    reads += 1;
                    if done {
                        return (reads, s.closed.len());
                    }
                    std::thread::yield_now();
                }
            })
        };
        // 100 windows of 10 inputs each.
        for i in 0..1000 {
            w.add(Timestamp(i * (S / 10)), &1);
        }
        w.advance(Timestamp(100 * S));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let (reads, closed) = reader.join().expect("reader");
        assert!(reads >= 1);
        assert_eq!(closed, 100);
    }
}
