//! Real ZooKeeper 3.8 ensembles of other shapes than ensemble_live's, captured live on `lo`
//! by `zkscope dump --protocol auto` with no --port, and by tcpdump (issue 3):
//!
//! * three participants and an observer (`peerType=observer`, `server.4=…:observer`): the
//!   observer's OBSERVERINFO handshake, client writes that reach it as INFORM while the
//!   followers get PROPOSAL+COMMIT, and `zkscope elections` keeping it out of the vote;
//! * a configuration naming hosts (`localhost`, and this machine's name when it resolves to a
//!   loopback address) instead of addresses: the ports are learnt from the configuration;
//! * the IPv6 loopback (`server.N=[::1]:q:e;[::1]:c`): discovery and all three protocols;
//! * quorum TLS (`sslQuorum=true`, stores made with the JDK's keytool): every election and
//!   quorum connection is reported as TLS, per connection, caught from its start or
//!   mid-stream; and the first step of a rolling upgrade (`portUnification=true`, one member
//!   still plaintext), where both kinds share the same ports.
//!
//! Each scenario runs one ensemble; scenarios run one at a time (a mutex) so that the JVMs of
//! two ensembles do not compete for the CPU. Needs root (capture on lo) and
//! scripts/install-test-deps.sh, like the other live tests.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use support::*;

/// Elections and starts get a generous wait (2 slow cores in CI).
const ELECTION: Duration = Duration::from_secs(90);

/// Starts a scenario: waits for the others to finish (the guard lets the next one go).
/// None, the test skipped, with the oracle decoder (it has no election/quorum support).
fn scenario() -> Option<MutexGuard<'static, ()>> {
    if use_oracle() {
        eprintln!("skipped: the oracle decoder has no election/quorum support");
        return None;
    }
    static LOCK: Mutex<()> = Mutex::new(());
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// The ensemble's listening ports.
struct Ports {
    fle: BTreeSet<u16>,
    zab: BTreeSet<u16>,
    client: BTreeSet<u16>,
}

impl Ports {
    fn of(ens: &ZkEnsemble) -> Ports {
        Ports {
            fle: ens
                .servers
                .iter()
                .filter_map(|s| s.election_port())
                .collect(),
            zab: ens.servers.iter().filter_map(|s| s.quorum_port()).collect(),
            client: ens.servers.iter().map(|s| s.client_port()).collect(),
        }
    }

    fn all(&self) -> impl Iterator<Item = u16> + '_ {
        self.fle
            .iter()
            .chain(&self.zab)
            .chain(&self.client)
            .copied()
    }

    fn has(&self, p: u16) -> bool {
        self.fle.contains(&p) || self.zab.contains(&p) || self.client.contains(&p)
    }

    /// A message or note of this ensemble (other tests may run ZooKeeper on lo meanwhile).
    fn ours(&self, m: &Value) -> bool {
        [s(m, "src"), s(m, "dst"), s(m, "endpoint"), s(m, "server")]
            .iter()
            .any(|a| self.has(port_of(a)))
    }

    /// A BPF filter for these ports.
    fn filter(&self) -> String {
        self.all()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// `--fle-port P … --zab-port Q …`.
    fn port_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        for p in &self.fle {
            v.extend(["--fle-port".to_string(), p.to_string()]);
        }
        for p in &self.zab {
            v.extend(["--zab-port".to_string(), p.to_string()]);
        }
        v
    }
}

/// What one scenario captured.
struct Captured {
    ens: ZkEnsemble,
    ports: Ports,
    /// The live `zkscope dump -i lo --protocol auto --format json` (no --port), our messages.
    live: Vec<Value>,
    live_stderr: String,
    pcap: std::path::PathBuf,
    _dir: TempDir,
}

impl Captured {
    fn count(&self, proto: &str, ty: &str) -> usize {
        self.live
            .iter()
            .filter(|m| s(m, "proto") == proto && s(m, "type") == ty)
            .count()
    }

