//! Length-prefixed framing (client port 2181, election port 3888).
//!
//! A [`Framer`] turns one direction of a reassembled TCP stream into frames: a 4-byte big-endian
//! length followed by that many bytes. Frames that lie wholly inside one pushed slice are handed
//! out as borrowed slices (zero copy); only a frame that straddles pushes is copied, into a buffer
//! that is reused and grows with the bytes that actually arrive, never with the announced length,
//! so a bogus 2 GB prefix costs nothing.
//!
//! After a gap (or when a capture starts mid-stream) the framer is *unsynchronised*: it scans for
//! the next offset where a plausible frame starts, as judged by the caller's validator (which
//! knows the protocol), and counts the bytes it skipped.

/// What the framer tells its caller.
#[derive(Debug)]
pub enum FrameEvent<'a> {
    /// A complete frame.
    Frame {
        /// The bytes after the length prefix.
        body: &'a [u8],
    },
    /// A length prefix that is impossible (negative, below the minimum or above the maximum):
    /// the stream is lost until the next plausible frame.
    BadLength {
        /// The prefix as read.
        len: i32,
    },
    /// Bytes skipped while searching for the next frame start.
    Skipped {
        /// How many.
        bytes: u64,
    },
}

/// How plausible a candidate frame start is.
pub trait Validator {
    /// `len` is the candidate length prefix, `head` the first bytes of its body: at most
    /// [`Framer::HEAD`] bytes, at least 16 (fewer only if the frame is shorter).
    fn plausible(&mut self, len: usize, head: &[u8]) -> bool;
}

impl<F: FnMut(usize, &[u8]) -> bool> Validator for F {
    fn plausible(&mut self, len: usize, head: &[u8]) -> bool {
        self(len, head)
    }
}

/// Splits one direction of a stream into length-prefixed frames.
#[derive(Debug)]
pub struct Framer {
    /// Bytes of an incomplete frame (prefix included) or, when unsynchronised, unscanned bytes.
    buf: Vec<u8>,
    synced: bool,
    min_len: usize,
    max_len: usize,
}

/// How many unjudged bytes the resynchronising scan may hold before giving up on a candidate.
const SCAN_LIMIT: usize = 256 * 1024;
/// Bytes of a candidate body needed to judge it (a reply header is 16 bytes).
const JUDGE: usize = 16;
/// Largest frame accepted as a resynchronisation point: ZooKeeper's default `jute.maxbuffer` is
/// 1 MiB, so a bigger length found by scanning is far more likely noise than a frame.
const RESYNC_MAX_LEN: usize = 4 << 20;

impl Framer {
    /// Bytes of a frame body the validator sees when resynchronising.
    pub const HEAD: usize = 64;

    /// A framer accepting bodies of `min_len..=max_len` bytes. `synced` says whether the
    /// stream is known to start at a frame boundary (the connection's SYN was seen).
    pub fn new(min_len: usize, max_len: usize, synced: bool) -> Self {
        Framer {
            buf: Vec::new(),
            synced,
            min_len,
            max_len,
        }
    }

    /// Whether the framer currently knows where frames start.
    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// Bytes held back, waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes are missing from the stream: drop any partial frame and resynchronise. Returns
    /// how many buffered bytes were discarded.
    pub fn gap(&mut self) -> usize {
        let dropped = self.buf.len();
        self.buf.clear();
        self.synced = false;
        dropped
    }

    /// Feeds the next bytes of the stream; `out` receives every event in order.
    pub fn push<V: Validator>(
        &mut self,
        mut data: &[u8],
        v: &mut V,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        while self.synced && !data.is_empty() {
            if self.buf.is_empty() {
                let consumed = self.frames_in_place(data, out);
                data = &data[consumed..];
                if self.synced {
                    // Keep the incomplete tail: the only copy on the synchronised path.
                    self.buf.extend_from_slice(data);
                    return;
                }
            } else {
                let used = self.fill_buffered(data, out);
                data = &data[used..];
            }
        }
        if self.synced {
            return;
        }
        self.buf.extend_from_slice(data);
        self.drain_unsynced(v, out);
    }

