//! What calls are grouped by, and how paths are normalised before grouping.

use std::fmt::{self, Write as _};
use std::str::FromStr;

/// One grouping dimension of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// The znode path (after [`PathNorm`]); empty for calls without a path.
    Path,
    /// zktraffic-style type name: `GetDataRequest`, `ConnectRequest`, `NodeDataChanged` (for
    /// watch events), `FourLetterWord`.
    Type,
    /// Canonical operation name: `getData`, `connect`, `notification` (watch events), the
    /// command for four-letter words (`ruok`), or the opcode number when unknown.
    Op,
    /// The client's `ip:port` (`[v6]:port`).
    Client,
    /// The client's address.
    ClientIp,
    /// The session id (`0x…`), empty until the handshake told it.
    Session,
    /// The auth identity of the connection: the user of a `digest` SetAuthRequest, the scheme
    /// for other schemes, `sasl` after SASL requests, `noauth` otherwise. Never a password.
    Auth,
    /// The server's `ip:port`.
    Server,
    /// The reply's error name (`OK`, `NONODE`, …), `(no reply)` when none was captured.
    Error,
}

impl GroupKey {
    /// Every key, in the order the help lists them.
    pub const ALL: [GroupKey; 9] = [
        GroupKey::Path,
        GroupKey::Type,
        GroupKey::Op,
        GroupKey::Client,
        GroupKey::ClientIp,
        GroupKey::Session,
        GroupKey::Auth,
        GroupKey::Server,
        GroupKey::Error,
    ];

    /// The key's name: the column header and the JSON field.
    pub fn name(self) -> &'static str {
        match self {
            GroupKey::Path => "path",
            GroupKey::Type => "type",
            GroupKey::Op => "op",
            GroupKey::Client => "client",
            GroupKey::ClientIp => "client_ip",
            GroupKey::Session => "session",
            GroupKey::Auth => "auth",
            GroupKey::Server => "server",
            GroupKey::Error => "error",
        }
    }
}

impl fmt::Display for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown group or sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey(pub String);

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown key {:?} (use ", self.0)?;
        for (i, k) in GroupKey::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(k.name())?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownKey {}

impl FromStr for GroupKey {
    type Err = UnknownKey;

    fn from_str(s: &str) -> Result<Self, UnknownKey> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "path" => GroupKey::Path,
            "type" => GroupKey::Type,
            "op" | "opcode" => GroupKey::Op,
            "client" => GroupKey::Client,
            "client_ip" | "client-ip" | "ip" | "host" => GroupKey::ClientIp,
            "session" => GroupKey::Session,
            "auth" | "user" => GroupKey::Auth,
            "server" => GroupKey::Server,
            "error" | "err" => GroupKey::Error,
            _ => return Err(UnknownKey(s.to_string())),
        })
    }
}

/// Path normalisation applied before grouping by path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathNorm {
    /// Keep the first `depth` components (zktraffic's `--aggregation-depth`: `/a/b/c` at depth
    /// 2 is `/a/b`); 0 keeps the whole path.
    pub depth: usize,
    /// Replace the 10-digit counter ZooKeeper appends to sequential nodes with `N`
    /// (`lock-0000000012` → `lock-N`, `member_0000000490` → `member_N`).
    pub fold_sequential: bool,
}

/// Length of the counter ZooKeeper appends to sequential znodes (`%010d`).
const SEQ_DIGITS: usize = 10;

impl PathNorm {
    /// Appends the normalised form of `path` to `out` (invalid UTF-8 is replaced).
    ///
    /// Depth follows zktraffic's `'/'.join(path.split('/')[0:depth+1])`: the path is cut
    /// before its `depth+1`-th slash.
    pub fn write(&self, out: &mut String, path: &[u8]) {
        let kept = cut_depth(path, self.depth);
        if !self.fold_sequential {
            push_lossy(out, kept);
            return;
        }
        // Fast path: valid UTF-8 without a separator (practically every path).
        if !std::str::from_utf8(kept).is_ok_and(|s| fold_fast(out, s)) {
            fold_slow(out, kept);
        }
    }

    /// The normalised form of `path`.
    pub fn apply(&self, path: &[u8]) -> String {
        let mut s = String::with_capacity(path.len());
        self.write(&mut s, path);
        s
    }
}

/// The first `depth` components of `path` (0: all of it): zktraffic's
/// `'/'.join(path.split('/')[0:depth+1])`, the path cut before its `depth+1`-th slash.
pub(crate) fn cut_depth(path: &[u8], depth: usize) -> &[u8] {
    if depth == 0 {
        return path;
    }
    match path
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .nth(depth)
    {
        Some((i, _)) => path.get(..i).unwrap_or(path),
        None => path,
    }
}

