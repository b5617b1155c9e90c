//! A JSON-lines writer for the hot path of `--format json`.
//!
//! The envelope of every line (timestamp, direction, type, headers, addresses) is written by
//! hand into one reused buffer: keys are static and need no escaping, numbers go through
//! `itoa`/`ryu`, paths are copied as they are unless they need escaping, and each connection's
//! `"client":…,"server":…` pair is rendered once and reused. Message bodies are appended with
//! serde_json. The output is the same JSON a serde derive would give, several times faster.

use serde::Serialize;
use zkscope_analysis::hash::FastMap;
use zkscope_capture::client::ConnInfo;
use zkscope_capture::packet::Timestamp;
use zkscope_proto::client::Hex;

/// Connections whose address fields are kept rendered; past this the cache starts over.
const CONN_CACHE_MAX: usize = 65_536;

/// Builds one JSON object per line.
#[derive(Default)]
pub struct JsonLine {
    buf: Vec<u8>,
    conns: FastMap<u64, Box<[u8]>>,
    itoa: itoa::Buffer,
    ryu: ryu::Buffer,
}

impl JsonLine {
    /// Starts a line with `{"ts":…`.
    pub fn begin(&mut self, ts: Timestamp) {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"ts\":");
        let mut micros = ts.micros();
        if micros < 0 {
            self.buf.push(b'-');
            micros = micros.saturating_neg();
        }
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        self.buf
            .extend_from_slice(self.itoa.format(secs).as_bytes());
        // Six fraction digits, as a capture's microseconds.
        let digits = self.itoa.format(frac + 1_000_000).as_bytes();
        self.buf.push(b'.');
        self.buf.extend_from_slice(&digits[1..]);
    }

    #[inline]
    fn key(&mut self, key: &'static str) {
        self.buf.extend_from_slice(b",\"");
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// A string value known to need no escaping (names from fixed tables).
    pub fn name(&mut self, key: &'static str, v: &'static str) {
        self.key(key);
        self.buf.push(b'"');
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(b'"');
    }

    /// A string value from the wire: copied when plain, escaped otherwise.
    pub fn text(&mut self, key: &'static str, v: &[u8]) {
        self.key(key);
        let plain = v
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
        if plain {
            self.buf.push(b'"');
            self.buf.extend_from_slice(v);
            self.buf.push(b'"');
        } else {
            // Invalid UTF-8 is replaced, as everywhere else in zkscope's output.
            let s = String::from_utf8_lossy(v);
            let _ = serde_json::to_writer(&mut self.buf, &s);
        }
    }

    pub fn int(&mut self, key: &'static str, v: i64) {
        self.key(key);
        self.buf.extend_from_slice(self.itoa.format(v).as_bytes());
    }

    /// An integer or `null`.
    pub fn opt_int(&mut self, key: &'static str, v: Option<i64>) {
        match v {
            Some(v) => self.int(key, v),
            None => {
                self.key(key);
                self.buf.extend_from_slice(b"null");
            }
        }
    }

    pub fn float(&mut self, key: &'static str, v: f64) {
        self.key(key);
        if v.is_finite() {
            self.buf.extend_from_slice(self.ryu.format(v).as_bytes());
        } else {
            self.buf.extend_from_slice(b"null");
        }
    }

    pub fn bool(&mut self, key: &'static str, v: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
    }

    /// `"session":"0x…"` in lowercase hex.
    pub fn hex(&mut self, key: &'static str, v: i64) {
        self.key(key);
        self.buf.push(b'"');
        self.buf
            .extend_from_slice(Hex(v).encode(&mut [0; 18]).as_bytes());
        self.buf.push(b'"');
    }

    /// A value rendered by serde.
    pub fn value<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) {
        self.key(key);
        if serde_json::to_writer(&mut self.buf, v).is_err() {
            self.buf.extend_from_slice(b"null");
        }
    }

    /// The connection's `client`, `server` (cached), `session` and `conn` fields.
    pub fn conn(&mut self, c: &ConnInfo) {
        if self.conns.len() >= CONN_CACHE_MAX && !self.conns.contains_key(&c.id) {
            self.conns.clear();
        }
        let fields = self.conns.entry(c.id).or_insert_with(|| {
            format!(",\"client\":\"{}\",\"server\":\"{}\"", c.client, c.server)
                .into_bytes()
                .into_boxed_slice()
        });
        self.buf.extend_from_slice(fields);
        if let Some(s) = c.session {
            self.hex("session", s);
        }
        self.int("conn", c.id as i64);
    }

    /// Appends the fields of a struct or map (a message body) to the object.
    pub fn flatten<T: Serialize + ?Sized>(&mut self, body: &T) {
        let at = self.buf.len();
        if serde_json::to_writer(&mut self.buf, body).is_err() {
            self.buf.truncate(at);
            return;
        }
        // `{…}` becomes `,…}`; an empty `{}` disappears; the closing brace is reused below.
        match &self.buf[at..] {
            [b'{', b'}'] => self.buf.truncate(at),
            [b'{', ..] => {
                self.buf[at] = b',';
                self.buf.pop();
            }
            _ => self.buf.truncate(at),
        }
    }

    /// Ends the line; returns it, newline included.
    pub fn finish(&mut self) -> &[u8] {
        self.buf.extend_from_slice(b"}\n");
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        path: &'static str,
        n: i32,
    }

    #[derive(Serialize)]
    struct Empty {}

    fn conn() -> ConnInfo {
        ConnInfo {
            id: 3,
            client: "[::1]:5000".parse().unwrap(),
            server: "[::1]:2181".parse().unwrap(),
            session: Some(0x100),
        }
    }

    #[test]
    fn a_line_is_valid_json_with_the_fields_in_order() {
        let mut j = JsonLine::default();
        j.begin(Timestamp(1_435_271_474_316_883_000));
        j.name("proto", "client");
        j.text("path", b"/a \"quoted\"\n\xff");
        j.opt_int("opcode", None);
        j.float("latency_us", 415.5);
        j.bool("watch", true);
        j.conn(&conn());
        j.flatten(&Body { path: "/b", n: -1 });
        j.flatten(&Empty {});
        let line = String::from_utf8(j.finish().to_vec()).unwrap();
        assert!(line.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"].as_f64(), Some(1435271474.316883));
        assert_eq!(v["path"], "/b"); // the body's field comes last
        assert_eq!(v["opcode"], serde_json::Value::Null);
        assert_eq!(v["client"], "[::1]:5000");
        assert_eq!(v["session"], "0x100");
        assert_eq!(v["n"], -1);
        assert!(line.starts_with("{\"ts\":1435271474.316883,\"proto\":\"client\",\"path\":\"/a \\\"quoted\\\"\\n\u{fffd}\""));
    }

    #[test]
    fn small_and_negative_timestamps() {
        let mut j = JsonLine::default();
        j.begin(Timestamp(1_000));
        assert_eq!(j.finish(), b"{\"ts\":0.000001}\n");
        j.begin(Timestamp(-1_500_000));
        let v: serde_json::Value = serde_json::from_slice(j.finish()).unwrap();
        assert_eq!(v["ts"].as_f64(), Some(-0.0015));
    }
}
