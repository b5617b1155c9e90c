//! `zkscope top` end to end: the screen in a real terminal (tmux) replaying a real ZooKeeper
//! 3.8 capture and driven by keys; `--batch` against `zkscope count` on a gen_pcap capture;
//! the live screen while a real ZooKeeper serves a kazoo workload and while a real ensemble
//! elects and fails over; SIGTERM.
//!
//! Every step waits for what the pane shows (polling `tmux capture-pane`), never for a time.
//! The live test needs root (capture on lo) and scripts/install-test-deps.sh (tmux, kazoo).

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Generous: a loaded machine may be slow to start or to draw.
const BUDGET: Duration = Duration::from_secs(60);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmux server of its own (its socket named after the test), one window running a command.
struct Tmux {
    socket: String,
    _dir: TempDir,
}

impl Tmux {
    /// Runs `args` (zkscope's) in a `w`×`h` pane; the pane prints `EXITED <status>` when
    /// zkscope ends.
    fn start(name: &str, args: &[&str], w: u16, h: u16) -> Tmux {
        let dir = TempDir::new("top-tmux");
        let socket = format!("zkscope-{name}-{}", std::process::id());
        let mut cmdline = shell_quote(zkscope_bin().to_str().expect("utf-8 path"));
        for a in args {
            cmdline.push(' ');
            cmdline.push_str(&shell_quote(a));
        }
        let script = format!(
            "{cmdline} 2>{}; echo EXITED $?; exec sleep 600",
            shell_quote(dir.join("stderr").to_str().expect("utf-8 path"))
        );
        let t = Tmux { socket, _dir: dir };
        let out = t
            .cmd()
            .args(["new-session", "-d", "-s", "top", "-x"])
            .arg(w.to_string())
            .arg("-y")
            .arg(h.to_string())
            .args(["sh", "-c", &script])
            .output()
            .expect("run tmux (scripts/install-test-deps.sh installs it)");
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket])
            .env("TERM", "xterm-256color");
        c
    }

    fn pane(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "top"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self._dir.join("stderr")).unwrap_or_default()
    }

    /// Sends tmux key names (`Enter`, `Escape`, `Space`, `q`).
    fn keys(&self, keys: &[&str]) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "top"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Types text literally.
    fn type_text(&self, s: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "top", "-l", s])
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
    }

    /// Waits until the pane satisfies `f`; panics with the pane when it never does.
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let got = wait_for(BUDGET, || {
            last = self.pane();
            f(&last).then(|| last.clone())
        });
        got.unwrap_or_else(|| {
            panic!(
                "the pane never showed {what}:\n{last}\nstderr:\n{}",
                self.stderr()
            )
        })
    }

    fn wait_text(&self, text: &str) -> String {
        self.wait(&format!("{text:?}"), |p| p.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").output();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The table's rows: lines between the header (starting with `header`) and the total.
fn rows<'a>(pane: &'a str, header: &str) -> Vec<&'a str> {
    pane.lines()
        .skip_while(|l| !l.trim_start().starts_with(header))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("total"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

fn fixture(name: &str) -> String {
    repo_root()
        .join("fixtures/real")
        .join(name)
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

#[test]
fn replay_in_tmux_driven_by_keys() {
    let pcap = fixture("zk38-session.pcap");
    let t = Tmux::start("replay", &["top", "-r", &pcap, "--speed", "2"], 100, 30);
    // The operations of the capture, busiest first over 10 s.
    t.wait("the operations", |p| {
        ["[o]ps", "OP", "getData", "closeSession"]
            .iter()
            .all(|s| p.contains(s))
    });

    // Sort by the key, then invert. (A capture may catch a frame half drawn: wait for the
    // state, then check it.)
    let names = |p: &str| -> Vec<String> {
        rows(p, "OP")
            .iter()
            .filter_map(|l| l.trim_start_matches('>').split_whitespace().next())
            .map(str::to_string)
            .collect()
    };
    let sorted = |v: &[String]| v.windows(2).all(|w| w[0] <= w[1]);
    t.keys(&["a"]);
    let pane = t.wait("rows sorted by op", |p| {
        p.contains("OP▼") && names(p).len() >= 5 && sorted(&names(p))
    });
    assert!(names(&pane).contains(&"getData".to_string()), "{pane}");
    t.keys(&["i"]);
    t.wait("rows in reverse order", |p| {
        let mut n = names(p);
        n.reverse();
        p.contains("OP▲") && n.len() >= 5 && sorted(&n)
    });

    // The paths view, filtered.
    t.keys(&["p"]);
    t.wait_text("PATH");
    t.keys(&["/"]);
    t.type_text("crud");
    t.keys(&["Enter"]);
    t.wait("only /crud paths", |p| {
        let r = rows(p, "PATH");
        p.contains("| /crud ")
            && p.contains("/crud/missing")
            && !r.is_empty()
            && r.iter().all(|l| l.contains("/crud"))
    });
    // The total is the same as without the filter: compare once the replay has ended.
    // Its figures (the key column's width follows the rows shown).
    let total = |p: &str| -> Vec<String> {
        p.lines()
            .find(|l| l.trim_start().starts_with("total "))
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let pane = t.wait("the end of the replay, filtered", |p| {
        p.contains("END OF CAPTURE")
            && p.contains("| /crud ")
            && total(p).contains(&"147".to_string())
    });
    let filtered = total(&pane);
    t.keys(&["Escape"]);
    t.wait("every path again, the same total", |p| {
        !p.contains("| /crud") && p.contains("/w/data") && total(p) == filtered
    });

    // The detail of the busiest path.
    t.keys(&["Enter"]);
    t.wait("the detail", |p| {
        ["latency, last 40s", "top clients", "slowest recent calls"]
            .iter()
            .all(|s| p.contains(s))
    });
    t.keys(&["Escape"]);
    t.wait("the detail closed", |p| !p.contains("latency, last 40s"));

    // Sessions and errors.
    t.keys(&["s"]);
    t.wait_text("TIMEOUT");
    t.keys(&["e"]);
    t.wait_text("NODEEXISTS");

    // Pause, resume, help, quit.
    t.keys(&["Space"]);
    t.wait_text("PAUSED");
    t.keys(&["Space"]);
    t.wait("resumed", |p| !p.contains("PAUSED"));
    t.keys(&["?"]);
    t.wait_text("help (any key closes)");
    t.keys(&["Escape"]);
    t.wait("the help closed", |p| !p.contains("help (any key closes)"));
    t.keys(&["q"]);
    t.wait_text("EXITED 0");
}

#[test]
fn narrow_terminal_keeps_the_keys_whole() {
    let pcap = fixture("zk38-session.pcap");
    let t = Tmux::start("narrow", &["top", "-r", &pcap, "--max-speed"], 60, 20);
    let pane = t.wait("the whole capture", |p| {
        p.contains("END OF CAPTURE") && p.contains("closeSession") && p.contains("10s")
    });
    assert!(!pane.contains("40s"), "the 40 s column goes first:\n{pane}");
    // Resizing brings the columns back.
    let st = t
        .cmd()
        .args(["resize-window", "-t", "top", "-x", "160", "-y", "40"])
        .status()
        .expect("tmux resize-window");
    assert!(st.success());
    t.wait("the wide columns", |p| {
        p.contains("40s") && p.contains("P50")
    });
    t.keys(&["q"]);
    t.wait_text("EXITED 0");
}

/// `op → count` from `zkscope count --format json`.
fn count_by_op(pcap: &Path) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let out = zkscope(&[
        "count",
        "-r",
        pcap.to_str().expect("utf-8 path"),
        "-g",
        "op",
        "--format",
        "json",
        "-q",
    ]);
    assert!(out.status.success());
    let rows: Value = serde_json::from_slice(&out.stdout).expect("count json");
    let mut counts = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for r in rows.as_array().expect("array") {
        let op = r["op"].as_str().expect("op").to_string();
        counts.insert(op.clone(), r["count"].as_u64().expect("count"));
        errors.insert(op, r["errors"].as_u64().expect("errors"));
    }
    (counts, errors)
}

#[test]
fn batch_agrees_with_count() {
    let dir = TempDir::new("top-batch");
    let pcap = dir.join("gen.pcap");
    let script = repo_root().join("bench/gen_pcap.py");
    let mut cmd = Command::new("python3");
    cmd.arg(&script).args([
        "--out",
        pcap.to_str().expect("utf-8 path"),
        "-n",
        "5000",
        "-c",
        "20",
        "--mean-gap-us",
        "2000",
        "--seed",
        "7",
    ]);
    let out = run_with_timeout(cmd, None, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = zkscope(&[
        "top",
        "-r",
        pcap.to_str().expect("utf-8 path"),
        "--batch",
        "--max-speed",
        "--rows",
        "0",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (want, want_errors) = count_by_op(&pcap);
    let mut sum: BTreeMap<String, u64> = BTreeMap::new();
    let mut sum_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_cumulative: BTreeMap<String, u64> = BTreeMap::new();
    let mut blocks = 0;
    let mut head_total = 0;
    let mut last_head_cumulative = 0;
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("--- ") {
            blocks += 1;
            let num = |after: &str| -> u64 {
                let i = head.find(after).expect(after) + after.len();
                head[i..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a number")
            };
            head_total += num(" calls ");
            last_head_cumulative = num("(cumulative ");
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        // OP INTERVAL CUMULATIVE ERRORS CUM_ERRORS P50 P99
        if f.len() != 7 || f[0] == "OP" {
            continue;
        }
        let n: u64 = f[1].parse().expect("interval count");
        *sum.entry(f[0].to_string()).or_default() += n;
        *sum_errors.entry(f[0].to_string()).or_default() += f[3].parse::<u64>().expect("errors");
        last_cumulative.insert(f[0].to_string(), f[2].parse().expect("cumulative"));
    }
    // The capture spans 23 s: about a dozen 2 s blocks.
    assert!(blocks >= 10, "{blocks} blocks:\n{text}");
    assert_eq!(sum, want, "interval counts add up to count's");
    assert_eq!(sum_errors, want_errors, "errors too");
    assert_eq!(
        last_cumulative, want,
        "the last cumulative counts are count's"
    );
    let total: u64 = want.values().sum();
    assert_eq!((head_total, last_head_cumulative), (total, total));

    // --iterations stops after N blocks.
    let out = zkscope(&[
        "top",
        "-r",
        pcap.to_str().expect("utf-8 path"),
        "--batch",
        "--max-speed",
        "--iterations",
        "3",
        "--interval",
        "4s",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("--- ")).count(),
        3,
        "{text}"
    );
    assert!(text.contains("interval 4s"), "{text}");

    // SIGTERM (`timeout`, `kill`, a service manager) ends a batch as Ctrl-C does: the block
    // under way is printed, the exit is clean. Replayed at capture speed (23 s), stopped
    // once the first block is out.
    let mut child = Command::new(zkscope_bin())
        .args(["top", "-r", pcap.to_str().expect("utf-8 path"), "--batch"])
        .args(["--rows", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start top --batch");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut text = String::new();
    // the first block is out (written at once) when its table header has been read
    let mut headers = 0;
    while headers == 0 || !text.lines().last().is_some_and(|l| l.starts_with("OP")) {
        let line = rx
            .recv_timeout(BUDGET)
            .expect("a first block within the budget");
        headers += usize::from(line.starts_with("--- "));
        text.push_str(&line);
        text.push('\n');
    }
    // SAFETY: kill has no memory preconditions; the pid is the child this test started.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.wait().expect("wait for top");
    reader.join().expect("reader thread");
    text.extend(rx.try_iter().map(|l| l + "\n"));
    assert!(status.success(), "{status:?}:\n{text}");
    let blocks = text.lines().filter(|l| l.starts_with("--- ")).count();
    assert!(blocks >= 2, "the block under way is printed too:\n{text}");
    assert!(blocks < 10, "stopped early:\n{text}");
}

#[test]
fn live_screen_shows_a_kazoo_workload() {
    if !is_root() {
        eprintln!("skipped: needs root (capture on lo)");
        return;
    }
    let zk = ZkServer::standalone(ZkOpts::new());
    let port = zk.client_port().to_string();
    let t = Tmux::start(
        "live",
        &[
            "top",
            "-i",
            "lo",
            "--port",
            &port,
            "--protocol",
            "client",
            "-d",
            "500ms",
        ],
        120,
        40,
    );
    // The capture is open before the screen is drawn.
    t.wait_text("live lo");
    // No digits: the paths view folds numbers into {n}.
    let prefix = "/topscreen";
    let manifest = kazoo("crud.py", &["127.0.0.1", &port, "--prefix", prefix]);
    assert!(manifest.is_object());
    let server = format!("127.0.0.1:{port}");
    t.wait("the workload's operations and the server", |p| {
        [
            "create",
            "getData",
            "setData",
            "delete",
            "getChildren2",
            &server,
        ]
        .iter()
        .all(|op| p.contains(op))
    });
    t.keys(&["e"]);
    t.wait("its errors", |p| {
        p.contains("NODEEXISTS") && p.contains("BADVERSION")
    });
    t.keys(&["p"]);
    t.wait_text(&format!("{prefix}/missing"));
    t.keys(&["q"]);
    t.wait_text("EXITED 0");
}

#[test]
fn sigterm_restores_the_terminal() {
    let pcap = fixture("zk38-session.pcap");
    let t = Tmux::start("term", &["top", "-r", &pcap, "--max-speed"], 100, 30);
    t.wait("the screen", |p| {
        p.contains("q quit") && p.contains("getData")
    });
    let out = t
        .cmd()
        .args(["list-panes", "-t", "top", "-F", "#{pane_pid}"])
        .output()
        .expect("tmux list-panes");
    let sh = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // zkscope is the pane shell's child.
    let out = Command::new("pgrep")
        .args(["-P", &sh])
        .output()
        .expect("pgrep");
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no child of the pane's shell {sh}"));
    // SAFETY: kill has no memory preconditions; `pid` is the zkscope this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    // It exits normally, out of the alternate screen: the shell's line is what shows.
    let pane = t.wait_text("EXITED 0");
    assert!(!pane.contains("q quit"), "{pane}");
}

/// The header's ensemble line.
fn ensemble_line(pane: &str) -> String {
    pane.lines().nth(2).unwrap_or_default().to_string()
}

#[test]
fn live_screen_follows_an_election() {
    if !is_root() {
        eprintln!("skipped: needs root (capture on lo)");
        return;
    }
    let t = Tmux::start("election", &["top", "-i", "lo", "-d", "250ms"], 160, 40);
    t.wait_text("live lo");
    let mut ens = ZkEnsemble::start(3, ZkOpts::new().standalone_enabled(false));
    let first = ens.wait_leader(Duration::from_secs(60));
    // Settled roles: `N:leader` and the others `M:follower`.
    let roles = |p: &str, leader: u32| {
        let l = ensemble_line(p);
        let words: Vec<&str> = l.split_whitespace().collect();
        l.contains(&format!("leader {leader} "))
            && words.contains(&format!("{leader}:leader").as_str())
            && words.iter().filter(|w| w.ends_with(":follower")).count() >= 1
            && !words
                .iter()
                .any(|w| w.ends_with(":looking") || w.ends_with('?'))
    };
    t.wait(&format!("server {first} leading"), |p| roles(p, first));

    // Kill the leader: the survivors elect another, and the screen says so.
    ens.kill(first);
    let second = wait_for(Duration::from_secs(60), || {
        ens.leader_id().filter(|&l| l != first)
    })
    .expect("no new leader after the kill");
    t.wait(&format!("server {second} leading"), |p| {
        roles(p, second) && !ensemble_line(p).contains("elections 1,")
    });
    t.keys(&["q"]);
    t.wait_text("EXITED 0");
}
