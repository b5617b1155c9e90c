//! The README's examples run, so that they cannot drift from the binary.
//!
//! Every line of a `sh` block of README.md and crates/monitor/README.md that starts with
//! `zkscope` (pipelines into `jq`, `head`, … included) is run with `sh -e -o pipefail` from a
//! directory where the example file names exist: `f.pcap` and `capture.pcap` are a real
//! ZooKeeper 3.8 session, `ensemble.pcap` zktraffic's three-server capture, `quorum.pcap` a
//! quorum (ZAB) capture, `monitor.yaml` a valid config. Live captures (`-i`), daemons
//! (`monitor` without `--check-config`, `serve`) and lines that need other hosts are skipped: the test
//! says which. Each example must exit 0 and print something.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{run_with_timeout, TempDir};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `zkscope …` lines of the `sh` blocks of a Markdown file (comments stripped).
fn examples(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut continued = String::new();
    for line in markdown.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        // a trailing comment (`  # …`), outside quotes: README comments follow two spaces
        let code = match t.find("  #") {
            Some(i) => t[..i].trim_end(),
            None => t,
        };
        if let Some(body) = code.strip_suffix('\\') {
            continued.push_str(body);
            continued.push(' ');
            continue;
        }
        let full = format!("{continued}{code}");
        continued.clear();
        if full.starts_with("zkscope ") {
            out.push(full);
        }
    }
    out
}

/// Why an example is not run here, if it is not.
fn skip_reason(cmd: &str) -> Option<&'static str> {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    if words.iter().any(|w| *w == "-i" || w.starts_with("--iface")) {
        return Some("live capture");
    }
    if words.get(1) == Some(&"monitor") && !words.contains(&"--check-config") {
        return Some("daemon");
    }
    // `serve` keeps serving after a file until it is stopped: tests/serve.rs runs it.
    if words.get(1) == Some(&"serve") {
        return Some("daemon");
    }
    // `replay` needs a target ensemble: tests/replay_real_zk.rs runs it.
    if words.get(1) == Some(&"replay") {
        return Some("needs a target ensemble");
    }
    if words.get(1) == Some(&"completions") || words.get(1) == Some(&"man") {
        return None;
    }
    None
}

#[test]
fn readme_examples_run() {
    let dir = TempDir::new("readme");
    let links = [
        ("f.pcap", "fixtures/real/zk38-session.pcap"),
        ("capture.pcap", "fixtures/real/zk38-session.pcap"),
        ("ensemble.pcap", "fixtures/zktraffic/omni.pcap"),
        ("quorum.pcap", "fixtures/zktraffic/zab_request.pcap"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(repo().join(target), dir.join(name)).unwrap();
    }
    std::fs::write(
        dir.join("monitor.yaml"),
        "/services/foo:\n  children: 1\n  alerter: {email: [ops@example.com]}\n",
    )
    .unwrap();
    let bin_dir = dir.join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    std::os::unix::fs::symlink(support::zkscope_bin(), bin_dir.join("zkscope")).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut ran = 0;
    let mut failures = Vec::new();
    for file in ["README.md", "crates/monitor/README.md"] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        for cmd in examples(&text) {
            if let Some(why) = skip_reason(&cmd) {
                eprintln!("skipped ({why}): {cmd}");
                continue;
            }
            let mut c = Command::new("bash");
            c.args(["-e", "-o", "pipefail", "-c", &cmd])
                .current_dir(dir.path())
                .env("PATH", &path)
                .env("NO_COLOR", "1");
            let out = run_with_timeout(c, None, Duration::from_secs(120));
            ran += 1;
            if !out.status.success() || (out.stdout.is_empty() && out.stderr.is_empty()) {
                failures.push(format!(
                    "{file}: {cmd}\n  exit {:?}\n  stderr: {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .take(5)
                        .collect::<Vec<_>>()
                        .join("\n          ")
                ));
            }
        }
    }
    assert!(ran >= 15, "only {ran} examples found");
    assert!(
        failures.is_empty(),
        "{} README example(s) fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
