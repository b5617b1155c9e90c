//! Test support for zkscope's integration tests.
//!
//! Everything here runs real programs on this machine, on 127.0.0.1 / ::1,
//! with free ports and private temp dirs, so tests can run in parallel:
//!
//! * [`ZkServer`] / [`ZkEnsemble`]: Apache ZooKeeper 3.8 from Debian's
//!   `zookeeper` package (`java -cp … QuorumPeerMain zoo.cfg`).
//! * [`java_cli`]: `org.apache.zookeeper.ZooKeeperMain` fed on stdin.
//! * [`kazoo`]: Python workloads in `tests/workloads/` (venv from
//!   `scripts/install-test-deps.sh`), each printing a JSON manifest.
//! * [`zkclient`]: workloads with the Rust `zookeeper-client` crate.
//! * [`Tcpdump`], [`ZkscopeLive`], [`zkscope`]: captures and the binary.
//! * [`check`]: compares decoded messages against manifests; the JSON field
//!   names of `zkscope dump --format json` that the checks rely on are all in
//!   [`fields`].
//!
//! Processes are killed on `Drop` (also while a test panics), and every child
//! is started with `PR_SET_PDEATHSIG=SIGKILL` from a long-lived spawner
//! thread, so nothing outlives the test binary even when it is killed.
//!
//! Environment knobs: `ZKSCOPE_ZK_CLASSPATH`, `JAVA`, `ZKSCOPE_VENV`,
//! `ZKSCOPE_TCPDUMP`, `ZKSCOPE_KEEP_TMP=1` (keep temp dirs),
//! `ZKSCOPE_ZK_START_TIMEOUT` (seconds, default 60).
#![allow(dead_code)]

pub mod check;
pub mod zkclient;

use serde_json::Value;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ------------------------------------------------------------------ paths

/// The zkscope crate dir (crates/zkscope).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    crate_dir().join("../..").canonicalize().expect("repo root")
}

pub fn workloads_dir() -> PathBuf {
    crate_dir().join("tests/workloads")
}

/// Python interpreter of the venv made by scripts/install-test-deps.sh.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var("ZKSCOPE_VENV").unwrap_or_else(|_| "/opt/zkscope-venv".into());
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} not found: run scripts/install-test-deps.sh",
        py.display()
    );
    py
}

/// Classpath for Debian's ZooKeeper 3.8: zookeeper.jar's manifest pulls in
/// its dependencies (/usr/share/java/*.jar); slf4j-simple makes it log to
/// stderr (which we redirect to a per-server log file).
pub fn zk_classpath() -> String {
    if let Ok(cp) = std::env::var("ZKSCOPE_ZK_CLASSPATH") {
        return cp;
    }
    let jars = [
        "/usr/share/java/zookeeper.jar",
        "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-simple.jar",
    ];
    for j in jars {
        assert!(
            Path::new(j).exists(),
            "{j} not found: run scripts/install-test-deps.sh (Debian package `zookeeper`)"
        );
    }
    jars.join(":")
}

pub fn java() -> String {
    std::env::var("JAVA").unwrap_or_else(|_| "java".into())
}

fn tcpdump_bin() -> String {
    if let Ok(t) = std::env::var("ZKSCOPE_TCPDUMP") {
        return t;
    }
    for p in ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "tcpdump".into()
}

/// The zkscope binary built by cargo for this test run.
pub fn zkscope_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zkscope"))
}

// --------------------------------------------------------------- temp dirs

/// A temp dir removed on drop (kept when the thread panics or
/// `ZKSCOPE_KEEP_TMP=1`, and its path printed, to help debugging).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir().join("zkscope-tests");
        fs::create_dir_all(&base).expect("create temp base");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!(
            "{label}-{}-{}-{nanos:x}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.path.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() || std::env::var_os("ZKSCOPE_KEEP_TMP").is_some() {
            eprintln!("[support] keeping {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ------------------------------------------------------------------ ports

/// A TCP port free on both 127.0.0.1 and the dual-stack wildcard, never
/// handed out twice by this process. It is taken below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`): a port from that range
/// (what binding port 0 gives) can be handed to some outgoing connection
/// between the moment it is picked and the moment the server binds it.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    let ephemeral_low = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (lo, hi) = if ephemeral_low > 12_000 {
        (10_000u32, u32::from(ephemeral_low))
    } else {
        (
            u32::from(ephemeral_low).saturating_sub(2_000).max(1_024),
            u32::from(ephemeral_low),
        )
    };
    // a per-process start so that test binaries run side by side spread out
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = (std::process::id().wrapping_mul(2_654_435_761) ^ nanos) | 1;
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = (lo + x % (hi - lo)) as u16;
        if used.lock().unwrap().contains(&port) {
            continue;
        }
        let free = (TcpListener::bind(("::", port)).is_ok()
            || TcpListener::bind(("0.0.0.0", port)).is_ok())
            && TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free && used.lock().unwrap().insert(port) {
            return port;
        }
    }
    panic!("could not find a free port");
}

