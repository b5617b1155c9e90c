//! Path classes: znode paths folded into a few classes, like pt-query-digest's fingerprints.
//!
//! The instances an application creates (sequential nodes, brokers, partitions, region servers,
//! locks, service instances, ClickHouse parts…) differ only in numbers, ids and host names;
//! counting them one by one buries the shape of the traffic. [`PathClasses`] folds them:
//!
//! | rule | example | class |
//! | --- | --- | --- |
//! | `user` (`--normalize REGEX=REPLACEMENT`, first) | `/app/tenant-acme/x` with `tenant-[^/]+=tenant-{t}` | `/app/tenant-{t}/x` |
//! | `kafka` | `/brokers/topics/orders/partitions/3/state` | `/brokers/topics/{topic}/partitions/{n}/state` |
//! | `solr`, `hbase` | `/collections/logs/state.json`, `/hbase/table/t1` | `/collections/{collection}/state.json`, `/hbase/table/{table}` |
//! | `uuid` | `/services/web/0d8e…-…` | `/services/web/{uuid}` |
//! | `sequential` | `/locks/lock-0000000012` | `/locks/lock-{seq}` |
//! | `hbase-server` | `/hbase/rs/rs1.example.com,16020,1700000000000` | `/hbase/rs/{host},{port},{startcode}` |
//! | `host:port` | `/live_nodes/10.0.0.1:8983_solr` | `/live_nodes/{host}:{port}_solr` |
//! | `ip`, `host` | `/x/10.1.2.3`, `/x/zk1.prod.example.com` | `/x/{ip}`, `/x/{host}` |
//! | `hex` | `/hbase/region-in-transition/1588230740abcdef` | `/hbase/region-in-transition/{hex}` |
//! | `number` | `/pipe/n001`, `/brokers/ids/2`, `202401_12_34_0` | `/pipe/n{n}`, `/brokers/ids/{n}`, `{n}_{n}_{n}_{n}` |
//!
//! Numbers fold when they are a whole token (between `/ - _ . , : @ =` or the ends of a
//! component) or end a word (`shard1`, `replica2`, `n001`); digits inside a word (`log4j`) stay.
//! Each class records the rules that produced it ([`RuleSet`]), for display.
//!
//! Folding runs once per distinct path: the result is cached (bounded), so the per-call cost is
//! one hash lookup of the raw path, and the regular expressions never run on the hot path.

use std::fmt;

use regex::Regex;

use crate::hash::FastMap;
use crate::key::{cut_depth, push_lossy};

/// A set of folding rules (the ones that changed a path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RuleSet(u32);

/// The built-in rules, in the order they apply (after the user's).
const BUILTIN: [&str; 11] = [
    "kafka",
    "solr",
    "hbase",
    "uuid",
    "sequential",
    "hbase-server",
    "host:port",
    "ip",
    "host",
    "hex",
    "number",
];
const R_KAFKA: u32 = 0;
const R_SOLR: u32 = 1;
const R_HBASE: u32 = 2;
const R_UUID: u32 = 3;
const R_SEQ: u32 = 4;
const R_HBASE_SERVER: u32 = 5;
const R_HOST_PORT: u32 = 6;
const R_IP: u32 = 7;
const R_HOST: u32 = 8;
const R_HEX: u32 = 9;
const R_NUMBER: u32 = 10;
/// Bit of the user rules (all of them share it; [`PathClasses::rule_names`] names them).
const R_USER: u32 = 31;

impl RuleSet {
    fn add(&mut self, bit: u32) {
        self.0 |= 1 << bit;
    }

    /// No rule changed the path.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether a user rule (`--normalize`) changed the path.
    pub fn has_user(self) -> bool {
        self.0 & (1 << R_USER) != 0
    }

    /// The names of the built-in rules in the set, in the order they apply (`user` first when
    /// a user rule applied).
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        let user = self.has_user().then_some("user");
        user.into_iter().chain(
            BUILTIN
                .iter()
                .enumerate()
                .filter(move |(i, _)| self.0 & (1 << i) != 0)
                .map(|(_, n)| *n),
        )
    }
}

impl fmt::Display for RuleSet {
    /// `sequential+number`; `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, n) in self.names().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(n)?;
        }
        Ok(())
    }
}

/// A user folding rule: `REGEX=REPLACEMENT` (split at the last `=`; `$1`, `${name}` in the
/// replacement refer to groups), applied to the whole path, every match.
#[derive(Debug, Clone)]
pub struct UserRule {
    /// The rule as written.
    pub spec: String,
    regex: Regex,
    replacement: String,
}

