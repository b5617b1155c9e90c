//! Latency distributions: an HDR histogram (microseconds, 3 significant digits) per group.
//!
//! A histogram with 3 significant digits costs at least 16 KiB, and most groups of a table
//! keyed by path or client see a handful of calls. So a group keeps its first samples in a
//! small vector and moves them into a histogram when there are more: the quantiles of a small
//! group are exact, those of a large one are within HDR's precision (one part in 1024), and
//! both use HDR's definition (the value at rank `ceil(q·n)`).

use hdrhistogram::Histogram;

/// Samples kept exactly before switching to a histogram.
const SMALL: usize = 64;

/// Largest value recorded in a histogram (1 hour in µs); the exact maximum is kept apart.
const HIGHEST_US: u64 = 3_600_000_000;

/// Significant digits of the histograms.
pub const SIGFIG: u8 = 3;

#[derive(Debug, Clone)]
enum Store {
    Small(Vec<u64>),
    Hdr(Box<Histogram<u64>>),
}

/// A latency distribution with exact count, sum, min and max.
#[derive(Debug, Clone)]
pub struct LatencyStats {
    store: Store,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            store: Store::Small(Vec::new()),
            count: 0,
            sum_ns: 0,
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }
}

/// Nanoseconds rounded to the nearest microsecond.
pub fn ns_to_us(ns: u64) -> u64 {
    ns / 1000 + u64::from(ns % 1000 >= 500)
}

