//! The monitor's YAML config.
//!
//! zk_monitor's schema is accepted as is: a mapping of znode paths to
//! `{children: N, cancel_timeout: S, alerter: {email: …, slack: …}}`, with `SMTP_HOST` /
//! `SMTP_PORT` from the environment. Extensions (all optional):
//!
//! ```yaml
//! monitor:            # daemon settings
//!   check_interval: 60s        # periodic full re-check
//!   watch_mode: auto           # auto | persistent | oneshot
//!   retry: {attempts: 6, initial_backoff: 1s, max_backoff: 1m}
//! smtp: {host: mail, port: 587, starttls: required, username: u, password: "${SMTP_PASS}",
//!        from: zk@example.com, ca_file: /etc/ssl/ca.pem}
//! defaults:           # applied to every path that does not set the key itself
//!   cancel_timeout: 30s
//!   resolve_timeout: 0s
//!   repeat_interval: 4h
//!   flap: {window: 10m, threshold: 6}   # or `flap: false`
//!   severity: critical
//!   labels: {team: storage}
//!   alerter: {route: oncall}
//! routes:             # named alert routes
//!   oncall:
//!     email: [oncall@example.com]
//!     slack: {webhook: "${SLACK_URL}", channel: "#ops"}
//!     webhook: {url: "http://hook/zk", headers: {Authorization: "Bearer ${TOKEN}"}}
//!     alertmanager: {url: "http://am:9093", labels: {env: prod}}
//! /services/foo:
//!   children: {min: 3, max: 10}
//!   exists: true
//!   data: {json_pointer: /state, equals: up}   # or data: "^regex$"
//!   max_data_bytes: 4096
//!   ephemeral: true
//!   stale_after: 10m
//!   cancel_timeout: 10
//!   alerter: {email: ops@example.com, route: oncall}
//! /services/*/members: {children: 1}
//! ```
//!
//! `${VAR}` (and `${VAR:-default}`, `$$` for a literal `$`) is replaced in every string value.
//! Errors carry the file, line and column; unknown keys are warnings.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;

use crate::duration;
use crate::yaml::{self, Node, Pos, Value};

/// One config problem, with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: String,
    pub pos: Pos,
    pub message: String,
    /// An unknown key (a warning, an error with `--strict`).
    pub unknown_key: bool,
}

impl Problem {
    /// The error `--strict` makes of an unknown-key warning.
    pub fn strict(&self) -> Problem {
        Problem {
            message: format!("{} (--strict)", self.message.replacen(", ignored", "", 1)),
            ..self.clone()
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.pos, self.message)
        }
    }
}

/// A rejected config: every error found (not only the first).
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// How watches are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    /// Persistent watches when the server has them (3.6+), one-shot watches otherwise.
    Auto,
    Persistent,
    Oneshot,
}

/// Retry policy for alert deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total (first try included).
    pub attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// Daemon settings (`monitor:` section).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub check_interval: Duration,
    pub watch_mode: WatchMode,
    pub retry: RetryPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            check_interval: Duration::from_secs(60),
            watch_mode: WatchMode::Auto,
            retry: RetryPolicy::default(),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP, STARTTLS if the server offers it (zk_monitor's behaviour was plain).
    Opportunistic,
    /// STARTTLS required.
    Required,
    /// Never TLS.
    Never,
    /// Implicit TLS (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
    /// Extra trusted CA (PEM) for TLS, e.g. a private mail relay.
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailTarget {
    pub to: Vec<String>,
    pub from: Option<String>,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SlackTarget {
    /// Incoming-webhook URL.
    pub webhook: Option<String>,
    /// zk_monitor's `token`: chat.postMessage with a bot token.
    pub token: Option<String>,
    pub api_url: String,
    pub channel: Option<String>,
    pub username: Option<String>,
    pub icon_emoji: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookTarget {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerTarget {
    /// Base URL (`http://am:9093`); alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    pub alertname: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Firing alerts are re-posted this often (their `endsAt` is 4× this ahead).
    pub resend_interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TargetKind {
    Email(EmailTarget),
    Slack(SlackTarget),
    Webhook(WebhookTarget),
    Alertmanager(AlertmanagerTarget),
}

impl TargetKind {
    pub fn name(&self) -> &'static str {
        match self {
            TargetKind::Email(_) => "email",
            TargetKind::Slack(_) => "slack",
            TargetKind::Webhook(_) => "webhook",
            TargetKind::Alertmanager(_) => "alertmanager",
        }
    }
}

/// One alert destination. `id` is stable for a given config (every agent derives the same) and
/// is what persisted incidents use to remember which deliveries are still due.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: String,
    pub kind: TargetKind,
}

/// A data check.
#[derive(Debug, Clone)]
pub enum DataCheck {
    /// The data (UTF-8, lossy) matches.
    Regex(Regex),
    /// The data is JSON; at `pointer` ("" = the whole document) there is a value which equals
    /// `equals` / matches `regex` / just exists.
    Json {
        pointer: String,
        equals: Option<serde_json::Value>,
        regex: Option<Regex>,
    },
}

impl PartialEq for DataCheck {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (DataCheck::Regex(a), DataCheck::Regex(b)) => a.as_str() == b.as_str(),
            (
                DataCheck::Json {
                    pointer: p1,
                    equals: e1,
                    regex: r1,
                },
                DataCheck::Json {
                    pointer: p2,
                    equals: e2,
                    regex: r2,
                },
            ) => {
                p1 == p2
                    && e1 == e2
                    && r1.as_ref().map(Regex::as_str) == r2.as_ref().map(Regex::as_str)
            }
            _ => false,
        }
    }
}

/// What a node must look like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    pub children_min: Option<u64>,
    pub children_max: Option<u64>,
    pub exists: Option<bool>,
    pub data: Option<DataCheck>,
    pub max_data_bytes: Option<u64>,
    pub ephemeral: Option<bool>,
    pub stale_after: Option<Duration>,
}

impl Checks {
    /// No check at all (zk_monitor's "Unknown" paths).
    pub fn is_empty(&self) -> bool {
        *self == Checks::default()
    }
    /// The data itself must be read (not only the Stat).
    pub fn needs_data(&self) -> bool {
        self.data.is_some()
    }
}

/// Flap damping: a rule whose condition changed `threshold` times within `window` is
/// flapping; while it is, a pending incident is not cancelled and a firing one is not resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flap {
    pub window: Duration,
    pub threshold: u32,
}

impl Default for Flap {
    fn default() -> Self {
        Flap {
            window: Duration::from_secs(600),
            threshold: 6,
        }
    }
}

/// One configured path (possibly a glob).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// As written (`/services/*/members`).
    pub path: String,
    pub pos: Pos,
    pub checks: Checks,
    pub cancel_timeout: Duration,
    pub resolve_timeout: Duration,
    pub repeat_interval: Option<Duration>,
    pub flap: Option<Flap>,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub description: Option<String>,
    pub targets: Vec<Arc<Target>>,
}

