//! Which endpoint speaks which protocol: ports given on the command line, the well-known
//! defaults, and what the traffic itself tells (the ensemble configuration in election
//! notifications and NEWLEADER/reconfig packets, the addresses in initial messages, and
//! connections recognised from their first bytes).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;
use zkscope_proto::election::{parse_config, parse_host_port, ConfigLine};

use super::Proto;

/// How an endpoint became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// A command-line option (`--port`, `--server`, …).
    Option,
    /// A well-known default port (2181, 2888, 3888).
    Default,
    /// The ensemble configuration carried by an election notification.
    FleConfig,
    /// The ensemble configuration carried by a NEWLEADER packet.
    NewLeader,
    /// A reconfig transaction (PROPOSAL/INFORM/INFORMANDACTIVATE).
    Reconfig,
    /// The election address in an initial message.
    Initial,
    /// A connection to it was recognised from its first bytes.
    Bytes,
}

impl Source {
    /// Kebab-case name (`fle-config`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Option => "option",
            Source::Default => "default",
            Source::FleConfig => "fle-config",
            Source::NewLeader => "newleader",
            Source::Reconfig => "reconfig",
            Source::Initial => "initial",
            Source::Bytes => "bytes",
        }
    }
}

/// What is known about a listening endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Endpoint {
    /// Protocol served there.
    pub proto: Proto,
    /// The server id, when the configuration or an initial message told it.
    pub sid: Option<i64>,
    /// How it became known.
    pub source: Source,
}

/// An endpoint learnt from the traffic (reported once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Discovery {
    /// Address and port (port-only entries have the unspecified address).
    pub addr: SocketAddr,
    /// What it is.
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

/// Resolves a host name to its addresses (the binary plugs DNS in; the default knows only
/// literals and `localhost`).
pub type Resolver = Box<dyn FnMut(&str) -> Vec<IpAddr> + Send>;

/// Most host names whose addresses are cached.
const MAX_HOSTS: usize = 4096;
/// Most distinct config texts remembered (a config is parsed once).
const MAX_CONFIGS: usize = 1024;

pub(crate) struct Topology {
    exact: HashMap<SocketAddr, Endpoint>,
    /// Addresses of the exact endpoints (the hosts running ZooKeeper).
    zk_hosts: HashSet<IpAddr>,
    /// The server id on each host, from endpoints learnt with their id (`None`: the host runs
    /// several servers, as test ensembles on one machine do).
    host_sids: HashMap<IpAddr, Option<i64>>,
    ports: HashMap<u16, Endpoint>,
    hosts: HashMap<String, Vec<IpAddr>>,
    resolver: Option<Resolver>,
    seen_configs: HashSet<u64>,
    /// Bumped whenever an endpoint is added (pending connections look again).
    pub(crate) generation: u64,
    /// New endpoints not yet reported.
    pub(crate) fresh: Vec<Discovery>,
    /// Every endpoint learnt from the traffic, in order.
    pub(crate) learnt: Vec<Discovery>,
    /// Endpoints claimed by two protocols (the first claim is kept).
    pub(crate) conflicts: u64,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("exact", &self.exact)
            .field("ports", &self.ports)
            .finish_non_exhaustive()
    }
}

fn note_host_sid(host_sids: &mut HashMap<IpAddr, Option<i64>>, ip: IpAddr, sid: i64) {
    host_sids
        .entry(ip)
        .and_modify(|known| {
            if *known != Some(sid) {
                *known = None;
            }
        })
        .or_insert(Some(sid));
}