    /// The live run's messages of type `ty`.
    fn of_type<'a>(&'a self, ty: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.live.iter().filter(move |m| s(m, "type") == ty)
    }

    /// Election and quorum messages the live run could not decode.
    fn undecodable(&self) -> usize {
        self.count("zab", "Undecodable") + self.count("fle", "Undecodable")
    }

    /// Asserts that the live run discovered every member's endpoints of these `roles`
    /// ("fle", "zab", "client"), each at `host(member)`.
    fn assert_discovered(&self, roles: &[&str], host: impl Fn(&ZkServer) -> String) {
        let discovered: BTreeSet<(String, String)> = self
            .of_type("Discovered")
            .map(|m| (s(m, "role").to_string(), s(m, "endpoint").to_string()))
            .collect();
        let ctx = self.ctx();
        for srv in &self.ens.servers {
            for (role, port) in [
                ("fle", srv.election_port().unwrap_or(0)),
                ("zab", srv.quorum_port().unwrap_or(0)),
                ("client", srv.client_port()),
            ] {
                if !roles.contains(&role) {
                    continue;
                }
                let ep = format!("{}:{port}", host(srv));
                assert!(
                    discovered.contains(&(role.to_string(), ep.clone())),
                    "{role} {ep} not discovered: {discovered:?}\n{ctx}"
                );
            }
        }
    }

    fn ctx(&self) -> String {
        tail(&self.live_stderr, 8)
    }

    /// `zkscope ARGS -r PCAP -f <our ports>`.
    fn run_on_file(&self, args: &[&str]) -> std::process::Output {
        let f = self.pcap.to_str().unwrap_or_default();
        let filter = self.ports.filter();
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["-r", f, "-f", &filter]);
        zkscope(&a)
    }

    /// `zkscope dump --protocol auto --format json -r PCAP -f <our ports> EXTRA…`, parsed.
    fn dump_file(&self, extra: &[&str]) -> (Vec<Value>, String) {
        let mut args = vec!["dump", "--protocol", "auto", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run_on_file(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let (msgs, bad) = parse_json_lines(&String::from_utf8_lossy(&out.stdout));
        assert!(bad.is_empty(), "{bad:?}");
        (msgs, stderr)
    }

    /// `zkscope elections --format json` on the file: the rounds.
    fn rounds(&self) -> Vec<Value> {
        let (rounds, code, stderr) = self.rounds_and_status();
        assert_eq!(code, Some(0), "{stderr}");
        rounds
    }

    /// [`Captured::rounds`], its exit status and stderr.
    fn rounds_and_status(&self) -> (Vec<Value>, Option<i32>, String) {
        let out = self.run_on_file(&["elections", "--format", "json"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v: Value = serde_json::from_slice(&out.stdout).expect("a JSON array of rounds");
        (
            v.as_array().cloned().unwrap_or_default(),
            out.status.code(),
            stderr,
        )
    }
}

/// Starts tcpdump and a live zkscope (all TCP, no port), then the ensemble; runs `work` once
/// every member serves; stops the captures.
fn capture(label: &str, builder: EnsembleBuilder, work: impl FnOnce(&mut ZkEnsemble)) -> Captured {
    let dir = TempDir::new(label);
    let pcap = dir.join("lo.pcap");
    let tcpdump = Tcpdump::start("lo", "tcp", &pcap);
    let live = ZkscopeLive::auto(&["--include-pings"]);
    let mut ens = builder.start();
    ens.wait_leader(ELECTION);
    work(&mut ens);
    let out = live.stop();
    let pcap = tcpdump.stop();
    assert!(out.bad_lines.is_empty(), "{:?}", out.bad_lines);
    let ports = Ports::of(&ens);
    let live = out.messages.into_iter().filter(|m| ports.ours(m)).collect();
    Captured {
        ens,
        ports,
        live,
        live_stderr: out.stderr,
        pcap,
        _dir: dir,
    }
}

/// The Java CLI's writes under `prefix`: (command, txn op, path).
fn writes(prefix: &str) -> Vec<(String, &'static str, String)> {
    vec![
        (format!("create {prefix} a"), "create", prefix.to_string()),
        (format!("set {prefix} b"), "setData", prefix.to_string()),
        (
            format!("create {prefix}/c x"),
            "create",
            format!("{prefix}/c"),
        ),
        (
            format!("delete {prefix}/c"),
            "delete",
            format!("{prefix}/c"),
        ),
    ]
}

fn run_writes(ens: &ZkEnsemble, via: u32, prefix: &str) {
    let cmds: Vec<String> = writes(prefix).into_iter().map(|w| w.0).collect();
    let cmds: Vec<&str> = cmds.iter().map(String::as_str).collect();
    let cli = java_cli(&ens.server(via).addr(), &cmds);
    assert!(cli.status.success(), "{}", tail(&cli.stderr, 20));
    ens.wait_synced(via, ELECTION);
}

/// The leader's PROPOSAL zxids of the writes under `prefix`, checked against the CLI's
/// operations; then, for each, exactly one PROPOSAL and one COMMIT on each of `followers`
/// connections, and on no other. Returns the zxids.
fn check_proposals(msgs: &[&Value], prefix: &str, followers: usize) -> Vec<i64> {
    let props: BTreeMap<i64, (String, String)> = msgs
        .iter()
        .filter(|m| {
            s(m, "proto") == "zab" && s(m, "type") == "Proposal" && s(m, "path").starts_with(prefix)
        })
        .filter_map(|m| {
            Some((
                m["zxid"].as_i64()?,
                (s(m, "txn_op").to_string(), s(m, "path").to_string()),
            ))
        })
        .collect();
    let want: Vec<(String, String)> = writes(prefix)
        .into_iter()
        .map(|w| (w.1.to_string(), w.2))
        .collect();
    let got: Vec<(String, String)> = props.values().cloned().collect();
    assert_eq!(got, want, "proposals {props:?}");
    for zxid in props.keys() {
        let mut per_conn: BTreeMap<(i64, String), usize> = BTreeMap::new();
        for m in msgs.iter().filter(|m| {
            s(m, "proto") == "zab"
                && s(m, "sender") == "leader"
                && m["zxid"].as_i64() == Some(*zxid)
                && matches!(s(m, "type"), "Proposal" | "Commit")
        }) {
            *per_conn
                .entry((m["conn"].as_i64().unwrap_or(-1), s(m, "type").to_string()))
                .or_insert(0) += 1;
        }
        let conns: BTreeSet<i64> = per_conn.keys().map(|k| k.0).collect();
        assert_eq!(conns.len(), followers, "{zxid:#x}: {per_conn:?}");
        for c in conns {
            for ty in ["Proposal", "Commit"] {
                assert_eq!(
                    per_conn.get(&(c, ty.to_string())),
                    Some(&1),
                    "{zxid:#x}: {per_conn:?}"
                );
            }
        }
    }
    props.keys().copied().collect()
}

/// Waits until member `id`'s `srvr` says `mode` (one `srvr` can time out on a loaded machine).
fn wait_mode(ens: &ZkEnsemble, id: u32, mode: &str) {
    let ok = wait_for(ELECTION, || {
        (ens.server(id).mode().as_deref() == Some(mode)).then_some(())
    });
    assert!(ok.is_some(), "member {id} is not {mode}");
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

/// The types of the non-ping quorum messages of connection `conn`, in order.
fn conn_types(msgs: &[Value], conn: i64) -> Vec<String> {
    msgs.iter()
        .filter(|m| s(m, "proto") == "zab" && m["conn"].as_i64() == Some(conn))
        .map(|m| s(m, "type").to_string())
        .filter(|t| t != "Ping")
        .collect()
}

// ------------------------------------------------------------------ observer

#[test]
fn observer_handshake_inform_and_elections() {
    let Some(_serial) = scenario() else {
        return;
    };
    let prefix = format!("/zkscope-obs-{}", std::process::id());
    let mut leader = 0;
    let mut starts = Vec::new();
    let cap = capture(
        "ens-observer",
        ZkEnsemble::builder(3)
            .observers(1)
            .opts(ZkOpts::new().standalone_enabled(false)),
        |ens| {
            leader = ens.wait_leader(ELECTION);
            wait_mode(ens, 4, "observer");
            // Writes through the observer: forwarded to the leader as REQUEST.
            run_writes(ens, 4, &prefix);
            // The observer restarts and finds the leader again: a round of its own, each
            // time. (An observer votes for no one with no zxid and restarts at election
            // epoch 1: once it has joined a settled ensemble, its next start's LOOKING vote
            // is the same as its last one; the second restart makes that certain.)
            for _ in 0..2 {
                ens.kill(4);
                starts.push(now());
                ens.start_member(4);
                wait_mode(ens, 4, "observer");
            }
            wait_mode(ens, leader, "leader");
        },
    );
    let ctx = cap.ctx();
    let ens = &cap.ens;
    let obs = ens.server(4);

    // Every port discovered without --port, the observer's included.
    cap.assert_discovered(&["fle", "zab", "client"], |_| "127.0.0.1".into());
    assert_eq!(cap.undecodable(), 0);

    // The observer's handshake, on each of its quorum connections (one per start).
    let obs_conns: Vec<i64> = cap
        .of_type("ObserverInfo")
        .filter_map(|m| {
            assert_eq!(m["sid"].as_i64(), Some(4), "{m}");
            assert_eq!(m["from_sid"].as_i64(), Some(4), "{m}");
            assert_eq!(
                port_of(s(m, "dst")),
                ens.server(leader).quorum_port().unwrap_or(0)
            );
            m["conn"].as_i64()
        })
        .collect();
    // One per start (a connection that failed half-way would be one more: not checked).
    let synced: Vec<i64> = obs_conns
        .iter()
        .copied()
        .filter(|&c| conn_types(&cap.live, c).iter().any(|t| t == "UpToDate"))
        .collect();
    assert!(synced.len() >= 3, "{obs_conns:?}\n{ctx}");
    for &c in &synced {
        let types = conn_types(&cap.live, c);
        assert_eq!(
            types[..3],
            ["ObserverInfo", "LeaderInfo", "AckEpoch"],
            "{types:?}"
        );
        assert!(
            matches!(types[3].as_str(), "Diff" | "Snap" | "Trunc"),
            "{types:?}"
        );
        let at = |t: &str| types.iter().position(|x| x == t);
        let (nl, up) = (at("NewLeader"), at("UpToDate"));
        assert!(nl.is_some() && up > nl, "{types:?}");
        assert_eq!(
            types.get(nl.unwrap_or(0) + 1).map(String::as_str),
            Some("Ack")
        );
        assert_eq!(
            types.get(up.unwrap_or(0) + 1).map(String::as_str),
            Some("Ack")
        );
        // No PROPOSAL/COMMIT to an observer once it is up to date: INFORMs only.
        assert!(
            !types[up.unwrap_or(0)..]
                .iter()
                .any(|t| t == "Proposal" || t == "Commit"),
            "{types:?}"
        );
    }
    // NEWLEADER's configuration names the observer as one.
    let nl = cap
        .live
        .iter()
        .find(|m| {
            s(m, "type") == "NewLeader" && obs_conns.contains(&m["conn"].as_i64().unwrap_or(-1))
        })
        .expect("NEWLEADER to the observer");
    let roles: BTreeMap<i64, String> = nl["config_servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x["sid"].as_i64()?, s(x, "role").to_string())))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(roles.get(&4).map(String::as_str), Some("observer"), "{nl}");
    assert_eq!(roles.values().filter(|r| *r == "participant").count(), 3);

    // Every write: one PROPOSAL+COMMIT per follower, one INFORM (txn decoded) to the observer.
    // (The observer's second connection may start with a DIFF of PROPOSAL+COMMIT pairs, as
    // observers are synchronised: checked above to end before UPTODATE.)
    let msgs: Vec<&Value> = cap.live.iter().collect();
    let to_followers: Vec<&Value> = cap
        .live
        .iter()
        .filter(|m| {
            s(m, "proto") != "zab" || !obs_conns.contains(&m["conn"].as_i64().unwrap_or(-1))
        })
        .collect();
    let zxids = check_proposals(&to_followers, &prefix, 2);
    let want = writes(&prefix);
    for (zxid, (_, op, path)) in zxids.iter().zip(&want) {
        let informs: Vec<&&Value> = msgs
            .iter()
            .filter(|m| s(m, "type") == "Inform" && m["zxid"].as_i64() == Some(*zxid))
            .collect();
        assert_eq!(informs.len(), 1, "{zxid:#x}: {informs:?}");
        let i = informs[0];
        assert_eq!((s(i, "txn_op"), s(i, "path")), (*op, path.as_str()), "{i}");
        assert_eq!(i["to_sid"].as_i64(), Some(4));
        assert!(obs_conns.contains(&i["conn"].as_i64().unwrap_or(-1)));
        // The observer forwarded the client's request to the leader.
        assert!(
            msgs.iter().any(|m| s(m, "type") == "Request"
                && m["from_sid"].as_i64() == Some(4)
                && s(m, "path") == path),
            "no REQUEST from the observer for {path}"
        );
    }
    assert!(msgs
        .iter()
        .any(|m| s(m, "type") == "CreateRequest" && port_of(s(m, "server")) == obs.client_port()));

    // `zkscope elections`: the observer looks for the leader but does not vote.
    let rounds = cap.rounds();
    let ctx = format!("{rounds:#?}");
    assert!(rounds.len() >= 2, "{ctx}");
    for r in &rounds {
        assert_eq!(r["leader"].as_i64(), Some(i64::from(leader)), "{ctx}");
        assert_eq!(r["voters"].as_i64(), Some(3), "{ctx}");
        assert_eq!(r["quorum"].as_i64(), Some(2), "{ctx}");
        assert!(!ids(&r["participants"]).contains(&4), "{ctx}");
        assert!(ids(&r["participants"]).iter().all(|p| (1..=3).contains(p)));
    }
    assert_eq!(rounds[0]["kind"], "election", "{ctx}");
    assert!(
        rounds
            .iter()
            .all(|r| ids(&r["observers"]).iter().all(|&o| o == 4)),
        "{ctx}"
    );
    // Each return of the observer: one round where only it looks, and finds the leader.
    let ctx = format!("restarts at {starts:?}\n{ctx}");
    for (i, &from) in starts.iter().enumerate() {
        let to = starts.get(i + 1).copied().unwrap_or(f64::MAX);
        let found: Vec<&Value> = rounds
            .iter()
            .filter(|r| r["start_ts"].as_f64().is_some_and(|t| t >= from && t < to))
            .collect();
        assert_eq!(found.len(), 1, "restart {}: {ctx}", i + 1);
        assert_eq!(found[0]["kind"], "rejoin", "{ctx}");
        assert_eq!(ids(&found[0]["looking"]), [4], "{ctx}");
        assert_eq!(ids(&found[0]["observers"]), [4], "{ctx}");
    }
    let text = cap.run_on_file(&["elections"]);
    let story = String::from_utf8_lossy(&text.stdout);
    assert!(story.contains(", observers 4 (looking "), "{story}");
    assert!(story.contains("quorum 2 of 3"), "{story}");
}

/// Seconds since the epoch (the clock of the capture timestamps).
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

// ---------------------------------------------------------------- host names

/// This machine's name, when it resolves to loopback addresses only (then a ZooKeeper
/// member named by it listens on lo, where the test captures).
fn loopback_hostname() -> Option<String> {
    let out = std::process::Command::new("hostname").output().ok()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if name.is_empty() || name.eq_ignore_ascii_case("localhost") {
        return None;
    }
    let ips: Vec<IpAddr> = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    (!ips.is_empty() && ips.iter().all(|ip| ip.is_loopback() && ip.is_ipv4())).then_some(name)
}

#[test]
fn host_names_in_the_configuration() {
    let Some(_serial) = scenario() else {
        return;
    };
    let name = loopback_hostname();
    eprintln!("host names: localhost and {name:?}");
    let mut b = ZkEnsemble::builder(3)
        .host("localhost")
        .opts(ZkOpts::new().standalone_enabled(false));
    if let Some(n) = &name {
        b = b.member_host(3, n);
    }
    let prefix = format!("/zkscope-names-{}", std::process::id());
    let mut leader = 0;
    let cap = capture("ens-names", b, |ens| {
        leader = ens.wait_leader(ELECTION);
        let via = (1..=3).find(|&i| i != leader).unwrap_or(1);
        run_writes(ens, via, &prefix);
    });
    let ctx = cap.ctx();
    let ens = &cap.ens;
    let host_ip = |id: u32| -> String {
        match (&name, id) {
            (Some(n), 3) => (n.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            _ => "127.0.0.1".into(),
        }
    };

    // ZooKeeper carries the names, not addresses, in the configuration.
    let notif = cap.of_type("Notification").next().expect("a notification");
    let config = s(notif, "config");
    for srv in &ens.servers {
        let id = srv.myid().unwrap_or(0);
        let host = match (&name, id) {
            (Some(n), 3) => n.clone(),
            _ => "localhost".into(),
        };
        let line = format!(
            "server.{id}={host}:{}:{}:participant",
            srv.quorum_port().unwrap_or(0),
            srv.election_port().unwrap_or(0)
        );
        assert!(config.contains(&line), "{line} not in {config:?}");
    }
    // Every port discovered at the address its name resolves to. The followers' quorum
    // ports see no connection at all: only the configuration can name them.
    cap.assert_discovered(&["fle", "zab", "client"], |srv| {
        host_ip(srv.myid().unwrap_or(0))
    });
    for srv in ens.servers.iter().filter(|s| s.myid() != Some(leader)) {
        let q = srv.quorum_port().unwrap_or(0);
        let d = cap
            .live
            .iter()
            .find(|m| {
                s(m, "type") == "Discovered"
                    && s(m, "role") == "zab"
                    && port_of(s(m, "endpoint")) == q
            })
            .expect("follower's quorum port discovered");
        assert!(matches!(s(d, "source"), "fle-config" | "newleader"), "{d}");
        assert_eq!(d["sid"].as_i64(), srv.myid().map(i64::from), "{d}");
    }
    // All three protocols decoded; every write replicated to both followers.
    assert!(cap.count("fle", "Notification") >= 3, "{ctx}");
    assert!(cap.count("zab", "FollowerInfo") >= 2, "{ctx}");
    assert!(cap.count("client", "CreateRequest") >= 2, "{ctx}");
    assert_eq!(cap.undecodable(), 0);
    let msgs: Vec<&Value> = cap.live.iter().collect();
    check_proposals(&msgs, &prefix, 2);
    let rounds = cap.rounds();
    assert!(!rounds.is_empty());
    assert!(
        rounds
            .iter()
            .all(|r| r["leader"].as_i64() == Some(i64::from(leader))),
        "{rounds:#?}"
    );
}

// ---------------------------------------------------------------------- IPv6

#[test]
fn ipv6_loopback_ensemble() {
    let Some(_serial) = scenario() else {
        return;
    };
    let prefix = format!("/zkscope-v6-{}", std::process::id());
    let mut leader = 0;
    let cap = capture(
        "ens-ipv6",
        ZkEnsemble::builder(3)
            .ipv6()
            .opts(ZkOpts::new().standalone_enabled(false)),
        |ens| {
            leader = ens.wait_leader(ELECTION);
            let via = (1..=3).find(|&i| i != leader).unwrap_or(1);
            assert!(ens.server(via).addr().starts_with("[::1]:"));
            run_writes(ens, via, &prefix);
        },
    );
    let ctx = cap.ctx();
    let ens = &cap.ens;
    // ZooKeeper 3.8 writes IPv6 hosts in full and bracketed, in the configuration
    // (quorum/election and client addresses) and in the initial message.
    let full = "[0:0:0:0:0:0:0:1]";
    let notif = cap.of_type("Notification").next().expect("a notification");
    let config = s(notif, "config");
    for srv in &ens.servers {
        let line = format!(
            "server.{}={full}:{}:{}:participant;{full}:{}",
            srv.myid().unwrap_or(0),
            srv.quorum_port().unwrap_or(0),
            srv.election_port().unwrap_or(0),
            srv.client_port()
        );
        assert!(config.contains(&line), "{line} not in {config:?}");
    }
    let initials: Vec<&Value> = cap.of_type("Initial").collect();
    assert!(!initials.is_empty(), "{ctx}");
    for i in &initials {
        let sid = i["sid"].as_i64().unwrap_or(0) as u32;
        let e = ens.server(sid).election_port().unwrap_or(0);
        assert_eq!(
            i["addresses"],
            serde_json::json!([format!("{full}:{e}")]),
            "{i}"
        );
        assert!(s(i, "src").starts_with("[::1]:"), "{i}");
    }
    // Every endpoint discovered at [::1].
    cap.assert_discovered(&["fle", "zab", "client"], |_| "[::1]".into());
    // All three protocols, over IPv6.
    let v6 = |m: &&Value| s(m, "src").starts_with("[::1]:") && s(m, "dst").starts_with("[::1]:");
    let count = |proto: &str, ty: &str| {
        cap.live
            .iter()
            .filter(|m| s(m, "proto") == proto && s(m, "type") == ty)
            .filter(v6)
            .count()
    };
    assert!(count("fle", "Notification") >= 3, "{ctx}");
    assert!(count("zab", "FollowerInfo") >= 2, "{ctx}");
    assert!(count("zab", "UpToDate") >= 2, "{ctx}");
    assert!(
        cap.live
            .iter()
            .any(|m| s(m, "type") == "CreateRequest" && s(m, "client").starts_with("[::1]:")),
        "{ctx}"
    );
    assert_eq!(cap.undecodable(), 0);
    let msgs: Vec<&Value> = cap.live.iter().collect();
    check_proposals(&msgs, &prefix, 2);
    // Text output brackets the IPv6 hosts of the configuration, client addresses included.
    let text = cap.run_on_file(&["dump", "--protocol", "auto"]);
    let text = String::from_utf8_lossy(&text.stdout);
    let nl = text
        .lines()
        .find(|l| l.contains(" zab NewLeader "))
        .expect("a NEWLEADER line");
    let srv = ens.server(1);
    let want = format!(
        "1={full}:{}:{}:participant;{full}:{}",
        srv.quorum_port().unwrap_or(0),
        srv.election_port().unwrap_or(0),
        srv.client_port()
    );
    assert!(nl.contains(&want), "{want} not in {nl}");
    let rounds = cap.rounds();
    assert!(
        !rounds.is_empty()
            && rounds
                .iter()
                .all(|r| r["leader"].as_i64() == Some(i64::from(leader))),
        "{rounds:#?}"
    );
}

// ----------------------------------------------------------------------- TLS

/// The TLS notes (`"type":"TlsConnection"`) of election/quorum connections: the last one of
/// each connection id (an unidentified connection can be identified later).
fn tls_notes(msgs: &[Value]) -> BTreeMap<i64, Value> {
    msgs.iter()
        .filter(|m| is_server_tls(m))
        .filter_map(|m| Some((m["conn"].as_i64()?, m.clone())))
        .collect()
}

/// A TLS note of an election/quorum connection (or of one whose protocol is unknown).
fn is_server_tls(m: &Value) -> bool {
    s(m, "type") == "TlsConnection" && s(m, "proto") != "client"
}

/// The notes of protocol `proto` ("fle", "zab").
fn notes_of<'a>(notes: &'a BTreeMap<i64, Value>, proto: &str) -> Vec<&'a Value> {
    notes.values().filter(|m| s(m, "proto") == proto).collect()
}

/// How many notes have each value of `key`.
fn tally<K: Ord>(notes: &BTreeMap<i64, Value>, key: impl Fn(&Value) -> K) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for v in notes.values() {
        *m.entry(key(v)).or_insert(0) += 1;
    }
    m
}

/// The summary line of stderr starting with `label`.
fn summary_line<'a>(stderr: &'a str, label: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_default()
}

#[test]
fn quorum_tls_connections_are_reported_as_tls() {
    let Some(_serial) = scenario() else {
        return;
    };
    let stores = TempDir::new("quorum-tls");
    let opts = ZkOpts::new()
        .standalone_enabled(false)
        .quorum_tls(stores.path());
    let prefix = format!("/zkscope-tls-{}", std::process::id());
    let mut leader = 0;
    let mut mid: Option<LiveOutput> = None;
    let cap = capture("ens-tls", ZkEnsemble::builder(3).opts(opts), |ens| {
        leader = ens.wait_leader(ELECTION);
        let via = (1..=3).find(|&i| i != leader).unwrap_or(1);
        run_writes(ens, via, &prefix);
        // A second capture that starts now: the quorum connections are caught mid-stream.
        let ports = Ports::of(ens);
        let mut args = vec!["-f".to_string(), ports.filter()];
        args.extend(ports.port_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let live = ZkscopeLive::auto(&args);
        // The leader pings each follower every half tick (1 s): let a few go by. Then writes:
        // `run_writes` returns once both followers have had their PROPOSALs and COMMITs.
        std::thread::sleep(Duration::from_secs(4));
        run_writes(ens, via, &format!("{prefix}-mid"));
        mid = Some(live.stop());
    });
    let ctx = cap.ctx();
    let ens = &cap.ens;
    let lq = ens.server(leader).quorum_port().unwrap_or(0);

    // Nothing of the election or quorum protocol is readable, and nothing is taken for it.
    let server_msgs = |msgs: &[Value]| {
        msgs.iter()
            .filter(|m| matches!(s(m, "proto"), "fle" | "zab") && s(m, "type") != "TlsConnection")
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        server_msgs(&cap.live).is_empty(),
        "{:?}",
        server_msgs(&cap.live)
    );
    // The writes on the plaintext client port still decode.
    assert!(cap.count("client", "CreateRequest") >= 2, "{ctx}");

    // From the file with the election and quorum ports named: every connection to them is
    // one TLS connection of the right protocol (ZooKeeper 3.8 with sslQuorum encrypts the
    // election port too: no initial message in clear).
    let port_args = cap.ports.port_args();
    let mut extra: Vec<&str> = port_args.iter().map(String::as_str).collect();
    let (named, stderr) = cap.dump_file(&extra);
    assert!(server_msgs(&named).is_empty(), "{:?}", server_msgs(&named));
    let notes = tls_notes(&named);
    let (fle, zab) = (notes_of(&notes, "fle"), notes_of(&notes, "zab"));
    assert_eq!(fle.len() + zab.len(), notes.len(), "{notes:#?}");
    // A full mesh of three needs three election connections; each follower has one quorum
    // connection to the leader.
    assert!(fle.len() >= 3, "{notes:#?}");
    assert!(fle
        .iter()
        .all(|m| cap.ports.fle.contains(&port_of(s(m, "dst")))));
    assert!(zab.len() >= 2, "{notes:#?}");
    for z in &zab {
        assert_eq!(port_of(s(z, "dst")), lq, "{z}");
        assert_eq!(z["to_sid"].as_i64(), None, "no configuration seen: {z}");
        assert_eq!(z["encrypted"], true);
    }
    assert!(
        summary_line(&stderr, "quorum").contains(" 0 bytes skipped"),
        "{stderr}"
    );
    assert!(
        summary_line(&stderr, "election").contains(" 0 bytes skipped"),
        "{stderr}"
    );
    let tls_count = named.iter().filter(|m| is_server_tls(m)).count();
    assert_eq!(tls_count, notes.len(), "one line per connection");
    // The same in text.
    extra.insert(0, "dump");
    extra.extend(["--protocol", "auto"]);
    let text = cap.run_on_file(&extra);
    let text = String::from_utf8_lossy(&text.stdout);
    let lines = |what: &str| text.lines().filter(|l| l.contains(what)).count();
    assert_eq!(lines(" zab TLS conn="), zab.len(), "{text}");
    assert_eq!(lines(" fle TLS conn="), fle.len(), "{text}");
    assert!(text.contains("encrypted quorum connection (sslQuorum): not decodable"));

    // Without ports (what the live run saw): the same connections, reported once each as TLS
    // to a ZooKeeper host whose protocol is unknown, and counted in the summary.
    let live_notes = tls_notes(&cap.live);
    let dsts = |n: &BTreeMap<i64, Value>| tally(n, |v| port_of(s(v, "dst")));
    assert_eq!(dsts(&live_notes), dsts(&notes), "{live_notes:#?}");
    assert!(
        live_notes.values().all(|m| s(m, "proto") == "unknown"),
        "{live_notes:#?}"
    );
    let (unnamed, stderr) = cap.dump_file(&[]);
    assert_eq!(dsts(&tls_notes(&unnamed)), dsts(&notes));
    let recog = summary_line(&stderr, "recognition");
    assert!(
        recog.contains(&format!(
            "{} of them TLS on ports never identified",
            notes.len()
        )),
        "{recog}"
    );

    // Caught mid-stream, ports named: the quorum connections are TLS, not resync noise.
    let mid = mid.expect("mid-stream capture");
    let mid_msgs: Vec<Value> = mid
        .messages
        .into_iter()
        .filter(|m| cap.ports.ours(m))
        .collect();
    assert!(
        server_msgs(&mid_msgs).is_empty(),
        "{:?}",
        server_msgs(&mid_msgs)
    );
    let mid_notes = tls_notes(&mid_msgs);
    let mid_zab = notes_of(&mid_notes, "zab");
    assert!(mid_zab.len() >= 2, "{mid_notes:#?}\n{}", mid.stderr);
    assert!(mid_zab.iter().all(|m| port_of(s(m, "dst")) == lq));
    assert!(
        summary_line(&mid.stderr, "quorum").contains(" 0 bytes skipped, "),
        "{}",
        mid.stderr
    );

    // No election to tell (every election and quorum byte is encrypted), and no failure: 0
    // when the TLS connections were recognised as the ensemble's, else the status that says
    // nothing was decoded (whether they are depends on which handshakes the capture saw).
    let (rounds, code, stderr) = cap.rounds_and_status();
    assert!(rounds.is_empty(), "{rounds:?}");
    match code {
        Some(0) => {}
        Some(3) => assert!(
            stderr.contains("no election or quorum traffic decoded")
                && stderr.contains("connections carry TLS on ports never identified"),
            "{stderr}"
        ),
        _ => panic!("exit status {code:?}: {stderr}"),
    }
}

#[test]
fn quorum_tls_rolling_upgrade_mixes_tls_and_plaintext() {
    let Some(_serial) = scenario() else {
        return;
    };
    // Every member accepts both (portUnification); member 1 has not switched to TLS yet.
    let stores = TempDir::new("quorum-tls");
    let opts = ZkOpts::new()
        .standalone_enabled(false)
        .quorum_tls(stores.path())
        .cfg("portUnification=true");
    let prefix = format!("/zkscope-tlsmix-{}", std::process::id());
    let mut leader = 0;
    let cap = capture(
        "ens-tls-mixed",
        ZkEnsemble::builder(3)
            .opts(opts)
            .member_cfg(1, "sslQuorum=false"),
        |ens| {
            leader = ens.wait_leader(ELECTION);
            run_writes(ens, 1, &prefix);
        },
    );
    let ctx = cap.ctx();
    let ens = &cap.ens;
    // FLE: the highest id among a quorum wins, so the plaintext member 1 is a follower.
    assert_ne!(leader, 1);
    let lq = ens.server(leader).quorum_port().unwrap_or(0);

    // Member 1 speaks plaintext: its initial messages decode (it drops the connections it
    // opens to higher ids); its quorum connection decodes whole, NEWLEADER's configuration
    // names every endpoint.
    let initials: Vec<&Value> = cap.of_type("Initial").collect();
    assert!(!initials.is_empty(), "{ctx}");
    assert!(
        initials.iter().all(|m| m["sid"].as_i64() == Some(1)),
        "{initials:?}"
    );
    let fi: Vec<&Value> = cap.of_type("FollowerInfo").collect();
    assert!(!fi.is_empty(), "{ctx}");
    assert!(fi.iter().all(|m| m["sid"].as_i64() == Some(1)), "{fi:?}");
    // Member 1's quorum connection that synchronised (one, unless it had to retry).
    let c1 = fi
        .iter()
        .filter_map(|m| m["conn"].as_i64())
        .find(|&c| {
            let types = conn_types(&cap.live, c);
            types.iter().any(|t| t == "NewLeader") && types.iter().any(|t| t == "UpToDate")
        })
        .expect("member 1 synchronised in clear");
    let c1s: BTreeSet<i64> = fi.iter().filter_map(|m| m["conn"].as_i64()).collect();
    cap.assert_discovered(&["fle", "zab"], |_| "127.0.0.1".into());
    // The writes reach member 1 as PROPOSAL+COMMIT in clear; the other follower's copy
    // travels inside TLS.
    let props: Vec<&Value> = cap
        .live
        .iter()
        .filter(|m| s(m, "type") == "Proposal" && s(m, "path").starts_with(&prefix))
        .collect();
    assert_eq!(props.len(), writes(&prefix).len(), "{props:?}");
    assert!(
        props.iter().all(|m| m["conn"].as_i64() == Some(c1)),
        "{props:?}"
    );

    // Every other election/quorum connection is TLS, reported per connection, in the end
    // with its protocol: the ports are known from the plaintext member's traffic.
    let notes = tls_notes(&cap.live);
    assert!(!notes.is_empty(), "{ctx}");
    let (fle, zab) = (notes_of(&notes, "fle"), notes_of(&notes, "zab"));
    assert_eq!(fle.len() + zab.len(), notes.len(), "{notes:#?}");
    assert!(
        !zab.is_empty(),
        "the TLS follower's quorum connection: {notes:#?}"
    );
    for z in &zab {
        assert_eq!(port_of(s(z, "dst")), lq, "{z}");
        // The note goes out when the connection is identified. If that is between member 1's
        // FOLLOWERINFO (which reveals the leader's quorum endpoint) and its NEWLEADER (whose
        // configuration names the server), the leader's id is not known yet.
        let to = z["to_sid"].as_i64();
        assert!(to.is_none() || to == Some(i64::from(leader)), "{z}");
    }
    // Member 1's peers reach it over TLS (portUnification accepts both on one port).
    let e1 = ens.server(1).election_port().unwrap_or(0);
    assert!(fle.iter().any(|m| port_of(s(m, "dst")) == e1), "{notes:#?}");
    assert!(fle
        .iter()
        .all(|m| cap.ports.fle.contains(&port_of(s(m, "dst")))));
    // No TLS bytes taken for election or quorum messages.
    assert_eq!(cap.undecodable(), 0);
    assert_eq!(
        cap.count("fle", "Notification"),
        0,
        "notifications all travel over TLS"
    );
    let zab_msgs = cap
        .live
        .iter()
        .filter(|m| s(m, "proto") == "zab" && s(m, "type") != "TlsConnection")
        .all(|m| c1s.contains(&m["conn"].as_i64().unwrap_or(-1)));
    assert!(zab_msgs, "quorum messages only on member 1's connection");

    // The file tells the same; `zkscope elections` sees member 1 settle, nothing else.
    let (file, stderr) = cap.dump_file(&[]);
    let file_notes = tls_notes(&file);
    let protos = |n: &BTreeMap<i64, Value>| tally(n, |v| s(v, "proto").to_string());
    assert_eq!(protos(&file_notes), protos(&notes), "{stderr}");
    let _ = cap.rounds();
}