impl Rule {
    pub fn is_glob(&self) -> bool {
        crate::glob::is_glob(&self.path)
    }
}

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: String,
    pub settings: Settings,
    pub rules: Vec<Rule>,
    /// Every distinct target, by id.
    pub targets: BTreeMap<String, Arc<Target>>,
    pub warnings: Vec<Problem>,
}

impl Config {
    /// Names of the alerter kinds in use (for /status `dispatcher.alerters`).
    pub fn alerter_kinds(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self.targets.values().map(|t| t.kind.name()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Reads and validates a config file; `env` looks up `${VAR}` and `SMTP_HOST`/`SMTP_PORT`.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| ConfigError {
        errors: vec![Problem {
            file: file.clone(),
            pos: Pos::default(),
            message: format!("cannot read config: {e}"),
            unknown_key: false,
        }],
        warnings: Vec::new(),
    })?;
    let text = String::from_utf8(text).map_err(|e| ConfigError {
        errors: vec![Problem {
            file: file.clone(),
            pos: Pos::default(),
            message: format!("config is not UTF-8: {e}"),
            unknown_key: false,
        }],
        warnings: Vec::new(),
    })?;
    parse(&file, &text, env)
}

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Parses and validates config text (`file` is only used in messages).
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut cx = Cx {
        file: file.to_string(),
        env,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = match yaml::parse(text) {
        Ok(n) => n,
        Err(e) => {
            return Err(ConfigError {
                errors: vec![Problem {
                    file: file.to_string(),
                    pos: e.pos,
                    message: format!("invalid YAML: {}", e.message),
                    unknown_key: false,
                }],
                warnings: Vec::new(),
            })
        }
    };
    let root = cx.expand_env(root);
    let config = cx.config(&root);
    if cx.errors.is_empty() {
        let mut config = config;
        config.warnings = cx.warnings;
        Ok(config)
    } else {
        Err(ConfigError {
            errors: cx.errors,
            warnings: cx.warnings,
        })
    }
}

// ------------------------------------------------------------------ conversion

struct Cx<'a> {
    file: String,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<Problem>,
    warnings: Vec<Problem>,
}

/// Parsed but not yet resolved alert settings (`alerter:` of a rule or of `defaults`).
#[derive(Debug, Clone, Default)]
struct AlerterSpec {
    /// (kind, node) for inline targets.
    inline: Vec<(String, Node)>,
    /// Named routes, with the position of the reference.
    routes: Vec<(String, Pos)>,
}

#[derive(Debug, Clone, Default)]
struct RuleDefaults {
    cancel_timeout: Option<Duration>,
    resolve_timeout: Option<Duration>,
    repeat_interval: Option<Option<Duration>>,
    flap: Option<Option<Flap>>,
    severity: Option<String>,
    labels: BTreeMap<String, String>,
    alerter: Option<AlerterSpec>,
}

const TOP_KEYS: &[&str] = &["monitor", "smtp", "defaults", "routes"];
const RULE_KEYS: &[&str] = &[
    "children",
    "cancel_timeout",
    "resolve_timeout",
    "repeat_interval",
    "flap",
    "alerter",
    "route",
    "routes",
    "exists",
    "data",
    "max_data_bytes",
    "ephemeral",
    "stale_after",
    "severity",
    "labels",
    "description",
];
const DEFAULT_KEYS: &[&str] = &[
    "cancel_timeout",
    "resolve_timeout",
    "repeat_interval",
    "flap",
    "alerter",
    "route",
    "routes",
    "severity",
    "labels",
];
const ALERTER_KEYS: &[&str] = &[
    "email",
    "slack",
    "webhook",
    "alertmanager",
    "hipchat",
    "route",
    "routes",
];