fn literal(host: &str) -> Option<Vec<IpAddr>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(vec![ip]);
    }
    if h.eq_ignore_ascii_case("localhost") {
        return Some(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    None
}

impl Topology {
    pub(crate) fn new() -> Self {
        Topology {
            exact: HashMap::new(),
            zk_hosts: HashSet::new(),
            host_sids: HashMap::new(),
            ports: HashMap::new(),
            hosts: HashMap::new(),
            resolver: None,
            seen_configs: HashSet::new(),
            generation: 0,
            fresh: Vec::new(),
            learnt: Vec::new(),
            conflicts: 0,
        }
    }

    pub(crate) fn set_resolver(&mut self, r: Resolver) {
        self.resolver = Some(r);
    }

    /// Declares a port (any address) for a protocol; the first declaration wins.
    pub(crate) fn add_port(&mut self, port: u16, proto: Proto, source: Source) {
        self.ports.entry(port).or_insert(Endpoint {
            proto,
            sid: None,
            source,
        });
    }

    /// Declares an exact endpoint given on the command line.
    pub(crate) fn add_option(&mut self, addr: SocketAddr, proto: Proto) {
        self.zk_hosts.insert(addr.ip());
        self.exact.entry(addr).or_insert(Endpoint {
            proto,
            sid: None,
            source: Source::Option,
        });
    }

    /// What is known about `addr` (exact entries first, then its port).
    pub(crate) fn lookup(&self, addr: &SocketAddr) -> Option<&Endpoint> {
        self.exact
            .get(addr)
            .or_else(|| self.ports.get(&addr.port()))
    }

    /// The server id listening at `addr` for `proto`, if known.
    pub(crate) fn sid_of(&self, addr: &SocketAddr, proto: Proto) -> Option<i64> {
        self.exact
            .get(addr)
            .filter(|e| e.proto == proto)
            .and_then(|e| e.sid)
    }

    /// Learns an endpoint from the traffic. Returns true when it is new.
    pub(crate) fn learn(
        &mut self,
        addr: SocketAddr,
        proto: Proto,
        sid: Option<i64>,
        source: Source,
    ) -> bool {
        if let Some(e) = self.exact.get_mut(&addr) {
            if e.proto != proto {
                self.conflicts += 1;
            } else if e.sid.is_none() && sid.is_some() {
                // Known from its bytes, now named by a configuration.
                e.sid = sid;
                if let Some(sid) = sid {
                    note_host_sid(&mut self.host_sids, addr.ip(), sid);
                }
                if let Some(d) = self.learnt.iter_mut().find(|d| d.addr == addr) {
                    d.endpoint.sid = sid;
                }
            }
            return false;
        }
        if addr.ip().is_unspecified() {
            // A wildcard listen address: the port, on any address.
            if self.ports.contains_key(&addr.port()) {
                return false;
            }
            let endpoint = Endpoint { proto, sid, source };
            self.ports.insert(addr.port(), endpoint);
            self.note(addr, endpoint);
            return true;
        }
        let endpoint = Endpoint { proto, sid, source };
        self.exact.insert(addr, endpoint);
        self.zk_hosts.insert(addr.ip());
        if let Some(sid) = sid {
            note_host_sid(&mut self.host_sids, addr.ip(), sid);
        }
        self.note(addr, endpoint);
        true
    }

    /// The one server id known to run on `ip` (none if unknown or several).
    pub(crate) fn sid_of_host(&self, ip: IpAddr) -> Option<i64> {
        self.host_sids.get(&ip).copied().flatten()
    }

    /// Whether `ip` runs a known ZooKeeper endpoint (given or learnt with its address).
    pub(crate) fn is_zk_host(&self, ip: IpAddr) -> bool {
        self.zk_hosts.contains(&ip)
    }

    fn note(&mut self, addr: SocketAddr, endpoint: Endpoint) {
        self.generation += 1;
        let d = Discovery { addr, endpoint };
        self.fresh.push(d);
        self.learnt.push(d);
    }

    /// The addresses of a host named in the traffic: literals, `localhost`, else the resolver
    /// (cached, failures included).
    fn resolve(&mut self, host: &str) -> Vec<IpAddr> {
        if let Some(ips) = literal(host) {
            return ips;
        }
        if let Some(ips) = self.hosts.get(host) {
            return ips.clone();
        }
        let ips = match self.resolver.as_mut() {
            Some(r) => r(host),
            None => Vec::new(),
        };
        if self.hosts.len() >= MAX_HOSTS {
            self.hosts.clear();
        }
        self.hosts.insert(host.to_string(), ips.clone());
        ips
    }

    /// Learns the election address(es) an initial message announces for server `sid`.
    pub(crate) fn learn_initial(&mut self, address: &str, sid: i64) {
        let Some((host, port)) = parse_host_port(address) else {
            return;
        };
        for ip in self.resolve(host) {
            self.learn(
                SocketAddr::new(ip, port),
                Proto::Fle,
                Some(sid),
                Source::Initial,
            );
        }
    }

    /// Learns every server of a quorum config text (parsed once per distinct text).
    pub(crate) fn learn_config(&mut self, text: &[u8], source: Source) {
        let mut h = DefaultHasher::new();
        text.hash(&mut h);
        if !self.seen_configs.insert(h.finish()) {
            return;
        }
        if self.seen_configs.len() > MAX_CONFIGS {
            self.seen_configs.clear();
        }
        let Ok(text) = std::str::from_utf8(text) else {
            return;
        };
        for line in parse_config(text) {
            let ConfigLine::Server(s) = line else {
                continue;
            };
            let mut server_ips = Vec::new();
            for a in s.addrs.iter() {
                let ips = self.resolve(a.host);
                for ip in &ips {
                    self.learn(
                        SocketAddr::new(*ip, a.quorum_port),
                        Proto::Zab,
                        Some(s.sid),
                        source,
                    );
                    self.learn(
                        SocketAddr::new(*ip, a.election_port),
                        Proto::Fle,
                        Some(s.sid),
                        source,
                    );
                }
                server_ips.extend(ips);
            }
            if let Some(c) = s.client {
                let ips = match literal(c.host) {
                    // A wildcard client address: clients reach it on the server's addresses.
                    Some(v) if v.iter().all(IpAddr::is_unspecified) => server_ips.clone(),
                    _ => self.resolve(c.host),
                };
                for ip in ips {
                    self.learn(
                        SocketAddr::new(ip, c.port),
                        Proto::Client,
                        Some(s.sid),
                        source,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_endpoints() {
        let mut t = Topology::new();
        t.learn_config(
            b"server.1=localhost:2780:2783:participant;0.0.0.0:2181\n\
              server.2=[::1]:2781:2784:participant;[::1]:2182\n\
              server.3=zk3.invalid:2782:2785:observer;2183\nversion=100000000",
            Source::FleConfig,
        );
        let v4 = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        let v6 = |p| SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), p);
        assert_eq!(t.lookup(&v4(2780)).map(|e| e.proto), Some(Proto::Zab));
        assert_eq!(
            t.lookup(&v6(2783)).map(|e| (e.proto, e.sid)),
            Some((Proto::Fle, Some(1)))
        );
        assert_eq!(t.lookup(&v4(2181)).map(|e| e.proto), Some(Proto::Client));
        assert_eq!(t.lookup(&v6(2784)).and_then(|e| e.sid), Some(2));
        assert!(t.lookup(&v4(2784)).is_none());
        // Unresolvable names are skipped.
        assert!(t.lookup(&v4(2785)).is_none());
        let n = t.learnt.len();
        t.learn_config(b"server.1=localhost:2780:2783", Source::NewLeader);
        t.learn_config(b"server.1=localhost:2780:2783", Source::NewLeader);
        assert_eq!(t.learnt.len(), n);
        t.learn(v4(2780), Proto::Fle, None, Source::Bytes);
        assert_eq!(t.conflicts, 1);
    }
}