// -------------------------------------------------------------- processes

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from a dedicated thread that lives as long as the process,
/// with PR_SET_PDEATHSIG=SIGKILL: children die with the test binary, even
/// when it is killed (the death signal is tied to the spawning *thread*,
/// hence the dedicated thread).
pub fn spawn(mut cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("zkscope-test-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let parent = std::process::id() as libc::pid_t;
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let (rtx, rrx) = mpsc::channel();
    tx.lock().unwrap().send((cmd, rtx)).expect("spawner alive");
    rrx.recv().expect("spawner reply")
}

fn signal(child: &Child, sig: libc::c_int) {
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Waits up to `timeout` for the child; returns its status if it exited.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM (or `sig`), wait up to `grace`, then SIGKILL; always reaps.
pub fn terminate(child: &mut Child, sig: libc::c_int, grace: Duration) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child, sig);
    if let Some(st) = wait_timeout(child, grace) {
        return Some(st);
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Runs `cmd` to completion with a timeout (killed after it), collecting
/// stdout/stderr; stdin gets `input` then EOF.
pub fn run_with_timeout(mut cmd: Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = spawn(cmd).unwrap_or_else(|e| panic!("spawn {desc}: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = read_to_end_thread(child.stdout.take().unwrap());
    let err = read_to_end_thread(child.stderr.take().unwrap());
    let status = match wait_timeout(&mut child, timeout) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&err.join().unwrap()).into_owned();
            panic!(
                "timed out after {timeout:?}: {desc}\nstderr:\n{}",
                tail(&stderr, 40)
            );
        }
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn read_to_end_thread<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Polls `f` every 50 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// --------------------------------------------------------- four letter words

/// Sends a four-letter word to `addr` ("127.0.0.1:2181", "[::1]:2181") and
/// returns the whole reply.
pub fn four_letter(addr: &str, cmd: &str) -> io::Result<String> {
    let sa: SocketAddr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("no address"))?;
    let mut s = TcpStream::connect_timeout(&sa, Duration::from_millis(1000))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(cmd.as_bytes())?;
    let _ = s.shutdown(Shutdown::Write);
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

// --------------------------------------------------------------- ZooKeeper

/// Options for [`ZkServer`] / [`ZkEnsemble`].
#[derive(Clone, Debug)]
pub struct ZkOpts {
    /// Extra zoo.cfg lines, e.g. "extendedTypesEnabled=true".
    pub extra_cfg: Vec<String>,
    pub tick_time_ms: u32,
    pub heap_mb: u32,
    pub start_timeout: Duration,
    pub jvm_args: Vec<String>,
    /// Standalone only: use this client port instead of a free one (e.g.
    /// 2181 for fixtures that should decode without --port).
    pub client_port: Option<u16>,
}

impl Default for ZkOpts {
    fn default() -> Self {
        let secs = std::env::var("ZKSCOPE_ZK_START_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        ZkOpts {
            extra_cfg: Vec::new(),
            tick_time_ms: 2000,
            heap_mb: 128,
            start_timeout: Duration::from_secs(secs),
            jvm_args: Vec::new(),
            client_port: None,
        }
    }
}

impl ZkOpts {
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds a zoo.cfg line ("key=value").
    pub fn cfg(mut self, line: &str) -> Self {
        self.extra_cfg.push(line.to_string());
        self
    }
    /// TTL nodes need `extendedTypesEnabled=true`.
    pub fn extended_types(self) -> Self {
        self.cfg("extendedTypesEnabled=true")
    }
    pub fn reconfig_enabled(self) -> Self {
        self.cfg("reconfigEnabled=true")
    }
    pub fn standalone_enabled(self, on: bool) -> Self {
        self.cfg(&format!("standaloneEnabled={on}"))
    }
    pub fn client_port(mut self, port: u16) -> Self {
        self.client_port = Some(port);
        self
    }
    /// Netty on the boot class path: Debian's zookeeper.jar manifest lacks netty-codec and
    /// netty-resolver, which the Netty server and the quorum's TLS listeners
    /// (`UnifiedServerSocket` detects TLS with Netty's `SslHandler`) need.
    pub fn netty_boot_classpath(mut self) -> Self {
        let netty: Vec<String> = [
            "buffer",
            "codec",
            "common",
            "handler",
            "resolver",
            "transport",
            "transport-native-epoll",
            "transport-native-unix-common",
        ]
        .iter()
        .map(|j| format!("/usr/share/java/netty-{j}.jar"))
        .collect();
        self.jvm_args
            .push(format!("-Xbootclasspath/a:{}", netty.join(":")));
        self
    }
    /// Quorum TLS for every member ([`quorum_tls_cfg`], stores written to `dir`). A member's
    /// own line (`EnsembleBuilder::member_cfg(id, "sslQuorum=false")`) comes later in its
    /// zoo.cfg and wins.
    pub fn quorum_tls(mut self, dir: &Path) -> Self {
        for l in quorum_tls_cfg(dir) {
            self = self.cfg(&l);
        }
        self.netty_boot_classpath()
    }
    pub fn tick_time(mut self, ms: u32) -> Self {
        self.tick_time_ms = ms;
        self
    }
}

/// One ZooKeeper JVM (standalone, or a member of a [`ZkEnsemble`]).
pub struct ZkServer {
    name: String,
    dir: TempDir,
    cfg_path: PathBuf,
    log_path: PathBuf,
    client_port: u16,
    quorum_port: Option<u16>,
    election_port: Option<u16>,
    myid: Option<u32>,
    opts: ZkOpts,
    child: Option<Child>,
    starts: u32,
    /// The address tests reach it on ("127.0.0.1" unless the ensemble listens elsewhere).
    connect_host: String,
    /// A member configured as `peerType=observer`.
    observer: bool,
}

/// A host as it goes before `:port`: IPv6 addresses bracketed.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn base_cfg(opts: &ZkOpts, data_dir: &Path) -> String {
    let mut cfg = format!(
        "tickTime={}\ninitLimit=10\nsyncLimit=5\ndataDir={}\nadmin.enableServer=false\n\
         4lw.commands.whitelist=*\nmaxClientCnxns=0\n",
        opts.tick_time_ms,
        data_dir.display()
    );
    for l in &opts.extra_cfg {
        cfg.push_str(l);
        cfg.push('\n');
    }
    cfg
}

impl ZkServer {
    /// Starts a standalone server on a free client port (bound on the
    /// wildcard address, so both 127.0.0.1 and ::1 work) and waits until it
    /// answers `srvr` with a Mode line.
    pub fn standalone(opts: ZkOpts) -> ZkServer {
        let mut last_log = String::new();
        for attempt in 0..3 {
            let dir = TempDir::new("zk");
            let data = dir.join("data");
            fs::create_dir_all(&data).unwrap();
            let port = opts.client_port.unwrap_or_else(free_port);
            let mut cfg = base_cfg(&opts, &data);
            cfg.push_str(&format!("clientPort={port}\n"));
            let cfg_path = dir.join("zoo.cfg");
            fs::write(&cfg_path, cfg).unwrap();
            let mut zk = ZkServer {
                name: "zk-standalone".into(),
                log_path: dir.join("zookeeper.log"),
                dir,
                cfg_path,
                client_port: port,
                quorum_port: None,
                election_port: None,
                myid: None,
                opts: opts.clone(),
                child: None,
                starts: 0,
                connect_host: "127.0.0.1".into(),
                observer: false,
            };
            zk.spawn();
            match zk.try_wait_ready(&["standalone"], zk.opts.start_timeout) {
                Ok(()) => return zk,
                Err(e) => {
                    last_log = format!("{e}\n{}", zk.log_tail(60));
                    // port raced away? retry with new ports
                    if last_log.contains("Address already in use") && attempt < 2 {
                        continue;
                    }
                    break;
                }
            }
        }
        panic!("ZooKeeper standalone did not start:\n{last_log}");
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open zk log");
        writeln!(
            log,
            "===== [support] start #{} of {} =====",
            self.starts, self.name
        )
        .unwrap();
        let log2 = log.try_clone().unwrap();
        let mut cmd = Command::new(java());
        cmd.arg(format!("-Xmx{}m", self.opts.heap_mb))
            .args([
                "-Xms32m",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Djava.awt.headless=true",
                "-Dzookeeper.admin.enableServer=false",
                // no container/TTL reaping mid-test (first run 60 s after start): workloads
                // delete their own container and TTL nodes and expect OK
                "-Dznode.container.checkIntervalMs=3600000",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
            ])
            .arg(format!("-Dzookeeper.log.dir={}", self.dir.path().display()))
            .args(&self.opts.jvm_args)
            .arg("-cp")
            .arg(zk_classpath())
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&self.cfg_path)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        let child = spawn(cmd).unwrap_or_else(|e| panic!("spawn java ({}): {e}", java()));
        self.child = Some(child);
    }

    fn try_wait_ready(&mut self, modes: &[&str], timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr = self.addr();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(st)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("{} exited early ({st})", self.name));
                }
            } else {
                return Err(format!("{} is not running", self.name));
            }
            if let Ok(reply) = four_letter(&addr, "srvr") {
                if let Some(mode) = reply.lines().find_map(|l| l.strip_prefix("Mode: ")) {
                    if modes.iter().any(|m| *m == mode.trim()) {
                        return Ok(());
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} not ready (srvr Mode in {modes:?}) after {timeout:?} on {addr}",
                    self.name
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `srvr` reports one of `modes`; panics with the log tail.
    pub fn wait_ready(&mut self, modes: &[&str]) {
        let t = self.opts.start_timeout;
        if let Err(e) = self.try_wait_ready(modes, t) {
            panic!("{e}\n--- {} log tail ---\n{}", self.name, self.log_tail(60));
        }
    }

    fn ready_modes(&self) -> &'static [&'static str] {
        if self.myid.is_some() {
            &["leader", "follower", "observer"]
        } else {
            &["standalone"]
        }
    }

    pub fn client_port(&self) -> u16 {
        self.client_port
    }
    pub fn quorum_port(&self) -> Option<u16> {
        self.quorum_port
    }
    pub fn election_port(&self) -> Option<u16> {
        self.election_port
    }
    pub fn myid(&self) -> Option<u32> {
        self.myid
    }
    /// "127.0.0.1:PORT" (the member's client address when its ensemble listens elsewhere,
    /// e.g. "[::1]:PORT").
    pub fn addr(&self) -> String {
        format!("{}:{}", bracket(&self.connect_host), self.client_port)
    }
    /// True for an observer (`peerType=observer`).
    pub fn is_observer(&self) -> bool {
        self.observer
    }
    /// The zoo.cfg it runs with.
    pub fn cfg_path(&self) -> &Path {
        &self.cfg_path
    }
    /// "[::1]:PORT"
    pub fn addr_v6(&self) -> String {
        format!("[::1]:{}", self.client_port)
    }
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Last `n` lines of this server's log (all its starts).
    pub fn log_tail(&self, n: usize) -> String {
        fs::read_to_string(&self.log_path)
            .map(|s| tail(&s, n))
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// Sends a four-letter word to this server over 127.0.0.1.
    pub fn four_letter(&self, cmd: &str) -> io::Result<String> {
        four_letter(&self.addr(), cmd)
    }

    /// The last transaction it applied (`srvr`'s "Zxid:"), while it serves.
    pub fn zxid(&self) -> Option<u64> {
        let reply = self.four_letter("srvr").ok()?;
        let hex = reply.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
        u64::from_str_radix(hex.trim(), 16).ok()
    }

    /// "standalone" / "leader" / "follower" / … from `srvr`, if it serves.
    pub fn mode(&self) -> Option<String> {
        let r = self.four_letter("srvr").ok()?;
        r.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// Graceful stop: SIGTERM, up to 10 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, libc::SIGTERM, Duration::from_secs(10));
        }
    }

    /// SIGKILL (crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a stopped/killed server again on the same ports and data dir
    /// and waits until it serves.
    pub fn start(&mut self) {
        self.spawn();
        let modes = self.ready_modes();
        self.wait_ready(modes);
    }

    /// Starts again without waiting (ensemble members wait for a quorum).
    pub fn start_no_wait(&mut self) {
        self.spawn();
    }

    /// stop() + start(): same ports, same data; sessions survive if the
    /// client reconnects within its session timeout.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- {} ({}) log tail ---\n{}",
                self.name,
                self.addr(),
                self.log_tail(30)
            );
        }
        self.kill();
    }
}

