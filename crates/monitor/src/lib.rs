//! `zkscope monitor`: watches znodes against a YAML spec, alerts when one falls out of spec and
//! when it recovers, runs as a cluster of agents coordinated through ZooKeeper so exactly one
//! alerts, and serves `/status`, `/metrics` and `/health` over HTTP. A replacement for
//! Nextdoor's zk_monitor that reads its config as is.
//!
//! Layout: [`config`] (YAML → validated [`config::Config`], file:line errors), [`check`] (a
//! node against its checks, pure), [`engine`] (the alert lifecycle, sans-I/O), [`watcher`]
//! (ZooKeeper watches and reads), [`cluster`] (agents, leader election), [`core`] (instances,
//! persisted incidents, notifications), [`dispatch`] + [`alert`] (delivery with retries),
//! [`http`] + [`status`] + [`metrics`].

pub mod alert;
pub mod check;
pub mod cluster;
pub mod config;
pub mod core;
pub mod dispatch;
pub mod duration;
pub mod engine;
pub mod glob;
pub mod http;
pub mod metrics;
pub mod status;
mod syslog;
pub mod watcher;
pub mod yaml;
pub mod zk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use zookeeper_client as zkc;

use crate::config::Config;
use crate::core::CoreMsg;
use crate::metrics::Metrics;
use crate::status::Shared;

/// `eprintln!` that tolerates a closed stderr: a closed pipe must not end in a panic.
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `println!` that tolerates a closed stdout.
macro_rules! say_out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `zkscope monitor` options.
///
/// Short flags mean the same in every zkscope command (`-f` is a BPF filter, `-c` a count, `-p`
/// pings), so the primary names here are long; zk_monitor's spellings (`-f/--file`,
/// `-c/--cluster_name`, `-p/--port`, `-l`, `-s`) are still accepted, hidden, so its command
/// lines keep working.
#[derive(Debug, Clone, clap::Args)]
pub struct MonitorArgs {
    /// YAML config: znode paths and what they must look like (zk_monitor's format works as is)
    #[arg(
        long = "config",
        short_alias = 'f',
        alias = "file",
        value_name = "FILE",
        help_heading = "Config"
    )]
    pub config: Option<PathBuf>,

    /// Validate the config and exit (0 if valid, 2 if not); does not connect to anything
    #[arg(long, help_heading = "Config")]
    pub check_config: bool,

    /// Unknown config keys are errors, not warnings (a misspelt check would never alert)
    #[arg(long, help_heading = "Config")]
    pub strict: bool,

    /// ZooKeeper connect string, with an optional chroot: host:port,host:port/chroot
    #[arg(
        short = 'z',
        long = "zookeeper",
        default_value = "localhost:2181",
        value_name = "HOSTS",
        help_heading = "ZooKeeper"
    )]
    pub zookeeper: String,

    /// ZooKeeper digest auth user (nodes the monitor creates get the creator's ACL)
    #[arg(
        long = "zookeeper-user",
        alias = "zookeeper_user",
        value_name = "USER",
        help_heading = "ZooKeeper"
    )]
    pub zookeeper_user: Option<String>,

    /// ZooKeeper digest password (or the ZKSCOPE_MONITOR_ZK_PASSWORD environment variable)
    #[arg(
        long = "zookeeper-pass",
        alias = "zookeeper_pass",
        value_name = "PASS",
        help_heading = "ZooKeeper"
    )]
    pub zookeeper_pass: Option<String>,

    /// Connect to ZooKeeper with TLS (the servers' secureClientPort)
    #[arg(long = "zookeeper-tls", help_heading = "ZooKeeper")]
    pub zookeeper_tls: bool,

    /// PEM CA file for --zookeeper-tls (default: system roots)
    #[arg(long = "zookeeper-ca", value_name = "FILE", help_heading = "ZooKeeper")]
    pub zookeeper_ca: Option<PathBuf>,

    /// PEM client certificate for --zookeeper-tls (mutual TLS)
    #[arg(
        long = "zookeeper-cert",
        value_name = "FILE",
        requires = "zookeeper_key",
        help_heading = "ZooKeeper"
    )]
    pub zookeeper_cert: Option<PathBuf>,

    /// PEM client key for --zookeeper-cert
    #[arg(
        long = "zookeeper-key",
        value_name = "FILE",
        requires = "zookeeper_cert",
        help_heading = "ZooKeeper"
    )]
    pub zookeeper_key: Option<PathBuf>,

    /// ZooKeeper session timeout: a standby takes over within it when the leader dies
    #[arg(
        long,
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION",
        help_heading = "ZooKeeper"
    )]
    pub session_timeout: Duration,

    /// Cluster name: agents with the same name and prefix form one cluster
    #[arg(
        long = "cluster-name",
        short_alias = 'c',
        alias = "cluster_name",
        default_value = "zkmonitor",
        help_heading = "Cluster"
    )]
    pub cluster_name: String,

    /// Where clusters keep their nodes (agents, election, incidents)
    #[arg(
        long = "cluster-prefix",
        alias = "cluster_prefix",
        default_value = "/zk_monitor",
        value_name = "PATH",
        help_heading = "Cluster"
    )]
    pub cluster_prefix: String,

    /// This agent's name (default: <hostname>-<pid>, like zk_monitor)
    #[arg(long, value_name = "NAME", help_heading = "Cluster")]
    pub agent_name: Option<String>,

    /// HTTP address for /status, /metrics, /health
    #[arg(
        long = "http-address",
        default_value = "0.0.0.0",
        value_name = "ADDR",
        help_heading = "HTTP"
    )]
    pub http_address: String,

    /// HTTP port (0: any free port)
    #[arg(
        long = "http-port",
        short_alias = 'p',
        alias = "port",
        default_value_t = 8080,
        help_heading = "HTTP"
    )]
    pub http_port: u16,

    /// Log level (error, warn, info, debug, trace) or a tracing filter
    #[arg(
        long = "level",
        short_alias = 'l',
        default_value = "info",
        help_heading = "Logging"
    )]
    pub level: String,

    /// Also log to syslog with this facility (e.g. local0), like zk_monitor
    #[arg(
        long = "syslog",
        short_alias = 's',
        value_name = "FACILITY",
        help_heading = "Logging"
    )]
    pub syslog: Option<String>,

    /// Syslog server (UDP)
    #[arg(
        long,
        default_value = "127.0.0.1:514",
        value_name = "HOST:PORT",
        help_heading = "Logging"
    )]
    pub syslog_address: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// Runs `zkscope monitor`.
