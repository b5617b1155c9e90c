//! Real receivers and agents for the `zkscope monitor` tests: a local HTTP server (webhooks,
//! Slack, Alertmanager's own webhook), an SMTP server (Debian's python3-aiosmtpd), an
//! Alertmanager (Debian's prometheus-alertmanager), and `zkscope monitor` agents as processes.
//! Everything listens on 127.0.0.1 on free ports and is killed on drop.
#![allow(dead_code)]

use crate::support::{self, free_port, spawn, terminate, wait_for, TempDir};
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ HTTP GET

/// GET http://127.0.0.1:port/path → (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().ok()?,
        Duration::from_secs(2),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((len, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get_json(port: u16, path: &str) -> Option<Value> {
    let (_, body) = http_get(port, path)?;
    serde_json::from_str(&body).ok()
}

// --------------------------------------------------------------- hook server

/// One request the hook server got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub headers: String,
    pub body: Value,
}

/// A local HTTP server recording POSTs; answers 500 to the first `fail` requests on paths
/// starting with `fail_prefix`.
pub struct Hook {
    pub port: u16,
    hits: Arc<Mutex<Vec<Hit>>>,
    pub fail: Arc<AtomicUsize>,
    fail_prefix: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

impl Hook {
    pub fn start() -> Hook {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind hook");
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let fail = Arc::new(AtomicUsize::new(0));
        let fail_prefix = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, f, fp, st) = (
            hits.clone(),
            fail.clone(),
            fail_prefix.clone(),
            stop.clone(),
        );
        thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        let (h, f, fp) = (h.clone(), f.clone(), fp.clone());
                        thread::spawn(move || serve(s, h, f, fp));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hook {
            port,
            hits,
            fail,
            fail_prefix,
            stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next `n` requests to paths starting with `prefix` get HTTP 500.
    pub fn fail_next(&self, prefix: &str, n: usize) {
        *self.fail_prefix.lock().unwrap() = prefix.to_string();
        self.fail.store(n, Ordering::SeqCst);
    }

    pub fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(
    s: TcpStream,
    hits: Arc<Mutex<Vec<Hit>>>,
    fail: Arc<AtomicUsize>,
    fail_prefix: Arc<Mutex<String>>,
) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut r = BufReader::new(match s.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut w = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut headers = String::new();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push_str(&h);
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let failing = path.starts_with(fail_prefix.lock().unwrap().as_str())
            && fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if !failing {
            hits.lock().unwrap().push(Hit {
                path: path.clone(),
                headers,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
        }
        // `{"ok": true}` is also what Slack's chat.postMessage answers
        let (code, text) = if failing {
            (
                "500 Internal Server Error",
                "{\"ok\":false,\"error\":\"boom\"}",
            )
        } else {
            ("200 OK", "{\"ok\":true}")
        };
        let resp = format!(
            "HTTP/1.1 {code}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n{text}",
            text.len()
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------- SMTP

const SMTPD: &str = r#"
import asyncio, json, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, out, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H:
    async def handle_DATA(self, server, session, envelope):
        if mode == 'refuse':
            return '554 5.7.1 refused by policy'
        with open(out, 'a') as f:
            f.write(json.dumps({'from': envelope.mail_from, 'to': envelope.rcpt_tos,
                                'tls': session.ssl is not None,
                                'auth': (session.auth_data.login.decode() if session.auth_data else None),
                                'data': envelope.content.decode('utf8', 'replace')}) + '\n')
        return '250 OK'
def auth(server, session, envelope, mechanism, data):
    ok = data.login == b'alerts' and data.password == b's3cret'
    return AuthResult(success=ok, auth_data=data)
kw = {}
if mode == 'tls':
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    kw = dict(tls_context=ctx, require_starttls=True, authenticator=auth, auth_required=True)
# the default ready_timeout (5 s) is short on a loaded 2-core machine
try:
    c = Controller(H(), hostname='127.0.0.1', port=port, server_hostname='localhost',
                   ready_timeout=60, **kw)
except TypeError:
    c = Controller(H(), hostname='127.0.0.1', port=port, server_hostname='localhost', **kw)
c.start()
print('ready', flush=True)
while True:
    time.sleep(3600)
"#;

/// Debian's aiosmtpd: `accept` (records mails), `refuse` (554 on DATA), `tls` (STARTTLS
/// required, AUTH alerts/s3cret).
pub struct Smtpd {
    pub port: u16,
    child: Option<Child>,
    out: PathBuf,
    pub dir: TempDir,
}

impl Smtpd {
    pub fn start(mode: &str) -> Smtpd {
        let dir = TempDir::new("smtpd");
        let port = free_port();
        let out = dir.join("mails.jsonl");
        let script = dir.join("smtpd.py");
        fs::write(&script, SMTPD).unwrap();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(&out)
            .arg(mode)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(dir.join("smtpd.log")).unwrap());
        if mode == "tls" {
            let (cert, key) = self_signed(&dir);
            cmd.arg(cert).arg(key);
        }
        let mut child = spawn(cmd).expect("spawn aiosmtpd (python3-aiosmtpd)");
        let mut line = String::new();
        let mut out_pipe = BufReader::new(child.stdout.take().unwrap());
        out_pipe.read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start: {}",
            fs::read_to_string(dir.join("smtpd.log")).unwrap_or_default()
        );
        Smtpd {
            port,
            child: Some(child),
            out,
            dir,
        }
    }

    /// The CA that signed the server certificate (`tls` mode).
    pub fn cert(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn mails(&self) -> Vec<Value> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A test CA (`ca.pem`) and a server certificate for localhost / 127.0.0.1 signed by it
/// (openssl CLI); returns (cert, key).
pub fn self_signed(dir: &TempDir) -> (PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=zkscope test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "cert.pem",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("cert.pem"), dir.join("key.pem"))
}

// -------------------------------------------------------------- Alertmanager

/// Debian's prometheus-alertmanager on a free port, notifying `hook_url` (send_resolved).
pub struct Alertmanager {
    pub port: u16,
    child: Option<Child>,
    dir: TempDir,
}

impl Alertmanager {
    pub fn start(hook_url: &str) -> Alertmanager {
        let dir = TempDir::new("am");
        let port = free_port();
        let cfg = format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'path']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: '{hook_url}'\n        send_resolved: true\n"
        );
        fs::write(dir.join("am.yml"), cfg).unwrap();
        fs::create_dir_all(dir.join("data")).unwrap();
        let mut cmd = Command::new("/usr/bin/prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", dir.join("am.yml").display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("am.log")).unwrap());
        let child = spawn(cmd).expect("spawn prometheus-alertmanager");
        let mut am = Alertmanager {
            port,
            child: Some(child),
            dir,
        };
        let ready = wait_for(Duration::from_secs(30), || {
            http_get(port, "/-/ready").filter(|(c, _)| *c == 200)
        });
        if ready.is_none() {
            let log = fs::read_to_string(am.dir.join("am.log")).unwrap_or_default();
            am.kill();
            panic!("Alertmanager not ready:\n{log}");
        }
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Active alerts (Alertmanager's API lists only alerts that have not ended).
    pub fn alerts(&self) -> Vec<Value> {
        get_json(self.port, "/api/v2/alerts")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.kill();
    }
}

// --------------------------------------------------------------------- agents

/// A `zkscope monitor` process.
pub struct Agent {
    pub name: String,
    pub http_port: u16,
    child: Option<Child>,
    log: PathBuf,
    _dir: Arc<TempDir>,
}

impl Agent {
    /// `zkscope monitor --config CONFIG -z ZK --http-port PORT --agent-name NAME EXTRA…`
    pub fn start(name: &str, config: &Path, zk: &str, extra: &[&str]) -> Agent {
        Self::start_env(name, config, zk, extra, &[])
    }

    pub fn start_env(
        name: &str,
        config: &Path,
        zk: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Agent {
        let dir = Arc::new(TempDir::new(&format!("agent-{name}")));
        let port = free_port();
        let log = dir.join("agent.log");
        let mut cmd = Command::new(support::zkscope_bin());
        cmd.arg("monitor")
            .arg("--config")
            .arg(config)
            .args(["-z", zk, "--http-address", "127.0.0.1"])
            .args(["--http-port", &port.to_string(), "--agent-name", name])
            .args(["--level", "debug"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(fs::File::create(&log).unwrap());
        let child = spawn(cmd).expect("spawn zkscope monitor");
        Agent {
            name: name.to_string(),
            http_port: port,
            child: Some(child),
            log,
            _dir: dir,
        }
    }

    pub fn status(&self) -> Option<Value> {
        get_json(self.http_port, "/status")
    }

    pub fn health(&self) -> Option<(u16, Value)> {
        let (c, b) = http_get(self.http_port, "/health")?;
        Some((c, serde_json::from_str(&b).ok()?))
    }

    pub fn metrics(&self) -> String {
        http_get(self.http_port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    /// Waits until /health says connected.
    pub fn wait_healthy(&self, timeout: Duration) {
        let ok = wait_for(timeout, || {
            self.health().filter(|(c, _)| *c == 200).map(|_| ())
        });
        assert!(
            ok.is_some(),
            "agent {} not healthy:\n{}",
            self.name,
            self.log_tail(40)
        );
    }

    pub fn is_leader(&self) -> bool {
        self.status()
            .map(|s| s["cluster"]["is_leader"] == Value::Bool(true))
            .unwrap_or(false)
    }

    /// `alert_state` of a path in /status.
    pub fn alert_state(&self, path: &str) -> Option<String> {
        self.status()?["monitor"]["compliance"][path]["alert_state"]
            .as_str()
            .map(String::from)
    }

    pub fn log_tail(&self, n: usize) -> String {
        support::tail(&fs::read_to_string(&self.log).unwrap_or_default(), n)
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no goodbye, its session lingers until the session timeout.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal with kill(1) (`STOP`, `CONT`, …).
    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("agent running").id();
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("kill(1)");
        assert!(st.success(), "kill -{sig} {pid}");
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        terminate(&mut c, libc::SIGTERM, Duration::from_secs(10))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- agent {} log tail ---\n{}",
                self.name,
                self.log_tail(60)
            );
        }
        self.kill();
    }
}

// ------------------------------------------------------------------ ZooKeeper

/// How long the test's own ZooKeeper writes keep trying: an ensemble may be electing a leader
/// (a member was just stopped), a loaded JVM may be slow to take a session.
const ZK_BUDGET: Duration = Duration::from_secs(60);

/// Runs `f` with a fresh `zookeeper-client` session on `connect` (connecting for up to
/// [`ZK_BUDGET`]).
pub fn zk<T, F, Fut>(connect: &str, f: F) -> T
where
    F: FnOnce(zookeeper_client::Client) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let deadline = Instant::now() + ZK_BUDGET;
        let c = loop {
            match zookeeper_client::Client::connector()
                .with_session_timeout(Duration::from_secs(10))
                .connect(connect)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("[monitor_support] connecting to {connect}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("test client cannot connect to {connect}: {e}"),
            }
        };
        f(c).await
    })
}

/// Errors after which an idempotent write is simply tried again (new session).
fn transient(e: &zookeeper_client::Error) -> bool {
    use zookeeper_client::Error as E;
    matches!(
        e,
        E::ConnectionLoss | E::Timeout | E::SessionExpired | E::ClientClosed
    )
}

/// Runs the idempotent `op` in a fresh session until it succeeds, retrying transient errors
/// for up to [`ZK_BUDGET`].
fn zk_retrying<F, Fut>(connect: &str, what: &str, op: F)
where
    F: Fn(zookeeper_client::Client) -> Fut,
    Fut: std::future::Future<Output = Result<(), zookeeper_client::Error>>,
{
    let deadline = Instant::now() + ZK_BUDGET;
    loop {
        match zk(connect, &op) {
            Ok(()) => return,
            Err(e) if transient(&e) && Instant::now() < deadline => {
                eprintln!("[monitor_support] {what}: {e}; retrying");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

pub fn persistent() -> zookeeper_client::CreateOptions<'static> {
    zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all())
}

/// mkdir -p
pub fn mkdirs(connect: &str, paths: &[&str]) {
    let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
    zk_retrying(connect, &format!("mkdir {paths:?}"), |c| {
        let paths = paths.clone();
        async move {
            for p in paths {
                c.mkdir(&p, &persistent()).await?;
            }
            Ok(())
        }
    })
}

/// Deletes `path` if it exists.
pub fn delete(connect: &str, path: &str) {
    let p = path.to_string();
    zk_retrying(connect, &format!("delete {p}"), |c| {
        let p = p.clone();
        async move {
            match c.delete(&p, None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
}

/// The children of `path` (empty when it does not exist); None when it cannot be read now.
pub fn children(connect: &str, path: &str) -> Option<Vec<String>> {
    let p = path.to_string();
    zk(connect, |c| async move {
        match c.list_children(&p).await {
            Ok(v) => Some(v),
            Err(zookeeper_client::Error::NoNode) => Some(Vec::new()),
            Err(_) => None,
        }
    })
}

/// The incident records under `dir` (`<prefix>/<cluster>/incidents`) as (node name, JSON);
/// None when they cannot be read now.
pub fn incident_records(connect: &str, dir: &str) -> Option<Vec<(String, Value)>> {
    let d = dir.to_string();
    zk(connect, |c| async move {
        let names = match c.list_children(&d).await {
            Ok(n) => n,
            Err(zookeeper_client::Error::NoNode) => return Some(Vec::new()),
            Err(_) => return None,
        };
        let mut out = Vec::new();
        for n in names {
            match c.get_data(&format!("{d}/{n}")).await {
                Ok((data, _)) => out.push((n, serde_json::from_slice(&data).ok()?)),
                Err(zookeeper_client::Error::NoNode) => {}
                Err(_) => return None,
            }
        }
        Some(out)
    })
}

/// True when every notification recorded under `dir` has been confirmed by its targets
/// (empty outboxes), so that a new leader has nothing to re-send, and the records left are
/// exactly those of `paths`.
pub fn incidents_settled(connect: &str, dir: &str, paths: &[&str]) -> bool {
    incident_records(connect, dir).is_some_and(|recs| {
        let mut left: Vec<&str> = recs
            .iter()
            .filter_map(|(_, r)| r["path"].as_str())
            .collect();
        left.sort_unstable();
        let mut want = paths.to_vec();
        want.sort_unstable();
        left == want
            && recs
                .iter()
                .all(|(_, r)| r["outbox"].as_array().is_some_and(|o| o.is_empty()))
    })
}

/// Waits until `f` is true; panics with `what` and the agents' logs.
pub fn eventually(timeout: Duration, what: &str, agents: &[&Agent], mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    if wait_for(timeout, || f().then_some(())).is_none() {
        let logs: Vec<String> = agents
            .iter()
            .map(|a| format!("--- {} ---\n{}", a.name, a.log_tail(40)))
            .collect();
        panic!(
            "timed out after {:?} waiting for: {what}\n{}",
            start.elapsed(),
            logs.join("\n")
        );
    }
}