    /// Resynchronises on the buffered bytes and emits the frames found there, iteratively.
    fn drain_unsynced<V: Validator>(&mut self, v: &mut V, out: &mut dyn FnMut(FrameEvent<'_>)) {
        loop {
            self.resync(v, out);
            if !self.synced {
                return;
            }
            let buf = std::mem::take(&mut self.buf);
            let consumed = self.frames_in_place(&buf, out);
            self.buf = buf;
            self.buf.drain(..consumed);
            if self.synced {
                return;
            }
        }
    }

    /// Emits the complete frames at the start of `data`; returns the bytes consumed.
    fn frames_in_place(&mut self, data: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) -> usize {
        let mut pos = 0;
        while let Some(prefix) = data.get(pos..pos + 4) {
            let len = i32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            if !self.len_ok(len) {
                self.synced = false;
                out(FrameEvent::BadLength { len });
                return pos;
            }
            let end = pos + 4 + len as usize;
            match data.get(pos + 4..end) {
                Some(body) => {
                    out(FrameEvent::Frame { body });
                    pos = end;
                }
                None => break,
            }
        }
        pos
    }

    /// Adds bytes to the buffered partial frame; emits it when complete. Returns bytes used.
    fn fill_buffered(&mut self, data: &[u8], out: &mut dyn FnMut(FrameEvent<'_>)) -> usize {
        let mut used = 0;
        if self.buf.len() < 4 {
            let take = (4 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            used = take;
            if self.buf.len() < 4 {
                return used;
            }
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        if !self.len_ok(len) {
            // The prefix itself is bad: the rest of `data` goes to the resync scan.
            out(FrameEvent::BadLength { len });
            self.synced = false;
            // Keep the bytes after the prefix's first byte so the scan can retry them.
            self.buf.drain(..1);
            out(FrameEvent::Skipped { bytes: 1 });
            return used;
        }
        let total = 4 + len as usize;
        let take = (total - self.buf.len()).min(data.len() - used);
        self.buf.extend_from_slice(&data[used..used + take]);
        used += take;
        if self.buf.len() == total {
            out(FrameEvent::Frame {
                body: &self.buf[4..],
            });
            self.buf.clear();
        }
        used
    }

    fn len_ok(&self, len: i32) -> bool {
        len >= 0 && (len as usize) >= self.min_len && (len as usize) <= self.max_len
    }

    /// Scans `buf` for a plausible frame start. On success `buf` starts there and `synced` is
    /// set; otherwise the scanned bytes that can no longer start a frame are dropped.
    fn resync<V: Validator>(&mut self, v: &mut V, out: &mut dyn FnMut(FrameEvent<'_>)) {
        let mut start = 0;
        let mut decided = None;
        while start + 4 <= self.buf.len() {
            let b = &self.buf[start..];
            let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            if self.len_ok(len) && (len as usize) <= RESYNC_MAX_LEN {
                let len = len as usize;
                let avail = b.len() - 4;
                if avail < len.min(JUDGE) {
                    // Cannot judge yet: wait for more bytes, unless far too much is pending.
                    if self.buf.len() - start <= SCAN_LIMIT {
                        break;
                    }
                } else if v.plausible(len, &b[4..4 + len.min(Self::HEAD).min(avail)])
                    && self.next_ok(b, len, v)
                {
                    decided = Some(start);
                    break;
                }
            }
            start += 1;
        }
        let skip = decided.unwrap_or(start.min(self.buf.len()));
        if skip > 0 {
            self.buf.drain(..skip);
            out(FrameEvent::Skipped { bytes: skip as u64 });
        }
        if decided.is_some() {
            self.synced = true;
        }
    }

    /// When the bytes after a candidate frame are present, they must look like a frame too.
    fn next_ok<V: Validator>(&self, b: &[u8], len: usize, v: &mut V) -> bool {
        let next = 4 + len;
        let Some(p) = b.get(next..next + 4) else {
            return true;
        };
        let nlen = i32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        if !self.len_ok(nlen) {
            return false;
        }
        let nlen = nlen as usize;
        let avail = b.len().saturating_sub(next + 4);
        if avail < nlen.min(JUDGE) {
            return true;
        }
        match b.get(next + 4..next + 4 + nlen.min(Self::HEAD).min(avail)) {
            Some(head) => v.plausible(nlen, head),
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// Collects frames and counters.
    #[derive(Default, Debug, PartialEq)]
    struct Got {
        frames: Vec<Vec<u8>>,
        bad: usize,
        skipped: u64,
    }

    fn run(f: &mut Framer, chunks: &[&[u8]], v: &mut impl Validator) -> Got {
        let mut got = Got::default();
        for c in chunks {
            f.push(c, v, &mut |e| match e {
                FrameEvent::Frame { body } => got.frames.push(body.to_vec()),
                FrameEvent::BadLength { .. } => got.bad += 1,
                FrameEvent::Skipped { bytes } => got.skipped += bytes,
            });
        }
        got
    }

    /// Bodies starting with 0xAB are "plausible".
    fn marker(_len: usize, head: &[u8]) -> bool {
        head.first() == Some(&0xAB)
    }

    #[test]
    fn many_frames_in_one_push() {
        let mut data = frame(&[0xAB, 1]);
        data.extend(frame(&[0xAB, 2, 3]));
        data.extend(frame(&[0xAB]));
        let mut f = Framer::new(1, 100, true);
        let got = run(&mut f, &[&data], &mut marker);
        assert_eq!(
            got.frames,
            vec![vec![0xAB, 1], vec![0xAB, 2, 3], vec![0xAB]]
        );
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let mut data = frame(&[0xAB, 1, 2, 3, 4]);
        data.extend(frame(&[0xAB, 9]));
        data.extend(frame(&[0xAB; 17]));
        for i in 0..=data.len() {
            for j in i..=data.len() {
                let mut f = Framer::new(1, 100, true);
                let got = run(&mut f, &[&data[..i], &data[i..j], &data[j..]], &mut marker);
                assert_eq!(got.frames.len(), 3, "split at {i},{j}");
                assert_eq!(got.frames[2], vec![0xAB; 17]);
                assert_eq!(got.bad, 0);
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut data = frame(&[0xAB, 1, 2]);
        data.extend(frame(&[0xAB, 3]));
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let mut f = Framer::new(1, 100, true);
        let got = run(&mut f, &chunks, &mut marker);
        assert_eq!(got.frames, vec![vec![0xAB, 1, 2], vec![0xAB, 3]]);
    }

    #[test]
    fn huge_prefix_is_bad_and_allocates_nothing() {
        let mut data = 0x7fff_fff0_i32.to_be_bytes().to_vec();
        data.extend(frame(&[0xAB, 5]));
        let mut f = Framer::new(1, 1 << 20, true);
        let got = run(&mut f, &[&data], &mut marker);
        assert_eq!(got.bad, 1);
        assert_eq!(got.frames, vec![vec![0xAB, 5]]);
        assert_eq!(got.skipped, 4);
        assert!(f.buf.capacity() < 1024);
    }

    #[test]
    fn huge_prefix_split_across_pushes() {
        let mut data = 0x7fff_fff0_i32.to_be_bytes().to_vec();
        data.extend(frame(&[0xAB, 5]));
        let mut f = Framer::new(1, 1 << 20, true);
        let got = run(&mut f, &[&data[..2], &data[2..]], &mut marker);
        assert_eq!(got.bad, 1);
        assert_eq!(got.frames, vec![vec![0xAB, 5]]);
    }

    #[test]
    fn gap_then_resync_on_next_plausible_frame() {
        let tail = frame(&[0xAB, 7, 7]);
        let mut f = Framer::new(1, 100, true);
        // Half a frame, then a gap, then junk plus a good frame.
        let first = frame(&[0xAB, 1, 2, 3, 4, 5]);
        let got = run(&mut f, &[&first[..5]], &mut marker);
        assert!(got.frames.is_empty());
        assert_eq!(f.gap(), 5);
        let mut after = vec![3, 4, 5];
        after.extend(&tail);
        after.extend(frame(&[0xAB, 8]));
        let got = run(&mut f, &[&after], &mut marker);
        assert_eq!(got.frames, vec![vec![0xAB, 7, 7], vec![0xAB, 8]]);
        assert_eq!(got.skipped, 3);
        assert!(f.is_synced());
    }

    #[test]
    fn unsynced_start_at_boundary_skips_nothing() {
        let mut data = frame(&[0xAB, 1]);
        data.extend(frame(&[0xAB, 2]));
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data], &mut marker);
        assert_eq!(got.frames.len(), 2);
        assert_eq!(got.skipped, 0);
    }

    #[test]
    fn unsynced_waits_for_enough_bytes_to_judge() {
        let data = frame(&[0xAB, 1, 2]);
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data[..3], &data[3..]], &mut marker);
        assert_eq!(got.frames, vec![vec![0xAB, 1, 2]]);
    }

    #[test]
    fn resync_rejects_candidate_followed_by_garbage() {
        // A fake candidate (prefix 2, body AB 00) followed by an impossible length.
        let mut data = vec![0, 0, 0, 2, 0xAB, 0, 0x7f, 0xff, 0xff, 0xff];
        data.extend(frame(&[0xAB, 4]));
        let mut f = Framer::new(1, 100, false);
        let got = run(&mut f, &[&data], &mut marker);
        assert_eq!(got.frames, vec![vec![0xAB, 4]]);
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let mut seed = 0x1234_5678_u64;
        for _ in 0..2000 {
            let mut f = Framer::new(8, 4096, seed % 2 == 0);
            let n = (seed % 300) as usize;
            let mut data = Vec::with_capacity(n);
            for _ in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                data.push((seed >> 56) as u8);
            }
            let cut = (seed % (n as u64 + 1)) as usize;
            let _ = run(
                &mut f,
                &[&data[..cut], &data[cut..]],
                &mut |_l: usize, h: &[u8]| h.first().is_some_and(|b| b % 3 == 0),
            );
            if seed % 5 == 0 {
                f.gap();
            }
        }
    }
}