pub fn run(args: MonitorArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.check_config {
        let kinds = config.alerter_kinds();
        say_out!(
            "{}: OK: {} path(s), {} alert target(s){}{}",
            config.file,
            config.rules.len(),
            config.targets.len(),
            if kinds.is_empty() {
                String::new()
            } else {
                format!(" ({})", kinds.join(", "))
            },
            if config.warnings.is_empty() {
                String::new()
            } else {
                format!(", {} warning(s)", config.warnings.len())
            }
        );
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&args) {
        say_err!("zkscope monitor: error: {e}");
        return ExitCode::from(2);
    }
    // rustls: one process-wide crypto provider (ring) for the HTTP alerters
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            say_err!("zkscope monitor: error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(daemon(args, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say_err!("zkscope monitor: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn load_config(args: &MonitorArgs) -> Result<Config, ExitCode> {
    let result = match &args.config {
        Some(p) => config::load(p, &config::process_env),
        None => {
            say_err!("zkscope monitor: warning: no --config: no path is monitored");
            config::parse("(none)", "", &config::process_env)
        }
    };
    match result {
        Ok(c) => {
            let (strict, warnings): (Vec<_>, Vec<_>) = c
                .warnings
                .iter()
                .partition(|w| args.strict && w.unknown_key);
            for w in &warnings {
                say_err!("zkscope monitor: warning: {w}");
            }
            if !strict.is_empty() {
                for w in &strict {
                    say_err!("zkscope monitor: error: {}", w.strict());
                }
                say_err!(
                    "zkscope monitor: config rejected ({} error(s))",
                    strict.len()
                );
                return Err(ExitCode::from(2));
            }
            Ok(c)
        }
        Err(e) => {
            for w in &e.warnings {
                say_err!("zkscope monitor: warning: {w}");
            }
            for err in &e.errors {
                say_err!("zkscope monitor: error: {err}");
            }
            say_err!(
                "zkscope monitor: config rejected ({} error(s))",
                e.errors.len()
            );
            Err(ExitCode::from(2))
        }
    }
}

fn init_logging(args: &MonitorArgs) -> Result<(), String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};

    let level = args.level.trim().to_ascii_lowercase();
    let directive = match level.as_str() {
        "error" | "warn" | "info" | "debug" | "trace" => {
            format!("warn,zkscope_monitor={level},zkscope={level}")
        }
        "warning" => "warn".to_string(),
        "critical" => "error".to_string(),
        _ => args.level.clone(),
    };
    let filter = EnvFilter::try_new(&directive)
        .map_err(|e| format!("invalid --level {:?}: {e}", args.level))?;
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let syslog = match &args.syslog {
        Some(f) => {
            let w = syslog::SyslogWriter::new(f, &args.syslog_address)?;
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(w)
                    .with_ansi(false)
                    .without_time()
                    .with_target(false)
                    .with_level(false)
                    .boxed(),
            )
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(syslog)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))
}

