//! Structured log lines on stderr: `key=value` text, or one JSON object per line
//! (`--log-format json`) for journald/Loki-style collectors.

use std::io::Write;

/// Severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something an operator should look at.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A logger writing to stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct Logger {
    /// One JSON object per line instead of text.
    pub json: bool,
}

impl Logger {
    /// Formats one line (without the newline).
    pub fn format(&self, level: Level, msg: &str, fields: &[(&str, String)]) -> String {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if self.json {
            let mut m = serde_json::Map::new();
            m.insert("ts".into(), ts.into());
            m.insert("level".into(), level.name().into());
            m.insert("msg".into(), msg.into());
            for (k, v) in fields {
                m.insert((*k).into(), v.as_str().into());
            }
            serde_json::Value::Object(m).to_string()
        } else {
            let mut s = format!("{ts} {:5} zkscope: {msg}", level.name().to_uppercase());
            for (k, v) in fields {
                if v.contains(' ') || v.is_empty() {
                    s.push_str(&format!(" {k}={v:?}"));
                } else {
                    s.push_str(&format!(" {k}={v}"));
                }
            }
            s
        }
    }

    /// Writes one line.
    pub fn log(&self, level: Level, msg: &str, fields: &[(&str, String)]) {
        let line = self.format(level, msg, fields);
        let mut e = std::io::stderr().lock();
        let _ = writeln!(e, "{line}");
    }

    /// [`Level::Info`].
    pub fn info(&self, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Info, msg, fields);
    }

    /// [`Level::Warn`].
    pub fn warn(&self, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Warn, msg, fields);
    }

    /// [`Level::Error`].
    pub fn error(&self, msg: &str, fields: &[(&str, String)]) {
        self.log(Level::Error, msg, fields);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_lines() {
        let j = Logger { json: true }.format(
            Level::Warn,
            "kernel drops",
            &[("dropped", "12".into()), ("iface", "eth0".into())],
        );
        let v: serde_json::Value = serde_json::from_str(&j).expect("JSON");
        assert_eq!(v["level"], "warn");
        assert_eq!(v["msg"], "kernel drops");
        assert_eq!(v["dropped"], "12");
        let t = Logger { json: false }.format(Level::Info, "listening", &[("addr", "a b".into())]);
        assert!(t.ends_with("INFO  zkscope: listening addr=\"a b\""), "{t}");
    }
}