/// A ZooKeeper ensemble of participants on 127.0.0.1, ports all free.
pub struct ZkEnsemble {
    pub servers: Vec<ZkServer>,
    opts: ZkOpts,
}

/// Builds a [`ZkEnsemble`]: `participants` voting members then `observers` observers
/// (`peerType=observer` in their zoo.cfg, `server.N=…:observer` in everyone's), all on free
/// ports, the server lines naming `host` (an IP literal or a host name; IPv6 bracketed
/// automatically).
#[derive(Clone, Debug)]
pub struct EnsembleBuilder {
    participants: usize,
    observers: usize,
    host: String,
    client_host: Option<String>,
    connect_host: String,
    opts: ZkOpts,
    member_cfg: Vec<(u32, String)>,
    member_host: Vec<(u32, String)>,
}

impl EnsembleBuilder {
    pub fn new(participants: usize) -> Self {
        EnsembleBuilder {
            participants,
            observers: 0,
            host: "127.0.0.1".into(),
            client_host: None,
            connect_host: "127.0.0.1".into(),
            opts: ZkOpts::new(),
            member_cfg: Vec::new(),
            member_host: Vec::new(),
        }
    }
    pub fn opts(mut self, opts: ZkOpts) -> Self {
        self.opts = opts;
        self
    }
    /// Observers after the participants (myids `participants+1…`).
    pub fn observers(mut self, n: usize) -> Self {
        self.observers = n;
        self
    }
    /// The host the server lines name for the quorum and election addresses ("localhost",
    /// "::1", …); tests keep reaching the members on 127.0.0.1 unless [`Self::connect_host`].
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.into();
        self
    }
    /// The client address of the server lines (`;host:port`); by default `;port` (wildcard).
    pub fn client_host(mut self, host: &str) -> Self {
        self.client_host = Some(host.into());
        self
    }
    /// Where tests reach the members' client ports (`srvr`, clients).
    pub fn connect_host(mut self, host: &str) -> Self {
        self.connect_host = host.into();
        self
    }
    /// Everything on the IPv6 loopback: `server.N=[::1]:q:e:role;[::1]:c`.
    pub fn ipv6(self) -> Self {
        self.host("::1").client_host("::1").connect_host("::1")
    }
    /// The host member `id`'s server line names (instead of [`Self::host`]).
    pub fn member_host(mut self, id: u32, host: &str) -> Self {
        self.member_host.push((id, host.into()));
        self
    }
    /// An extra zoo.cfg line for member `id` only.
    pub fn member_cfg(mut self, id: u32, line: &str) -> Self {
        self.member_cfg.push((id, line.into()));
        self
    }

    /// Writes the configs, starts every member and waits until all serve.
    pub fn start(self) -> ZkEnsemble {
        let n = self.participants + self.observers;
        assert!(n >= 1);
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut servers_lines = String::new();
        for (i, (c, q, e)) in ports.iter().enumerate() {
            let id = (i + 1) as u32;
            let host = self
                .member_host
                .iter()
                .find(|(m, _)| *m == id)
                .map_or(&self.host, |(_, h)| h);
            let host = bracket(host);
            let role = if i < self.participants {
                "participant"
            } else {
                "observer"
            };
            let client = match &self.client_host {
                Some(h) => format!("{}:{c}", bracket(h)),
                None => c.to_string(),
            };
            servers_lines.push_str(&format!("server.{id}={host}:{q}:{e}:{role};{client}\n"));
        }
        let mut servers = Vec::new();
        for (i, (c, q, e)) in ports.iter().enumerate() {
            let id = (i + 1) as u32;
            let observer = i >= self.participants;
            let dir = TempDir::new(&format!("zk{id}"));
            let data = dir.join("data");
            fs::create_dir_all(&data).unwrap();
            fs::write(data.join("myid"), format!("{id}\n")).unwrap();
            let mut cfg = base_cfg(&self.opts, &data);
            if observer {
                cfg.push_str("peerType=observer\n");
            }
            for (_, line) in self.member_cfg.iter().filter(|(m, _)| *m == id) {
                cfg.push_str(line);
                cfg.push('\n');
            }
            cfg.push_str(&servers_lines);
            let cfg_path = dir.join("zoo.cfg");
            fs::write(&cfg_path, cfg).unwrap();
            servers.push(ZkServer {
                name: format!("zk{id}"),
                log_path: dir.join("zookeeper.log"),
                dir,
                cfg_path,
                client_port: *c,
                quorum_port: Some(*q),
                election_port: Some(*e),
                myid: Some(id),
                opts: self.opts.clone(),
                child: None,
                starts: 0,
                connect_host: self.connect_host.clone(),
                observer,
            });
        }
        for s in servers.iter_mut() {
            s.spawn();
        }
        let mut ens = ZkEnsemble {
            servers,
            opts: self.opts,
        };
        ens.wait_ready();
        ens
    }
}

