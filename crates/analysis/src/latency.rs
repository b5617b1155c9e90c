//! Latency distributions: an HDR histogram (microseconds, 3 significant digits) per group.
//!
//! A histogram with 3 significant digits costs 16 KiB to 64 KiB (2,048 counters of one
//! microsecond, then 1,024 per power of two), and most groups of a table keyed by path or
//! client — or classes of a digest — see a handful or a few hundred calls. So a group keeps its
//! samples in a vector (4 bytes each) and moves them into a histogram only when the histogram
//! would be the smaller of the two.
//!
//! Quantiles use HDR's definition (the sample at rank `ceil(q·n)`, at least 1). For groups of
//! up to 64 samples they are exact; for larger ones they are what the histogram reports — the
//! highest value equivalent to the sample at the rank (the lowest for `q = 0`), within one part
//! in 1024 of the exact value — whichever store holds the samples: the vector answers with the
//! histogram's bucket bounds (tests check both stores against the crate).

use hdrhistogram::Histogram;

/// Samples whose quantiles are exact; beyond, quantiles are HDR's.
const SMALL: usize = 64;

/// Largest value recorded (1 hour in µs); the exact maximum is kept apart. Fits in a `u32`.
const HIGHEST_US: u64 = 3_600_000_000;

/// Significant digits of the histograms.
pub const SIGFIG: u8 = 3;

/// HDR's layout for [`SIGFIG`] 3 and a lowest discernible value of 1: the first bucket counts
/// 0..2048 one by one, each next bucket covers twice the range with half as many counters.
const SUB_BUCKET_BITS: u32 = 11;

/// The HDR bucket of a value: 0 below 2048, then one per power of two.
fn hdr_bucket(us: u64) -> u32 {
    (64 - SUB_BUCKET_BITS) - (us | ((1 << SUB_BUCKET_BITS) - 1)).leading_zeros()
}

/// The smallest value a histogram counts together with `us`.
fn lowest_equivalent(us: u64) -> u64 {
    let b = hdr_bucket(us);
    (us >> b) << b
}

/// The largest value a histogram counts together with `us` (what its quantiles report).
fn highest_equivalent(us: u64) -> u64 {
    lowest_equivalent(us) + (1 << hdr_bucket(us)) - 1
}

/// Bytes of the counters of an auto-resized histogram whose largest value is `max_us`.
fn hdr_bytes(max_us: u64) -> usize {
    let buckets = hdr_bucket(max_us) as usize + 1;
    (buckets + 1) * (1 << (SUB_BUCKET_BITS - 1)) * std::mem::size_of::<u64>()
}

#[derive(Debug, Clone)]
enum Store {
    /// Every sample (µs, at most [`HIGHEST_US`]), in arrival order.
    Samples(Vec<u32>),
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
            store: Store::Samples(Vec::new()),
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

fn hist_of(samples: &[u32]) -> Box<Histogram<u64>> {
    let mut h = new_hist();
    for &x in samples {
        put(&mut h, u64::from(x));
    }
    Box::new(h)
}

/// Bytes of a sample in a vector.
const SAMPLE_BYTES: usize = std::mem::size_of::<u32>();

/// Microseconds as stored in a sample vector.
fn sample(us: u64) -> u32 {
    u32::try_from(us.min(HIGHEST_US)).unwrap_or(u32::MAX)
}

/// The rank HDR reads quantile `q` at (1-based, within `1..=n`).
fn rank(q: f64, n: usize) -> usize {
    ((q * n as f64).ceil() as usize).clamp(1, n)
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
        let max_us = self.max_us();
        match &mut self.store {
            Store::Samples(v) => {
                if v.len() == v.capacity() {
                    // Grow by half (not double): the slack is what the vector wastes.
                    let more = (v.len() / 2).max(4);
                    if v.len() >= SMALL && (v.len() + more) * SAMPLE_BYTES > hdr_bytes(max_us) {
                        let mut h = hist_of(v);
                        put(&mut h, us);
                        self.store = Store::Hdr(h);
                        return;
                    }
                    v.reserve_exact(more);
                }
                v.push(sample(us));
            }
            Store::Hdr(h) => put(h, us),
        }
    }