impl UserRule {
    /// Parses `REGEX=REPLACEMENT`.
    pub fn parse(spec: &str) -> Result<UserRule, String> {
        let Some((re, rep)) = spec.rsplit_once('=') else {
            return Err(format!(
                "--normalize {spec:?}: expected REGEX=REPLACEMENT (e.g. 'tenant-[^/]+=tenant-{{t}}')"
            ));
        };
        if re.is_empty() {
            return Err(format!("--normalize {spec:?}: empty regular expression"));
        }
        let regex = Regex::new(re).map_err(|e| format!("--normalize {spec:?}: {e}"))?;
        Ok(UserRule {
            spec: spec.to_string(),
            regex,
            replacement: rep.to_string(),
        })
    }
}

impl std::str::FromStr for UserRule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        UserRule::parse(s)
    }
}

/// Which built-in rules apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Fold {
    /// None (user rules only).
    None,
    /// ZooKeeper's sequential suffixes only.
    Sequential,
    /// Every built-in rule.
    #[default]
    All,
}

/// Options of [`PathClasses`].
#[derive(Debug, Clone, Default)]
pub struct ClassOptions {
    /// Keep the first `depth` components before folding (see [`crate::PathNorm::depth`]).
    pub depth: usize,
    /// The built-in rules that apply. User rules apply whatever this is.
    pub fold: Fold,
    /// `--normalize` rules, applied first, in order.
    pub user: Vec<UserRule>,
}

/// The class of a path and the rules that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class<'a> {
    /// The folded path.
    pub path: &'a str,
    /// The rules that changed it.
    pub rules: RuleSet,
}

/// Raw paths remembered at most; beyond, paths are folded each time (same result, slower).
const CACHE_MAX: usize = 65_536;

/// Folds paths into classes, with a cache of the paths already seen.
#[derive(Debug, Clone)]
pub struct PathClasses {
    opts: ClassOptions,
    schema: Vec<(u32, Regex, &'static str)>,
    uuid: Option<Regex>,
    /// raw path → index in `folded_paths`
    cache: FastMap<Box<[u8]>, u32>,
    folded_paths: Vec<(Box<str>, RuleSet)>,
    scratch: String,
    scratch_rules: RuleSet,
    folded: u64,
}

impl PathClasses {
    /// A folder with `opts`.
    pub fn new(opts: ClassOptions) -> PathClasses {
        // Fixed patterns: a failure here is a bug caught by every test, never input-dependent;
        // an unbuildable one is simply left out rather than panicking.
        let schema = [
            (
                R_KAFKA,
                r"(/brokers/topics|/config/topics|/admin/delete_topics)/[^/{}]+",
                "${1}/{topic}",
            ),
            (R_KAFKA, r"(/consumers)/[^/{}]+", "${1}/{group}"),
            (R_SOLR, r"(/collections)/[^/{}]+", "${1}/{collection}"),
            (
                R_HBASE,
                r"(/hbase/table|/hbase/table-lock|/hbase/namespace)/[^/{}]+",
                "${1}/{table}",
            ),
        ]
        .into_iter()
        .filter_map(|(bit, re, rep)| Regex::new(re).ok().map(|r| (bit, r, rep)))
        .collect();
        let uuid = Regex::new(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        )
        .ok();
        PathClasses {
            opts,
            schema,
            uuid,
            cache: FastMap::default(),
            folded_paths: Vec::new(),
            scratch: String::new(),
            scratch_rules: RuleSet::default(),
            folded: 0,
        }
    }

    /// The options.
    pub fn options(&self) -> &ClassOptions {
        &self.opts
    }

    /// How many times a path was folded (cache misses): a measure of the cache's use.
    pub fn folds(&self) -> u64 {
        self.folded
    }