/// Appends `path` with its sequential counters folded, component by component (any bytes).
fn fold_slow(out: &mut String, path: &[u8]) {
    for (i, comp) in path.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        match sequential_prefix(comp) {
            Some(prefix) => {
                push_lossy(out, prefix);
                out.push('N');
            }
            None => push_lossy(out, comp),
        }
    }
}

/// Bytes of a word with every byte set to `b`.
const fn splat(b: u8) -> u64 {
    u64::from_ne_bytes([b; 8])
}

/// A mask with the high bit set in (at least) the bytes of `w` equal to `b`. The lowest set
/// bit is always a true match; bits above a true match may be false, so callers check each
/// candidate. Zero exactly when no byte matches.
fn byte_matches(w: u64, b: u8) -> u64 {
    let x = w ^ splat(b);
    x.wrapping_sub(splat(1)) & !x & splat(0x80)
}

/// Appends `s` with its sequential counters folded to `N` (what the component-by-component
/// slow path does) and returns true; or, when `s` contains a separator, appends nothing and
/// returns false. Scans 8 bytes at a time for slashes and separators and looks closely only at
/// the ends of components: a component ends with a counter when its last ten bytes are
/// digits and the byte before them is not (see [`sequential_prefix`]).
fn fold_fast(out: &mut String, s: &str) -> bool {
    let b = s.as_bytes();
    let start = out.len();
    // Start of what is not copied yet.
    let mut from = 0;
    let mut end_of_component = |e: usize, from: &mut usize| {
        let Some(tail) = e.checked_sub(SEQ_DIGITS).and_then(|t| b.get(t..e)) else {
            return;
        };
        let t = e - SEQ_DIGITS;
        if tail.iter().all(u8::is_ascii_digit)
            && !t
                .checked_sub(1)
                .and_then(|p| b.get(p))
                .is_some_and(u8::is_ascii_digit)
        {
            out.push_str(s.get(*from..t).unwrap_or(""));
            out.push('N');
            *from = e;
        }
    };
    let mut words = b.chunks_exact(8);
    let mut at = 0;
    for w in words.by_ref() {
        let w = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        if byte_matches(w, SEP_BYTE) != 0 {
            out.truncate(start);
            return false;
        }
        let mut m = byte_matches(w, b'/');
        while m != 0 {
            let j = at + (m.trailing_zeros() / 8) as usize;
            m &= m - 1;
            if b.get(j) == Some(&b'/') {
                end_of_component(j, &mut from);
            }
        }
        at += 8;
    }
    for (j, &c) in words.remainder().iter().enumerate() {
        if c == SEP_BYTE {
            out.truncate(start);
            return false;
        }
        if c == b'/' {
            end_of_component(at + j, &mut from);
        }
    }
    end_of_component(b.len(), &mut from);
    out.push_str(s.get(from..).unwrap_or(""));
    true
}

/// The part of a path component before a sequential suffix (exactly 10 trailing digits not
/// preceded by another digit), or `None` when it has none.
fn sequential_prefix(comp: &[u8]) -> Option<&[u8]> {
    let split = comp.len().checked_sub(SEQ_DIGITS)?;
    let (prefix, digits) = comp.split_at(split);
    let ok =
        digits.iter().all(u8::is_ascii_digit) && !prefix.last().is_some_and(u8::is_ascii_digit);
    ok.then_some(prefix)
}