/// Records into an auto-resizing histogram (values are at most [`HIGHEST_US`], so resizing
/// cannot fail on 32- or 64-bit targets; clamp if it ever did).
fn put(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

fn new_hist() -> Histogram<u64> {
    // `new` only fails for sigfig > 5.
    let mut h = Histogram::new(SIGFIG).unwrap_or_else(|_| unreachable!("3 significant digits"));
    h.auto(true);
    h
}

impl LatencyStats {
    /// An empty distribution (allocates nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one latency (negative values, which only a broken clock gives, count as 0).
    pub fn record_ns(&mut self, ns: i64) {
        let ns = u64::try_from(ns).unwrap_or(0);
        self.count += 1;
        self.sum_ns += u128::from(ns);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        let us = ns_to_us(ns).min(HIGHEST_US);
        match &mut self.store {
            Store::Small(v) if v.len() < SMALL => v.push(us),
            Store::Small(v) => {
                let mut h = new_hist();
                for &x in v.iter() {
                    put(&mut h, x);
                }
                put(&mut h, us);
                self.store = Store::Hdr(Box::new(h));
            }
            Store::Hdr(h) => put(h, us),
        }
    }

    /// Adds another distribution's samples.
    pub fn merge(&mut self, other: &LatencyStats) {
        if other.count == 0 {
            return;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        let small_fits = |a: &Vec<u64>, b: &Vec<u64>| a.len() + b.len() <= SMALL;
        match (&mut self.store, &other.store) {
            (Store::Small(a), Store::Small(b)) if small_fits(a, b) => a.extend_from_slice(b),
            (mine, theirs) => {
                let mut h = match std::mem::replace(mine, Store::Small(Vec::new())) {
                    Store::Hdr(h) => h,
                    Store::Small(v) => {
                        let mut h = new_hist();
                        for x in v {
                            put(&mut h, x);
                        }
                        Box::new(h)
                    }
                };
                match theirs {
                    Store::Small(v) => {
                        for &x in v {
                            put(&mut h, x);
                        }
                    }
                    Store::Hdr(o) => {
                        // Auto-resizing histograms of the same precision always add.
                        let _ = h.add(&**o);
                    }
                }
                *mine = Store::Hdr(h);
            }
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the samples in nanoseconds.
    pub fn sum_ns(&self) -> u128 {
        self.sum_ns
    }

    /// Exact mean in microseconds (`None` when empty).
    pub fn mean_us(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_ns as f64 / self.count as f64 / 1e3)
    }

    /// Exact smallest sample, in nanoseconds.
    pub fn min_ns(&self) -> Option<u64> {
        (self.count > 0).then_some(self.min_ns)
    }

    /// Exact largest sample, in nanoseconds.
    pub fn max_ns(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max_ns)
    }

    /// The value at quantile `q` (0..=1) in microseconds: the sample at rank `ceil(q·n)`
    /// (at least 1), as HDR defines it; within 1/1024 of the exact value for large groups
    /// and never above the exact maximum.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let max_us = ns_to_us(self.max_ns);
        let v = match &self.store {
            Store::Small(v) => {
                let mut sorted = v.clone();
                sorted.sort_unstable();
                let n = sorted.len();
                let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
                sorted.get(rank - 1).copied().unwrap_or(max_us)
            }
            Store::Hdr(h) => h.value_at_quantile(q.clamp(0.0, 1.0)),
        };
        Some(v.min(max_us))
    }

    /// Several quantiles at once (same definition as [`quantile_us`](Self::quantile_us)).
    pub fn quantiles_us<const N: usize>(&self, qs: [f64; N]) -> [Option<u64>; N] {
        if let Store::Small(v) = &self.store {
            if self.count == 0 {
                return [None; N];
            }
            let max_us = ns_to_us(self.max_ns);
            let mut sorted = v.clone();
            sorted.sort_unstable();
            let n = sorted.len();
            return qs.map(|q| {
                let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
                Some(sorted.get(rank - 1).copied().unwrap_or(max_us).min(max_us))
            });
        }
        qs.map(|q| self.quantile_us(q))
    }

    /// The non-empty buckets of the distribution as `(highest value in µs, count)` pairs, in
    /// increasing order (exact values for small groups).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        match &self.store {
            Store::Small(v) => {
                let mut sorted = v.clone();
                sorted.sort_unstable();
                let mut out: Vec<(u64, u64)> = Vec::new();
                for x in sorted {
                    match out.last_mut() {
                        Some((v, n)) if *v == x => *n += 1,
                        _ => out.push((x, 1)),
                    }
                }
                out
            }
            Store::Hdr(h) => h
                .iter_recorded()
                .map(|it| (it.value_iterated_to(), it.count_at_value()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HDR's definition on an exact, sorted list.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        let n = sorted.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        sorted[rank - 1]
    }

    #[test]
    fn small_groups_are_exact() {
        let mut s = LatencyStats::new();
        assert_eq!(s.quantile_us(0.5), None);
        assert_eq!(s.mean_us(), None);
        for us in [518, 415, 550, 7240, 351] {
            s.record_ns(us * 1000);
        }
        assert_eq!(s.count(), 5);
        assert_eq!(s.quantile_us(0.5), Some(518));
        assert_eq!(s.quantile_us(0.95), Some(7240));
        assert_eq!(s.quantile_us(0.0), Some(351));
        assert_eq!(s.max_ns(), Some(7_240_000));
        assert_eq!(
            s.mean_us(),
            Some((518 + 415 + 550 + 7240 + 351) as f64 / 5.0)
        );
        assert_eq!(
            s.quantiles_us([0.5, 0.99]),
            [s.quantile_us(0.5), s.quantile_us(0.99)]
        );
    }

    #[test]
    fn large_groups_match_exact_within_precision() {
        let mut s = LatencyStats::new();
        let mut all = Vec::new();
        // A spread-out, deterministic set: 1µs .. ~5s.
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let us = 1 + (x >> 33) % 5_000_000 / (1 + (x >> 20) % 1000);
            all.push(us);
            s.record_ns(us as i64 * 1000);
        }
        all.sort_unstable();
        for q in [0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let e = exact(&all, q);
            let g = s.quantile_us(q).unwrap();
            let tol = e as f64 / 1000.0 + 1.0;
            assert!(
                (g as f64 - e as f64).abs() <= tol,
                "q={q}: exact {e}, hdr {g}"
            );
        }
        assert_eq!(s.quantile_us(1.0), Some(*all.last().unwrap()));
    }

    #[test]
    fn merge_combines_both_representations() {
        let mut a = LatencyStats::new();
        let mut b = LatencyStats::new();
        let mut c = LatencyStats::new();
        for i in 1..=10 {
            a.record_ns(i * 1000);
        }
        for i in 11..=200 {
            b.record_ns(i * 1000);
        }
        for i in 1..=200 {
            c.record_ns(i * 1000);
        }
        let mut ab = a.clone();
        ab.merge(&b);
        assert_eq!(ab.count(), 200);
        assert_eq!(ab.sum_ns(), c.sum_ns());
        assert_eq!(ab.quantile_us(0.5), c.quantile_us(0.5));
        assert_eq!(ab.quantile_us(0.99), c.quantile_us(0.99));
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ba.quantile_us(0.5), Some(100));
        let mut aa = a.clone();
        aa.merge(&a);
        assert_eq!(aa.count(), 20);
        assert_eq!(aa.quantile_us(0.5), Some(5));
    }

    #[test]
    fn negative_and_huge_values_are_clamped() {
        let mut s = LatencyStats::new();
        s.record_ns(-5);
        assert_eq!(s.quantile_us(1.0), Some(0));
        for _ in 0..100 {
            s.record_ns(i64::MAX);
        }
        assert_eq!(s.max_ns(), Some(i64::MAX as u64));
        assert!(s.quantile_us(0.99).unwrap() >= HIGHEST_US);
    }

    #[test]
    fn rounding_to_microseconds() {
        assert_eq!(ns_to_us(1499), 1);
        assert_eq!(ns_to_us(1500), 2);
        assert_eq!(ns_to_us(0), 0);
    }
}