    /// The class of `path` (invalid UTF-8 is replaced).
    pub fn class(&mut self, path: &[u8]) -> Class<'_> {
        let path = cut_depth(path, self.opts.depth);
        let cached = self
            .cache
            .get(path)
            .map(|&i| i as usize)
            .filter(|&i| i < self.folded_paths.len());
        let i = match cached {
            Some(i) => i,
            None => {
                self.folded += 1;
                let mut out = String::with_capacity(path.len());
                let rules = self.fold_into(&mut out, path);
                if self.cache.len() >= CACHE_MAX {
                    self.scratch = out;
                    self.scratch_rules = rules;
                    return Class {
                        path: &self.scratch,
                        rules: self.scratch_rules,
                    };
                }
                let i = self.folded_paths.len();
                self.cache.insert(path.into(), i as u32);
                self.folded_paths.push((out.into_boxed_str(), rules));
                i
            }
        };
        match self.folded_paths.get(i) {
            Some((p, r)) => Class { path: p, rules: *r },
            None => Class {
                path: "",
                rules: RuleSet::default(),
            },
        }
    }

    /// Folds `path` (no cache, no depth cut) into `out`; returns the rules that changed it.
    pub fn fold_into(&self, out: &mut String, path: &[u8]) -> RuleSet {
        let mut rules = RuleSet::default();
        let mut s = String::with_capacity(path.len());
        push_lossy(&mut s, path);
        for u in &self.opts.user {
            if let std::borrow::Cow::Owned(t) = u.regex.replace_all(&s, u.replacement.as_str()) {
                if t != s {
                    rules.add(R_USER);
                    s = t;
                }
            }
        }
        if self.opts.fold == Fold::All {
            for (bit, re, rep) in &self.schema {
                if let std::borrow::Cow::Owned(t) = re.replace_all(&s, *rep) {
                    if t != s {
                        rules.add(*bit);
                        s = t;
                    }
                }
            }
            if let Some(std::borrow::Cow::Owned(t)) =
                self.uuid.as_ref().map(|u| u.replace_all(&s, "{uuid}"))
            {
                rules.add(R_UUID);
                s = t;
            }
        }
        for (i, comp) in s.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            fold_component(out, comp, self.opts.fold, &mut rules);
        }
        rules
    }

    /// The names of the rules in `rules`, user rules spelt out (`user:REGEX=REPLACEMENT`).
    pub fn rule_names(&self, rules: RuleSet) -> Vec<String> {
        let mut v = Vec::new();
        for n in rules.names() {
            if n == "user" {
                v.extend(self.opts.user.iter().map(|u| format!("user:{}", u.spec)));
            } else {
                v.push(n.to_string());
            }
        }
        v
    }
}

/// Length of the counter ZooKeeper appends to sequential znodes (`%010d`).
const SEQ_DIGITS: usize = 10;

fn is_sep(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'_' | b'.' | b',' | b':' | b'@' | b'=' | b' ' | b'+' | b'{' | b'}'
    )
}

/// Folds one path component into `out`.
fn fold_component(out: &mut String, comp: &str, fold: Fold, rules: &mut RuleSet) {
    if fold == Fold::None {
        out.push_str(comp);
        return;
    }
    let sequential_only = fold == Fold::Sequential;
    let b = comp.as_bytes();
    // sequential suffix: exactly ten trailing digits, not preceded by a digit
    let mut body = comp;
    let mut seq = false;
    if let Some(split) = b.len().checked_sub(SEQ_DIGITS) {
        let (prefix, digits) = b.split_at(split);
        if digits.iter().all(u8::is_ascii_digit) && !prefix.last().is_some_and(u8::is_ascii_digit) {
            body = comp.get(..split).unwrap_or("");
            seq = true;
            rules.add(R_SEQ);
        }
    }
    if sequential_only || body.is_empty() {
        out.push_str(body);
    } else if let Some(folded) = whole_component(body) {
        out.push_str(folded.0);
        rules.add(folded.1);
    } else if let Some(suffix) = host_port(body) {
        out.push_str("{host}:{port}");
        out.push_str(suffix);
        rules.add(R_HOST_PORT);
    } else {
        fold_tokens(out, body, rules);
    }
    if seq {
        out.push_str("{seq}");
    }
}

/// Components that are one thing as a whole: a region server name, an IP, a host name.
fn whole_component(c: &str) -> Option<(&'static str, u32)> {
    let parts: Vec<&str> = c.split(',').collect();
    if let [host, port, start] = parts.as_slice() {
        if is_hostish(host) && is_digits(port, 1, 5) && is_digits(start, 9, 13) {
            return Some(("{host},{port},{startcode}", R_HBASE_SERVER));
        }
    }
    if is_ipv4(c) {
        return Some(("{ip}", R_IP));
    }
    if is_dns_name(c) {
        return Some(("{host}", R_HOST));
    }
    None
}

