//! Capture timestamps as text: UTC by default, local time on request, date optional.

use std::fmt::Write;

use chrono::{DateTime, Local, Utc};
use zkscope_capture::packet::Timestamp;

/// How timestamps are printed.
#[derive(Debug, Clone, Copy)]
pub struct TimeFormat {
    /// Local time zone instead of UTC.
    pub local: bool,
    /// Prefix the date (`YYYY-MM-DD`).
    pub date: bool,
}

/// Formats timestamps, reusing the date and time of day while the second does not change.
#[derive(Debug, Clone)]
pub struct TimeWriter {
    fmt: TimeFormat,
    secs: Option<i64>,
    /// Everything before the fraction for `secs`, e.g. `22:31:14.`.
    prefix: String,
}

impl TimeWriter {
    pub fn new(fmt: TimeFormat) -> Self {
        TimeWriter {
            fmt,
            secs: None,
            prefix: String::new(),
        }
    }

    /// Appends `ts` to `out`, e.g. `22:31:14.316883` or `2014-11-04 22:31:14.316883`.
    pub fn write(&mut self, out: &mut String, ts: Timestamp) {
        let secs = ts.0.div_euclid(1_000_000_000);
        let micros = ts.0.rem_euclid(1_000_000_000) / 1000;
        if self.secs != Some(secs) {
            self.prefix.clear();
            self.fmt
                .write(&mut self.prefix, Timestamp(secs * 1_000_000_000));
            // Drop the fraction ("000000") written for a whole second.
            let keep = self.prefix.len().saturating_sub(6);
            self.prefix.truncate(keep);
            self.secs = Some(secs);
        }
        out.push_str(&self.prefix);
        let mut digits = itoa::Buffer::new();
        out.push_str(&digits.format(micros + 1_000_000)[1..]);
    }
}

impl TimeFormat {
    /// Appends `ts` to `out`, e.g. `22:31:14.316883` or `2014-11-04 22:31:14.316883`.
    pub fn write(&self, out: &mut String, ts: Timestamp) {
        let secs = ts.0.div_euclid(1_000_000_000);
        let nanos = ts.0.rem_euclid(1_000_000_000) as u32;
        let Some(utc) = DateTime::<Utc>::from_timestamp(secs, nanos) else {
            let _ = write!(out, "{secs}.{:06}", nanos / 1000);
            return;
        };
        let fmt = if self.date {
            "%Y-%m-%d %H:%M:%S%.6f"
        } else {
            "%H:%M:%S%.6f"
        };
        if self.local {
            let _ = write!(out, "{}", utc.with_timezone(&Local).format(fmt));
        } else {
            let _ = write!(out, "{}", utc.format(fmt));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_writer_matches_plain_format() {
        let fmt = TimeFormat {
            local: false,
            date: true,
        };
        let mut w = TimeWriter::new(fmt);
        for ns in [
            1_415_140_274_316_883_000_i64,
            1_415_140_274_999_999_000,
            1_415_140_275_000_001_000,
            5_000,
        ] {
            let (mut a, mut b) = (String::new(), String::new());
            w.write(&mut a, Timestamp(ns));
            fmt.write(&mut b, Timestamp(ns));
            assert_eq!(a, b);
        }
    }

    #[test]
    fn utc_with_and_without_date() {
        let ts = Timestamp(1_415_140_274_316_883_000);
        let mut s = String::new();
        TimeFormat {
            local: false,
            date: false,
        }
        .write(&mut s, ts);
        assert_eq!(s, "22:31:14.316883");
        s.clear();
        TimeFormat {
            local: false,
            date: true,
        }
        .write(&mut s, ts);
        assert_eq!(s, "2014-11-04 22:31:14.316883");
    }
}
