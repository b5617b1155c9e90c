//! `-w FILE`: the packets read, written to a pcap file as they are read (like tcpdump's `-w`),
//! so that a live session can be kept and decoded again later.

use std::path::{Path, PathBuf};

use crate::packet::{Linktype, RawPacket};
use crate::source::CaptureError;

/// Writes packets to a classic pcap file with nanosecond timestamps. The file is created at
/// once (so that a bad path fails before the capture starts); the pcap header is written with
/// the first packet, whose link type it takes. Packets of another link type (a pcapng file
/// with several interfaces) are counted, not written.
pub struct PacketWriter {
    path: PathBuf,
    dump: Option<(Linktype, pcap::Savefile)>,
    written: u64,
    skipped: u64,
}

impl PacketWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<PacketWriter, CaptureError> {
        std::fs::File::create(path).map_err(|error| CaptureError::Io {
            name: path.display().to_string(),
            error,
        })?;
        Ok(PacketWriter {
            path: path.to_path_buf(),
            dump: None,
            written: 0,
            skipped: 0,
        })
    }

    fn error(&self, e: impl std::fmt::Display) -> CaptureError {
        CaptureError::Io {
            name: self.path.display().to_string(),
            error: std::io::Error::other(e.to_string()),
        }
    }

    /// Appends one packet.
    pub fn write(&mut self, pkt: &RawPacket<'_>) -> Result<(), CaptureError> {
        if self.dump.is_none() {
            let dead = pcap::Capture::dead_with_precision(
                pcap::Linktype(pkt.linktype.0),
                pcap::Precision::Nano,
            )
            .map_err(|e| self.error(e))?;
            let file = dead.savefile(&self.path).map_err(|e| self.error(e))?;
            self.dump = Some((pkt.linktype, file));
        }
        let Some((lt, file)) = self.dump.as_mut() else {
            return Ok(());
        };
        if *lt != pkt.linktype {
            self.skipped += 1;
            return Ok(());
        }
        let header = pcap::PacketHeader {
            ts: libc::timeval {
                tv_sec: pkt.ts.secs() as libc::time_t,
                // nanosecond precision: libpcap reads this field as nanoseconds
                tv_usec: pkt.ts.subsec_nanos() as libc::suseconds_t,
            },
            caplen: u32::try_from(pkt.data.len()).unwrap_or(u32::MAX),
            len: pkt
                .orig_len
                .max(u32::try_from(pkt.data.len()).unwrap_or(u32::MAX)),
        };
        file.write(&pcap::Packet::new(&header, pkt.data));
        self.written += 1;
        Ok(())
    }

    /// Pushes what is buffered to the file (libpcap buffers through stdio); reports a failed
    /// write (full disk…), which `write` cannot.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        let r = match self.dump.as_mut() {
            Some((_, f)) => f.flush(),
            None => Ok(()),
        };
        r.map_err(|e| self.error(e))
    }

    /// Packets written.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Packets not written: their link type differs from the first packet's.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PacketSource;

    /// Every packet of a capture, written and read back: same bytes, times and lengths.
    #[test]
    fn round_trip() {
        let src =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/real/zk38-session.pcap");
        let out = std::env::temp_dir().join(format!("zkscope-writer-{}.pcap", std::process::id()));
        let mut orig = Vec::new();
        {
            let mut s = PacketSource::open_file(&src).unwrap();
            let mut w = PacketWriter::create(&out).unwrap();
            while let Some(p) = s.next_packet().unwrap() {
                orig.push((p.ts, p.data.to_vec(), p.orig_len));
                w.write(&p).unwrap();
            }
            w.flush().unwrap();
            assert_eq!(w.written(), orig.len() as u64);
            assert_eq!(w.skipped(), 0);
        }
        let mut s = PacketSource::open_file(&out).unwrap();
        let mut back = Vec::new();
        while let Some(p) = s.next_packet().unwrap() {
            back.push((p.ts, p.data.to_vec(), p.orig_len));
        }
        let _ = std::fs::remove_file(&out);
        assert!(!orig.is_empty());
        assert_eq!(back, orig);
        assert!(PacketWriter::create(Path::new("/nonexistent/x.pcap")).is_err());
    }
}