/// Appends bytes as UTF-8 (lossy), with the characters that separate keys internally
/// replaced.
pub(crate) fn push_lossy(out: &mut String, bytes: &[u8]) {
    // Fast path: valid UTF-8 without a separator (practically every znode path).
    if let Ok(s) = std::str::from_utf8(bytes) {
        if !s.as_bytes().contains(&SEP_BYTE) {
            out.push_str(s);
            return;
        }
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(if c == SEP {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            });
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

/// Appends a displayable value (sanitised like [`push_lossy`]).
pub(crate) fn push_display(out: &mut String, v: impl fmt::Display) {
    let start = out.len();
    let _ = write!(out, "{v}");
    if out[start..].contains(SEP) {
        let clean: String = out[start..]
            .chars()
            .map(|c| {
                if c == SEP {
                    char::REPLACEMENT_CHARACTER
                } else {
                    c
                }
            })
            .collect();
        out.truncate(start);
        out.push_str(&clean);
    }
}

/// Separates the values of a composite key internally (never in output).
pub(crate) const SEP: char = '\u{1f}';
/// [`SEP`] as a byte (it is ASCII).
const SEP_BYTE: u8 = 0x1f;
const _: () = assert!(SEP as u32 == SEP_BYTE as u32);

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(depth: usize, fold: bool, p: &str) -> String {
        PathNorm {
            depth,
            fold_sequential: fold,
        }
        .apply(p.as_bytes())
    }

    #[test]
    fn depth_is_zktraffic_parent_path() {
        // '/'.join(path.split('/')[0:d+1])
        assert_eq!(norm(0, false, "/a/b/c"), "/a/b/c");
        assert_eq!(norm(1, false, "/a/b/c"), "/a");
        assert_eq!(norm(2, false, "/a/b/c"), "/a/b");
        assert_eq!(norm(3, false, "/a/b/c"), "/a/b/c");
        assert_eq!(norm(9, false, "/a/b/c"), "/a/b/c");
        assert_eq!(norm(1, false, "/"), "/");
        assert_eq!(norm(1, false, "/a/"), "/a");
        assert_eq!(norm(2, false, "/a/"), "/a/");
        assert_eq!(norm(1, false, ""), "");
        assert_eq!(norm(2, false, "/load-testing/3"), "/load-testing/3");
        assert_eq!(norm(1, false, "/load-testing/3"), "/load-testing");
    }

    #[test]
    fn sequential_suffixes_fold() {
        assert_eq!(
            norm(0, true, "/locks/lock-0000000012"),
            "/locks/lock-N".to_string()
        );
        assert_eq!(
            norm(0, true, "/brokers/member_0000000490/x"),
            "/brokers/member_N/x"
        );
        assert_eq!(norm(0, true, "/q/0000000001"), "/q/N");
        // Not exactly ten trailing digits.
        assert_eq!(norm(0, true, "/q/x-000000001"), "/q/x-000000001");
        assert_eq!(norm(0, true, "/q/x-00000000012"), "/q/x-00000000012");
        assert_eq!(
            norm(0, true, "/host-10-242-116-185"),
            "/host-10-242-116-185"
        );
        // Depth first, then folding.
        assert_eq!(norm(2, true, "/a/n-0000000007/c"), "/a/n-N");
        assert_eq!(norm(0, true, "/"), "/");
    }

    #[test]
    fn folding_is_the_same_on_the_fast_and_the_slow_path() {
        // The slow path (invalid UTF-8 somewhere) folds the same components.
        for p in [
            "/locks/lock-0000000012",
            "/0000000001/a",
            "/a/x00000000012/y-0000000003",
            "/q/0000000001/",
            "0000000001",
            "/a/b",
            "//",
        ] {
            let fast = norm(0, true, p);
            let mut bytes = p.as_bytes().to_vec();
            bytes.extend_from_slice(b"/\xff");
            let slow = PathNorm {
                depth: 0,
                fold_sequential: true,
            }
            .apply(&bytes);
            assert_eq!(format!("{fast}/\u{fffd}"), slow, "{p}");
        }
        assert_eq!(
            norm(0, true, "/a/x00000000012/y-0000000003"),
            "/a/x00000000012/y-N"
        );
        assert_eq!(norm(0, true, "0000000001"), "N");
    }

    #[test]
    fn word_scan_folds_like_the_component_scan() {
        // Deterministic pseudo-random paths over an alphabet that makes counters, near
        // misses, separators and multi-byte characters likely.
        let alphabet = ["/", "0", "1", "7", "9", "a", "-", "\u{1f}", "é", "0000000"];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut p = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p.push_str(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let mut slow = String::from("prefix ");
            fold_slow(&mut slow, p.as_bytes());
            let mut fast = String::from("prefix ");
            if fold_fast(&mut fast, &p) {
                assert_eq!(fast, slow, "{p:?}");
            } else {
                assert!(p.contains(SEP), "{p:?}");
                assert_eq!(fast, "prefix ");
            }
        }
    }

    #[test]
    fn invalid_utf8_and_separators_are_replaced() {
        let n = PathNorm::default();
        assert_eq!(n.apply(b"/a\xff"), "/a\u{fffd}");
        assert_eq!(n.apply(b"/a\x1fb"), "/a\u{fffd}b");
    }

    #[test]
    fn key_names_round_trip() {
        for k in GroupKey::ALL {
            assert_eq!(k.name().parse::<GroupKey>(), Ok(k));
        }
        assert_eq!("ip".parse::<GroupKey>(), Ok(GroupKey::ClientIp));
        assert!("nope".parse::<GroupKey>().is_err());
    }
}