/// `HOST:PORT` followed by nothing or `_suffix` (Solr's `10.0.0.1:8983_solr`): the suffix.
fn host_port(c: &str) -> Option<&str> {
    let (host, rest) = if let Some(r) = c.strip_prefix('[') {
        let (h, rest) = r.split_once("]:")?;
        (h, rest)
    } else {
        c.rsplit_once(':')?
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (port, suffix) = rest.split_at(digits);
    let host_ok = is_hostish(host)
        || (host.contains(':') && host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'));
    (host_ok && is_digits(port, 1, 5) && (suffix.is_empty() || suffix.starts_with('_')))
        .then_some(suffix)
}

fn is_digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_ipv4(s: &str) -> bool {
    let mut n = 0;
    for p in s.split('.') {
        n += 1;
        if !is_digits(p, 1, 3) || p.parse::<u16>().map_or(true, |v| v > 255) {
            return false;
        }
    }
    n == 4
}

/// A host name or an IPv4 address (letters, digits, dots and hyphens, starting alphanumeric).
fn is_hostish(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A fully qualified DNS name: three labels or more, the last alphabetic and not a file
/// extension (`zk1.prod.example.com`, not `clusterstate.json`).
fn is_dns_name(s: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "json",
        "xml",
        "yaml",
        "yml",
        "txt",
        "properties",
        "conf",
        "cfg",
        "lock",
        "tmp",
        "bak",
    ];
    let labels: Vec<&str> = s.split('.').collect();
    let Some(tld) = labels.last() else {
        return false;
    };
    labels.len() >= 3
        && is_hostish(s)
        && labels.iter().all(|l| !l.is_empty())
        && tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && !EXTENSIONS.contains(&tld.to_ascii_lowercase().as_str())
}

/// Folds numbers and hex ids inside a component, token by token.
fn fold_tokens(out: &mut String, c: &str, rules: &mut RuleSet) {
    let b = c.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let Some(&ch) = b.get(i) else { break };
        if is_sep(ch) {
            // placeholders from earlier rules are copied as they are
            if ch == b'{' {
                if let Some(end) = c.get(i..).and_then(|r| r.find('}')) {
                    out.push_str(c.get(i..i + end + 1).unwrap_or(""));
                    i += end + 1;
                    continue;
                }
            }
            out.push(char::from(ch));
            i += 1;
            continue;
        }
        // a token: up to the next separator
        let end = b
            .get(i..)
            .and_then(|r| r.iter().position(|&x| is_sep(x)))
            .map_or(b.len(), |p| i + p);
        let tok = c.get(i..end).unwrap_or("");
        fold_token(out, tok, rules);
        i = end;
    }
}

fn fold_token(out: &mut String, tok: &str, rules: &mut RuleSet) {
    let t = tok.as_bytes();
    if t.iter().all(u8::is_ascii_digit) {
        out.push_str("{n}");
        rules.add(R_NUMBER);
        return;
    }
    let hex = tok.strip_prefix("0x").unwrap_or(tok);
    let all_hex = !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if all_hex
        && (hex.len() < tok.len()
            || (hex.len() >= 8
                && hex.bytes().any(|b| b.is_ascii_digit())
                && hex.bytes().any(|b| b.is_ascii_alphabetic())))
    {
        out.push_str("{hex}");
        rules.add(R_HEX);
        return;
    }
    // a word ending with a number: shard1, replica2, n001
    let digits = t.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 {
        let word = tok.get(..tok.len() - digits).unwrap_or(tok);
        out.push_str(word);
        out.push_str("{n}");
        rules.add(R_NUMBER);
        return;
    }
    out.push_str(tok);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes() -> PathClasses {
        PathClasses::new(ClassOptions::default())
    }

    /// (path, class, rules)
    fn check(pc: &mut PathClasses, cases: &[(&str, &str, &str)]) {
        for (p, want, rules) in cases {
            let c = pc.class(p.as_bytes());
            assert_eq!(
                (c.path, c.rules.to_string().as_str()),
                (*want, *rules),
                "{p}"
            );
        }
    }

    #[test]
    fn kafka() {
        check(
            &mut classes(),
            &[
                ("/brokers/ids/1", "/brokers/ids/{n}", "number"),
                (
                    "/brokers/topics/orders/partitions/3/state",
                    "/brokers/topics/{topic}/partitions/{n}/state",
                    "kafka+number",
                ),
                (
                    "/brokers/topics/payments.v2/partitions/11/state",
                    "/brokers/topics/{topic}/partitions/{n}/state",
                    "kafka+number",
                ),
                ("/brokers/topics/orders", "/brokers/topics/{topic}", "kafka"),
                (
                    "/config/topics/__consumer_offsets",
                    "/config/topics/{topic}",
                    "kafka",
                ),
                (
                    "/config/changes/config_change_0000000042",
                    "/config/changes/config_change_{seq}",
                    "sequential",
                ),
                (
                    "/admin/delete_topics/old-topic",
                    "/admin/delete_topics/{topic}",
                    "kafka",
                ),
                ("/controller", "/controller", "-"),
                ("/controller_epoch", "/controller_epoch", "-"),
                (
                    "/isr_change_notification/isr_change_0000000007",
                    "/isr_change_notification/isr_change_{seq}",
                    "sequential",
                ),
                (
                    "/consumers/billing/offsets/orders/0",
                    "/consumers/{group}/offsets/orders/{n}",
                    "kafka+number",
                ),
                // chrooted
                (
                    "/kafka/prod/brokers/topics/t1/partitions/0/state",
                    "/kafka/prod/brokers/topics/{topic}/partitions/{n}/state",
                    "kafka+number",
                ),
            ],
        );
    }

    #[test]
    fn hbase() {
        check(
            &mut classes(),
            &[
                (
                    "/hbase/rs/rs1.example.com,16020,1700000000000",
                    "/hbase/rs/{host},{port},{startcode}",
                    "hbase-server",
                ),
                (
                    "/hbase/rs/10.0.0.7,16020,1700000000123",
                    "/hbase/rs/{host},{port},{startcode}",
                    "hbase-server",
                ),
                (
                    "/hbase/meta-region-server",
                    "/hbase/meta-region-server",
                    "-",
                ),
                ("/hbase/master", "/hbase/master", "-"),
                (
                    "/hbase/backup-masters/m2.example.com,16000,1700000000001",
                    "/hbase/backup-masters/{host},{port},{startcode}",
                    "hbase-server",
                ),
                ("/hbase/table/usertable", "/hbase/table/{table}", "hbase"),
                (
                    "/hbase/region-in-transition/1588230740abcdef0123456789abcdef",
                    "/hbase/region-in-transition/{hex}",
                    "hex",
                ),
            ],
        );
    }

    #[test]
    fn solr() {
        check(
            &mut classes(),
            &[
                ("/live_nodes/10.0.0.1:8983_solr", "/live_nodes/{host}:{port}_solr", "host:port"),
                (
                    "/live_nodes/solr-2.solr-headless:8983_solr",
                    "/live_nodes/{host}:{port}_solr",
                    "host:port",
                ),
                (
                    "/collections/logs/state.json",
                    "/collections/{collection}/state.json",
                    "solr",
                ),
                (
                    "/collections/logs/leaders/shard1/leader",
                    "/collections/{collection}/leaders/shard{n}/leader",
                    "solr+number",
                ),
                (
                    "/collections/logs/leader_elect/shard2/election/72057594037927936-core_node3-n_0000000001",
                    "/collections/{collection}/leader_elect/shard{n}/election/{n}-core_node{n}-n_{seq}",
                    "solr+sequential+number",
                ),
                (
                    "/overseer/queue/qn-0000000123",
                    "/overseer/queue/qn-{seq}",
                    "sequential",
                ),
                (
                    "/overseer_elect/election/72057594037927936-10.0.0.1:8983_solr-n_0000000004",
                    "/overseer_elect/election/{host}:{port}_solr-n_{seq}",
                    "sequential+host:port",
                ),
                ("/clusterstate.json", "/clusterstate.json", "-"),
                ("/security.json", "/security.json", "-"),
            ],
        );
    }

    #[test]
    fn curator_recipes() {
        check(
            &mut classes(),
            &[
                // InterProcessMutex, protected mode
                (
                    "/locks/orders/_c_2d2b8b1f-8c0a-4c5e-9b0a-3f8f5a3c9e11-lock-0000000012",
                    "/locks/orders/_c_{uuid}-lock-{seq}",
                    "uuid+sequential",
                ),
                (
                    "/locks/orders/lock-0000000013",
                    "/locks/orders/lock-{seq}",
                    "sequential",
                ),
                // LeaderLatch
                (
                    "/election/_c_0b7e3f0e-0f6a-4c7d-8d1d-6f2e9a1b2c3d-latch-0000000001",
                    "/election/_c_{uuid}-latch-{seq}",
                    "uuid+sequential",
                ),
                // LeaderSelector
                (
                    "/leader/_c_0b7e3f0e-0f6a-4c7d-8d1d-6f2e9a1b2c3d-lock-0000000002",
                    "/leader/_c_{uuid}-lock-{seq}",
                    "uuid+sequential",
                ),
                // service discovery: instances are UUIDs
                (
                    "/discovery/payments/6f1c2a9e-5d4b-4e3a-9c8b-7a6f5e4d3c2b",
                    "/discovery/payments/{uuid}",
                    "uuid",
                ),
                // semaphores, queues, barriers
                (
                    "/semaphores/s1/leases/_c_0b7e3f0e-0f6a-4c7d-8d1d-6f2e9a1b2c3d-lease-0000000007",
                    "/semaphores/s{n}/leases/_c_{uuid}-lease-{seq}",
                    "uuid+sequential+number",
                ),
                ("/queue/qn-0000000099", "/queue/qn-{seq}", "sequential"),
            ],
        );
    }

    #[test]
    fn clickhouse() {
        check(
            &mut classes(),
            &[
                (
                    "/clickhouse/tables/01/default/hits/replicas/replica1/queue/queue-0000000042",
                    "/clickhouse/tables/{n}/default/hits/replicas/replica{n}/queue/queue-{seq}",
                    "sequential+number",
                ),
                (
                    "/clickhouse/tables/01/default/hits/log/log-0000001234",
                    "/clickhouse/tables/{n}/default/hits/log/log-{seq}",
                    "sequential+number",
                ),
                (
                    "/clickhouse/tables/01/default/hits/blocks/all_5916541264066423498_9583127418520436421",
                    "/clickhouse/tables/{n}/default/hits/blocks/all_{n}_{n}",
                    "number",
                ),
                (
                    "/clickhouse/tables/01/default/hits/block_numbers/202401/block-0000000007",
                    "/clickhouse/tables/{n}/default/hits/block_numbers/{n}/block-{seq}",
                    "sequential+number",
                ),
                (
                    "/clickhouse/task_queue/ddl/query-0000000005",
                    "/clickhouse/task_queue/ddl/query-{seq}",
                    "sequential",
                ),
                (
                    "/clickhouse/tables/01/default/hits/replicas/replica1/parts/202401_12_34_0",
                    "/clickhouse/tables/{n}/default/hits/replicas/replica{n}/parts/{n}_{n}_{n}_{n}",
                    "number",
                ),
            ],
        );
    }

    #[test]
    fn hosts_ids_and_plain_names() {
        check(
            &mut classes(),
            &[
                ("/pipe/n001", "/pipe/n{n}", "number"),
                ("/pipe/n019", "/pipe/n{n}", "number"),
                ("/x/10.1.2.3", "/x/{ip}", "ip"),
                ("/x/zk1.prod.example.com", "/x/{host}", "host"),
                ("/x/zk1.example.com:2181", "/x/{host}:{port}", "host:port"),
                ("/x/[::1]:2181", "/x/{host}:{port}", "host:port"),
                ("/sessions/0x1000010c8cc0000", "/sessions/{hex}", "hex"),
                ("/blobs/a3f9c0d2e1b4", "/blobs/{hex}", "hex"),
                // words stay words
                ("/app/log4j/config", "/app/log4j/config", "-"),
                ("/app/deadbeefcafe", "/app/deadbeefcafe", "-"),
                ("/app/config.v.json", "/app/config.v.json", "-"),
                ("/zookeeper/quota", "/zookeeper/quota", "-"),
                ("/", "/", "-"),
                ("", "", "-"),
                ("/a//b/", "/a//b/", "-"),
            ],
        );
    }

    #[test]
    fn user_rules_apply_first_and_are_named() {
        let rule = UserRule::parse("tenant-[^/]+=tenant-{t}").unwrap();
        let mut pc = PathClasses::new(ClassOptions {
            user: vec![
                rule,
                UserRule::parse(r"^/jobs/([a-z]+)-\w+=/jobs/$1-*").unwrap(),
            ],
            ..ClassOptions::default()
        });
        check(
            &mut pc,
            &[
                ("/app/tenant-acme/x", "/app/tenant-{t}/x", "user"),
                (
                    "/jobs/etl-ab12/lock-0000000001",
                    "/jobs/etl-*/lock-{seq}",
                    "user+sequential",
                ),
            ],
        );
        let rules = pc.class(b"/app/tenant-acme/x").rules;
        assert_eq!(
            pc.rule_names(rules),
            vec![
                "user:tenant-[^/]+=tenant-{t}".to_string(),
                r"user:^/jobs/([a-z]+)-\w+=/jobs/$1-*".to_string()
            ]
        );
        assert!(UserRule::parse("no equals sign").is_err());
        assert!(UserRule::parse("=x").is_err());
        let e = UserRule::parse("([a-=x").unwrap_err();
        assert!(e.contains("--normalize"), "{e}");
    }

    #[test]
    fn sequential_only_and_depth() {
        let mut pc = PathClasses::new(ClassOptions {
            fold: Fold::Sequential,
            ..ClassOptions::default()
        });
        check(
            &mut pc,
            &[
                ("/locks/lock-0000000012", "/locks/lock-{seq}", "sequential"),
                ("/brokers/ids/1", "/brokers/ids/1", "-"),
            ],
        );
        let mut pc = PathClasses::new(ClassOptions {
            fold: Fold::None,
            user: vec![UserRule::parse("x=y").unwrap()],
            ..ClassOptions::default()
        });
        check(
            &mut pc,
            &[("/x/lock-0000000001", "/y/lock-0000000001", "user")],
        );
        let mut pc = PathClasses::new(ClassOptions {
            depth: 2,
            ..ClassOptions::default()
        });
        check(
            &mut pc,
            &[("/a/n-0000000007/c", "/a/n-{seq}", "sequential")],
        );
    }

    #[test]
    fn folds_once_per_distinct_path() {
        let mut pc = classes();
        for i in 0..1000 {
            let p = format!("/pipe/n{:03}", i % 20);
            assert_eq!(pc.class(p.as_bytes()).path, "/pipe/n{n}");
        }
        assert_eq!(pc.folds(), 20);
    }

    #[test]
    fn a_few_classes_for_many_paths() {
        let mut pc = classes();
        let mut seen = std::collections::BTreeSet::new();
        for t in ["orders", "payments", "clicks"] {
            for p in 0..12 {
                for leaf in ["state", ""] {
                    let path = format!("/brokers/topics/{t}/partitions/{p}/{leaf}");
                    seen.insert(pc.class(path.as_bytes()).path.to_string());
                }
            }
        }
        assert_eq!(seen.len(), 2, "{seen:?}");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut pc = classes();
        assert_eq!(pc.class(b"/a\xff/7").path, "/a\u{fffd}/{n}");
    }

    /// Cost per call on the hot path, against the sequential-only `PathNorm` it would replace:
    /// `cargo test -p zkscope-analysis --release --lib classes::tests::cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cost() {
        let paths: Vec<String> = (0..20_000)
            .map(|i| match i % 4 {
                0 => format!("/brokers/topics/t{}/partitions/{}/state", i % 50, i % 12),
                1 => format!("/locks/orders/lock-{:010}", i),
                2 => format!("/services/web/instance-{}", i % 300),
                _ => format!(
                    "/clickhouse/tables/01/db/t/replicas/r1/queue/queue-{:010}",
                    i
                ),
            })
            .collect();
        let calls = 2_000_000;
        let mut pc = classes();
        let mut n = 0usize;
        let t = std::time::Instant::now();
        for i in 0..calls {
            n += pc.class(paths[i % paths.len()].as_bytes()).path.len();
        }
        let classes_ns = t.elapsed().as_nanos() as f64 / calls as f64;
        let norm = crate::PathNorm {
            depth: 0,
            fold_sequential: true,
        };
        let mut buf = String::new();
        let t = std::time::Instant::now();
        for i in 0..calls {
            buf.clear();
            norm.write(&mut buf, paths[i % paths.len()].as_bytes());
            n += buf.len();
        }
        let norm_ns = t.elapsed().as_nanos() as f64 / calls as f64;
        let mut fresh = classes();
        let t = std::time::Instant::now();
        for p in &paths {
            n += fresh.class(p.as_bytes()).path.len();
        }
        let miss_ns = t.elapsed().as_nanos() as f64 / paths.len() as f64;
        println!(
            "PathClasses::class {classes_ns:.1} ns/call (cached; {miss_ns:.0} ns per first sight), \
             PathNorm::write {norm_ns:.1} ns/call ({n})"
        );
    }
}