impl ZkEnsemble {
    /// Starts `n` participants (`server.N=127.0.0.1:quorum:election:participant;clientPort`)
    /// and waits until all serve (one leader, the others followers).
    pub fn start(n: usize, opts: ZkOpts) -> ZkEnsemble {
        EnsembleBuilder::new(n).opts(opts).start()
    }

    /// A builder for other shapes: observers, host names, IPv6, per-member settings.
    pub fn builder(participants: usize) -> EnsembleBuilder {
        EnsembleBuilder::new(participants)
    }

    /// Waits until every running member serves as leader/follower/observer.
    pub fn wait_ready(&mut self) {
        for s in self.servers.iter_mut() {
            if s.child.is_some() {
                s.wait_ready(&["leader", "follower", "observer"]);
            }
        }
    }

    /// Server by myid (1-based).
    /// Waits until every member has applied everything member `via` had applied when
    /// called (`srvr`'s "Zxid:" only grows). A learner applies a transaction when its COMMIT
    /// (an observer: INFORM; a reconfig: COMMITANDACTIVATE) arrives, so after a client's
    /// writes through `via` every member has had them: they are in the capture, none left
    /// in the leader's send queues (the client's server answered after its own copy only).
    pub fn wait_synced(&self, via: u32, timeout: Duration) {
        let target = wait_for(timeout, || self.server(via).zxid())
            .unwrap_or_else(|| panic!("member {via} does not serve"));
        let mut last = Vec::new();
        let ok = wait_for(timeout, || {
            last = self.servers.iter().map(ZkServer::zxid).collect::<Vec<_>>();
            last.iter()
                .all(|z| z.is_some_and(|z| z >= target))
                .then_some(())
        });
        assert!(
            ok.is_some(),
            "members behind member {via} (zxid {target:#x}): {last:x?}"
        );
    }

