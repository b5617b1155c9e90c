//! Logging to syslog over UDP (RFC 3164 framing), like zk_monitor's `--syslog FACILITY`.

use std::io;
use std::net::UdpSocket;
use std::sync::Arc;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

#[derive(Clone)]
pub struct SyslogWriter {
    socket: Arc<UdpSocket>,
    facility: u8,
    tag: String,
}

impl SyslogWriter {
    pub fn new(facility: &str, address: &str) -> Result<SyslogWriter, String> {
        let f = facility.trim().to_ascii_lowercase();
        let facility = FACILITIES
            .iter()
            .find(|(n, _)| *n == f)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                format!("unknown syslog facility {facility:?} (user, daemon, local0 … local7, …)")
            })?;
        let socket = UdpSocket::bind("0.0.0.0:0")
            .or_else(|_| UdpSocket::bind("[::]:0"))
            .map_err(|e| format!("syslog socket: {e}"))?;
        socket
            .connect(address)
            .map_err(|e| format!("syslog address {address}: {e}"))?;
        Ok(SyslogWriter {
            socket: Arc::new(socket),
            facility,
            tag: format!("zkscope-monitor[{}]", std::process::id()),
        })
    }
}

pub struct Line {
    socket: Arc<UdpSocket>,
    pri: u8,
    tag: String,
    buf: Vec<u8>,
}

impl io::Write for Line {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let msg = format!("<{}>{}: {}", self.pri, self.tag, text);
        // best effort, like any UDP syslog
        let _ = self.socket.send(msg.as_bytes());
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        self.line(6)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        let sev = match *meta.level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        self.line(sev)
    }
}

impl SyslogWriter {
    fn line(&self, severity: u8) -> Line {
        Line {
            socket: self.socket.clone(),
            pri: self.facility * 8 + severity,
            tag: self.tag.clone(),
            buf: Vec::new(),
        }
    }
}