    /// The largest sample in µs as stored.
    fn max_us(&self) -> u64 {
        ns_to_us(self.max_ns).min(HIGHEST_US)
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
        let max_us = self.max_us();
        match (&mut self.store, &other.store) {
            (Store::Samples(a), Store::Samples(b))
                if (a.len() + b.len()) * SAMPLE_BYTES <= hdr_bytes(max_us) =>
            {
                a.extend_from_slice(b)
            }
            (mine, theirs) => {
                let mut h = match std::mem::replace(mine, Store::Samples(Vec::new())) {
                    Store::Hdr(h) => h,
                    Store::Samples(v) => hist_of(&v),
                };
                match theirs {
                    Store::Samples(v) => {
                        for &x in v {
                            put(&mut h, u64::from(x));
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

    /// What quantile `q` reports when the sample at its rank is `us`: the sample itself for
    /// small groups, else the bound of its histogram bucket (the lowest for `q = 0`, as HDR).
    fn report(&self, q: f64, us: u64) -> u64 {
        if self.count <= SMALL as u64 {
            us
        } else if q == 0.0 {
            lowest_equivalent(us)
        } else {
            highest_equivalent(us)
        }
    }

    /// The value at quantile `q` (0..=1) in microseconds: the sample at rank `ceil(q·n)`
    /// (at least 1), as HDR defines it; exact for groups of up to 64 samples, within 1/1024
    /// of the exact value for larger ones, and never above the exact maximum.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let max_us = ns_to_us(self.max_ns);
        let v = match &self.store {
            Store::Samples(v) => {
                let mut s = v.clone();
                let r = rank(q, s.len());
                let (_, &mut x, _) = s.select_nth_unstable(r - 1);
                self.report(q, u64::from(x))
            }
            Store::Hdr(h) => h.value_at_quantile(q),
        };
        Some(v.min(max_us))
    }

    /// Several quantiles at once (same definition as [`quantile_us`](Self::quantile_us)).
    pub fn quantiles_us<const N: usize>(&self, qs: [f64; N]) -> [Option<u64>; N] {
        if let Store::Samples(v) = &self.store {
            if self.count == 0 {
                return [None; N];
            }
            let max_us = ns_to_us(self.max_ns);
            let mut sorted = v.clone();
            sorted.sort_unstable();
            return qs.map(|q| {
                let q = q.clamp(0.0, 1.0);
                let x = sorted
                    .get(rank(q, sorted.len()) - 1)
                    .map_or(max_us, |&x| self.report(q, u64::from(x)));
                Some(x.min(max_us))
            });
        }
        qs.map(|q| self.quantile_us(q))
    }

    /// The non-empty buckets of the distribution as `(highest value in µs, count)` pairs, in
    /// increasing order (exact values for groups of up to 64 samples).
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        match &self.store {
            Store::Samples(v) => {
                let mut sorted = v.clone();
                sorted.sort_unstable();
                let mut out: Vec<(u64, u64)> = Vec::new();
                for x in sorted {
                    let x = self.report(1.0, u64::from(x));
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

    /// The histogram of the samples (what every group past 64 samples had before samples
    /// were kept in vectors).
    fn reference(samples: &[u64]) -> Histogram<u64> {
        let mut h = new_hist();
        for &x in samples {
            put(&mut h, x);
        }
        h
    }

    #[test]
    fn bucket_bounds_are_hdrhistogram_s() {
        let h = new_hist();
        for us in (0..70_000).chain([1 << 20, (1 << 20) + 12_345, HIGHEST_US]) {
            assert_eq!(lowest_equivalent(us), h.lowest_equivalent(us), "{us}");
            assert_eq!(highest_equivalent(us), h.highest_equivalent(us), "{us}");
        }
        let mut h = new_hist();
        put(&mut h, HIGHEST_US);
        assert_eq!(hdr_bytes(HIGHEST_US), h.distinct_values() * 8);
    }

    #[test]
    fn sample_vectors_answer_like_histograms() {
        // Spread-out values (0 .. ~40 s), several group sizes around the switches.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in [65, 100, 1000, 4095, 4096, 4097, 9000, 20_000] {
            let mut s = LatencyStats::new();
            let mut all = Vec::new();
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let us = (x >> 40) >> (x % 24);
                all.push(us);
                s.record_ns(us as i64 * 1000);
            }
            let h = reference(&all);
            let max = *all.iter().max().unwrap();
            for q in [0.0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
                let want = h.value_at_quantile(q).min(max);
                assert_eq!(s.quantile_us(q), Some(want), "n={n} q={q}");
                // Whichever store holds them.
                let mut v = LatencyStats::new();
                for &us in &all {
                    v.record_ns(us as i64 * 1000);
                }
                if let Store::Hdr(_) = v.store {
                    v.store = Store::Samples(all.iter().map(|&u| sample(u)).collect());
                }
                assert_eq!(v.quantile_us(q), Some(want), "n={n} q={q} (vector)");
            }
            let [a, b] = s.quantiles_us([0.5, 0.99]);
            assert_eq!((a, b), (s.quantile_us(0.5), s.quantile_us(0.99)));
            let want: Vec<(u64, u64)> = h
                .iter_recorded()
                .map(|it| (it.value_iterated_to(), it.count_at_value()))
                .collect();
            let vector = LatencyStats {
                store: Store::Samples(all.iter().map(|&u| sample(u)).collect()),
                ..s.clone()
            };
            assert_eq!(vector.buckets(), want, "n={n}");
            assert_eq!(s.buckets(), want, "n={n}");
        }
    }

    #[test]
    fn merged_counters_answer_like_one_histogram() {
        let (mut a, mut b, mut c) = (
            LatencyStats::new(),
            LatencyStats::new(),
            LatencyStats::new(),
        );
        let mut all = Vec::new();
        for i in 0..6000u64 {
            let (x, y, z) = (i % 1900, 3000 + i * 37, i * i % 50_000_000);
            a.record_ns(x as i64 * 1000);
            b.record_ns(y as i64 * 1000);
            c.record_ns(z as i64 * 1000);
            all.extend([x, y, z]);
        }
        // Short counters into long ones, long into short, vectors into counters.
        let mut small = LatencyStats::new();
        for &x in &all[..30] {
            small.record_ns(x as i64 * 1000);
        }
        let mut m = a.clone();
        m.merge(&c);
        m.merge(&b);
        let mut n = small.clone();
        n.merge(&m);
        let mut want = all.clone();
        want.extend_from_slice(&all[..30]);
        let h = reference(&want);
        let max = *want.iter().max().unwrap();
        for q in [0.0, 0.1, 0.5, 0.95, 0.999, 1.0] {
            let v = h.value_at_quantile(q).min(max);
            assert_eq!(n.quantile_us(q), Some(v), "q={q}");
        }
        let buckets: Vec<(u64, u64)> = h
            .iter_recorded()
            .map(|it| (it.value_iterated_to(), it.count_at_value()))
            .collect();
        assert_eq!(n.buckets(), buckets);
        assert_eq!(n.count(), want.len() as u64);
    }

    #[test]
    fn samples_move_to_a_histogram_when_it_is_smaller() {
        let mut s = LatencyStats::new();
        for i in 0..3000 {
            s.record_ns(i % 1500 * 1000);
        }
        assert!(matches!(s.store, Store::Samples(_)));
        for i in 0..1300 {
            s.record_ns(i * 1000);
        }
        // 16 KiB of counters (values below 2048) beat 4 bytes a sample.
        assert!(matches!(s.store, Store::Hdr(_)));
        let mut t = LatencyStats::new();
        for i in 0..50 {
            t.record_ns(i * 1000);
        }
        let mut u = t.clone();
        u.merge(&t);
        assert!(matches!(u.store, Store::Samples(_)));
        u.merge(&s);
        assert!(matches!(u.store, Store::Hdr(_)));
        assert_eq!(u.count(), 4400);
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