    pub fn server(&self, id: u32) -> &ZkServer {
        &self.servers[(id - 1) as usize]
    }
    pub fn server_mut(&mut self, id: u32) -> &mut ZkServer {
        &mut self.servers[(id - 1) as usize]
    }
    pub fn client_ports(&self) -> Vec<u16> {
        self.servers.iter().map(|s| s.client_port).collect()
    }
    /// "127.0.0.1:a,127.0.0.1:b,127.0.0.1:c"
    pub fn connect_string(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.addr())
            .collect::<Vec<_>>()
            .join(",")
    }
    /// myid of the member whose `srvr` says "Mode: leader".
    pub fn leader_id(&self) -> Option<u32> {
        self.servers
            .iter()
            .find(|s| s.mode().as_deref() == Some("leader"))
            .and_then(|s| s.myid)
    }
    /// Polls until some member is leader.
    pub fn wait_leader(&self, timeout: Duration) -> u32 {
        wait_for(timeout, || self.leader_id()).unwrap_or_else(|| {
            let logs: Vec<String> = self
                .servers
                .iter()
                .map(|s| format!("--- {} ---\n{}", s.name, s.log_tail(20)))
                .collect();
            panic!("no leader after {timeout:?}\n{}", logs.join("\n"))
        })
    }
    pub fn stop(&mut self, id: u32) {
        self.server_mut(id).stop()
    }
    pub fn kill(&mut self, id: u32) {
        self.server_mut(id).kill()
    }
    /// Restarts one member and waits until it serves again.
    pub fn restart(&mut self, id: u32) {
        self.server_mut(id).restart()
    }
    pub fn start_member(&mut self, id: u32) {
        self.server_mut(id).start()
    }
}

/// The JDK's `keytool` next to the `java` the harness runs (`JAVA`, else `java` on PATH,
/// symlinks followed).
pub fn keytool() -> PathBuf {
    let java = java();
    let java = if java.contains('/') {
        PathBuf::from(java)
    } else {
        std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(&java))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from(&java))
    };
    let real = java.canonicalize().unwrap_or(java);
    let kt = real.with_file_name("keytool");
    assert!(kt.exists(), "no keytool next to {}", real.display());
    kt
}

