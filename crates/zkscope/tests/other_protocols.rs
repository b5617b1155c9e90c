//! `--protocol auto` finds no ZooKeeper in captures of other protocols.
//!
//! `fixtures/other/` holds real conversations of memcached, Redis, HTTP, SMTP and DNP3 (see
//! its README). Recognition looks at every TCP connection on a port it does not know; in
//! these it must discover no port and decode no message. memcached's `stats\r\n` starts with
//! the four-letter word `stat`: a four-letter word is exactly those four bytes, answered with
//! text and a close.

mod support;

use support::{repo_root, s, zkscope_dump_file};

#[test]
fn auto_finds_no_zookeeper_in_other_protocols() {
    let dir = repo_root().join("fixtures/other");
    let mut seen = 0;
    for name in ["memcached", "redis", "http", "smtp", "dnp3"] {
        let pcap = dir.join(format!("{name}.pcap"));
        for extra in [
            &["--protocol", "auto"][..],
            &["--protocol", "auto", "-p"][..],
        ] {
            let d = zkscope_dump_file(&pcap, extra);
            // no ZooKeeper: exit status 3 and a note naming the busiest port
            assert!(!d.success, "{name}: {}", d.stderr);
            assert!(
                d.stderr.contains("no ZooKeeper traffic decoded")
                    && d.stderr.contains("busiest TCP ports"),
                "{name}: {}",
                d.stderr
            );
            assert!(d.bad_lines.is_empty(), "{name}: {:?}", d.bad_lines);
            assert!(
                d.messages.is_empty(),
                "{name}: ZooKeeper found in another protocol: {:?}\n{}",
                d.messages
                    .iter()
                    .map(|m| format!("{} {} {}", s(m, "proto"), s(m, "type"), m))
                    .collect::<Vec<_>>(),
                d.stderr
            );
            assert!(d.stderr.contains("--- zkscope summary ---"), "{}", d.stderr);
        }
        seen += 1;
    }
    assert_eq!(seen, 5);
}

#[test]
fn auto_still_reports_four_letter_words() {
    // The real 3.8 capture's `ruok` and `srvr` (a port found from a four-letter-word exchange
    // alone is covered by the capture crate's ensemble tests).
    let pcap = repo_root().join("fixtures/real/zk38-ipv6.pcap");
    let d = zkscope_dump_file(&pcap, &["--protocol", "auto"]);
    assert!(d.success, "{}", d.stderr);
    let words: Vec<&str> = d
        .messages
        .iter()
        .filter(|m| s(m, "dir") == "4lw")
        .map(|m| s(m, "command"))
        .collect();
    assert_eq!(words, ["ruok", "srvr"], "{}", d.stderr);
}
