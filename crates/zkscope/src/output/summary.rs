//! The end-of-run summary on stderr: nothing is dropped silently.

use std::io::{self, Write};

use zkscope_capture::client::ClientStats;
use zkscope_capture::ensemble::{Discovery, EnsembleStats};
use zkscope_capture::pipeline::Counters;

/// Requests as count and digest count them: handshakes never (they are `connects`), pings
/// only with `-p`.
pub fn requests(c: &ClientStats, include_pings: bool) -> u64 {
    if include_pings {
        c.requests
    } else {
        c.requests.saturating_sub(c.pings)
    }
}

/// What the request total leaves out, in words (empty when nothing).
fn excluded(c: &ClientStats, include_pings: bool) -> String {
    let mut parts = Vec::new();
    if include_pings && c.pings > 0 {
        parts.push(format!("{} pings included", c.pings));
    }
    let mut out = Vec::new();
    if !include_pings && c.pings > 0 {
        out.push(format!("+{} pings", c.pings));
    }
    if c.connects > 0 {
        out.push(format!("{} connects", c.connects));
    }
    if !out.is_empty() {
        parts.push(format!("{} not counted", out.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// The end-of-run summary on stderr: packets, capture drops, TCP, messages, pairing, problems.
/// Pings are among the requests only with `include_pings` (as in count and digest).
pub fn print_summary(counters: &Counters, include_pings: bool) {
    let s = &counters.packets;
    let tcp = &counters.tcp;
    let c = &counters.client;
    let live = counters.live;
    let mut e = io::stderr().lock();
    let span = match (s.first_ts, s.last_ts) {
        (Some(a), Some(b)) => (b.0 - a.0) as f64 / 1e9,
        _ => 0.0,
    };
    let _ = writeln!(e, "--- zkscope summary ---");
    let _ = writeln!(
        e,
        "packets     {} ({} bytes) over {:.3}s; not TCP {}, IP fragments {}, malformed {}, headers truncated {}, unsupported link type {}",
        s.packets, s.bytes, span, s.not_tcp, s.fragments, s.malformed, s.truncated_headers, s.unsupported_link
    );
    if let Some(snap) = s.snaplen {
        let _ = writeln!(
            e,
            "snap length {snap} bytes: {} packets cut (capture with tcpdump -s 0 to keep them whole)",
            s.cut_packets
        );
    }
    if let Some(l) = live {
        let _ = writeln!(
            e,
            "capture     received {}, dropped by kernel {}, dropped by interface {}",
            l.received, l.dropped, l.if_dropped
        );
    }
    let _ = writeln!(
        e,
        "tcp         {} connections ({} closed, {} evicted); {} retransmitted/duplicate segments, {} out of order; {} gaps ({} bytes lost); {} truncated packets",
        tcp.flows_opened,
        tcp.flows_closed,
        tcp.flows_evicted,
        tcp.duplicate_segments,
        tcp.out_of_order_segments,
        tcp.gaps,
        tcp.bytes_lost,
        tcp.truncated_packets
    );
    let _ = writeln!(
        e,
        "messages    {} requests{}, {} replies, {} watch events, {} connects, {} connect replies, {} four-letter words, {} TLS connections",
        requests(c, include_pings), excluded(c, include_pings), c.replies, c.events, c.connects, c.connect_replies, c.four_letter_words, c.tls_connections
    );
    let _ = writeln!(
        e,
        "pairing     {} replies without a captured request, {} requests without a reply, {} pending requests evicted",
        c.unpaired_replies, c.unanswered_requests, c.pending_evicted
    );
    let _ = writeln!(
        e,
        "problems    {} undecodable frames, {} bad length prefixes, {} bytes skipped to resynchronise, {} partial frames dropped at gaps, {} frames cut by gaps (reported from their start), {} misread frames (impossible error code)",
        c.undecodable_frames, c.bad_lengths, c.resync_skipped_bytes, c.partial_frames_dropped, c.cut_frames, c.misread_frames
    );
    if c.partial_frames_shed > 0 {
        let _ = writeln!(
            e,
            "memory      {} partial frames given up to keep frames in progress within the memory budget (reported cut)",
            c.partial_frames_shed
        );
    }
}

/// The election/quorum lines of the end-of-run summary (stderr).
pub fn print_ensemble_summary(s: &EnsembleStats, discovered: &[Discovery]) {
    let mut e = io::stderr().lock();
    let _ = writeln!(
        e,
        "election    {} connections, {} initial messages, {} notifications, {} auth packets; lost: {} undecodable, {} cut by gaps, {} bad length prefixes, {} bytes skipped, {} partial messages dropped",
        s.fle_connections, s.fle_initials, s.fle_notifications, s.fle_auth_packets,
        s.fle_undecodable, s.fle_cut_frames, s.fle_bad_lengths, s.fle_skipped_bytes, s.fle_partial_dropped
    );
    let _ = writeln!(
        e,
        "quorum      {} connections, {} packets ({} pings), {} auth packets, {} snapshots skipped over ({} bytes); lost: {} undecodable, {} cut by gaps, {} bytes skipped, {} partial packets dropped ({} bytes), {} snapshots not followed",
        s.zab_connections, s.zab_packets, s.zab_pings, s.zab_auth_packets, s.zab_snapshots, s.zab_snapshot_bytes,
        s.zab_undecodable, s.zab_cut_packets, s.zab_skipped_bytes, s.zab_partial_dropped, s.zab_partial_dropped_bytes, s.zab_snapshots_lost
    );
    let _ = writeln!(
        e,
        "recognition {} connections recognised from their bytes, {} not recognised as ZooKeeper ({} bytes; {} of them TLS on ports never identified), {} without data, {} TLS election/quorum connections, {} endpoint conflicts; {} gaps in election/quorum connections ({} bytes lost)",
        s.recognised, s.unrecognised_connections, s.unrecognised_bytes, s.unrecognised_tls, s.empty_connections, s.tls_connections, s.endpoint_conflicts,
        s.tcp_gaps, s.tcp_bytes_lost
    );
    if !discovered.is_empty() {
        let list: Vec<String> = discovered
            .iter()
            .map(|d| {
                let sid = d
                    .endpoint
                    .sid
                    .map(|s| format!(" sid={s}"))
                    .unwrap_or_default();
                format!(
                    "{} {}{sid} ({})",
                    d.endpoint.proto.as_str(),
                    d.addr,
                    d.endpoint.source.as_str()
                )
            })
            .collect();
        let _ = writeln!(e, "discovered  {}", list.join(", "));
    }
}