/// Generates, with `keytool`, a PKCS12 keystore holding one self-signed key (SAN
/// 127.0.0.1, ::1, localhost) and a truststore trusting it, in `dir`; returns the zoo.cfg
/// lines for quorum TLS (`sslQuorum=true` and `ssl.quorum.*`). Every member can share them.
/// See [`ZkOpts::quorum_tls`] for the class path the TLS listeners need.
pub fn quorum_tls_cfg(dir: &Path) -> Vec<String> {
    let ks = dir.join("quorum-keystore.p12");
    let ts = dir.join("quorum-truststore.p12");
    let cert = dir.join("quorum.cer");
    let pass = "zkscope-test";
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let (ks_s, ts_s, cert_s) = (p(&ks), p(&ts), p(&cert));
    // keytool ARGS on the PKCS12 store `store`
    let run = |store: &str, args: &[&str]| {
        let mut cmd = Command::new(keytool());
        cmd.args(args).args([
            "-keystore",
            store,
            "-storetype",
            "PKCS12",
            "-storepass",
            pass,
        ]);
        let out = run_with_timeout(cmd, None, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "keytool {args:?} on {store}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        &ks_s,
        &[
            "-genkeypair",
            "-alias",
            "zk",
            "-keyalg",
            "EC",
            "-groupname",
            "secp256r1",
            "-validity",
            "30",
            "-dname",
            "CN=localhost",
            "-ext",
            "SAN=ip:127.0.0.1,ip:::1,dns:localhost",
            "-keypass",
            pass,
        ],
    );
    run(&ks_s, &["-exportcert", "-alias", "zk", "-file", &cert_s]);
    run(
        &ts_s,
        &["-importcert", "-noprompt", "-alias", "zk", "-file", &cert_s],
    );
    vec![
        "sslQuorum=true".into(),
        format!("ssl.quorum.keyStore.location={ks_s}"),
        format!("ssl.quorum.keyStore.password={pass}"),
        "ssl.quorum.keyStore.type=PKCS12".into(),
        format!("ssl.quorum.trustStore.location={ts_s}"),
        format!("ssl.quorum.trustStore.password={pass}"),
        "ssl.quorum.trustStore.type=PKCS12".into(),
    ]
}

// ---------------------------------------------------------------- Java CLI

#[derive(Debug)]
pub struct CliOutput {
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    /// "0x…" parsed from the client's "session id = 0x…" log line.
    pub session: Option<String>,
}

/// Runs `org.apache.zookeeper.ZooKeeperMain -server SERVER` in one JVM with
/// `commands` fed on stdin (non-interactive; JLine is off without a tty),
/// followed by `quit` (closeSession).
pub fn java_cli(server: &str, commands: &[&str]) -> CliOutput {
    let mut input = String::new();
    for c in commands {
        input.push_str(c);
        input.push('\n');
    }
    input.push_str("quit\n");
    let mut cmd = Command::new(java());
    cmd.args([
        "-Xmx128m",
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
        "-Dzookeeper.jmx.log4j.disable=true",
    ])
    .arg("-cp")
    .arg(zk_classpath())
    .arg("org.apache.zookeeper.ZooKeeperMain")
    .arg("-server")
    .arg(server);
    let out = run_with_timeout(cmd, Some(input.as_bytes()), Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let session = stderr.lines().find_map(|l| {
        let i = l.find("session id = 0x")?;
        let rest = &l[i + "session id = ".len()..];
        let hex: String = rest
            .chars()
            .skip(2)
            .take_while(|c| c.is_ascii_hexdigit())
            .collect();
        u64::from_str_radix(&hex, 16)
            .ok()
            .map(|v| format!("0x{v:x}"))
    });
    CliOutput {
        stdout,
        stderr,
        status: out.status,
        session,
    }
}

/// A fixed Java CLI sequence under `prefix` and its manifest (same format
/// as the kazoo workloads). Opcodes are those the 3.8 CLI really sends
/// (checked against a capture): plain `create` → create, `-t` → createTTL,
/// `-c` → createContainer, `ls` → getChildren2, `get` → getData.
/// The server needs `extendedTypesEnabled=true` for the TTL node.
pub fn java_cli_workload(server: &str, prefix: &str) -> Value {
    let p = prefix;
    let steps: Vec<(String, &str, String, &str)> = vec![
        // (command, op, path, expect_err)
        (format!("create {p} top"), "create", p.into(), "OK"),
        (
            format!("create {p} again"),
            "create",
            p.into(),
            "NODEEXISTS",
        ),
        (format!("get {p}"), "getData", p.into(), "OK"),
        (format!("set {p} newdata"), "setData", p.into(), "OK"),
        (
            format!("set -v 42 {p} bad"),
            "setData",
            p.into(),
            "BADVERSION",
        ),
        (
            format!("create {p}/child c"),
            "create",
            format!("{p}/child"),
            "OK",
        ),
        (format!("ls {p}"), "getChildren2", p.into(), "OK"),
        (
            format!("get {p}/missing"),
            "getData",
            format!("{p}/missing"),
            "NONODE",
        ),
        (
            format!("create -t 60000 {p}/ttl t"),
            "createTTL",
            format!("{p}/ttl"),
            "OK",
        ),
        (
            format!("create -c {p}/cont c"),
            "createContainer",
            format!("{p}/cont"),
            "OK",
        ),
        (
            format!("addWatch -m PERSISTENT_RECURSIVE {p}"),
            "addWatch",
            p.into(),
            "OK",
        ),
        (format!("delete {p}"), "delete", p.into(), "NOTEMPTY"),
        (
            format!("delete {p}/child"),
            "delete",
            format!("{p}/child"),
            "OK",
        ),
        (
            format!("delete {p}/ttl"),
            "delete",
            format!("{p}/ttl"),
            "OK",
        ),
        (
            format!("delete {p}/cont"),
            "delete",
            format!("{p}/cont"),
            "OK",
        ),
        (format!("delete {p}"), "delete", p.into(), "OK"),
    ];
    let cmds: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    let out = java_cli(server, &cmds);
    assert!(
        out.status.success(),
        "java CLI failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        tail(&out.stderr, 40)
    );
    let session = out
        .session
        .clone()
        .unwrap_or_else(|| panic!("no session id in java CLI log:\n{}", tail(&out.stderr, 40)));
    let mut ops: Vec<Value> = steps
        .iter()
        .map(|(c, op, path, e)| {
            serde_json::json!({"op": op, "path": path, "expect_err": e, "cli": c})
        })
        .collect();
    // the watch registered by addWatch fires for the deletes below it
    let events = serde_json::json!([
        {"path": format!("{p}/child"), "event_type": "NodeDeleted"},
        {"path": p, "event_type": "NodeDeleted"},
    ]);
    ops.push(serde_json::json!({"op": "closeSession", "path": null, "expect_err": "OK"}));
    let sess = serde_json::json!({
        "label": "java-cli", "session": session, "host": "127.0.0.1",
        "ops": ops, "events": events,
    });
    serde_json::json!({
        "workload": "java-cli",
        "session": session,
        "ops": sess["ops"].clone(),
        "sessions": [sess],
        "cli_stdout": out.stdout,
    })
}

// ------------------------------------------------------------------ kazoo

/// Runs `tests/workloads/<script>` with the venv's python and returns the
/// JSON manifest it prints on stdout; panics (with stderr) if it fails.
pub fn kazoo(script: &str, args: &[&str]) -> Value {
    let path = workloads_dir().join(script);
    assert!(path.exists(), "no workload {}", path.display());
    let mut cmd = Command::new(venv_python());
    cmd.arg(&path)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    let out = run_with_timeout(cmd, None, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let manifest: Option<Value> = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok());
    match (out.status.success(), manifest) {
        (true, Some(m)) => m,
        (ok, m) => panic!(
            "workload {script} {args:?} failed (success={ok}, {}):\nmanifest: {}\nstderr:\n{}",
            out.status,
            m.map(|m| m.to_string()).unwrap_or_else(|| "none".into()),
            tail(&stderr, 40)
        ),
    }
}

// ---------------------------------------------------------------- tcpdump

/// What tcpdump reported when it stopped.
#[derive(Debug, Clone, Default)]
pub struct CaptureStats {
    pub captured: Option<u64>,
    pub received: Option<u64>,
    pub dropped: Option<u64>,
    pub stderr: String,
}

/// A running `tcpdump -w FILE`.
pub struct Tcpdump {
    child: Option<Child>,
    path: PathBuf,
    stderr: Option<JoinHandle<String>>,
    /// UDP port of the end-of-capture marker (see [`Tcpdump::start`]).
    marker_port: Option<u16>,
}

impl Tcpdump {
    /// `tcpdump -i IFACE -U --immediate-mode -B 65536 -s 0 -Z root -w PATH FILTER`;
    /// returns once tcpdump printed "listening on" (the capture is live).
    /// A big kernel buffer (-B, KiB) and immediate mode are needed: large
    /// znodes on lo (64 KiB frames) otherwise overflow the default 2 MiB
    /// ring and tcpdump reports "packets dropped by kernel".
    ///
    /// On `lo` the filter also takes UDP datagrams to one free port: `stop` sends a
    /// random marker there and waits until it is in the file, so that everything sent
    /// before the stop is in the file too, however far behind tcpdump was (it does not
    /// drain the kernel buffer on SIGINT). Decoders count the datagram as "not TCP".
    pub fn start(iface: &str, filter: &str, path: impl AsRef<Path>) -> Tcpdump {
        if iface == "lo" {
            let port = free_port();
            let f = format!("({filter}) or (udp and dst port {port})");
            let mut t = Self::start_with(iface, &f, path, &[]);
            t.marker_port = Some(port);
            t
        } else {
            Self::start_with(iface, filter, path, &[])
        }
    }

    /// Like [`Tcpdump::start`] with extra tcpdump arguments and no end marker (shipped
    /// fixtures are recorded with it).
    pub fn start_with(
        iface: &str,
        filter: &str,
        path: impl AsRef<Path>,
        extra: &[&str],
    ) -> Tcpdump {
        let path = path.as_ref().to_path_buf();
        let mut cmd = Command::new(tcpdump_bin());
        cmd.args([
            "-i",
            iface,
            "-U",
            "--immediate-mode",
            "-B",
            "65536",
            "-s",
            "0",
        ])
        .args(["-Z", "root", "-n", "-w"])
        .arg(&path)
        .args(extra)
        .arg(filter)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = spawn(cmd).unwrap_or_else(|e| panic!("spawn tcpdump: {e}"));
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().unwrap();
        let h = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = String::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if line.contains("listening on") {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    panic!("tcpdump exited before capturing:\n{seen}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("tcpdump not listening after 30 s:\n{seen}");
            }
        }
        thread::sleep(Duration::from_millis(100));
        Tcpdump {
            child: Some(child),
            path,
            stderr: Some(h),
            marker_port: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until the file stops growing (tcpdump drained the kernel
    /// buffer), then SIGINT; returns the file path.
    pub fn stop(self) -> PathBuf {
        self.stop_with_stats().0
    }

    pub fn stop_with_stats(mut self) -> (PathBuf, CaptureStats) {
        // -U writes every packet as it comes: a second without growth means tcpdump has
        // caught up (a CPU-starved tcpdump can pause longer than a few hundred ms)
        settle_file(&self.path, Duration::from_secs(1), Duration::from_secs(20));
        if let Some(port) = self.marker_port {
            wait_for_marker(&self.path, port);
        }
        let mut child = self.child.take().unwrap();
        terminate(&mut child, libc::SIGINT, Duration::from_secs(10));
        let stderr = self.stderr.take().unwrap().join().unwrap_or_default();
        let num = |suffix: &str| -> Option<u64> {
            stderr
                .lines()
                .find(|l| l.ends_with(suffix))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        };
        let stats = CaptureStats {
            captured: num("packets captured"),
            received: num("packets received by filter"),
            dropped: num("packets dropped by kernel"),
            stderr,
        };
        (self.path.clone(), stats)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, libc::SIGINT, Duration::from_secs(2));
        }
    }
}

/// Sends a random marker in a UDP datagram to 127.0.0.1:`port` (again every 2 s) until
/// it shows in the capture file `path`, at most 60 s.
fn wait_for_marker(path: &Path, port: u16) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let marker = format!("zkscope-test-end-marker-{}-{nanos:x}", std::process::id());
    let Ok(sock) = std::net::UdpSocket::bind("127.0.0.1:0") else {
        eprintln!("[support] no UDP socket for the capture end marker");
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sent_at: Option<Instant> = None;
    while Instant::now() < deadline {
        if sent_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(2)) {
            let _ = sock.send_to(marker.as_bytes(), ("127.0.0.1", port));
            sent_at = Some(Instant::now());
        }
        thread::sleep(Duration::from_millis(50));
        let data = fs::read(path).unwrap_or_default();
        if data.windows(marker.len()).any(|w| w == marker.as_bytes()) {
            return;
        }
    }
    eprintln!(
        "[support] the capture end marker did not reach {} in 60 s",
        path.display()
    );
}

/// Waits until `path`'s size has not changed for `quiet` (at most `max`).
fn settle_file(path: &Path, quiet: Duration, max: Duration) {
    let deadline = Instant::now() + max;
    let size = || fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut last = size();
    let mut since = Instant::now();
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
        let s = size();
        if s != last {
            last = s;
            since = Instant::now();
        } else if since.elapsed() >= quiet {
            return;
        }
    }
}

// ---------------------------------------------------------------- zkscope

/// Runs the zkscope binary with `args` (e.g. `["dump", "-r", f, "--format", "json"]`).
pub fn zkscope(args: &[&str]) -> Output {
    let mut cmd = Command::new(zkscope_bin());
    cmd.args(args);
    run_with_timeout(cmd, None, Duration::from_secs(120))
}

/// Result of parsing zkscope's JSON-lines stdout.
#[derive(Debug, Default)]
pub struct Decoded {
    pub messages: Vec<Value>,
    /// Non-empty stdout lines that are not JSON objects.
    pub bad_lines: Vec<String>,
    pub stderr: String,
    pub success: bool,
}

pub fn parse_json_lines(stdout: &str) -> (Vec<Value>, Vec<String>) {
    let mut msgs = Vec::new();
    let mut bad = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.is_object() => msgs.push(v),
            _ => bad.push(line.to_string()),
        }
    }
    (msgs, bad)
}

