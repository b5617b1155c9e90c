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
