//! `zkscope replay` on bad input: a capture without client traffic, a target nobody listens
//! on, a target that drops every connection mid-replay, bad options. Clear errors, a partial
//! report, no hang. (No ZooKeeper needed: the dropping target is a small jute server here.)

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::*;
use zkscope_proto::client::{
    encode_connect_response, encode_reply_header, frame, ConnectResponse, ErrCode, ReplyHeader,
};

fn fixture(p: &str) -> String {
    repo_root().join(p).to_str().unwrap().to_string()
}

fn replay(args: &[&str]) -> (i32, Option<Value>, String) {
    let mut cmd = Command::new(zkscope_bin());
    cmd.arg("replay").args(args);
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).ok(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn no_client_traffic_is_a_clear_error() {
    let (code, report, stderr) = replay(&[
        "-r",
        &fixture("fixtures/other/http.pcap"),
        "--to",
        "127.0.0.1:1",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(report.is_none());
    assert!(
        stderr.contains("no client requests") && stderr.contains("nothing to replay"),
        "{stderr}"
    );
}

#[test]
fn bad_options_are_refused() {
    let f = fixture("fixtures/real/zk38-session.pcap");
    for (args, want) in [
        (vec!["--chroot", "replay"], "--chroot"),
        (vec!["--auth", "ip:1.2.3.4"], "only digest"),
        (vec!["--speed", "0"], "--speed"),
    ] {
        let mut all = vec!["-r", f.as_str(), "--to", "127.0.0.1:1"];
        all.extend(args);
        let (code, _, stderr) = replay(&all);
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    // --compare only reads.
    let (code, _, stderr) = replay(&[
        "-r",
        &f,
        "--to",
        "127.0.0.1:1",
        "--compare",
        "127.0.0.1:2",
        "--allow-writes",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[test]
fn unreachable_target_gives_a_partial_report() {
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let to = format!("127.0.0.1:{port}");
    let (code, report, stderr) = replay(&[
        "-r",
        &fixture("fixtures/real/zk38-session.pcap"),
        "--port",
        "2181",
        "--to",
        &to,
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("replay incomplete"), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    let v = report.expect("a report even so");
    assert_eq!(v["sessions_captured"], 11, "{v:#}");
    assert_eq!(v["sessions_replayed"], 0);
    assert_eq!(v["sessions_failed"], 11);
    assert_eq!(v["requests_sent"], 0);
    assert!(
        v["skipped"]["not connected"].as_u64().unwrap() > 100,
        "{v:#}"
    );
}

/// A server that completes the handshake, answers the first `answer` requests of each
/// connection with NONODE, then closes the connection (or, when `silent`, reads and never
/// answers again).
fn dropping_server(answer: usize, silent: bool) -> (String, Arc<AtomicI64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let conns = Arc::new(AtomicI64::new(0));
    let counter = conns.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(s) = stream else { return };
            let id = counter.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::spawn(move || serve(s, id, answer, silent));
        }
    });
    (addr, conns)
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fn serve(mut s: TcpStream, id: i64, answer: usize, silent: bool) {
    if read_frame(&mut s).is_none() {
        return;
    }
    let passwd = [0u8; 16];
    let mut body = Vec::new();
    encode_connect_response(
        &ConnectResponse {
            protocol_version: 0,
            timeout: 30_000,
            session_id: 0x4200 + id,
            passwd: Some(&passwd),
            read_only: Some(false),
        },
        &mut body,
    )
    .unwrap();
    if s.write_all(&frame(&body).unwrap()).is_err() {
        return;
    }
    for _ in 0..answer {
        let Some(req) = read_frame(&mut s) else {
            return;
        };
        let xid = i32::from_be_bytes(req[..4].try_into().unwrap());
        let mut body = Vec::new();
        encode_reply_header(
            &ReplyHeader {
                xid,
                zxid: 1,
                err: ErrCode(-101),
            },
            &mut body,
        );
        if s.write_all(&frame(&body).unwrap()).is_err() {
            return;
        }
    }
    // then the target goes away, mid-replay, or hangs
    while silent && read_frame(&mut s).is_some() {}
}

#[test]
fn target_dropping_connections_gives_a_partial_report() {
    let (to, conns) = dropping_server(2, false);
    let (code, report, stderr) = replay(&[
        "-r",
        &fixture("fixtures/real/zk38-session.pcap"),
        "--port",
        "2181",
        "--to",
        &to,
        "--max-speed",
        "--allow-writes",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("replay incomplete") && stderr.contains("the target closed it"),
        "{stderr}"
    );
    let v = report.expect("a partial report");
    assert!(conns.load(Ordering::SeqCst) >= 11);
    assert_eq!(v["sessions_replayed"], 11, "{v:#}");
    // Whether a short session's last requests went out before the close is a race; most
    // sessions are longer than two requests.
    assert!(v["sessions_failed"].as_u64().unwrap() >= 8, "{v:#}");
    for e in v["session_errors"].as_array().unwrap() {
        assert!(
            e["error"].as_str().unwrap().starts_with("connection lost"),
            "{e}"
        );
    }
    // Two answers per session (NONODE where the capture had other codes), then nothing.
    let answered = v["requests_answered"].as_u64().unwrap();
    assert!((1..=22).contains(&answered), "{v:#}");
    // The rest was either sent and never answered, or not sent at all.
    let lost = v["requests_no_reply"].as_u64().unwrap()
        + v["skipped"]["connection lost"].as_u64().unwrap_or(0);
    assert!(lost > 100, "{v:#}");
    assert!(!v["error_differences"].as_array().unwrap().is_empty());
}

#[test]
fn silent_target_ends_at_the_wait_timeout() {
    let (to, _) = dropping_server(1, true);
    let (code, report, stderr) = replay(&[
        "-r",
        &fixture("fixtures/real/zk38-session.pcap"),
        "--port",
        "2181",
        "--to",
        &to,
        "--max-speed",
        "--wait-timeout",
        "2s",
        "--connect-timeout",
        "2s",
        "--format",
        "json",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("unanswered for 2s"), "{stderr}");
    let v = report.expect("a partial report");
    assert!(v["requests_no_reply"].as_u64().unwrap() > 50, "{v:#}");
}