/// A string field of a decoded message ("" when missing or not a string).
pub fn s<'a>(m: &'a Value, k: &str) -> &'a str {
    m.get(k).and_then(Value::as_str).unwrap_or("")
}

/// The port of an "addr:port" / "[v6]:port" field (0 when there is none).
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// `zkscope dump -r FILE --format json [extra…]`, parsed.
pub fn zkscope_dump_file(pcap: &Path, extra: &[&str]) -> Decoded {
    let f = pcap.to_str().unwrap();
    let mut args = vec!["dump", "-r", f, "--format", "json"];
    args.extend_from_slice(extra);
    let out = zkscope(&args);
    let (messages, bad_lines) = parse_json_lines(&String::from_utf8_lossy(&out.stdout));
    Decoded {
        messages,
        bad_lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    }
}

/// The independent Python decoder (scripts/zkpcap.py) on a pcap: lets the
/// checks be exercised without the zkscope binary
/// (`ZKSCOPE_TEST_DECODER=oracle`).
pub fn oracle_dump_file(pcap: &Path, ports: &[u16]) -> Decoded {
    let py = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let mut cmd = Command::new(py);
    cmd.arg(repo_root().join("scripts/zkpcap.py")).arg(pcap);
    for p in ports {
        cmd.arg("--port").arg(p.to_string());
    }
    let out = run_with_timeout(cmd, None, Duration::from_secs(120));
    let (messages, bad_lines) = parse_json_lines(&String::from_utf8_lossy(&out.stdout));
    Decoded {
        messages,
        bad_lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    }
}