fn default_agent_name() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

async fn daemon(args: MonitorArgs, config: Config) -> Result<(), String> {
    let config = Arc::new(config);
    let prefix = args.cluster_prefix.trim_end_matches('/');
    if !prefix.starts_with('/') || glob::validate(prefix).is_err() || glob::is_glob(prefix) {
        return Err(format!(
            "--cluster-prefix {:?} must be an absolute znode path",
            args.cluster_prefix
        ));
    }
    if args.cluster_name.is_empty() || args.cluster_name.contains('/') {
        return Err(format!(
            "--cluster-name {:?} must be a non-empty node name",
            args.cluster_name
        ));
    }
    let agent = args.agent_name.clone().unwrap_or_else(default_agent_name);
    if agent.is_empty() || agent.contains('/') {
        return Err(format!(
            "--agent-name {agent:?} must be a non-empty node name"
        ));
    }
    let base = format!("{prefix}/{}", args.cluster_name);
    let password = args
        .zookeeper_pass
        .clone()
        .or_else(|| std::env::var("ZKSCOPE_MONITOR_ZK_PASSWORD").ok());
    let digest = match (&args.zookeeper_user, password) {
        (Some(u), Some(p)) => Some((u.clone(), p)),
        (Some(_), None) => return Err("--zookeeper-user needs --zookeeper-pass".into()),
        (None, Some(_)) if args.zookeeper_pass.is_some() => {
            return Err("--zookeeper-pass needs --zookeeper-user".into())
        }
        _ => None,
    };
    let zk_opts = zk::ZkOptions {
        connect: args.zookeeper.clone(),
        session_timeout: args.session_timeout,
        digest: digest.clone(),
        tls: if args.zookeeper_tls || args.zookeeper_ca.is_some() || args.zookeeper_cert.is_some() {
            Some(zk::TlsFiles {
                ca: args.zookeeper_ca.clone(),
                cert: args.zookeeper_cert.clone(),
                key: args.zookeeper_key.clone(),
            })
        } else {
            None
        },
    };

    let metrics = Arc::new(Metrics::new());
    let configured: Vec<String> = config
        .rules
        .iter()
        .filter(|r| !r.is_glob())
        .map(|r| r.path.clone())
        .collect();
    let shared = Arc::new(Shared::new(
        agent.clone(),
        args.cluster_name.clone(),
        base.clone(),
        args.zookeeper.clone(),
        config.alerter_kinds(),
        configured,
        metrics.clone(),
    ));

    // HTTP first: /health answers even while ZooKeeper is unreachable
    let addr = format!("{}:{}", args.http_address, args.http_port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(
        "listening on http://{local} (/status, /metrics, /health); agent {agent}, cluster {base}"
    );
    let router = http::router(shared.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "HTTP server failed");
        }
    });
    let status_host = if local.ip().is_unspecified() {
        hostname::get()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into())
    } else {
        local.ip().to_string()
    };
    let status_url = Some(format!("http://{status_host}:{}/status", local.port()));

    let http_client = reqwest::Client::builder()
        .user_agent(concat!("zkscope-monitor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let (core_tx, core_rx) = mpsc::unbounded_channel();
    let core_task = tokio::spawn(core::run(
        core::CoreSetup {
            config: config.clone(),
            base: base.clone(),
            agent: agent.clone(),
            cluster: args.cluster_name.clone(),
            status_url,
            acl_creator: digest.is_some(),
            shared: shared.clone(),
            metrics: metrics.clone(),
            http: http_client,
        },
        core_rx,
        core_tx.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let sup = tokio::spawn(supervise(Supervisor {
        opts: zk_opts,
        config,
        base,
        agent,
        acl_creator: digest.is_some(),
        core: core_tx,
        shared,
        metrics,
        epochs: Arc::new(AtomicU64::new(0)),
        stop: stop_rx,
    }));

    wait_for_signal().await;
    tracing::info!("stopping: closing the ZooKeeper session (a standby takes over)");
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), sup).await;
    core_task.abort();
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

struct Supervisor {
    opts: zk::ZkOptions,
    config: Arc<Config>,
    base: String,
    agent: String,
    acl_creator: bool,
    core: mpsc::UnboundedSender<CoreMsg>,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    epochs: Arc<AtomicU64>,
    stop: watch::Receiver<bool>,
}

/// Sessions, one after the other: connect (retrying), run the watcher and the cluster tasks,
/// follow the connection state; on expiry start over with a new session.
async fn supervise(mut s: Supervisor) {
    let mut backoff = Duration::from_millis(500);
    let mut failures = 0u32;
    loop {
        if *s.stop.borrow() {
            return;
        }
        s.shared.update_zk(|z| {
            if z.last_error.is_none() {
                z.last_error = Some(format!("connecting to {}", s.opts.connect));
            }
        });
        let client = tokio::select! {
            c = zk::connect(&s.opts) => c,
            _ = s.stop.changed() => return,
        };
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(10) {
                    tracing::warn!(error = %e, attempt = failures, "ZooKeeper unreachable; retrying");
                }
                s.shared.update_zk(|z| {
                    z.connected = false;
                    z.last_error = Some(e.clone());
                    z.down_since.get_or_insert_with(core::now_ms);
                });
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = s.stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        failures = 0;
        backoff = Duration::from_millis(500);
        s.metrics.zk_sessions.inc();
        let sid = zk::session_hex(&client);
        tracing::info!(session = %sid, "ZooKeeper session established");
        s.shared.update_zk(|z| {
            z.connected = true;
            z.session_id = Some(sid.clone());
            z.last_error = None;
            z.down_since = None;
        });
        let _ = s.core.send(CoreMsg::Session(Some(client.clone())));
        let (rc_tx, rc_rx) = watch::channel(0u64);
        let mut watcher = tokio::spawn(
            watcher::Watcher::new(
                client.clone(),
                s.config.clone(),
                s.core.clone(),
                s.shared.clone(),
            )
            .run(rc_rx),
        );
        let mut cluster = tokio::spawn(
            cluster::Cluster {
                client: client.clone(),
                base: s.base.clone(),
                agent: s.agent.clone(),
                agent_data: agent_data(&s.agent),
                acl_creator: s.acl_creator,
                core: s.core.clone(),
                shared: s.shared.clone(),
                epochs: s.epochs.clone(),
            }
            .run(),
        );
        let mut states = client.state_watcher();
        let mut stopping = false;
        loop {
            tokio::select! {
                st = states.changed() => match st {
                    zkc::SessionState::Disconnected => {
                        tracing::warn!("ZooKeeper connection lost; reconnecting (sending paused)");
                        s.shared.update_zk(|z| {
                            z.connected = false;
                            z.last_error = Some("connection lost, reconnecting".into());
                            z.down_since = Some(core::now_ms());
                        });
                        let _ = s.core.send(CoreMsg::Connected(false));
                    }
                    zkc::SessionState::SyncConnected | zkc::SessionState::ConnectedReadOnly => {
                        tracing::info!("ZooKeeper reconnected (same session)");
                        s.shared.update_zk(|z| {
                            z.connected = true;
                            z.last_error = None;
                            z.down_since = None;
                        });
                        let _ = s.core.send(CoreMsg::Connected(true));
                        rc_tx.send_modify(|n| *n += 1);
                    }
                    other => {
                        tracing::warn!(state = %other, "ZooKeeper session over; starting a new one");
                        break;
                    }
                },
                _ = &mut watcher => break,
                _ = &mut cluster => break,
                _ = s.stop.changed() => { stopping = true; break; }
            }
        }
        watcher.abort();
        cluster.abort();
        let epoch = s.epochs.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = s.core.send(CoreMsg::Leadership {
            leader: false,
            epoch,
        });
        let _ = s.core.send(CoreMsg::Session(None));
        s.shared.update_zk(|z| {
            z.connected = false;
            z.session_id = None;
            z.down_since.get_or_insert_with(core::now_ms);
        });
        s.shared.set_cluster(status::ClusterStatus::default());
        // let the aborted tasks drop their clones, then close the session with the last one
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(client);
        if stopping {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return;
        }
    }
}

fn agent_data(agent: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "name": agent,
        "pid": std::process::id(),
        "created": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .unwrap_or_default()
}