impl Cx<'_> {
    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(Problem {
            file: self.file.clone(),
            pos,
            message: message.into(),
            unknown_key: false,
        });
    }

    fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.warnings.push(Problem {
            file: self.file.clone(),
            pos,
            message: message.into(),
            unknown_key: false,
        });
    }

    fn unknown_key(&mut self, key: &Node, known: &[&str], context: &str) {
        let name = key.scalar_text().unwrap_or_default();
        let hint = suggest(&name, known)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        self.warnings.push(Problem {
            file: self.file.clone(),
            pos: key.pos,
            message: format!("unknown key `{name}` in {context}, ignored{hint}"),
            unknown_key: true,
        });
    }

    // ---- ${ENV}

    fn expand_env(&mut self, node: Node) -> Node {
        let pos = node.pos;
        let value = match node.value {
            Value::Str(s) => match expand_vars(&s, self.env) {
                Ok(s) => Value::Str(s),
                Err(e) => {
                    self.err(pos, e);
                    Value::Str(s)
                }
            },
            Value::Seq(v) => Value::Seq(v.into_iter().map(|n| self.expand_env(n)).collect()),
            Value::Map(m) => Value::Map(
                m.into_iter()
                    .map(|(k, v)| (k, self.expand_env(v)))
                    .collect(),
            ),
            other => other,
        };
        Node { pos, value }
    }

    // ---- scalars

    fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Node, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            Value::Null => Some(&[]),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a mapping, got {}", node.kind()),
                );
                None
            }
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.scalar_text(),
            _ => {
                self.err(
                    node.pos,
                    format!("{what} must be a string, got {}", node.kind()),
                );
                None
            }
        }
    }

    fn uint(&mut self, node: &Node, what: &str) -> Option<u64> {
        let v = match &node.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            Value::Str(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        if v.is_none() {
            self.err(
                node.pos,
                format!(
                    "{what} must be a non-negative integer, got {}",
                    describe(node)
                ),
            );
        }
        v
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        let v = match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Some(true),
                "false" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        if v.is_none() {
            self.err(
                node.pos,
                format!("{what} must be true or false, got {}", describe(node)),
            );
        }
        v
    }

    fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let r = match &node.value {
            Value::Int(i) => duration::from_secs(*i as f64),
            Value::Float(f) => duration::from_secs(*f),
            Value::Str(s) => duration::parse(s),
            _ => Err(format!("got {}", node.kind())),
        };
        match r {
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    node.pos,
                    format!("{what} must be a duration (seconds, or like 30s, 5m, 1h): {e}"),
                );
                None
            }
        }
    }

    /// `null`, `0` and `false` mean "off".
    fn optional_duration(&mut self, node: &Node, what: &str) -> Option<Option<Duration>> {
        match &node.value {
            Value::Null | Value::Bool(false) => Some(None),
            _ => self
                .duration(node, what)
                .map(|d| if d.is_zero() { None } else { Some(d) }),
        }
    }

    fn string_map(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(m) = self.map(node, what) {
            for (k, v) in m {
                let key = k.scalar_text().unwrap_or_default();
                if let Some(s) = self.string(v, &format!("{what}.{key}")) {
                    out.insert(key, s);
                }
            }
        }
        out
    }

    fn string_list(&mut self, node: &Node, what: &str) -> Vec<String> {
        match &node.value {
            Value::Seq(items) => items.iter().filter_map(|n| self.string(n, what)).collect(),
            _ => self.string(node, what).into_iter().collect(),
        }
    }

    // ---- document

    fn config(&mut self, root: &Node) -> Config {
        let mut settings = Settings::default();
        let mut smtp_node = None;
        let mut defaults_node = None;
        let mut routes_node = None;
        let mut rule_nodes = Vec::new();
        let top: &[(Node, Node)] = match &root.value {
            Value::Map(m) => m,
            Value::Null => {
                self.warn(root.pos, "config is empty: no path is monitored");
                &[]
            }
            _ => {
                self.err(
                    root.pos,
                    format!(
                        "config must be a mapping of znode paths (like `/services/foo: {{children: 1}}`), got {}",
                        root.kind()
                    ),
                );
                &[]
            }
        };
        for (k, v) in top {
            let Some(key) = k.scalar_text() else {
                self.err(k.pos, "keys must be znode paths or settings");
                continue;
            };
            if key.starts_with('/') {
                rule_nodes.push((key, k.pos, v));
                continue;
            }
            match key.as_str() {
                "monitor" => settings = self.settings(v),
                "smtp" => smtp_node = Some(v),
                "defaults" => defaults_node = Some(v),
                "routes" => routes_node = Some(v),
                _ => {
                    let hint = suggest(&key, TOP_KEYS)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.warnings.push(Problem {
                        file: self.file.clone(),
                        pos: k.pos,
                        message: format!(
                            "unknown top-level key `{key}`, ignored (znode paths start with `/`){hint}"
                        ),
                        unknown_key: true,
                    });
                }
            }
        }

        let smtp = self.smtp(smtp_node, None);
        let defaults = match defaults_node {
            Some(n) => self.defaults(n),
            None => RuleDefaults::default(),
        };

        // named routes
        let mut targets: BTreeMap<String, Arc<Target>> = BTreeMap::new();
        let mut routes: HashMap<String, Vec<Arc<Target>>> = HashMap::new();
        if let Some(rn) = routes_node {
            if let Some(m) = self.map(rn, "routes") {
                for (k, v) in m {
                    let name = k.scalar_text().unwrap_or_default();
                    let spec = self.alerter_spec(v, &format!("route `{name}`"));
                    if !spec.routes.is_empty() {
                        self.err(
                            k.pos,
                            format!("route `{name}` cannot refer to other routes"),
                        );
                    }
                    let ts = self.targets(&spec, &format!("route:{name}"), &smtp);
                    if ts.is_empty() {
                        self.warn(k.pos, format!("route `{name}` has no alerter"));
                    }
                    for t in &ts {
                        targets.insert(t.id.clone(), t.clone());
                    }
                    routes.insert(name, ts);
                }
            }
        }
        // the default alerter's inline targets are shared by the rules that use it
        let default_targets = defaults.alerter.as_ref().map(|spec| {
            let mut ts = self.targets(spec, "defaults", &smtp);
            ts.extend(self.route_targets(spec, &routes));
            ts
        });

        let mut rules = Vec::new();
        for (path, pos, node) in rule_nodes {
            if let Some(rule) = self.rule(
                &path,
                pos,
                node,
                &defaults,
                &default_targets,
                &routes,
                &smtp,
            ) {
                rules.push(rule);
            }
        }
        for r in &rules {
            for t in &r.targets {
                targets.insert(t.id.clone(), t.clone());
            }
        }
        if rules.is_empty() && self.errors.is_empty() && !matches!(root.value, Value::Null) {
            self.warn(root.pos, "no znode path configured: nothing is monitored");
        }
        Config {
            file: self.file.clone(),
            settings,
            rules,
            targets,
            warnings: Vec::new(),
        }
    }

    fn settings(&mut self, node: &Node) -> Settings {
        let mut s = Settings::default();
        let Some(m) = self.map(node, "monitor") else {
            return s;
        };
        for (k, v) in m {
            match k.scalar_text().unwrap_or_default().as_str() {
                "check_interval" => {
                    if let Some(d) = self.duration(v, "monitor.check_interval") {
                        if d < Duration::from_secs(1) {
                            self.err(v.pos, "monitor.check_interval must be at least 1s");
                        } else {
                            s.check_interval = d;
                        }
                    }
                }
                "watch_mode" => match self.string(v, "monitor.watch_mode").as_deref() {
                    Some("auto") => s.watch_mode = WatchMode::Auto,
                    Some("persistent") => s.watch_mode = WatchMode::Persistent,
                    Some("oneshot") | Some("one-shot") => s.watch_mode = WatchMode::Oneshot,
                    Some(other) => self.err(
                        v.pos,
                        format!(
                            "monitor.watch_mode must be auto, persistent or oneshot, got {other:?}"
                        ),
                    ),
                    None => {}
                },
                "retry" => {
                    if let Some(rm) = self.map(v, "monitor.retry") {
                        for (rk, rv) in rm {
                            match rk.scalar_text().unwrap_or_default().as_str() {
                                "attempts" => {
                                    if let Some(n) = self.uint(rv, "monitor.retry.attempts") {
                                        if n == 0 || n > 1000 {
                                            self.err(
                                                rv.pos,
                                                "monitor.retry.attempts must be 1..1000",
                                            );
                                        } else {
                                            s.retry.attempts = n as u32;
                                        }
                                    }
                                }
                                "initial_backoff" => {
                                    if let Some(d) =
                                        self.duration(rv, "monitor.retry.initial_backoff")
                                    {
                                        s.retry.initial_backoff = d;
                                    }
                                }
                                "max_backoff" => {
                                    if let Some(d) = self.duration(rv, "monitor.retry.max_backoff")
                                    {
                                        s.retry.max_backoff = d;
                                    }
                                }
                                _ => self.unknown_key(
                                    rk,
                                    &["attempts", "initial_backoff", "max_backoff"],
                                    "monitor.retry",
                                ),
                            }
                        }
                    }
                }
                _ => self.unknown_key(k, &["check_interval", "watch_mode", "retry"], "monitor"),
            }
        }
        s
    }

    /// The SMTP settings: `base` (the global ones) or zk_monitor's environment
    /// (`SMTP_HOST`, default localhost; `SMTP_PORT`, default 25), overridden by `node`.
    fn smtp(&mut self, node: Option<&Node>, base: Option<&SmtpConfig>) -> SmtpConfig {
        let mut s = match base {
            Some(b) => b.clone(),
            None => {
                let host = (self.env)("SMTP_HOST")
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "localhost".into());
                let port = match (self.env)("SMTP_PORT") {
                    Some(p) if !p.is_empty() => match p.trim().parse::<u16>() {
                        Ok(p) => p,
                        Err(_) => {
                            self.err(
                                Pos::default(),
                                format!("environment variable SMTP_PORT={p:?} is not a port"),
                            );
                            25
                        }
                    },
                    _ => 25,
                };
                SmtpConfig {
                    host,
                    port,
                    security: SmtpSecurity::Opportunistic,
                    username: None,
                    password: None,
                    from: None,
                    ca_file: None,
                    timeout: Duration::from_secs(30),
                }
            }
        };
        let Some(node) = node else { return s };
        let Some(m) = self.map(node, "smtp") else {
            return s;
        };
        for (k, v) in m {
            match k.scalar_text().unwrap_or_default().as_str() {
                "host" => {
                    if let Some(h) = self.string(v, "smtp.host") {
                        s.host = h;
                    }
                }
                "port" => {
                    if let Some(p) = self.uint(v, "smtp.port") {
                        match u16::try_from(p) {
                            Ok(p) if p > 0 => s.port = p,
                            _ => self.err(v.pos, format!("smtp.port {p} is not a port")),
                        }
                    }
                }
                "starttls" => match &v.value {
                    Value::Bool(true) => s.security = SmtpSecurity::Required,
                    Value::Bool(false) => s.security = SmtpSecurity::Never,
                    _ => match self.string(v, "smtp.starttls").as_deref() {
                        Some("required") | Some("always") | Some("true") => {
                            s.security = SmtpSecurity::Required
                        }
                        Some("opportunistic") | Some("auto") => {
                            s.security = SmtpSecurity::Opportunistic
                        }
                        Some("never") | Some("false") | Some("off") => {
                            s.security = SmtpSecurity::Never
                        }
                        Some(o) => self.err(
                            v.pos,
                            format!(
                                "smtp.starttls must be required, opportunistic or never, got {o:?}"
                            ),
                        ),
                        None => {}
                    },
                },
                "tls" => {
                    if self.boolean(v, "smtp.tls") == Some(true) {
                        s.security = SmtpSecurity::Tls;
                    }
                }
                "username" | "user" => s.username = self.string(v, "smtp.username"),
                "password" | "pass" => s.password = self.string(v, "smtp.password"),
                "from" => s.from = self.string(v, "smtp.from"),
                "ca_file" => s.ca_file = self.string(v, "smtp.ca_file").map(PathBuf::from),
                "timeout" => {
                    if let Some(d) = self.duration(v, "smtp.timeout") {
                        s.timeout = d;
                    }
                }
                _ => self.unknown_key(
                    k,
                    &[
                        "host", "port", "starttls", "tls", "username", "password", "from",
                        "ca_file", "timeout",
                    ],
                    "smtp",
                ),
            }
        }
        if s.username.is_some() != s.password.is_some() {
            self.err(node.pos, "smtp.username and smtp.password go together");
        }
        s
    }

    fn flap(&mut self, node: &Node, what: &str) -> Option<Option<Flap>> {
        match &node.value {
            Value::Bool(false) | Value::Null => Some(None),
            Value::Bool(true) => Some(Some(Flap::default())),
            Value::Map(m) => {
                let mut f = Flap::default();
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "window" => {
                            if let Some(d) = self.duration(v, &format!("{what}.window")) {
                                f.window = d;
                            }
                        }
                        "threshold" => {
                            if let Some(n) = self.uint(v, &format!("{what}.threshold")) {
                                if n < 2 {
                                    self.err(v.pos, format!("{what}.threshold must be at least 2"));
                                } else {
                                    f.threshold = n.min(u32::MAX as u64) as u32;
                                }
                            }
                        }
                        _ => self.unknown_key(k, &["window", "threshold"], what),
                    }
                }
                Some(Some(f))
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what} must be false or {{window: 10m, threshold: 6}}, got {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    fn defaults(&mut self, node: &Node) -> RuleDefaults {
        let mut d = RuleDefaults::default();
        let Some(m) = self.map(node, "defaults") else {
            return d;
        };
        let mut route_refs: Vec<(String, Pos)> = Vec::new();
        for (k, v) in m {
            match k.scalar_text().unwrap_or_default().as_str() {
                "cancel_timeout" => {
                    d.cancel_timeout = self.duration(v, "defaults.cancel_timeout");
                }
                "resolve_timeout" => {
                    d.resolve_timeout = self.duration(v, "defaults.resolve_timeout");
                }
                "repeat_interval" => {
                    d.repeat_interval = self.optional_duration(v, "defaults.repeat_interval");
                }
                "flap" => d.flap = self.flap(v, "defaults.flap"),
                "severity" => d.severity = self.string(v, "defaults.severity"),
                "labels" => d.labels = self.string_map(v, "defaults.labels"),
                "alerter" => d.alerter = Some(self.alerter_spec(v, "defaults.alerter")),
                "route" | "routes" => {
                    for r in self.string_list(v, "defaults.routes") {
                        route_refs.push((r, v.pos));
                    }
                }
                _ => self.unknown_key(k, DEFAULT_KEYS, "defaults"),
            }
        }
        if !route_refs.is_empty() {
            d.alerter
                .get_or_insert_with(AlerterSpec::default)
                .routes
                .extend(route_refs);
        }
        d
    }

    fn alerter_spec(&mut self, node: &Node, what: &str) -> AlerterSpec {
        let mut spec = AlerterSpec::default();
        let Some(m) = self.map(node, what) else {
            return spec;
        };
        for (k, v) in m {
            let key = k.scalar_text().unwrap_or_default();
            match key.as_str() {
                "email" | "slack" | "webhook" | "alertmanager" => {
                    spec.inline.push((key, v.clone()));
                }
                "hipchat" => self.warn(
                    k.pos,
                    format!(
                        "{what}: HipChat was shut down in 2019; the `hipchat` alerter is ignored"
                    ),
                ),
                "route" | "routes" => {
                    for r in self.string_list(v, &format!("{what}.routes")) {
                        spec.routes.push((r, v.pos));
                    }
                }
                _ => {
                    let hint = suggest(&key, ALERTER_KEYS)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.warn(
                        k.pos,
                        format!("{what}: alerter engine `{key}` is not available, ignored{hint}"),
                    );
                }
            }
        }
        spec
    }

    fn route_targets(
        &mut self,
        spec: &AlerterSpec,
        routes: &HashMap<String, Vec<Arc<Target>>>,
    ) -> Vec<Arc<Target>> {
        let mut out = Vec::new();
        for (name, pos) in &spec.routes {
            match routes.get(name) {
                Some(ts) => out.extend(ts.iter().cloned()),
                None => {
                    let mut known: Vec<&str> = routes.keys().map(String::as_str).collect();
                    known.sort_unstable();
                    let hint = suggest(name, &known)
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    self.err(*pos, format!("unknown route `{name}`{hint}"));
                }
            }
        }
        out
    }

    /// Inline targets of an alerter spec; ids are `<scope>:<kind>` (plus `#i` for lists).
    fn targets(&mut self, spec: &AlerterSpec, scope: &str, smtp: &SmtpConfig) -> Vec<Arc<Target>> {
        let mut out = Vec::new();
        for (kind, node) in &spec.inline {
            let items: Vec<&Node> = match (&node.value, kind.as_str()) {
                // a list of addresses is one email target
                (_, "email") => vec![node],
                (Value::Seq(v), _) => v.iter().collect(),
                _ => vec![node],
            };
            let many = items.len() > 1;
            for (i, item) in items.into_iter().enumerate() {
                let id = if many {
                    format!("{scope}:{kind}#{}", i + 1)
                } else {
                    format!("{scope}:{kind}")
                };
                let what = format!("{scope} {kind}");
                let t = match kind.as_str() {
                    "email" => self.email(item, &what, smtp).map(TargetKind::Email),
                    "slack" => self.slack(item, &what).map(TargetKind::Slack),
                    "webhook" => self.webhook(item, &what).map(TargetKind::Webhook),
                    "alertmanager" => self.alertmanager(item, &what).map(TargetKind::Alertmanager),
                    _ => None,
                };
                if let Some(kind) = t {
                    out.push(Arc::new(Target { id, kind }));
                }
            }
        }
        out
    }

    fn email(&mut self, node: &Node, what: &str, smtp: &SmtpConfig) -> Option<EmailTarget> {
        // zk_monitor: a string split on `[, ]+`, or a list of strings
        let split = |s: &str| -> Vec<String> {
            s.split([',', ' '])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(String::from)
                .collect()
        };
        let (to, from, smtp) = match &node.value {
            Value::Str(s) => (split(s), None, smtp.clone()),
            Value::Seq(items) => {
                let mut to = Vec::new();
                for it in items {
                    if let Some(s) = self.string(it, what) {
                        to.extend(split(&s));
                    }
                }
                (to, None, smtp.clone())
            }
            Value::Map(m) => {
                let mut to = Vec::new();
                let mut from = None;
                let mut own_smtp = None;
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "to" => {
                            for s in self.string_list(v, &format!("{what}.to")) {
                                to.extend(split(&s));
                            }
                        }
                        "from" => from = self.string(v, &format!("{what}.from")),
                        "smtp" => own_smtp = Some(v),
                        _ => self.unknown_key(k, &["to", "from", "smtp"], what),
                    }
                }
                let s = match own_smtp {
                    Some(n) => self.smtp(Some(n), Some(smtp)),
                    None => smtp.clone(),
                };
                (to, from, s)
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what}: expected an address, a list of addresses or {{to: […]}}, got {}",
                        node.kind()
                    ),
                );
                return None;
            }
        };
        if to.is_empty() {
            self.err(node.pos, format!("{what}: no recipient"));
            return None;
        }
        for a in &to {
            if a.parse::<lettre::Address>().is_err() {
                self.err(node.pos, format!("{what}: {a:?} is not an email address"));
                return None;
            }
        }
        let from = from.or_else(|| smtp.from.clone());
        if let Some(f) = &from {
            if f.parse::<lettre::message::Mailbox>().is_err() {
                self.err(
                    node.pos,
                    format!("{what}: from {f:?} is not an email address"),
                );
                return None;
            }
        }
        Some(EmailTarget { to, from, smtp })
    }

    fn url(&mut self, node: &Node, text: &str, what: &str) -> Option<String> {
        match reqwest::Url::parse(text) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Some(text.to_string()),
            Ok(u) => {
                self.err(
                    node.pos,
                    format!(
                        "{what}: URL scheme must be http or https, got {}",
                        u.scheme()
                    ),
                );
                None
            }
            Err(e) => {
                self.err(node.pos, format!("{what}: invalid URL: {e}"));
                None
            }
        }
    }

    fn slack(&mut self, node: &Node, what: &str) -> Option<SlackTarget> {
        let mut t = SlackTarget {
            webhook: None,
            token: None,
            api_url: "https://slack.com/api/chat.postMessage".into(),
            channel: None,
            username: None,
            icon_emoji: None,
        };
        match &node.value {
            Value::Str(s) => t.webhook = self.url(node, s, what),
            Value::Map(m) => {
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "webhook" | "url" | "webhook_url" => {
                            if let Some(s) = self.string(v, what) {
                                t.webhook = self.url(v, &s, what);
                            }
                        }
                        "token" => t.token = self.string(v, what),
                        "api_url" => {
                            if let Some(s) = self.string(v, what) {
                                if let Some(u) = self.url(v, &s, what) {
                                    t.api_url = u;
                                }
                            }
                        }
                        "channel" | "room" => t.channel = self.string(v, what),
                        "from" | "username" => t.username = self.string(v, what),
                        "icon_emoji" => t.icon_emoji = self.string(v, what),
                        _ => self.unknown_key(
                            k,
                            &[
                                "webhook",
                                "token",
                                "api_url",
                                "channel",
                                "from",
                                "username",
                                "icon_emoji",
                            ],
                            what,
                        ),
                    }
                }
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what}: expected a webhook URL or {{webhook: URL, channel: …}}, got {}",
                        node.kind()
                    ),
                );
                return None;
            }
        }
        if t.webhook.is_none() && t.token.is_none() {
            self.err(
                node.pos,
                format!("{what}: needs `webhook` (incoming webhook URL) or `token` (bot token)"),
            );
            return None;
        }
        if t.webhook.is_none() && t.channel.is_none() {
            self.err(node.pos, format!("{what}: `token` needs a `channel`"));
            return None;
        }
        Some(t)
    }

    fn webhook(&mut self, node: &Node, what: &str) -> Option<WebhookTarget> {
        let mut url = None;
        let mut headers = Vec::new();
        let mut timeout = Duration::from_secs(10);
        match &node.value {
            Value::Str(s) => url = self.url(node, s, what),
            Value::Map(m) => {
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "url" => {
                            if let Some(s) = self.string(v, what) {
                                url = self.url(v, &s, what);
                            }
                        }
                        "headers" => {
                            headers = self
                                .string_map(v, &format!("{what}.headers"))
                                .into_iter()
                                .collect()
                        }
                        "timeout" => {
                            if let Some(d) = self.duration(v, &format!("{what}.timeout")) {
                                timeout = d;
                            }
                        }
                        _ => self.unknown_key(k, &["url", "headers", "timeout"], what),
                    }
                }
            }
            _ => {
                self.err(
                    node.pos,
                    format!("{what}: expected a URL or {{url: …}}, got {}", node.kind()),
                );
                return None;
            }
        }
        let Some(url) = url else {
            if self.errors.last().map(|e| e.pos) != Some(node.pos) {
                self.err(node.pos, format!("{what}: `url` is required"));
            }
            return None;
        };
        for (h, v) in &headers {
            if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err()
                || reqwest::header::HeaderValue::from_str(v).is_err()
            {
                self.err(node.pos, format!("{what}: invalid header {h:?}"));
                return None;
            }
        }
        Some(WebhookTarget {
            url,
            headers,
            timeout,
        })
    }

    fn alertmanager(&mut self, node: &Node, what: &str) -> Option<AlertmanagerTarget> {
        let mut t = AlertmanagerTarget {
            url: String::new(),
            alertname: "ZnodeOutOfSpec".into(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        };
        let mut url = None;
        match &node.value {
            Value::Str(s) => url = self.url(node, s, what),
            Value::Map(m) => {
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "url" => {
                            if let Some(s) = self.string(v, what) {
                                url = self.url(v, &s, what);
                            }
                        }
                        "alertname" => {
                            if let Some(s) = self.string(v, what) {
                                t.alertname = s;
                            }
                        }
                        "labels" => t.labels = self.string_map(v, &format!("{what}.labels")),
                        "annotations" => {
                            t.annotations = self.string_map(v, &format!("{what}.annotations"))
                        }
                        "resend_interval" => {
                            if let Some(d) = self.duration(v, &format!("{what}.resend_interval")) {
                                if d < Duration::from_secs(1) {
                                    self.err(
                                        v.pos,
                                        format!("{what}.resend_interval must be at least 1s"),
                                    );
                                } else {
                                    t.resend_interval = d;
                                }
                            }
                        }
                        "timeout" => {
                            if let Some(d) = self.duration(v, &format!("{what}.timeout")) {
                                t.timeout = d;
                            }
                        }
                        _ => self.unknown_key(
                            k,
                            &[
                                "url",
                                "alertname",
                                "labels",
                                "annotations",
                                "resend_interval",
                                "timeout",
                            ],
                            what,
                        ),
                    }
                }
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what}: expected a URL or {{url: …, labels: …}}, got {}",
                        node.kind()
                    ),
                );
                return None;
            }
        }
        let Some(url) = url else {
            if self.errors.last().map(|e| e.pos) != Some(node.pos) {
                self.err(node.pos, format!("{what}: `url` is required"));
            }
            return None;
        };
        t.url = url.trim_end_matches('/').to_string();
        for k in t.labels.keys() {
            if !valid_label_name(k) {
                self.err(node.pos, format!("{what}: invalid label name {k:?}"));
                return None;
            }
        }
        Some(t)
    }

    fn data_check(&mut self, node: &Node, what: &str) -> Option<DataCheck> {
        let regex = |cx: &mut Self, n: &Node, s: &str| match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                cx.err(n.pos, format!("{what}: invalid regex: {e}"));
                None
            }
        };
        match &node.value {
            Value::Str(s) => regex(self, node, s).map(DataCheck::Regex),
            Value::Map(m) => {
                let mut pointer = None;
                let mut equals = None;
                let mut rx = None;
                let mut json_doc = None;
                for (k, v) in m {
                    match k.scalar_text().unwrap_or_default().as_str() {
                        "regex" | "matches" => {
                            if let Some(s) = self.string(v, what) {
                                rx = regex(self, v, &s);
                            }
                        }
                        "json_pointer" | "pointer" => {
                            if let Some(p) = self.string(v, what) {
                                if !(p.is_empty() || p.starts_with('/')) {
                                    self.err(
                                        v.pos,
                                        format!("{what}: a JSON pointer starts with `/` (RFC 6901), got {p:?}"),
                                    );
                                }
                                pointer = Some(p);
                            }
                        }
                        "equals" | "value" => equals = Some(v.to_json()),
                        "json" => json_doc = Some(v.to_json()),
                        _ => {
                            self.unknown_key(k, &["regex", "json_pointer", "equals", "json"], what)
                        }
                    }
                }
                if let Some(doc) = json_doc {
                    return Some(DataCheck::Json {
                        pointer: String::new(),
                        equals: Some(doc),
                        regex: None,
                    });
                }
                match (pointer, equals, rx) {
                    (None, None, Some(r)) => Some(DataCheck::Regex(r)),
                    (None, None, None) => {
                        self.err(
                            node.pos,
                            format!("{what}: give `regex`, or `json_pointer` with `equals`/`regex`, or `json`"),
                        );
                        None
                    }
                    (p, equals, regex) => Some(DataCheck::Json {
                        pointer: p.unwrap_or_default(),
                        equals,
                        regex,
                    }),
                }
            }
            _ => {
                self.err(
                    node.pos,
                    format!(
                        "{what} must be a regex or {{json_pointer: …, equals: …}}, got {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn rule(
        &mut self,
        path: &str,
        pos: Pos,
        node: &Node,
        defaults: &RuleDefaults,
        default_targets: &Option<Vec<Arc<Target>>>,
        routes: &HashMap<String, Vec<Arc<Target>>>,
        smtp: &SmtpConfig,
    ) -> Option<Rule> {
        if let Err(e) = crate::glob::validate(path) {
            self.err(pos, format!("invalid znode path {path:?}: {e}"));
            return None;
        }
        let mut rule = Rule {
            path: path.to_string(),
            pos,
            checks: Checks::default(),
            cancel_timeout: defaults.cancel_timeout.unwrap_or(Duration::ZERO),
            resolve_timeout: defaults.resolve_timeout.unwrap_or(Duration::ZERO),
            repeat_interval: defaults.repeat_interval.unwrap_or(None),
            flap: defaults.flap.unwrap_or(Some(Flap::default())),
            severity: defaults
                .severity
                .clone()
                .unwrap_or_else(|| "critical".into()),
            labels: defaults.labels.clone(),
            description: None,
            targets: Vec::new(),
        };
        let mut alerter: Option<AlerterSpec> = None;
        let mut extra_routes: Vec<(String, Pos)> = Vec::new();
        let m = self.map(node, path)?;
        let errors_before = self.errors.len();
        for (k, v) in m {
            let key = k.scalar_text().unwrap_or_default();
            let what = format!("{path}: {key}");
            match key.as_str() {
                "children" => match &v.value {
                    Value::Map(cm) => {
                        for (ck, cv) in cm {
                            match ck.scalar_text().unwrap_or_default().as_str() {
                                "min" => {
                                    rule.checks.children_min = self.uint(cv, &format!("{what}.min"))
                                }
                                "max" => {
                                    rule.checks.children_max = self.uint(cv, &format!("{what}.max"))
                                }
                                _ => self.unknown_key(ck, &["min", "max"], &what),
                            }
                        }
                        if rule.checks.children_min.is_none() && rule.checks.children_max.is_none()
                        {
                            self.err(v.pos, format!("{what} needs `min` and/or `max`"));
                        }
                    }
                    _ => rule.checks.children_min = self.uint(v, &what),
                },
                "cancel_timeout" => {
                    // zk_monitor: float()-able, invalid or null → 0
                    if matches!(v.value, Value::Null) {
                        rule.cancel_timeout = Duration::ZERO;
                    } else if let Some(d) = self.duration(v, &what) {
                        rule.cancel_timeout = d;
                    }
                }
                "resolve_timeout" => {
                    if let Some(d) = self.duration(v, &what) {
                        rule.resolve_timeout = d;
                    }
                }
                "repeat_interval" => {
                    if let Some(d) = self.optional_duration(v, &what) {
                        rule.repeat_interval = d;
                    }
                }
                "flap" => {
                    if let Some(f) = self.flap(v, &what) {
                        rule.flap = f;
                    }
                }
                "alerter" => alerter = Some(self.alerter_spec(v, &format!("{path}: alerter"))),
                "route" | "routes" => {
                    for r in self.string_list(v, &what) {
                        extra_routes.push((r, v.pos));
                    }
                }
                "exists" => rule.checks.exists = self.boolean(v, &what),
                "data" => rule.checks.data = self.data_check(v, &what),
                "max_data_bytes" => rule.checks.max_data_bytes = self.uint(v, &what),
                "ephemeral" => rule.checks.ephemeral = self.boolean(v, &what),
                "stale_after" => {
                    if let Some(d) = self.duration(v, &what) {
                        if d.is_zero() {
                            self.err(v.pos, format!("{what} must be more than 0"));
                        } else {
                            rule.checks.stale_after = Some(d);
                        }
                    }
                }
                "severity" => {
                    if let Some(s) = self.string(v, &what) {
                        rule.severity = s;
                    }
                }
                "labels" => {
                    let l = self.string_map(v, &what);
                    rule.labels.extend(l);
                }
                "description" => rule.description = self.string(v, &what),
                "state" => self.warn(
                    k.pos,
                    format!("{path}: `state` is zk_monitor's internal field, ignored"),
                ),
                _ => self.unknown_key(k, RULE_KEYS, path),
            }
        }
        if let (Some(min), Some(max)) = (rule.checks.children_min, rule.checks.children_max) {
            if min > max {
                self.err(
                    pos,
                    format!("{path}: children min {min} is more than max {max}"),
                );
            }
        }
        if rule.checks.exists == Some(false)
            && (rule.checks.children_min.unwrap_or(0) > 0
                || rule.checks.data.is_some()
                || rule.checks.ephemeral == Some(true)
                || rule.checks.stale_after.is_some())
        {
            self.err(
                pos,
                format!("{path}: `exists: false` contradicts the other checks"),
            );
        }
        // targets: the rule's own alerter/routes replace the default alerter
        let scope = format!("rule:{path}");
        if alerter.is_some() || !extra_routes.is_empty() {
            let mut spec = alerter.unwrap_or_default();
            spec.routes.extend(extra_routes);
            rule.targets = self.targets(&spec, &scope, smtp);
            let rt = self.route_targets(&spec, routes);
            rule.targets.extend(rt);
        } else if let Some(dt) = default_targets {
            rule.targets = dt.clone();
        }
        let mut seen = std::collections::HashSet::new();
        rule.targets.retain(|t| seen.insert(t.id.clone()));
        if rule.checks.is_empty() {
            self.warn(
                pos,
                format!("{path}: no check configured (children, exists, data, …): its state stays Unknown and it never alerts"),
            );
        } else if rule.targets.is_empty() {
            self.warn(
                pos,
                format!(
                    "{path}: no alerter: out-of-spec states are shown in /status and /metrics only"
                ),
            );
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(rule)
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn describe(node: &Node) -> String {
    match node.scalar_text() {
        Some(s) => format!("{s:?}"),
        None => node.kind().to_string(),
    }
}

/// `${VAR}`, `${VAR:-default}`, `$$` → `$`. A `$` not followed by `{` or `$` stays.
pub fn expand_vars(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(a) = after.strip_prefix('{') {
            let Some(end) = a.find('}') else {
                return Err(format!("unterminated `${{` in {s:?}"));
            };
            let inner = &a[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid environment variable name {name:?}"));
            }
            match (env(name), default) {
                (Some(v), _) if !(v.is_empty() && default.is_some()) => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (_, None) => {
                    return Err(format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ))
                }
            }
            rest = &a[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The known key closest to `word` (edit distance ≤ 2), for "did you mean".
fn suggest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (levenshtein(word, k), *k))
        .filter(|(d, _)| *d <= 2 && *d < word.len())
        .min()
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn ok(text: &str) -> Config {
        parse("m.yaml", text, &no_env).unwrap_or_else(|e| panic!("{e}"))
    }

    fn errs(text: &str) -> Vec<String> {
        match parse("m.yaml", text, &no_env) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.errors.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn zk_monitor_sample_config() {
        let c = ok("/services/path/to/service:\n  alerter: {email: [on-call-team@yourcompany.com], hipchat: {room: Engineering, token: crazytoken}}\n  cancel_timeout: 10\n  children: 1\n");
        assert_eq!(c.rules.len(), 1);
        let r = &c.rules[0];
        assert_eq!(r.path, "/services/path/to/service");
        assert_eq!(r.checks.children_min, Some(1));
        assert_eq!(r.cancel_timeout, Duration::from_secs(10));
        assert_eq!(r.targets.len(), 1);
        assert_eq!(r.targets[0].id, "rule:/services/path/to/service:email");
        let TargetKind::Email(e) = &r.targets[0].kind else {
            panic!()
        };
        assert_eq!(e.to, vec!["on-call-team@yourcompany.com"]);
        assert_eq!(e.smtp.host, "localhost");
        assert_eq!(e.smtp.port, 25);
        // hipchat is warned about, not an error
        assert!(c
            .warnings
            .iter()
            .any(|w| w.message.contains("HipChat") && w.pos.line == 2));
    }

    #[test]
    fn zk_monitor_quirks() {
        // email as a comma/space separated string, null path config, null cancel_timeout,
        // slack with token + channel (chat.postMessage), unknown alerter skipped
        let c = ok("/a:\n  children: 2\n  cancel_timeout:\n  alerter:\n    email: 'a@x.com, b@x.com c@x.com'\n    slack: {channel: '#ops', token: xoxb-1, from: bot}\n    pager: {}\n/b:\n");
        let a = &c.rules[0];
        assert_eq!(a.cancel_timeout, Duration::ZERO);
        let TargetKind::Email(e) = &a.targets[0].kind else {
            panic!()
        };
        assert_eq!(e.to.len(), 3);
        let TargetKind::Slack(s) = &a.targets[1].kind else {
            panic!()
        };
        assert_eq!(s.token.as_deref(), Some("xoxb-1"));
        assert_eq!(s.channel.as_deref(), Some("#ops"));
        assert!(c
            .warnings
            .iter()
            .any(|w| w.message.contains("`pager` is not available")));
        assert!(c.rules[1].checks.is_empty());
        assert!(c
            .warnings
            .iter()
            .any(|w| w.message.contains("/b: no check")));
    }

    #[test]
    fn smtp_env() {
        let env = |k: &str| match k {
            "SMTP_HOST" => Some("mail.example".to_string()),
            "SMTP_PORT" => Some("2525".to_string()),
            _ => None,
        };
        let c = parse(
            "m.yaml",
            "/a: {children: 1, alerter: {email: a@x.com}}\n",
            &env,
        )
        .unwrap();
        let TargetKind::Email(e) = &c.rules[0].targets[0].kind else {
            panic!()
        };
        assert_eq!((e.smtp.host.as_str(), e.smtp.port), ("mail.example", 2525));
    }

    #[test]
    fn extensions() {
        let env = |k: &str| match k {
            "HOOK" => Some("http://127.0.0.1:9/hook".to_string()),
            "PASS" => Some("s3cret".to_string()),
            _ => None,
        };
        let text = r#"
monitor: {check_interval: 30s, watch_mode: oneshot, retry: {attempts: 3, initial_backoff: 100ms, max_backoff: 1s}}
smtp: {host: mx, port: 587, starttls: required, username: u, password: "${PASS}", from: zk@example.com}
defaults:
  cancel_timeout: 5s
  repeat_interval: 1h
  flap: {window: 5m, threshold: 4}
  labels: {team: storage}
  alerter: {route: oncall}
routes:
  oncall:
    webhook: {url: "${HOOK}", headers: {X-Token: abc}}
    alertmanager: {url: "http://am:9093/", labels: {env: prod}, resend_interval: 30s}
    email: {to: [a@x.com], from: other@example.com}
/services/*/members:
  children: {min: 2, max: 5}
  stale_after: 10m
/services/foo/leader:
  exists: true
  ephemeral: true
  data: {json_pointer: /state, equals: up}
  max_data_bytes: 1024
  repeat_interval: 0
  flap: false
  severity: warning
  alerter: {slack: "https://hooks.example/x", route: oncall}
/cfg: {data: '^v\d+$', cancel_timeout: "${UNSET_T:-2s}"}
"#;
        let c = parse("m.yaml", text, &env).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.settings.check_interval, Duration::from_secs(30));
        assert_eq!(c.settings.watch_mode, WatchMode::Oneshot);
        assert_eq!(c.settings.retry.attempts, 3);
        let g = &c.rules[0];
        assert!(g.is_glob());
        assert_eq!(
            (g.checks.children_min, g.checks.children_max),
            (Some(2), Some(5))
        );
        assert_eq!(g.cancel_timeout, Duration::from_secs(5));
        assert_eq!(g.repeat_interval, Some(Duration::from_secs(3600)));
        assert_eq!(
            g.flap,
            Some(Flap {
                window: Duration::from_secs(300),
                threshold: 4
            })
        );
        assert_eq!(g.labels.get("team").map(String::as_str), Some("storage"));
        let ids: Vec<&str> = g.targets.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "route:oncall:webhook",
                "route:oncall:alertmanager",
                "route:oncall:email"
            ]
        );
        let TargetKind::Webhook(w) = &g.targets[0].kind else {
            panic!()
        };
        assert_eq!(w.url, "http://127.0.0.1:9/hook");
        let TargetKind::Alertmanager(am) = &g.targets[1].kind else {
            panic!()
        };
        assert_eq!(am.url, "http://am:9093");
        let TargetKind::Email(e) = &g.targets[2].kind else {
            panic!()
        };
        assert_eq!(e.smtp.password.as_deref(), Some("s3cret"));
        assert_eq!(e.smtp.security, SmtpSecurity::Required);
        assert_eq!(e.from.as_deref(), Some("other@example.com"));
        let l = &c.rules[1];
        assert_eq!(l.checks.exists, Some(true));
        assert_eq!(l.checks.ephemeral, Some(true));
        assert_eq!(l.repeat_interval, None);
        assert_eq!(l.flap, None);
        assert_eq!(l.severity, "warning");
        assert!(matches!(l.checks.data, Some(DataCheck::Json { .. })));
        assert_eq!(l.targets.len(), 4);
        assert_eq!(c.rules[2].cancel_timeout, Duration::from_secs(2));
        assert!(matches!(c.rules[2].checks.data, Some(DataCheck::Regex(_))));
        assert_eq!(c.targets.len(), 4);
    }

    #[test]
    fn errors_have_file_line_and_reason() {
        let e = errs("/a:\n  children: lots\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("m.yaml:2:13: /a: children must be a non-negative integer"),
            "{e:?}"
        );
        let e = errs("/a:\n  children: 1\n  cancel_timeout: soon\n");
        assert!(e[0].starts_with("m.yaml:3:"), "{e:?}");
        let e = errs("/a: {children: 1, alerter: {route: oncal}}\nroutes: {oncall: {webhook: 'http://h/'}}\n");
        assert!(
            e[0].contains("unknown route `oncal` (did you mean `oncall`?)"),
            "{e:?}"
        );
        let e = errs("/a: {children: 1, alerter: {email: 'not an address'}}\n");
        assert!(e[0].contains("is not an email address"), "{e:?}");
        let e = errs("/a: {data: '(unclosed'}\n");
        assert!(e[0].contains("invalid regex"), "{e:?}");
        let e = errs("/a: {children: {min: 5, max: 2}}\n");
        assert!(e[0].contains("min 5 is more than max 2"), "{e:?}");
        let e = errs("a/b: {children: 1}\n/c/: {children: 1}\n");
        assert!(
            e.iter().any(|m| m.contains("invalid znode path \"/c/\"")),
            "{e:?}"
        );
        let e = errs("/a: {children: 1, alerter: {webhook: 'ftp://x'}}\n");
        assert!(e[0].contains("scheme must be http"), "{e:?}");
        let e = errs("/a: {children: 1, alerter: {slack: {channel: x}}}\n");
        assert!(e[0].contains("needs `webhook`"), "{e:?}");
        // several errors are reported together
        let e = errs("/a: {children: -1}\n/b: {exists: maybe}\n");
        assert_eq!(e.len(), 2, "{e:?}");
        // unset variable
        let e = errs("/a: {children: 1, alerter: {webhook: '${NOPE}'}}\n");
        assert!(
            e[0].contains("environment variable NOPE is not set"),
            "{e:?}"
        );
        assert!(e[0].starts_with("m.yaml:1:"), "{e:?}");
        // syntax
        let e = errs("/a: {children: 1\n/b: 2\n");
        assert!(
            e[0].starts_with("m.yaml:") && e[0].contains("invalid YAML"),
            "{e:?}"
        );
        let e = errs("- /a\n- /b\n");
        assert!(e[0].contains("must be a mapping"), "{e:?}");
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let c = ok("/a:\n  chidren: 1\n  children: 2\nmonitr: {}\n");
        let w: Vec<String> = c.warnings.iter().map(|p| p.to_string()).collect();
        assert!(
            w.iter().any(|m| m
                == "m.yaml:2:3: unknown key `chidren` in /a, ignored (did you mean `children`?)"),
            "{w:?}"
        );
        assert!(
            w.iter().any(
                |m| m.starts_with("m.yaml:4:1: unknown top-level key `monitr`")
                    && m.contains("did you mean `monitor`")
            ),
            "{w:?}"
        );
        assert_eq!(
            c.warnings.iter().filter(|p| p.unknown_key).count(),
            2,
            "{w:?}"
        );
        let strict: Vec<String> = c.warnings.iter().map(|p| p.strict().to_string()).collect();
        assert!(
            strict.iter().any(|m| m
                == "m.yaml:2:3: unknown key `chidren` in /a (did you mean `children`?) (--strict)"),
            "{strict:?}"
        );
        // other warnings stay warnings under --strict
        let c = ok("/a: {children: 1, state: x}\n");
        assert!(!c.warnings.is_empty() && c.warnings.iter().all(|p| !p.unknown_key));
    }

    #[test]
    fn env_expansion() {
        let env = |k: &str| match k {
            "A" => Some("x".to_string()),
            "E" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand_vars("a${A}b", &env).unwrap(), "axb");
        assert_eq!(expand_vars("${B:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand_vars("${E:-dflt}", &env).unwrap(), "dflt");
        assert_eq!(expand_vars("$$5 and $x", &env).unwrap(), "$5 and $x");
        assert!(expand_vars("${B}", &env).is_err());
        assert!(expand_vars("${A", &env).is_err());
        assert!(expand_vars("${A-B}", &env).is_err());
    }

    #[test]
    fn empty_config() {
        let c = ok("");
        assert!(c.rules.is_empty());
        assert!(c.warnings[0].message.contains("empty"));
    }
}