/// True when the tests should decode with scripts/zkpcap.py instead of the
/// zkscope binary (and skip live capture).
pub fn use_oracle() -> bool {
    std::env::var("ZKSCOPE_TEST_DECODER").as_deref() == Ok("oracle")
}

/// `zkscope dump -i lo --port P --format json …` running live.
pub struct ZkscopeLive {
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    /// Bytes of stdout read so far (zkscope flushes after every packet when live).
    stdout_len: std::sync::Arc<AtomicUsize>,
    stderr: Option<JoinHandle<String>>,
    ready: bool,
}

/// What a live zkscope printed.
#[derive(Debug)]
pub struct LiveOutput {
    pub messages: Vec<Value>,
    pub bad_lines: Vec<String>,
    pub stderr: String,
    pub status: Option<ExitStatus>,
    /// Whether the readiness line ("listening on") was seen on stderr.
    pub saw_ready_line: bool,
}

impl ZkscopeLive {
    /// Captures on `lo` for client port `port`: `zkscope dump -i lo --port
    /// PORT --format json EXTRA…`.
    pub fn on_port(port: u16, extra: &[&str]) -> ZkscopeLive {
        let p = port.to_string();
        let mut args = vec!["dump", "-i", "lo", "--port", p.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// Captures all TCP on `lo`, every protocol recognised by itself: `zkscope dump -i lo
    /// --protocol auto --format json EXTRA…`.
    pub fn auto(extra: &[&str]) -> ZkscopeLive {
        let mut args = vec!["dump", "-i", "lo", "--protocol", "auto", "--format", "json"];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// Spawns zkscope with the full argument list and waits until it prints
    /// a line containing "listening on" on stderr (at most 30 s; panics
    /// without it).
    pub fn start(args: &[&str]) -> ZkscopeLive {
        let mut cmd = Command::new(zkscope_bin());
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(cmd).unwrap_or_else(|e| panic!("spawn zkscope: {e}"));
        let stdout_len = std::sync::Arc::new(AtomicUsize::new(0));
        let out = child.stdout.take().unwrap();
        let counter = stdout_len.clone();
        let stdout = thread::spawn(move || {
            let mut s = String::new();
            let mut r = BufReader::new(out);
            let mut buf = Vec::new();
            while r.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                s.push_str(&String::from_utf8_lossy(&buf));
                counter.fetch_add(buf.len(), Ordering::SeqCst);
                buf.clear();
            }
            s
        });
        let (tx, rx) = mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut ready = false;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening on") => {
                    ready = true;
                    break;
                }
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                }
            }
        }
        if !ready {
            // traffic sent now would be missed: fail here, with what zkscope said
            terminate(&mut child, libc::SIGINT, Duration::from_secs(2));
            let err = stderr.join().unwrap_or_default();
            panic!("zkscope {args:?} did not start capturing within 30 s; stderr:\n{err}");
        }
        thread::sleep(Duration::from_millis(200));
        ZkscopeLive {
            child: Some(child),
            stdout: Some(stdout),
            stdout_len,
            stderr: Some(stderr),
            ready,
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }

    /// Waits until zkscope's output has not grown for 700 ms (it flushes after every
    /// packet when live, so a CPU-starved zkscope that is still catching up keeps it
    /// growing; at most 15 s), then sends SIGINT (SIGKILL after 60 s): zkscope then
    /// reads what the kernel already captured before it ends. Returns stdout parsed
    /// as JSON lines plus stderr.
    pub fn stop(mut self) -> LiveOutput {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut last = self.stdout_len.load(Ordering::SeqCst);
        let mut since = Instant::now();
        thread::sleep(Duration::from_millis(300));
        while Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
            let now = self.stdout_len.load(Ordering::SeqCst);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= Duration::from_millis(700) {
                break;
            }
        }
        let mut child = self.child.take().unwrap();
        let status = terminate(&mut child, libc::SIGINT, Duration::from_secs(60));
        let out = self.stdout.take().unwrap().join().unwrap_or_default();
        let err = self.stderr.take().unwrap().join().unwrap_or_default();
        let (messages, bad_lines) = parse_json_lines(&out);
        LiveOutput {
            messages,
            bad_lines,
            stderr: err,
            status,
            saw_ready_line: self.ready,
        }
    }
}

impl Drop for ZkscopeLive {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, libc::SIGINT, Duration::from_secs(2));
        }
    }
}

/// Reads a whole file (for pcaps: non-empty check etc.).
pub fn file_len(p: &Path) -> u64 {
    File::open(p)
        .and_then(|f| f.metadata())
        .map(|m| m.len())
        .unwrap_or(0)
}
